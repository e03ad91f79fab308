package cli

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRefreshEverySIGTERM: SIGTERM while a refresh is blocked cancels it
// cleanly — the log records it failed, no guard is left — and exits 0.
func TestRefreshEverySIGTERM(t *testing.T) {
	t.Parallel()
	db := installed(t)
	run(t, runOpts{}, "refresh", "--dsn", db.DSN).must(t, 0)
	bin := binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	blocker, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(context.Background())
	if _, err := db.Pool.Exec(ctx, `update metrics.config set value = '5min' where key = 'lock_timeout'`); err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.Exec(ctx, `lock table public.workflow_runs in access exclusive mode`); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	cmd := exec.CommandContext(ctx, bin, "refresh", "--every", "1m", "--dsn", db.DSN)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "DATABASE_URL=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refresh to wait on the lock", time.Minute, func() bool {
		var n int
		_ = db.Pool.QueryRow(ctx, `select count(*) from metrics.refresh_log where status = 'running'`).Scan(&n)
		return n == 1
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("refresh --every exited with %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.HasSuffix(stderr.String(), "meshtop: stopped\n") {
		t.Errorf("stderr: %s", stderr.String())
	}
	var status, errText string
	var guards int
	if err := db.Pool.QueryRow(ctx, `select status, coalesce(error, '') from metrics.refresh_log order by id desc limit 1`).Scan(&status, &errText); err != nil {
		t.Fatal(err)
	}
	// Guard locks of this database only: pg_locks is cluster-wide, and the
	// parallel tests refresh in other databases of the same cluster.
	if err := db.Pool.QueryRow(ctx, `select count(*) from pg_locks l join pg_database d on d.oid = l.database
		where d.datname = current_database() and l.locktype = 'advisory' and l.classid = 1835365224`).Scan(&guards); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || guards != 0 {
		t.Errorf("after SIGTERM: last log row %q (%s), %d guard locks held", status, errText, guards)
	}
}

// TestDemoSIGTERM: the real binary, headless, stops PostgreSQL and removes
// its directory on SIGTERM, and on SIGHUP (the terminal or SSH session it
// ran in closed).
func TestDemoSIGTERM(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			testDemoSignal(t, sig)
		})
	}
}

func testDemoSignal(t *testing.T, sig syscall.Signal) {
	bin := binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr syncBuffer
	cmd := exec.CommandContext(ctx, bin, "demo", "--runs", "2000", "--workflows", "5", "--traffic", "2", "--status-every", "1s")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a status line", 2*time.Minute, func() bool { return strings.Contains(stdout.String(), " running now; ") })
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo exited with %v after %s\nstderr:\n%s", err, sig, stderr.String())
	}
	m := regexp.MustCompile(`PostgreSQL data in (\S+) `).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no data dir line: %s", stderr.String())
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("%s still exists after %s (%v)", m[1], sig, err)
	}
	out, _ := exec.Command("pgrep", "-f", "postgres -D "+m[1]).Output()
	if len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("postgres still running for %s: %s", m[1], out)
	}
}
