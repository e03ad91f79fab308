package install_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/pgtest"
)

// lastModes returns the mode and dirty keys of the newest ok refresh of each
// view.
func lastModes(t *testing.T, ctx context.Context, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT DISTINCT ON (view_name) view_name, coalesce(mode, '') || ' ' || coalesce(dirty_keys, 0)
FROM metrics.refresh_log WHERE status = 'ok' ORDER BY view_name, id DESC`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var v, m string
		if err := rows.Scan(&v, &m); err != nil {
			t.Fatal(err)
		}
		out[v] = m
	}
	return out
}

// dirtyKeys counts the rows of the change log.
func dirtyKeys(t *testing.T, ctx context.Context, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM metrics.dirty_keys) + (SELECT count(*) FROM metrics.dirty_runs)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// refreshAndCompare refreshes every view and compares each with its oracle;
// it returns the mode of the hourly view's refresh (the one that applies the
// change log first).
func refreshAndCompare(t *testing.T, ctx context.Context, pool *pgxpool.Pool) string {
	t.Helper()
	refreshAll(t, ctx, pool, "metrics")
	compareAllToLive(t, ctx, pool, clock)
	// The hourly view's logged row count comes from a counter, not from
	// counting the view: it must still be the view's count.
	var logged, counted int64
	if err := pool.QueryRow(ctx, `SELECT
  (SELECT g.rows FROM metrics.refresh_log g WHERE g.view_name = 'mv_workflow_metrics_hourly' AND g.status = 'ok' ORDER BY g.id DESC LIMIT 1),
  (SELECT count(*) FROM metrics.mv_workflow_metrics_hourly)`).Scan(&logged, &counted); err != nil {
		t.Fatal(err)
	}
	if logged != counted {
		t.Errorf("hourly view: refresh logged %d rows; the view has %d", logged, counted)
	}
	if n := dirtyKeys(t, ctx, pool); n != 0 {
		t.Errorf("%d dirty keys left after a quiet refresh", n)
	}
	return lastModes(t, ctx, pool)["mv_workflow_metrics_hourly"]
}

// TestIncrementalChangeKinds makes each kind of change the capture must see,
// one at a time, and checks after each refresh that it was incremental and
// that every view equals its oracle.
func TestIncrementalChangeKinds(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "full ") {
		t.Fatalf("first refresh: mode %q; want a full build", m)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}
	const w1, w2, p1 = "00000000-0000-0000-0000-0000000000b1", "00000000-0000-0000-0000-0000000000b2", "00000000-0000-0000-0000-0000000000a1"
	cases := []struct {
		name   string
		change func()
	}{
		{"new runs in whole and partial hours", func() {
			exec(`INSERT INTO public.workflow_runs (id, project_id, workflow_id, status, started_at, finished_at) VALUES
  ('00000000-0000-0000-0000-0000000e0001', $2, $3, 'succeeded', $1::timestamptz - interval '5 hours', $1::timestamptz - interval '4 hours 59 minutes'),
  ('00000000-0000-0000-0000-0000000e0002', $2, $3, 'running', $1::timestamptz - interval '3 hours', NULL),
  ('00000000-0000-0000-0000-0000000e0003', $2, $3, 'paused', $1::timestamptz - interval '2 days', NULL),
  ('00000000-0000-0000-0000-0000000e0004', $2, $3, 'failed', $1::timestamptz - interval '5 minutes', $1::timestamptz - interval '1 minute')`, clock, p1, w1)
		}},
		{"a run finishing hours after it started", func() {
			exec(`UPDATE public.workflow_runs SET status = 'succeeded', finished_at = $1::timestamptz - interval '1 minute'
WHERE id = '00000000-0000-0000-0000-0000000e0002'`, clock)
		}},
		{"a paused run resuming", func() {
			exec(`UPDATE public.workflow_runs SET status = 'running' WHERE id = '00000000-0000-0000-0000-0000000e0003'`)
		}},
		{"a status correction of an old run", func() {
			exec(`UPDATE public.workflow_runs SET status = 'failed'
WHERE workflow_id = $1 AND status = 'succeeded' AND started_at = $2::timestamptz - interval '168 hours -1 microsecond'`, w1, clock)
		}},
		{"a run moved to another hour and workflow", func() {
			exec(`UPDATE public.workflow_runs SET started_at = started_at - interval '7 hours', workflow_id = $1
WHERE id = '00000000-0000-0000-0000-0000000e0001'`, w2)
		}},
		{"step events of an old run", func() {
			exec(`INSERT INTO public.workflow_events (run_id, ts, type, payload) VALUES
  ('00000000-0000-0000-0000-0000000000d6', $1::timestamptz - interval '239 hours', 'step_started', '{"node":{"id":"n1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000d6', $1::timestamptz - interval '238 hours', 'step_failed', '{"node":{"id":"n1","type":"http_call"}}')`, clock)
		}},
		{"backfilled runs and events with old timestamps", func() {
			exec(`WITH r AS (
  INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
  SELECT $2, $3, 'succeeded', $1::timestamptz - interval '15 days' + g * interval '1 minute', $1::timestamptz - interval '15 days' + g * interval '1 minute' + g * interval '1 second'
  FROM generate_series(1, 20) g RETURNING id, started_at)
INSERT INTO public.workflow_events (run_id, ts, type, payload)
SELECT r.id, r.started_at + x.off, x.type, '{"node":{"id":"n2","type":"transform"}}'
FROM r, (VALUES (interval '1 second', 'step_started'), (interval '4 seconds', 'step_succeeded')) x(off, type)`, clock, p1, w2)
		}},
		{"a new workflow definition with runs", func() {
			exec(`INSERT INTO public.workflow_definitions (id, project_id, slug, version, definition, name, status) VALUES
  ('00000000-0000-0000-0000-0000000000b5', $1, 'new', 1, '{"nodes":[]}', 'New', 'published')`, p1)
			exec(`INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
SELECT $2, '00000000-0000-0000-0000-0000000000b5', 'succeeded', $1::timestamptz - g * interval '37 minutes', $1::timestamptz - g * interval '37 minutes' + interval '3 seconds'
FROM generate_series(1, 40) g`, clock, p1)
		}},
		{"a deleted run (its events cascade)", func() {
			exec(`DELETE FROM public.workflow_runs WHERE id = '00000000-0000-0000-0000-0000000000d2'`)
		}},
		{"a retention job deleting old runs", func() {
			exec(`DELETE FROM public.workflow_runs WHERE started_at < $1::timestamptz - interval '25 days'`, clock)
		}},
		{"a deleted workflow definition (cascade to runs and events)", func() {
			exec(`DELETE FROM public.workflow_definitions WHERE id = '00000000-0000-0000-0000-0000000000b5'`)
		}},
		{"runs of the other project", func() {
			exec(`INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
SELECT '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000b4', 'canceled',
       $1::timestamptz - g * interval '5 hours', $1::timestamptz - g * interval '5 hours' + interval '1 minute'
FROM generate_series(1, 30) g`, clock)
		}},
		{"a deleted project (cascade to definitions, runs, events)", func() {
			exec(`DELETE FROM public.projects WHERE id = '00000000-0000-0000-0000-0000000000a2'`)
		}},
	}
	for _, c := range cases {
		before := dirtyKeys(t, ctx, db.Pool)
		c.change()
		if dirtyKeys(t, ctx, db.Pool) == before {
			t.Errorf("%s: no dirty key logged", c.name)
		}
		if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "incremental ") || m == "incremental 0" {
			t.Errorf("%s: refresh mode %q; want incremental with keys", c.name, m)
		}
		if t.Failed() {
			t.Fatalf("after %s", c.name)
		}
	}

	// A transaction open across a refresh: its keys commit after the
	// refresh's snapshot and must be picked up by the next one.
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
SELECT $2, $3, 'failed', $1::timestamptz - interval '6 hours' - g * interval '1 second', $1::timestamptz - interval '5 hours'
FROM generate_series(1, 10) g`, clock, p1, w1); err != nil {
		t.Fatal(err)
	}
	refreshAll(t, ctx, db.Pool, "metrics")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if dirtyKeys(t, ctx, db.Pool) == 0 {
		t.Fatal("the transaction committed after the refresh left no dirty key")
	}
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "incremental ") || m == "incremental 0" {
		t.Errorf("after the late commit: mode %q", m)
	}

	// TRUNCATE fires no row trigger: its statement trigger asks for a rebuild.
	exec(`TRUNCATE public.workflow_runs CASCADE`)
	cases[6].change() // backfilled runs and events, so the views are not empty
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "full") {
		t.Errorf("after TRUNCATE: mode %q; want full", m)
	}
}

