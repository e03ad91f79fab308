// Package store reads meshtop's metrics views, refresh log and schedule and
// drives refreshes. It returns plain Go types; nothing here knows about the
// terminal UI. Every method takes a context and applies the Store's query
// timeout.
package store

import (
	"fmt"
	"time"

	"github.com/meshtop/meshtop/data/safetext"
)

// Window is a trailing time window of the metrics, counted by a run's
// started_at.
type Window string

// The windows mv_workflow_metrics is computed for.
const (
	Window1h  Window = "1h"
	Window24h Window = "24h"
	Window7d  Window = "7d"
	Window30d Window = "30d"
)

// Windows lists every window, shortest first.
var Windows = []Window{Window1h, Window24h, Window7d, Window30d}

// ParseWindow accepts exactly one of the window names.
func ParseWindow(s string) (Window, error) {
	for _, w := range Windows {
		if string(w) == s {
			return w, nil
		}
	}
	return "", fmt.Errorf("unknown window %q: use one of 1h, 24h, 7d, 30d", s)
}

// Duration is the window's length.
func (w Window) Duration() time.Duration {
	switch w {
	case Window1h:
		return time.Hour
	case Window24h:
		return 24 * time.Hour
	case Window7d:
		return 7 * 24 * time.Hour
	case Window30d:
		return 30 * 24 * time.Hour
	}
	return 0
}

// Text that tenants, other sessions or other roles wrote into the database
// (names, slugs, node ids, errors, query texts, application names) is a
// safetext.Text: renderers get its sanitized form from String, and only
// machine-readable output asks for Raw (docs/SECURITY.md, "Database text on
// a terminal"). TestDisplayTypesCarryText keeps it that way. Plain string
// fields hold only what cannot carry such text: uuids, meshtop's own view
// names and states, values PostgreSQL or pg_cron validate.

// WorkflowMetrics is one row of mv_workflow_metrics: one workflow definition
// (version) in one window. Pointers are nil where a metric is undefined
// (no completed runs, no finished runs).
type WorkflowMetrics struct {
	WorkflowID  string // uuid
	ProjectID   string // uuid
	ProjectName safetext.Text
	Name        safetext.Text
	Slug        safetext.Text
	Version     int
	Status      safetext.Text // definition status: draft, published, archived (not constrained by MeshHook)
	Window      Window

	Runs      int64 // execution_count: every run started in the window
	Succeeded int64
	Failed    int64
	Canceled  int64
	Running   int64 // started in the window and still running/paused at refresh time

	SuccessRate *float64 // succeeded / (succeeded+failed+canceled), 0..1
	FailureRate *float64 // failed / (succeeded+failed+canceled), 0..1

	AvgMs, P50Ms, P95Ms, P99Ms, MinMs, MaxMs *float64 // finished runs' durations

	ResourceSeconds float64 // resource_consumption: total run-seconds
	LastFailureAt   *time.Time
	LastUpdated     time.Time // when the view row was computed (its refresh)
}

// HourlyPoint is one row of mv_workflow_metrics_hourly.
type HourlyPoint struct {
	WorkflowID string
	Hour       time.Time
	Runs       int64
	Succeeded  int64
	Failed     int64
	Canceled   int64
	P50Ms      *float64
	P95Ms      *float64
}

// StepMetrics is one row of mv_step_metrics: a node of a workflow. An
// execution is a step_started through its final outcome (retries included);
// Failures are the executions that finally failed (docs/METRICS.md).
type StepMetrics struct {
	WorkflowID    string
	NodeID        safetext.Text // from the event payload, written by the tenant's workflow definition
	NodeType      safetext.Text
	Window        Window
	Executions    int64
	Failures      int64
	FailureRate   *float64
	P50Ms, P95Ms  *float64 // step_started to the final outcome
	LastFailureAt *time.Time

	// Attempts of the executions (a step_succeeded or step_failed each):
	// in all, per execution on average and at most, the executions that
	// needed more than one (Retried, RetryRate = Retried / Executions), and
	// the failed ones (FailedAttempts, AttemptFailureRate = FailedAttempts
	// / Attempts).
	Attempts           int64
	AvgAttempts        float64
	MaxAttempts        int
	Retried            int64
	RetryRate          float64
	FailedAttempts     int64
	AttemptFailureRate float64
	// Attempts by the HTTP status of their http_attempted: 2xx, 4xx, 5xx,
	// other (1xx, 3xx, none or not a number); HTTPNone is failed attempts
	// without an http_attempted (no response: a network error).
	HTTP2xx, HTTP4xx, HTTP5xx, HTTPOther, HTTPNone int64
}

