package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/pgserver"
	meshsql "github.com/meshtop/meshtop/sql"
)

// dataset is one generated MeshHook database.
type dataset struct {
	Label      string // "1M runs / 300 days"
	DB         string
	Runs, Days int
	EventDays  int
	Pool       *pgxpool.Pool
	GenSeconds float64
	Generated  string // fixture summary, for the report
	WorkflowID string // the busiest workflow: its hourly series is read
}

// runner holds what every group needs.
type runner struct {
	cfg    config
	srv    *pgserver.Server
	schema string // quoted
	sets   map[string]*dataset
	report *Report
	// periodic, when set, is what pgbench's withRefresh loop runs instead
	// of CALL S.refresh(); rate, when > 0, throttles pgbench (-R).
	periodic string
	rate     int
	// noSettle: pgbenchFromSameData removes what pgbench wrote and
	// vacuums, but does not refresh (the wal group's pairs, whose sides
	// measure writes only: the next refresh rebuilds once).
	noSettle bool
}

func run(ctx context.Context, cfg config) error {
	b := &runner{cfg: cfg, sets: map[string]*dataset{}, report: newReport(cfg)}
	q, err := meshsql.QuoteSchema(cfg.schema)
	if err != nil {
		return err
	}
	b.schema = q
	if cfg.groups["footprint"] || cfg.groups["serve"] {
		if err := buildMeshtop(ctx, cfg.meshtopBin); err != nil {
			return err
		}
	}
	logf("starting PostgreSQL with pg_stat_statements")
	b.srv, err = pgserver.Start(ctx, pgserver.Options{Settings: map[string]string{
		"shared_preload_libraries": "'pg_stat_statements'",
		"pg_stat_statements.track": "'top'",
		"pg_stat_statements.max":   "5000",
		"track_io_timing":          "off",
		"max_wal_size":             "'4GB'",
		"checkpoint_timeout":       "'15min'",
		"maintenance_work_mem":     "'256MB'",
		"autovacuum_naptime":       "'10s'",
	}})
	if err != nil {
		return fmt.Errorf("starting PostgreSQL: %w", err)
	}
	defer func() {
		for _, d := range b.sets {
			if d.Pool != nil {
				d.Pool.Close()
			}
		}
		if err := b.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "meshtop-bench: stopping PostgreSQL:", err)
		}
	}()
	b.report.LoadStart = loadAverage()
	if err := b.report.machine(ctx, b.srv); err != nil {
		return err
	}

	// Data sets. Same runs per hour (~139/h), history H and 10×H: the
	// 30-day windows hold the same number of runs in each, so a refresh
	// whose cost follows recent traffic costs the same in both. Events are
	// generated for the last 30 days only (what the views read), which
	// keeps 10M-run histories feasible.
	type spec struct {
		key        string
		runs, days int
	}
	var specs []spec
	if cfg.groups["refresh"] || cfg.groups["incremental"] {
		specs = append(specs, spec{"H", 100_000, 30})
	}
	if cfg.groups["retrieval"] || cfg.groups["refresh"] || cfg.groups["write"] || cfg.groups["footprint"] {
		specs = append(specs, spec{"10H", 1_000_000, 300})
	}
	if cfg.size == "large" {
		specs = append(specs, spec{"100H", 10_000_000, 3000})
	}
	// 10× the traffic of H: 1M runs in 30 days (the incremental refresh's
	// figures).
	if cfg.groups["incremental"] || cfg.groups["wal"] {
		specs = append(specs, spec{"10R", 1_000_000, 30})
	}
	for _, s := range specs {
		runs := int(float64(s.runs) * cfg.scale)
		d, err := b.generate(ctx, s.key, runs, s.days)
		if err != nil {
			return err
		}
		b.sets[s.key] = d
	}

	if cfg.groups["retrieval"] {
		for _, k := range []string{"10H", "100H"} {
			if d := b.sets[k]; d != nil {
				if err := b.retrieval(ctx, d); err != nil {
					return fmt.Errorf("retrieval on %s: %w", d.Label, err)
				}
			}
		}
	}
	if cfg.groups["refresh"] {
		pairsOf := [][2]string{{"H", "10H"}}
		if cfg.size == "large" {
			pairsOf = append(pairsOf, [2]string{"10H", "100H"})
		}
		for _, p := range pairsOf {
			if err := b.refreshScaling(ctx, b.sets[p[0]], b.sets[p[1]]); err != nil {
				return fmt.Errorf("refresh scaling: %w", err)
			}
		}
		big := b.sets["10H"]
		if cfg.size == "large" {
			big = b.sets["100H"]
		}
		if err := b.refreshNaive(ctx, b.sets["10H"]); err != nil {
			return fmt.Errorf("naive refresh: %w", err)
		}
		if big != b.sets["10H"] {
			if err := b.refreshNaive(ctx, big); err != nil {
				return fmt.Errorf("naive refresh: %w", err)
			}
		}
		if err := b.refreshAfterNew(ctx, b.sets["10H"]); err != nil {
			return fmt.Errorf("refresh after new runs: %w", err)
		}
	}
	if cfg.groups["incremental"] {
		if err := b.incremental(ctx, b.sets["H"], b.sets["10R"]); err != nil {
			return fmt.Errorf("incremental refresh: %w", err)
		}
	}
	if cfg.groups["wal"] {
		if err := b.walGroup(ctx, b.sets["10R"]); err != nil {
			return fmt.Errorf("wal capture: %w", err)
		}
	}
	if cfg.groups["write"] {
		if err := b.writeImpact(ctx, b.sets["10H"]); err != nil {
			return fmt.Errorf("write impact: %w", err)
		}
	}
	if cfg.groups["footprint"] {
		// The groups before ran dozens of refreshes (each CONCURRENTLY one
		// leaves a dead tuple per changed row) and pgbench added ~10^5 runs
		// through status 'running' in a few minutes: vacuum, as autovacuum
		// would have between refreshes at a normal cadence, so the
		// dashboard is measured at steady state.
		if _, err := b.sets["10H"].Pool.Exec(ctx, "vacuum analyze"); err != nil {
			return fmt.Errorf("vacuum before the footprint group: %w", err)
		}
		if err := b.footprint(ctx, b.sets["10H"]); err != nil {
			return fmt.Errorf("footprint: %w", err)
		}
		if err := b.renderBench(ctx); err != nil {
			return fmt.Errorf("render benchmarks: %w", err)
		}
	}

	if cfg.groups["serve"] {
		if err := b.serveGroup(ctx, b.sets["10H"]); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	if cfg.groups["drilldown"] {
		s, err := b.drillData(ctx)
		if s != nil {
			b.sets["drill"] = s.dataset
		}
		if err != nil {
			return fmt.Errorf("drill-down data: %w", err)
		}
		if err := b.drilldown(ctx, s); err != nil {
			return fmt.Errorf("drill-down: %w", err)
		}
	}

	b.report.Elapsed = time.Since(started)
	b.report.LoadEnd = loadAverage()
	fmt.Print(b.report.Text())
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(b.report.Markdown()), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", cfg.out, err)
		}
		logf("wrote %s", cfg.out)
	}
	if cfg.keep {
		keys := make([]string, 0, len(b.sets))
		for k := range b.sets {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(os.Stderr, "cluster kept until ctrl+c: %s\n", b.srv.DSN(b.sets[k].DB))
		}
		<-ctx.Done()
	}
	return nil
}

// buildMeshtop compiles the dashboard binary the footprint group runs.
func buildMeshtop(ctx context.Context, out string) error {
	logf("building %s", out)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/meshtop")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building meshtop (go build -o %s ./cmd/meshtop): %w", out, err)
	}
	return nil
}

// adminExec runs one statement in the postgres database.
func (b *runner) adminExec(ctx context.Context, stmt string) error {
	conn, err := pgx.Connect(ctx, b.srv.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("connecting to the postgres database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("running %q: %w", firstLine(stmt), err)
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// render substitutes the schema into an SQL text.
func (b *runner) render(text string) string { return meshsql.Render(text, b.schema) }

func humanCount(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1000:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// loadAverage is the 1-minute load average (other jobs on a shared machine
// slow both sides of every pair alike, but lengthen the run).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}
