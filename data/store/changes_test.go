package store_test

import (
	"math"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/store"
)

// TestChanges: each workflow's failure rate in the window and in the
// window of the same length before it — whole hours before the hour of the
// rows' clock — equal counts of the raw runs by started_at, with the
// completed runs they are of; the p95 pair is the median of the windows'
// hourly p95s; 30d has no previous window in the hourly view (issues 14.9,
// 24.8, 24.13).
func TestChanges(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t)
	if ch, err := e.st.Changes(ctx, store.Window24h); err != nil || len(ch) != 0 {
		t.Fatalf("before the first refresh: %d changes, %v", len(ch), err)
	}
	refreshAll(t, e.st)
	for _, w := range []store.Window{store.Window24h, store.Window7d} {
		ch, err := e.st.Changes(ctx, w)
		if err != nil {
			t.Fatalf("Changes(%s): %v", w, err)
		}
		end := anchor.Truncate(time.Hour) // the partial hour of the clock is not compared
		rows, err := e.db.Pool.Query(ctx, `select workflow_id::text,
			count(*) filter (where status = 'failed' and started_at >= $1),
			count(*) filter (where status in ('succeeded','failed','canceled') and started_at >= $1),
			count(*) filter (where status = 'failed' and started_at < $1),
			count(*) filter (where status in ('succeeded','failed','canceled') and started_at < $1)
			from public.workflow_runs where started_at >= $2 and started_at < $3 group by 1`,
			end.Add(-w.Duration()), end.Add(-2*w.Duration()), end)
		if err != nil {
			t.Fatal(err)
		}
		n, withPrev := 0, 0
		for rows.Next() {
			var id string
			var f, d, pf, pd int64
			if err := rows.Scan(&id, &f, &d, &pf, &pd); err != nil {
				t.Fatal(err)
			}
			c := ch[id]
			check := func(what string, got *float64, num, den int64) {
				if den == 0 {
					if got != nil {
						t.Errorf("%s %s %s: %v, want none", w, id, what, *got)
					}
					return
				}
				if got == nil || math.Abs(*got-float64(num)/float64(den)) > 1e-9 {
					t.Errorf("%s %s %s: %v, want %d/%d", w, id, what, got, num, den)
				}
			}
			check("failure rate", c.FailureRate, f, d)
			check("previous failure rate", c.PrevFailureRate, pf, pd)
			if c.Completed != d || c.PrevCompleted != pd {
				t.Errorf("%s %s completed %d/%d, want %d/%d", w, id, c.Completed, c.PrevCompleted, d, pd)
			}
			n++
			if c.FailureRateDelta() != nil {
				withPrev++
			}
		}
		rows.Close()
		if n == 0 || withPrev == 0 {
			t.Fatalf("%s: %d workflows, %d with a previous window", w, n, withPrev)
		}
		// The typical hour's p95 of one workflow, straight from the view.
		for id, c := range ch {
			var med *float64
			if err := e.db.Pool.QueryRow(ctx, `select percentile_cont(0.5) within group (order by p95_duration)
				from metrics.mv_workflow_metrics_hourly where workflow_id = $1 and hour >= $2 and hour < $3`,
				id, end.Add(-2*w.Duration()), end.Add(-w.Duration())).Scan(&med); err != nil {
				t.Fatal(err)
			}
			if (med == nil) != (c.PrevP95HourMs == nil) || med != nil && math.Abs(*med-*c.PrevP95HourMs) > 1e-6 {
				t.Errorf("%s %s previous p95 hour median %v, want %v", w, id, c.PrevP95HourMs, med)
			}
			break
		}
	}
	if ch, err := e.st.Changes(ctx, store.Window30d); err != nil || len(ch) != 0 {
		t.Errorf("Changes(30d) = %d rows, %v; want none (the hourly view keeps 30 days)", len(ch), err)
	}
}
