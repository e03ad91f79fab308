package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshtop/meshtop/data/safetext"
)

// The drill-down: from a workflow's numbers to the runs behind them, read
// from MeshHook's raw tables through meshtop's definer functions
// (sql/repeatable/070_drill.sql), which read only node ids and types, HTTP
// statuses, attempt numbers and error texts of the events — never a
// response body or any other payload field.

// RunKind names a drill-down list.
type RunKind string

// The drill-down's lists.
const (
	// RunsFailed: the newest failed runs of the window.
	RunsFailed RunKind = "failed"
	// RunsSlowest: the slowest finished runs of the window (of the newest
	// SlowestScan per outcome: RunList.Capped says when that cut).
	RunsSlowest RunKind = "slowest"
)

// ParseRunKind accepts "failed" or "slowest".
func ParseRunKind(s string) (RunKind, error) {
	switch RunKind(s) {
	case RunsFailed, RunsSlowest:
		return RunKind(s), nil
	}
	return "", fmt.Errorf("unknown list %q: use failed or slowest", s)
}

// Limits of the drill-down (070_drill.sql enforces them too).
const (
	// MaxRuns is the longest list (DefaultRuns when 0 is asked for).
	MaxRuns     = 200
	DefaultRuns = 20
	// SlowestScan is how many of the newest runs of each finished outcome
	// (succeeded, failed, canceled) of the window the slowest list considers.
	SlowestScan = 5000
	// ListErrorChars is how much of an error a list carries; a timeline
	// carries TimelineErrorChars of each attempt's.
	ListErrorChars     = 500
	TimelineErrorChars = 16384
	// TimelineEvents is how many step events of a run a timeline reads.
	TimelineEvents = 5000
)

// ErrRunNotFound means no run has the id asked for.
var ErrRunNotFound = errors.New("run not found")

// RunSummary is one run of a drill-down list.
type RunSummary struct {
	RunID      string // uuid
	WorkflowID string // uuid
	Status     safetext.Text
	StartedAt  time.Time
	FinishedAt *time.Time
	// The step that explains the run: for a failed run its final failure
	// (the step whose last attempt failed), otherwise (the slowest list)
	// its slowest step. Empty when the run wrote no step events.
	Node, NodeType safetext.Text
	Attempts       int
	HTTPStatus     *int // the step's last HTTP status (http_attempted)
	// Error is the step's last failed attempt's error, its first
	// ListErrorChars characters: the final failure's for a failed run; for
	// a slowest step that succeeded after retries, the error retried.
	Error      safetext.Text
	ErrorChars int // the error's whole length in characters
}

// Duration is finished_at − started_at, nil while the run is open.
func (r RunSummary) Duration() *time.Duration {
	if r.FinishedAt == nil {
		return nil
	}
	d := r.FinishedAt.Sub(r.StartedAt)
	return &d
}

// RunList is a drill-down list of one workflow's runs.
type RunList struct {
	WorkflowID string
	Window     Window
	Kind       RunKind
	Limit      int
	Runs       []RunSummary
	// Slowest only: how many finished runs were considered, and whether a
	// SlowestScan cap cut them (the list is then the slowest of the newest
	// runs, not of the whole window).
	Scanned int64
	Capped  bool
}

// RunInfo is one run and the workflow it ran.
type RunInfo struct {
	RunID, WorkflowID, ProjectID    string // uuids
	ProjectName, WorkflowName, Slug safetext.Text
	Version                         int
	Status                          safetext.Text
	StartedAt                       time.Time
	FinishedAt                      *time.Time
}

// AttemptError is one failed attempt of a step.
type AttemptError struct {
	Attempt int           // step_failed's attempt (0: not a number)
	Error   safetext.Text // its first TimelineErrorChars characters
	Chars   int           // the error's whole length in characters
}

