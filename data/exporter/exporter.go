// Package exporter turns meshtop's views into Prometheus metrics. It reads
// through the store (or anything with the same two methods) at most once
// per cache interval, however many servers scrape, and bounds the number of
// workflow series.
//
// Metric names follow the Prometheus conventions (base units in the name,
// _seconds, _ratio, _total for counters) and pass `promtool check metrics`.
// Percentiles are gauges named per percentile, not a summary: a summary's
// _count and _sum are counters, and a trailing window's run count and
// run-seconds fall as runs leave it. No label is named instance or job
// (Prometheus's target labels). Label sets:
//
//	view                                           one per materialized view (3)
//	window, workflow_id, project_id, slug, version one per exported workflow
//	                                               version and window, capped
//	                                               at MaxWorkflows per window
//	                                               (worst failure ratio first)
//	… and node_id                                  one per exported step: a
//	                                               node of an exported
//	                                               workflow version, capped at
//	                                               MaxSteps per window (most
//	                                               final failures, then failed
//	                                               attempts, first); with
//	                                               outcome (2 values) or
//	                                               status_class (5)
//
// No label or value carries a workflow's name, an event payload other than
// the node id (sanitized, as slugs are), or anything from the connection
// string.
package exporter

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshtop/meshtop/data/store"
)

// Source is what the exporter reads: *store.Store (or a hub in front of it).
type Source interface {
	Overview(ctx context.Context, w store.Window) (store.Overview, error)
	Steps(ctx context.Context, w store.Window) ([]store.StepMetrics, error)
	RefreshOutcomes(ctx context.Context, afterID int64, limit int) ([]store.RefreshOutcome, error)
}

