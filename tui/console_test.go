package tui_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

// openConsole starts the dashboard on a refreshed fixture and switches to
// the refresh console.
func openConsole(t *testing.T, e env) *teatest.TestModel {
	t.Helper()
	tm := start(t, options(normalised{e.st}, nil))
	waitText(t, tm, "data as of")
	press(tm, "tab")
	waitText(t, tm, "Recent", "schedule:")
	return tm
}

// lockView holds a SHARE UPDATE EXCLUSIVE lock on a view — an ANALYZE in
// a transaction left open, as a DBA might — on its own connection: reads go
// on, a concurrent REFRESH waits. It returns a function that releases it.
func lockView(t *testing.T, pool *pgxpool.Pool, view string) func() {
	t.Helper()
	ctx := ctxT(t)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var tx pgx.Tx
	released := false
	release := func() {
		if !released {
			released = true
			if tx != nil {
				_ = tx.Rollback(ctx)
			}
			conn.Release()
		}
	}
	t.Cleanup(release)
	if tx, err = conn.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, blockerStmt(view)); err != nil {
		t.Fatal(err)
	}
	return release
}

// blockerStmt is a statement that, left open in a transaction, makes a
// refresh of view wait for a lock without blocking readers: ANALYZE on a
// materialized view; the hourly view is a plain view over the hourly rollup,
// which its refresh writes.
func blockerStmt(view string) string {
	if view == "mv_workflow_metrics_hourly" {
		return "lock table metrics.rollup_runs_hour in share mode"
	}
	return "analyze metrics." + view
}

// firstView is the view the console selects first.
const firstView = "mv_workflow_metrics_hourly"

// TestGoldenConsoleDone: r refreshes the selected view and shows the result.
func TestGoldenConsoleDone(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewDatabase(t), true)
	tm := openConsole(t, e)
	press(tm, "r")
	// The result, and the log row of this refresh (id 4) read back finished,
	// and the view's status read after it finished (its second recent
	// duration): the views and the log are separate queries of a read, so
	// one read may see the log after the refresh and the views before it.
	waitText(t, tm, "done in", fmt.Sprintf("%-6d %-26s %s %8s", 4, firstView, "03-10 12:26:00", "125ms"), "▄█")
	requireGolden(t, quitAndView(t, tm))
}

// TestGoldenConsoleWaitingForLock: a refresh blocked by another session's
// lock shows who blocks it; when the lock goes, the refresh completes.
func TestGoldenConsoleWaitingForLock(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewDatabase(t), true)
	exec(t, e.db, "update metrics.config set value = '60s' where key = 'lock_timeout'")
	release := lockView(t, e.db.Pool, firstView)
	tm := openConsole(t, e)
	press(tm, "r")
	// The wait comes from the watch's poll of running refreshes, the log row
	// of the refresh (id 4, running) from a console read: wait for both.
	waitText(t, tm, "waiting for a lock", "blocked by pid", "— running")
	view := quitAndView(t, tm)
	if !strings.Contains(view, blockerStmt(firstView)) {
		t.Fatalf("the blocker's query is not shown:\n%s", view)
	}
	requireGolden(t, view)
	release()
}

// TestGoldenConsoleWaitingThenDone: once the blocking lock is released the
// watched refresh finishes by itself.
func TestConsoleWaitingThenDone(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewDatabase(t), true)
	exec(t, e.db, "update metrics.config set value = '60s' where key = 'lock_timeout'")
	release := lockView(t, e.db.Pool, firstView)
	tm := openConsole(t, e)
	press(tm, "r")
	waitText(t, tm, "waiting for a lock")
	release()
	waitText(t, tm, "done in")
	view := quitAndView(t, tm)
	if !strings.Contains(view, "✓ "+firstView) {
		t.Fatalf("no completed refresh shown:\n%s", view)
	}
}

// TestGoldenConsoleFailed: a refresh that cannot get its lock within
// lock_timeout fails, and the console says why.
func TestGoldenConsoleFailed(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewDatabase(t), true)
	exec(t, e.db, "update metrics.config set value = '200ms' where key = 'lock_timeout'")
	release := lockView(t, e.db.Pool, firstView)
	tm := openConsole(t, e)
	press(tm, "r")
	// The outcome comes with the refresh's answer; the log row (id 4) and
	// the view's status with a console read after it: wait for all three.
	waitText(t, tm, "failed after", "— failed", "250ms failed")
	release() // the reads that follow the refresh must not wait for it
	view := quitAndView(t, tm)
	if !strings.Contains(view, "lock timeout") {
		t.Fatalf("the failure's reason is not shown:\n%s", view)
	}
	requireGolden(t, view)
}