// RunStep is one step of a run: a node's span from its step_started to its
// final outcome, grouped as MeshHook writes them.
type RunStep struct {
	NodeID, NodeType safetext.Text
	// Span counts the node's executions in the run (1 for its first; 0 for
	// events before any step_started of it).
	Span      int
	StartedAt time.Time
	EndedAt   *time.Time // the final outcome's time, nil without one
	// Outcome is meshtop's: succeeded, failed, retrying (the run is open
	// and the last attempt failed before the 5th), running (open, no
	// outcome yet) or unfinished (the run ended without the step's outcome).
	Outcome      string
	Attempts     int   // step_failed events + 1 if it succeeded
	HTTPStatuses []int // of the span's http_attempted events, in order
	Errors       []AttemptError
	Events       int // step events of the span
}

// Duration is EndedAt − StartedAt, nil without an outcome.
func (s RunStep) Duration() *time.Duration {
	if s.EndedAt == nil {
		return nil
	}
	d := s.EndedAt.Sub(s.StartedAt)
	return &d
}

// RunTimeline is one run with its steps in the order they started.
type RunTimeline struct {
	Run   RunInfo
	Steps []RunStep
	// EventsCut: the run has more than TimelineEvents step events; the
	// steps are those of the first TimelineEvents.
	EventsCut bool
}

// WorkflowRef is one workflow definition a workflow id or slug names.
type WorkflowRef struct {
	WorkflowID, ProjectID string // uuids
	ProjectName, Name     safetext.Text
	Slug                  safetext.Text
	Version               int
}

// queueStatementTimeout bounds the statements after it in the batch (its
// transaction) by QueryTimeout: the drill-down reads MeshHook's raw tables,
// and a statement the context's cancel request reaches late must still end.
func (s *Store) queueStatementTimeout(b *pgx.Batch) {
	b.Queue("select set_config('statement_timeout', $1, true)", fmt.Sprintf("%dms", s.opts.QueryTimeout.Milliseconds()))
}

// Runs reads one workflow's drill-down list for the window: its newest
// failed runs or its slowest finished runs, at most limit (DefaultRuns for
// 0, at most MaxRuns), each with the step that explains it. One round
// trip, from the replica when there is one.
func (s *Store) Runs(ctx context.Context, workflowID string, w Window, kind RunKind, limit int) (RunList, error) {
	if s.err != nil {
		return RunList{}, s.err
	}
	if _, err := ParseWindow(string(w)); err != nil {
		return RunList{}, err
	}
	if _, err := ParseRunKind(string(kind)); err != nil {
		return RunList{}, err
	}
	if !uuidRE.MatchString(workflowID) {
		return RunList{}, fmt.Errorf("reading runs of workflow %q: not a workflow id (a uuid)", workflowID)
	}
	if limit <= 0 {
		limit = DefaultRuns
	}
	limit = min(limit, MaxRuns)
	what := fmt.Sprintf("reading the %s runs of workflow %s", kind, workflowID)
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	out := RunList{WorkflowID: workflowID, Window: w, Kind: kind, Limit: limit, Runs: []RunSummary{}}
	q := s.query("drill_failed")
	if kind == RunsSlowest {
		q = s.query("drill_slowest")
	}
	b := &pgx.Batch{}
	s.queueStatementTimeout(b)
	b.Queue(q, workflowID, string(w), limit).Query(func(rows pgx.Rows) error {
		var r RunSummary
		var attempts *int32
		var status *int32
		var chars *int32
		_, err := pgx.ForEachRow(rows, []any{&r.RunID, &r.WorkflowID, &r.Status, &r.StartedAt, &r.FinishedAt,
			&r.Node, &r.NodeType, &attempts, &status, &r.Error, &chars, &out.Scanned, &out.Capped}, func() error {
			if attempts != nil {
				r.Attempts = int(*attempts)
			}
			if status != nil {
				v := int(*status)
				r.HTTPStatus = &v
			}
			if chars != nil {
				r.ErrorChars = int(*chars)
			}
			out.Runs = append(out.Runs, r)
			r, attempts, status, chars = RunSummary{}, nil, nil, nil
			return nil
		})
		return err
	})
	if err := s.reader().SendBatch(ctx, b).Close(); err != nil {
		return RunList{}, wrap(err, what, RoleReader)
	}
	if kind == RunsFailed {
		out.Scanned, out.Capped = int64(len(out.Runs)), false
	}
	return out, nil
}

