package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/safetext"
)

// Server describes the primary (the server refreshes, installs and
// schedules go to). Overview.Server describes the server the metrics were
// read from, which is the replica when one is configured.
func (s *Store) Server(ctx context.Context) (ServerInfo, error) {
	if s.err != nil {
		return ServerInfo{}, s.err
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	info := poolInfo(s.primary)
	var lag *float64
	err := s.primary.QueryRow(ctx, s.query("server")).Scan(&info.Version, &info.VersionNum, &info.InRecovery, &lag)
	if err != nil {
		return ServerInfo{}, wrap(err, "reading server information", RoleReader)
	}
	finishServerInfo(&info, lag)
	return info, nil
}

// poolInfo takes host, port, database and user from the pool's configuration
// (never the password).
func poolInfo(p *pgxpool.Pool) ServerInfo {
	cc := p.Config().ConnConfig
	return ServerInfo{Host: cc.Host, Port: cc.Port, Database: cc.Database, User: cc.User}
}

func finishServerInfo(info *ServerInfo, lagSeconds *float64) {
	// "15.18 (Debian 15.18-1.pgdg120+1)" → "15.18"
	if i := strings.IndexByte(info.Version, ' '); i > 0 {
		info.Version = info.Version[:i]
	}
	if lagSeconds != nil {
		d := seconds(*lagSeconds)
		info.ReplicationLag = &d
	}
}

func seconds(f float64) time.Duration {
	return time.Duration(math.Round(f * float64(time.Second)))
}

// Installed reports whether the views, log and status view exist in the
// schema (a catalog lookup; privileges are not checked).
func (s *Store) Installed(ctx context.Context) (bool, error) {
	if s.err != nil {
		return false, s.err
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var ok bool
	if err := s.reader().QueryRow(ctx, s.query("installed"), s.schema).Scan(&ok); err != nil {
		return false, wrap(err, "checking whether the metrics views are installed", RoleReader)
	}
	return ok, nil
}

// bucketFor is the width of the overview's sparkline buckets for a window.
func bucketFor(w Window) time.Duration {
	switch w {
	case Window7d:
		return 6 * time.Hour
	case Window30d:
		return 24 * time.Hour
	}
	return time.Hour
}

// DetailSpan is how much hourly history the detail's charts cover: the
// window, but at least 6 hours, since at an hour's resolution a 1h window
// would be a single point.
func DetailSpan(w Window) time.Duration {
	return max(w.Duration(), 6*time.Hour)
}

// sparkSpan is how much history the overview's sparklines cover: the window,
// but at least 24 hours so 1h sparklines have shape.
func sparkSpan(w Window) time.Duration {
	if d := w.Duration(); d > 24*time.Hour {
		return d
	}
	return 24 * time.Hour
}

// Overview reads everything the overview screen shows: server facts,
// every workflow's metrics for the window with the comparison with the
// previous window (Changes), the sparkline buckets (see store_hourly.sql),
// live running counts and the views' status. DataAsOf is the older last
// successful refresh of the two views read.
//
// A poll between two refreshes is one round trip (a pipelined batch) that
// reads only the small status rows and the live running counts: the
// workflow rows come back only when mv_workflow_metrics was refreshed since
// the cached read (the id and the rows come from one statement), and then
// their comparison with the previous window is read right after, anchored
// on their clock, so the Δ columns and the rows beside them are of one
// refresh. The sparkline points are read, in a second round trip, only
// when the batch shows that the hourly view was refreshed since they were
// (store_hourly.sql reads every workflow's hours: the footprint benchmark
// found it running on every poll).
//
// Before the first refresh (views not populated) it returns the server, the
// views' status and the running counts, no workflows, and no error: check
// Views[i].Populated.
func (s *Store) Overview(ctx context.Context, w Window) (Overview, error) {
	if s.err != nil {
		return Overview{}, s.err
	}
	if _, err := ParseWindow(string(w)); err != nil {
		return Overview{}, err
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	pool := s.reader()
	ov := Overview{Window: w, Server: poolInfo(pool), HourlyStep: bucketFor(w)}

	b := &pgx.Batch{}
	s.queueLockTimeout(b)
	var lag *float64
	b.Queue(s.query("server")).QueryRow(func(row pgx.Row) error {
		return row.Scan(&ov.Server.Version, &ov.Server.VersionNum, &ov.Server.InRecovery, &lag)
	})
	s.mu.Lock()
	cached, sparkOK := s.spark[w]
	cachedWF, ok := s.wf[w]
	s.mu.Unlock()
	if !ok {
		cachedWF.logID = -1 // never a refresh id: read
	}
	if !sparkOK {
		cached.logID = -1
	}
	var wfID int64
	var wfRead []WorkflowMetrics
	b.Queue(s.query("workflows"), string(w), cachedWF.logID).Query(func(rows pgx.Rows) error {
		var err error
		wfID, wfRead, err = scanOverviewWorkflows(rows)
		return err
	})
	s.queueRunningNow(b, &ov)
	s.queueViews(b, &ov.Views)
	err := pool.SendBatch(ctx, b).Close()
	if isNotPopulatedErr(err) {
		return s.overviewUnpopulated(ctx, pool, w)
	}
	if err != nil {
		return Overview{}, wrap(err, "reading the overview", RoleReader)
	}
	finishServerInfo(&ov.Server, lag)
	ov.DataAsOf = dataAsOf(ov.Views, ViewMetrics, ViewHourly)
	if wfRead != nil {
		// New rows: their comparison with the previous window, anchored on
		// their clock (every row carries it).
		var clock *time.Time
		if len(wfRead) > 0 {
			clock = &wfRead[0].LastUpdated
		}
		if cachedWF.changes, err = s.changes(ctx, pool, w, clock); err != nil {
			return Overview{}, err
		}
	}
	ov.Workflows, ov.Changes = s.workflowRows(w, cachedWF, wfID, wfRead)
	if ov.Hourly, err = s.sparklines(ctx, pool, w, cached, ov.Views); err != nil {
		return Overview{}, err
	}
	return ov, nil
}

// workflowRows picks the overview's workflow rows and their changes:
// freshly read ones (read non-nil; cached.changes holds their changes), or
// the cached ones when store_workflows.sql found the view unchanged since
// and returned nothing. Both are shared with the cache and every caller
// (see Overview): never modified, only replaced by a new read.
func (s *Store) workflowRows(w Window, cached workflowCache, readID int64, read []WorkflowMetrics) ([]WorkflowMetrics, map[string]Change) {
	if read == nil {
		return cached.rows, cached.changes
	}
	sortWorkflows(read)
	if readID == 0 {
		readID = -1 // no successful refresh logged: read again next time
	}
	s.mu.Lock()
	s.wf[w] = workflowCache{logID: readID, rows: read, changes: cached.changes}
	s.mu.Unlock()
	return read, cached.changes
}

// scanOverviewWorkflows reads store_workflows.sql: nil rows when the query
// returned none (view unchanged since the cached read), else the refresh
// id and the rows (possibly empty: a row with an empty workflow id marks a
// view read but without rows for the window).
func scanOverviewWorkflows(rows pgx.Rows) (int64, []WorkflowMetrics, error) {
	defer rows.Close()
	var id int64
	var ws []WorkflowMetrics
	for rows.Next() {
		var m WorkflowMetrics
		var win string
		if err := rows.Scan(append([]any{&id}, workflowDest(&m, &win)...)...); err != nil {
			return 0, nil, err
		}
		if ws == nil {
			ws = []WorkflowMetrics{}
		}
		if m.WorkflowID == "" {
			continue
		}
		m.Window = Window(win)
		ws = append(ws, m)
	}
	return id, ws, rows.Err()
}

// sparklines gives the overview's sparkline points: the cached ones while
// the hourly view has not been refreshed since they were read (the views'
// status just read says so), else a fresh read. The sparklines change only
// with the hourly data, and they sit beside rows that are as of the last
// refresh: the live current hour of the (plain) hourly view between two
// refreshes is not worth a query over every workflow's hours on each poll
// (a 10-cell sparkline of 24 hours or more would not show it either).
func (s *Store) sparklines(ctx context.Context, pool *pgxpool.Pool, w Window, cached sparkCache, views []ViewStatus) (map[string][]HourlyPoint, error) {
	var latest int64
	for _, v := range views {
		if v.Name == ViewHourly {
			latest = v.LastRefreshID
		}
	}
	if latest != 0 && latest == cached.logID {
		return cached.hourly, nil // unchanged since the cached read
	}
	var readID int64
	var read map[string][]HourlyPoint
	rows, err := pool.Query(ctx, s.query("hourly"), sparkSpan(w).Seconds(), bucketFor(w).Seconds(), cached.logID)
	if err == nil {
		readID, read, err = scanSpark(rows)
	}
	if isNotPopulatedErr(err) {
		return map[string][]HourlyPoint{}, nil
	}
	if err != nil {
		return nil, wrap(err, "reading the overview's sparklines", RoleReader)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case readID != 0:
		// Read now: cache it under the refresh it came from.
		s.spark[w] = sparkCache{logID: readID, hourly: read}
		return read, nil
	case latest != 0:
		// Nothing read: no runs in the span. Nothing to read until the
		// next refresh either.
		s.spark[w] = sparkCache{logID: latest, hourly: read}
		return read, nil
	default:
		// No refresh logged yet: read again next time.
		s.spark[w] = sparkCache{logID: -1, hourly: read}
		return read, nil
	}
}

// sortWorkflows orders rows by project, name, version and id (the server
// returns them unordered).
func sortWorkflows(ws []WorkflowMetrics) {
	sort.Slice(ws, func(i, j int) bool {
		a, b := ws[i], ws[j]
		if c := a.ProjectName.Compare(b.ProjectName); c != 0 {
			return c < 0
		}
		if c := a.Name.Compare(b.Name); c != 0 {
			return c < 0
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.WorkflowID < b.WorkflowID
	})
}

// scanSpark reads store_hourly.sql's rows: the refresh id they come from
// (0 when no row) and the points by workflow.
func scanSpark(rows pgx.Rows) (int64, map[string][]HourlyPoint, error) {
	defer rows.Close()
	var id int64
	m := map[string][]HourlyPoint{}
	for rows.Next() {
		var p HourlyPoint
		if err := rows.Scan(&id, &p.WorkflowID, &p.Hour, &p.Runs, &p.Succeeded, &p.Failed, &p.Canceled, &p.P50Ms, &p.P95Ms); err != nil {
			return 0, nil, err
		}
		m[p.WorkflowID] = append(m[p.WorkflowID], p)
	}
	return id, m, rows.Err()
}

// overviewUnpopulated is Overview's fallback before the first refresh.
func (s *Store) overviewUnpopulated(ctx context.Context, pool *pgxpool.Pool, w Window) (Overview, error) {
	ov := Overview{Window: w, Server: poolInfo(pool), HourlyStep: bucketFor(w), Hourly: map[string][]HourlyPoint{}}
	b := &pgx.Batch{}
	var lag *float64
	b.Queue(s.query("server")).QueryRow(func(row pgx.Row) error {
		return row.Scan(&ov.Server.Version, &ov.Server.VersionNum, &ov.Server.InRecovery, &lag)
	})
	s.queueRunningNow(b, &ov)
	s.queueViews(b, &ov.Views)
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return Overview{}, wrap(err, "reading the overview", RoleReader)
	}
	finishServerInfo(&ov.Server, lag)
	return ov, nil
}

func (s *Store) queueLockTimeout(b *pgx.Batch) {
	if s.opts.LockTimeout > 0 {
		b.Queue("select set_config('lock_timeout', $1, true)", s.lockTimeoutArg())
	}
}

func (s *Store) queueRunningNow(b *pgx.Batch, ov *Overview) {
	b.Queue(s.query("running_now")).Query(func(rows pgx.Rows) error {
		ov.RunningNow = map[string]int64{}
		defer rows.Close()
		for rows.Next() {
			var id string
			var n int64
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			ov.RunningNow[id] = n
		}
		return rows.Err()
	})
}

func (s *Store) queueViews(b *pgx.Batch, out *[]ViewStatus) {
	b.Queue(s.query("views")).Query(func(rows pgx.Rows) error {
		var err error
		*out, err = scanViews(rows)
		return err
	})
}

// dataAsOf is the oldest LastRefreshAt of the named views, nil when one of
// them was never refreshed.
func dataAsOf(views []ViewStatus, names ...string) *time.Time {
	var min *time.Time
	for _, n := range names {
		found := false
		for _, v := range views {
			if v.Name != n {
				continue
			}
			found = true
			if v.LastRefreshAt == nil {
				return nil
			}
			if min == nil || v.LastRefreshAt.Before(*min) {
				t := *v.LastRefreshAt
				min = &t
			}
		}
		if !found {
			return nil
		}
	}
	return min
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// Workflow reads one workflow's metrics row for the window, its hourly series
// over the window (oldest first, hours with runs only) and its steps ordered
// by failures, then p95 latency, in one round trip. An unknown id gives
// ErrNotFound.
func (s *Store) Workflow(ctx context.Context, workflowID string, w Window) (WorkflowDetail, error) {
	if s.err != nil {
		return WorkflowDetail{}, s.err
	}
	if _, err := ParseWindow(string(w)); err != nil {
		return WorkflowDetail{}, err
	}
	if !uuidRE.MatchString(workflowID) {
		return WorkflowDetail{}, fmt.Errorf("reading workflow %q: not a workflow id (a uuid)", workflowID)
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var d WorkflowDetail
	found := false
	b := &pgx.Batch{}
	s.queueLockTimeout(b)
	b.Queue(s.query("workflow"), string(w), workflowID).Query(func(rows pgx.Rows) error {
		ws, err := scanWorkflows(rows)
		if len(ws) > 0 {
			d.Metrics, found = ws[0], true
		}
		return err
	})
	b.Queue(s.query("workflow_hourly"), DetailSpan(w).Seconds(), workflowID).Query(func(rows pgx.Rows) error {
		var err error
		d.Hourly, err = scanHourly(rows)
		return err
	})
	b.Queue(s.query("steps"), string(w), workflowID).Query(func(rows pgx.Rows) error {
		var err error
		d.Steps, err = scanSteps(rows)
		return err
	})
	if err := s.reader().SendBatch(ctx, b).Close(); err != nil {
		return WorkflowDetail{}, wrap(err, "reading workflow "+workflowID, RoleReader)
	}
	if !found {
		return WorkflowDetail{}, fmt.Errorf("reading workflow %s: %w", workflowID, ErrNotFound)
	}
	return d, nil
}

// Steps reads every step row of the window (every workflow's nodes with
// executions in it), ordered by workflow, then failures and p95 latency.
// Before the first refresh of mv_step_metrics it returns none and no error.
func (s *Store) Steps(ctx context.Context, w Window) ([]StepMetrics, error) {
	if s.err != nil {
		return nil, s.err
	}
	if _, err := ParseWindow(string(w)); err != nil {
		return nil, err
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var st []StepMetrics
	rows, err := s.reader().Query(ctx, s.query("window_steps"), string(w))
	if err == nil {
		st, err = scanSteps(rows)
	}
	if isNotPopulatedErr(err) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap(err, "reading the steps", RoleReader)
	}
	return st, nil
}

// Views reads the status of every view (from the primary: the derived
// running/interrupted state needs the primary's locks).
func (s *Store) Views(ctx context.Context) ([]ViewStatus, error) {
	if s.err != nil {
		return nil, s.err
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.primary.Query(ctx, s.query("views"))
	if err != nil {
		return nil, wrap(err, "reading the views' status", RoleReader)
	}
	vs, err := scanViews(rows)
	if err != nil {
		return nil, wrap(err, "reading the views' status", RoleReader)
	}
	return vs, nil
}

// RefreshLog reads the newest limit refresh attempts (default 50), newest
// first; Status is the derived state (interrupted for a dead 'running' row).
func (s *Store) RefreshLog(ctx context.Context, limit int) ([]RefreshLogEntry, error) {
	if s.err != nil {
		return nil, s.err
	}
	if limit <= 0 {
		limit = 50
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.primary.Query(ctx, s.query("refresh_log"), limit)
	if err != nil {
		return nil, wrap(err, "reading the refresh log", RoleReader)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RefreshLogEntry, error) {
		var e RefreshLogEntry
		err := r.Scan(&e.ID, &e.View, &e.StartedAt, &e.FinishedAt, &e.DurationMs, &e.Rows, &e.Status,
			&e.Error, &e.PID, &e.TriggeredBy, &e.ApplicationName, &e.Concurrently, &e.DataAsOf,
			&e.Mode, &e.DirtyKeys, &e.Actor, &e.CanceledBy)
		return e, err
	})
	if err != nil {
		return nil, wrap(err, "reading the refresh log", RoleReader)
	}
	return out, nil
}

// Running lists refreshes in progress (on the primary) with what they wait
// for. Without pg_read_all_stats, other roles' queries read
// "<insufficient privilege>" and their age is 0.
func (s *Store) Running(ctx context.Context) ([]RunningRefresh, error) {
	if s.err != nil {
		return nil, s.err
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.primary.Query(ctx, s.query("running"))
	if err != nil {
		return nil, wrap(err, "reading running refreshes", RoleReader)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunningRefresh, error) {
		var rr RunningRefresh
		var blockers string
		if err := r.Scan(&rr.LogID, &rr.View, &rr.PID, &rr.StartedAt, &rr.WaitingForLock, &blockers); err != nil {
			return rr, err
		}
		var bs []struct {
			PID   int32    `json:"pid"`
			Query string   `json:"query"`
			AgeS  *float64 `json:"age_s"`
		}
		if err := json.Unmarshal([]byte(blockers), &bs); err != nil {
			return rr, fmt.Errorf("decoding blockers: %w", err)
		}
		for _, b := range bs {
			bl := Blocker{PID: b.PID, Query: safetext.New(b.Query)}
			if b.AgeS != nil {
				bl.Age = seconds(*b.AgeS)
			}
			rr.BlockedBy = append(rr.BlockedBy, bl)
		}
		return rr, nil
	})
	if err != nil {
		return nil, wrap(err, "reading running refreshes", RoleReader)
	}
	return out, nil
}

func scanWorkflows(rows pgx.Rows) ([]WorkflowMetrics, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (WorkflowMetrics, error) {
		var m WorkflowMetrics
		var win string
		err := r.Scan(workflowDest(&m, &win)...)
		m.Window = Window(win)
		return m, err
	})
}

// workflowDest lists the scan targets of a workflow row (store_workflow.sql,
// and store_workflows.sql after its refresh id); *win receives the window.
func workflowDest(m *WorkflowMetrics, win *string) []any {
	return []any{&m.WorkflowID, &m.ProjectID, &m.ProjectName, &m.Name, &m.Slug,
		&m.Version, &m.Status, win,
		&m.Runs, &m.Succeeded, &m.Failed, &m.Canceled, &m.Running,
		&m.SuccessRate, &m.FailureRate,
		&m.AvgMs, &m.P50Ms, &m.P95Ms, &m.P99Ms, &m.MinMs, &m.MaxMs,
		&m.ResourceSeconds, &m.LastFailureAt, &m.LastUpdated}
}

func scanHourly(rows pgx.Rows) ([]HourlyPoint, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (HourlyPoint, error) {
		var p HourlyPoint
		err := r.Scan(&p.WorkflowID, &p.Hour, &p.Runs, &p.Succeeded, &p.Failed, &p.Canceled, &p.P50Ms, &p.P95Ms)
		return p, err
	})
}

func scanSteps(rows pgx.Rows) ([]StepMetrics, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (StepMetrics, error) {
		var st StepMetrics
		var win string
		err := r.Scan(&st.WorkflowID, &st.NodeID, &st.NodeType, &win, &st.Executions, &st.Failures,
			&st.FailureRate, &st.P50Ms, &st.P95Ms, &st.LastFailureAt,
			&st.Attempts, &st.AvgAttempts, &st.MaxAttempts, &st.Retried, &st.RetryRate, &st.FailedAttempts,
			&st.AttemptFailureRate, &st.HTTP2xx, &st.HTTP4xx, &st.HTTP5xx, &st.HTTPOther, &st.HTTPNone)
		st.Window = Window(win)
		return st, err
	})
}

func scanViews(rows pgx.Rows) ([]ViewStatus, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ViewStatus, error) {
		var v ViewStatus
		var rowsN, size *int64
		var lag *float64
		var runID *int64
		var runPID *int32
		var runSince *time.Time
		var okID *int64
		err := r.Scan(&v.Name, &v.Populated, &rowsN, &size, &v.LastRefreshAt, &lag,
			&v.LastDurationMs, &v.MedianDurationMs, &v.LastStatus, &v.LastError,
			&runID, &runPID, &runSince, &v.RecentDurationsMs, &okID)
		if err != nil {
			return v, err
		}
		if rowsN != nil {
			v.Rows = *rowsN
		}
		if okID != nil {
			v.LastRefreshID = *okID
		}
		if size != nil {
			v.SizeBytes = *size
		}
		if lag != nil {
			d := seconds(*lag)
			v.Lag = &d
		}
		if runID != nil {
			rr := &RunningRefresh{LogID: *runID, View: v.Name}
			if runPID != nil {
				rr.PID = *runPID
			}
			if runSince != nil {
				rr.StartedAt = *runSince
			}
			v.Running = rr
		}
		return v, nil
	})
}

// Changes compares every workflow's window with the previous window of the
// same length (see store_changes.sql): what got worse, over the whole
// hours before the hour of mv_workflow_metrics' clock (the rows' "data as
// of"). The overview reads it with its rows (Overview.Changes). For a
// window whose previous one the hourly view does not hold (30d), and
// before the first refresh, it returns an empty map.
func (s *Store) Changes(ctx context.Context, w Window) (map[string]Change, error) {
	if s.err != nil {
		return nil, s.err
	}
	if _, err := ParseWindow(string(w)); err != nil {
		return nil, err
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.changes(ctx, s.reader(), w, nil)
}

// changes runs store_changes.sql anchored at clock (nil: the clock of
// mv_workflow_metrics).
func (s *Store) changes(ctx context.Context, pool *pgxpool.Pool, w Window, clock *time.Time) (map[string]Change, error) {
	out := map[string]Change{}
	if !w.HasPrevious() {
		return out, nil
	}
	rows, err := pool.Query(ctx, s.query("changes"), w.Duration().Seconds(), clock)
	if err != nil {
		if isNotPopulatedErr(err) {
			return out, nil
		}
		return nil, wrap(err, "reading the previous window", RoleReader)
	}
	rate := func(failed, done *int64) *float64 {
		if failed == nil || done == nil || *done == 0 {
			return nil
		}
		r := float64(*failed) / float64(*done)
		return &r
	}
	var c Change
	var f, d, pf, pd *int64
	_, err = pgx.ForEachRow(rows, []any{&c.WorkflowID, &f, &d, &c.P95HourMs, &pf, &pd, &c.PrevP95HourMs}, func() error {
		c.FailureRate, c.PrevFailureRate = rate(f, d), rate(pf, pd)
		if d != nil {
			c.Completed = *d
		}
		if pd != nil {
			c.PrevCompleted = *pd
		}
		out[c.WorkflowID] = c
		c = Change{}
		return nil
	})
	if isNotPopulatedErr(err) {
		return map[string]Change{}, nil // before the first refresh: nothing to compare
	}
	if err != nil {
		return nil, wrap(err, "reading the previous window", RoleReader)
	}
	return out, nil
}
