package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/bench"
	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
)

// generate creates database bench_<key> with the MeshHook schema, fills it
// with fixture.Generate, installs meshtop's views, populates them, and adds
// the benchmark helpers (data/bench/setup.sql).
func (b *runner) generate(ctx context.Context, key string, runs, days int) (*dataset, error) {
	d := &dataset{
		Label: fmt.Sprintf("%s runs / %d days", humanCount(runs), days),
		DB:    "bench_" + strings.ToLower(key),
		Runs:  runs, Days: days, EventDays: 30,
	}
	logf("data set %s: creating database %s", d.Label, d.DB)
	if err := b.adminExec(ctx, "create database "+pgx.Identifier{d.DB}.Sanitize()); err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, b.srv.DSN(d.DB))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", d.DB, err)
	}
	err = fixture.ApplySchema(ctx, conn)
	conn.Close(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(b.srv.DSN(d.DB))
	if err != nil {
		return nil, fmt.Errorf("parsing the DSN of %s: %w", d.DB, err)
	}
	pcfg.MaxConns = 4
	pcfg.ConnConfig.RuntimeParams["application_name"] = "meshtop-bench"
	d.Pool, err = pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", d.DB, err)
	}

	logf("data set %s: generating with fixture.Generate (events for the last %d days)", d.Label, d.EventDays)
	t := time.Now()
	sum, err := fixture.Generate(ctx, d.Pool, fixture.Spec{
		Seed:      b.cfg.seed,
		Projects:  b.cfg.projects,
		Workflows: b.cfg.workflows,
		Runs:      runs,
		Days:      days,
		Events:    true,
		EventDays: d.EventDays,
	})
	if err != nil {
		return nil, fmt.Errorf("generating %s: %w", d.Label, err)
	}
	d.GenSeconds = time.Since(t).Seconds()
	d.Generated = fmt.Sprintf("%s (database %s): %d runs (%s), %d workflow definitions (%d slugs), %d events in %d monthly partitions; generated in %.1f s",
		d.Label, d.DB, sum.Runs, statusMix(sum.ByStatus), sum.Workflows, sum.Slugs, sum.Events, len(sum.Partitions), d.GenSeconds)
	b.report.Sets = append(b.report.Sets, d.Generated)
	logf("data set %s", d.Generated)
	for _, st := range sum.Steps {
		logf("  fixture step %s: %.1fs", st.Step, st.Elapsed.Seconds())
	}

	steps := []struct{ what, sql string }{
		{"vacuum analyze", "vacuum analyze"},
		// pgbench and the 10k-run insert write at now(): make sure the
		// partitions for the next weeks exist.
		{"event partitions", "select public.meshhook_ensure_event_partitions(now() - interval '1 day', now() + interval '40 days')"},
	}
	for _, s := range steps {
		if _, err := d.Pool.Exec(ctx, s.sql); err != nil {
			return nil, fmt.Errorf("%s on %s: %w", s.what, d.DB, err)
		}
	}
	logf("data set %s: installing meshtop's views", d.Label)
	inst := install.New(d.Pool, b.cfg.schema)
	if _, err := inst.Apply(ctx, nil); err != nil {
		return nil, fmt.Errorf("installing meshtop into %s: %w", d.DB, err)
	}
	t = time.Now()
	if _, err := d.Pool.Exec(ctx, "call "+b.schema+".refresh(null, true)"); err != nil {
		return nil, fmt.Errorf("first refresh of %s: %w", d.DB, err)
	}
	logf("data set %s: views populated in %.1fs", d.Label, time.Since(t).Seconds())
	if _, err := d.Pool.Exec(ctx, bench.SQL(bench.Setup)); err != nil {
		return nil, fmt.Errorf("benchmark helpers in %s: %w", d.DB, err)
	}
	err = d.Pool.QueryRow(ctx, b.render(`select workflow_id::text from @schema@.mv_workflow_metrics
		where "window" = '30d' order by execution_count desc, workflow_id limit 1`)).Scan(&d.WorkflowID)
	if err != nil {
		return nil, fmt.Errorf("finding the busiest workflow of %s: %w", d.DB, err)
	}
	return d, nil
}

// statusMix formats run counts by status in a fixed order.
func statusMix(by map[string]int64) string {
	var parts []string
	for _, st := range []string{"succeeded", "failed", "canceled", "running", "paused"} {
		if n, ok := by[st]; ok {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	return strings.Join(parts, ", ")
}
