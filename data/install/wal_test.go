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

// TestWALSmoke: install, switch to WAL capture, each kind of change, refresh.
func TestWALSmoke(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
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
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
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
