package reliability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgserver"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

// anchor is the end of the generated history and the first pinned clock.
// faultRuns is the size of the data set the interruptions run against:
// large enough that computing mv_step_metrics takes a noticeable time.
const faultRuns = 15000

var anchor = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// Where in a refresh an interruption lands. The first three are reached
// by a session of the test holding the lock the refresh needs; the compute
// phase's by a test-only trigger (holdTriggers) that makes the refresh wait,
// at a statement it always runs, for an advisory lock the test holds — so a
// refresh that takes 20 ms is caught at that point every time.
const (
	pointFirst    = "first refresh (plain), waiting for the view lock"
	pointViewLock = "waiting for the view lock"
	pointBaseLock = "holding the view lock, waiting for a base-table lock"
	pointApply    = "computing: the log consumed, before the rollup is applied"
	pointCells    = "computing: the window cells written"
	pointLogged   = "computing: the REFRESH done, its log row written, not committed"
)

// holdClassID is the first half of the test hooks' advisory lock keys
// ("hold"), apart from meshtop's guardClassID.
const holdClassID = 0x686f6c64

// holdKey is the second half of the hook's key for a compute-phase point
// (0: not one).
func holdKey(point string) int {
	switch point {
	case pointApply:
		return 1
	case pointCells:
		return 2
	case pointLogged:
		return 3
	}
	return 0
}

// holdTriggers installs the compute-phase hooks: AFTER triggers on
// statements a refresh runs while it holds its locks (the DELETE that
// consumes the dirty-key log, the window cells' INSERT, the log row's
// UPDATE to 'ok' after the REFRESH), each waiting for a shared advisory
// lock of its point. Nobody holds those locks but a test at the moment it
// interrupts, so the hooks cost the other refreshes nothing. lock_timeout
// is off in the hook: the wait ends only by the interruption under test.
func holdTriggers(ctx context.Context, q querier, schema string) error {
	s := qident(schema)
	_, err := q.Exec(ctx, fmt.Sprintf(`
		create function public.meshtop_test_hold() returns trigger
		language plpgsql set lock_timeout = 0 as $$
		begin
		  perform pg_catalog.pg_advisory_xact_lock_shared(%[2]d, tg_argv[0]::int);
		  return null;
		end $$;
		create trigger meshtop_test_hold after delete on %[1]s.dirty_keys
		  for each statement execute function public.meshtop_test_hold('%[3]d');
		create trigger meshtop_test_hold after insert on %[1]s.window_runs
		  for each statement execute function public.meshtop_test_hold('%[4]d');
		create trigger meshtop_test_hold after insert on %[1]s.window_steps
		  for each statement execute function public.meshtop_test_hold('%[4]d');
		create trigger meshtop_test_hold after update on %[1]s.refresh_log
		  for each row when (new.status = 'ok') execute function public.meshtop_test_hold('%[5]d');`,
		s, holdClassID, holdKey(pointApply), holdKey(pointCells), holdKey(pointLogged)))
	if err != nil {
		return fmt.Errorf("installing the compute-phase hooks: %w", err)
	}
	return nil
}

// How it is interrupted.
const (
	kindCancel           = "pg_cancel_backend"
	kindTerminate        = "pg_terminate_backend"
	kindLockTimeout      = "lock_timeout"
	kindStatementTimeout = "statement_timeout"
	kindContextCancel    = "context cancel (Go caller)"
	kindRefreshCancel    = "refresh_cancel()"
	kindCallCancel       = "pg_cancel_backend of CALL refresh()"
	kindRestart          = "server restart -m immediate"
)

type injection struct {
	kind  string
	point string
	view  string
}

func (i injection) String() string {
	return fmt.Sprintf("%s of %s while %s", i.kind, i.view, i.point)
}

