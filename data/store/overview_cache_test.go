package store_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	sqlfiles "github.com/meshtop/meshtop/sql"

	"github.com/meshtop/meshtop/data/store"
)

// The overview's workflow rows are read only when mv_workflow_metrics was
// refreshed since the last read; in between, polls get the cached rows —
// the very same slice, shared and never modified (store.Overview), so an
// unchanged poll copies and compares nothing — and a refresh with new data
// shows at once, in a new slice.
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
	if &first.Workflows[0] != &again.Workflows[0] {
		t.Fatal("an unchanged poll returned a copy of the cached rows, not the shared slice")
	}
	if !sameMap(first.Changes, again.Changes) {
		t.Fatal("an unchanged poll returned a copy of the cached changes, not the shared map")
	}
	kept := slices.Clone(first.Workflows)

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
	if &after.Workflows[0] == &first.Workflows[0] || !reflect.DeepEqual(first.Workflows, kept) {
		t.Fatal("a new read modified the rows an earlier poll returned instead of replacing them")
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

// statements counts the statements a pool sends, by the query file they
// come from (its first line, "-- store_hourly.sql: …").
type statements struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *statements) note(sql string) {
	name, _, _ := strings.Cut(strings.TrimPrefix(sql, "-- "), ":")
	s.mu.Lock()
	s.n[name]++
	s.mu.Unlock()
}

func (s *statements) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[name]
}

func (s *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	s.note(d.SQL)
	return ctx
}
func (s *statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (s *statements) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (s *statements) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	s.note(d.SQL)
}
func (s *statements) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// Between two refreshes a poll sends neither the sparklines' read of every
// workflow's hours nor the comparison with the previous window: the
// sparklines are read once per refresh of the hourly view, the comparison
// with the rows, once per refresh of mv_workflow_metrics, anchored on the
// rows' clock — so two readers of the same rows get the same Δ (issue
// 24.12, 24.13).
func TestOverviewReadsSparklinesAndChangesOncePerRefresh(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t)
	refreshAll(t, e.st)
	cfg, err := pgxpool.ParseConfig(e.db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	stmts := &statements{n: map[string]int{}}
	cfg.ConnConfig.Tracer = stmts
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool, nil, store.Options{Schema: schema})
	poll := func() store.Overview {
		t.Helper()
		ov, err := st.Overview(ctx, store.Window24h)
		if err != nil {
			t.Fatal(err)
		}
		return ov
	}
	first := poll()
	for range 5 {
		poll()
	}
	if h, c := stmts.count("store_hourly.sql"), stmts.count("store_changes.sql"); h != 1 || c != 1 {
		t.Fatalf("6 polls without a refresh read the sparklines %d times and the changes %d times, want 1 and 1", h, c)
	}
	if len(first.Changes) == 0 || len(first.Hourly) == 0 {
		t.Fatalf("the overview has %d changes and %d sparklines", len(first.Changes), len(first.Hourly))
	}
	// The same comparison as Changes, which anchors on the view's clock.
	want, err := e.st.Changes(ctx, store.Window24h)
	if err != nil || !reflect.DeepEqual(first.Changes, want) {
		t.Fatalf("Overview.Changes differs from Changes (%v):\n%v\n%v", err, first.Changes, want)
	}

	// A refresh of the metrics view alone: rows and changes are read again,
	// the sparklines are not (the hourly view's refresh did not change).
	if res, err := e.st.Refresh(ctx, store.ViewMetrics, false); err != nil || res[0].Status != "ok" {
		t.Fatalf("refresh: %+v, %v", res, err)
	}
	poll()
	poll()
	if h, c := stmts.count("store_hourly.sql"), stmts.count("store_changes.sql"); h != 1 || c != 2 {
		t.Fatalf("after a refresh of %s: sparklines read %d times, changes %d; want 1 and 2", store.ViewMetrics, h, c)
	}
	if res, err := e.st.Refresh(ctx, store.ViewHourly, false); err != nil || res[0].Status != "ok" {
		t.Fatalf("refresh: %+v, %v", res, err)
	}
	poll()
	poll()
	if h := stmts.count("store_hourly.sql"); h != 2 {
		t.Fatalf("after a refresh of %s: sparklines read %d times, want 2", store.ViewHourly, h)
	}

	// New runs in the hour of the clock, not yet refreshed: a second
	// store (another dashboard) reading now gets the Δ the first shows.
	if _, err := e.db.Pool.Exec(ctx, `insert into public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
		select project_id, workflow_id, 'failed', $1::timestamptz - interval '2 minutes', $1::timestamptz - interval '1 minute'
		from public.workflow_runs limit 40`, anchor); err != nil {
		t.Fatal(err)
	}
	shown := poll()
	other, err := store.New(e.db.Pool, nil, store.Options{Schema: schema}).Overview(ctx, store.Window24h)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(shown.Changes, other.Changes) {
		t.Fatal("two readers of the same rows got different comparisons with the previous window")
	}
}

// sameMap reports whether two maps are one map (not merely equal).
func sameMap[K comparable, V any](a, b map[K]V) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
