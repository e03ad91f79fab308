package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/pgtest"
)

// TestScheduleWithCron drives `meshtop schedule` against the pg_cron
// database of the test cluster.
func TestScheduleWithCron(t *testing.T) {
	t.Parallel()
	db := pgtest.NewCronDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.Pool.Exec(ctx, "create extension if not exists pg_cron"); err != nil {
		t.Fatalf("creating pg_cron: %v", err)
	}
	dsn := []string{"--dsn", db.DSN}
	run(t, runOpts{}, append([]string{"install"}, dsn...)...).must(t, 0)
	t.Cleanup(func() { run(t, runOpts{}, append([]string{"schedule", "--off"}, dsn...)...) })

	r := run(t, runOpts{}, append([]string{"schedule"}, dsn...)...).must(t, 0)
	if r.stdout != "not scheduled: set one with `meshtop schedule --every 1m`\n" {
		t.Errorf("show before: %s", r)
	}
	r = run(t, runOpts{}, append([]string{"schedule", "--every", "1m"}, dsn...)...).must(t, 0)
	// With --capture auto (the default) meshtop's job makes WAL capture
	// possible: schedule switches to it, and --off back.
	if !regexp.MustCompile(`^scheduled: pg_cron job \d+ refreshes the views every 1m \("\* \* \* \* \*"\)\nchange capture: wal \(meshtop's pg_cron job consumes the slot\)\n$`).MatchString(r.stdout) {
		t.Errorf("--every 1m: %s", r)
	}
	r = run(t, runOpts{}, append([]string{"schedule", "--show"}, dsn...)...).must(t, 0)
	if !regexp.MustCompile(`^pg_cron job \d+: every 1m \("\* \* \* \* \*"\), active`).MatchString(r.stdout) {
		t.Errorf("--show: %s", r)
	}
	r = run(t, runOpts{}, append([]string{"status", "--json"}, dsn...)...).must(t, 0)
	var doc StatusJSON
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if s := doc.Views[0].Schedule; s == nil || s.Cron != "* * * * *" || s.EverySeconds != 60 || !s.Active {
		t.Errorf("status --json schedule: %+v", s)
	}
	// A login with meshtop_reader alone (no privilege on schema cron) reads
	// the same schedule, in every command that shows it (issue 23.1).
	run(t, runOpts{}, append([]string{"refresh"}, dsn...)...).must(t, 0)
	reader := []string{"--dsn", db.LoginRole(t, "cli_cron_reader", "meshtop_reader")}
	r = run(t, runOpts{}, append([]string{"schedule", "--show"}, reader...)...).must(t, 0)
	if !regexp.MustCompile(`^pg_cron job \d+: every 1m \("\* \* \* \* \*"\), active`).MatchString(r.stdout) {
		t.Errorf("--show as a reader: %s", r)
	}
	r = run(t, runOpts{}, append([]string{"status", "--json"}, reader...)...).must(t, 0)
	doc = StatusJSON{}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if s := doc.Views[0].Schedule; s == nil || s.Cron != "* * * * *" {
		t.Errorf("status --json schedule as a reader: %+v", s)
	}
	for _, args := range [][]string{{"status"}, {"check", "--max-lag", "1000h"}} {
		r = run(t, runOpts{}, append(args, reader...)...)
		if r.code != 0 || strings.Contains(r.stdout+r.stderr, "permission denied") {
			t.Errorf("%v as a reader: %s", args, r)
		}
	}
	r = run(t, runOpts{}, append([]string{"schedule", "--every", "7m"}, dsn...)...).must(t, 1)
	if !strings.Contains(r.stderr, "7m") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("--every 7m: %s", r)
	}
	r = run(t, runOpts{}, append([]string{"schedule", "--off"}, dsn...)...).must(t, 0)
	if !strings.HasPrefix(r.stdout, "unscheduled: pg_cron no longer refreshes the views\nchange capture: triggers (") {
		t.Errorf("--off: %s", r)
	}
	r = run(t, runOpts{}, append([]string{"schedule", "--show"}, dsn...)...).must(t, 0)
	if !strings.HasPrefix(r.stdout, "not scheduled") {
		t.Errorf("show after --off: %s", r)
	}
}

// TestScheduleWithoutCron: a database without pg_cron says so and points
// to `meshtop refresh --every`.
func TestScheduleWithoutCron(t *testing.T) {
	t.Parallel()
	db := installed(t)
	r := run(t, runOpts{}, "schedule", "--dsn", db.DSN).must(t, 0)
	if r.stdout != "not scheduled: pg_cron is not installed in this database; keep the views fresh with `meshtop refresh --every 1m`\n" {
		t.Errorf("show: %s", r)
	}
	r = run(t, runOpts{}, "schedule", "--every", "1m", "--dsn", db.DSN).must(t, 1)
	if r.stderr != "meshtop: pg_cron is not installed in this database; keep the metrics fresh with `meshtop refresh --every 1m` instead\n" {
		t.Errorf("--every: %s", r)
	}
}