// faultEnv is a database with meshtop installed, a pinned clock and a data
// set large enough for a refresh to take a while.
type faultEnv struct {
	t      *testing.T
	ctx    context.Context
	pool   *pgxpool.Pool // the test's own queries
	spool  *pgxpool.Pool // the store's: a pid we interrupt is never one of ours
	dsn    string
	srv    *pgserver.Server
	schema string
	inst   *install.Installer
	st     *store.Store
	clock  time.Time
	round  int
}

func newFaultEnv(t *testing.T, ctx context.Context, pool *pgxpool.Pool, dsn string, srv *pgserver.Server, spec fixture.Spec) *faultEnv {
	t.Helper()
	start := time.Now()
	sum, err := fixture.Generate(ctx, pool, spec)
	if err != nil {
		t.Fatalf("generating data: %v", err)
	}
	t.Logf("generated %d runs in %s", sum.Runs, time.Since(start).Round(time.Millisecond))
	e := &faultEnv{t: t, ctx: ctx, pool: pool, dsn: dsn, srv: srv, schema: "metrics", clock: spec.Anchor}
	e.inst = install.New(pool, e.schema)
	if _, err := e.inst.Apply(ctx, nil); err != nil {
		t.Fatalf("installing: %v", err)
	}
	if err := e.inst.SetClock(ctx, &e.clock); err != nil {
		t.Fatalf("pinning the clock: %v", err)
	}
	if err := holdTriggers(ctx, pool, e.schema); err != nil {
		t.Fatal(err)
	}
	// The store gets a pool of its own: when a refresh finishes just before
	// the interruption, its backend goes back to the pool, and a cancel or
	// terminate must not then hit one of the test's own queries.
	e.spool, err = pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.spool.Close)
	e.st = store.New(e.spool, nil, store.Options{Schema: e.schema, QueryTimeout: 30 * time.Second, RefreshTimeout: 5 * time.Minute})
	return e
}

// advance moves the pinned clock on and adds a finished, failed run with
// step events just before it, so a refresh that succeeded would change
// every view: an interrupted one must leave the old contents.
func (e *faultEnv) advance() {
	e.t.Helper()
	e.round++
	e.clock = e.clock.Add(time.Minute)
	if err := e.inst.SetClock(e.ctx, &e.clock); err != nil {
		e.t.Fatalf("advancing the clock: %v", err)
	}
	_, err := e.pool.Exec(e.ctx, `
		with d as (
		  select id, project_id, definition from public.workflow_definitions
		  order by id offset $2::int % (select count(*) from public.workflow_definitions) limit 1
		), r as (
		  insert into public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
		  select project_id, id, 'failed', $1::timestamptz - interval '10 minutes', $1::timestamptz - interval '9 minutes'
		  from d returning id
		)
		insert into public.workflow_events (run_id, ts, type, payload)
		select r.id, $1::timestamptz - interval '10 minutes' + x.off, x.type,
		       jsonb_build_object('node', jsonb_build_object('id', d.definition->'nodes'->0->>'id', 'type', d.definition->'nodes'->0->>'type'))
		from r, d, (values (interval '1 second', 'step_started'), (interval '3 seconds', 'step_failed')) x(off, type)`,
		e.clock, e.round)
	if err != nil {
		e.t.Fatalf("adding a run: %v", err)
	}
}

// refreshAllOK refreshes every view and checks each against ground truth.
func (e *faultEnv) refreshAllOK(what string) { e.refreshOK(what, "") }

// refreshOK refreshes one view ("" = all) and checks every populated view
// against ground truth.
func (e *faultEnv) refreshOK(what, view string) {
	e.t.Helper()
	res, err := e.st.Refresh(e.ctx, view, false)
	if err != nil {
		e.t.Fatalf("%s: refresh: %v", what, err)
	}
	want := len(views)
	if view != "" {
		want = 1
	}
	if len(res) != want {
		e.t.Fatalf("%s: refresh returned %d results, want %d: %+v", what, len(res), want, res)
	}
	for _, r := range res {
		if r.Status != "ok" {
			e.t.Fatalf("%s: refresh of %s: status %s (%s), want ok", what, r.View, r.Status, r.Error)
		}
	}
	if err := compareTruth(e.ctx, e.pool, e.schema); err != nil {
		e.t.Fatalf("%s: after the next refresh: %v", what, err)
	}
}

