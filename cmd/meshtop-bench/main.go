// Command meshtop-bench is `make bench`: it starts a throwaway PostgreSQL
// with pg_stat_statements, generates MeshHook-shaped data sets with
// fixture.Generate, installs meshtop's views, and measures four groups of
// figures, each a ratio of two things measured side by side in one run
// (A/B alternated, at least 5 pairs unless stated, median with min–max):
//
//  1. retrieval: one dashboard screen read from the views vs computed live
//     from the raw tables (sql/queries/live_*.sql);
//  2. refresh scaling: refreshing every view with a history H vs 10×H at the
//     same runs per hour, after 10k new runs, and vs a naive all-time view;
//  3. write impact: pgbench with a MeshHook-shaped script with vs without a
//     refresh every 10 s;
//  4. dashboard footprint: the meshtop binary vs pg_activity under a
//     pseudo-terminal, plus the TUI's Go render benchmarks;
//  5. meshtop serve: database time per poll with 20 SSH dashboards vs 1,
//     memory per additional session, a warm-cache scrape vs status --json;
//  6. wal: change capture from the WAL vs nothing installed (throughput,
//     p99 at a throttled rate), WAL per run with replica identity FULL,
//     freshness commit → visible and the refreshing side's CPU (wal.go).
//  7. drill-down: the buffers of a workflow's failed runs, its slowest runs
//     and a run's timeline (EXPLAIN (ANALYZE, BUFFERS)) on 1M runs in 30
//     days written as MeshHook's workers write them (data/workersim), vs
//     naive queries without meshtop's index.
//
// It prints a table and rewrites docs/BENCHMARKS.md (-out). BENCH_SIZE=large
// adds a 10M-run data set. Nothing here is a test: it reports figures and
// whether each goal was met; it never fails because a goal was missed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type config struct {
	out            string
	size           string
	pairs          int
	footPairs      int
	footWindow     time.Duration
	pgbenchSeconds int
	walSeconds     int
	pgbenchClients int
	refreshEvery   time.Duration
	groups         map[string]bool
	workflows      int
	projects       int
	seed           int64
	schema         string
	meshtopBin     string
	keep           bool
	scale          float64
	walRate        int
	walEvery       time.Duration
	walFreshFor    time.Duration
	flags          []string // the measuring flags given on the command line, for the report
}

func main() {
	var cfg config
	var groups string
	flag.StringVar(&cfg.out, "out", "", "rewrite this markdown file with the results (e.g. docs/BENCHMARKS.md)")
	flag.StringVar(&cfg.size, "size", envOr("BENCH_SIZE", "default"), "data sets: default (100k and 1M runs) or large (adds 10M); env BENCH_SIZE")
	flag.IntVar(&cfg.pairs, "pairs", 5, "A/B pairs per figure (at least 5 for the issue's rules)")
	flag.IntVar(&cfg.footPairs, "footprint-pairs", 5, "meshtop/pg_activity pairs in the footprint group")
	flag.DurationVar(&cfg.footWindow, "footprint-window", 20*time.Second, "how long each footprint run lasts")
	flag.IntVar(&cfg.pgbenchSeconds, "pgbench-seconds", 20, "duration of each pgbench run")
	flag.IntVar(&cfg.walSeconds, "wal-pgbench-seconds", 30, "wal group: duration of each pgbench run (throughput is counted from half a refresh-every after the start to half one before the end)")
	flag.IntVar(&cfg.pgbenchClients, "pgbench-clients", 4, "pgbench clients (MeshHook workers)")
	flag.DurationVar(&cfg.refreshEvery, "refresh-every", 10*time.Second, "refresh interval during the write-impact runs")
	flag.StringVar(&groups, "groups", defaultGroups, "comma-separated groups to run")
	flag.IntVar(&cfg.workflows, "workflows", 1000, "workflows (slugs) per data set")
	flag.IntVar(&cfg.projects, "projects", 20, "projects per data set")
	flag.Int64Var(&cfg.seed, "seed", 6, "fixture seed")
	flag.StringVar(&cfg.schema, "schema", "metrics", "schema meshtop installs into")
	flag.StringVar(&cfg.meshtopBin, "meshtop", "bin/meshtop", "the meshtop binary (built with go build -o bin/meshtop ./cmd/meshtop if missing)")
	flag.BoolVar(&cfg.keep, "keep", false, "print the cluster's DSN and wait for ctrl+c before removing it")
	flag.IntVar(&cfg.walRate, "wal-rate", 100, "wal group: pgbench's throttled rate (-R, transactions/s) for the p99 latency figure")
	flag.DurationVar(&cfg.walEvery, "wal-every", 3*time.Second, "wal group: the refresh cadence of the freshness figure")
	flag.DurationVar(&cfg.walFreshFor, "wal-fresh-for", 60*time.Second, "wal group: how long runs are written at 4/s for the freshness figure")
	flag.Float64Var(&cfg.scale, "scale", 1, "multiply every data set's run count (e.g. 0.05 for a quick trial of the harness; figures are then not the documented ones)")
	flag.Parse()
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "out", "size", "keep", "meshtop":
			// Where the report goes and how the run is driven, not what it
			// measures (the size is always shown).
		default:
			cfg.flags = append(cfg.flags, "-"+f.Name+" "+f.Value.String())
		}
	})
	cfg.groups = map[string]bool{}
	for _, g := range strings.Split(groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			cfg.groups[g] = true
		}
	}
	if cfg.size != "default" && cfg.size != "large" {
		fmt.Fprintf(os.Stderr, "meshtop-bench: unknown size %q: use default or large\n", cfg.size)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "meshtop-bench:", err)
		os.Exit(1)
	}
}

// defaultGroups are every group, in the order they run.
const defaultGroups = "retrieval,refresh,incremental,wal,write,footprint,serve,drilldown"

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// logf prints progress to stderr with the elapsed time.
var started = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}
