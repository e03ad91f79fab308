// Package workersim writes MeshHook runs into a database the way MeshHook's
// workers write them (shared/MESHHOOK.md, "How the workers write a run"),
// for tests and benchmarks of what reads them:
//
//   - the run is inserted as running;
//   - the orchestrator writes step_started {"node":{id,type}} once per node
//     it enqueues;
//   - a transform node writes one step_succeeded {node, next, output};
//   - an http_call node is tried up to 5 times: each attempt that gets a
//     response writes http_attempted {node, status}; a 2xx then writes
//     step_succeeded {node, next, response}; a failed attempt (non-2xx or a
//     network error) writes step_failed {node, attempt, error} and, unless it
//     was the 5th, waits 500 ms · 2^(attempt−1) (capped at 8 s) plus jitter
//     and tries again without a new step_started;
//   - reaching the end writes run_completed and updates the run to
//     succeeded with finished_at; a step that failed its last attempt ends
//     the run: it is updated to failed (no run_completed); a canceled run is
//     updated to canceled where it stopped.
//
// Every insert is its own statement, through the parent workflow_events
// (its partition chosen by ts), as the workers' are. Times are given, not
// now(), so a history can be written at once. Write writes one run from a
// description (the exact shapes a test needs); Bulk writes many, set-based,
// for plan and benchmark data.
//
// It does not depend on data/fixture's generator (only on its schema).
package workersim

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Execer is a pool, a connection or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// ID is a deterministic uuid for a name (md5, version 4 bits set): tests
// name their projects, workflows and runs and get the same ids every time.
func ID(name string) string {
	h := md5.Sum([]byte("workersim:" + name))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// Node is a node of a workflow definition.
type Node struct{ ID, Type string }

// Project inserts a project owned by owner (a uuid).
func Project(ctx context.Context, db Execer, id, owner, name string) error {
	_, err := db.Exec(ctx, `insert into public.projects (id, owner, name) values ($1, $2, $3)`, id, owner, name)
	if err != nil {
		return fmt.Errorf("inserting project %s: %w", name, err)
	}
	return nil
}

// Workflow inserts a published workflow definition with the given nodes.
func Workflow(ctx context.Context, db Execer, id, project, slug, name string, version int, nodes []Node) error {
	type n struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	def := struct {
		Nodes []n `json:"nodes"`
	}{}
	for _, x := range nodes {
		def.Nodes = append(def.Nodes, n(x))
	}
	b, err := json.Marshal(def)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `insert into public.workflow_definitions (id, project_id, slug, version, definition, name, status)
		values ($1, $2, $3, $4, $5, $6, 'published')`, id, project, slug, version, string(b), name)
	if err != nil {
		return fmt.Errorf("inserting workflow %s: %w", slug, err)
	}
	return nil
}

// Attempt is one try of an http_call.
type Attempt struct {
	// Status is the HTTP status of the response; 0 is a network error (no
	// response: no http_attempted).
	Status int
	// Error is the failed attempt's error text; "" for a 2xx. A non-2xx
	// without one gets "Error: HTTP <status>", a network error
	// "TypeError: fetch failed", as MeshHook's executor writes them.
	Error string
	// Took is how long the request took (default 200 ms).
	Took time.Duration
}

// Step is one node's execution in a run.
type Step struct {
	Node Node
	// Attempts of an http_call, in order; a transform (or any other type)
	// has none and succeeds after Took.
	Attempts []Attempt
	// Took: a non-HTTP step's duration (default 20 ms).
	Took time.Duration
	// Response is the body step_succeeded carries (http_call; default
	// {"ok":true}). Tests put personal data here: it must never be shown.
	Response any
	// FailureExtra are more fields of every step_failed payload (say, a
	// response body): never to be read either.
	FailureExtra map[string]any
}

// Run is one execution.
type Run struct {
	ID, Project, Workflow string
	StartedAt             time.Time
	Steps                 []Step
	// End: "" completes the run as the steps go (succeeded, or failed at a
	// step whose last attempt failed); "running" stops after the steps
	// written (the run stays open, a step may be mid-retry: give it fewer
	// than 5 failed attempts); "canceled" updates the run to canceled
	// after the steps.
	End string
	// Jitter is added to each back-off (MeshHook adds up to 250 ms at
	// random; default 0 here, so tests are exact).
	Jitter time.Duration
}

// Backoff is MeshHook's wait before attempt+1: 500 ms · 2^(attempt−1),
// capped at 8 s.
func Backoff(attempt int) time.Duration {
	d := 500 * time.Millisecond
	for i := 1; i < attempt && d < 8*time.Second; i++ {
		d *= 2
	}
	return min(d, 8*time.Second)
}

