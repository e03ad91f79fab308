package reliability

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

// TestGuardHeldUntilCommit: a finished refresh_run keeps the view's guard
// until its transaction commits. Released earlier, a second caller could
// start while the first still holds the view's lock (its refresh then queues
// behind it), and the status view would call the finishing attempt
// 'interrupted' for that moment. refresh_run is run inside an explicit
// transaction here to hold that moment open.
func TestGuardHeldUntilCommit(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t, 2*time.Minute)
	if _, err := fixture.Generate(ctx, db.Pool, fixture.Spec{Seed: 9, Projects: 2, Workflows: 5, Runs: 500, Days: 30, Anchor: anchor}); err != nil {
		t.Fatal(err)
	}
	const schema = "metrics"
	S := qident(schema)
	if _, err := install.New(db.Pool, schema).Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	st := store.New(db.Pool, nil, store.Options{Schema: schema})
	if _, err := st.Refresh(ctx, "", false); err != nil {
		t.Fatal(err)
	}
	a, err := pgx.Connect(ctx, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	var id int64
	if err := a.QueryRow(ctx, "select "+S+".refresh_begin('mv_workflow_metrics')").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	var status string
	if err := a.QueryRow(ctx, "select status from "+S+".refresh_run($1)", id).Scan(&status); err != nil || status != "ok" {
		t.Fatalf("refresh_run: %q, %v", status, err)
	}
	// Not committed yet.
	row, err := readLogRow(ctx, db.Pool, schema, id)
	if err != nil {
		t.Fatal(err)
	}
	if row.State != "running" {
		t.Errorf("a finished but uncommitted refresh reads as %q in refresh_log_v, want running", row.State)
	}
	res, err := st.Refresh(ctx, "mv_workflow_metrics", false)
	if err == nil && (len(res) != 1 || res[0].Status != "skipped") {
		t.Errorf("a second refresh while the first is uncommitted: %+v; want skipped", res)
	}
	if _, err := a.Exec(ctx, "commit"); err != nil {
		t.Fatal(err)
	}
	if row, err = readLogRow(ctx, db.Pool, schema, id); err != nil || row.State != "ok" {
		t.Errorf("after commit: %+v, %v; want ok", row, err)
	}
	if err := waitNoRefresh(ctx, db.Pool); err != nil {
		t.Error(err)
	}
}
