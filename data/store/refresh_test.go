package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/store"
)

// guardLocks counts meshtop guard locks (advisory, classid 'mesh') held in
// the database.
func guardLocks(t *testing.T, e env) int {
	t.Helper()
	var n int
	err := e.db.Pool.QueryRow(ctxT(t), `select count(*) from pg_locks l join pg_database d on d.oid = l.database
		where d.datname = current_database() and l.locktype = 'advisory' and l.classid = 1835365224`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitingGuardsSQL counts this database's sessions waiting for a guard lock
// (pg_locks is cluster-wide: the parallel tests refresh in other databases).
const waitingGuardsSQL = `select count(*) from pg_locks l join pg_database d on d.oid = l.database
	where d.datname = current_database() and l.locktype = 'advisory' and not l.granted and l.classid = 1835365224`

// waitFor polls cond every 50 ms until it holds or two minutes pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRefreshSkippedAndWait(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t)
	refreshAll(t, e.st)

	// Another session takes the guard of mv_step_metrics the way a refresh
	// does, and keeps it.
	holder, err := e.db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()
	var holderID int64
	var holderPID int32
	if err := holder.QueryRow(ctx, `select metrics.refresh_begin('mv_step_metrics'), pg_backend_pid()`).Scan(&holderID, &holderPID); err != nil {
		t.Fatal(err)
	}

	res, err := e.st.Refresh(ctx, store.ViewSteps, false)
	if err != nil || len(res) != 1 {
		t.Fatalf("Refresh = %+v, %v", res, err)
	}
	r := res[0]
	if r.Status != "skipped" || r.HolderPID != holderPID || r.HolderSince == nil || !strings.Contains(r.Error.Raw(), "already refreshing") {
		t.Errorf("skipped result = %+v; want holder pid %d with its start time", r, holderPID)
	}

	// All views: the others still refresh.
	res, err = e.st.Refresh(ctx, "", false)
	if err != nil || len(res) != 3 || res[0].Status != "ok" || res[1].Status != "ok" || res[2].Status != "skipped" {
		t.Errorf("Refresh all while steps is held = %+v, %v", res, err)
	}

	// wait=true blocks until the holder finishes.
	type out struct {
		res []store.RefreshResult
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := e.st.Refresh(ctx, store.ViewSteps, true)
		done <- out{res, err}
	}()
	waitFor(t, "the waiting refresh to block on the guard", func() bool {
		var n int
		_ = e.db.Pool.QueryRow(ctx, waitingGuardsSQL).Scan(&n)
		return n == 1
	})
	select {
	case o := <-done:
		t.Fatalf("wait=true returned while the guard was held: %+v %v", o.res, o.err)
	default:
	}
	// A waiter whose context is cancelled gives up without a log row.
	wctx, wcancel := context.WithCancel(ctx)
	werr := make(chan error, 1)
	go func() {
		_, err := e.st.Refresh(wctx, store.ViewSteps, true)
		werr <- err
	}()
	waitFor(t, "the second waiter to block on the guard", func() bool {
		var n int
		_ = e.db.Pool.QueryRow(ctx, waitingGuardsSQL).Scan(&n)
		return n == 2
	})
	var rowsBefore int
	_ = e.db.Pool.QueryRow(ctx, `select count(*) from metrics.refresh_log`).Scan(&rowsBefore)
	wcancel()
	if err := <-werr; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: err = %v, want context.Canceled", err)
	}
	var rowsAfter int
	_ = e.db.Pool.QueryRow(ctx, `select count(*) from metrics.refresh_log`).Scan(&rowsAfter)
	if rowsAfter != rowsBefore {
		t.Errorf("a cancelled waiter wrote %d log rows", rowsAfter-rowsBefore)
	}

	var st string
	if err := holder.QueryRow(ctx, `select status from metrics.refresh_run($1)`, holderID).Scan(&st); err != nil || st != "ok" {
		t.Fatalf("holder's refresh_run: %s %v", st, err)
	}
	o := <-done
	if o.err != nil || len(o.res) != 1 || o.res[0].Status != "ok" || o.res[0].Rows == 0 {
		t.Errorf("waiting Refresh = %+v, %v", o.res, o.err)
	}
	if n := guardLocks(t, e); n != 0 {
		t.Errorf("%d guard locks held after the refreshes", n)
	}
}