type outcome struct {
	res []store.RefreshResult
	err error
}

// blocker holds a lock in an open transaction on its own connection.
type blocker struct{ conn *pgx.Conn }

func (e *faultEnv) block(lockSQL string) *blocker {
	e.t.Helper()
	conn, err := pgx.Connect(e.ctx, e.dsn)
	if err != nil {
		e.t.Fatalf("blocker: connecting: %v", err)
	}
	if _, err := conn.Exec(e.ctx, "begin"); err != nil {
		e.t.Fatalf("blocker: %v", err)
	}
	if _, err := conn.Exec(e.ctx, lockSQL); err != nil {
		e.t.Fatalf("blocker: %s: %v", lockSQL, err)
	}
	return &blocker{conn: conn}
}

func (b *blocker) release() {
	if b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = b.conn.Exec(ctx, "rollback")
	_ = b.conn.Close(ctx)
}

// hold takes the compute-phase hook's lock of a point on a connection of
// its own: a refresh reaching that point waits until the lock is released
// (or the connection closed, or the server restarted).
func (e *faultEnv) hold(point string) *blocker {
	e.t.Helper()
	conn, err := pgx.Connect(e.ctx, e.dsn)
	if err != nil {
		e.t.Fatalf("hook: connecting: %v", err)
	}
	if _, err := conn.Exec(e.ctx, "select pg_advisory_lock($1::int, $2::int)", holdClassID, holdKey(point)); err != nil {
		e.t.Fatalf("hook: taking the lock of %q: %v", point, err)
	}
	return &blocker{conn: conn}
}

