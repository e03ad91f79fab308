package reliability

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

// TestCLISigtermDuringRefresh: SIGTERM to `meshtop refresh --every` while
// its refresh waits for the view's lock cancels that refresh cleanly: exit
// 0, a 'failed' log row, the guard released, the view unchanged.
func TestCLISigtermDuringRefresh(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t, 5*time.Minute) // a hang guard: the waits below are on conditions
	if _, err := fixture.Generate(ctx, db.Pool, fixture.Spec{Seed: 13, Projects: 2, Workflows: 6, Runs: 1000, Days: 30, Anchor: anchor, Events: true}); err != nil {
		t.Fatal(err)
	}
	const schema = "metrics"
	in := install.New(db.Pool, schema)
	if _, err := in.Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	a := anchor
	if err := in.SetClock(ctx, &a); err != nil {
		t.Fatal(err)
	}
	if _, err := store.New(db.Pool, nil, store.Options{Schema: schema}).Refresh(ctx, "", false); err != nil {
		t.Fatal(err)
	}
	a = anchor.Add(time.Hour)
	if err := in.SetClock(ctx, &a); err != nil {
		t.Fatal(err)
	}
	before, err := checksums(ctx, db.Pool, schema)
	if err != nil {
		t.Fatal(err)
	}
	after0, err := maxLogID(ctx, db.Pool, schema)
	if err != nil {
		t.Fatal(err)
	}
	view := views[0] // refreshed first
	blk, err := pgx.Connect(ctx, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer blk.Close(context.Background())
	if _, err := blk.Exec(ctx, "begin; "+blockViewStmt(schema, view)); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(meshtopBinary(t), "refresh", "--every", "1s")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+db.DSN)
	var out, errs strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	var id int64
	var pid int32
	if err := waitFor(ctx, 2*time.Minute, "the CLI's refresh waiting for the view lock", func() (bool, error) {
		err := db.Pool.QueryRow(ctx, `select l.id, l.pid from `+qident(schema)+`.refresh_log l
			join pg_stat_activity a on a.pid = l.pid and a.wait_event_type = 'Lock'
			where l.id > $1 and l.view_name = $2 and l.status = 'running'`, after0, view).Scan(&id, &pid)
		if err == pgx.ErrNoRows {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("meshtop refresh --every after SIGTERM: %v\nstdout: %s\nstderr: %s", err, out.String(), errs.String())
		}
	case <-ctx.Done():
		// The CLI repeats its cancel request for up to 30 s before it drops
		// the connection: a bound at 30 s would race that on a loaded machine.
		t.Fatalf("meshtop refresh --every did not exit after SIGTERM\nstderr: %s", errs.String())
	}
	row, err := readLogRow(ctx, db.Pool, schema, id)
	if err != nil {
		t.Fatal(err)
	}
	if row.State != "failed" || !strings.Contains(row.Error, "cancel") {
		t.Errorf("the refresh SIGTERM interrupted: status %s state %s error %q; want failed (cancelled)", row.Status, row.State, row.Error)
	}
	if _, err := blk.Exec(ctx, "rollback"); err != nil {
		t.Fatal(err)
	}
	if err := waitNoRefresh(ctx, db.Pool); err != nil {
		t.Fatal(err)
	}
	after, err := checksums(ctx, db.Pool, schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		if after[v] != before[v] {
			t.Errorf("%s changed although its refresh was cancelled", v)
		}
	}
	if _, err := store.New(db.Pool, nil, store.Options{Schema: schema}).Refresh(ctx, "", false); err != nil {
		t.Fatal(err)
	}
	if err := compareTruth(ctx, db.Pool, schema); err != nil {
		t.Fatal(err)
	}
	report.add("interruptions.SIGTERM to meshtop refresh --every", 1)
	report.add("interruptions.total", 1)
	t.Logf("SIGTERM: exit 0, log row %d %s: %s", id, row.State, row.Error)
}
