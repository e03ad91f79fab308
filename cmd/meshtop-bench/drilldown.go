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
	"github.com/meshtop/meshtop/data/workersim"
)

// drillSet is the drill-down group's data: runs written as MeshHook's
// workers write them (data/workersim.Bulk: retries, final failures after 5
// attempts, events appended in time order), 1M runs in 30 days at scale 1.
type drillSet struct {
	*dataset
	busy      string // the workflow with the most runs
	failedRun string // its newest failed run
}

// drillAnchor is the end of the drill-down data set's 30 days (and the
// pinned metrics clock), fixed so the plans do not depend on the day.
var drillAnchor = time.Date(2026, 3, 10, 12, 30, 0, 0, time.UTC)

// drillData creates database bench_drill with meshtop installed.
func (b *runner) drillData(ctx context.Context) (*drillSet, error) {
	runs := int(1_000_000 * b.cfg.scale)
	d := &dataset{Label: fmt.Sprintf("%s runs / 30 days (MeshHook's shape)", humanCount(runs)), DB: "bench_drill", Runs: runs, Days: 30, EventDays: 30}
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
		return nil, err
	}
	pcfg.MaxConns = 4
	pcfg.ConnConfig.RuntimeParams["application_name"] = "meshtop-bench"
	if d.Pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return nil, err
	}
	t := time.Now()
	project := workersim.ID("project:bench")
	if err := workersim.Project(ctx, d.Pool, project, workersim.ID("owner:bench"), "bench"); err != nil {
		return nil, err
	}
	var wfs []string
	for i := range b.cfg.workflows {
		id := workersim.ID(fmt.Sprintf("workflow:bench-%d", i))
		if err := workersim.Workflow(ctx, d.Pool, id, project, fmt.Sprintf("bench-%d", i), fmt.Sprintf("Bench %d", i), 1, workersim.BulkNodes); err != nil {
			return nil, err
		}
		wfs = append(wfs, id)
	}
	logf("data set %s: writing %d runs of %d workflows with workersim.Bulk", d.Label, runs, len(wfs))
	// Bulk-load mode on one connection, as fixture.Generate does: no
	// foreign-key check per event. (Most of the time is the events'
	// partition routing and their four indexes: ~30 µs an event on the
	// shared 2-core machine, some 6 minutes for 1M runs.)
	bc, err := d.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	_, err = bc.Exec(ctx, "SET session_replication_role = replica")
	if err == nil {
		err = workersim.Bulk(ctx, bc, workersim.BulkSpec{Project: project, Workflows: wfs, Runs: runs, Days: 30, Anchor: drillAnchor, Seed: int(b.cfg.seed)})
	}
	if _, rerr := bc.Exec(context.WithoutCancel(ctx), "RESET session_replication_role"); rerr != nil {
		_ = bc.Conn().Close(context.WithoutCancel(ctx))
	}
	bc.Release()
	if err != nil {
		return nil, err
	}
	// Twice: the first pass leaves the pages whose run versions it removed
	// without their all-visible bit (as autovacuum would have set it by the
	// time the runs of a 30-day window are read).
	for range 2 {
		if _, err := d.Pool.Exec(ctx, "vacuum analyze"); err != nil {
			return nil, err
		}
	}
	d.GenSeconds = time.Since(t).Seconds()
	var events int64
	if err := d.Pool.QueryRow(ctx, "select count(*) from public.workflow_events").Scan(&events); err != nil {
		return nil, err
	}
	logf("data set %s: installing meshtop (the drill-down index is built concurrently)", d.Label)
	inst := install.New(d.Pool, b.cfg.schema)
	t = time.Now()
	if _, err := inst.Apply(ctx, nil); err != nil {
		return nil, fmt.Errorf("installing meshtop into %s: %w", d.DB, err)
	}
	installSecs := time.Since(t).Seconds()
	a := drillAnchor
	if err := inst.SetClock(ctx, &a); err != nil {
		return nil, err
	}
	if _, err := d.Pool.Exec(ctx, "analyze public.workflow_runs"); err != nil {
		return nil, err
	}
	s := &drillSet{dataset: d, busy: wfs[0]}
	if err := d.Pool.QueryRow(ctx, `select id::text from public.workflow_runs where workflow_id = $1 and status = 'failed'
		order by started_at desc limit 1`, s.busy).Scan(&s.failedRun); err != nil {
		return nil, fmt.Errorf("finding a failed run: %w", err)
	}
	var busyRuns, busyFailed int64
	if err := d.Pool.QueryRow(ctx, `select count(*), count(*) filter (where status = 'failed') from public.workflow_runs where workflow_id = $1`, s.busy).
		Scan(&busyRuns, &busyFailed); err != nil {
		return nil, err
	}
	d.Generated = fmt.Sprintf("%s (database %s): %d runs of %d workflows (the busiest %d runs, %d failed), %d events; written in %.1f s, meshtop installed in %.1f s (both indexes built concurrently)",
		d.Label, d.DB, runs, len(wfs), busyRuns, busyFailed, events, d.GenSeconds, installSecs)
	b.report.Sets = append(b.report.Sets, d.Generated)
	logf("data set %s", d.Generated)
	return s, nil
}

