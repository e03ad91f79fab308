package store_test

import (
	"context"
	"reflect"
	"testing"

	sqlfiles "github.com/meshtop/meshtop/sql"

	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

// The overview's workflow rows are read only when mv_workflow_metrics was
// refreshed since the last read; in between, polls get the cached rows —
// each caller its own copy — and a refresh with new data shows at once.
func TestOverviewWorkflowRowsCachedUntilRefresh(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t)
	refreshAll(t, e.st)

	first, err := e.st.Overview(ctx, store.Window24h)
	if err != nil || len(first.Workflows) == 0 {
		t.Fatalf("first overview: %d workflows, %v", len(first.Workflows), err)
	}
	again, err := e.st.Overview(ctx, store.Window24h)
	if err != nil || !reflect.DeepEqual(first.Workflows, again.Workflows) {
		t.Fatalf("second overview differs from the first (%v)", err)
	}
	again.Workflows[0].Name = safetext.New("changed by the caller")
	third, err := e.st.Overview(ctx, store.Window24h)
	if err != nil || third.Workflows[0].Name.Is("changed by the caller") {
		t.Fatalf("callers share the cached rows (%v)", err)
	}

	// The query itself: nothing when given the latest successful refresh.
	raw, err := sqlfiles.Queries.ReadFile("queries/store_workflows.sql")
	if err != nil {
		t.Fatal(err)
	}
	quoted, err := sqlfiles.QuoteSchema("metrics")
	if err != nil {
		t.Fatal(err)
	}
	q := sqlfiles.Render(string(raw), quoted)
	var latest int64
	if err := e.db.Pool.QueryRow(ctx, `select max(id) from metrics.refresh_log
		where view_name = 'mv_workflow_metrics' and status = 'ok'`).Scan(&latest); err != nil {
		t.Fatal(err)
	}
	count := func(cachedID int64) int {
		rows, err := e.db.Pool.Query(ctx, q, "24h", cachedID)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		return n
	}
	if n := count(latest); n != 0 {
		t.Fatalf("store_workflows.sql returned %d rows for the latest refresh id", n)
	}
	if n := count(-1); n != len(first.Workflows) {
		t.Fatalf("store_workflows.sql returned %d rows to read, want %d", n, len(first.Workflows))
	}

	// New finished runs, refreshed: the next overview has them.
	if _, err := e.db.Pool.Exec(ctx, `insert into public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
		select project_id, workflow_id, 'failed', $1::timestamptz - interval '10 minutes', $1::timestamptz - interval '9 minutes'
		from public.workflow_runs limit 40`, anchor); err != nil {
		t.Fatal(err)
	}
	if res, err := e.st.Refresh(ctx, store.ViewMetrics, false); err != nil || res[0].Status != "ok" {
		t.Fatalf("refresh: %+v, %v", res, err)
	}
	after, err := e.st.Overview(ctx, store.Window24h)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := store.New(e.db.Pool, nil, store.Options{}).Overview(context.Background(), store.Window24h)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after.Workflows, fresh.Workflows) {
		t.Fatal("after a refresh, the cached store's rows differ from a fresh store's")
	}
	if total(after.Workflows) != total(first.Workflows)+40 {
		t.Fatalf("runs after the refresh = %d, want %d", total(after.Workflows), total(first.Workflows)+40)
	}
}

func total(ws []store.WorkflowMetrics) int64 {
	var n int64
	for _, w := range ws {
		n += w.Runs
	}
	return n
}