// Run reads one run's timeline: the run and its workflow, and every step
// with its start, end, attempts, HTTP statuses and errors. One round trip,
// from the replica when there is one. An unknown id gives ErrRunNotFound.
func (s *Store) Run(ctx context.Context, runID string) (RunTimeline, error) {
	if s.err != nil {
		return RunTimeline{}, s.err
	}
	if !uuidRE.MatchString(runID) {
		return RunTimeline{}, fmt.Errorf("reading run %q: not a run id (a uuid)", runID)
	}
	what := "reading run " + runID
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var tl RunTimeline
	found := false
	b := &pgx.Batch{}
	s.queueStatementTimeout(b)
	b.Queue(s.query("drill_run"), runID).Query(func(rows pgx.Rows) error {
		var ri RunInfo
		var version *int32
		_, err := pgx.ForEachRow(rows, []any{&ri.RunID, &ri.WorkflowID, &ri.ProjectID, &ri.ProjectName, &ri.WorkflowName,
			&ri.Slug, &version, &ri.Status, &ri.StartedAt, &ri.FinishedAt}, func() error {
			if version != nil {
				ri.Version = int(*version)
			}
			tl.Run, found = ri, true
			return nil
		})
		return err
	})
	b.Queue(s.query("drill_run_steps"), runID).Query(func(rows pgx.Rows) error {
		events := 0
		var err error
		tl.Steps, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunStep, error) {
			var st RunStep
			var statuses, attempts, chars []int32
			var errs []string
			if err := r.Scan(&st.NodeID, &st.Span, &st.NodeType, &st.StartedAt, &st.EndedAt, &st.Outcome, &st.Attempts,
				&statuses, &attempts, &errs, &chars, &st.Events); err != nil {
				return st, err
			}
			for _, v := range statuses {
				st.HTTPStatuses = append(st.HTTPStatuses, int(v))
			}
			if len(attempts) != len(errs) || len(chars) != len(errs) {
				return st, fmt.Errorf("step %s: %d attempts, %d errors, %d lengths", st.NodeID, len(attempts), len(errs), len(chars))
			}
			for i, e := range errs {
				st.Errors = append(st.Errors, AttemptError{Attempt: int(attempts[i]), Error: safetext.New(e), Chars: int(chars[i])})
			}
			events += st.Events
			return st, nil
		})
		tl.EventsCut = events >= TimelineEvents
		return err
	})
	if err := s.reader().SendBatch(ctx, b).Close(); err != nil {
		return RunTimeline{}, wrap(err, what, RoleReader)
	}
	if !found {
		return RunTimeline{}, fmt.Errorf("%s: %w", what, ErrRunNotFound)
	}
	if tl.Steps == nil {
		tl.Steps = []RunStep{}
	}
	return tl, nil
}

// WorkflowRefs lists the workflow definitions (versions, in any project)
// that a workflow id or a slug names, from mv_workflow_metrics: none when
// nothing matches.
func (s *Store) WorkflowRefs(ctx context.Context, idOrSlug string) ([]WorkflowRef, error) {
	if s.err != nil {
		return nil, s.err
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.reader().Query(ctx, s.query("workflow_refs"), idOrSlug)
	if err != nil {
		return nil, wrap(err, "looking up workflow "+safetext.Line(idOrSlug), RoleReader)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WorkflowRef, error) {
		var w WorkflowRef
		err := r.Scan(&w.WorkflowID, &w.ProjectID, &w.ProjectName, &w.Name, &w.Slug, &w.Version)
		return w, err
	})
	if err != nil {
		return nil, wrap(err, "looking up workflow "+safetext.Line(idOrSlug), RoleReader)
	}
	return out, nil
}