// Naive queries: what one would type in psql to answer the same questions
// without meshtop — the runs through MeshHook's own indexes, a run's events
// by run_id alone (every monthly partition probed), whole payloads read.
const (
	naiveFailed = `select r.id, r.started_at, r.finished_at,
  (select e.payload from public.workflow_events e
   where e.run_id = r.id and e.type = 'step_failed' order by e.ts desc limit 1) as last_failure
from public.workflow_runs r
where r.workflow_id = $1 and r.status = 'failed' and r.started_at > $2::timestamptz - interval '30 days'
order by r.started_at desc limit 20`
	naiveSlowest = `select r.id, r.status, r.started_at, r.finished_at
from public.workflow_runs r
where r.workflow_id = $1 and r.finished_at is not null and r.started_at > $2::timestamptz - interval '30 days'
order by r.finished_at - r.started_at desc limit 20`
	naiveTimeline = `select e.ts, e.type, e.payload from public.workflow_events e where e.run_id = $1 order by e.ts, e.id`
)

// drilldown measures the drill-down's statements (the function bodies as
// every call plans them: bench.ExplainBody) against the naive queries
// without meshtop's index (dropped in a transaction that is rolled back),
// in EXPLAIN (ANALYZE, BUFFERS): buffers and execution time, alternating.
func (b *runner) drilldown(ctx context.Context, s *drillSet) error {
	logf("drill-down on %s", s.Label)
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	c := conn.Conn()
	fn := func(name string) string { return b.schema + "." + name }
	type side func() (bench.Plan, error)
	naive := func(stmt string, args ...any) side {
		return func() (bench.Plan, error) {
			tx, err := c.Begin(ctx)
			if err != nil {
				return bench.Plan{}, err
			}
			defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
			if _, err := tx.Exec(ctx, "DROP INDEX public."+install.DrillIndexName); err != nil {
				return bench.Plan{}, err
			}
			return bench.Explain(ctx, tx.Conn(), stmt, args...)
		}
	}
	drill := func(name string, args ...string) side {
		return func() (bench.Plan, error) { return bench.ExplainBody(ctx, c, fn(name), args...) }
	}
	cases := []struct {
		name, goal string
		limit      float64
		a, b       side
	}{
		{"Failed runs of the busiest workflow (30d, 20 runs)", "≤ 300 buffers", 300,
			drill("drill_failed_runs", bench.Literal(s.busy), "'30d'", "20"), naive(naiveFailed, s.busy, drillAnchor)},
		{"One run's timeline (a failed run)", "≤ 300 buffers", 300,
			drill("drill_run_steps", bench.Literal(s.failedRun)), naive(naiveTimeline, s.failedRun)},
		{"Slowest runs of the busiest workflow (30d, 20 runs)", "bounded (≤ 3 × 5,000 index entries)", 0,
			drill("drill_slowest_runs", bench.Literal(s.busy), "'30d'", "20"), naive(naiveSlowest, s.busy, drillAnchor)},
	}
	for _, cs := range cases {
		// Warm both sides once (the plans of the other groups run warm too).
		if _, err := cs.a(); err != nil {
			return fmt.Errorf("%s: %w", cs.name, err)
		}
		if _, err := cs.b(); err != nil {
			return fmt.Errorf("%s (naive): %w", cs.name, err)
		}
		var bufs, ms []Pair
		var shape string
		for i := 0; i < b.cfg.pairs; i++ {
			first, second := cs.a, cs.b
			if i%2 == 1 {
				first, second = cs.b, cs.a
			}
			p1, err := first()
			if err != nil {
				return fmt.Errorf("%s: %w", cs.name, err)
			}
			p2, err := second()
			if err != nil {
				return fmt.Errorf("%s: %w", cs.name, err)
			}
			pa, pb := p1, p2
			if i%2 == 1 {
				pa, pb = p2, p1
			}
			bufs = append(bufs, Pair{A: float64(pa.Buffers), B: float64(pb.Buffers)})
			ms = append(ms, Pair{A: pa.ExecMs, B: pb.ExecMs})
			shape = scanSummary(pa) + " / naive: " + scanSummary(pb)
			logf("  %s pair %d: %d vs %d buffers, %.2f vs %.2f ms", cs.name, i+1, pa.Buffers, pb.Buffers, pa.ExecMs, pb.ExecMs)
		}
		rb := Summarise(bufs, false)
		rt := Summarise(ms, false)
		var met *bool
		if cs.limit > 0 {
			met = boolp(rb.MedianA <= cs.limit)
		}
		b.report.Add(Figure{Group: "Drill-down", Name: cs.name + ", " + s.Label, Pair: "naive without meshtop's index / meshtop's drill-down",
			Unit: "buffers", Ratio: rb, Goal: cs.goal, Met: met,
			Note: fmt.Sprintf("%s: execution %.2f ms vs naive %.2f ms (medians). Plan: %s", cs.name, rt.MedianA, rt.MedianB, shape)})
	}
	return nil
}

// scanSummary names a plan's executed scans of MeshHook's tables and its
// buffers.
func scanSummary(p bench.Plan) string {
	seen := map[string]int64{}
	var order []string
	for _, n := range p.Nodes {
		if n.Loops == 0 || n.Relation == "" || (n.Relation != "workflow_runs" && !strings.HasPrefix(n.Relation, "workflow_events")) {
			continue
		}
		k := n.Type + " on " + n.Relation
		if n.Index != "" {
			k += " using " + n.Index
		}
		if _, ok := seen[k]; !ok {
			order = append(order, k)
		}
		seen[k] += n.Loops
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, seen[k]))
	}
	return fmt.Sprintf("%s (%d buffers)", strings.Join(parts, ", "), p.Buffers)
}
