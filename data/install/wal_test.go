package install_test

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
)

// captureMode reads capture_state's desired and active modes.
func captureMode(t *testing.T, ctx context.Context, pool *pgxpool.Pool) (desired, mode string) {
	t.Helper()
	if err := pool.QueryRow(ctx, `SELECT desired, mode FROM metrics.capture_state`).Scan(&desired, &mode); err != nil {
		t.Fatal(err)
	}
	return desired, mode
}

// switchCapture runs install with --capture mode on pool.
func switchCapture(t *testing.T, ctx context.Context, pool *pgxpool.Pool, mode string) install.CapturePlan {
	t.Helper()
	in := install.New(pool, "metrics")
	in.SetCapture(mode)
	in.SetLockWait(time.Minute)
	if _, err := in.Apply(ctx, func(e install.StepEvent) { t.Logf("step %s done=%v err=%v", e.Name, e.Done, e.Err) }); err != nil {
		rows, _ := pool.Query(ctx, "select pid || ' ' || coalesce(state,'') || ' ' || coalesce(wait_event_type,'') || ':' || coalesce(wait_event,'') || ' ' || coalesce(now()-xact_start, '0')::text || ' ' || left(query, 200) from pg_stat_activity where datname = current_database()")
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			t.Log(s)
		}
		rows.Close()
		t.Fatalf("install --capture %s: %v", mode, err)
	}
	return in.LastCapture()
}

