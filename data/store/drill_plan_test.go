package store_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/meshtop/meshtop/data/bench"
	"github.com/meshtop/meshtop/data/workersim"
)

// TestDrillPlans: every drill-down query is served by an index and reads a
// bounded number of buffers, whatever the size of MeshHook's tables. The
// bodies of the definer functions are explained as each call plans them
// (bench.ExplainBody: the stored body under a generic plan), with
// EXPLAIN (ANALYZE, BUFFERS), on the scenario plus 20,000 bulk runs (with
// their ~230,000 events in two monthly partitions) whose busiest workflow
// has 2,000 runs in the 30 days. The figure on 1M runs is the benchmark's
// (cmd/meshtop-bench -groups drilldown, docs/BENCHMARKS-drilldown.md).
func TestDrillPlans(t *testing.T) {
	t.Parallel()
	e := setupDrill(t)
	ctx := ctxT(t)
	bulk := workersim.ID("project:bulk")
	if err := workersim.Project(ctx, e.db.Pool, bulk, workersim.ID("owner:bulk"), "bulk"); err != nil {
		t.Fatal(err)
	}
	var wfs []string
	for i := range 20 {
		id := workersim.ID(fmt.Sprintf("workflow:bulk-%d", i))
		if err := workersim.Workflow(ctx, e.db.Pool, id, bulk, fmt.Sprintf("bulk-%d", i), fmt.Sprintf("Bulk %d", i), 1, workersim.BulkNodes); err != nil {
			t.Fatal(err)
		}
		wfs = append(wfs, id)
	}
	if err := workersim.Bulk(ctx, e.db.Pool, workersim.BulkSpec{Project: bulk, Workflows: wfs, Runs: 20000, Days: 30, Anchor: anchor}); err != nil {
		t.Fatal(err)
	}
	// Twice, as autovacuum would have by the time runs are days old: the
	// first pass leaves the pages whose old run versions it removed
	// without their all-visible bit, and index-only scans fetch those
	// runs' rows from the heap (the slowest list's cost on runs younger
	// than autovacuum's last pass: one heap page per run at worst).
	for range 2 {
		if _, err := e.db.Pool.Exec(ctx, "vacuum analyze"); err != nil {
			t.Fatal(err)
		}
	}
	busy := wfs[0]
	var failedRun string
	if err := e.db.Pool.QueryRow(ctx, `select id::text from public.workflow_runs where workflow_id = $1 and status = 'failed'
		order by started_at desc limit 1`, busy).Scan(&failedRun); err != nil {
		t.Fatal(err)
	}
	conn, err := e.db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	cases := []struct {
		name   string
		fn     string
		args   []string
		rows   int64
		maxBuf int64
	}{
		{"failed runs, 30d, 20", "drill_failed_runs", []string{bench.Literal(busy), "'30d'", "20"}, 20, 200},
		{"failed runs, 24h, 20", "drill_failed_runs", []string{bench.Literal(busy), "'24h'", "20"}, -1, 100},
		{"slowest runs, 30d, 20", "drill_slowest_runs", []string{bench.Literal(busy), "'30d'", "20"}, 20, 300},
		{"run", "drill_run", []string{bench.Literal(failedRun)}, 1, 20},
		{"run steps", "drill_run_steps", []string{bench.Literal(failedRun)}, 2, 40},
	}
	for _, c := range cases {
		p, err := bench.ExplainBody(ctx, conn.Conn(), schema+"."+c.fn, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Logf("%s:\n%s", c.name, p)
		if c.rows >= 0 && p.Rows != c.rows {
			t.Errorf("%s: %d rows, want %d", c.name, p.Rows, c.rows)
		}
		if p.Buffers > c.maxBuf {
			t.Errorf("%s: %d buffers, want at most %d", c.name, p.Buffers, c.maxBuf)
		}
		checkDrillPlan(t, c.name, p)
	}
}

// checkDrillPlan: no sequential scan of MeshHook's runs or events; runs
// read through meshtop's drill index or the primary key; events through
// the (run_id, ts) index of the run's partitions only.
func checkDrillPlan(t *testing.T, name string, p bench.Plan) {
	t.Helper()
	runsByIndex, pruned := false, false
	for _, n := range p.Nodes {
		isEvents := strings.HasPrefix(n.Relation, "workflow_events")
		if n.Loops == 0 {
			// Never executed: an event partition run-time pruning left out.
			pruned = pruned || isEvents
			continue
		}
		if (n.Relation == "workflow_runs" || isEvents) && !strings.Contains(n.Type, "Index") {
			t.Errorf("%s: %s on %s:\n%s", name, n.Type, n.Relation, p)
		}
		if n.Relation == "workflow_runs" && (n.Index == "meshtop_workflow_runs_drill_idx" || n.Index == "workflow_runs_pkey") {
			runsByIndex = true
		}
		if isEvents && !strings.HasSuffix(n.Index, "_run_id_ts_idx") {
			t.Errorf("%s: events of %s read through %q:\n%s", name, n.Relation, n.Index, p)
		}
	}
	if !runsByIndex {
		t.Errorf("%s: runs not read through the drill index or the primary key:\n%s", name, p)
	}
	if !pruned && strings.Contains(p.String(), "workflow_events") {
		t.Errorf("%s: no event partition was pruned:\n%s", name, p)
	}
}
