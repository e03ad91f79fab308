package cli

import (
	"context"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestDemoHeadless runs `meshtop demo` without a terminal: it seeds, installs,
// refreshes, prints status lines, and on cancellation (what SIGTERM does)
// stops PostgreSQL and removes its directory.
func TestDemoHeadless(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rctx, stop := context.WithCancel(ctx)
	var stdout, stderr syncBuffer
	done := make(chan result, 1)
	go func() {
		done <- runInto(rctx, runOpts{}, &stdout, &stderr, "demo",
			"--runs", "2000", "--workflows", "5", "--traffic", "2", "--status-every", "1s", "--refresh-every", "1s")
	}()
	waitFor(t, "two status lines", 2*time.Minute, func() bool {
		return strings.Count(stdout.String(), " running now; ") >= 2
	})
	// The refresh log tells the demo's own first refresh from its
	// background loop (issue 14.13).
	m := regexp.MustCompile(`DSN (postgres://\S+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no DSN line: %s", stderr.String())
	}
	waitFor(t, "a refresh by the loop", time.Minute, func() bool {
		conn, err := pgx.Connect(ctx, m[1])
		if err != nil {
			return false
		}
		defer conn.Close(ctx)
		var first, loop int
		err = conn.QueryRow(ctx, `select count(*) filter (where application_name = 'meshtop demo'),
			count(*) filter (where application_name = 'meshtop demo loop') from metrics.refresh_log`).Scan(&first, &loop)
		return err == nil && first > 0 && loop > 0
	})
	stop()
	r := <-done
	r.must(t, 0)

	dir := regexp.MustCompile(`PostgreSQL data in (\S+) \(temporary, removed on exit\)`).FindStringSubmatch(r.stderr)
	dsn := regexp.MustCompile(`attach from another terminal: meshtop --dsn '(postgres://postgres@(127\.0\.0\.1:\d+)/meshhook\?sslmode=disable)'`).FindStringSubmatch(r.stderr)
	if dir == nil || dsn == nil {
		t.Fatalf("no data dir or DSN line: %s", r)
	}
	for _, want := range []string{"installed meshtop's views in schema metrics", "first refresh: mv_workflow_metrics_hourly ok", "stopping PostgreSQL"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, r)
		}
	}
	if !regexp.MustCompile(`(?m)^\S+Z last 1h: \d+ runs, \d+ succeeded, \d+ failed; \d+ running now; lag \S+$`).MatchString(r.stdout) {
		t.Errorf("status line: %s", r.stdout)
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("data dir %s still exists (%v)", dir[1], err)
	}
	if c, err := net.DialTimeout("tcp", dsn[2], time.Second); err == nil {
		c.Close()
		t.Errorf("something still listens on %s", dsn[2])
	}
}