// TestWALSmoke: install, switch to WAL capture, runs added, refresh: the
// slot's changes applied incrementally and logged; uninstall leaves no slot,
// no publication, and the replica identity as it was.
func TestWALSmoke(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	// A cluster of its own: creating a logical slot waits for every
	// transaction running in the cluster, and the shared one runs the other
	// tests' (some held open on purpose).
	db := pgtest.NewOwnCluster(t)
	loadEdgeData(t, ctx, db)
	refreshAndCompare(t, ctx, db.Pool)
	p := switchCapture(t, ctx, db.Pool, "wal")
	if _, m := captureMode(t, ctx, db.Pool); m != "wal" || p.Target != "wal" {
		t.Fatalf("after install --capture wal: mode %q, plan %+v", m, p)
	}
	addRunsPool(t, ctx, db.Pool)
	m := refreshAndCompare(t, ctx, db.Pool)
	if !strings.HasPrefix(m, "incremental ") || m == "incremental 0" {
		t.Errorf("refresh after WAL-captured runs: %q", m)
	}
	var note string
	if err := db.Pool.QueryRow(ctx, `SELECT coalesce(capture, '') FROM metrics.refresh_log WHERE view_name = 'mv_workflow_metrics_hourly' ORDER BY id DESC LIMIT 1`).Scan(&note); err != nil {
		t.Fatal(err)
	}
	t.Logf("capture note: %s", note)
	if !strings.HasPrefix(note, "wal: ") || !strings.Contains(note, " transactions, ") {
		t.Errorf("the refresh log's capture note: %q", note)
	}
	// CALL refresh() read the slot once, with its first view's apply.
	for _, v := range []string{"mv_workflow_metrics", "mv_step_metrics"} {
		if err := db.Pool.QueryRow(ctx, `SELECT coalesce(capture, '') FROM metrics.refresh_log WHERE view_name = $1 ORDER BY id DESC LIMIT 1`, v).Scan(&note); err != nil {
			t.Fatal(err)
		}
		if note != "wal: consumed by this refresh's first view" {
			t.Errorf("%s's capture note: %q; want the slot read once per CALL refresh()", v, note)
		}
	}

	// Uninstall removes the slot and the publications and restores the
	// replica identity that was there.
	if err := install.New(db.Pool, "metrics").Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	var slots, pubs int
	var ident string
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE database = current_database()),
  (SELECT count(*) FROM pg_publication WHERE pubname LIKE 'meshtop%'),
  (SELECT relreplident::text FROM pg_class WHERE oid = 'public.workflow_runs'::regclass)`).Scan(&slots, &pubs, &ident); err != nil {
		t.Fatal(err)
	}
	if slots != 0 || pubs != 0 || ident != "d" {
		t.Errorf("after uninstall: %d slots, %d publications, replica identity %q; want none, none, d (default, as before)", slots, pubs, ident)
	}
}

// TestWALModelSwitches: the randomized model of TestIncrementalModel —
// writers making every kind of change, some holding their transaction
// open across refreshes, refreshes at random moments — with change capture
// switched from triggers to WAL, back to triggers and to WAL again while
// the writers run, each switch made by a Supabase-shaped owner (not a
// superuser; REPLICATION). After each switch the writers pause, and a
// refresh must make every view equal its oracle; at the end verify finds
// no drift.
func TestWALModelSwitches(t *testing.T) {
	t.Parallel()
	// Three switches under five connections of writers and refreshes on a
	// loaded CI machine: more than ctxT's five minutes is possible.
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	// A cluster of its own: creating the slot waits for every transaction
	// running in the cluster, and the shared one runs the other tests'
	// (some held open on purpose); on it a switch took the whole five
	// minutes once (CI, 2026-12-07).
	db := pgtest.NewOwnCluster(t)
	// The data first: its partitions then belong to the owner too.
	insertEdgeData(t, ctx, db)
	_, ownerDSN := db.SupabaseOwner(t)
	owner, err := pgxpool.New(ctx, ownerDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	in := install.New(owner, "metrics")
	mustApply(t, ctx, in)
	c := clock
	if err := in.SetClock(ctx, &c); err != nil {
		t.Fatal(err)
	}
	refreshAndCompare(t, ctx, db.Pool)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)

	var pause sync.RWMutex // writers hold it for reading per change; checks take it
	var switching atomic.Bool
	var refreshes atomic.Int64
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	counts := make([]map[string]int, 4)
	wg.Add(1)
	go func() {
		defer wg.Done()
		rnd := rand.New(rand.NewSource(seed))
		for runCtx.Err() == nil {
			pause.RLock()
			_, err := db.Pool.Exec(ctx, "CALL metrics.refresh()")
			pause.RUnlock()
			if err != nil {
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
				pause.RLock()
				kind, err := modelChange(ctx, db.Pool, rnd, &refreshes, runCtx, &switching)
				pause.RUnlock()
				if err != nil {
					errs <- fmt.Errorf("writer %d, %s: %w", w, kind, err)
					return
				}
				counts[w][kind]++
				if switching.Load() {
					// A switch needs ACCESS EXCLUSIVE on workflow_runs for
					// a moment, waiting at most 200 ms per try: four
					// writers running multi-statement transactions back to
					// back with no gap (each holding AccessShareLock and
					// then asking for more behind the switch's request)
					// leave it none in a minute of tries. MeshHook's
					// writers are mostly single statements; a writer
					// pausing up to 50 ms between changes keeps them
					// concurrent with the switch, not saturating.
					time.Sleep(time.Duration(rnd.Intn(50)) * time.Millisecond)
				}
			}
		}()
	}
	check := func(after string) {
		t.Helper()
		pause.Lock()
		defer pause.Unlock()
		// Two refreshes: the first may find a lapse or a fallback to settle.
		refreshAll(t, ctx, db.Pool, "metrics")
		refreshAndCompare(t, ctx, db.Pool)
		if t.Failed() {
			stop()
			t.Fatalf("views differ from their oracles after %s", after)
		}
	}
	for i, mode := range []string{"wal", "triggers", "wal"} {
		time.Sleep(3 * time.Second)
		switching.Store(true)
		p := switchCapture(t, ctx, owner, mode)
		switching.Store(false)
		if _, m := captureMode(t, ctx, db.Pool); m != mode {
			t.Fatalf("switch %d to %s: mode %q (plan %+v)", i+1, mode, m, p)
		}
		time.Sleep(2 * time.Second)
		check("switching to " + mode)
	}
	time.Sleep(3 * time.Second)
	stop()
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
	t.Logf("%d refreshes; changes %v", refreshes.Load(), total)
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
	var fallbacks int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM metrics.refresh_log WHERE capture LIKE 'fell back%'`).Scan(&fallbacks); err != nil || fallbacks != 0 {
		t.Errorf("%d refreshes fell back to triggers during the run (%v)", fallbacks, err)
	}
}

