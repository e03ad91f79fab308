package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestVersionAndCompletion(t *testing.T) {
	t.Parallel()
	r := run(t, runOpts{}, "version").must(t, 0)
	if !strings.HasPrefix(r.stdout, "meshtop 1.2.3 (commit abc1234, go1.") {
		t.Errorf("version output: %q", r.stdout)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := run(t, runOpts{}, "completion", sh).must(t, 0)
		if !strings.Contains(r.stdout, "meshtop") || len(r.stdout) < 500 {
			t.Errorf("completion %s: %q", sh, r.stdout[:min(200, len(r.stdout))])
		}
	}
}

func TestDashboardNeedsTerminal(t *testing.T) {
	t.Parallel()
	r := run(t, runOpts{}, "--dsn", "postgres://u:"+secret+"@127.0.0.1:1/db").must(t, ExitNoTTY)
	want := "meshtop: the dashboard needs a terminal; use `meshtop status` (or --json) for scripts\n"
	if r.stderr != want || r.stdout != "" {
		t.Errorf("got %s", r)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"window 2d", nil, []string{"status", "--window", "2d"}, 1,
			`meshtop: invalid argument "2d" for "--window" flag: unknown window "2d": use one of 1h, 24h, 7d, 30d (see ` + "`meshtop status --help`)"},
		{"check window 2d is UNKNOWN", nil, []string{"check", "--window", "2d"}, 3,
			`MESHTOP UNKNOWN - invalid argument "2d" for "--window" flag: unknown window "2d"`},
		{"check bad rate", nil, []string{"check", "--min-success-rate", "1.5"}, 3,
			`MESHTOP UNKNOWN - invalid argument "1.5" for "--min-success-rate" flag: invalid rate "1.5": must be between 0 and 1`},
		{"negative duration", nil, []string{"refresh", "--every", "-1m"}, 1,
			`invalid duration "-1m": must be at least 1ms`},
		{"unknown flag", nil, []string{"status", "--frobnicate"}, 1, "unknown flag: --frobnicate"},
		{"unknown command", nil, []string{"frobnicate"}, 1, `unknown command "frobnicate" for "meshtop"`},
		{"bad env", map[string]string{"MESHTOP_STATEMENT_TIMEOUT": "soon"}, []string{"status"}, 1,
			`meshtop: invalid MESHTOP_STATEMENT_TIMEOUT: invalid duration "soon"`},
		{"unknown view", nil, []string{"refresh", "--view", "mv_nope"}, 1, "mv_nope"},
		{"schedule two modes", nil, []string{"schedule", "--off", "--show"}, 1, "use one of --every, --off and --show"},
		{"uninstall needs confirmation", nil, []string{"uninstall"}, 1,
			"meshtop: refusing to uninstall without confirmation: stdin is not a terminal; pass --yes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, runOpts{env: c.env}, c.args...).must(t, c.code)
			if !strings.Contains(r.stdout+r.stderr, c.want) {
				t.Errorf("want %q in %s", c.want, r)
			}
			if lines := strings.Count(strings.TrimSpace(r.stdout+r.stderr), "\n"); lines != 0 {
				t.Errorf("want one line, got %s", r)
			}
		})
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		verb string
	}{
		{[]string{"install"}, "install"},
		{[]string{"uninstall", "--yes"}, "uninstall"},
		{[]string{"refresh"}, "refresh"},
		{[]string{"refresh", "--every", "1m"}, "refresh"},
		{[]string{"schedule", "--every", "1m"}, "change the schedule"},
		{[]string{"schedule", "--off"}, "change the schedule"},
	}
	for _, c := range cases {
		// The DSN points nowhere: the refusal comes before connecting.
		dsn := "postgres://u:" + secret + "@127.0.0.1:1/db"
		r := run(t, runOpts{}, append(c.args, "--read-only", "--dsn", dsn)...).must(t, 1)
		want := "meshtop: refusing to " + c.verb + ": --read-only is set\n"
		if r.stderr != want {
			t.Errorf("%v: got %s", c.args, r)
		}
		r = run(t, runOpts{env: map[string]string{"MESHTOP_READ_ONLY": "true", "MESHTOP_DSN": dsn}}, c.args...).must(t, 1)
		if r.stderr != want {
			t.Errorf("%v with MESHTOP_READ_ONLY: got %s", c.args, r)
		}
	}
}

