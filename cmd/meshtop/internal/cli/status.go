package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

// SchemaVersion is the version of the `status --json` document
// (docs/JSON.md). Adding fields keeps it; renaming or removing one, or
// changing a field's meaning or type, bumps it.
const SchemaVersion = 1

// StatusJSON is the `meshtop status --json` document.
type StatusJSON struct {
	SchemaVersion int            `json:"schema_version"`
	GeneratedAt   string         `json:"generated_at"`
	Window        string         `json:"window"`
	Views         []ViewJSON     `json:"views"`
	Workflows     []WorkflowJSON `json:"workflows"`
	// Capture is how MeshHook's changes reach the refresh (null when the
	// schema predates it or the role cannot read it).
	Capture *CaptureJSON `json:"capture"`
}

// CaptureJSON is change capture's state (docs/JSON.md).
type CaptureJSON struct {
	Mode            string         `json:"mode"`    // wal, triggers or arming
	Desired         string         `json:"desired"` // auto, wal or triggers
	ModeSince       string         `json:"mode_since"`
	Slot            *string        `json:"slot"` // meshtop's replication slot, null without one
	SlotActive      bool           `json:"slot_active"`
	WALStatus       *string        `json:"wal_status"`
	RetainedBytes   int64          `json:"retained_bytes"` // WAL not yet consumed
	RestartBytes    int64          `json:"restart_bytes"`  // WAL the server keeps for the slot
	ConsumedAt      *string        `json:"consumed_at"`
	LagSeconds      *float64       `json:"lag_seconds"`
	MaxBytes        int64          `json:"max_bytes"`
	MaxAgeSeconds   float64        `json:"max_age_seconds"`
	FallbackAt      *string        `json:"fallback_at"`
	FallbackReason  *safetext.Text `json:"fallback_reason"`
	ReplicaIdentity string         `json:"replica_identity"`
	WALUnavailable  *safetext.Text `json:"wal_unavailable"`
	LogRows         int64          `json:"log_rows"`
	LogBytes        int64          `json:"log_bytes"`
	TriggersStopped bool           `json:"triggers_stopped"`
	RebuildPending  bool           `json:"rebuild_pending"`
}

// captureJSON is the document's capture object (nil without one).
func captureJSON(c *store.CaptureLog) *CaptureJSON {
	if c == nil || c.Capture == nil {
		return nil
	}
	w := c.Capture
	out := &CaptureJSON{
		Mode: w.Mode, Desired: w.Desired, ModeSince: w.ModeSince.UTC().Format(time.RFC3339),
		SlotActive: w.SlotActive, RetainedBytes: w.RetainedBytes, RestartBytes: w.RestartBytes,
		ConsumedAt: rfc3339(w.ConsumedAt), MaxBytes: w.MaxBytes, MaxAgeSeconds: w.MaxAge.Seconds(),
		FallbackAt: rfc3339(w.FallbackAt), FallbackReason: nonEmptyText(w.FallbackReason),
		ReplicaIdentity: w.ReplicaIdentity, WALUnavailable: nonEmptyText(w.Unavailable),
		LogRows: c.Rows, LogBytes: c.Bytes, TriggersStopped: c.Stopped, RebuildPending: c.RebuildPending,
	}
	if w.SlotExists {
		out.Slot = &w.Slot
		out.WALStatus = nonEmpty(w.WALStatus)
	}
	if w.ConsumedAt != nil {
		lag := math.Round(w.Lag.Seconds()*1e3) / 1e3
		out.LagSeconds = &lag
	}
	return out
}

// captureLine is the status table's line about change capture.
func captureLine(c *CaptureJSON) string {
	if c == nil {
		return ""
	}
	line := "change capture: " + c.Mode
	if c.Desired != c.Mode {
		line += " (asked: " + c.Desired + ")"
	}
	if c.Slot != nil {
		line += fmt.Sprintf("; slot %s holds %s unconsumed (bound %s)", *c.Slot, formatBytes(c.RetainedBytes), formatBytes(c.MaxBytes))
		if c.LagSeconds != nil {
			line += ", consumed " + lagText(c.LagSeconds) + " ago"
		}
	}
	if c.FallbackAt != nil && c.FallbackReason != nil {
		line += "; fell back to triggers at " + *c.FallbackAt + ": " + truncate(c.FallbackReason.Line(), 100)
	}
	return line
}