// walTxns reads how many transactions WAL capture consumed so far, and up
// to where.
func walTxns(t *testing.T, ctx context.Context, pool *pgxpool.Pool) (int64, string) {
	t.Helper()
	var n int64
	var lsn string
	if err := pool.QueryRow(ctx, `SELECT wal_txns, wal_lsn::text FROM metrics.capture_state`).Scan(&n, &lsn); err != nil {
		t.Fatal(err)
	}
	return n, lsn
}

// TestWALConsumerCrash: a refresh consumes the slot, then dies before its
// transaction commits — its backend terminated, or the server shut down
// with -m immediate (crash recovery). The keys and the consumed position
// roll back together and the slot was not advanced past what committed:
// the next refresh consumes exactly the transactions the dead one had read,
// once (capture_state.wal_txns counts each transaction once), and every
// view equals its oracle.
func TestWALConsumerCrash(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"pg_terminate_backend", "immediate restart"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			db := pgtest.NewOwnCluster(t)
			loadEdgeData(t, ctx, db)
			switchCapture(t, ctx, db.Pool, "wal")
			refreshAndCompare(t, ctx, db.Pool)
			admin := connect(t, ctx, db.DSN)
			// The test cluster commits asynchronously: make the writes
			// durable before the crash, as MeshHook's are.
			if _, err := admin.Exec(ctx, "SET synchronous_commit = on"); err != nil {
				t.Fatal(err)
			}
			before, lsn := walTxns(t, ctx, db.Pool)
			const runs = 7
			for i := range runs {
				if _, err := admin.Exec(ctx, `INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1', 'succeeded',
        $1::timestamptz - $2 * interval '17 minutes', $1::timestamptz - $2 * interval '17 minutes' + interval '3 seconds')`, clock, i+1); err != nil {
					t.Fatal(err)
				}
			}
			// The refresh consumes the slot, then waits to write the hourly
			// rollup.
			blocker := blockView(t, ctx, db.DSN, "mv_workflow_metrics_hourly")
			runner, _, done := startBlockedRefresh(t, ctx, db.DSN, "mv_workflow_metrics_hourly")
			waitFor(t, ctx, "the refresh waiting inside the apply", waitingOnLock(ctx, admin, runner.PgConn().PID()))
			if how == "pg_terminate_backend" {
				if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", int(runner.PgConn().PID())); err != nil {
					t.Fatal(err)
				}
				<-done
				if _, err := blocker.Exec(ctx, "ROLLBACK"); err != nil {
					t.Fatal(err)
				}
				waitFor(t, ctx, "the terminated backend gone", func() (bool, error) {
					var alive bool
					err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", int(runner.PgConn().PID())).Scan(&alive)
					return !alive, err
				})
			} else {
				if err := db.Srv.Restart(ctx, "immediate"); err != nil {
					t.Fatal(err)
				}
				<-done
				db.Pool.Reset()
			}
			if n, l := walTxns(t, ctx, db.Pool); n != before || l != lsn {
				t.Fatalf("after the dead consumer: %d transactions consumed up to %s; want the %d up to %s it had", n, l, before, lsn)
			}
			var confirmed string
			if err := db.Pool.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots`).Scan(&confirmed); err != nil {
				t.Fatal(err)
			}
			var past bool
			if err := db.Pool.QueryRow(ctx, `SELECT $1::pg_lsn > $2::pg_lsn`, confirmed, lsn).Scan(&past); err != nil || past {
				t.Fatalf("the slot was advanced to %s, past the committed position %s (%v)", confirmed, lsn, err)
			}
			if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "incremental ") || m == "incremental 0" {
				t.Errorf("the refresh after the dead consumer: %q; want incremental with keys", m)
			}
			if n, _ := walTxns(t, ctx, db.Pool); n != before+runs {
				t.Errorf("%d transactions consumed after the dead consumer; want %d + %d, each once", n, before, runs)
			}
		})
	}
}

// TestWALSlotBound: a slot nothing consumes is dropped once it holds back
// more WAL than capture_wal_max_bytes, has gone unconsumed longer than
// capture_wal_max_age, or the server invalidated it (max_slot_wal_keep_size):
// by whoever looks (capture_guard: status, check, /metrics) or by the next
// refresh. Capture falls back to the triggers, loudly (capture_state,
// refresh_log.capture), the next refresh rebuilds, the one after is
// incremental again, and every view equals its oracle throughout.
func TestWALSlotBound(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewOwnCluster(t)
	loadEdgeData(t, ctx, db)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}
	// fallBack arms WAL capture, makes changes nothing consumes, breaks
	// the bound with how, and checks the fallback and the refreshes after.
	fallBack := func(name string, how func(), byGuard bool, want string) {
		t.Helper()
		switchCapture(t, ctx, db.Pool, "wal")
		refreshAndCompare(t, ctx, db.Pool)
		addRunsPool(t, ctx, db.Pool)
		how()
		// Changes made while nothing captures them (after the slot is gone,
		// before the triggers are back) must reach the views too.
		if byGuard {
			var why string
			if err := db.Pool.QueryRow(ctx, `SELECT coalesce(metrics.capture_guard(), '')`).Scan(&why); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(why, want) {
				t.Fatalf("%s: capture_guard said %q; want %q", name, why, want)
			}
			exec(`UPDATE public.workflow_runs SET status = 'failed' WHERE id = (SELECT id FROM public.workflow_runs WHERE status = 'succeeded' ORDER BY started_at DESC LIMIT 1)`)
		}
		var mode, reason string
		var slots int
		refreshAll(t, ctx, db.Pool, "metrics")
		if err := db.Pool.QueryRow(ctx, `SELECT mode, coalesce(fallback_reason, ''), (SELECT count(*) FROM pg_replication_slots) FROM metrics.capture_state`).Scan(&mode, &reason, &slots); err != nil {
			t.Fatal(err)
		}
		if mode != "triggers" || !strings.Contains(reason, want) || slots != 0 {
			t.Fatalf("%s: mode %q, fallback reason %q, %d slots; want triggers, %q, none", name, mode, reason, slots, want)
		}
		if !byGuard {
			var note string
			if err := db.Pool.QueryRow(ctx, `SELECT coalesce(capture, '') FROM metrics.refresh_log WHERE view_name = 'mv_workflow_metrics_hourly' AND status = 'ok' ORDER BY id DESC LIMIT 1`).Scan(&note); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(note, "fell back to triggers: ") {
				t.Errorf("%s: the refresh log says %q; want the fallback", name, note)
			}
		}
		if m := lastModes(t, ctx, db.Pool)["mv_workflow_metrics_hourly"]; !strings.HasPrefix(m, "full") {
			t.Errorf("%s: the refresh after the fallback: %q; want a rebuild", name, m)
		}
		compareAllToLive(t, ctx, db.Pool, clock)
		var triggers bool
		if err := db.Pool.QueryRow(ctx, `SELECT metrics.capture_triggers_exist()`).Scan(&triggers); err != nil || !triggers {
			t.Fatalf("%s: the capture triggers are not back after a refresh (%v)", name, err)
		}
		addRunsPool(t, ctx, db.Pool)
		refreshAndCompare(t, ctx, db.Pool) // rebuilds once more: the lapse settles with the triggers back
		if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "incremental") {
			t.Errorf("%s: refreshes after the triggers are back: %q; want incremental", name, m)
		}
	}
	fallBack("bytes, at the refresh", func() {
		exec(`UPDATE metrics.config SET value = '8kB' WHERE key = 'capture_wal_max_bytes'`)
		exec(`SELECT count(*) FROM (SELECT pg_logical_emit_message(false, 'meshtop-test', repeat('x', 4096)) FROM generate_series(1, 8)) x`)
	}, false, "more than capture_wal_max_bytes")
	exec(`UPDATE metrics.config SET value = '1GB' WHERE key = 'capture_wal_max_bytes'`)
	fallBack("age, by a reader", func() {
		exec(`UPDATE metrics.capture_state SET wal_consumed_at = now() - interval '4 hours'`)
	}, true, "was not consumed for")
	fallBack("invalidated by the server", func() {
		exec(`ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`)
		exec(`SELECT pg_reload_conf()`)
		for range 4 {
			exec(`SELECT count(*) FROM (SELECT pg_logical_emit_message(false, 'meshtop-test', repeat('x', 65536)) FROM generate_series(1, 40)) x`)
			exec(`SELECT pg_switch_wal()`)
			exec(`CHECKPOINT`)
		}
		var status string
		if err := db.Pool.QueryRow(ctx, `SELECT coalesce(wal_status, '') FROM pg_replication_slots`).Scan(&status); err != nil || status != "lost" {
			t.Fatalf("the slot's wal_status is %q (%v); the test wants the server to have invalidated it", status, err)
		}
	}, true, "invalidated")
	exec(`ALTER SYSTEM RESET max_slot_wal_keep_size`)
	exec(`SELECT pg_reload_conf()`)
	// An operator who drops the publication, or a trigger WAL capture
	// relies on (a moved run's old key), breaks WAL capture too: the next
	// refresh falls back.
	fallBack("move trigger dropped", func() {
		exec(`DO $$ BEGIN EXECUTE format('DROP TRIGGER %I ON public.workflow_runs', metrics.capture_tag() || '_runs_move'); END $$`)
	}, false, "_runs_move are missing")
	fallBack("publication dropped", func() {
		exec(`DO $$ BEGIN EXECUTE format('DROP PUBLICATION %I', (metrics.wal_publications())[1]); END $$`)
	}, false, "was dropped")
}

// TestWALNeverFailsMeshHookWrites: with WAL capture installed, every
// statement MeshHook (its workers, its retention, an operator) runs on the
// two tables succeeds as a writer role like service_role: the events
// publication is INSERT-only, so its column list and row filter never meet
// an UPDATE or DELETE (which would need the replica identity (id, ts)
// covered), and the runs publication has no column list over identity
// FULL. Then the one trap left to an operator: identity NOTHING on
// workflow_runs while the runs publication publishes UPDATE makes
// MeshHook's updates fail — until meshtop next looks (capture_guard, each
// refresh), which falls back and drops its publications at once.
func TestWALNeverFailsMeshHookWrites(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	if _, err := db.Pool.Exec(ctx, `SELECT public.meshhook_ensure_event_partitions(now() - interval '1 day', now() + interval '2 days')`); err != nil {
		t.Fatal(err)
	}
	switchCapture(t, ctx, db.Pool, "wal")
	refreshAndCompare(t, ctx, db.Pool)
	writer, writerName := writerPool(t, ctx, db)
	const p1, w1 = "00000000-0000-0000-0000-0000000000a1", "00000000-0000-0000-0000-0000000000b1"
	var part string
	if err := db.Pool.QueryRow(ctx, `SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'public.workflow_events'::regclass ORDER BY c.relname DESC LIMIT 1`).Scan(&part); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, "GRANT SELECT, UPDATE, DELETE ON "+part+" TO "+writerName); err != nil {
		t.Fatal(err)
	}
	stmts := []string{
		// A worker's run: insert, step events (each its own statement), finish.
		`INSERT INTO public.workflow_runs (id, project_id, workflow_id, status) VALUES ('00000000-0000-0000-0000-00000000f001', '` + p1 + `', '` + w1 + `', 'running')`,
		`INSERT INTO public.workflow_events (run_id, type, payload) VALUES ('00000000-0000-0000-0000-00000000f001', 'step_started', '{"node":{"id":"fetch","type":"http_call"}}')`,
		`INSERT INTO public.workflow_events (run_id, type, payload) VALUES ('00000000-0000-0000-0000-00000000f001', 'http_attempted', '{"node":{"id":"fetch","type":"http_call"},"status":503}')`,
		`INSERT INTO public.workflow_events (run_id, type, payload) VALUES ('00000000-0000-0000-0000-00000000f001', 'step_failed', '{"node":{"id":"fetch","type":"http_call"},"attempt":1,"error":"Error: HTTP 503"}')`,
		`INSERT INTO public.workflow_events (run_id, type, payload) VALUES ('00000000-0000-0000-0000-00000000f001', 'step_succeeded', '{"node":{"id":"fetch","type":"http_call"},"next":[]}')`,
		`INSERT INTO public.workflow_events (run_id, type, payload) VALUES ('00000000-0000-0000-0000-00000000f001', 'run_completed', '{}')`,
		`UPDATE public.workflow_runs SET status = 'succeeded', finished_at = now() WHERE id = '00000000-0000-0000-0000-00000000f001'`,
		// Corrections, moves, pauses.
		`UPDATE public.workflow_runs SET status = 'failed' WHERE id = '00000000-0000-0000-0000-00000000f001'`,
		`UPDATE public.workflow_runs SET started_at = started_at - interval '3 hours' WHERE id = '00000000-0000-0000-0000-00000000f001'`,
		// Events updated and deleted through the parent and by partition.
		`UPDATE public.workflow_events SET payload = '{}' WHERE run_id = '00000000-0000-0000-0000-00000000f001' AND type = 'run_completed'`,
		`UPDATE ` + part + ` SET payload = '{}' WHERE type = 'http_attempted'`,
		`DELETE FROM ` + part + ` WHERE type = 'http_attempted'`,
		`DELETE FROM public.workflow_events WHERE run_id = '00000000-0000-0000-0000-00000000f001' AND type = 'run_completed'`,
		// A run deleted (its events cascade), a retention delete.
		`DELETE FROM public.workflow_runs WHERE id = '00000000-0000-0000-0000-00000000f001'`,
		`DELETE FROM public.workflow_runs WHERE started_at < '2026-02-05 00:00:00+00'`,
	}
	for _, st := range stmts {
		if _, err := writer.Exec(ctx, st); err != nil {
			t.Fatalf("MeshHook's statement failed under WAL capture: %v\n%s", err, st)
		}
	}
	// The owner's: a project deleted (cascade to definitions, runs, events).
	if _, err := db.Pool.Exec(ctx, `DELETE FROM public.projects WHERE id = '00000000-0000-0000-0000-0000000000a2'`); err != nil {
		t.Fatalf("cascaded delete under WAL capture: %v", err)
	}
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "incremental") {
		t.Errorf("refresh after MeshHook's statements: %q", m)
	}

	// The operator's trap.
	if _, err := db.Pool.Exec(ctx, `ALTER TABLE public.workflow_runs REPLICA IDENTITY NOTHING`); err != nil {
		t.Fatal(err)
	}
	upd := `UPDATE public.workflow_runs SET status = status WHERE id = (SELECT id FROM public.workflow_runs LIMIT 1)`
	if _, err := writer.Exec(ctx, upd); err == nil || !strings.Contains(err.Error(), "replica identity") {
		t.Fatalf("an UPDATE with identity NOTHING under the runs publication: %v; PostgreSQL refuses it", err)
	}
	var why string
	if err := db.Pool.QueryRow(ctx, `SELECT coalesce(metrics.capture_guard(), '')`).Scan(&why); err != nil || !strings.Contains(why, "replica identity") {
		t.Fatalf("capture_guard: %q, %v", why, err)
	}
	if _, err := writer.Exec(ctx, upd); err != nil {
		t.Fatalf("MeshHook's UPDATE still fails after meshtop fell back: %v", err)
	}
	refreshAll(t, ctx, db.Pool, "metrics")
	refreshAndCompare(t, ctx, db.Pool)
}