// TestIncrementalPartitionChanges: dropping a partition of workflow_events
// fires no trigger; the refresh notices it by the partition fingerprint and
// rebuilds when the partition could hold events of the window, not when it
// is older or empty.
func TestIncrementalPartitionChanges(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAndCompare(t, ctx, db.Pool)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}
	// A future month created ahead (empty), and an old month with nothing of
	// the window: incremental.
	exec(`SELECT public.meshhook_ensure_event_partitions($1::timestamptz + interval '40 days', $1::timestamptz + interval '41 days')`, clock)
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "incremental") {
		t.Errorf("after creating an empty future partition: mode %q; want incremental", m)
	}
	// Step events written straight into a partition fire the row-level
	// capture trigger cloned onto it: incremental.
	exec(`INSERT INTO public.workflow_events_y2026m03 (run_id, ts, type, payload)
SELECT r.id, r.started_at + interval '1 second', 'step_started', '{"node":{"id":"direct","type":"transform"}}'::jsonb
FROM public.workflow_runs r WHERE r.started_at >= '2026-03-01' AND r.started_at < $1::timestamptz - interval '2 hours' AND r.finished_at IS NOT NULL
UNION ALL
SELECT r.id, r.started_at + interval '2 seconds', 'step_succeeded', '{"node":{"id":"direct","type":"transform"}}'
FROM public.workflow_runs r WHERE r.started_at >= '2026-03-01' AND r.started_at < $1::timestamptz - interval '2 hours' AND r.finished_at IS NOT NULL`, clock)
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "incremental") {
		t.Errorf("after inserting step events into a partition by name: mode %q; want incremental", m)
	}
	// Detaching a partition removes window events, and no trigger sees it.
	exec(`ALTER TABLE public.workflow_events DETACH PARTITION public.workflow_events_y2026m02`)
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "full") {
		t.Errorf("after detaching a partition of the window: mode %q; want full", m)
	}
	exec(`ALTER TABLE public.workflow_events ATTACH PARTITION public.workflow_events_y2026m02 FOR VALUES FROM ('2026-02-01 00:00:00+00') TO ('2026-03-01 00:00:00+00')`)
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "full") {
		t.Errorf("after attaching a partition with events of the window: mode %q; want full", m)
	}
	exec(`TRUNCATE public.workflow_events_y2026m01`)
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "full") {
		t.Errorf("after truncating a partition by name: mode %q; want full", m)
	}
}