// inject runs one interrupted refresh and checks everything the issue asks
// for. It returns false only when a statement timeout fired in
// refresh_begin, before the refresh began: nothing was interrupted then.
func (e *faultEnv) inject(inj injection) bool {
	t := e.t
	t.Helper()
	if inj.point != pointFirst {
		e.advance()
	}
	ctx := e.ctx
	before, err := checksums(ctx, e.pool, e.schema)
	if err != nil {
		t.Fatal(err)
	}
	afterID, err := maxLogID(ctx, e.pool, e.schema)
	if err != nil {
		t.Fatal(err)
	}
	mv := qident(e.schema) + "." + qident(inj.view)

	var b *blocker
	switch {
	case inj.point == pointFirst, inj.point == pointViewLock:
		// LOCK TABLE refuses materialized views; COMMENT takes a SHARE
		// UPDATE EXCLUSIVE lock on it (conflicting with both kinds of
		// refresh, not with readers) until the transaction ends.
		b = e.block(blockViewStmt(e.schema, inj.view))
	case inj.point == pointBaseLock:
		b = e.block("lock table public.workflow_runs in access exclusive mode")
	case holdKey(inj.point) != 0:
		b = e.hold(inj.point)
	}
	defer b.release()
	if inj.kind == kindLockTimeout {
		if _, err := e.pool.Exec(ctx, "update "+qident(e.schema)+".config set value = '200ms' where key = 'lock_timeout'"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := e.pool.Exec(context.Background(), "update "+qident(e.schema)+".config set value = '5s' where key = 'lock_timeout'"); err != nil {
				t.Errorf("restoring lock_timeout: %v", err)
			}
		}()
	}

	st := e.st
	if inj.kind == kindStatementTimeout {
		// At a lock point the blocker holds the refresh until the timeout
		// fires; so does a compute-phase hook, where a longer timeout makes
		// it less likely to fire in refresh_begin on a loaded machine.
		timeout := 150 * time.Millisecond
		if holdKey(inj.point) != 0 {
			timeout = time.Second
		}
		st = store.New(e.spool, nil, store.Options{Schema: e.schema, QueryTimeout: 30 * time.Second, RefreshTimeout: timeout})
	}
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer rcancel()
	done := make(chan outcome, 1)
	var callConn *pgx.Conn
	if inj.kind == kindCallCancel {
		callConn, err = pgx.Connect(ctx, e.dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer callConn.Close(context.Background())
		go func() {
			_, err := callConn.Exec(rctx, "call "+qident(e.schema)+".refresh($1)", inj.view)
			done <- outcome{err: err}
		}()
	} else {
		go func() {
			res, err := st.Refresh(rctx, inj.view, false)
			done <- outcome{res, err}
		}()
	}

	// Find the attempt's log row and backend.
	var logID int64
	var pid int32
	early := false
	err = waitFor(ctx, 2*time.Minute, "the attempt's log row", func() (bool, error) {
		err := e.pool.QueryRow(ctx, "select id, pid from "+qident(e.schema)+".refresh_log where id > $1 and view_name = $2 order by id limit 1",
			afterID, inj.view).Scan(&logID, &pid)
		if err == pgx.ErrNoRows {
			select {
			case o := <-done: // finished before we saw it
				if inj.kind == kindStatementTimeout && len(o.res) == 0 && o.err != nil && strings.Contains(o.err.Error(), "statement timeout") {
					// The timeout fired in refresh_begin (it runs under
					// the same statement_timeout), whose transaction it
					// rolled back: no refresh began, nothing to check.
					early = true
					return true, nil
				}
				t.Fatalf("%s: the refresh returned before its log row was seen: %+v %v", inj, o.res, o.err)
			default:
			}
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("%s: %v", inj, err)
	}
	if early {
		t.Logf("%s: the statement timeout fired before the refresh began; again", inj)
		e.spool.Reset()
		return false
	}

	// Reach the point. Waiting for the lock means waiting for the blocker
	// itself: on its way the refresh may queue a moment behind another lock
	// (autovacuum analysing the view it just refreshed), which is not the
	// point (and, for pointBaseLock, comes before it holds the view's lock).
	var blockerPID uint32
	if b != nil {
		blockerPID = b.conn.PgConn().PID()
	}
	waiting := func() (bool, error) {
		var waitType, state, query string
		var byBlocker bool
		err := e.pool.QueryRow(ctx, `select coalesce(wait_event_type, ''), coalesce(state, ''), coalesce(query, ''),
			$2::int = any(pg_blocking_pids(pid))
			from pg_stat_activity where pid = $1`, pid, int64(blockerPID)).Scan(&waitType, &state, &query, &byBlocker)
		if err == pgx.ErrNoRows {
			return false, fmt.Errorf("backend %d is gone", pid)
		}
		if err != nil {
			return false, err
		}
		inRefresh := state == "active" && (strings.Contains(query, "refresh_run") || strings.Contains(strings.ToLower(query), "call "))
		return inRefresh && waitType == "Lock" && byBlocker, nil
	}
	// A timeout fires by itself, maybe before a poll could see the wait;
	// the blocker (or the hook) makes sure it lands at (or before) its
	// point, and that the refresh cannot finish first.
	if inj.kind != kindLockTimeout && inj.kind != kindStatementTimeout {
		if err := waitFor(ctx, 2*time.Minute, "the refresh waiting at its point", waiting); err != nil {
			t.Fatalf("%s: %v", inj, err)
		}
		if inj.point == pointBaseLock {
			// The refresh first applies the dirty-key log to the rollup
			// (holding the rollup's advisory lock), then refreshes the
			// view (holding its lock): either reads the base tables.
			var holds bool
			if err := e.pool.QueryRow(ctx, `select exists (select from pg_locks where pid = $1 and granted
				and ((relation = $2::regclass and mode in ('ExclusiveLock', 'AccessExclusiveLock'))
				  or (locktype = 'advisory' and classid = $3::oid and objsubid = 2
				      and objid = pg_catalog.hashtext($4 || '.rollup')::oid)))`,
				pid, mv, int64(guardClassID), e.schema).Scan(&holds); err != nil {
				t.Fatal(err)
			}
			if !holds {
				t.Fatalf("%s: backend %d waits for a lock but holds neither the view's lock nor the rollup's", inj, pid)
			}
		}
	}

	// Interrupt.
	switch inj.kind {
	case kindCancel, kindCallCancel:
		if _, err := e.pool.Exec(ctx, "select pg_cancel_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
	case kindTerminate:
		if _, err := e.pool.Exec(ctx, "select pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
	case kindContextCancel:
		rcancel()
	case kindRefreshCancel:
		if _, err := e.st.CancelRefresh(ctx, inj.view); err != nil {
			t.Fatalf("%s: CancelRefresh: %v", inj, err)
		}
	case kindRestart:
		if err := e.srv.Restart(ctx, "immediate"); err != nil {
			t.Fatalf("%s: %v", inj, err)
		}
		e.pool.Reset()
		e.spool.Reset()
	}
	var o outcome
	select {
	case o = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s: the refresh did not return within 2 minutes", inj)
	}
	b.release()
	b = nil

	row, err := readLogRow(ctx, e.pool, e.schema, logID)
	if err != nil {
		t.Fatal(err)
	}
	wantState, wantErr := "failed", ""
	switch inj.kind {
	case kindTerminate, kindRestart:
		wantState = "interrupted"
	case kindLockTimeout:
		wantErr = "lock timeout"
	case kindStatementTimeout:
		wantErr = "statement timeout"
	case kindCancel, kindCallCancel, kindContextCancel, kindRefreshCancel:
		wantErr = "cancel"
	}
	if wantState == "interrupted" {
		// The backend is gone, or on its way out.
		err = waitFor(ctx, 2*time.Minute, "the attempt to read as interrupted", func() (bool, error) {
			row, err = readLogRow(ctx, e.pool, e.schema, logID)
			return err == nil && row.State == "interrupted", err
		})
		if err != nil {
			t.Fatalf("%s: log row %d: status %q state %q: %v", inj, logID, row.Status, row.State, err)
		}
	} else if row.Status != "failed" || row.State != "failed" || !strings.Contains(strings.ToLower(row.Error), wantErr) {
		t.Fatalf("%s: log row %d: status %q state %q error %q; want failed with %q (refresh returned %+v, %v)",
			inj, logID, row.Status, row.State, row.Error, wantErr, o.res, o.err)
	}
	if err := waitNoRefresh(ctx, e.pool); err != nil {
		t.Fatalf("%s: %v", inj, err)
	}
	rows, err := latestLogRows(ctx, e.pool, e.schema, afterID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.State == "running" {
			t.Fatalf("%s: log row %d of %s still reads as running after the interruption", inj, r.ID, r.View)
		}
	}
	after, err := checksums(ctx, e.pool, e.schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		if after[v] != before[v] {
			t.Fatalf("%s: %s changed: checksum %s before, %s after the interrupted refresh", inj, v, before[v], after[v])
		}
	}
	tRefresh := time.Now()
	if inj.point == pointFirst {
		e.refreshOK(inj.String(), inj.view) // the others stay unpopulated for their own first-refresh injection
	} else {
		e.refreshAllOK(inj.String())
	}
	now, err := checksums(ctx, e.pool, e.schema)
	if err != nil {
		t.Fatal(err)
	}
	if now[inj.view] == before[inj.view] {
		t.Fatalf("%s: %s did not change after the next refresh: the interrupted attempt cannot be told from a no-op", inj, inj.view)
	}
	t.Logf("timing: next refresh+truth %s", time.Since(tRefresh).Round(time.Millisecond))
	report.add("interruptions."+inj.kind, 1)
	report.add("interruptions.total", 1)
	t.Logf("survived: %s → log row %d %s", inj, logID, row.State)
	return true
}

// TestInterruptedRefreshes interrupts refreshes of every view at every
// point we can reach deterministically, in every way short of a restart
// (TestRestartDuringRefresh does those on its own cluster).
func TestInterruptedRefreshes(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t, 15*time.Minute) // a hang guard: under load this test alone took 3 min
	start := time.Now()
	defer func() { t.Logf("took %s", time.Since(start).Round(time.Millisecond)) }()
	e := newFaultEnv(t, ctx, db.Pool, db.DSN, db.Srv, fixture.Spec{
		Seed: 7, Projects: 3, Workflows: 25, Runs: faultRuns, Days: 30, Anchor: anchor, Events: true,
	})
	hourly, metrics, steps := views[0], views[1], views[2]

	// The very first refresh is a plain one (the views are created WITH NO
	// DATA): interrupt it before anything else. The hourly view's comes
	// first: the first refresh of any view builds the rollup the three
	// share, and the hourly view is nothing but that rollup.
	e.inject(injection{kind: kindLockTimeout, point: pointFirst, view: hourly})
	e.inject(injection{kind: kindCancel, point: pointFirst, view: metrics})
	e.inject(injection{kind: kindTerminate, point: pointFirst, view: steps})
	e.refreshAllOK("first successful refresh")

	fixed := []injection{
		{kind: kindCancel, point: pointViewLock, view: hourly},
		{kind: kindTerminate, point: pointViewLock, view: metrics},
		{kind: kindCancel, point: pointViewLock, view: steps},
		{kind: kindTerminate, point: pointViewLock, view: hourly},
		{kind: kindCancel, point: pointBaseLock, view: metrics},
		{kind: kindTerminate, point: pointBaseLock, view: hourly},
		{kind: kindLockTimeout, point: pointViewLock, view: hourly},
		{kind: kindLockTimeout, point: pointViewLock, view: metrics},
		{kind: kindLockTimeout, point: pointViewLock, view: steps},
		{kind: kindContextCancel, point: pointViewLock, view: steps},
		{kind: kindRefreshCancel, point: pointViewLock, view: metrics},
		{kind: kindCallCancel, point: pointViewLock, view: hourly},
		{kind: kindStatementTimeout, point: pointViewLock, view: metrics},
	}
	for _, inj := range fixed {
		for try := 0; !e.inject(inj); try++ {
			// Only a statement timeout that fired in refresh_begin misses
			// here (the blocker holds every other kind at its point).
			if try == 3 {
				t.Fatalf("%s: not interrupted", inj)
			}
		}
	}

	// Compute phase: the refresh holds its locks and is computing; it waits
	// at a hook (holdTriggers) until interrupted, so it cannot finish first.
	compute := []injection{
		{kind: kindCancel, point: pointApply, view: steps},
		{kind: kindCancel, point: pointCells, view: metrics},
		{kind: kindTerminate, point: pointCells, view: steps},
		{kind: kindTerminate, point: pointLogged, view: metrics},
		{kind: kindCancel, point: pointLogged, view: steps},
		{kind: kindTerminate, point: pointApply, view: hourly},
		{kind: kindCancel, point: pointLogged, view: hourly},
		{kind: kindContextCancel, point: pointCells, view: steps},
		{kind: kindRefreshCancel, point: pointApply, view: steps},
		{kind: kindRefreshCancel, point: pointLogged, view: metrics},
		{kind: kindStatementTimeout, point: pointCells, view: steps},
		{kind: kindStatementTimeout, point: pointLogged, view: hourly},
		{kind: kindCallCancel, point: pointCells, view: metrics},
		{kind: kindCallCancel, point: pointApply, view: steps},
	}
	for _, inj := range compute {
		for try := 0; !e.inject(inj); try++ {
			// Only a statement timeout that fired in refresh_begin misses.
			if try == 3 {
				t.Fatalf("%s: not interrupted", inj)
			}
		}
	}
}
