package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/meshtop/meshtop/data/bench"
	"github.com/meshtop/meshtop/data/install"
)

// minuteOfTraffic is one minute of runs at d's rate (runs per 30 days / 43,200).
func minuteOfTraffic(d *dataset) int {
	n := d.Runs / d.Days * 30 / 43_200
	return max(n, 1)
}

// addTraffic inserts n finished runs with their step events, started within
// the last hour (data/bench/insert_runs.sql), and returns its time in ms.
func addTraffic(ctx context.Context, d *dataset, n int) (float64, error) {
	return timeStmt(ctx, d, bench.SQL(bench.InsertRuns), n)
}

// incremental measures the incremental refresh (issue #12): after a minute
// of traffic vs a full rebuild on 1M runs in 30 days; the same on 10× the
// volume (1M vs 100k runs in 30 days, same new traffic); and the full
// rebuild vs the refresh of the windowed views it replaced (migrations
// 001-008 installed beside it as schema meshtop_before).
func (b *runner) incremental(ctx context.Context, small, big *dataset) error {
	traffic := minuteOfTraffic(big)
	logf("incremental: %d runs of new traffic (one minute at %s)", traffic, big.Label)
	for _, d := range []*dataset{small, big} {
		if _, err := b.refreshViews(ctx, d, viewOrder, false); err != nil {
			return err
		}
	}

	// 1. After a minute of traffic vs a full rebuild, on the big set.
	var pairs []Pair
	for i := 0; i < b.cfg.pairs; i++ {
		var p Pair
		incr := func() error {
			if _, err := addTraffic(ctx, big, traffic); err != nil {
				return err
			}
			var err error
			p.A, err = b.refreshViews(ctx, big, viewOrder, false)
			return err
		}
		full := func() error {
			var err error
			p.B, err = b.refreshViews(ctx, big, viewOrder, true)
			return err
		}
		first, second := incr, full
		if i%2 == 1 {
			first, second = full, incr
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
		pairs = append(pairs, p)
		logf("  pair %d: incremental %.0f ms, full rebuild %.0f ms", i+1, p.A, p.B)
	}
	r := Summarise(pairs, false)
	b.report.Add(Figure{
		Group: "Incremental refresh", Name: "all views after one minute of traffic vs full rebuild, " + big.Label,
		Pair: "full rebuild / incremental", Unit: "ms", Ratio: r,
		Goal: "≥ 50×", Met: boolp(r.Median >= 50),
		Note: fmt.Sprintf("one minute of traffic = %d finished runs with step events (data/bench/insert_runs.sql), inserted before each incremental refresh", traffic),
	})

	// 2. The same incremental refresh on 10× the 30-day volume.
	pairs = nil
	for i := 0; i < b.cfg.pairs; i++ {
		var p Pair
		sides := []struct {
			d   *dataset
			out *float64
		}{{small, &p.A}, {big, &p.B}}
		if i%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, s := range sides {
			if _, err := addTraffic(ctx, s.d, traffic); err != nil {
				return err
			}
			var err error
			if *s.out, err = b.refreshViews(ctx, s.d, viewOrder, false); err != nil {
				return err
			}
		}
		pairs = append(pairs, p)
		logf("  pair %d: incremental on %s %.0f ms, on %s %.0f ms", i+1, small.Label, p.A, big.Label, p.B)
	}
	r = Summarise(pairs, false)
	b.report.Add(Figure{
		Group: "Incremental refresh", Name: "incremental refresh after the same new traffic, 10× the 30-day volume",
		Pair: fmt.Sprintf("%s / %s", big.Label, small.Label), Unit: "ms", Ratio: r,
		Goal: "≤ 1.5×", Met: boolp(r.Median <= 1.5),
		Note: fmt.Sprintf("%d new runs before each refresh on both sides", traffic),
	})

	// 3. Full rebuild vs the refresh it replaced, on the same data.
	if err := b.installBefore(ctx, big); err != nil {
		return err
	}
	before := func() (float64, error) {
		return timeStmt(ctx, big, "call meshtop_before.refresh(null, true)")
	}
	if _, err := before(); err != nil { // first, plain refresh: populates
		return err
	}
	pairs = nil
	for i := 0; i < b.cfg.pairs; i++ {
		var p Pair
		var err error
		if i%2 == 0 {
			if p.A, err = before(); err == nil {
				p.B, err = b.refreshViews(ctx, big, viewOrder, true)
			}
		} else {
			if p.B, err = b.refreshViews(ctx, big, viewOrder, true); err == nil {
				p.A, err = before()
			}
		}
		if err != nil {
			return err
		}
		pairs = append(pairs, p)
		logf("  pair %d: windowed views (before) %.0f ms, full rebuild %.0f ms", i+1, p.A, p.B)
	}
	r = Summarise(pairs, false)
	b.report.Add(Figure{
		Group: "Incremental refresh", Name: "full rebuild vs the windowed views' refresh it replaced, " + big.Label,
		Pair: "full rebuild / windowed refresh", Unit: "ms", Ratio: r,
		Goal: "≤ 1.2×", Met: boolp(r.Median <= 1.2),
		Note: "the windowed views are migrations 001–008 installed as schema meshtop_before, refreshed with its own CALL refresh() (CONCURRENTLY); the full rebuild is refresh_request_full() and CALL refresh() of all three views",
	})
	_, err := big.Pool.Exec(ctx, "drop schema meshtop_before cascade")
	return err
}

// installBefore installs migrations 001-008 (the windowed views this issue
// replaced) as schema meshtop_before, the way that build's installer did.
func (b *runner) installBefore(ctx context.Context, d *dataset) error {
	migs, err := install.New(d.Pool, "meshtop_before").Migrations()
	if err != nil {
		return err
	}
	for _, m := range migs {
		if m.Version > 8 {
			break
		}
		if _, err := d.Pool.Exec(ctx, m.SQL); err != nil && !strings.Contains(m.SQL, "CREATE INDEX CONCURRENTLY") {
			return fmt.Errorf("installing %s as meshtop_before: %w", m.Name, err)
		}
	}
	return nil
}

// setCapture drops (on = false) or re-creates meshtop's change-capture
// triggers on d, for the write-impact pairs with and without them.
func (b *runner) setCapture(ctx context.Context, d *dataset, on bool) error {
	if !on {
		_, err := d.Pool.Exec(ctx, `do $$
declare s text;
begin
  for s in select format('drop trigger %I on %s', t.tgname, t.tgrelid::regclass)
           from pg_trigger t join pg_proc p on p.oid = t.tgfoid
           where p.pronamespace = '`+strings.Trim(b.schema, `"`)+`'::regnamespace and not t.tgisinternal and t.tgparentid = 0 -- clones on partitions go with their parent
  loop execute s; end loop;
end $$`)
		if err != nil {
			return fmt.Errorf("dropping the capture triggers: %w", err)
		}
		return nil
	}
	reps, err := install.New(d.Pool, b.cfg.schema).Repeatables()
	if err != nil {
		return err
	}
	for _, r := range reps {
		if strings.HasSuffix(r.Name, "_capture") {
			if _, err := d.Pool.Exec(ctx, r.SQL); err != nil {
				return fmt.Errorf("re-creating the capture triggers: %w", err)
			}
			return nil
		}
	}
	return fmt.Errorf("no capture file among the repeatable SQL files")
}