// TestVerifyFindsDrift corrupts a bucket by hand: verify reports it, a full
// refresh repairs it.
func TestVerifyFindsDrift(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	verify := func() []string {
		t.Helper()
		tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		rows, err := tx.Query(ctx, `SELECT kind || ' ' || field || ' ' || coalesce(stored, 'null') || ' ' || coalesce(recomputed, 'null') FROM metrics.verify(720)`)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if _, err := db.Pool.Exec(ctx, `SELECT * FROM metrics.verify(720)`); err == nil || !strings.Contains(err.Error(), "55000") {
		t.Errorf("verify before the rollup is built: %v; want SQLSTATE 55000", err)
	}
	refreshAndCompare(t, ctx, db.Pool)
	if d := verify(); len(d) != 0 {
		t.Fatalf("verify after a refresh: %v", d)
	}
	// Changes waiting in the log are not drift.
	addRunsPool(t, ctx, db.Pool)
	if d := verify(); len(d) != 0 {
		t.Fatalf("verify with changes pending: %v", d)
	}
	refreshAndCompare(t, ctx, db.Pool)
	if _, err := db.Pool.Exec(ctx, `UPDATE metrics.rollup_runs_hour SET runs = runs + 1, hist_c[1] = hist_c[1] + 2
WHERE bucket = (SELECT max(bucket) FROM metrics.rollup_runs_hour WHERE bucket < $1::timestamptz - interval '2 hours')`, clock); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM metrics.rollup_steps_day WHERE node_id = 'n2'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE metrics.window_runs SET failed = failed + 1 WHERE "window" = '7d'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE metrics.window_steps SET p95_ms = p95_ms * 2 WHERE "window" = '30d'`); err != nil {
		t.Fatal(err)
	}
	d := verify()
	joined := strings.Join(d, "\n")
	for _, want := range []string{"runs_hour runs ", "runs_hour hist_c ", "steps_day ", "runs_window 7d.failed ", "steps_window 30d.p95_ms "} {
		if !strings.Contains(joined, want) {
			t.Errorf("verify does not report %q:\n%s", want, joined)
		}
	}
	if _, err := db.Pool.Exec(ctx, `SELECT metrics.refresh_request_full()`); err != nil {
		t.Fatal(err)
	}
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "full") {
		t.Errorf("refresh after refresh_request_full: mode %q", m)
	}
	if d := verify(); len(d) != 0 {
		t.Fatalf("verify after the full rebuild: %v", d)
	}
}

func addRunsPool(t *testing.T, ctx context.Context, pool *pgxpool.Pool) {
	t.Helper()
	if _, err := pool.Exec(ctx, `INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
SELECT '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1', 'succeeded',
       $1::timestamptz - g * interval '13 minutes', $1::timestamptz - g * interval '13 minutes' + interval '7 seconds'
FROM generate_series(1, 20) g`, clock); err != nil {
		t.Fatal(err)
	}
}

// TestIncrementalInterrupted terminates and cancels a refresh while it
// applies the change log: the rollup and the log roll back together, and
// the next refresh consumes the same keys.
func TestIncrementalInterrupted(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAndCompare(t, ctx, db.Pool)
	for _, how := range []string{"pg_terminate_backend", "pg_cancel_backend"} {
		addRunsPool(t, ctx, db.Pool)
		keys := dirtyKeys(t, ctx, db.Pool)
		// Hold the hourly rollup: the refresh reads the log, then waits to
		// write the buckets.
		blocker := connect(t, ctx, db.DSN)
		if _, err := blocker.Exec(ctx, `BEGIN; LOCK TABLE metrics.rollup_runs_hour IN SHARE MODE`); err != nil {
			t.Fatal(err)
		}
		c, id, done := startBlockedRefresh(t, ctx, db.DSN, "mv_workflow_metrics_hourly")
		admin := connect(t, ctx, db.DSN)
		waitFor(t, ctx, "the refresh waiting inside the apply", waitingOnLock(ctx, admin, c.PgConn().PID()))
		if _, err := admin.Exec(ctx, "SELECT "+how+"($1)", int(c.PgConn().PID())); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if _, err := blocker.Exec(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		// The client sees a terminated connection drop before the backend
		// has exited and released its guard (a loaded machine showed the
		// row still "running" and the next refresh "skipped"): wait for it.
		pid := int(c.PgConn().PID())
		waitFor(t, ctx, "the interrupted backend gone", func() (bool, error) {
			var alive bool
			err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pid).Scan(&alive)
			return !alive || how == "pg_cancel_backend", err
		})
		if how == "pg_cancel_backend" && (r.err != nil || r.status != "failed") {
			t.Errorf("cancelled refresh: %+v", r)
		}
		if how == "pg_terminate_backend" && r.err == nil {
			t.Errorf("terminated refresh returned %+v", r)
		}
		if got := readLog(t, ctx, admin, id); got.state != "failed" && got.state != "interrupted" {
			t.Errorf("%s: log row %+v", how, got)
		}
		if n := dirtyKeys(t, ctx, db.Pool); n != keys {
			t.Errorf("%s: %d dirty keys after the interrupted refresh; want the %d it had", how, n, keys)
		}
		if m := refreshAndCompare(t, ctx, db.Pool); m != fmt.Sprintf("incremental %d", keys) {
			t.Errorf("%s: the next refresh: %q; want incremental %d", how, m, keys)
		}
	}
}

// TestIncrementalModel: writers make every kind of change concurrently —
// some holding their transaction open until a refresh has finished — while
// refreshes run at random moments. After the writers stop and one more
// refresh, every view equals its oracle and verify finds no drift.
func TestIncrementalModel(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAndCompare(t, ctx, db.Pool)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)

	var refreshes atomic.Int64
	runCtx, stop := context.WithTimeout(ctx, 12*time.Second)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	counts := make([]map[string]int, 4)

	// The refresher: CALL refresh() at random moments.
	wg.Add(1)
	go func() {
		defer wg.Done()
		rnd := rand.New(rand.NewSource(seed))
		for runCtx.Err() == nil {
			if _, err := db.Pool.Exec(ctx, "CALL metrics.refresh()"); err != nil {
				errs <- fmt.Errorf("refresh: %w", err)
				return
			}
			refreshes.Add(1)
			select {
			case <-runCtx.Done():
			case <-time.After(time.Duration(rnd.Intn(300)) * time.Millisecond):
			}
		}
	}()

	for w := range counts {
		counts[w] = map[string]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(seed + int64(w) + 1))
			for runCtx.Err() == nil {
				kind, err := modelChange(ctx, db.Pool, rnd, &refreshes, runCtx)
				if err != nil {
					errs <- fmt.Errorf("writer %d, %s: %w", w, kind, err)
					return
				}
				counts[w][kind]++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := map[string]int{}
	for _, c := range counts {
		for k, n := range c {
			total[k] += n
		}
	}
	t.Logf("%d refreshes during the run; changes %v", refreshes.Load(), total)
	for _, k := range []string{"insert", "attempt", "finish", "resume", "correct", "delete", "events", "held open", "new definition", "backfill"} {
		if total[k] == 0 {
			t.Errorf("no %q change was made", k)
		}
	}
	refreshAndCompare(t, ctx, db.Pool)
	tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var drift int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM metrics.verify(720)`).Scan(&drift); err != nil || drift != 0 {
		t.Errorf("verify after the model run: %d differences, %v", drift, err)
	}
}

