package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/pgserver"
)

// TestRefreshSkipped: another session holds the guard of a view; refresh
// reports it skipped with the holder and exits 1, --wait waits instead.
func TestRefreshSkipped(t *testing.T) {
	t.Parallel()
	db := installed(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	holder, err := pgx.Connect(ctx, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	var pid int32
	if err := holder.QueryRow(ctx, `select pg_backend_pid() from pg_advisory_lock(1835365224, hashtext('metrics.mv_workflow_metrics_hourly'))`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	r := run(t, runOpts{}, "refresh", "--view", "mv_workflow_metrics_hourly", "--dsn", db.DSN).must(t, 1)
	want := regexp.MustCompile(fmt.Sprintf(`^mv_workflow_metrics_hourly\s+skipped\s+already refreshing \(pid %d since [^)]+\)\n$`, pid))
	if !want.MatchString(r.stdout) || r.stderr != "meshtop: 1 of 1 views not refreshed (mv_workflow_metrics_hourly skipped)\n" {
		t.Errorf("got %s", r)
	}

	// --wait: blocks until the holder lets go, then refreshes.
	var stdout, stderr syncBuffer
	done := make(chan result, 1)
	go func() {
		done <- runInto(ctx, runOpts{}, &stdout, &stderr, "refresh", "--view", "mv_workflow_metrics_hourly", "--wait", "--dsn", db.DSN)
	}()
	waitFor(t, "the waiting refresh to queue on the guard", 30*time.Second, func() bool {
		var n int
		// This database's guard waits only: pg_locks is cluster-wide.
		_ = db.Pool.QueryRow(ctx, `select count(*) from pg_locks l join pg_database d on d.oid = l.database
			where d.datname = current_database() and l.locktype = 'advisory' and l.classid = 1835365224 and not l.granted`).Scan(&n)
		return n > 0
	})
	if _, err := holder.Exec(ctx, `select pg_advisory_unlock_all()`); err != nil {
		t.Fatal(err)
	}
	r = <-done
	r.must(t, 0)
	if !strings.Contains(r.stdout, "mv_workflow_metrics_hourly") || !strings.Contains(r.stdout, " ok ") {
		t.Errorf("--wait: %s", r)
	}
}

// TestRefreshTimeout: --timeout cancels a refresh stuck behind a lock and
// says so; the log records the attempt as failed.
func TestRefreshTimeout(t *testing.T) {
	t.Parallel()
	db := installed(t)
	run(t, runOpts{}, "refresh", "--dsn", db.DSN).must(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	blocker, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(context.Background())
	// The refresh reads workflow_runs: an ACCESS EXCLUSIVE lock on it blocks it.
	if _, err := blocker.Exec(ctx, `lock table public.workflow_runs in access exclusive mode`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `update metrics.config set value = '1min' where key = 'lock_timeout'`); err != nil {
		t.Fatal(err)
	}
	var before int64
	if err := db.Pool.QueryRow(ctx, `select max(id) from metrics.refresh_log`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	// --timeout also bounds connecting and the checks before the refresh:
	// on a loaded machine 1 s may run out before the refresh began (no log
	// row then, nothing was cancelled). That attempt proves nothing; the
	// next one gets twice the time.
	for timeout := time.Second; ; timeout *= 2 {
		flag := formatDuration(timeout)
		r := run(t, runOpts{}, "refresh", "--view", "mv_workflow_metrics", "--timeout", flag, "--dsn", db.DSN).must(t, 1)
		var status string
		err := db.Pool.QueryRow(ctx, `select status from metrics.refresh_log where view_name = 'mv_workflow_metrics' and id > $1 order by id desc limit 1`, before).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) && timeout < 16*time.Second {
			t.Logf("--timeout %s ran out before the refresh began: %s", flag, r)
			continue
		}
		if err != nil {
			t.Fatalf("the refresh's log row: %v (%s)", err, r)
		}
		if !strings.Contains(r.stderr, "meshtop: refresh did not finish within --timeout "+flag+"; it was cancelled and the views keep their previous contents") {
			t.Errorf("got %s", r)
		}
		if status != "failed" {
			t.Errorf("log row status %q, want failed", status)
		}
		return
	}
}

// TestRefreshEvery keeps refreshing through a database outage: it reports
// each failed attempt, resumes when the server is back, and exits 0 on
// cancellation. It uses a cluster of its own to stop and start.
func TestRefreshEvery(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{})
	if err != nil {
		t.Fatalf("starting a private cluster: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	admin, err := pgx.Connect(ctx, srv.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "create database meshhook"); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	dsn := srv.DSN("meshhook")
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := fixture.ApplySchema(ctx, c); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	run(t, runOpts{}, "install", "--dsn", dsn).must(t, 0)

	var stdout, stderr syncBuffer
	rctx, stop := context.WithCancel(ctx)
	done := make(chan result, 1)
	go func() {
		done <- runInto(rctx, runOpts{}, &stdout, &stderr, "refresh", "--every", "1s", "--dsn", dsn)
	}()
	okLines := func() int { return strings.Count(stdout.String(), " ok ") }
	waitFor(t, "a first round of refreshes", time.Minute, func() bool { return okLines() >= 3 })

	if err := srv.StopServer(ctx, "fast"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the outage to be reported", time.Minute, func() bool {
		return strings.Contains(stderr.String(), "attempt 2 failed")
	})
	before := okLines()
	if err := srv.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "refreshes to resume", time.Minute, func() bool {
		return strings.Contains(stderr.String(), "database back after") && okLines() >= before+3
	})
	stop()
	r := <-done
	r.must(t, 0)
	if !strings.HasSuffix(r.stderr, "meshtop: stopped\n") {
		t.Errorf("stderr does not end with the stop: %s", r)
	}
	outage := regexp.MustCompile(`meshtop: attempt 1 failed \(retrying in 1s\): .*(refused|shutting down|restarting|lost the connection)`)
	if !outage.MatchString(r.stderr) {
		t.Errorf("outage not explained: %s", r)
	}
	stamped := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* mv_\w+\s+ok\s+\d+ rows`)
	if first := strings.SplitN(r.stdout, "\n", 2)[0]; !stamped.MatchString(first) {
		t.Errorf("first line %q", first)
	}
}
