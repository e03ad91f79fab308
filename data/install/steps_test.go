package install_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/pgtest"
)

// stepWriter writes runs and step events the way MeshHook's workers do
// (docs/METRICS.md): every insert its own statement, events through the
// parent workflow_events, each at a given offset from its run's start.
type stepWriter struct {
	t    *testing.T
	ctx  context.Context
	pool *pgxpool.Pool
}

func (w stepWriter) exec(sql string, args ...any) {
	w.t.Helper()
	if _, err := w.pool.Exec(w.ctx, sql, args...); err != nil {
		w.t.Fatalf("%v\n%s", err, sql)
	}
}

// run inserts a running run of w2 started at the given time.
func (w stepWriter) run(id string, started time.Time) {
	w.t.Helper()
	w.exec(`INSERT INTO public.workflow_runs (id, project_id, workflow_id, status, started_at)
VALUES ($1, '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b2', 'running', $2)`, id, started)
}

// event inserts one event of node rt at started_at + after.
func (w stepWriter) event(run string, after time.Duration, typ, payload string) {
	w.t.Helper()
	w.exec(`INSERT INTO public.workflow_events (run_id, ts, type, payload)
SELECT r.id, r.started_at + $2 * interval '1 microsecond', $3, $4::jsonb FROM public.workflow_runs r WHERE r.id = $1`,
		run, after.Microseconds(), typ, payload)
}

const rtNode = `{"id":"rt","type":"http_call"}`

func (w stepWriter) started(run string, after time.Duration) {
	w.t.Helper()
	w.event(run, after, "step_started", `{"node":`+rtNode+`}`)
}

// attempt writes one attempt of node rt: http_attempted with status (none
// when status is 0: a network error), then step_succeeded for a 2xx or
// step_failed with the attempt number.
func (w stepWriter) attempt(run string, after time.Duration, n, status int) {
	w.t.Helper()
	if status != 0 {
		w.event(run, after, "http_attempted", `{"node":`+rtNode+`,"status":`+itoa(status)+`}`)
	}
	if status >= 200 && status < 300 {
		w.event(run, after+time.Millisecond, "step_succeeded", `{"node":`+rtNode+`,"next":[],"response":"{\"id\":1}"}`)
		return
	}
	w.event(run, after+time.Millisecond, "step_failed", `{"node":`+rtNode+`,"attempt":`+itoa(n)+`,"error":"Error: HTTP `+itoa(status)+`"}`)
}

