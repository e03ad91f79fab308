package install_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
)

// lockMonitor samples pg_locks every 10 ms: the longest lock wait of any
// session of the writers' role (by the server's clock: now − waitstart, so
// it reads at least the true wait less one sampling interval), and the
// separate lock waits of the installer's sessions (application_name
// installerApp): one per try.
type lockMonitor struct {
	mu        sync.Mutex
	maxWait   time.Duration
	waitedFor string          // what the longest wait was on
	tries     map[string]bool // waitstart of each installer lock wait
	err       error
	stop      context.CancelFunc
	done      chan struct{}
}

const installerApp = "meshtop-install-under-test"

func startLockMonitor(t *testing.T, ctx context.Context, dsn, writerRole string) *lockMonitor {
	t.Helper()
	c := connect(t, ctx, dsn)
	mctx, cancel := context.WithCancel(ctx)
	m := &lockMonitor{tries: map[string]bool{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for mctx.Err() == nil {
			rows, err := c.Query(mctx, `SELECT a.usename = $1, a.application_name = $2, l.waitstart::text,
  coalesce(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - l.waitstart), 0),
  l.mode || ' on ' || coalesce(l.relation::regclass::text, l.locktype)
FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted AND (a.usename = $1 OR a.application_name = $2)`, writerRole, installerApp)
			if err != nil {
				if mctx.Err() == nil {
					m.mu.Lock()
					m.err = err
					m.mu.Unlock()
				}
				return
			}
			for rows.Next() {
				var writer, installer bool
				var start *string
				var secs float64
				var what string
				if err := rows.Scan(&writer, &installer, &start, &secs, &what); err != nil {
					m.mu.Lock()
					m.err = err
					m.mu.Unlock()
					break
				}
				m.mu.Lock()
				if d := time.Duration(secs * float64(time.Second)); writer && d > m.maxWait {
					m.maxWait, m.waitedFor = d, what
				}
				if installer && start != nil {
					m.tries[*start] = true
				}
				m.mu.Unlock()
			}
			rows.Close()
			select {
			case <-mctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(m.halt)
	return m
}

func (m *lockMonitor) halt() {
	m.stop()
	<-m.done
}

// installerTries is how many separate lock waits the installer has had.
func (m *lockMonitor) installerTries() (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tries), m.err
}

func (m *lockMonitor) resetTries() {
	m.mu.Lock()
	m.tries = map[string]bool{}
	m.mu.Unlock()
}

// installerPool is a pool whose sessions the monitor knows as the
// installer's.
func installerPool(t *testing.T, ctx context.Context, dsn string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = installerApp
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// holdLock opens a transaction on its own session that takes lock (a SQL
// statement) and keeps it until the returned function is called.
func holdLock(t *testing.T, ctx context.Context, dsn, lock string) (end func(), pid uint32) {
	t.Helper()
	c := connect(t, ctx, dsn)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, lock); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := tx.Commit(ctx); err != nil {
				t.Error(err)
			}
		})
	}, c.PgConn().PID()
}

