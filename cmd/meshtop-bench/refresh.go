package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/meshtop/meshtop/data/bench"
)

// viewOrder is the dependency order CALL S.refresh() uses.
var viewOrder = []string{"mv_workflow_metrics_hourly", "mv_workflow_metrics", "mv_step_metrics"}

// refreshViews refreshes the given views of d one after the other through
// meshtop's refresh path (CALL S.refresh(view, true): the change log applied
// to the rollup, then the view) and returns the total wall time in ms. With
// full, the first view's refresh rebuilds the rollup from the raw tables
// (S.refresh_request_full()) instead of applying the change log.
func (b *runner) refreshViews(ctx context.Context, d *dataset, views []string, full bool) (float64, error) {
	conn, err := d.Pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("acquiring a connection to %s: %w", d.DB, err)
	}
	defer conn.Release()
	var total float64
	if full {
		t := time.Now()
		if _, err := conn.Exec(ctx, "select "+b.schema+".refresh_request_full()"); err != nil {
			return 0, fmt.Errorf("requesting a full rebuild on %s: %w", d.DB, err)
		}
		total += float64(time.Since(t).Microseconds()) / 1000
	}
	for _, v := range views {
		stmt := "call " + b.schema + ".refresh(" + literal(v) + ", true)"
		rctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
		t := time.Now()
		_, err := conn.Exec(rctx, stmt)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("%s on %s: %w", stmt, d.DB, err)
		}
		total += float64(time.Since(t).Microseconds()) / 1000
		var status, msg string
		if err := conn.QueryRow(ctx, "select status, coalesce(error, '') from "+b.schema+".refresh_log where view_name = $1 order by id desc limit 1", v).Scan(&status, &msg); err != nil {
			return 0, fmt.Errorf("reading the refresh log of %s: %w", d.DB, err)
		}
		if status != "ok" {
			return 0, fmt.Errorf("refresh of %s on %s: %s %s", v, d.DB, status, msg)
		}
	}
	return total, nil
}

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

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
// at the same runs per hour, full rebuild and incremental, alternating which data
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
		{"all views, full rebuild of the rollup", "≤ 1.5×",
			func(d *dataset) (float64, error) { return b.refreshViews(ctx, d, viewOrder, true) },
			func(r Ratio) *bool { return boolp(r.Median <= 1.5) }, true},
		{"all views, incremental (nothing new)", "≤ 1.5×",
			func(d *dataset) (float64, error) { return b.refreshViews(ctx, d, viewOrder, false) },
			func(r Ratio) *bool { return boolp(r.Median <= 1.5) }, false},
		{"naive all-time view (contrast)", "none (contrast)",
			func(d *dataset) (float64, error) { return timeStmt(ctx, d, bench.SQL(bench.NaiveRefresh)) },
			func(Ratio) *bool { return nil }, true}, // also populates it
	}
	for _, v := range variants {
		// Warm-up of both sides (the full rebuilds warm the incremental
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
		return b.refreshViews(ctx, d, []string{"mv_workflow_metrics"}, true)
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
		Group: "Refresh scaling", Name: "naive all-time view vs mv_workflow_metrics (full rebuild), " + d.Label,
		Pair: "naive / meshtop", Unit: "ms", Ratio: Summarise(pairs, false),
		Goal: "none (contrast)",
	})
	return nil
}

// refreshAfterNew measures an incremental refresh of every view right after
// 10k new runs were inserted, against a refresh with nothing new since the
// previous one.
func (b *runner) refreshAfterNew(ctx context.Context, d *dataset) error {
	const newRuns = 10_000
	logf("refresh after %d new runs on %s", newRuns, d.Label)
	var pairs []Pair
	var inserts []float64
	if _, err := b.refreshViews(ctx, d, viewOrder, false); err != nil {
		return err
	}
	for i := 0; i < b.cfg.pairs; i++ {
		ins, err := timeStmt(ctx, d, bench.SQL(bench.InsertRuns), newRuns)
		if err != nil {
			return err
		}
		inserts = append(inserts, ins)
		after, err := b.refreshViews(ctx, d, viewOrder, false)
		if err != nil {
			return err
		}
		steady, err := b.refreshViews(ctx, d, viewOrder, false)
		if err != nil {
			return err
		}
		pairs = append(pairs, Pair{A: steady, B: after})
		logf("  pair %d: after new runs %.0f ms, nothing new %.0f ms", i+1, after, steady)
	}
	b.report.Add(Figure{
		Group: "Refresh scaling", Name: fmt.Sprintf("incremental after %s new runs, %s", humanCount(newRuns), d.Label),
		Pair: "after new runs / nothing new", Unit: "ms", Ratio: Summarise(pairs, false),
		Goal: "none (reported)",
		Note: fmt.Sprintf("inserting the runs and their events took a median %.0f ms", Median(inserts)),
	})
	return nil
}