// ViewJSON is one materialized view's freshness.
type ViewJSON struct {
	Name           string         `json:"name"`
	Populated      bool           `json:"populated"`
	Rows           int64          `json:"rows"`
	LastRefreshAt  *string        `json:"last_refresh_at"`
	LagSeconds     *float64       `json:"lag_seconds"`
	LastDurationMs *float64       `json:"last_duration_ms"`
	LastStatus     *string        `json:"last_status"`
	LastError      *safetext.Text `json:"last_error"`
	Schedule       *ScheduleJSON  `json:"schedule"`
}

// ScheduleJSON is the pg_cron job that refreshes the views.
type ScheduleJSON struct {
	Cron         string  `json:"cron"`
	EverySeconds float64 `json:"every_seconds"`
	Active       bool    `json:"active"`
	NextRunAt    *string `json:"next_run_at"`
}

// WorkflowJSON is one workflow definition's metrics in the window.
type WorkflowJSON struct {
	WorkflowID    string        `json:"workflow_id"`
	ProjectID     string        `json:"project_id"`
	ProjectName   safetext.Text `json:"project_name"`
	Name          safetext.Text `json:"name"`
	Slug          safetext.Text `json:"slug"`
	Version       int           `json:"version"`
	Runs          int64         `json:"runs"`
	Succeeded     int64         `json:"succeeded"`
	Failed        int64         `json:"failed"`
	Canceled      int64         `json:"canceled"`
	Running       int64         `json:"running"`
	SuccessRate   *float64      `json:"success_rate"`
	FailureRate   *float64      `json:"failure_rate"`
	AvgDurationMs *float64      `json:"avg_duration_ms"`
	P50DurationMs *float64      `json:"p50_duration_ms"`
	P95DurationMs *float64      `json:"p95_duration_ms"`
	P99DurationMs *float64      `json:"p99_duration_ms"`
	LastFailureAt *string       `json:"last_failure_at"`
	Change        *ChangeJSON   `json:"change"`
	Steps         []StepJSON    `json:"steps"`
}

// StepJSON is one node of a workflow definition in the window
// (mv_step_metrics, docs/METRICS.md): an execution is a step_started through
// its final outcome, retries included; failures are executions that
// finally failed.
type StepJSON struct {
	NodeID             safetext.Text  `json:"node_id"`
	NodeType           safetext.Text  `json:"node_type"`
	Executions         int64          `json:"executions"`
	Failures           int64          `json:"failures"`
	FailureRate        *float64       `json:"failure_rate"`
	P50LatencyMs       *float64       `json:"p50_latency_ms"`
	P95LatencyMs       *float64       `json:"p95_latency_ms"`
	LastFailureAt      *string        `json:"last_failure_at"`
	Attempts           int64          `json:"attempts"`
	AvgAttempts        float64        `json:"avg_attempts"`
	MaxAttempts        int            `json:"max_attempts"`
	Retried            int64          `json:"retried"`
	RetryRate          float64        `json:"retry_rate"`
	FailedAttempts     int64          `json:"failed_attempts"`
	AttemptFailureRate float64        `json:"attempt_failure_rate"`
	HTTPStatus         HTTPStatusJSON `json:"http_status"`
}

// HTTPStatusJSON counts a step's attempts by the status class of their
// http_attempted; none: failed attempts without one (no response).
type HTTPStatusJSON struct {
	S2xx  int64 `json:"2xx"`
	S4xx  int64 `json:"4xx"`
	S5xx  int64 `json:"5xx"`
	Other int64 `json:"other"`
	None  int64 `json:"none"`
}

// ChangeJSON compares the window with the previous window of the same
// length, both from the hourly view (null for 30d: the view keeps 30 days).
type ChangeJSON struct {
	FailureRate         *float64 `json:"failure_rate"`
	PreviousFailureRate *float64 `json:"previous_failure_rate"`
	Completed           int64    `json:"completed"`
	PreviousCompleted   int64    `json:"previous_completed"`
	FailureRateDelta    *float64 `json:"failure_rate_delta"`
	P95HourMedianMs     *float64 `json:"p95_hour_median_ms"`
	PreviousP95HourMs   *float64 `json:"previous_p95_hour_median_ms"`
	P95Ratio            *float64 `json:"p95_change_ratio"`
}