var modelStatuses = []string{"succeeded", "failed", "canceled", "running", "paused"}

// modelChange makes one random change in its own transaction and returns
// its kind. Errors that concurrent writers legitimately cause (a run or
// definition deleted meanwhile: foreign key violation) are not failures.
//
// While noHold (if not nil) is set, a "held open" change commits at once:
// a transaction held open for seconds keeps DDL on MeshHook's tables (a
// capture switch) waiting for as long, which MeshHook's single-statement
// writers never do.
func modelChange(ctx context.Context, pool *pgxpool.Pool, rnd *rand.Rand, refreshes *atomic.Int64, runCtx context.Context, noHold ...*atomic.Bool) (string, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return "begin", err
	}
	defer tx.Rollback(ctx)
	ago := func(maxHours int) string { return fmt.Sprintf("%d seconds", rnd.Intn(maxHours*3600)) }
	var kind string
	switch p := rnd.Intn(100); {
	case p < 22:
		kind = "insert"
		st := modelStatuses[rnd.Intn(len(modelStatuses))]
		_, err = tx.Exec(ctx, `WITH d AS (SELECT id, project_id FROM public.workflow_definitions ORDER BY random() LIMIT 1),
r AS (INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
  SELECT d.project_id, d.id, $2, $1::timestamptz - $3::interval,
         CASE WHEN $2 IN ('succeeded', 'failed', 'canceled') THEN $1::timestamptz - $3::interval + $4::int * interval '1 millisecond' END
  FROM d RETURNING id, started_at)
INSERT INTO public.workflow_events (run_id, ts, type, payload)
SELECT r.id, r.started_at + x.off * interval '1 millisecond' * $4::int / 4, x.type, jsonb_build_object('node', jsonb_build_object('id', x.node, 'type', 'http_call'))
FROM r, (VALUES (0, 'step_started', 'a'), (1, 'step_succeeded', 'a'), (2, 'step_started', 'b'), (3, 'step_failed', 'b'), (3, 'step_started', 'c')) x(off, type, node)`,
			clock, st, ago(30), 1+rnd.Intn(600000))
	case p < 34:
		kind = "attempt"
		err = modelAttempt(ctx, pool, tx, rnd)
	case p < 44:
		kind = "finish"
		_, err = tx.Exec(ctx, `UPDATE public.workflow_runs SET status = $1, finished_at = started_at + $2::int * interval '1 millisecond'
WHERE id = (SELECT id FROM public.workflow_runs WHERE status = 'running' ORDER BY random() LIMIT 1)`,
			[]string{"succeeded", "failed"}[rnd.Intn(2)], 1+rnd.Intn(9000000))
	case p < 50:
		kind = "resume"
		_, err = tx.Exec(ctx, `UPDATE public.workflow_runs SET status = 'running'
WHERE id = (SELECT id FROM public.workflow_runs WHERE status = 'paused' ORDER BY random() LIMIT 1)`)
	case p < 54:
		kind = "move"
		// A correction of where a run belongs: its start (up to a day
		// earlier: its events stay after it, as MeshHook writes them) or
		// its workflow. Both buckets change.
		if rnd.Intn(2) == 0 {
			_, err = tx.Exec(ctx, `UPDATE public.workflow_runs SET started_at = started_at - $1::int * interval '1 second'
WHERE id = (SELECT id FROM public.workflow_runs ORDER BY random() LIMIT 1)`, 1+rnd.Intn(86400))
		} else {
			_, err = tx.Exec(ctx, `UPDATE public.workflow_runs SET workflow_id = (SELECT id FROM public.workflow_definitions ORDER BY random() LIMIT 1)
WHERE id = (SELECT id FROM public.workflow_runs ORDER BY random() LIMIT 1)`)
		}
	case p < 58:
		kind = "correct"
		_, err = tx.Exec(ctx, `UPDATE public.workflow_runs SET status = CASE status WHEN 'failed' THEN 'succeeded' ELSE 'failed' END
WHERE id = (SELECT id FROM public.workflow_runs WHERE finished_at IS NOT NULL ORDER BY random() LIMIT 1)`)
	case p < 64:
		kind = "delete"
		_, err = tx.Exec(ctx, `DELETE FROM public.workflow_runs WHERE id = (SELECT id FROM public.workflow_runs ORDER BY random() LIMIT 1)`)
	case p < 74:
		kind = "events"
		_, err = tx.Exec(ctx, `WITH r AS (SELECT id, started_at FROM public.workflow_runs WHERE started_at > $1::timestamptz - interval '40 days' ORDER BY random() LIMIT 1)
INSERT INTO public.workflow_events (run_id, ts, type, payload)
SELECT r.id, r.started_at + x.off * interval '1 second', x.type, '{"node":{"id":"late","type":"transform"}}'
FROM r, (VALUES (50, 'step_started'), (50 + $2::int, 'step_succeeded')) x(off, type)`, clock, rnd.Intn(100))
	case p < 82:
		kind = "held open"
		_, err = tx.Exec(ctx, `INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
SELECT project_id, id, 'succeeded', $1::timestamptz - $2::interval, $1::timestamptz - $2::interval + interval '2 seconds'
FROM public.workflow_definitions ORDER BY random() LIMIT 1`, clock, ago(700))
		if err == nil && (len(noHold) == 0 || !noHold[0].Load()) {
			// Commit only after a refresh has finished meanwhile.
			seen := refreshes.Load()
			deadline := time.Now().Add(5 * time.Second)
			for refreshes.Load() < seen+1 && time.Now().Before(deadline) && runCtx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
		}
	case p < 88:
		kind = "backfill"
		_, err = tx.Exec(ctx, `WITH d AS (SELECT id, project_id FROM public.workflow_definitions ORDER BY random() LIMIT 1),
r AS (INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
  SELECT d.project_id, d.id, 'succeeded', $1::timestamptz - $2::interval, $1::timestamptz - $2::interval + interval '90 seconds'
  FROM d, generate_series(1, 5) RETURNING id, started_at)
INSERT INTO public.workflow_events (run_id, ts, type, payload)
SELECT r.id, r.started_at + x.off * interval '1 second', x.type, '{"node":{"id":"a","type":"http_call"}}'
FROM r, (VALUES (1, 'step_started'), (30, 'step_succeeded')) x(off, type)`, clock, ago(800))
	case p < 95:
		kind = "new definition"
		_, err = tx.Exec(ctx, `WITH d AS (
  INSERT INTO public.workflow_definitions (project_id, slug, version, definition, name, status)
  VALUES ('00000000-0000-0000-0000-0000000000a1', 'm' || md5(random()::text), 1, '{"nodes":[]}', 'M', 'draft') RETURNING id, project_id)
INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
SELECT d.project_id, d.id, 'failed', $1::timestamptz - $2::interval, NULL FROM d`, clock, ago(100))
	default:
		kind = "delete definition"
		_, err = tx.Exec(ctx, `DELETE FROM public.workflow_definitions WHERE id = (
  SELECT id FROM public.workflow_definitions WHERE slug LIKE 'm%' ORDER BY random() LIMIT 1)`)
	}
	if err == nil {
		err = tx.Commit(ctx)
	}
	if isConflict(err) {
		return kind + " (conflict)", nil
	}
	return kind, err
}