// Options configure an Exporter.
type Options struct {
	// Windows whose workflow metrics are exported (default 24h).
	Windows []store.Window
	// MaxWorkflows caps the workflow versions exported per window (default
	// 200); the ones with the worst failure ratio are kept.
	MaxWorkflows int
	// MaxSteps caps the steps (nodes of exported workflow versions)
	// exported per window (default 100); the ones with the most final
	// failures, then failed attempts, are kept.
	MaxSteps int
	// Cache is how long one reading of the database serves scrapes
	// (default 15s).
	Cache time.Duration
	// Timeout bounds one reading (default 10s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Outcomes a refresh attempt ends with (the values of the outcome label).
var Outcomes = []string{"ok", "failed", "skipped", "interrupted"}

// Exporter is a prometheus.Collector.
type Exporter struct {
	src  Source
	opts Options
	log  *slog.Logger

	mu        sync.Mutex // one reading at a time; scrapes during it wait for it
	snap      *snapshot
	readAt    time.Time // when the last reading (even a failed one) ended
	readErr   error
	reads     float64
	errors    float64
	readSecs  float64
	outcomes  map[[2]string]float64 // view, outcome → count since start
	afterID   int64                 // every attempt with an id ≤ afterID is counted or was there at start
	counted   map[int64]bool        // finished attempts above afterID already counted
	started   bool                  // the log's attempts at the start have been taken note of
	viewNames []string
}

type snapshot struct {
	at        time.Time
	overviews []store.Overview
	capture   *store.CaptureLog     // nil when the source cannot say
	steps     [][]store.StepMetrics // per window, as overviews
}

// captureOf is the capture mode's part of a reading (nil when the schema
// predates WAL capture).
func captureOf(l *store.CaptureLog) *store.Capture {
	if l == nil {
		return nil
	}
	return l.Capture
}

// captureSource is a Source that also reads change capture's state
// (*store.Store does).
type captureSource interface {
	CaptureLog(ctx context.Context) (store.CaptureLog, error)
}

// CaptureModes are the values of meshtop_capture_mode's mode label.
var CaptureModes = []string{"wal", "triggers", "arming"}

// New returns an exporter reading src.
func New(src Source, opts Options) *Exporter {
	if len(opts.Windows) == 0 {
		opts.Windows = []store.Window{store.Window24h}
	}
	if opts.MaxWorkflows <= 0 {
		opts.MaxWorkflows = 200
	}
	if opts.MaxSteps <= 0 {
		opts.MaxSteps = 100
	}
	if opts.Cache <= 0 {
		opts.Cache = 15 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Exporter{src: src, opts: opts, log: log, outcomes: map[[2]string]float64{}, counted: map[int64]bool{}, viewNames: store.ViewNames()}
}

// Reads is how many times a scrape went to the database.
func (e *Exporter) Reads() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return int(e.reads)
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	viewL = []string{"view"}
	wfL   = []string{"window", "workflow_id", "project_id", "slug", "version"}

	dUp          = desc("meshtop_up", "1 when the last reading of the database succeeded, else 0.")
	dReads       = desc("meshtop_exporter_database_reads_total", "Readings of the database made for scrapes (at most one per --metrics-cache interval).")
	dErrors      = desc("meshtop_exporter_scrape_errors_total", "Readings of the database made for scrapes that failed.")
	dReadSecs    = desc("meshtop_exporter_read_duration_seconds", "How long the last reading of the database for a scrape took.")
	dAge         = desc("meshtop_exporter_data_age_seconds", "Age of the reading this scrape was served from (absent while readings fail).")
	dPopulated   = desc("meshtop_view_populated", "1 when the view holds data (has been refreshed at least once).", viewL...)
	dRows        = desc("meshtop_view_rows", "Rows of the view after its last successful refresh (from the refresh log).", viewL...)
	dSize        = desc("meshtop_view_size_bytes", "Size of the view (of its rollup table for an incremental view) with TOAST and indexes, from the catalog's page counts (pg_class.relpages).", viewL...)
	dLastRefresh = desc("meshtop_view_last_refresh_timestamp_seconds", "Time the view's data is as of: the start of its last successful refresh (Unix time).", viewL...)
	dLag         = desc("meshtop_view_refresh_lag_seconds", "Now minus the view's data-as-of time (plus replication lag on a replica), counted to this scrape, not to the cached reading.", viewL...)
	dDuration    = desc("meshtop_view_last_refresh_duration_seconds", "Duration of the view's last successful refresh.", viewL...)
	dMedian      = desc("meshtop_view_refresh_duration_median_seconds", "Median duration of the view's last 20 successful refreshes.", viewL...)
	dRunning     = desc("meshtop_view_refresh_running", "1 while a refresh of the view runs (as of the cached reading).", viewL...)
	dLastFailed  = desc("meshtop_view_last_refresh_failed", "1 when the view's latest refresh attempt (skipped ones aside) failed or was interrupted; 0 while one runs.", viewL...)
	dRefreshes   = desc("meshtop_view_refreshes_total", "Refresh attempts of the view that finished since this process started, by outcome (ok, failed, skipped, interrupted), whoever ran them (from the refresh log).", "view", "outcome")
	dWorkflows   = desc("meshtop_workflows", "Workflow versions with runs started in the window.", "window")
	dExported    = desc("meshtop_workflows_exported", "Workflow versions of the window exported here (at most --metrics-max-workflows, worst failure ratio first).", "window")
	dRuns        = desc("meshtop_workflow_runs", "Runs started in the window, by status at the view's last refresh (succeeded, failed, canceled, running: running or paused).", append(slices.Clone(wfL), "status")...)
	dSuccess     = desc("meshtop_workflow_success_ratio", "Succeeded runs over completed runs (succeeded, failed, canceled) started in the window.", wfL...)
	dFailure     = desc("meshtop_workflow_failure_ratio", "Failed runs over completed runs (succeeded, failed, canceled) started in the window.", wfL...)
	dRunP50      = desc("meshtop_workflow_run_duration_p50_seconds", "50th percentile (median) of the durations of the finished runs started in the window, at the view's last refresh (within 1% of percentile_cont).", wfL...)
	dRunP95      = desc("meshtop_workflow_run_duration_p95_seconds", "95th percentile of the durations of the finished runs started in the window, at the view's last refresh (within 1% of percentile_cont).", wfL...)
	dRunP99      = desc("meshtop_workflow_run_duration_p99_seconds", "99th percentile of the durations of the finished runs started in the window, at the view's last refresh (within 1% of percentile_cont).", wfL...)
	dRunAvg      = desc("meshtop_workflow_run_duration_average_seconds", "Average duration of the finished runs started in the window, at the view's last refresh.", wfL...)
	dRunningNow  = desc("meshtop_workflow_running_now", "Runs of the workflow version in status running now, whenever they started (paused ones aside; a live count from the runs table as of the cached reading, not waiting for a refresh).", wfL...)
	dLastFailure = desc("meshtop_workflow_last_failure_timestamp_seconds", "Start of the newest failed run in the window (Unix time).", wfL...)

	dLogRows        = desc("meshtop_capture_log_rows", "Rows waiting in the change-capture log (dirty_keys, dirty_runs) for the next refresh: the statistics' estimate, about 7 per MeshHook run.")
	dLogBytes       = desc("meshtop_capture_log_bytes", "Size on disk of the change-capture log's tables (its high-water mark: space a refresh consumed is reused, not returned).")
	dLogAge         = desc("meshtop_capture_log_age_seconds", "Seconds since a refresh last consumed the change-capture log (its oldest entry is about this old), as of the cached reading plus its age.")
	dLogMaxAge      = desc("meshtop_capture_log_max_age_seconds", "The log's bound (config capture_max_age): once the log is that old capture stops and the next refresh rebuilds.")
	dLogStopped     = desc("meshtop_capture_stopped", "1 while change capture is off because nothing consumed its log within its bound.")
	dLogRebuild     = desc("meshtop_capture_rebuild_pending", "1 when capture was off since the last refresh: the next refresh rebuilds the rollup from the raw tables.")
	dCaptureMode    = desc("meshtop_capture_mode", "1 for how MeshHook's changes reach the refresh now (wal: a logical replication slot; triggers; arming: triggers while a slot is set up), 0 for the others.", "mode")
	dWALRetained    = desc("meshtop_capture_wal_retained_bytes", "WAL meshtop's replication slot holds back that no refresh consumed yet (pg_current_wal_lsn() minus its confirmed position); absent without a slot.")
	dWALRestart     = desc("meshtop_capture_wal_restart_bytes", "WAL the server keeps on disk for meshtop's replication slot (pg_current_wal_lsn() minus its restart position); absent without a slot.")
	dWALMax         = desc("meshtop_capture_wal_max_bytes", "The slot's bound in bytes (config capture_wal_max_bytes): past it meshtop drops the slot and falls back to triggers.")
	dWALLag         = desc("meshtop_capture_wal_lag_seconds", "Seconds since a refresh last consumed meshtop's replication slot, as of the cached reading; absent without a slot.")
	dWALMaxAge      = desc("meshtop_capture_wal_max_age_seconds", "The slot's bound in time (config capture_wal_max_age).")
	dWALFallback    = desc("meshtop_capture_wal_fallback_timestamp_seconds", "When meshtop last dropped its slot and fell back to triggers (Unix time); absent if never.")
	stepL           = append(slices.Clone(wfL), "node_id")
	dSteps          = desc("meshtop_steps", "Steps (nodes of workflow versions) with executions in the window.", "window")
	dStepsExported  = desc("meshtop_steps_exported", "Steps of the window exported here (nodes of exported workflow versions, at most --metrics-max-steps, most final failures first).", "window")
	dStepExecutions = desc("meshtop_step_executions", "Step executions (a step_started through its final outcome, retries included) of runs started in the window, by outcome: succeeded, or failed (the final attempt failed).", append(slices.Clone(stepL), "outcome")...)
	dStepAttempts   = desc("meshtop_step_attempts", "Attempts (step_succeeded and step_failed events) of the step's executions in the window.", stepL...)
	dStepFailedAtt  = desc("meshtop_step_failed_attempts", "Attempts of the step's executions in the window that failed (step_failed), retried or not.", stepL...)
	dStepRetried    = desc("meshtop_step_retried_executions", "Executions of the step in the window that needed more than one attempt.", stepL...)
	dStepMaxAtt     = desc("meshtop_step_attempts_max", "Most attempts one execution of the step made in the window.", stepL...)
	dStepHTTP       = desc("meshtop_step_http_attempts", "Attempts of the step in the window by the HTTP status class of their http_attempted: 2xx, 4xx, 5xx, other; none: failed attempts without a response.", append(slices.Clone(stepL), "status_class")...)
	dStepP50        = desc("meshtop_step_latency_p50_seconds", "Median time from step_started to the final outcome of the step's executions in the window (within 1% of percentile_cont).", stepL...)
	dStepP95        = desc("meshtop_step_latency_p95_seconds", "95th percentile of the time from step_started to the final outcome of the step's executions in the window (within 1% of percentile_cont).", stepL...)
)

// Describe sends nothing: the exporter is an unchecked collector (its
// series depend on the database).
func (e *Exporter) Describe(chan<- *prometheus.Desc) {}

// Collect serves a scrape from the cached reading, reading the database
// first when the reading is older than the cache interval.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	now := time.Now()
	if e.readAt.IsZero() || now.Sub(e.readAt) >= e.opts.Cache {
		e.read(now)
	}
	snap, ok := e.snap, e.readErr == nil
	outcomes := make(map[[2]string]float64, len(e.outcomes))
	for k, v := range e.outcomes {
		outcomes[k] = v
	}
	reads, errs, readSecs := e.reads, e.errors, e.readSecs
	e.mu.Unlock()

	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	ch <- prometheus.MustNewConstMetric(dReads, prometheus.CounterValue, reads)
	ch <- prometheus.MustNewConstMetric(dErrors, prometheus.CounterValue, errs)
	gauge(dReadSecs, readSecs)
	gauge(dUp, b2f(ok))
	for _, v := range e.viewNames {
		for _, o := range Outcomes {
			ch <- prometheus.MustNewConstMetric(dRefreshes, prometheus.CounterValue, outcomes[[2]string{v, o}], v, o)
		}
	}
	if !ok || snap == nil {
		return
	}
	age := now.Sub(snap.at)
	gauge(dAge, age.Seconds())
	if l := snap.capture; l != nil {
		gauge(dLogRows, float64(l.Rows))
		gauge(dLogBytes, float64(l.Bytes))
		gauge(dLogAge, (l.Age + age).Seconds())
		gauge(dLogMaxAge, l.MaxAge.Seconds())
		gauge(dLogStopped, b2f(l.Stopped))
		gauge(dLogRebuild, b2f(l.RebuildPending))
	}
	if c := captureOf(snap.capture); c != nil {
		for _, m := range CaptureModes {
			gauge(dCaptureMode, b2f(c.Mode == m), m)
		}
		gauge(dWALMax, float64(c.MaxBytes))
		gauge(dWALMaxAge, c.MaxAge.Seconds())
		if c.SlotExists {
			gauge(dWALRetained, float64(c.RetainedBytes))
			gauge(dWALRestart, float64(c.RestartBytes))
			if c.ConsumedAt != nil {
				gauge(dWALLag, (c.Lag + age).Seconds())
			}
		}
		if c.FallbackAt != nil {
			gauge(dWALFallback, unix(*c.FallbackAt))
		}
	}
	e.collectViews(gauge, snap.overviews[0].Views, age)
	for i, ov := range snap.overviews {
		kept := e.collectWorkflows(gauge, ov)
		e.collectSteps(gauge, ov.Window, kept, snap.steps[i])
	}
}

