package main

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/meshtop/meshtop/data/bench"
)

// First-frame markers: text each dashboard draws only together with its
// first data — meshtop's "data as of …" line under the overview table (drawn
// once the overview has been read), pg_activity's header "PostgreSQL
// <version> - …" (drawn with its first activity snapshot).
const (
	meshtopMarker    = "data as of"
	pgActivityMarker = "PostgreSQL"
)

// footprintRun is one program's figures in one window.
type footprintRun struct {
	ptyRun
	DBms, DBmsPerPoll float64
	Polls, Calls      int64
}

// footprint runs the meshtop dashboard and pg_activity against the same
// database at a 1 s poll under a 120×40 pseudo-terminal, alternating which
// goes first, each connected as its own role so pg_stat_statements can tell
// their queries apart (it does not record application_name).
func (b *runner) footprint(ctx context.Context, d *dataset) error {
	pga, err := exec.LookPath("pg_activity")
	if err != nil {
		return fmt.Errorf("pg_activity is not installed (make bench installs the Debian package pg-activity): %w", err)
	}
	meshtop, err := filepath.Abs(b.cfg.meshtopBin)
	if err != nil {
		return err
	}
	for _, role := range []string{"bench_meshtop", "bench_pgactivity"} {
		// Superusers, connecting over the unix socket (trust): both tools
		// see everything they can show, without a password.
		if err := b.adminExec(ctx, fmt.Sprintf(`do $$ begin
			if not exists (select from pg_roles where rolname = '%s') then create role %s login superuser; end if;
			end $$`, role, role)); err != nil {
			return err
		}
	}
	logf("footprint on %s: %d pairs of %s windows (meshtop vs pg_activity, 1 s poll)", d.Label, b.cfg.footPairs, b.cfg.footWindow)
	dsn := fmt.Sprintf("postgres://bench_meshtop@/%s?host=%s&port=%d&sslmode=disable",
		d.DB, url.QueryEscape(b.srv.SocketDir), b.srv.Port)
	tools := map[string]struct {
		argv   []string
		role   string
		marker string
	}{
		"meshtop": {[]string{meshtop, "--dsn", dsn, "--interval", "1s", "--no-install"}, "bench_meshtop", meshtopMarker},
		"pg_activity": {[]string{pga, "--refresh", "1", "-h", b.srv.SocketDir, "-p", strconv.Itoa(b.srv.Port),
			"-U", "bench_pgactivity", "-d", d.DB}, "bench_pgactivity", pgActivityMarker},
	}
	env := []string{"TERM=xterm-256color", "COLUMNS=120", "LINES=40", "LANG=C.UTF-8", "NO_COLOR="}
	warm := 5 * time.Second
	results := map[string][]footprintRun{}
	for i := 0; i < b.cfg.footPairs; i++ {
		order := []string{"meshtop", "pg_activity"}
		if i%2 == 1 {
			order = []string{"pg_activity", "meshtop"}
		}
		for _, name := range order {
			t := tools[name]
			if _, err := d.Pool.Exec(ctx, "select pg_stat_statements_reset()"); err != nil {
				return fmt.Errorf("resetting pg_stat_statements: %w", err)
			}
			r, err := runUnderPTY(ctx, t.argv, env, t.marker, b.cfg.footWindow, warm)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if r.FirstFrame < 0 {
				b.report.Notes = append(b.report.Notes, fmt.Sprintf("%s never showed %q within its %s window (pair %d), so that run has no first-frame figure; last output: %s",
					name, t.marker, b.cfg.footWindow, i+1, r.Tail))
			}
			fr := footprintRun{ptyRun: r}
			var calls, maxCalls, statements int64
			if err := d.Pool.QueryRow(ctx, bench.SQL(bench.StatementsOfApp), t.role).Scan(&fr.DBms, &calls, &maxCalls, &statements); err != nil {
				return fmt.Errorf("reading pg_stat_statements for %s: %w", name, err)
			}
			// Both poll every second: polls = seconds in the window
			// (a dashboard may run several statements per poll).
			fr.Polls = int64(b.cfg.footWindow / time.Second)
			fr.Calls = calls
			fr.DBmsPerPoll = fr.DBms / float64(fr.Polls)
			results[name] = append(results[name], fr)
			if i == 0 {
				b.topStatements(ctx, d, name, t.role)
			}
			logf("  pair %d %s: first frame %s, CPU %.2fs (idle %.2f%%), peak RSS %.1f MB, %.0f B/s, DB %.2f ms/poll (%d statements in %d polls)",
				i+1, name, r.FirstFrame.Round(time.Millisecond), r.CPUSeconds, r.IdleCPUPct, r.PeakRSSMB,
				float64(r.Bytes)/r.Window.Seconds(), fr.DBmsPerPoll, fr.Calls, fr.Polls)
		}
	}
	m, p := results["meshtop"], results["pg_activity"]
	pairs := func(f func(footprintRun) float64) []Pair {
		var out []Pair
		for i := range m {
			out = append(out, Pair{A: f(p[i]), B: f(m[i])})
		}
		return out
	}
	type fig struct {
		name, unit string
		f          func(footprintRun) float64
		goal       string
		met        func(r Ratio) bool
	}
	lighter := func(r Ratio) bool { return r.Median < 1 }
	figs := []fig{
		{"Time to first frame", "ms", func(r footprintRun) float64 {
			if r.FirstFrame < 0 {
				return math.NaN() // never shown: the pair is skipped
			}
			return float64(r.FirstFrame.Microseconds()) / 1000
		},
			"meshtop ≤ 200 ms; ratio < 1", func(r Ratio) bool { return r.MedianB <= 200 && r.Median < 1 }},
		{fmt.Sprintf("CPU seconds over the %s window", b.cfg.footWindow), "s", func(r footprintRun) float64 { return r.CPUSeconds },
			"ratio < 1", lighter},
		{fmt.Sprintf("Idle CPU (%% of one core, from %s to the end)", warm), "%", func(r footprintRun) float64 { return r.IdleCPUPct },
			"meshtop ≤ 1%; ratio < 1", func(r Ratio) bool { return r.MedianB <= 1 && r.Median < 1 }},
		{"Peak RSS (VmHWM)", "MB", func(r footprintRun) float64 { return r.PeakRSSMB },
			"meshtop ≤ 40 MB; ratio < 1", func(r Ratio) bool { return r.MedianB <= 40 && r.Median < 1 }},
		{"Bytes written to the terminal per second", "B/s", func(r footprintRun) float64 { return float64(r.Bytes) / r.Window.Seconds() },
			"ratio < 1", lighter},
		{"Database time per poll (pg_stat_statements)", "ms", func(r footprintRun) float64 { return r.DBmsPerPoll },
			"ratio < 1", lighter},
		{"Statements per poll", "", func(r footprintRun) float64 { return float64(r.Calls) / float64(r.Polls) },
			"reported", nil},
	}
	for _, f := range figs {
		r := Summarise(pairs(f.f), false)
		var met *bool
		if f.met != nil {
			met = boolp(f.met(r))
		}
		b.report.Add(Figure{
			Group: "Dashboard footprint", Name: f.name,
			Pair: "meshtop / pg_activity", Unit: f.unit, Ratio: r,
			Goal: f.goal, Met: met,
		})
	}
	return nil
}

// topStatements notes where one tool's database time went in its first run.
func (b *runner) topStatements(ctx context.Context, d *dataset, name, role string) {
	rows, err := d.Pool.Query(ctx, bench.SQL(bench.TopStatements), role, 3)
	if err != nil {
		b.report.Notes = append(b.report.Notes, fmt.Sprintf("could not read %s's top statements: %v", name, err))
		return
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var calls int64
		var total, mean float64
		var query string
		if err := rows.Scan(&calls, &total, &mean, &query); err != nil {
			return
		}
		parts = append(parts, fmt.Sprintf("`%s` (%d calls, mean %.2f ms)", strings.ReplaceAll(query, "`", "'"), calls, mean))
	}
	if len(parts) > 0 {
		b.report.Notes = append(b.report.Notes, fmt.Sprintf("%s's costliest statements in its first footprint run: %s", name, strings.Join(parts, "; ")))
	}
}