func (a *app) statusCmd() *cobra.Command {
	var window store.Window
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the views' freshness and every workflow's metrics (table or --json)",
		Long: `status prints what the dashboard's overview shows: each view's freshness
(populated, rows, last refresh, lag, last duration and status) and every
workflow definition's metrics in the window, as a table or, with --json, as
the versioned document described in docs/JSON.md.

With --replica-dsn the metrics are read from the standby and the lag
includes replication lag.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := a.connect(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			a.poolerNote(s)
			doc, ov, err := a.status(ctx, s, window)
			if err != nil {
				return s.wrap(err)
			}
			if asJSON {
				// Values stay exact; JSONSafe only escapes (\uXXXX) what a
				// terminal would act on, should the document be printed on
				// one.
				var buf bytes.Buffer
				enc := json.NewEncoder(&buf)
				enc.SetIndent("", "  ")
				if err := enc.Encode(doc); err != nil {
					return err
				}
				_, err := a.stdout().Write(safetext.JSONSafe(buf.Bytes()))
				return err
			}
			writeStatusTable(a.stdout(), doc, ov)
			return nil
		},
	}
	cmd.Flags().Var(newWindow(&window, store.Window24h), "window", "window of the workflow metrics: 1h, 24h, 7d or 30d")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the JSON document (docs/JSON.md) instead of a table")
	_ = cmd.RegisterFlagCompletionFunc("window", fixedCompletions(windowNames()))
	return cmd
}

// status reads the overview and the schedule and builds the JSON document.
func (a *app) status(ctx context.Context, s *session, w store.Window) (StatusJSON, store.Overview, error) {
	ov, err := s.store.Overview(ctx, w)
	if err != nil {
		return StatusJSON{}, ov, a.whyNotInstalled(ctx, s, err)
	}
	// The schedule is informative: without pg_cron or without access to the
	// cron schema it is null.
	var sched *ScheduleJSON
	if sc, err := s.store.Schedule(ctx); err == nil && sc.Scheduled {
		sched = &ScheduleJSON{Cron: sc.Schedule, EverySeconds: sc.Every.Seconds(), Active: sc.Active, NextRunAt: rfc3339(sc.NextRun)}
	}
	changes, err := s.store.Changes(ctx, w)
	if err != nil {
		return StatusJSON{}, ov, err
	}
	steps, err := s.store.Steps(ctx, w)
	if err != nil {
		return StatusJSON{}, ov, err
	}
	doc := buildStatus(a.io.Clock(), w, ov, sched, changes, steps)
	// Informative too: a reader of an older schema has none.
	if c, err := s.store.CaptureLog(ctx); err == nil {
		doc.Capture = captureJSON(&c)
	}
	return doc, ov, nil
}

func buildStatus(now time.Time, w store.Window, ov store.Overview, sched *ScheduleJSON, changes map[string]store.Change, steps []store.StepMetrics) StatusJSON {
	doc := StatusJSON{
		SchemaVersion: SchemaVersion,
		GeneratedAt:   now.UTC().Format(time.RFC3339),
		Window:        string(w),
		Views:         []ViewJSON{},
		Workflows:     []WorkflowJSON{},
	}
	for _, v := range ov.Views {
		vj := ViewJSON{
			Name:           v.Name,
			Populated:      v.Populated,
			Rows:           v.Rows,
			LastRefreshAt:  rfc3339(v.LastRefreshAt),
			LastDurationMs: round(v.LastDurationMs, 1e3),
			LastStatus:     nonEmpty(v.LastStatus),
			LastError:      nonEmptyText(v.LastError),
			Schedule:       sched,
		}
		if v.Lag != nil {
			secs := math.Round(v.Lag.Seconds()*1e3) / 1e3
			vj.LagSeconds = &secs
		}
		doc.Views = append(doc.Views, vj)
	}
	byWorkflow := map[string][]StepJSON{}
	for _, st := range steps { // in the store's order: most failures, then slowest p95, then node id
		byWorkflow[st.WorkflowID] = append(byWorkflow[st.WorkflowID], stepJSON(st))
	}
	wfs := append([]store.WorkflowMetrics(nil), ov.Workflows...)
	sortWorkflows(wfs)
	for _, m := range wfs {
		doc.Workflows = append(doc.Workflows, WorkflowJSON{
			WorkflowID:    m.WorkflowID,
			ProjectID:     m.ProjectID,
			ProjectName:   m.ProjectName,
			Name:          m.Name,
			Slug:          m.Slug,
			Version:       m.Version,
			Runs:          m.Runs,
			Succeeded:     m.Succeeded,
			Failed:        m.Failed,
			Canceled:      m.Canceled,
			Running:       m.Running,
			SuccessRate:   round(m.SuccessRate, 1e6),
			FailureRate:   round(m.FailureRate, 1e6),
			AvgDurationMs: round(m.AvgMs, 1e3),
			P50DurationMs: round(m.P50Ms, 1e3),
			P95DurationMs: round(m.P95Ms, 1e3),
			P99DurationMs: round(m.P99Ms, 1e3),
			LastFailureAt: rfc3339(m.LastFailureAt),
			Change:        changeJSON(changes, m.WorkflowID, w),
			Steps:         append([]StepJSON{}, byWorkflow[m.WorkflowID]...),
		})
	}
	return doc
}

func stepJSON(st store.StepMetrics) StepJSON {
	rate := func(r float64) float64 { return *round(&r, 1e6) }
	return StepJSON{
		NodeID:             st.NodeID,
		NodeType:           st.NodeType,
		Executions:         st.Executions,
		Failures:           st.Failures,
		FailureRate:        round(st.FailureRate, 1e6),
		P50LatencyMs:       round(st.P50Ms, 1e3),
		P95LatencyMs:       round(st.P95Ms, 1e3),
		LastFailureAt:      rfc3339(st.LastFailureAt),
		Attempts:           st.Attempts,
		AvgAttempts:        rate(st.AvgAttempts),
		MaxAttempts:        st.MaxAttempts,
		Retried:            st.Retried,
		RetryRate:          rate(st.RetryRate),
		FailedAttempts:     st.FailedAttempts,
		AttemptFailureRate: rate(st.AttemptFailureRate),
		HTTPStatus: HTTPStatusJSON{S2xx: st.HTTP2xx, S4xx: st.HTTP4xx, S5xx: st.HTTP5xx,
			Other: st.HTTPOther, None: st.HTTPNone},
	}
}

// sortWorkflows orders by project, name, slug, version (newest first), id:
// stable output for diffs and golden files.
func sortWorkflows(wfs []store.WorkflowMetrics) {
	sort.SliceStable(wfs, func(i, j int) bool {
		a, b := wfs[i], wfs[j]
		if c := a.ProjectName.Compare(b.ProjectName); c != 0 {
			return c < 0
		}
		if c := a.Name.Compare(b.Name); c != 0 {
			return c < 0
		}
		if c := a.Slug.Compare(b.Slug); c != 0 {
			return c < 0
		}
		if a.Version != b.Version {
			return a.Version > b.Version
		}
		return a.WorkflowID < b.WorkflowID
	})
}

// round rounds *v to 1/scale: the last bits of a float aggregate depend on
// the order PostgreSQL summed in, and must not make the output flap.
func round(v *float64, scale float64) *float64 {
	if v == nil {
		return nil
	}
	r := math.Round(*v*scale) / scale
	return &r
}

func rfc3339(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonEmptyText(s safetext.Text) *safetext.Text {
	if s.IsEmpty() {
		return nil
	}
	return &s
}

// writeStatusTable prints the views and workflows sections. Names and
// errors are printed in their sanitized form (safetext.Text's String) and
// the columns are aligned by display width, not bytes or runes.
func writeStatusTable(out io.Writer, doc StatusJSON, ov store.Overview) {
	asOf := "never"
	if ov.DataAsOf != nil {
		asOf = ov.DataAsOf.UTC().Format(time.RFC3339)
	}
	role := "primary"
	if ov.Server.InRecovery {
		role = "standby"
	}
	fmt.Fprintf(out, "meshtop status  window %s  generated %s  data as of %s  server %s (%s)\n\n",
		doc.Window, doc.GeneratedAt, asOf, safetext.Sanitize(ov.Server.Version), role)
	views := [][]string{{"VIEW", "POPULATED", "ROWS", "LAST REFRESH", "LAG", "LAST MS", "STATUS", "SCHEDULE"}}
	for _, v := range doc.Views {
		sched := "-"
		if v.Schedule != nil {
			sched = "every " + formatDuration(time.Duration(v.Schedule.EverySeconds*float64(time.Second)))
		}
		status := deref(v.LastStatus, "-")
		if v.LastError != nil {
			status += ": " + truncate(v.LastError.Line(), 60)
		}
		views = append(views, []string{v.Name, yesNo(v.Populated), fmt.Sprint(v.Rows),
			deref(v.LastRefreshAt, "never"), lagText(v.LagSeconds), msText(v.LastDurationMs), status, sched})
	}
	writeTable(out, views)
	if l := captureLine(doc.Capture); l != "" {
		fmt.Fprintln(out)
		fmt.Fprintln(out, l)
	}
	fmt.Fprintln(out)
	wfs := [][]string{{"WORKFLOW", "SLUG", "VER", "PROJECT", "RUNS", "OK", "FAILED", "CANCELED", "RUNNING", "SUCCESS", "P50", "P95", "LAST FAILURE"}}
	for _, w := range doc.Workflows {
		wfs = append(wfs, []string{
			truncate(w.Name.String(), 32), w.Slug.String(), fmt.Sprint(w.Version), truncate(projectName(ov, w.WorkflowID).String(), 20),
			fmt.Sprint(w.Runs), fmt.Sprint(w.Succeeded), fmt.Sprint(w.Failed), fmt.Sprint(w.Canceled), fmt.Sprint(w.Running),
			pctText(w.SuccessRate), msText(w.P50DurationMs), msText(w.P95DurationMs), deref(w.LastFailureAt, "-")})
	}
	writeTable(out, wfs)
}

// writeTable left-aligns rows in columns two spaces apart, measuring cells
// by their display width (text/tabwriter counts runes, which misaligns
// wide and combining characters); the last cell of a row is not padded.
// Cells must be sanitized already.
func writeTable(out io.Writer, rows [][]string) {
	var widths []int
	for _, r := range rows {
		for i, c := range r[:len(r)-1] {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], safetext.Width(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		b.Reset()
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-safetext.Width(c)+2))
			}
		}
		b.WriteByte('\n')
		_, _ = io.WriteString(out, b.String())
	}
}

func projectName(ov store.Overview, id string) safetext.Text {
	for _, m := range ov.Workflows {
		if m.WorkflowID == id {
			return m.ProjectName
		}
	}
	return safetext.Text{}
}

func deref(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func lagText(secs *float64) string {
	if secs == nil {
		return "-"
	}
	return formatDuration(time.Duration(*secs * float64(time.Second)).Round(time.Second))
}

func msText(ms *float64) string {
	if ms == nil {
		return "-"
	}
	switch {
	case *ms < 1000:
		return fmt.Sprintf("%.0fms", *ms)
	case *ms < 60000:
		return fmt.Sprintf("%.2fs", *ms/1000)
	}
	return formatDuration(time.Duration(*ms * float64(time.Millisecond)).Round(time.Second))
}

func pctText(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *r*100)
}

// truncate cuts sanitized text to n cells, ending in "…" when cut.
func truncate(s string, n int) string { return safetext.Truncate(s, n, "…") }

// whyNotInstalled replaces "not installed; run meshtop install" by what
// install itself would say when installing cannot help: a database without
// MeshHook's tables, a standby, a server too old. Any other error (and a
// role merely lacking privileges, for whom someone else can install) is
// returned as it is.
func (a *app) whyNotInstalled(ctx context.Context, s *session, err error) error {
	if !errors.Is(err, store.ErrNotInstalled) {
		return err
	}
	var pe *install.PreconditionError
	if cerr := install.New(s.primary, a.g.schema).Check(ctx); errors.As(cerr, &pe) && pe.Kind != "privileges" {
		return pe
	}
	return err
}

// changeJSON is a workflow's comparison with the previous window: null
// when the window has no previous one in the hourly view (30d); an object
// of nulls for a workflow without runs in either.
func changeJSON(changes map[string]store.Change, id string, w store.Window) *ChangeJSON {
	if !w.HasPrevious() {
		return nil
	}
	c := changes[id]
	return &ChangeJSON{
		FailureRate:         round(c.FailureRate, 1e6),
		PreviousFailureRate: round(c.PrevFailureRate, 1e6),
		Completed:           c.Completed,
		PreviousCompleted:   c.PrevCompleted,
		FailureRateDelta:    round(c.FailureRateDelta(), 1e6),
		P95HourMedianMs:     round(c.P95HourMs, 1e3),
		PreviousP95HourMs:   round(c.PrevP95HourMs, 1e3),
		P95Ratio:            round(c.P95Ratio(), 1e4),
	}
}