func (e *Exporter) collectViews(gauge func(*prometheus.Desc, float64, ...string), views []store.ViewStatus, age time.Duration) {
	for _, v := range views {
		gauge(dPopulated, b2f(v.Populated), v.Name)
		gauge(dRows, float64(v.Rows), v.Name)
		gauge(dSize, float64(v.SizeBytes), v.Name)
		if v.LastRefreshAt != nil {
			gauge(dLastRefresh, unix(*v.LastRefreshAt), v.Name)
		}
		if v.Lag != nil {
			// The lag as read plus the time since: a cached reading must
			// not make the views look fresher than they are.
			gauge(dLag, (*v.Lag + age).Seconds(), v.Name)
		}
		if v.LastDurationMs != nil {
			gauge(dDuration, *v.LastDurationMs/1e3, v.Name)
		}
		if v.MedianDurationMs != nil {
			gauge(dMedian, *v.MedianDurationMs/1e3, v.Name)
		}
		gauge(dRunning, b2f(v.Running != nil), v.Name)
		gauge(dLastFailed, b2f(v.LastStatus == "failed" || v.LastStatus == "interrupted"), v.Name)
	}
}

func (e *Exporter) collectWorkflows(gauge func(*prometheus.Desc, float64, ...string), ov store.Overview) []store.WorkflowMetrics {
	w := string(ov.Window)
	kept := Top(ov.Workflows, e.opts.MaxWorkflows)
	gauge(dWorkflows, float64(len(ov.Workflows)), w)
	gauge(dExported, float64(len(kept)), w)
	for _, m := range kept {
		l := []string{w, m.WorkflowID, m.ProjectID, m.Slug.String(), strconv.Itoa(m.Version)} // the slug sanitized: alerts and consoles print labels
		with := func(extra string) []string { return append(slices.Clone(l), extra) }
		gauge(dRuns, float64(m.Succeeded), with("succeeded")...)
		gauge(dRuns, float64(m.Failed), with("failed")...)
		gauge(dRuns, float64(m.Canceled), with("canceled")...)
		gauge(dRuns, float64(m.Running), with("running")...)
		if m.SuccessRate != nil {
			gauge(dSuccess, *m.SuccessRate, l...)
		}
		if m.FailureRate != nil {
			gauge(dFailure, *m.FailureRate, l...)
		}
		for _, d := range []struct {
			d  *prometheus.Desc
			ms *float64
		}{{dRunP50, m.P50Ms}, {dRunP95, m.P95Ms}, {dRunP99, m.P99Ms}, {dRunAvg, m.AvgMs}} {
			if d.ms != nil {
				gauge(d.d, *d.ms/1e3, l...)
			}
		}
		gauge(dRunningNow, float64(ov.RunningNow[m.WorkflowID]), l...)
		if m.LastFailureAt != nil {
			gauge(dLastFailure, unix(*m.LastFailureAt), l...)
		}
	}
	return kept
}

