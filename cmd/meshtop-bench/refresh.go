package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshtop/meshtop/data/bench"
)

// viewOrder is the dependency order CALL S.refresh() uses.
var viewOrder = []string{"mv_workflow_metrics_hourly", "mv_workflow_metrics", "mv_step_metrics"}

// refreshViews refreshes the given views of d one after the other and
// returns the total wall time in ms (the client round trip of each REFRESH
// statement, which is the server's time plus one loopback round trip).
func (b *runner) refreshViews(ctx context.Context, d *dataset, views []string, concurrently bool) (float64, error) {
	conn, err := d.Pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("acquiring a connection to %s: %w", d.DB, err)
	}
	defer conn.Release()
	mode := ""
	if concurrently {
		mode = "concurrently "
	}
	var total float64
	for _, v := range views {
		stmt := "refresh materialized view " + mode + b.schema + "." + pgx.Identifier{v}.Sanitize()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
		t := time.Now()
		_, err := conn.Exec(ctx, stmt)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("%s on %s: %w", stmt, d.DB, err)
		}
		total += float64(time.Since(t).Microseconds()) / 1000
	}
	return total, nil
}

// timeStmt runs one statement on d and returns its wall time in ms.
func timeStmt(ctx context.Context, d *dataset, stmt string, args ...any) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	t := time.Now()
	if _, err := d.Pool.Exec(ctx, stmt, args...); err != nil {
		return 0, fmt.Errorf("%s on %s: %w", firstLine(stmt), d.DB, err)
	}
	return float64(time.Since(t).Microseconds()) / 1000, nil
}

// refreshScaling refreshes every view on a history H (small) and 10×H (big)
// at the same runs per hour, plain and CONCURRENTLY, alternating which data
// set goes first; the naive all-time view is refreshed the same way for
// contrast.
func (b *runner) refreshScaling(ctx context.Context, small, big *dataset) error {
	logf("refresh scaling: %s vs %s", small.Label, big.Label)
	type variant struct {
		name, goal string
		run        func(d *dataset) (float64, error)
		met        func(r Ratio) *bool
		warm       bool // needs its own warm-up run on each side
	}
	variants := []variant{
		{"all views, plain REFRESH", "≤ 1.5×",
			func(d *dataset) (float64, error) { return b.refreshViews(ctx, d, viewOrder, false) },
			func(r Ratio) *bool { return boolp(r.Median <= 1.5) }, true},
		{"all views, REFRESH CONCURRENTLY", "≤ 1.5×",
			func(d *dataset) (float64, error) { return b.refreshViews(ctx, d, viewOrder, true) },
			func(r Ratio) *bool { return boolp(r.Median <= 1.5) }, false},
		{"naive all-time view (contrast)", "none (contrast)",
			func(d *dataset) (float64, error) { return timeStmt(ctx, d, bench.SQL(bench.NaiveRefresh)) },
			func(Ratio) *bool { return nil }, true}, // also populates it
	}
	for _, v := range variants {
		// Warm-up of both sides (the plain refreshes warm the CONCURRENTLY
		// ones: same reads).
		for _, d := range []*dataset{small, big} {
			if !v.warm {
				break
			}
			if _, err := v.run(d); err != nil {
				return err
			}
		}
		var pairs []Pair
		for i := 0; i < b.cfg.pairs; i++ {
			var p Pair
			first, second := small, big
			fa, fb := &p.A, &p.B
			if i%2 == 1 {
				first, second, fa, fb = big, small, &p.B, &p.A
			}
			var err error
			if *fa, err = v.run(first); err != nil {
				return err
			}
			if *fb, err = v.run(second); err != nil {
				return err
			}
			pairs = append(pairs, p)
			logf("  %s pair %d: %s %.0f ms, %s %.0f ms", v.name, i+1, small.Label, p.A, big.Label, p.B)
		}
		r := Summarise(pairs, false)
		b.report.Add(Figure{
			Group: "Refresh scaling", Name: v.name,
			Pair: fmt.Sprintf("%s / %s", big.Label, small.Label), Unit: "ms", Ratio: r,
			Goal: v.goal, Met: v.met(r),
		})
	}
	return nil
}

// refreshNaive compares the naive all-time view's refresh with
// mv_workflow_metrics' (same columns), both plain, on one data set.
func (b *runner) refreshNaive(ctx context.Context, d *dataset) error {
	logf("naive vs meshtop refresh on %s", d.Label)
	naive := func() (float64, error) { return timeStmt(ctx, d, bench.SQL(bench.NaiveRefresh)) }
	ours := func() (float64, error) {
		return b.refreshViews(ctx, d, []string{"mv_workflow_metrics"}, false)
	}
	// The naive view was populated (and both warmed) by refreshScaling.
	var pairs []Pair
	for i := 0; i < b.cfg.pairs; i++ {
		var p Pair
		var err error
		if i%2 == 0 {
			if p.A, err = ours(); err == nil {
				p.B, err = naive()
			}
		} else {
			if p.B, err = naive(); err == nil {
				p.A, err = ours()
			}
		}
		if err != nil {
			return err
		}
		pairs = append(pairs, p)
		logf("  pair %d: meshtop %.0f ms, naive %.0f ms", i+1, p.A, p.B)
	}
	b.report.Add(Figure{
		Group: "Refresh scaling", Name: "naive all-time view vs mv_workflow_metrics (plain), " + d.Label,
		Pair: "naive / meshtop", Unit: "ms", Ratio: Summarise(pairs, false),
		Goal: "none (contrast)",
	})
	return nil
}

// refreshAfterNew measures a CONCURRENTLY refresh of every view right after
// 10k new runs were inserted, against a refresh with nothing new since the
// previous one.
func (b *runner) refreshAfterNew(ctx context.Context, d *dataset) error {
	const newRuns = 10_000
	logf("refresh after %d new runs on %s", newRuns, d.Label)
	var pairs []Pair
	var inserts []float64
	if _, err := b.refreshViews(ctx, d, viewOrder, true); err != nil {
		return err
	}
	for i := 0; i < b.cfg.pairs; i++ {
		ins, err := timeStmt(ctx, d, bench.SQL(bench.InsertRuns), newRuns)
		if err != nil {
			return err
		}
		inserts = append(inserts, ins)
		after, err := b.refreshViews(ctx, d, viewOrder, true)
		if err != nil {
			return err
		}
		steady, err := b.refreshViews(ctx, d, viewOrder, true)
		if err != nil {
			return err
		}
		pairs = append(pairs, Pair{A: steady, B: after})
		logf("  pair %d: after new runs %.0f ms, nothing new %.0f ms", i+1, after, steady)
	}
	b.report.Add(Figure{
		Group: "Refresh scaling", Name: fmt.Sprintf("CONCURRENTLY after %s new runs, %s", humanCount(newRuns), d.Label),
		Pair: "after new runs / nothing new", Unit: "ms", Ratio: Summarise(pairs, false),
		Goal: "none (reported)",
		Note: fmt.Sprintf("inserting the runs and their events took a median %.0f ms", Median(inserts)),
	})
	return nil
}
