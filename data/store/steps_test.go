package store_test

import (
	"testing"

	"github.com/meshtop/meshtop/data/store"
)

// Steps reads every step row of a window with the attempt columns of
// mv_step_metrics (issue #25), the same rows Workflow reads per workflow;
// before the first refresh it reads none, without an error.
func TestStepsMatchTheView(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t)
	if st, err := e.st.Steps(ctx, store.Window24h); err != nil || len(st) != 0 {
		t.Fatalf("Steps before the first refresh = %d rows, %v; want none, no error", len(st), err)
	}
	refreshAll(t, e.st)
	for _, w := range store.Windows {
		steps, err := e.st.Steps(ctx, w)
		if err != nil {
			t.Fatalf("Steps(%s): %v", w, err)
		}
		var n, execs, fails, attempts, retried, failedAttempts, classes int64
		if err := e.db.Pool.QueryRow(ctx, `select count(*), sum(executions), sum(failures), sum(attempts), sum(retried), sum(failed_attempts),
  sum(http_2xx + http_4xx + http_5xx + http_other + http_none)
from metrics.mv_step_metrics where "window" = $1`, string(w)).Scan(&n, &execs, &fails, &attempts, &retried, &failedAttempts, &classes); err != nil {
			t.Fatal(err)
		}
		var got [7]int64
		got[0] = int64(len(steps))
		for _, s := range steps {
			got[1] += s.Executions
			got[2] += s.Failures
			got[3] += s.Attempts
			got[4] += s.Retried
			got[5] += s.FailedAttempts
			got[6] += s.HTTP2xx + s.HTTP4xx + s.HTTP5xx + s.HTTPOther + s.HTTPNone
			if s.Window != w || s.Attempts < s.Executions || s.MaxAttempts < 1 || s.MaxAttempts > 5 ||
				!eqf(&s.AvgAttempts, ptr(float64(s.Attempts)/float64(s.Executions))) ||
				!eqf(&s.RetryRate, ptr(float64(s.Retried)/float64(s.Executions))) ||
				!eqf(&s.AttemptFailureRate, ptr(float64(s.FailedAttempts)/float64(s.Attempts))) {
				t.Errorf("%s: inconsistent step row %+v", w, s)
			}
		}
		if want := [7]int64{n, execs, fails, attempts, retried, failedAttempts, classes}; got != want {
			t.Errorf("%s: Steps sums (rows, executions, failures, attempts, retried, failed attempts, status classes) = %v; the view's %v", w, got, want)
		}
		if w == store.Window30d && (retried == 0 || failedAttempts <= fails || classes == 0) {
			t.Errorf("30d: %d retried executions, %d failed attempts for %d failures, %d classified attempts: the history has no retries", retried, failedAttempts, fails, classes)
		}
	}
	// Workflow's steps are the same rows.
	all, err := e.st.Steps(ctx, store.Window30d)
	if err != nil || len(all) == 0 {
		t.Fatal(len(all), err)
	}
	d, err := e.st.Workflow(ctx, all[0].WorkflowID, store.Window30d)
	if err != nil {
		t.Fatal(err)
	}
	var mine []store.StepMetrics
	for _, s := range all {
		if s.WorkflowID == all[0].WorkflowID {
			mine = append(mine, s)
		}
	}
	if len(d.Steps) != len(mine) {
		t.Fatalf("Workflow's steps %d, Steps' rows of that workflow %d", len(d.Steps), len(mine))
	}
	for i := range mine {
		a, b := d.Steps[i], mine[i]
		if a.NodeID != b.NodeID || a.Attempts != b.Attempts || a.Retried != b.Retried || a.HTTP5xx != b.HTTP5xx || a.HTTPNone != b.HTTPNone || a.MaxAttempts != b.MaxAttempts {
			t.Errorf("step %d: Workflow %+v, Steps %+v", i, a, b)
		}
	}
}

func ptr(f float64) *float64 { return &f }