// collectSteps exports the steps of the exported workflow versions, at most
// MaxSteps of them (TopSteps).
func (e *Exporter) collectSteps(gauge func(*prometheus.Desc, float64, ...string), win store.Window, workflows []store.WorkflowMetrics, steps []store.StepMetrics) {
	w := string(win)
	byID := make(map[string]store.WorkflowMetrics, len(workflows))
	for _, m := range workflows {
		byID[m.WorkflowID] = m
	}
	var mine []store.StepMetrics
	for _, st := range steps {
		if _, ok := byID[st.WorkflowID]; ok {
			mine = append(mine, st)
		}
	}
	kept := TopSteps(mine, e.opts.MaxSteps)
	gauge(dSteps, float64(len(steps)), w)
	gauge(dStepsExported, float64(len(kept)), w)
	for _, st := range kept {
		m := byID[st.WorkflowID]
		// slug and node id sanitized: alerts and consoles print labels
		l := []string{w, m.WorkflowID, m.ProjectID, m.Slug.String(), strconv.Itoa(m.Version), st.NodeID.String()}
		with := func(extra string) []string { return append(slices.Clone(l), extra) }
		gauge(dStepExecutions, float64(st.Executions-st.Failures), with("succeeded")...)
		gauge(dStepExecutions, float64(st.Failures), with("failed")...)
		gauge(dStepAttempts, float64(st.Attempts), l...)
		gauge(dStepFailedAtt, float64(st.FailedAttempts), l...)
		gauge(dStepRetried, float64(st.Retried), l...)
		gauge(dStepMaxAtt, float64(st.MaxAttempts), l...)
		for _, c := range []struct {
			class string
			n     int64
		}{{"2xx", st.HTTP2xx}, {"4xx", st.HTTP4xx}, {"5xx", st.HTTP5xx}, {"other", st.HTTPOther}, {"none", st.HTTPNone}} {
			gauge(dStepHTTP, float64(c.n), with(c.class)...)
		}
		if st.P50Ms != nil {
			gauge(dStepP50, *st.P50Ms/1e3, l...)
		}
		if st.P95Ms != nil {
			gauge(dStepP95, *st.P95Ms/1e3, l...)
		}
	}
}