// modelAttempt writes the next attempt of node rt in a random run, the way
// MeshHook's HTTP executor does (docs/METRICS.md): a step_started first if
// the node has none (or, sometimes, after its fifth failure: started
// again), then http_attempted with the response's status, committed on its
// own (unless the call got no response), and in tx the attempt's outcome —
// step_succeeded for a 2xx, else step_failed with the attempt number — or,
// one time in eight, no outcome (a retry in flight, or a worker that died).
func modelAttempt(ctx context.Context, pool *pgxpool.Pool, tx pgx.Tx, rnd *rand.Rand) error {
	var run string
	var starts, fails int
	var last time.Time
	err := tx.QueryRow(ctx, `SELECT r.id,
  (SELECT count(*) FROM public.workflow_events e WHERE e.run_id = r.id AND e.type = 'step_started' AND e.payload -> 'node' ->> 'id' = 'rt'),
  (SELECT count(*) FROM public.workflow_events e WHERE e.run_id = r.id AND e.type = 'step_failed' AND e.payload -> 'node' ->> 'id' = 'rt'
     AND e.ts > (SELECT max(s.ts) FROM public.workflow_events s WHERE s.run_id = r.id AND s.type = 'step_started' AND s.payload -> 'node' ->> 'id' = 'rt')),
  (SELECT coalesce(max(e.ts), r.started_at) FROM public.workflow_events e WHERE e.run_id = r.id)
FROM public.workflow_runs r WHERE r.started_at > $1::timestamptz - interval '40 days'
-- mostly a run whose rt has started already: its retries then span refreshes
ORDER BY EXISTS (SELECT FROM public.workflow_events e WHERE e.run_id = r.id AND e.payload -> 'node' ->> 'id' = 'rt')
         AND random() < 0.8 DESC, random()
LIMIT 1`, clock).Scan(&run, &starts, &fails, &last)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	const node = `{"id":"rt","type":"http_call"}`
	at := last
	insert := func(q interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	}, typ, payload string) error {
		at = at.Add(time.Duration(1+rnd.Intn(3000)) * time.Millisecond)
		_, err := q.Exec(ctx, `INSERT INTO public.workflow_events (run_id, ts, type, payload) VALUES ($1, $2, $3, $4::jsonb)`, run, at, typ, payload)
		return err
	}
	if starts == 0 || (fails >= 5 && rnd.Intn(3) == 0) {
		if err := insert(pool, "step_started", `{"node":`+node+`}`); err != nil {
			return err
		}
		fails = 0
	}
	status := []int{0, 200, 201, 301, 404, 429, 500, 502, 503, 503}[rnd.Intn(10)]
	if status != 0 {
		if err := insert(pool, "http_attempted", fmt.Sprintf(`{"node":%s,"status":%d}`, node, status)); err != nil {
			return err
		}
	}
	switch {
	case rnd.Intn(8) == 0:
		return nil // the outcome is not written (yet)
	case status >= 200 && status < 300:
		return insert(tx, "step_succeeded", `{"node":`+node+`,"next":[]}`)
	default:
		return insert(tx, "step_failed", fmt.Sprintf(`{"node":%s,"attempt":%d,"error":"Error: HTTP %d"}`, node, fails+1, status))
	}
}