// Blocker is a backend holding a lock a refresh waits for.
type Blocker struct {
	PID   int32
	Query safetext.Text // pg_stat_activity.query: any session's SQL, with its literal values
	Age   time.Duration
}

// RefreshLogEntry is one row of the refresh log (an attempt).
type RefreshLogEntry struct {
	ID              int64
	View            string
	StartedAt       time.Time
	FinishedAt      *time.Time
	DurationMs      *float64
	Rows            *int64
	Status          string // running, ok, failed, skipped, interrupted
	Error           safetext.Text
	PID             int32
	TriggeredBy     safetext.Text // role name
	ApplicationName safetext.Text // chosen by the client
	Concurrently    bool
	DataAsOf        *time.Time // the metrics clock when the refresh ran
	// Mode is how the refresh used the rollup: "incremental" (DirtyKeys
	// log rows of changed (workflow, hour) keys applied) or "full" (rebuilt
	// from the raw tables); "" for attempts that did not get that far.
	Mode      string
	DirtyKeys int64
	// Actor is who asked for the refresh when the caller said so
	// (WithActor: `serve` names the SSH user and key); CanceledBy who
	// cancelled it through CancelRefresh (an actor, else "role
	// (application)"). Both "" when unknown or not cancelled.
	Actor      safetext.Text
	CanceledBy safetext.Text
}

// RunningRefresh describes a refresh in progress.
type RunningRefresh struct {
	LogID     int64
	View      string
	PID       int32
	StartedAt time.Time
	// WaitingForLock is true while the refreshing backend waits on a lock;
	// BlockedBy names who holds it.
	WaitingForLock bool
	BlockedBy      []Blocker
}

// ViewStatus is one row of the status view plus live facts about the view.
type ViewStatus struct {
	Name              string
	Populated         bool
	Rows              int64
	SizeBytes         int64
	LastRefreshAt     *time.Time     // data as of: start of the last successful refresh
	Lag               *time.Duration // now − LastRefreshAt (plus replication lag when read from a replica)
	LastDurationMs    *float64       // last successful refresh
	MedianDurationMs  *float64       // median of recent successful refreshes
	LastStatus        string
	LastError         safetext.Text
	RecentDurationsMs []float64 // oldest first, for a sparkline
	LastRefreshID     int64     // log id of the last successful refresh, 0 if none
	Running           *RunningRefresh
}

// CronRun is one row of cron.job_run_details for meshtop's job.
type CronRun struct {
	Start   time.Time
	End     *time.Time
	Status  string        // set by pg_cron
	Message safetext.Text // the command's output or error
}

// Schedule is the pg_cron schedule of the refresh.
type Schedule struct {
	CronAvailable bool // the pg_cron extension is installed in this database
	Scheduled     bool // meshtop's job exists
	JobID         int64
	Schedule      string // the pg_cron schedule text, e.g. "* * * * *"
	Every         time.Duration
	Active        bool
	NextRun       *time.Time // computed from the schedule, nil when unknown
	LastRuns      []CronRun  // newest first
	// Unknown, when set, says why the job could not be read and what
	// would show it (a grant to the schema's owner, or an upgrade).
	Unknown safetext.Text
}

// ServerInfo describes the database meshtop is connected to.
type ServerInfo struct {
	Host       string // never includes a password
	Port       uint16
	Database   string
	User       string
	Version    string // e.g. "15.18"
	VersionNum int    // server_version_num
	InRecovery bool   // a hot standby
	// ReplicationLag is now − pg_last_xact_replay_timestamp() on a standby.
	ReplicationLag *time.Duration
}