// TopSteps returns at most n steps, the most final failures first, then the
// most failed attempts, the most executions, then workflow and node id.
func TopSteps(st []store.StepMetrics, n int) []store.StepMetrics {
	out := slices.Clone(st)
	slices.SortStableFunc(out, func(a, b store.StepMetrics) int {
		if c := cmp.Compare(b.Failures, a.Failures); c != 0 {
			return c
		}
		if c := cmp.Compare(b.FailedAttempts, a.FailedAttempts); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Executions, a.Executions); c != 0 {
			return c
		}
		if c := cmp.Compare(a.WorkflowID, b.WorkflowID); c != 0 {
			return c
		}
		return a.NodeID.Compare(b.NodeID)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// Top returns at most n workflow versions, worst failure ratio first (then
// most runs, then id): when the cap bites, the ones an SRE must see stay.
func Top(ws []store.WorkflowMetrics, n int) []store.WorkflowMetrics {
	out := slices.Clone(ws)
	slices.SortStableFunc(out, func(a, b store.WorkflowMetrics) int {
		fa, fb := -1.0, -1.0
		if a.FailureRate != nil {
			fa = *a.FailureRate
		}
		if b.FailureRate != nil {
			fb = *b.FailureRate
		}
		if c := cmp.Compare(fb, fa); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Runs, a.Runs); c != 0 {
			return c
		}
		return cmp.Compare(a.WorkflowID, b.WorkflowID)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// read reads the database once (e.mu held).
func (e *Exporter) read(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.Timeout)
	defer cancel()
	e.reads++
	start := time.Now()
	snap := &snapshot{at: now}
	err := e.readOutcomes(ctx)
	for _, w := range e.opts.Windows {
		if err != nil {
			break
		}
		var ov store.Overview
		ov, err = e.src.Overview(ctx, w)
		snap.overviews = append(snap.overviews, ov)
		if err != nil {
			break
		}
		var st []store.StepMetrics
		st, err = e.src.Steps(ctx, w)
		snap.steps = append(snap.steps, st)
	}
	if cs, ok := e.src.(captureSource); ok && err == nil {
		// Informative: a schema before WAL capture, or a role that cannot
		// read it, leaves the capture series out.
		if c, cerr := cs.CaptureLog(ctx); cerr == nil {
			snap.capture = &c
		}
	}
	e.readSecs = time.Since(start).Seconds()
	e.readAt, e.readErr = time.Now(), err
	if err != nil {
		e.errors++
		e.log.Warn("metrics: reading the database failed", "err", err)
		return
	}
	e.snap = snap
}

// Start takes note of the refresh attempts already in the log, so that
// meshtop_view_refreshes_total counts the attempts that finish after this
// call, including those that finish before the first scrape. Call it once,
// when the process starts. Where the log does not exist yet (meshtop not
// installed), every attempt it will hold is counted. On any other error the
// first successful reading takes note instead: the attempts that finished
// between Start and that reading are then not counted.
func (e *Exporter) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	err := e.readOutcomes(ctx)
	if errors.Is(err, store.ErrNotInstalled) {
		e.started = true
		return nil
	}
	return err
}

// readOutcomes counts refresh attempts that finished since the last
// reading. Before the first successful call (from Start) the attempts
// already finished are only taken note of, not counted: the counters count
// from the process's start, as counters do. A running attempt is counted
// when it finishes, even if it began before the start.
func (e *Exporter) readOutcomes(ctx context.Context) error {
	for {
		rows, err := e.src.RefreshOutcomes(ctx, e.afterID, 1000)
		if err != nil {
			return err
		}
		advance := true
		for _, r := range rows {
			if r.Status == "running" {
				advance = false // keep reading from here until it finishes
				continue
			}
			if !e.counted[r.ID] {
				e.counted[r.ID] = true
				if e.started {
					e.outcomes[[2]string{r.View, r.Status}]++
				}
			}
			if advance {
				e.afterID = r.ID
				delete(e.counted, r.ID)
			}
		}
		if len(rows) < 1000 || !advance {
			break
		}
	}
	e.started = true
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
