package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

// RunsSchemaVersion and RunSchemaVersion are the versions of the `runs
// --json` and `run --json` documents (docs/JSON.md), under the same rule as
// SchemaVersion.
const (
	RunsSchemaVersion = 1
	RunSchemaVersion  = 1
)

// RunsJSON is the `meshtop runs --json` document.
type RunsJSON struct {
	SchemaVersion int               `json:"schema_version"`
	GeneratedAt   string            `json:"generated_at"`
	Window        string            `json:"window"`
	List          string            `json:"list"`
	Limit         int               `json:"limit"`
	Workflows     []WorkflowRefJSON `json:"workflows"`
	Runs          []RunSummaryJSON  `json:"runs"`
	Scanned       *int64            `json:"scanned"`
	Capped        *bool             `json:"capped"`
}

// WorkflowRefJSON is one workflow definition the --workflow argument named.
type WorkflowRefJSON struct {
	WorkflowID  string         `json:"workflow_id"`
	ProjectID   *string        `json:"project_id"`
	ProjectName *safetext.Text `json:"project_name"`
	Name        *safetext.Text `json:"name"`
	Slug        *safetext.Text `json:"slug"`
	Version     *int           `json:"version"`
}

// RunSummaryJSON is one run of a drill-down list.
type RunSummaryJSON struct {
	RunID      string        `json:"run_id"`
	WorkflowID string        `json:"workflow_id"`
	Status     safetext.Text `json:"status"`
	StartedAt  string        `json:"started_at"`
	FinishedAt *string       `json:"finished_at"`
	DurationMs *float64      `json:"duration_ms"`
	Step       *RunStepRef   `json:"step"`
}

// RunStepRef is the step that explains a run in a list.
type RunStepRef struct {
	NodeID     safetext.Text  `json:"node_id"`
	NodeType   safetext.Text  `json:"node_type"`
	Attempts   int            `json:"attempts"`
	HTTPStatus *int           `json:"http_status"`
	Error      *safetext.Text `json:"error"`
	ErrorChars int            `json:"error_chars"`
}

// RunJSON is the `meshtop run --json` document.
type RunJSON struct {
	SchemaVersion int           `json:"schema_version"`
	GeneratedAt   string        `json:"generated_at"`
	Run           RunInfoJSON   `json:"run"`
	Steps         []RunStepJSON `json:"steps"`
	EventsCut     bool          `json:"events_cut"`
}

// RunInfoJSON is the run and its workflow.
type RunInfoJSON struct {
	RunID        string        `json:"run_id"`
	WorkflowID   string        `json:"workflow_id"`
	ProjectID    string        `json:"project_id"`
	ProjectName  safetext.Text `json:"project_name"`
	WorkflowName safetext.Text `json:"workflow_name"`
	Slug         safetext.Text `json:"slug"`
	Version      int           `json:"version"`
	Status       safetext.Text `json:"status"`
	StartedAt    string        `json:"started_at"`
	FinishedAt   *string       `json:"finished_at"`
	DurationMs   *float64      `json:"duration_ms"`
}

// RunStepJSON is one step of a run.
type RunStepJSON struct {
	NodeID       safetext.Text      `json:"node_id"`
	NodeType     safetext.Text      `json:"node_type"`
	Execution    int                `json:"execution"`
	StartedAt    string             `json:"started_at"`
	EndedAt      *string            `json:"ended_at"`
	DurationMs   *float64           `json:"duration_ms"`
	Outcome      string             `json:"outcome"`
	Attempts     int                `json:"attempts"`
	HTTPStatuses []int              `json:"http_statuses"`
	Errors       []AttemptErrorJSON `json:"errors"`
}

// AttemptErrorJSON is one failed attempt's error.
type AttemptErrorJSON struct {
	Attempt    int           `json:"attempt"`
	Error      safetext.Text `json:"error"`
	ErrorChars int           `json:"error_chars"`
}

var uuidArg = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// msTime is a time in RFC 3339 with milliseconds, UTC.
func msTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

func msTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := msTime(*t)
	return &s
}

func durMs(d *time.Duration) *float64 {
	if d == nil {
		return nil
	}
	v := math.Round(float64(*d)/float64(time.Microsecond)) / 1e3
	return &v
}