// MaxAttempts is how often MeshHook's HTTP executor tries a request.
const MaxAttempts = 5

// Write writes r and returns its status and finished_at (nil while open).
func Write(ctx context.Context, db Execer, r Run) (string, *time.Time, error) {
	if _, err := db.Exec(ctx, `insert into public.workflow_runs (id, project_id, workflow_id, status, started_at, created_at, updated_at)
		values ($1, $2, $3, 'running', $4, $4, $4)`, r.ID, r.Project, r.Workflow, r.StartedAt); err != nil {
		return "", nil, fmt.Errorf("inserting run %s: %w", r.ID, err)
	}
	ev := func(ts time.Time, typ string, payload any) error {
		b, err := json.Marshal(payload)
		if err != nil {
			return err
		}
		if _, err := db.Exec(ctx, `insert into public.workflow_events (run_id, ts, type, payload, created_at) values ($1, $2, $3, $4, $2)`,
			r.ID, ts, typ, string(b)); err != nil {
			return fmt.Errorf("inserting %s of run %s: %w", typ, r.ID, err)
		}
		return nil
	}
	t := r.StartedAt.Add(5 * time.Millisecond)
	failed := false
	for i, s := range r.Steps {
		node := map[string]string{"id": s.Node.ID, "type": s.Node.Type}
		next := []string{}
		if i+1 < len(r.Steps) {
			next = []string{r.Steps[i+1].Node.ID}
		}
		if err := ev(t, "step_started", map[string]any{"node": node}); err != nil {
			return "", nil, err
		}
		if s.Node.Type != "http_call" {
			t = t.Add(or(s.Took, 20*time.Millisecond))
			if err := ev(t, "step_succeeded", map[string]any{"node": node, "next": next, "output": map[string]any{"ok": true}}); err != nil {
				return "", nil, err
			}
			t = t.Add(2 * time.Millisecond)
			continue
		}
		ok := false
		for a, at := range s.Attempts {
			attempt := a + 1
			t = t.Add(or(at.Took, 200*time.Millisecond))
			if at.Status > 0 {
				if err := ev(t, "http_attempted", map[string]any{"node": node, "status": at.Status}); err != nil {
					return "", nil, err
				}
			}
			if at.Status >= 200 && at.Status < 300 {
				t = t.Add(time.Millisecond)
				resp := s.Response
				if resp == nil {
					resp = map[string]any{"ok": true}
				}
				if err := ev(t, "step_succeeded", map[string]any{"node": node, "next": next, "response": resp}); err != nil {
					return "", nil, err
				}
				ok = true
				break
			}
			msg := at.Error
			if msg == "" && at.Status > 0 {
				msg = fmt.Sprintf("Error: HTTP %d", at.Status)
			} else if msg == "" {
				msg = "TypeError: fetch failed"
			}
			t = t.Add(time.Millisecond)
			p := map[string]any{"node": node, "attempt": attempt, "error": msg}
			for k, v := range s.FailureExtra {
				p[k] = v
			}
			if err := ev(t, "step_failed", p); err != nil {
				return "", nil, err
			}
			if attempt < MaxAttempts && a+1 < len(s.Attempts) {
				t = t.Add(Backoff(attempt) + r.Jitter)
			}
		}
		t = t.Add(2 * time.Millisecond)
		if !ok {
			// Its last attempt failed: the run is failed here (or, for a
			// run that stays open or is canceled, stops here mid-retry).
			failed = r.End == ""
			break
		}
	}
	status := "succeeded"
	switch {
	case r.End == "running":
		return "running", nil, nil
	case r.End == "canceled":
		status = "canceled"
	case failed:
		status = "failed"
	default:
		if err := ev(t, "run_completed", map[string]any{}); err != nil {
			return "", nil, err
		}
	}
	fin := t.Add(3 * time.Millisecond)
	if _, err := db.Exec(ctx, `update public.workflow_runs set status = $2, finished_at = $3 where id = $1`, r.ID, status, fin); err != nil {
		return "", nil, fmt.Errorf("finishing run %s: %w", r.ID, err)
	}
	return status, &fin, nil
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Partitions makes sure workflow_events has the monthly partitions for
// [from, to] (the fixture schema's meshhook_ensure_event_partitions, as
// MeshHook's partition maintenance).
func Partitions(ctx context.Context, db Execer, from, to time.Time) error {
	if _, err := db.Exec(ctx, `select public.meshhook_ensure_event_partitions($1, $2)`, from, to); err != nil {
		return fmt.Errorf("creating event partitions: %w", err)
	}
	return nil
}