// TestLocksNeverHoldUpWriters: MeshHook's writers run throughout while
// install re-creates the capture triggers, and uninstall drops them, each
// behind a transaction that holds a conflicting lock for as long as the
// test likes (an open write transaction for install's SHARE ROW EXCLUSIVE,
// an open read for uninstall's ACCESS EXCLUSIVE). Each try waits at most
// install.DefaultLockTimeout: no writer's lock wait (read from pg_locks)
// exceeds it by more than the slack below, although the blocker stays
// for several tries. With the blocker gone the step succeeds; with a short
// LockWait and the blocker still there it fails with one line naming it.
func TestLocksNeverHoldUpWriters(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	wpool, writer := writerPool(t, ctx, db)
	mon := startLockMonitor(t, ctx, db.DSN, writer)
	w := startWriters(t, wpool, 3, "MeshHook")
	w.waitRuns(t, ctx, 10, "before the test")
	in := install.New(installerPool(t, ctx, db.DSN), "metrics")

	waitTries := func(n int, what string) {
		t.Helper()
		mon.resetTries()
		waitFor(t, ctx, fmt.Sprintf("%d tries of %s", n, what), func() (bool, error) {
			got, err := mon.installerTries()
			return got >= n, err
		})
	}
	reapplyCapture := func() {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, `UPDATE metrics.meshtop_repeatables SET checksum = 'changed' WHERE name = '020_capture'`); err != nil {
			t.Fatal(err)
		}
	}

	// Install (020_capture re-applied: CREATE OR REPLACE TRIGGER, SHARE ROW
	// EXCLUSIVE) behind an open write transaction: it tries, lets the
	// writers through, tries again; the blocker ends; it succeeds.
	reapplyCapture()
	end, _ := holdLock(t, ctx, db.DSN, `LOCK TABLE public.workflow_runs IN ROW EXCLUSIVE MODE`)
	done := make(chan error, 1)
	go func() { _, err := in.Apply(ctx, nil); done <- err }()
	waitTries(5, "install behind an open write transaction")
	w.waitRuns(t, ctx, 10, "while install retries")
	end()
	if err := <-done; err != nil {
		t.Fatalf("install after the blocker ended: %v", err)
	}

	// Gives up cleanly: one line, naming the blocker.
	reapplyCapture()
	end, pid := holdLock(t, ctx, db.DSN, `LOCK TABLE public.workflow_events IN ROW EXCLUSIVE MODE`)
	in.SetLockWait(time.Second)
	_, err := in.Apply(ctx, nil)
	end()
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "could not take its locks") ||
		!strings.Contains(err.Error(), "pid "+strconv.Itoa(int(pid))) {
		t.Errorf("install behind a blocker that outlasts LockWait: %v; want one line naming pid %d", err, pid)
	}
	in.SetLockWait(install.DefaultLockWait)
	mustApply(t, ctx, in)

	// Uninstall (DROP TRIGGER, ACCESS EXCLUSIVE) behind an open reader:
	// first with a short LockWait (fails cleanly, the install intact and
	// capturing), then waiting until the reader ends.
	end, pid = holdLock(t, ctx, db.DSN, `SELECT count(*) FROM public.workflow_runs`)
	in.SetLockWait(time.Second)
	err = in.Uninstall(ctx)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "pid "+strconv.Itoa(int(pid))) {
		t.Errorf("uninstall behind a reader that outlasts LockWait: %v; want one line naming pid %d", err, pid)
	}
	if ok, err := in.Installed(ctx); err != nil || !ok {
		t.Errorf("after the failed uninstall: installed %v, %v", ok, err)
	}
	before := dirtyKeys(t, ctx, db.Pool)
	w.waitRuns(t, ctx, 10, "after the failed uninstall")
	if after := dirtyKeys(t, ctx, db.Pool); after <= before {
		t.Errorf("after the failed uninstall capture logs nothing (%d rows, then %d)", before, after)
	}
	in.SetLockWait(install.DefaultLockWait)
	go func() { done <- in.Uninstall(ctx) }()
	waitTries(5, "uninstall behind an open reader")
	end()
	if err := <-done; err != nil {
		t.Fatalf("uninstall after the reader ended: %v", err)
	}
	w.waitRuns(t, ctx, 10, "after uninstall")

	// And a fresh install, writers still running.
	mustApply(t, ctx, in)
	w.waitRuns(t, ctx, 10, "after the fresh install")

	w.halt()
	mon.halt()
	if errs := w.errors(); len(errs) > 0 {
		t.Fatalf("MeshHook's writers failed: %v", errs)
	}
	if _, err := mon.installerTries(); err != nil {
		t.Fatalf("lock monitor: %v", err)
	}
	// The slack: a writer that queued behind a try that got its locks waits
	// for the step's own statements and commit (milliseconds; more on a
	// loaded 2-core machine), plus the sampling interval. The blockers were
	// held for 5 tries each, over 4 seconds.
	const slack = 2 * time.Second
	t.Logf("longest writer lock wait %s (%s); longest writer statement %s; %d runs",
		mon.maxWait, mon.waitedFor, w.slow, w.runs.Load())
	if mon.maxWait > install.DefaultLockTimeout+slack {
		t.Errorf("a writer waited %s for %s; want at most the lock timeout %s plus %s", mon.maxWait, mon.waitedFor, install.DefaultLockTimeout, slack)
	}
}
