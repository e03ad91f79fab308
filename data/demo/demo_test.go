package demo_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshtop/meshtop/data/demo"
)

func countRuns(t *testing.T, dsn string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to the demo DSN: %v", err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, "select count(*) from public.workflow_runs").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// processGone reports whether pid and its children have exited, allowing
// them a few seconds: the postmaster removes postmaster.pid (which pg_ctl
// waits for) just before it exits.
func processGone(t *testing.T, pid int) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !processGoneNow(t, pid, time.Now().After(deadline)) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// processGoneNow checks once; zombies count as exited (whoever adopted them
// may reap them late).
func processGoneNow(t *testing.T, pid int, log bool) bool {
	if b, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "status")); err == nil && !strings.Contains(string(b), "\nState:\tZ") {
		if log {
			t.Logf("pid %d still there: %s", pid, strings.SplitN(string(b), "\n", 4)[:3])
		}
		return false
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line == "PPid:\t"+itoa(pid) && !strings.Contains(string(b), "\nState:\tZ") {
				if log {
					t.Logf("child of %d still there: %s", pid, strings.SplitN(string(b), "\n", 4)[:3])
				}
				return false
			}
		}
	}
	return true
}

func itoa(n int) string {
	b := []byte{}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.msgs = append(r.msgs, s); r.mu.Unlock() }
func (r *recorder) text() string { r.mu.Lock(); defer r.mu.Unlock(); return strings.Join(r.msgs, "\n") }

func TestStartStop(t *testing.T) {
	var rec recorder
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := demo.Start(ctx, demo.Options{Runs: 3000, Workflows: 6, Projects: 2, Days: 7, TrafficRate: 20, Progress: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = env.Stop()
		}
	}()
	for _, want := range []string{"starting PostgreSQL", "seeding 3,000 runs"} {
		if !strings.Contains(rec.text(), want) {
			t.Errorf("progress %q lacks %q", rec.text(), want)
		}
	}
	if !env.Seeded || env.Summary.Events == 0 {
		t.Errorf("Seeded = %v, events %d", env.Seeded, env.Summary.Events)
	}
	if strings.Contains(env.DSN, "password") || !strings.Contains(env.DSN, "/meshhook") {
		t.Errorf("DSN %q", env.DSN)
	}
	// Live traffic flows: the run count grows past the history.
	deadline := time.Now().Add(60 * time.Second)
	for countRuns(t, env.DSN) <= 3000 || env.Traffic().Finished() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no live traffic: runs %d, inserted %d", countRuns(t, env.DSN), env.Traffic().Inserted())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// An error stops one run of the generator, not the demo's traffic: with
	// every new run refused, TrafficErr reports it; once writes work again,
	// runs flow again.
	block := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, env.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	block(`ALTER TABLE public.workflow_runs ADD CONSTRAINT demo_test_block CHECK (started_at < '2000-01-01') NOT VALID`)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := env.TrafficErr(); err != nil {
			if !strings.Contains(err.Error(), "demo_test_block") {
				t.Errorf("TrafficErr = %v; want the violated constraint", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("inserts refused, but no traffic error reported")
		}
	}
	block(`ALTER TABLE public.workflow_runs DROP CONSTRAINT demo_test_block`)
	resumed := countRuns(t, env.DSN)
	for deadline := time.Now().Add(60 * time.Second); countRuns(t, env.DSN) <= resumed; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			at, err := env.TrafficErr()
			t.Fatalf("live traffic did not start again after the error (last error %v at %s)", err, at.Format(time.RFC3339Nano))
		}
	}
	pid, root := env.PostmasterPID(), env.Root()
	if pid == 0 {
		t.Fatal("no postmaster pid")
	}
	stopped = true
	if err := env.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory %s left behind (%v)", root, err)
	}
	if !processGone(t, pid) {
		t.Errorf("postgres (pid %d) or a child still running after Stop", pid)
	}
	if err := env.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// A kept data directory is seeded once and reused by the next Start.
func TestDataDirReused(t *testing.T) {
	// Not t.TempDir(): as root the server runs as `postgres`, which must be
	// able to reach the directory.
	parent, err := os.MkdirTemp("", "meshtop-demo-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "cluster")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := demo.Options{DataDir: dir, Runs: 1000, Workflows: 5, Projects: 1, Days: 3, TrafficRate: -1}

	env, err := demo.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	first := countRuns(t, env.DSN)
	if !env.Seeded || first != 1000 {
		t.Errorf("first start: Seeded %v, runs %d", env.Seeded, first)
	}
	pid := env.PostmasterPID()
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	if !processGone(t, pid) {
		t.Errorf("postgres (pid %d) still running", pid)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
		t.Fatalf("kept data dir gone: %v", err)
	}

	var rec recorder
	opts.Progress = rec.add
	env, err = demo.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	if env.Seeded || strings.Contains(rec.text(), "seeding") {
		t.Errorf("second start seeded again: %q", rec.text())
	}
	if got := countRuns(t, env.DSN); got != first {
		t.Errorf("runs after restart = %d, want %d", got, first)
	}
}
