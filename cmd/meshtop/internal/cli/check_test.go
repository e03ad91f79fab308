package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

// TestCheckCodes gets each of check's four exit codes from a real database.
func TestCheckCodes(t *testing.T) {
	t.Parallel()
	db := installed(t)
	dsn := []string{"--dsn", db.DSN}
	lenient := append([]string{"check", "--min-success-rate", "0"}, dsn...)

	// Installed but never refreshed: CRITICAL.
	r := run(t, runOpts{}, lenient...).must(t, CheckCritical)
	if !strings.HasPrefix(r.stdout, "MESHTOP CRITICAL - mv_workflow_metrics_hourly never refreshed; ") {
		t.Errorf("never refreshed: %s", r)
	}

	run(t, runOpts{}, "refresh", "--dsn", db.DSN).must(t, 0)
	r = run(t, runOpts{}, lenient...).must(t, CheckOK)
	if !strings.HasPrefix(r.stdout, "MESHTOP OK - 3 views fresh (max lag 0s), ") || !strings.Contains(r.stdout, "| max_lag=0s;150;300 ") {
		t.Errorf("OK: %s", r)
	}

	// The fixture has a workflow failing ~15% of its runs: below 90%.
	r = run(t, runOpts{}, append([]string{"check"}, dsn...)...).must(t, CheckWarning)
	if !strings.HasPrefix(r.stdout, "MESHTOP WARNING - ") || !strings.Contains(r.stdout, "% < 90.0% in 24h") {
		t.Errorf("success rate WARNING: %s", r)
	}

	// The metrics clock moves on without a refresh: lag grows.
	setClock(t, db, anchor.Add(3*time.Minute))
	r = run(t, runOpts{}, lenient...).must(t, CheckWarning)
	if !strings.Contains(r.stdout, "mv_workflow_metrics_hourly lag 3m > 2m30s") {
		t.Errorf("lag WARNING: %s", r)
	}
	setClock(t, db, anchor.Add(10*time.Minute))
	r = run(t, runOpts{}, lenient...).must(t, CheckCritical)
	if !strings.Contains(r.stdout, "mv_workflow_metrics lag 10m > 5m") {
		t.Errorf("lag CRITICAL: %s", r)
	}
	r = run(t, runOpts{}, append(lenient, "--max-lag", "1h")...).must(t, CheckOK)

	// UNKNOWN: not installed, and cannot connect.
	bare := seeded(t)
	r = run(t, runOpts{}, "check", "--dsn", bare.DSN).must(t, CheckUnknown)
	if r.stdout != "MESHTOP UNKNOWN - metrics views are not installed; run `meshtop install`\n" {
		t.Errorf("not installed: %s", r)
	}
	// A database without MeshHook's tables: install would not help.
	empty := pgtest.NewDatabase(t, pgtest.Empty)
	r = run(t, runOpts{}, "check", "--dsn", empty.DSN).must(t, CheckUnknown)
	if !strings.HasPrefix(r.stdout, "MESHTOP UNKNOWN - Database "+empty.Name+" has no MeshHook tables") {
		t.Errorf("no MeshHook tables: %s", r)
	}
	r = run(t, runOpts{}, "check", "--dsn", "postgres://u:"+secret+"@127.0.0.1:1/db").must(t, CheckUnknown)
	if !strings.HasPrefix(r.stdout, "MESHTOP UNKNOWN - cannot connect: connection refused by u@127.0.0.1:1/db") {
		t.Errorf("cannot connect: %s", r)
	}
	noSecret(t, r)
}