// isConflict reports errors concurrent writers cause each other.
func isConflict(err error) bool {
	if err == nil {
		return false
	}
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) {
		switch pgErr.SQLState() {
		case "23503", "40P01", "40001": // foreign_key_violation, deadlock, serialization
			return true
		}
	}
	return false
}

// TestIncrementalPinnedClockMoves: a pinned clock moving forward is
// incremental (the step events between the two clocks dirty their runs'
// buckets); moving back rebuilds.
func TestIncrementalPinnedClockMoves(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	in := loadEdgeData(t, ctx, db)
	refreshAndCompare(t, ctx, db.Pool)
	for _, step := range []struct {
		d    time.Duration
		mode string
	}{{30 * time.Minute, "incremental"}, {26 * time.Hour, "incremental"}, {-2 * time.Hour, "full"}} {
		c := clock.Add(step.d)
		if err := in.SetClock(ctx, &c); err != nil {
			t.Fatal(err)
		}
		refreshAll(t, ctx, db.Pool, "metrics")
		compareAllToLive(t, ctx, db.Pool, c)
		if m := lastModes(t, ctx, db.Pool)["mv_workflow_metrics_hourly"]; !strings.HasPrefix(m, step.mode) {
			t.Errorf("clock moved by %s: mode %q; want %s", step.d, m, step.mode)
		}
	}
}