// rtCells returns node rt's executions and failures per window.
func rtCells(t *testing.T, ctx context.Context, pool *pgxpool.Pool) map[string][2]int64 {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT "window", executions, failures FROM metrics.mv_step_metrics
WHERE workflow_id = '00000000-0000-0000-0000-0000000000b2' AND node_id = 'rt'`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int64{}
	for rows.Next() {
		var w string
		var e, f int64
		if err := rows.Scan(&w, &e, &f); err != nil {
			t.Fatal(err)
		}
		out[w] = [2]int64{e, f}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func verifyDrift(t *testing.T, ctx context.Context, pool *pgxpool.Pool) []string {
	t.Helper()
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT kind || ' ' || coalesce(node_id, '') || ' ' || field || ' ' || coalesce(stored, 'null') || ' ' || coalesce(recomputed, 'null') FROM metrics.verify(720)`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStepRetriesAcrossRefreshes: a step's attempts arrive across
// incremental refreshes, as MeshHook's HTTP executor writes them — attempt
// 1 failed before a refresh, the retries and the final outcome after it,
// the run's end later still — in runs at every part of the windows (the raw
// partial hours at both ends, whole hours, whole days). After each refresh
// every step cell of every window equals the oracle recomputed from the raw
// events (live_step_metrics.sql: counts exact, percentiles within 1%), a
// pending attempt is no execution, and verify finds no drift.
func TestStepRetriesAcrossRefreshes(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	in := loadEdgeData(t, ctx, db)
	refreshAndCompare(t, ctx, db.Pool)
	w := stepWriter{t: t, ctx: ctx, pool: db.Pool}
	const (
		a = "00000000-0000-0000-0000-00000000aa01" // 30 min ago: raw in 1h, a whole hour of 24h
		b = "00000000-0000-0000-0000-00000000aa02" // 50 hours ago: a whole day of 7d and 30d
		c = "00000000-0000-0000-0000-00000000aa03" // just inside 24h: its raw lower edge
		d = "00000000-0000-0000-0000-00000000aa04" // the hour holding the clock
		e = "00000000-0000-0000-0000-00000000aa05" // its outcome comes after the (pinned) clock
	)
	w.run(a, clock.Add(-30*time.Minute))
	w.run(b, clock.Add(-50*time.Hour))
	w.run(c, clock.Add(-24*time.Hour+time.Second))
	w.run(d, clock.Add(-5*time.Minute))
	for _, r := range []string{a, b, c, d} {
		w.started(r, 100*time.Millisecond)
		w.attempt(r, 200*time.Millisecond, 1, 503)
	}
	check := func(step string, want map[string][2]int64, at time.Time) {
		t.Helper()
		if m := lastModes(t, ctx, db.Pool)["mv_workflow_metrics_hourly"]; !strings.HasPrefix(m, "incremental") {
			t.Errorf("%s: refresh mode %q; want incremental", step, m)
		}
		compareAllToLive(t, ctx, db.Pool, at)
		got := rtCells(t, ctx, db.Pool)
		for win, wv := range want {
			if got[win] != wv {
				t.Errorf("%s: rt %s = %v executions/failures; want %v", step, win, got[win], wv)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: rt in windows %v; want %v", step, got, want)
		}
		if t.Failed() {
			t.FailNow()
		}
	}

	// Attempt 1 failed everywhere, the runs still running: all pending.
	refreshAndCompare(t, ctx, db.Pool)
	check("attempt 1 failed", map[string][2]int64{}, clock)

	// a succeeds at its third attempt, d at its second; b and c retry
	// and fail again (pending still).
	w.attempt(a, 700*time.Millisecond, 2, 503)
	w.attempt(a, 1700*time.Millisecond, 3, 200)
	w.attempt(d, 700*time.Millisecond, 2, 204)
	w.attempt(b, 700*time.Millisecond, 2, 502)
	w.attempt(b, 1700*time.Millisecond, 3, 0)
	w.attempt(c, 700*time.Millisecond, 2, 429)
	refreshAndCompare(t, ctx, db.Pool)
	check("retries succeeded", map[string][2]int64{
		"1h": {2, 0}, "24h": {2, 0}, "7d": {2, 0}, "30d": {2, 0},
	}, clock)

	// b's fifth attempt fails (final, the run still running); c's run is
	// canceled with no event (final: the run ended); a's run succeeds.
	w.attempt(b, 3700*time.Millisecond, 4, 500)
	w.attempt(b, 7700*time.Millisecond, 5, 500)
	w.exec(`UPDATE public.workflow_runs SET status = 'canceled', finished_at = started_at + interval '5 seconds' WHERE id = $1`, c)
	w.exec(`UPDATE public.workflow_runs SET status = 'succeeded', finished_at = started_at + interval '3 seconds' WHERE id = $1`, a)
	refreshAndCompare(t, ctx, db.Pool)
	check("final failures", map[string][2]int64{
		"1h": {2, 0}, "24h": {3, 1}, "7d": {4, 2}, "30d": {4, 2},
	}, clock)

	// e: attempt 1 fails before the clock, the retry succeeds after it:
	// pending at the clock, a success once the clock passes it (and c,
	// just inside 24h, leaves that window).
	w.run(e, clock.Add(-20*time.Minute))
	w.started(e, time.Second)
	w.attempt(e, 2*time.Second, 1, 502)
	w.attempt(e, 20*time.Minute+30*time.Second, 2, 200)
	refreshAndCompare(t, ctx, db.Pool)
	check("outcome after the clock", map[string][2]int64{
		"1h": {2, 0}, "24h": {3, 1}, "7d": {4, 2}, "30d": {4, 2},
	}, clock)
	later := clock.Add(time.Minute)
	if err := in.SetClock(ctx, &later); err != nil {
		t.Fatal(err)
	}
	refreshAll(t, ctx, db.Pool, "metrics")
	check("the clock past the outcome", map[string][2]int64{
		"1h": {3, 0}, "24h": {3, 0}, "7d": {5, 2}, "30d": {5, 2},
	}, later)
	if d := verifyDrift(t, ctx, db.Pool); len(d) != 0 {
		t.Errorf("verify: %v", d)
	}
}
