package install_test

import (
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
)

// TestViewsMatchLiveQueriesOnGeneratedData compares every view with its
// ground-truth query on a generated history (20k runs with events over 30
// days, so the step view reads several monthly partitions).
func TestViewsMatchLiveQueriesOnGeneratedData(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	anchor := time.Date(2026, 2, 3, 9, 30, 0, 0, time.UTC)
	sum, err := fixture.Generate(ctx, db.Pool, fixture.Spec{Seed: 7, Projects: 3, Workflows: 12, Runs: 20_000, Days: 31, Anchor: anchor, Events: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Partitions) < 2 {
		t.Fatalf("events in %d partitions; want at least 2", len(sum.Partitions))
	}
	in := install.New(db.Pool, "metrics")
	mustApply(t, ctx, in)
	if err := in.SetClock(ctx, &anchor); err != nil {
		t.Fatal(err)
	}
	refreshAll(t, ctx, db.Pool, "metrics")
	// Twice: the second refresh is CONCURRENTLY and must give the same.
	refreshAll(t, ctx, db.Pool, "metrics")
	compareAllToLive(t, ctx, db.Pool, anchor)
	var runs30d, steps int64
	if err := db.Pool.QueryRow(ctx, `SELECT sum(execution_count) FROM metrics.mv_workflow_metrics WHERE "window" = '30d'`).Scan(&runs30d); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM metrics.mv_step_metrics WHERE failures > 0`).Scan(&steps); err != nil {
		t.Fatal(err)
	}
	if runs30d < 15_000 || steps == 0 {
		t.Fatalf("30d executions %d, failing steps %d: the data set is not what the test expects", runs30d, steps)
	}
}