// blockRefresh holds an ACCESS EXCLUSIVE lock on public.workflow_runs, which
// every view reads (LOCK TABLE refuses materialized views), in an open
// transaction, the way a long migration would; it returns the holder's pid
// and a function releasing it.
func blockRefresh(t *testing.T, e env) (int32, func()) {
	t.Helper()
	ctx := ctxT(t)
	tx, err := e.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	var pid int32
	if err := tx.QueryRow(ctx, `select pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `lock table public.workflow_runs in access exclusive mode`); err != nil {
		t.Fatalf("locking workflow_runs: %v", err)
	}
	return pid, func() { _ = tx.Rollback(context.Background()) }
}

// checksum of a view's contents.
func checksum(t *testing.T, e env, view string) string {
	t.Helper()
	var s string
	if err := e.db.Pool.QueryRow(ctxT(t), `select md5(string_agg(v::text, ',' order by v::text)) from metrics.`+view+` v`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunningWaitingForLockThenContextCancelled(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t)
	refreshAll(t, e.st)
	if _, err := e.db.Pool.Exec(ctx, `update metrics.config set value = '5min' where key = 'lock_timeout'`); err != nil {
		t.Fatal(err)
	}
	before := checksum(t, e, store.ViewMetrics)
	// New runs, so a refresh that went through would change the view.
	if _, err := e.db.Pool.Exec(ctx, `insert into public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
		select project_id, workflow_id, 'failed', $1::timestamptz - interval '10 minutes', $1::timestamptz - interval '9 minutes'
		from public.workflow_runs limit 50`, anchor); err != nil {
		t.Fatal(err)
	}
	blocker, release := blockRefresh(t, e)
	defer release()

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type out struct {
		res []store.RefreshResult
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := e.st.Refresh(rctx, store.ViewMetrics, false)
		done <- out{res, err}
	}()

	var running []store.RunningRefresh
	waitFor(t, "Running to show the refresh waiting for the lock", func() bool {
		var err error
		running, err = e.st.Running(ctx)
		if err != nil {
			t.Fatalf("Running: %v", err)
		}
		// Wait for the blocker itself: on the way the refresh may queue
		// briefly behind another lock (autovacuum analysing the view it is
		// about to lock), which is not the wait this test is about.
		return len(running) == 1 && running[0].WaitingForLock &&
			slices.ContainsFunc(running[0].BlockedBy, func(b store.Blocker) bool { return b.PID == blocker })
	})
	r := running[0]
	b := r.BlockedBy[slices.IndexFunc(r.BlockedBy, func(b store.Blocker) bool { return b.PID == blocker })]
	if r.View != store.ViewMetrics || r.PID == 0 ||
		!strings.Contains(strings.ToLower(b.Query.Raw()), "lock table") || b.Age <= 0 {
		t.Errorf("Running = %+v; want blocked by pid %d running LOCK TABLE", r, blocker)
	}
	// A reader without pg_read_all_stats sees the wait through pg_locks and
	// the blocker's pid, but not its query.
	reader := store.New(loginPool(t, e.db, e.db.Name+"_rdr", store.RoleReader), nil, store.Options{})
	rr, err := reader.Running(ctx)
	if err != nil || len(rr) != 1 || !rr[0].WaitingForLock ||
		!slices.ContainsFunc(rr[0].BlockedBy, func(b store.Blocker) bool { return b.PID == blocker && b.Query.Is("<insufficient privilege>") }) {
		t.Errorf("reader's Running = %+v, %v; want waiting, blocked by %d with a hidden query", rr, err, blocker)
	}
	vs, err := e.st.Views(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if vs[1].Running == nil || vs[1].Running.PID != r.PID || vs[1].LastStatus != "running" {
		t.Errorf("Views()[1] = %+v; want running pid %d", vs[1], r.PID)
	}

	cancel()
	o := <-done
	if !errors.Is(o.err, context.Canceled) || len(o.res) != 1 || o.res[0].Status != "failed" || !strings.Contains(o.res[0].Error.Raw(), "cancel") {
		t.Errorf("cancelled Refresh = %+v, %v; want a failed result and context.Canceled", o.res, o.err)
	}
	log, err := e.st.RefreshLog(ctx, 1)
	if err != nil || len(log) != 1 || log[0].Status != "failed" || log[0].ID != r.LogID {
		t.Errorf("log after cancel = %+v, %v; want row %d failed", log, err, r.LogID)
	}
	if n := guardLocks(t, e); n != 0 {
		t.Errorf("%d guard locks held after the cancelled refresh", n)
	}
	release()
	if after := checksum(t, e, store.ViewMetrics); after != before {
		t.Errorf("the cancelled refresh changed the view")
	}
	// The next refresh goes through.
	res, err := e.st.Refresh(ctx, store.ViewMetrics, false)
	if err != nil || res[0].Status != "ok" || checksum(t, e, store.ViewMetrics) == before {
		t.Errorf("refresh after cancel = %+v, %v (view changed: %v)", res, err, checksum(t, e, store.ViewMetrics) != before)
	}
}

func TestCancelRefresh(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t)
	refreshAll(t, e.st)
	if _, err := e.db.Pool.Exec(ctx, `update metrics.config set value = '5min' where key = 'lock_timeout'`); err != nil {
		t.Fatal(err)
	}
	_, release := blockRefresh(t, e)
	defer release()
	done := make(chan []store.RefreshResult, 1)
	errc := make(chan error, 1)
	go func() {
		res, err := e.st.Refresh(ctx, store.ViewSteps, false)
		done <- res
		errc <- err
	}()
	waitFor(t, "the refresh to wait for its lock", func() bool {
		rs, err := e.st.Running(ctx)
		return err == nil && len(rs) == 1 && rs[0].WaitingForLock
	})
	if _, err := e.st.CancelRefresh(ctx, "nope"); err == nil {
		t.Errorf("CancelRefresh of an unknown view accepted")
	}
	n, err := e.st.CancelRefresh(ctx, store.ViewSteps)
	if err != nil || n != 1 {
		t.Errorf("CancelRefresh = %d, %v; want 1", n, err)
	}
	res := <-done
	if err := <-errc; err != nil || len(res) != 1 || res[0].Status != "failed" {
		t.Errorf("cancelled refresh = %+v, %v", res, err)
	}
	if n := guardLocks(t, e); n != 0 {
		t.Errorf("%d guard locks held after CancelRefresh", n)
	}
}

func TestListen(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t)
	lctx, stop := context.WithCancel(ctx)
	events := make(chan store.RefreshEvent, 16)
	done := make(chan error, 1)
	go func() { done <- e.st.Listen(lctx, events) }()
	// LISTEN takes effect when it commits: an active LISTEN statement may
	// not yet see a NOTIFY committed now; an idle session that ran it does.
	waitFor(t, "Listen to be listening", func() bool {
		var n int
		_ = e.db.Pool.QueryRow(ctx, `select count(*) from pg_stat_activity where datname = current_database() and query = 'listen meshtop_refresh' and state = 'idle'`).Scan(&n)
		return n == 1
	})
	// Another schema's events and junk are not forwarded.
	if _, err := e.db.Pool.Exec(ctx, `select pg_notify('meshtop_refresh', '{"schema":"other","log_id":1,"view":"mv_step_metrics","status":"running","pid":1}'),
		pg_notify('meshtop_refresh', 'not json')`); err != nil {
		t.Fatal(err)
	}
	// A refresh from another connection (psql-style).
	if _, err := e.db.Pool.Exec(ctx, `call metrics.refresh('mv_step_metrics')`); err != nil {
		t.Fatal(err)
	}
	var got []store.RefreshEvent
	for len(got) < 2 {
		select {
		case ev := <-events:
			got = append(got, ev)
		case <-time.After(30 * time.Second):
			t.Fatalf("events so far: %+v", got)
		}
	}
	if got[0].Status != "running" || got[1].Status != "ok" || got[0].View != store.ViewSteps ||
		got[0].LogID != got[1].LogID || got[0].PID == 0 {
		t.Errorf("events = %+v; want running then ok for one log row of %s", got, store.ViewSteps)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Listen after cancel: %v", err)
	}
	// The connection went back to the pool without LISTEN.
	var n int
	_ = e.db.Pool.QueryRow(ctx, `select count(*) from pg_stat_activity where datname = current_database() and query = 'listen meshtop_refresh'`).Scan(&n)
	if n != 0 {
		t.Errorf("%d sessions still show LISTEN as their last query", n)
	}

	// Connection loss ends Listen with an error.
	done2 := make(chan error, 1)
	go func() { done2 <- e.st.Listen(ctx, events) }()
	var pid int32
	waitFor(t, "Listen to be listening again", func() bool {
		return e.db.Pool.QueryRow(ctx, `select pid from pg_stat_activity where datname = current_database() and query = 'listen meshtop_refresh' and state = 'idle'`).Scan(&pid) == nil
	})
	if _, err := e.db.Pool.Exec(ctx, `select pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done2:
		if err == nil {
			t.Errorf("Listen returned nil after its connection was terminated")
		}
	case <-time.After(30 * time.Second):
		t.Errorf("Listen did not return after its connection was terminated")
	}
}