// TestCheckFailedRefreshes covers the refresh-log rules, which are hard to
// provoke on demand, with hand-made inputs.
func TestCheckFailedRefreshes(t *testing.T) {
	t.Parallel()
	now := anchor
	lag := time.Duration(0)
	views := []store.ViewStatus{{Name: "mv_a", Populated: true, LastRefreshAt: &now, Lag: &lag}}
	f := &checkFlags{maxLag: 5 * time.Minute, minRate: 0.9, window: store.Window24h, minRuns: 10}
	entry := func(status string) store.RefreshLogEntry { return store.RefreshLogEntry{View: "mv_a", Status: status} }
	cases := []struct {
		log  []store.RefreshLogEntry
		code int
		want string
	}{
		{[]store.RefreshLogEntry{entry("ok"), entry("failed")}, CheckOK, "1 views fresh"},
		{[]store.RefreshLogEntry{entry("failed"), entry("ok")}, CheckWarning, "mv_a last refresh failed"},
		{[]store.RefreshLogEntry{entry("skipped"), entry("failed"), entry("running"), entry("interrupted"), entry("ok")}, CheckCritical, "mv_a last two refreshes failed"},
		{[]store.RefreshLogEntry{entry("interrupted")}, CheckWarning, "mv_a last refresh interrupted"},
	}
	for _, c := range cases {
		code, summary, _ := evaluate(f, store.Overview{Views: views}, c.log, captureInput{})
		if code != c.code || !strings.Contains(summary, c.want) {
			t.Errorf("%v: got %d %q, want %d %q", c.log, code, summary, c.code, c.want)
		}
	}
	// Workflows with fewer than 10 completed runs are not judged.
	rate := 0.5
	ov := store.Overview{Views: views, Workflows: []store.WorkflowMetrics{
		{Name: safetext.New("few"), Slug: safetext.New("few"), Version: 1, Succeeded: 4, Failed: 5, SuccessRate: &rate},
		{Name: safetext.New("many"), Slug: safetext.New("many"), Version: 2, Succeeded: 5, Failed: 5, SuccessRate: &rate},
	}}
	code, summary, perf := evaluate(f, ov, nil, captureInput{})
	if code != CheckWarning || strings.Contains(summary, "few") || !strings.Contains(summary, "many (many v2) success 50.0% < 90.0% in 24h") ||
		perf != "max_lag=0s;150;300 workflows_below=1;;;0;1" {
		t.Errorf("got %d %q %q", code, summary, perf)
	}
	_ = context.Background
}

// An operator's cancel does not warn; a failure does. Workflows below the
// success rate are named worst first (issue 14.12, 14.15).
func TestCheckCancelAndWorstFirst(t *testing.T) {
	lag := time.Second
	at := anchor
	f := &checkFlags{maxLag: 5 * time.Minute, minRate: 0.9, window: store.Window24h, minRuns: 1}
	ov := store.Overview{Views: []store.ViewStatus{{Name: store.ViewMetrics, Populated: true, Lag: &lag, LastRefreshAt: &at}}}
	canceled := []store.RefreshLogEntry{{View: store.ViewMetrics, Status: "failed", Error: safetext.New("canceling statement due to user request (SQLSTATE 57014)")}, {View: store.ViewMetrics, Status: "ok"}}
	if code, line, _ := evaluate(f, ov, canceled, captureInput{}); code != CheckOK {
		t.Errorf("after a cancel: %d %s", code, line)
	}
	failed := []store.RefreshLogEntry{{View: store.ViewMetrics, Status: "failed", Error: safetext.New("canceling statement due to statement timeout (SQLSTATE 57014)")}, {View: store.ViewMetrics, Status: "ok"}}
	if code, line, _ := evaluate(f, ov, failed, captureInput{}); code != CheckWarning {
		t.Errorf("after a timeout: %d %s", code, line)
	}
	rate := func(r float64) *float64 { return &r }
	ov.Workflows = []store.WorkflowMetrics{
		{Name: safetext.New("A"), Slug: safetext.New("a"), Version: 1, Succeeded: 8, Failed: 2, SuccessRate: rate(0.8)},
		{Name: safetext.New("B"), Slug: safetext.New("b"), Version: 1, Succeeded: 5, Failed: 5, SuccessRate: rate(0.5)},
	}
	_, line, _ := evaluate(f, ov, canceled, captureInput{})
	if a, b := strings.Index(line, "A (a v1)"), strings.Index(line, "B (b v1)"); a < 0 || b < 0 || b > a {
		t.Errorf("not worst first: %s", line)
	}
}