// RefreshResult is what one refresh call did for one view.
type RefreshResult struct {
	View       string
	LogID      int64
	Status     string // ok, failed, skipped
	Rows       int64
	DurationMs float64
	Error      safetext.Text
	// Mode and DirtyKeys as in RefreshLogEntry.
	Mode      string
	DirtyKeys int64
	// For skipped: who holds the guard.
	HolderPID   int32
	HolderSince *time.Time
}

// RefreshEvent is a NOTIFY payload from the refresh channel: a refresh
// started or finished somewhere (pg_cron, another operator, us).
type RefreshEvent struct {
	LogID  int64
	View   string
	Status string // running when it starts; ok/failed/skipped when it ends
	PID    int32
}

// Overview is everything the overview screen and `status` show.
//
// Workflows, Hourly and Changes are shared: between two refreshes every
// read returns the very slice and maps the first one did (copying and
// comparing 1,000 rows was about a quarter of each poll's CPU time), so a
// reader must not modify them; sort or filter a copy or indices into them.
// The Store never modifies them either: a new read replaces them.
type Overview struct {
	Window    Window
	Server    ServerInfo
	Workflows []WorkflowMetrics
	// Hourly holds sparkline points by workflow id, oldest first, covering
	// the window (at least 24 hours), only buckets with runs. Points are
	// HourlyStep wide (1h for 1h/24h, 6h for 7d, 24h for 30d): counts
	// summed, P50Ms/P95Ms the worst hour of the bucket. Hour is the bucket
	// start.
	Hourly     map[string][]HourlyPoint
	HourlyStep time.Duration
	RunningNow map[string]int64 // live count of running runs by workflow id (cheap query on the base table)
	Views      []ViewStatus
	DataAsOf   *time.Time // oldest LastRefreshAt of the views shown
	// Changes compares each workflow's window with the previous one (see
	// Change), read with the workflow rows and anchored on their clock, so
	// the Δ columns and the rows beside them come from one refresh. Empty
	// for 30d and before the first refresh.
	Changes map[string]Change
}

// WorkflowDetail is everything the detail screen shows.
type WorkflowDetail struct {
	Metrics WorkflowMetrics
	Hourly  []HourlyPoint // hours with runs over DetailSpan(window), oldest first
	Steps   []StepMetrics
}

// Change compares one workflow's window with the window of the same
// length just before it, both read from the hourly view (Store.Changes).
// A field is nil where its window has no completed run (rates) or no
// finished run (p95).
type Change struct {
	WorkflowID string
	// Failure rates over the windows' hours, 0..1.
	FailureRate, PrevFailureRate *float64
	// Completed runs (succeeded, failed, canceled) the rates are of.
	Completed, PrevCompleted int64
	// The median of the windows' hourly p95 durations: the typical hour's
	// p95 (percentiles do not merge, so not the window's own p95).
	P95HourMs, PrevP95HourMs *float64
}

// FailureRateDelta is the change of the failure rate (current − previous),
// nil unless both are known.
func (c Change) FailureRateDelta() *float64 {
	if c.FailureRate == nil || c.PrevFailureRate == nil {
		return nil
	}
	d := *c.FailureRate - *c.PrevFailureRate
	return &d
}

// P95Ratio is the relative change of the typical hour's p95
// (current / previous − 1), nil unless both are known and previous > 0.
func (c Change) P95Ratio() *float64 {
	if c.P95HourMs == nil || c.PrevP95HourMs == nil || *c.PrevP95HourMs <= 0 {
		return nil
	}
	r := *c.P95HourMs / *c.PrevP95HourMs - 1
	return &r
}

// MinCompletedRuns is the volume floor below which a workflow's rates are
// noise: `check` judges no success rate, and the dashboard compares no
// failure rate (ΔFail, d), of fewer completed runs in a window.
const MinCompletedRuns = 10

// HasPrevious tells whether the hourly view holds the window before w
// (it keeps 30 days): true for 1h, 24h and 7d.
func (w Window) HasPrevious() bool { return 2*w.Duration() <= 30*24*time.Hour }