// TestInstallRefreshStatusUninstall walks a database through meshtop's life.
func TestInstallRefreshStatusUninstall(t *testing.T) {
	t.Parallel()
	db := seeded(t)
	dsn := []string{"--dsn", db.DSN}

	r := run(t, runOpts{}, append([]string{"status"}, dsn...)...).must(t, 1)
	if !strings.Contains(r.stderr, "metrics views are not installed; run `meshtop install`") {
		t.Errorf("status before install: %s", r)
	}

	r = run(t, runOpts{}, append([]string{"install", "--dry-run"}, dsn...)...).must(t, 0)
	if !strings.Contains(r.stdout, "CREATE MATERIALIZED VIEW") && !strings.Contains(r.stdout, "create materialized view") {
		t.Errorf("dry run shows no view DDL: %.400s", r.stdout)
	}
	r = run(t, runOpts{}, append([]string{"status"}, dsn...)...).must(t, 1) // dry run changed nothing

	r = run(t, runOpts{}, append([]string{"install"}, dsn...)...).must(t, 0)
	if !strings.Contains(r.stdout, "installed into schema metrics") || !strings.Contains(r.stdout, "ok ") {
		t.Errorf("install: %s", r)
	}
	r = run(t, runOpts{}, append([]string{"install"}, dsn...)...).must(t, 0)
	if !strings.Contains(r.stdout, "schema metrics is up to date: nothing to do") {
		t.Errorf("second install: %s", r)
	}
	r = run(t, runOpts{}, append([]string{"install", "--dry-run"}, dsn...)...).must(t, 0)
	if !strings.Contains(r.stdout, "up to date") {
		t.Errorf("dry run after install: %s", r)
	}
	setClock(t, db, anchor)

	r = run(t, runOpts{}, append([]string{"refresh"}, dsn...)...).must(t, 0)
	// Each line ends with how the refresh used the rollup: the first one
	// builds it ("full"), the others apply the change log.
	line := regexp.MustCompile(`^mv_\w+\s+ok\s+\d+ rows\s+\d+ ms  (full|incremental, \d+ dirty keys)$`)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines: %s", r)
	}
	for i, v := range []string{"mv_workflow_metrics_hourly", "mv_workflow_metrics", "mv_step_metrics"} {
		if !strings.HasPrefix(lines[i], v+" ") || !line.MatchString(lines[i]) {
			t.Errorf("line %d = %q", i, lines[i])
		}
	}
	appEnv := runOpts{env: map[string]string{"MESHTOP_APPLICATION_NAME": "cron-job-7"}}
	r = run(t, appEnv, append([]string{"refresh", "--view", "mv_step_metrics", "--wait", "--timeout", "1m"}, dsn...)...).must(t, 0)
	if !strings.HasPrefix(r.stdout, "mv_step_metrics ") || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("refresh --view: %s", r)
	}
	var app, prevApp string
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer lcancel()
	if err := db.Pool.QueryRow(lctx, `select (array_agg(application_name order by id desc))[1], (array_agg(application_name order by id desc))[2]
		from metrics.refresh_log`).Scan(&app, &prevApp); err != nil {
		t.Fatal(err)
	}
	if app != "cron-job-7" || prevApp != "meshtop refresh" {
		t.Errorf("refresh log application_name: latest %q, before %q", app, prevApp)
	}

	r = run(t, runOpts{}, append([]string{"status", "--window", "7d"}, dsn...)...).must(t, 0)
	for _, want := range []string{"window 7d", "VIEW", "mv_workflow_metrics_hourly", "WORKFLOW", "SUCCESS", "yes"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status table lacks %q:\n%s", want, r.stdout)
		}
	}

	r = run(t, runOpts{}, append([]string{"status", "--json", "--window", "7d"}, dsn...)...).must(t, 0)
	var doc StatusJSON
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if doc.SchemaVersion != 1 || doc.Window != "7d" || len(doc.Views) != 3 || len(doc.Workflows) == 0 {
		t.Errorf("status --json: %+v", doc)
	}
	var runs int64
	for _, w := range doc.Workflows {
		runs += w.Runs
		if w.SuccessRate != nil && (*w.SuccessRate < 0 || *w.SuccessRate > 1) {
			t.Errorf("rate out of range: %+v", w)
		}
	}
	var want int64
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.Pool.QueryRow(ctx, "select count(*) from public.workflow_runs where started_at > $1::timestamptz - interval '7 days' and started_at <= $1", anchor).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if runs != want {
		t.Errorf("status --json counts %d runs in 7d, the table has %d", runs, want)
	}

	r = run(t, runOpts{stdin: "n\n", tty: true}, append([]string{"uninstall"}, dsn...)...).must(t, 1)
	if !strings.Contains(r.stderr, "[y/N]") || !strings.Contains(r.stderr, "not uninstalled") {
		t.Errorf("uninstall answered n: %s", r)
	}
	run(t, runOpts{}, append([]string{"status"}, dsn...)...).must(t, 0)
	r = run(t, runOpts{stdin: "y\n", tty: true}, append([]string{"uninstall"}, dsn...)...).must(t, 0)
	if !strings.Contains(r.stdout, "uninstalled") {
		t.Errorf("uninstall: %s", r)
	}
	r = run(t, runOpts{}, append([]string{"status"}, dsn...)...).must(t, 1)
	if !strings.Contains(r.stderr, "not installed") {
		t.Errorf("status after uninstall: %s", r)
	}
}

func TestPanicIsOneLine(t *testing.T) {
	t.Parallel()
	var stdout, stderr syncBuffer
	code := Main(context.Background(), nil, IO{
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Getenv:     func(string) string { return "" },
		IsTerminal: func(any) bool { panic("boom at postgres://u:" + secret + "@h/db") },
	})
	if code != 1 || stderr.String() != "meshtop: internal error: boom at postgres://u:xxxxx@h/db (please report it; MESHTOP_DEBUG=1 shows where)\n" {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