// TestCheckCaptureRules: the change-capture rules on hand-made states.
func TestCheckCaptureRules(t *testing.T) {
	t.Parallel()
	now := anchor
	lag := time.Duration(0)
	ov := store.Overview{Views: []store.ViewStatus{{Name: "mv_a", Populated: true, LastRefreshAt: &now, Lag: &lag}}}
	f := &checkFlags{maxLag: 5 * time.Minute, minRate: 0.9, window: store.Window24h, minRuns: 10}
	day := 24 * time.Hour
	healthy := store.CaptureLog{Rows: 700, Bytes: 32 << 10, Age: time.Hour, Left: 23 * time.Hour, MaxAge: day}
	soon := store.CaptureLog{Rows: 2_000_000, Bytes: 90 << 20, Age: 19 * time.Hour, Left: 5 * time.Hour, MaxAge: day}
	stopped := store.CaptureLog{Rows: 2_500_000, Bytes: 110 << 20, Age: 26 * time.Hour, Left: -2 * time.Hour, MaxAge: day, Stopped: true, RebuildPending: true}
	pending := store.CaptureLog{Age: time.Minute, Left: day, MaxAge: day, RebuildPending: true}
	cases := []struct {
		in   captureInput
		code int
		want string
	}{
		{captureInput{log: &healthy}, CheckOK, "1 views fresh"},
		{captureInput{log: &soon}, CheckWarning, "change capture stops in 5h: its log (~2000000 rows, 90.0 MiB) was not consumed for 19h"},
		{captureInput{log: &stopped}, CheckCritical, "change capture stopped: its log was not consumed for 26h (capture_max_age 1d)"},
		{captureInput{log: &pending}, CheckWarning, "change capture was off; the next refresh rebuilds the rollup"},
		{captureInput{outdated: true}, CheckWarning, "change capture has no bound in this schema; run `meshtop install` to upgrade it"},
	}
	for _, c := range cases {
		code, summary, _ := evaluate(f, ov, nil, c.in)
		if code != c.code || !strings.Contains(summary, c.want) {
			t.Errorf("%+v: got %d %q, want %d %q", c.in.log, code, summary, c.code, c.want)
		}
	}
	_, _, perf := evaluate(f, ov, nil, captureInput{log: &soon})
	if !strings.HasSuffix(perf, " capture_age=68400s;43200;86400 capture_rows=2000000 capture_bytes=94371840B") {
		t.Errorf("perf data: %q", perf)
	}
}

// TestCheckCaptureLog: check reads the capture log's state from the
// database: OK after a refresh, WARNING when capture stops within half its
// bound, CRITICAL once it has stopped, OK again after the next refresh.
func TestCheckCaptureLog(t *testing.T) {
	t.Parallel()
	db := installed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"check", "--min-success-rate", "0", "--max-lag", "1000h", "--dsn", db.DSN}
	run(t, runOpts{}, "refresh", "--dsn", db.DSN).must(t, 0)
	r := run(t, runOpts{}, args...).must(t, CheckOK)
	if !strings.Contains(r.stdout, " capture_age=") || !strings.Contains(r.stdout, ";43200;86400 capture_rows=") {
		t.Errorf("OK: %s", r)
	}
	// Nothing consumed the log for 20 of its 24 hours: capture stops in 4.
	if _, err := db.Pool.Exec(ctx, `SELECT setval('metrics.capture_until', floor(date_part('epoch', now() + interval '4 hours'))::bigint)`); err != nil {
		t.Fatal(err)
	}
	r = run(t, runOpts{}, args...).must(t, CheckWarning)
	if !strings.HasPrefix(r.stdout, "MESHTOP WARNING - change capture stops in 3h59m") && !strings.HasPrefix(r.stdout, "MESHTOP WARNING - change capture stops in 4h") {
		t.Errorf("WARNING: %s", r)
	}
	if _, err := db.Pool.Exec(ctx, `SELECT setval('metrics.capture_until', 1)`); err != nil {
		t.Fatal(err)
	}
	r = run(t, runOpts{}, args...).must(t, CheckCritical)
	if !strings.HasPrefix(r.stdout, "MESHTOP CRITICAL - change capture stopped: its log was not consumed for ") {
		t.Errorf("CRITICAL: %s", r)
	}
	run(t, runOpts{}, "refresh", "--dsn", db.DSN).must(t, 0)
	run(t, runOpts{}, args...).must(t, CheckOK)
}

// TestCheckHelpListsCodesTogether: check --help lists the four exit codes
// one after the other (issue 24.13: a paragraph stood between 2 CRITICAL
// and 3 UNKNOWN), and states the volume floor.
func TestCheckHelpListsCodesTogether(t *testing.T) {
	t.Parallel()
	r := run(t, runOpts{}, "check", "--help").must(t, 0)
	i, j := strings.Index(r.stdout, "  2 CRITICAL"), strings.Index(r.stdout, "  3 UNKNOWN")
	if i < 0 || j < i || strings.Contains(r.stdout[i:j], "\n\n") {
		t.Fatalf("exit codes not listed together:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "at least 10 completed runs") || !strings.Contains(r.stdout, "d (what got worse)") {
		t.Fatalf("the volume floor is not stated:\n%s", r.stdout)
	}
}
