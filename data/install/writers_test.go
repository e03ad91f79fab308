package install_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// meshhookWriters write runs the way MeshHook's workers do — the run
// inserted as 'running', its step events, then an UPDATE that finishes it,
// each statement its own transaction — in n goroutines until stopped. Runs
// start in the 30-day window of the pinned clock, so every change shows in
// the views. Every error is kept; so is each statement's duration.
type meshhookWriters struct {
	runs  atomic.Int64 // runs written completely
	mu    sync.Mutex
	errs  []error
	slow  time.Duration // the longest statement
	stop  context.CancelFunc
	done  sync.WaitGroup
	label string
}

// startWriters starts n writers on pool (whose role is what MeshHook's
// workers use) and stops them when the test ends.
func startWriters(t *testing.T, pool *pgxpool.Pool, n int, label string) *meshhookWriters {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &meshhookWriters{stop: cancel, label: label}
	for i := 0; i < n; i++ {
		w.done.Add(1)
		go func(seed int64) {
			defer w.done.Done()
			rnd := rand.New(rand.NewSource(seed))
			for ctx.Err() == nil {
				if err := w.one(ctx, pool, rnd); err != nil {
					if ctx.Err() != nil && errors.Is(err, context.Canceled) {
						return
					}
					w.mu.Lock()
					w.errs = append(w.errs, err)
					w.mu.Unlock()
					return
				}
				w.runs.Add(1)
			}
		}(time.Now().UnixNano() + int64(i))
	}
	t.Cleanup(w.halt)
	return w
}

// timed runs one statement, keeping its duration and labelling its error.
func (w *meshhookWriters) timed(what string, f func() error) error {
	t0 := time.Now()
	err := f()
	d := time.Since(t0)
	w.mu.Lock()
	w.slow = max(w.slow, d)
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s writer, %s: %w", w.label, what, err)
	}
	return nil
}

func (w *meshhookWriters) one(ctx context.Context, pool *pgxpool.Pool, rnd *rand.Rand) error {
	wf := []string{"00000000-0000-0000-0000-0000000000b1", "00000000-0000-0000-0000-0000000000b2"}[rnd.Intn(2)]
	started := clock.Add(-time.Duration(rnd.Int63n(int64(700 * time.Hour))))
	var id string
	if err := w.timed("insert run", func() error {
		return pool.QueryRow(ctx, `INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at)
VALUES ('00000000-0000-0000-0000-0000000000a1', $1, 'running', $2) RETURNING id::text`, wf, started).Scan(&id)
	}); err != nil {
		return err
	}
	lat := time.Duration(rnd.Intn(5000)+1) * time.Millisecond
	end, status := "step_succeeded", "succeeded"
	if rnd.Intn(10) == 0 {
		end, status = "step_failed", "failed"
	}
	exec := func(what, sql string, args ...any) error {
		return w.timed(what, func() error {
			_, err := pool.Exec(ctx, sql, args...)
			return err
		})
	}
	if err := exec("insert step_started", `INSERT INTO public.workflow_events (run_id, ts, type, payload)
VALUES ($1::uuid, $2, 'step_started', '{"node":{"id":"w","type":"http_call"}}')`, id, started.Add(time.Millisecond)); err != nil {
		return err
	}
	if err := exec("insert "+end, `INSERT INTO public.workflow_events (run_id, ts, type, payload)
VALUES ($1::uuid, $2, $3, '{"node":{"id":"w","type":"http_call"}}')`, id, started.Add(time.Millisecond+lat), end); err != nil {
		return err
	}
	return exec("finish run", `UPDATE public.workflow_runs SET status = $2, finished_at = $3 WHERE id = $1::uuid`,
		id, status, started.Add(2*time.Millisecond+lat))
}

// halt stops the writers and waits for them.
func (w *meshhookWriters) halt() {
	w.stop()
	w.done.Wait()
}

// errors returns what the writers ran into so far.
func (w *meshhookWriters) errors() []error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]error(nil), w.errs...)
}

// waitRuns waits until the writers have written n more runs than now, and
// fails the test if they stopped with an error meanwhile.
func (w *meshhookWriters) waitRuns(t *testing.T, ctx context.Context, n int64, during string) {
	t.Helper()
	target := w.runs.Load() + n
	waitFor(t, ctx, fmt.Sprintf("%d more runs from the %s writers %s", n, w.label, during), func() (bool, error) {
		if errs := w.errors(); len(errs) > 0 {
			return false, fmt.Errorf("%s: %w", during, errors.Join(errs...))
		}
		return w.runs.Load() >= target, nil
	})
}