// TestIncrementalClockSlides moves a pinned clock forward in steps that put
// runs exactly on, just inside and just outside every window's edges, with
// changes to runs that are leaving a window between two refreshes: every
// refresh stays incremental (only the window cells that changed are
// recomputed, 035_cells.sql) and every view equals its oracle after it.
func TestIncrementalClockSlides(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	in := loadEdgeData(t, ctx, db)
	// w9: one run 30 minutes before the clock, alone in its workflow; it is
	// deleted after the clock has moved so far that its hour no longer
	// touches the 1h window (step 4 below): only the window at the previous
	// clock tells that the cell must change.
	if _, err := db.Pool.Exec(ctx, `
INSERT INTO public.workflow_definitions (id, project_id, slug, version, definition, name, status) VALUES
  ('00000000-0000-0000-0000-0000000000b9', '00000000-0000-0000-0000-0000000000a1', 'nine', 1, '{"nodes":[]}', 'Nine', 'published');
INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at) VALUES
  ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b9', 'succeeded',
   '2026-03-02 11:30:00+00', '2026-03-02 11:30:01+00')`); err != nil {
		t.Fatal(err)
	}
	if !clock.Equal(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("the test assumes the edge data's clock 2026-03-02 12:00 UTC, not %s", clock)
	}
	refreshAndCompare(t, ctx, db.Pool)
	c := clock
	for i, step := range []struct {
		d      time.Duration
		change string // run before the refresh, $1 = the new clock
	}{
		{d: time.Microsecond},
		{d: time.Microsecond},
		{d: time.Millisecond},
		// A run (with a step) in the hour holding the clock: its bucket is
		// built only once that hour has ended (two steps below).
		{d: time.Minute, change: `WITH r AS (
  INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
  VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b2', 'failed',
          $1::timestamptz - interval '20 seconds', $1::timestamptz - interval '5 seconds')
  RETURNING id, started_at)
INSERT INTO public.workflow_events (run_id, ts, type, payload)
SELECT r.id, r.started_at + e.off * interval '1 second', e.type, '{"node":{"id":"n2","type":"transform"}}'
FROM r CROSS JOIN (VALUES (1, 'step_started'), (9, 'step_failed')) AS e(off, type)`},
		{d: 28 * time.Minute},
		{d: 31 * time.Minute, change: `DELETE FROM public.workflow_runs WHERE workflow_id = '00000000-0000-0000-0000-0000000000b9'`},
		// A run that is leaving the 1h window is deleted before the refresh
		// that would have seen it leave.
		{d: 31 * time.Minute, change: `DELETE FROM public.workflow_runs WHERE started_at > $1::timestamptz - interval '91 minutes' AND started_at <= $1::timestamptz - interval '1 hour' AND status = 'canceled'`},
		{d: time.Hour},
		// A run that left the 24h window long ago is corrected.
		{d: 23 * time.Hour, change: `UPDATE public.workflow_runs SET status = 'failed' WHERE started_at <= $1::timestamptz - interval '25 hours' AND started_at > $1::timestamptz - interval '26 hours' AND status = 'succeeded'`},
		{d: time.Microsecond},
		{d: 5 * 24 * time.Hour},
		{d: time.Microsecond},
		{d: 22 * 24 * time.Hour, change: `DELETE FROM public.workflow_runs WHERE started_at <= $1::timestamptz - interval '720 hours' AND started_at > $1::timestamptz - interval '730 hours'`},
		{d: time.Microsecond},
	} {
		c = c.Add(step.d)
		if step.change != "" {
			var args []any
			if strings.Contains(step.change, "$1") {
				args = append(args, c)
			}
			if _, err := db.Pool.Exec(ctx, step.change, args...); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		if err := in.SetClock(ctx, &c); err != nil {
			t.Fatal(err)
		}
		refreshAll(t, ctx, db.Pool, "metrics")
		compareAllToLive(t, ctx, db.Pool, c)
		if m := lastModes(t, ctx, db.Pool)["mv_workflow_metrics_hourly"]; !strings.HasPrefix(m, "incremental") {
			t.Errorf("step %d (+%s): mode %q; want incremental", i, step.d, m)
		}
		if t.Failed() {
			t.Fatalf("step %d (+%s, clock %s) differs from the oracle", i, step.d, c.Format(time.RFC3339Nano))
		}
	}
}

// TestCellsPerView refreshes one view at a time (migration 011): the hourly
// view's refresh applies the log but computes no cell, so the keys it
// consumed wait in cells_pending for both kinds; mv_workflow_metrics'
// refresh computes the run cells only (its pending keys used and gone, the
// steps' still waiting); after both, every view equals its oracle. A kind
// last computed a window's length ago or more is reset instead of keeping
// keys: all its cells next time.
func TestCellsPerView(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	in := loadEdgeData(t, ctx, db)
	refreshAndCompare(t, ctx, db.Pool)
	refresh := func(view string) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, "CALL metrics.refresh($1, true)", view); err != nil {
			t.Fatalf("refresh of %s: %v", view, err)
		}
	}
	state := func() (pendingRuns, pendingSteps int, runsClock, stepsClock *time.Time) {
		t.Helper()
		if err := db.Pool.QueryRow(ctx, `SELECT
  (SELECT count(*) FROM metrics.cells_pending WHERE kind = 'runs'),
  (SELECT count(*) FROM metrics.cells_pending WHERE kind = 'steps'),
  s.runs_cells_clock, s.steps_cells_clock FROM metrics.rollup_state s`).Scan(&pendingRuns, &pendingSteps, &runsClock, &stepsClock); err != nil {
			t.Fatal(err)
		}
		return
	}
	// A failed run with a step execution, started at the given time.
	addRunWithStep := func(at time.Time) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, `WITH r AS (
  INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
  VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1', 'failed',
          $1::timestamptz, $1::timestamptz + interval '1 minute') RETURNING id, started_at)
INSERT INTO public.workflow_events (run_id, ts, type, payload)
SELECT r.id, r.started_at + x.off, x.type, '{"node":{"id":"pv","type":"http_call"}}'
FROM r, (VALUES (interval '1 second', 'step_started'), (interval '9 seconds', 'step_failed')) x(off, type)`, at); err != nil {
			t.Fatal(err)
		}
	}
	addRunWithStep(clock.Add(-150 * time.Minute)) // in a whole hour of every window
	refresh("mv_workflow_metrics_hourly")
	pr, ps, rc, sc := state()
	if pr == 0 || ps == 0 || rc == nil || sc == nil || !rc.Equal(clock) || !sc.Equal(clock) {
		t.Fatalf("after the hourly view's refresh: pending runs %d, steps %d (want > 0), cell clocks %v %v (want both unchanged at %s)", pr, ps, rc, sc, clock)
	}
	addRunsPool(t, ctx, db.Pool)
	refresh("mv_workflow_metrics")
	if pr, ps, _, _ := state(); pr != 0 || ps == 0 {
		t.Fatalf("after mv_workflow_metrics' refresh: pending runs %d (want 0), steps %d (want > 0)", pr, ps)
	}
	refreshAndCompare(t, ctx, db.Pool)
	if pr, ps, _, _ := state(); pr != 0 || ps != 0 {
		t.Fatalf("after refreshing every view: pending runs %d, steps %d; want none", pr, ps)
	}

	// A month later, only the hourly view: both kinds reset (and no
	// rebuild: the partition for that month is made, empty, first).
	later := clock.Add(721 * time.Hour)
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS public.meshtop_test_events_later PARTITION OF public.workflow_events
FOR VALUES FROM ($$`+time.Date(later.Year(), later.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)+`$$) TO ($$`+later.Add(48*time.Hour).Format(time.RFC3339)+`$$)`); err != nil {
		t.Fatal(err)
	}
	refresh("mv_workflow_metrics_hourly")
	if err := in.SetClock(ctx, &later); err != nil {
		t.Fatal(err)
	}
	addRunWithStep(later.Add(-90 * time.Minute))
	refresh("mv_workflow_metrics_hourly")
	if m := lastModes(t, ctx, db.Pool)["mv_workflow_metrics_hourly"]; !strings.HasPrefix(m, "incremental") {
		t.Errorf("a month later: mode %q; want incremental", m)
	}
	if pr, ps, rc, sc := state(); pr != 0 || ps != 0 || rc != nil || sc != nil {
		t.Fatalf("a month later, after the hourly view's refresh: pending runs %d, steps %d, cell clocks %v %v; want none and NULL", pr, ps, rc, sc)
	}
	refreshAll(t, ctx, db.Pool, "metrics")
	compareAllToLive(t, ctx, db.Pool, later)
}
