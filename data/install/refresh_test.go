package install_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/meshtop/meshtop/data/pgtest"
)

// connect opens a separate session (not from the pool) for tests that need
// several sessions at once.
func connect(t *testing.T, ctx context.Context, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// waitFor polls cond until it is true or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, error)) {
	t.Helper()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitingOnLock reports whether backend pid waits for a lock.
func waitingOnLock(ctx context.Context, c *pgx.Conn, pid uint32) func() (bool, error) {
	return func() (bool, error) {
		var ok bool
		err := c.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_locks WHERE pid = $1 AND NOT granted)`, int(pid)).Scan(&ok)
		return ok, err
	}
}

func checksum(t *testing.T, ctx context.Context, c *pgx.Conn, view string) string {
	t.Helper()
	var s string
	if err := c.QueryRow(ctx, `SELECT md5(coalesce(string_agg(v::text, ',' ORDER BY v::text), '')) FROM metrics.`+view+` v`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

type logRow struct {
	status, state, errText string
	concurrently           *bool
	rows                   *int64
	pid                    int
}

func readLog(t *testing.T, ctx context.Context, c *pgx.Conn, id int64) logRow {
	t.Helper()
	var r logRow
	if err := c.QueryRow(ctx, `SELECT status, state, coalesce(error, ''), "concurrently", rows, pid FROM metrics.refresh_log_v WHERE id = $1`, id).Scan(
		&r.status, &r.state, &r.errText, &r.concurrently, &r.rows, &r.pid); err != nil {
		t.Fatalf("reading log row %d: %v", id, err)
	}
	return r
}

func guardHeld(t *testing.T, ctx context.Context, c *pgx.Conn) int {
	t.Helper()
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.classid = 1835365224`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// addRuns inserts finished runs for w1 in the last hour, so the next refresh
// changes the views.
func addRuns(t *testing.T, ctx context.Context, c *pgx.Conn) {
	t.Helper()
	if _, err := c.Exec(ctx, `INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
SELECT '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1', 'succeeded',
       $1::timestamptz - g * interval '1 second', $1::timestamptz - g * interval '1 second' + interval '7 seconds'
FROM generate_series(1, 5) g`, clock); err != nil {
		t.Fatal(err)
	}
}

func TestRefreshPlainThenConcurrentlyAndNotify(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	listener := connect(t, ctx, db.DSN)
	if _, err := listener.Exec(ctx, "LISTEN meshtop_refresh"); err != nil {
		t.Fatal(err)
	}
	c := connect(t, ctx, db.DSN)
	if _, err := c.Exec(ctx, "SET application_name = 'meshtop-test'"); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := c.QueryRow(ctx, `SELECT metrics.refresh_begin('mv_workflow_metrics')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if r := readLog(t, ctx, c, id); r.status != "running" || r.state != "running" || r.pid != int(c.PgConn().PID()) {
		t.Fatalf("after refresh_begin: %+v", r)
	}
	var status string
	var conc bool
	var rows int64
	if err := c.QueryRow(ctx, `SELECT status, "concurrently", rows FROM metrics.refresh_run($1)`, id).Scan(&status, &conc, &rows); err != nil {
		t.Fatal(err)
	}
	if status != "ok" || conc || rows != 16 {
		t.Fatalf("first refresh: status %s concurrently %v rows %d; want ok, false, 16", status, conc, rows)
	}
	if n := guardHeld(t, ctx, c); n != 0 {
		t.Fatalf("%d guard locks held after refresh_run", n)
	}
	if err := c.QueryRow(ctx, `SELECT metrics.refresh_begin('mv_workflow_metrics')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, `SELECT status, "concurrently" FROM metrics.refresh_run($1)`, id).Scan(&status, &conc); err != nil {
		t.Fatal(err)
	}
	if status != "ok" || !conc {
		t.Fatalf("second refresh: %s concurrently=%v; want ok, true", status, conc)
	}
	// The log row records who and what.
	var by, app string
	var asOf time.Time
	if err := c.QueryRow(ctx, `SELECT triggered_by, application_name, data_as_of FROM metrics.refresh_log WHERE id = $1`, id).Scan(&by, &app, &asOf); err != nil {
		t.Fatal(err)
	}
	if by != "postgres" || app != "meshtop-test" || !asOf.Equal(clock) {
		t.Fatalf("log row: triggered_by %q application_name %q data_as_of %v", by, app, asOf)
	}
	// NOTIFY: running then ok, twice.
	var got []string
	for len(got) < 4 {
		nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := listener.WaitForNotification(nctx)
		cancel()
		if err != nil {
			t.Fatalf("waiting for notifications (got %v): %v", got, err)
		}
		var p struct {
			Schema string `json:"schema"`
			LogID  int64  `json:"log_id"`
			View   string `json:"view"`
			Status string `json:"status"`
			PID    int    `json:"pid"`
		}
		if err := json.Unmarshal([]byte(n.Payload), &p); err != nil {
			t.Fatalf("payload %q: %v", n.Payload, err)
		}
		if n.Channel != "meshtop_refresh" || p.Schema != "metrics" || p.View != "mv_workflow_metrics" || p.PID != int(c.PgConn().PID()) || p.LogID == 0 {
			t.Fatalf("notification %s %q", n.Channel, n.Payload)
		}
		got = append(got, p.Status)
	}
	if strings.Join(got, ",") != "running,ok,running,ok" {
		t.Fatalf("notifications %v", got)
	}
	// refresh_status reports the views.
	var populated bool
	var lag time.Duration
	var last string
	if err := c.QueryRow(ctx, `SELECT populated, rows, lag, last_status FROM metrics.refresh_status WHERE view_name = 'mv_workflow_metrics'`).Scan(&populated, &rows, &lag, &last); err != nil {
		t.Fatal(err)
	}
	if !populated || rows != 16 || lag != 0 || last != "ok" {
		t.Fatalf("refresh_status: populated %v rows %d lag %v last %s", populated, rows, lag, last)
	}
	var unpopulated int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM metrics.refresh_status WHERE NOT populated AND last_status IS NULL`).Scan(&unpopulated); err != nil {
		t.Fatal(err)
	}
	// mv_step_metrics. mv_workflow_metrics_hourly is a plain view over the
	// hourly rollup, which the refresh of mv_workflow_metrics built: it
	// counts as populated.
	if unpopulated != 1 {
		t.Fatalf("views never refreshed = %d; want 1", unpopulated)
	}
	// Unknown views are refused.
	if _, err := c.Exec(ctx, `SELECT metrics.refresh_begin('pg_class')`); err == nil || !strings.Contains(err.Error(), "unknown view") {
		t.Fatalf("refresh_begin(pg_class) = %v", err)
	}
}

// blockView holds a lock on the view that conflicts with REFRESH
// CONCURRENTLY's ExclusiveLock, in an open transaction on its own session:
// the owner's own REFRESH ... CONCURRENTLY, bypassing meshtop's guard
// (LOCK TABLE does not accept materialized views). Roll it back to release.
func blockView(t *testing.T, ctx context.Context, dsn, view string) *pgx.Conn {
	t.Helper()
	blocker := connect(t, ctx, dsn)
	stmt := "BEGIN; REFRESH MATERIALIZED VIEW CONCURRENTLY metrics." + view
	if view == "mv_workflow_metrics_hourly" {
		// A plain view over the hourly rollup: its refresh is the rollup
		// apply, which writes (and so locks) the rollup tables.
		stmt = "BEGIN; LOCK TABLE metrics.rollup_runs_hour IN SHARE MODE"
	}
	if _, err := blocker.Exec(ctx, stmt); err != nil {
		t.Fatal(err)
	}
	return blocker
}

// startBlockedRefresh begins a refresh on its own session and runs it in the
// background; it returns the session, the log id and the channel the
// refresh_run result (status or error) arrives on once the blocker lets go.
func startBlockedRefresh(t *testing.T, ctx context.Context, dsn, view string) (*pgx.Conn, int64, chan result) {
	t.Helper()
	c := connect(t, ctx, dsn)
	var id int64
	if err := c.QueryRow(ctx, `SELECT metrics.refresh_begin($1)`, view).Scan(&id); err != nil {
		t.Fatal(err)
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.err = c.QueryRow(ctx, `SELECT status, coalesce(error, '') FROM metrics.refresh_run($1)`, id).Scan(&r.status, &r.errText)
		done <- r
	}()
	return c, id, done
}

type result struct {
	status, errText string
	err             error
}

func setConfig(t *testing.T, ctx context.Context, c *pgx.Conn, key, value string) {
	t.Helper()
	if _, err := c.Exec(ctx, `UPDATE metrics.config SET value = $2 WHERE key = $1`, key, value); err != nil {
		t.Fatal(err)
	}
}

func TestRefreshGuardSkipAndWait(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAll(t, ctx, db.Pool, "metrics")
	admin := connect(t, ctx, db.DSN)
	setConfig(t, ctx, admin, "lock_timeout", "2min")
	blocker := blockView(t, ctx, db.DSN, "mv_workflow_metrics")
	runner, _, done := startBlockedRefresh(t, ctx, db.DSN, "mv_workflow_metrics")
	waitFor(t, ctx, "the refresh to wait for its lock", waitingOnLock(ctx, admin, runner.PgConn().PID()))

	// A second caller without p_wait is skipped, naming the holder.
	var id int64
	if err := admin.QueryRow(ctx, `SELECT metrics.refresh_begin('mv_workflow_metrics')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	r := readLog(t, ctx, admin, id)
	if r.status != "skipped" || !strings.Contains(r.errText, "already refreshing (pid ") ||
		!strings.Contains(r.errText, strings.TrimSpace(" "+itoa(int(runner.PgConn().PID())))+" since ") {
		t.Fatalf("second caller: %+v", r)
	}
	// Another view is not blocked by this one's guard.
	if err := admin.QueryRow(ctx, `SELECT metrics.refresh_begin('mv_step_metrics')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	var st string
	if err := admin.QueryRow(ctx, `SELECT status FROM metrics.refresh_run($1)`, id).Scan(&st); err != nil || st != "ok" {
		t.Fatalf("refresh of another view: %s %v", st, err)
	}
	// A caller with p_wait waits for the guard.
	waiter := connect(t, ctx, db.DSN)
	waited := make(chan int64, 1)
	go func() {
		var id int64
		if err := waiter.QueryRow(ctx, `SELECT metrics.refresh_begin('mv_workflow_metrics', true)`).Scan(&id); err != nil {
			id = -1
		}
		waited <- id
	}()
	waitFor(t, ctx, "the waiting caller to block on the guard", waitingOnLock(ctx, admin, waiter.PgConn().PID()))
	if _, err := blocker.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if res := <-done; res.err != nil || res.status != "ok" {
		t.Fatalf("blocked refresh: %+v", res)
	}
	wid := <-waited
	if wid < 0 {
		t.Fatal("waiting refresh_begin failed")
	}
	if err := waiter.QueryRow(ctx, `SELECT status FROM metrics.refresh_run($1)`, wid).Scan(&st); err != nil || st != "ok" {
		t.Fatalf("waited refresh: %s %v", st, err)
	}
}

func itoa(n int) string {
	b := []byte{}
	if n == 0 {
		return "0"
	}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestRefreshCancelKeepsContents(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAll(t, ctx, db.Pool, "metrics")
	admin := connect(t, ctx, db.DSN)
	setConfig(t, ctx, admin, "lock_timeout", "2min")
	before := checksum(t, ctx, admin, "mv_workflow_metrics")
	addRuns(t, ctx, admin)

	blocker := blockView(t, ctx, db.DSN, "mv_workflow_metrics")
	runner, id, done := startBlockedRefresh(t, ctx, db.DSN, "mv_workflow_metrics")
	waitFor(t, ctx, "the refresh to wait for its lock", waitingOnLock(ctx, admin, runner.PgConn().PID()))
	var n int
	if err := admin.QueryRow(ctx, `SELECT metrics.refresh_cancel('mv_step_metrics')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("refresh_cancel(other view) = %d, %v; want 0", n, err)
	}
	if err := admin.QueryRow(ctx, `SELECT metrics.refresh_cancel('mv_workflow_metrics')`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("refresh_cancel = %d, %v; want 1", n, err)
	}
	res := <-done
	if res.err != nil || res.status != "failed" || !strings.Contains(res.errText, "canceling statement due to user request") {
		t.Fatalf("cancelled refresh returned %+v; want a failed row", res)
	}
	if r := readLog(t, ctx, admin, id); r.status != "failed" || r.state != "failed" {
		t.Fatalf("log row %+v", r)
	}
	if _, err := blocker.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if got := checksum(t, ctx, admin, "mv_workflow_metrics"); got != before {
		t.Fatal("the cancelled refresh changed the view")
	}
	if n := guardHeld(t, ctx, admin); n != 0 {
		t.Fatalf("%d guard locks held after a cancelled refresh", n)
	}
	// The session is usable and the next refresh works.
	if err := runner.QueryRow(ctx, `SELECT metrics.refresh_begin('mv_workflow_metrics')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	var st string
	if err := runner.QueryRow(ctx, `SELECT status FROM metrics.refresh_run($1)`, id).Scan(&st); err != nil || st != "ok" {
		t.Fatalf("refresh after cancel: %s %v", st, err)
	}
	if got := checksum(t, ctx, admin, "mv_workflow_metrics"); got == before {
		t.Fatal("the refresh after the cancel did not pick up the new runs")
	}
}

func TestRefreshTerminatedIsInterrupted(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAll(t, ctx, db.Pool, "metrics")
	admin := connect(t, ctx, db.DSN)
	setConfig(t, ctx, admin, "lock_timeout", "2min")
	before := checksum(t, ctx, admin, "mv_step_metrics")
	if _, err := admin.Exec(ctx, `DELETE FROM public.workflow_events WHERE type = 'step_failed'`); err != nil {
		t.Fatal(err)
	}
	blocker := blockView(t, ctx, db.DSN, "mv_step_metrics")
	runner, id, done := startBlockedRefresh(t, ctx, db.DSN, "mv_step_metrics")
	waitFor(t, ctx, "the refresh to wait for its lock", waitingOnLock(ctx, admin, runner.PgConn().PID()))
	var ok bool
	if err := admin.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, int(runner.PgConn().PID())).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend: %v %v", ok, err)
	}
	if res := <-done; res.err == nil {
		t.Fatalf("terminated refresh returned %+v", res)
	}
	waitFor(t, ctx, "the terminated backend to exit", func() (bool, error) {
		var gone bool
		err := admin.QueryRow(ctx, `SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)`, int(runner.PgConn().PID())).Scan(&gone)
		return gone, err
	})
	if r := readLog(t, ctx, admin, id); r.status != "running" || r.state != "interrupted" {
		t.Fatalf("log row of the terminated refresh: %+v; want running/interrupted", r)
	}
	var last string
	var running *int64
	if err := admin.QueryRow(ctx, `SELECT last_status, running_log_id FROM metrics.refresh_status WHERE view_name = 'mv_step_metrics'`).Scan(&last, &running); err != nil {
		t.Fatal(err)
	}
	if last != "interrupted" || running != nil {
		t.Fatalf("refresh_status: last_status %s running_log_id %v", last, running)
	}
	if _, err := blocker.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if got := checksum(t, ctx, admin, "mv_step_metrics"); got != before {
		t.Fatal("the terminated refresh changed the view")
	}
	refreshAll(t, ctx, db.Pool, "metrics")
	if got := checksum(t, ctx, admin, "mv_step_metrics"); got == before {
		t.Fatal("the refresh after the termination did not change the view")
	}
}

func TestRefreshLockTimeoutAndStatementTimeout(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAll(t, ctx, db.Pool, "metrics")
	admin := connect(t, ctx, db.DSN)
	setConfig(t, ctx, admin, "lock_timeout", "100ms")
	blocker := blockView(t, ctx, db.DSN, "mv_workflow_metrics_hourly")
	_ = blocker
	c := connect(t, ctx, db.DSN)
	var id int64
	if err := c.QueryRow(ctx, `SELECT metrics.refresh_begin('mv_workflow_metrics_hourly')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	var st, msg string
	if err := c.QueryRow(ctx, `SELECT status, error FROM metrics.refresh_run($1)`, id).Scan(&st, &msg); err != nil {
		t.Fatal(err)
	}
	if st != "failed" || !strings.Contains(msg, "lock timeout") || !strings.Contains(msg, "55P03") {
		t.Fatalf("refresh behind a lock: %s %q; want failed with a lock timeout", st, msg)
	}
	// statement_timeout set by the caller around refresh_run also ends in a
	// failed row (the caller sets it; it cannot be set inside a function).
	// The blocker holds the view, so the timeout fires while the REFRESH
	// waits for it — unless it fires even before refresh_run entered its
	// handler (planning, reading its row: on a loaded machine that can take
	// 150 ms). Then refresh_run raises the error, as documented, and the
	// caller records it with refresh_abort; that is not what this checks, so
	// it is tried again with twice the time.
	setConfig(t, ctx, admin, "lock_timeout", "2min")
	for timeout := 150 * time.Millisecond; ; timeout *= 2 {
		if err := c.QueryRow(ctx, `SELECT metrics.refresh_begin('mv_workflow_metrics_hourly')`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, `SELECT set_config('statement_timeout', $1, false)`, strconv.FormatInt(timeout.Milliseconds(), 10)); err != nil {
			t.Fatal(err)
		}
		err := c.QueryRow(ctx, `SELECT status, error FROM metrics.refresh_run($1)`, id).Scan(&st, &msg)
		if _, rerr := c.Exec(ctx, `RESET statement_timeout`); rerr != nil {
			t.Fatal(rerr)
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "57014" && timeout < 5*time.Second {
			t.Logf("statement_timeout %s fired before refresh_run's handler; again", timeout)
			if _, err := c.Exec(ctx, `SELECT metrics.refresh_abort($1, 'test: timed out early')`, id); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	if st != "failed" || !strings.Contains(msg, "statement timeout") {
		t.Fatalf("refresh under statement_timeout: %s %q", st, msg)
	}
	if n := guardHeld(t, ctx, admin); n != 0 {
		t.Fatalf("%d guard locks held after failed refreshes", n)
	}
}

func TestRefreshLogPruned(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	c := connect(t, ctx, db.DSN)
	if _, err := c.Exec(ctx, `INSERT INTO metrics.refresh_log (view_name, started_at, status) VALUES
  ('mv_step_metrics', now() - interval '31 days', 'ok'), ('mv_step_metrics', now() - interval '29 days', 'ok')`); err != nil {
		t.Fatal(err)
	}
	refreshAll(t, ctx, db.Pool, "metrics")
	var old, kept int
	if err := c.QueryRow(ctx, `SELECT count(*) FILTER (WHERE started_at < now() - interval '30 days'),
  count(*) FILTER (WHERE started_at < now() - interval '28 days') FROM metrics.refresh_log`).Scan(&old, &kept); err != nil {
		t.Fatal(err)
	}
	if old != 0 || kept != 1 {
		t.Fatalf("after refresh: %d rows older than 30 days (want 0), %d older than 28 days (want 1)", old, kept)
	}
}

// TestCallRefreshCommands finds out which commands a scheduler may use:
// CALL refresh() works on its own; prefixed with SET statement_timeout in
// the same simple-query string (what pg_cron sends) the procedure's COMMIT
// is refused, because the string runs as one implicit transaction.
func TestCallRefreshCommands(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	c := connect(t, ctx, db.DSN)
	if _, err := c.Exec(ctx, `CALL metrics.refresh()`); err != nil {
		t.Fatalf("CALL refresh(): %v", err)
	}
	var ok int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM metrics.refresh_log WHERE status = 'ok'`).Scan(&ok); err != nil || ok != 3 {
		t.Fatalf("ok refreshes after CALL = %d, %v", ok, err)
	}
	_, err := c.Exec(ctx, `SET statement_timeout = '10min'; CALL metrics.refresh()`)
	t.Logf("SET statement_timeout = '10min'; CALL metrics.refresh() -> %v", err)
	if err == nil || !strings.Contains(err.Error(), "invalid transaction termination") {
		t.Fatalf("multi-statement CALL = %v; expected invalid transaction termination", err)
	}
	// Inside an explicit transaction block CALL refresh() cannot commit either.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec(ctx, `CALL metrics.refresh()`)
	_ = tx.Rollback(ctx)
	if err == nil {
		t.Fatal("CALL refresh() inside BEGIN succeeded")
	}
	var pgErr interface{ SQLState() string }
	if !errors.As(err, &pgErr) || pgErr.SQLState() != "2D000" {
		t.Fatalf("CALL inside a transaction: %v", err)
	}
}

// A refresh holding its guard longer than max_refresh_duration is cancelled
// by the next refresh_begin of that view: the bound for pg_cron's CALL,
// which cannot carry a statement_timeout. The overdue refresh logs 'failed',
// the view keeps its contents, and the call after that runs.
func TestOverdueRefreshCancelledByNextCaller(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAll(t, ctx, db.Pool, "metrics")
	admin := connect(t, ctx, db.DSN)
	before := checksum(t, ctx, admin, "mv_workflow_metrics")
	setConfig(t, ctx, admin, "lock_timeout", "2min")
	blocker := blockView(t, ctx, db.DSN, "mv_workflow_metrics")
	defer blocker.Exec(ctx, "ROLLBACK")
	runner, runID, done := startBlockedRefresh(t, ctx, db.DSN, "mv_workflow_metrics")
	waitFor(t, ctx, "the refresh to wait for its lock", waitingOnLock(ctx, admin, runner.PgConn().PID()))

	// Not overdue yet: the second caller only skips.
	var id int64
	if err := admin.QueryRow(ctx, `SELECT metrics.refresh_begin('mv_workflow_metrics')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if r := readLog(t, ctx, admin, id); r.status != "skipped" || strings.Contains(r.errText, "cancelled") {
		t.Fatalf("caller before the limit: %+v", r)
	}
	setConfig(t, ctx, admin, "max_refresh_duration", "0 seconds")
	if err := admin.QueryRow(ctx, `SELECT metrics.refresh_begin('mv_workflow_metrics')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if r := readLog(t, ctx, admin, id); r.status != "skipped" || !strings.Contains(r.errText, "cancelled it: running longer than max_refresh_duration") {
		t.Fatalf("caller after the limit: %+v", r)
	}
	res := <-done
	if res.err != nil || res.status != "failed" || !strings.Contains(res.errText, "canceling statement due to user request") {
		t.Fatalf("overdue refresh: %+v", res)
	}
	if r := readLog(t, ctx, admin, runID); r.status != "failed" {
		t.Fatalf("overdue refresh's log row: %+v", r)
	}
	if _, err := blocker.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if after := checksum(t, ctx, admin, "mv_workflow_metrics"); after != before {
		t.Fatal("the cancelled refresh changed the view")
	}
	setConfig(t, ctx, admin, "max_refresh_duration", "30 minutes")
	if err := admin.QueryRow(ctx, `SELECT metrics.refresh_begin('mv_workflow_metrics')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	var st string
	if err := admin.QueryRow(ctx, `SELECT status FROM metrics.refresh_run($1)`, id).Scan(&st); err != nil || st != "ok" {
		t.Fatalf("next refresh: %s %v", st, err)
	}
}

// The status view takes no lock on the views: while a plain refresh (the
// first one) holds ACCESS EXCLUSIVE on a view, a dashboard polling
// refresh_status must not queue behind it.
func TestStatusReadableDuringPlainRefresh(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAll(t, ctx, db.Pool, "metrics")
	holder := connect(t, ctx, db.DSN)
	if _, err := holder.Exec(ctx, "BEGIN; REFRESH MATERIALIZED VIEW metrics.mv_step_metrics"); err != nil {
		t.Fatal(err)
	}
	defer holder.Exec(ctx, "ROLLBACK")
	reader := connect(t, ctx, db.DSN)
	if _, err := reader.Exec(ctx, "SET lock_timeout = '1s'"); err != nil {
		t.Fatal(err)
	}
	var n int
	var size int64
	if err := reader.QueryRow(ctx, `SELECT count(*), sum(size_bytes)::bigint FROM metrics.refresh_status`).Scan(&n, &size); err != nil {
		t.Fatalf("refresh_status during a plain refresh: %v", err)
	}
	if n != 3 || size <= 0 {
		t.Fatalf("refresh_status: %d rows, %d bytes", n, size)
	}
}

// TestRefreshBesideARunningApply: a refresh that finds the rollup's apply
// lock held goes on with the cells as they are, which are those of its
// view's last refresh (each apply computes only its own view's kind of
// cell), and logs their clock, not its own, as the data's age. The clock is
// now() here, so every refresh has a later one.
func TestRefreshBesideARunningApply(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	in := loadEdgeData(t, ctx, db)
	if err := in.SetClock(ctx, nil); err != nil {
		t.Fatal(err)
	}
	refreshAll(t, ctx, db.Pool, "metrics")
	var stepsClock time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT steps_cells_clock FROM metrics.rollup_state`).Scan(&stepsClock); err != nil {
		t.Fatal(err)
	}
	holder := connect(t, ctx, db.DSN)
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock(1835365224, hashtext('metrics.rollup'))`); err != nil {
		t.Fatal(err)
	}
	admin := connect(t, ctx, db.DSN)
	var id int64
	if err := admin.QueryRow(ctx, `SELECT metrics.refresh_begin('mv_step_metrics')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	var st string
	var begun, asOf time.Time
	if err := admin.QueryRow(ctx, `SELECT status, started_at, data_as_of FROM metrics.refresh_run($1)`, id).Scan(&st, &begun, &asOf); err != nil || st != "ok" {
		t.Fatalf("refresh beside a running apply: %s %v", st, err)
	}
	if !asOf.Equal(stepsClock) {
		t.Errorf("refresh beside a running apply: data_as_of %s; want the step cells' clock %s (the refresh began at %s)", asOf, stepsClock, begun)
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock(1835365224, hashtext('metrics.rollup'))`); err != nil {
		t.Fatal(err)
	}
	// Once it can apply, the refresh computes its cells and logs its own clock.
	if err := admin.QueryRow(ctx, `SELECT metrics.refresh_begin('mv_step_metrics')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if err := admin.QueryRow(ctx, `SELECT status, data_as_of FROM metrics.refresh_run($1)`, id).Scan(&st, &asOf); err != nil || st != "ok" {
		t.Fatalf("refresh after the apply: %s %v", st, err)
	}
	if !asOf.After(stepsClock) {
		t.Errorf("refresh after the apply: data_as_of %s; want after the earlier step cells' clock %s", asOf, stepsClock)
	}
}