func (a *app) runsCmd() *cobra.Command {
	var (
		workflow     string
		failed, slow bool
		window       store.Window
		limit        int
		asJSON       bool
	)
	cmd := &cobra.Command{
		Use:   "runs --workflow ID|SLUG [--failed|--slowest] [--window W] [--limit N] [--json]",
		Short: "List a workflow's newest failed runs or its slowest runs, with the step that explains each",
		Long: `runs is the dashboard's drill-down (f and l on a workflow's detail): the
newest failed runs of a workflow started in the window, or (--slowest) its
slowest finished runs, each with the step that explains it — the node whose
last attempt failed (or, for a run that did not fail, its slowest step), its
attempts, its last HTTP status and the error on one line. A slug names every
version (and every project's workflow) with that slug; their runs are listed
together. Run ids open with ` + "`meshtop run RUN_ID`" + `.

It reads MeshHook's runs and events through meshtop's functions, which read
only node ids and types, HTTP statuses, attempt numbers and error texts —
never response bodies — through meshtop's index, bounded by --limit (at most
200) and --statement-timeout. With --replica-dsn it reads the standby.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if failed && slow {
				return fmt.Errorf("--failed and --slowest exclude each other (see `%s --help`)", cmd.CommandPath())
			}
			if strings.TrimSpace(workflow) == "" {
				return fmt.Errorf("--workflow is required: a workflow id or slug (see `%s --help`)", cmd.CommandPath())
			}
			if limit < 1 || limit > store.MaxRuns {
				return fmt.Errorf("--limit %d: use 1 to %d (see `%s --help`)", limit, store.MaxRuns, cmd.CommandPath())
			}
			kind := store.RunsFailed
			if slow {
				kind = store.RunsSlowest
			}
			ctx := cmd.Context()
			s, err := a.connect(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			a.poolerNote(s)
			doc, err := a.runs(ctx, s, strings.TrimSpace(workflow), window, kind, limit)
			if err != nil {
				return s.wrap(err)
			}
			if asJSON {
				return a.writeJSON(doc)
			}
			writeRunsText(a.stdout(), doc)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&workflow, "workflow", "", "the workflow: its id (a uuid) or its slug")
	f.BoolVar(&failed, "failed", false, "the newest failed runs (the default)")
	f.BoolVar(&slow, "slowest", false, "the slowest finished runs")
	f.Var(newWindow(&window, store.Window24h), "window", "runs started in this window: 1h, 24h, 7d or 30d")
	f.IntVar(&limit, "limit", store.DefaultRuns, fmt.Sprintf("at most this many runs (1–%d)", store.MaxRuns))
	f.BoolVar(&asJSON, "json", false, "print the JSON document (docs/JSON.md) instead of a table")
	_ = cmd.RegisterFlagCompletionFunc("window", fixedCompletions(windowNames()))
	return cmd
}

// runs resolves the workflow and reads its runs.
func (a *app) runs(ctx context.Context, s *session, workflow string, w store.Window, kind store.RunKind, limit int) (RunsJSON, error) {
	doc := RunsJSON{SchemaVersion: RunsSchemaVersion, GeneratedAt: a.io.Clock().UTC().Format(time.RFC3339), Window: string(w),
		List: string(kind), Limit: limit, Workflows: []WorkflowRefJSON{}, Runs: []RunSummaryJSON{}}
	refs, err := s.store.WorkflowRefs(ctx, workflow)
	isID := uuidArg.MatchString(workflow)
	switch {
	case err != nil && !isID:
		return doc, a.whyNotInstalled(ctx, s, err)
	case len(refs) == 0 && isID:
		// Not (yet) in the metrics: the runs are read by id all the same.
		doc.Workflows = append(doc.Workflows, WorkflowRefJSON{WorkflowID: strings.ToLower(workflow)})
	case len(refs) == 0:
		return doc, fmt.Errorf("no workflow has the slug or id %q (the metrics list every workflow definition as of their last refresh: run `meshtop refresh` for a new one)", safetext.Line(workflow))
	}
	for _, r := range refs {
		pid, pname, name, slug, ver := r.ProjectID, r.ProjectName, r.Name, r.Slug, r.Version
		doc.Workflows = append(doc.Workflows, WorkflowRefJSON{WorkflowID: r.WorkflowID, ProjectID: &pid, ProjectName: &pname,
			Name: &name, Slug: &slug, Version: &ver})
	}
	var all []store.RunSummary
	var scanned int64
	capped := false
	for _, ref := range doc.Workflows {
		l, err := s.store.Runs(ctx, ref.WorkflowID, w, kind, limit)
		if err != nil {
			return doc, a.whyNotInstalled(ctx, s, err)
		}
		all = append(all, l.Runs...)
		scanned += l.Scanned
		capped = capped || l.Capped
	}
	// Several definitions: one list, in the list's order.
	slices.SortStableFunc(all, func(x, y store.RunSummary) int {
		if kind == store.RunsSlowest {
			return -cmpDur(x.Duration(), y.Duration())
		}
		return y.StartedAt.Compare(x.StartedAt)
	})
	if len(all) > limit {
		all = all[:limit]
	}
	for _, r := range all {
		rj := RunSummaryJSON{RunID: r.RunID, WorkflowID: r.WorkflowID, Status: r.Status, StartedAt: msTime(r.StartedAt),
			FinishedAt: msTimePtr(r.FinishedAt), DurationMs: durMs(r.Duration())}
		if !r.Node.IsEmpty() {
			rj.Step = &RunStepRef{NodeID: r.Node, NodeType: r.NodeType, Attempts: r.Attempts, HTTPStatus: r.HTTPStatus,
				Error: nonEmptyText(r.Error), ErrorChars: r.ErrorChars}
		}
		doc.Runs = append(doc.Runs, rj)
	}
	if kind == store.RunsSlowest {
		doc.Scanned, doc.Capped = &scanned, &capped
	}
	return doc, nil
}

func cmpDur(a, b *time.Duration) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return int(max(-1, min(1, *a-*b)))
}

// writeJSON prints a document as the status command does: indented, exact
// values, with what a terminal would act on escaped (\uXXXX).
func (a *app) writeJSON(doc any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := a.stdout().Write(safetext.JSONSafe(buf.Bytes()))
	return err
}

// listErrorCells is how much of an error a line of `runs` shows.
const listErrorCells = 100

func writeRunsText(out io.Writer, doc RunsJSON) {
	what := "failed runs"
	order := "newest first"
	if doc.List == string(store.RunsSlowest) {
		what, order = "slowest runs", "slowest first"
	}
	var names []string
	for _, w := range doc.Workflows {
		if w.Name == nil {
			names = append(names, w.WorkflowID)
			continue
		}
		names = append(names, fmt.Sprintf("%s v%d (%s, %s)", w.Name, *w.Version, w.Slug, w.ProjectName))
	}
	fmt.Fprintf(out, "%s of %s started in the last %s, %s\n", what, strings.Join(names, "; "), doc.Window, order)
	if doc.Capped != nil && *doc.Capped {
		fmt.Fprintf(out, "(the slowest of the newest %d finished runs: %d per outcome at most)\n", *doc.Scanned, store.SlowestScan)
	}
	if len(doc.Runs) == 0 {
		fmt.Fprintln(out, "no runs")
		return
	}
	rows := [][]string{{"RUN", "STARTED (UTC)", "TOOK", "STATUS", "STEP", "ATT", "HTTP", "ERROR"}}
	for _, r := range doc.Runs {
		took := "-"
		if r.DurationMs != nil {
			took = msText(r.DurationMs)
		}
		step, att, http, errText := "-", "-", "-", ""
		if r.Step != nil {
			step, att = r.Step.NodeID.String(), fmt.Sprint(r.Step.Attempts)
			if r.Step.HTTPStatus != nil {
				http = fmt.Sprint(*r.Step.HTTPStatus)
			}
			if r.Step.Error != nil {
				errText = truncate(r.Step.Error.Line(), listErrorCells)
			}
		}
		started := strings.Replace(strings.TrimSuffix(r.StartedAt, "Z"), "T", " ", 1)
		rows = append(rows, []string{r.RunID, started, took, r.Status.String(), truncate(step, 40), att, http, errText})
	}
	writeTable(out, rows)
}

func (a *app) runCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "run RUN_ID [--json]",
		Short: "Print one run's timeline: every step with its attempts, HTTP statuses and errors",
		Long: `run prints what the dashboard's run timeline shows: the run's status, start
and finish, and every step — grouped as MeshHook writes them, from the node's
step_started to its final outcome — with its start, duration, attempts
(failed attempts, plus one if it succeeded), the HTTP status of each attempt,
its outcome, and each failed attempt's error whole (attempts with the same
error share it). Response bodies are never read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := a.connect(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			a.poolerNote(s)
			tl, err := s.store.Run(ctx, strings.TrimSpace(args[0]))
			if err != nil {
				if errors.Is(err, store.ErrRunNotFound) {
					return err
				}
				return s.wrap(a.whyNotInstalled(ctx, s, err))
			}
			doc := buildRun(a.io.Clock(), tl)
			if asJSON {
				return a.writeJSON(doc)
			}
			writeRunText(a.stdout(), doc)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the JSON document (docs/JSON.md) instead of text")
	return cmd
}

func buildRun(now time.Time, tl store.RunTimeline) RunJSON {
	r := tl.Run
	doc := RunJSON{SchemaVersion: RunSchemaVersion, GeneratedAt: now.UTC().Format(time.RFC3339), Steps: []RunStepJSON{}, EventsCut: tl.EventsCut}
	var d *time.Duration
	if r.FinishedAt != nil {
		x := r.FinishedAt.Sub(r.StartedAt)
		d = &x
	}
	doc.Run = RunInfoJSON{RunID: r.RunID, WorkflowID: r.WorkflowID, ProjectID: r.ProjectID, ProjectName: r.ProjectName,
		WorkflowName: r.WorkflowName, Slug: r.Slug, Version: r.Version, Status: r.Status, StartedAt: msTime(r.StartedAt),
		FinishedAt: msTimePtr(r.FinishedAt), DurationMs: durMs(d)}
	for _, s := range tl.Steps {
		sj := RunStepJSON{NodeID: s.NodeID, NodeType: s.NodeType, Execution: s.Span, StartedAt: msTime(s.StartedAt),
			EndedAt: msTimePtr(s.EndedAt), DurationMs: durMs(s.Duration()), Outcome: s.Outcome, Attempts: s.Attempts,
			HTTPStatuses: append([]int{}, s.HTTPStatuses...), Errors: []AttemptErrorJSON{}}
		for _, e := range s.Errors {
			sj.Errors = append(sj.Errors, AttemptErrorJSON{Attempt: e.Attempt, Error: e.Error, ErrorChars: e.Chars})
		}
		doc.Steps = append(doc.Steps, sj)
	}
	return doc
}

func writeRunText(out io.Writer, doc RunJSON) {
	r := doc.Run
	fmt.Fprintf(out, "run       %s  %s\n", r.RunID, r.Status)
	fmt.Fprintf(out, "workflow  %s v%d (%s) · %s · %s\n", r.WorkflowName, r.Version, r.Slug, r.ProjectName, r.WorkflowID)
	fmt.Fprintf(out, "started   %s\n", r.StartedAt)
	if r.FinishedAt != nil {
		fmt.Fprintf(out, "finished  %s (took %s)\n", *r.FinishedAt, msText(r.DurationMs))
	} else {
		fmt.Fprintln(out, "finished  not yet")
	}
	fmt.Fprintln(out)
	if len(doc.Steps) == 0 {
		fmt.Fprintln(out, "no step events")
		return
	}
	start, _ := time.Parse(time.RFC3339Nano, r.StartedAt)
	rows := [][]string{{"STEP", "TYPE", "START", "TOOK", "ATT", "HTTP", "OUTCOME"}}
	var errs [][]string // per step: its error lines
	for _, s := range doc.Steps {
		st, _ := time.Parse(time.RFC3339Nano, s.StartedAt)
		off := st.Sub(start)
		offMs := float64(off) / float64(time.Millisecond)
		var codes []string
		for _, c := range s.HTTPStatuses {
			codes = append(codes, fmt.Sprint(c))
		}
		http := strings.Join(codes, " ")
		if http == "" {
			http = "-"
		}
		node := s.NodeID.String()
		if s.Execution > 1 {
			node += fmt.Sprintf(" (#%d)", s.Execution)
		}
		rows = append(rows, []string{node, s.NodeType.String(), "+" + msText(&offMs), msText(s.DurationMs), fmt.Sprint(s.Attempts), http, s.Outcome})
		errs = append(errs, attemptLines(s.Errors))
	}
	// The table, each step's errors under its row.
	var buf bytes.Buffer
	writeTable(&buf, rows)
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	fmt.Fprintln(out, lines[0])
	for i, l := range lines[1:] {
		fmt.Fprintln(out, l)
		for _, e := range errs[i] {
			fmt.Fprintln(out, e)
		}
	}
	if doc.EventsCut {
		fmt.Fprintf(out, "(the run has more step events than the %d read: later steps are not shown)\n", store.TimelineEvents)
	}
}

// attemptLines are a step's errors, whole, under "  attempt N:" (attempts
// in a row with the same error share one), each line sanitized.
func attemptLines(errs []AttemptErrorJSON) []string {
	var out []string
	for i := 0; i < len(errs); {
		j := i + 1
		for j < len(errs) && errs[j].Error == errs[i].Error {
			j++
		}
		label := fmt.Sprintf("attempt %d", errs[i].Attempt)
		switch {
		case errs[i].Attempt <= 0 && j-i > 1:
			label = fmt.Sprintf("%d failed attempts", j-i) // step_failed without an attempt number
		case errs[i].Attempt <= 0:
			label = "failed attempt"
		case j-i > 1:
			label = fmt.Sprintf("attempts %d–%d", errs[i].Attempt, errs[j-1].Attempt)
		}
		out = append(out, "  "+label+":")
		for _, l := range errs[i].Error.Lines() {
			out = append(out, "    "+l)
		}
		if errs[i].ErrorChars > store.TimelineErrorChars {
			out = append(out, fmt.Sprintf("    (the first %d of %d characters)", store.TimelineErrorChars, errs[i].ErrorChars))
		}
		i = j
	}
	return out
}