// TestGoldenConsoleRunningElsewhere: a refresh begun by another connection
// appears without a key press (LISTEN/NOTIFY), shown as running.
func TestGoldenConsoleRunningElsewhere(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewDatabase(t), true)
	tm := openConsole(t, e)
	ctx := ctxT(t)
	waitListening(t, e)
	conn, err := e.db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// The way a refresh starts: the guard is taken, a 'running' row logged
	// and NOTIFY sent; this session then holds the guard.
	if _, err := conn.Exec(ctx, "select metrics.refresh_begin('mv_step_metrics')"); err != nil {
		t.Fatal(err)
	}
	// The running banner and the log come from separate reads: wait for
	// both, the log's row of the running refresh ("—" for duration and
	// rows) included.
	waitText(t, tm, "⟳ mv_step_metrics", "— running")
	view := quitAndView(t, tm)
	if !strings.Contains(view, "running") {
		t.Fatalf("the refresh started elsewhere is not shown as running:\n%s", view)
	}
	requireGolden(t, view)
}

// waitListening waits until the dashboard's LISTEN session is registered, so
// a NOTIFY sent now reaches it. LISTEN takes effect when its transaction
// commits: pg_stat_activity shows the statement from the moment it starts,
// so only an idle session whose last statement was LISTEN is listening (a
// NOTIFY committed while it is still active is not delivered to it).
func waitListening(t *testing.T, e env) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		err := e.db.Pool.QueryRow(ctxT(t), `select count(*) from pg_stat_activity
			where datname = current_database() and query ilike 'listen%' and state = 'idle'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the dashboard never started listening")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsoleShowsCronSchedule: with pg_cron the console shows meshtop's
// job, its interval and its next run — to the owner, and to a login with
// meshtop_reader alone, which has no privilege on schema cron (issue 23.1:
// it stayed at "loading refresh status…" with permission denied).
func TestConsoleShowsCronSchedule(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewCronDatabase(t), true)
	exec(t, e.db, "create extension pg_cron")
	sc, err := e.st.SetSchedule(ctxT(t), 5*time.Minute)
	if err != nil {
		t.Fatalf("scheduling: %v", err)
	}
	t.Cleanup(func() { _ = e.st.Unschedule(context.Background()) })
	tm := openConsole(t, e)
	view := quitAndView(t, tm)
	want := fmt.Sprintf("schedule: pg_cron job %d, every 5m (%s)", sc.JobID, sc.Schedule)
	if !strings.Contains(view, want) || !strings.Contains(view, "next run") {
		t.Fatalf("want %q and the next run in:\n%s", want, view)
	}

	rpool, err := pgxpool.New(ctxT(t), e.db.LoginRole(t, "tui_reader", "meshtop_reader"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rpool.Close)
	tm = openConsole(t, env{db: e.db, st: store.New(rpool, nil, store.Options{Schema: schema})})
	view = quitAndView(t, tm)
	if !strings.Contains(view, want) || strings.Contains(view, "permission denied") || strings.Contains(view, "loading") {
		t.Fatalf("as a reader: want %q and no error in:\n%s", want, view)
	}
}

// TestConsoleCancelShowsCanceled: x on a refresh waiting for a lock
// cancels it, and the console calls it canceled — in the outcome, the
// view's status and the log — not a red failure (issue 14.12).
func TestConsoleCancelShowsCanceled(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewDatabase(t), true)
	exec(t, e.db, "update metrics.config set value = '60s' where key = 'lock_timeout'")
	lockView(t, e.db.Pool, firstView)
	tm := openConsole(t, e)
	press(tm, "r")
	waitText(t, tm, "waiting for a lock")
	press(tm, "x", "y")
	waitText(t, tm, "canceled after", "canceled by postgres")
	view := quitAndView(t, tm)
	if strings.Contains(view, "✗") || strings.Contains(view, " failed ") {
		t.Fatalf("a deliberate cancel shows as a failure:\n%s", view)
	}
}

// TestConsoleLogSelectAndExpand: ] and [ move a visible selection through
// the refresh log, enter opens the selected row with who ran it, from
// which application, and its whole error (issue 14.13).
func TestConsoleLogSelectAndExpand(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewDatabase(t), true)
	exec(t, e.db, "update metrics.refresh_log set error = 'a long error text that the log column cuts: '||repeat('detail ', 30)||'END OF ERROR' where id = 2")
	tm := openConsole(t, e)
	press(tm, "]", "]", "[", "enter")
	waitText(t, tm, "END OF ERROR", "by role postgres")
	view := quitAndView(t, tm)
	if !strings.Contains(view, "▸ 2 ") {
		t.Fatalf("log row 2 is not marked selected:\n%s", view)
	}
	if strings.Contains(view, "▸ 3 ") || strings.Contains(view, "▸ 1 ") {
		t.Fatalf("another log row is marked selected:\n%s", view)
	}
}
