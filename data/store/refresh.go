package store

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Refresh refreshes one view, or all of them in dependency order when view
// is "", on the primary. For each view it takes one connection and runs
// refresh_begin (the guard: with wait=false a view another session is
// refreshing comes back 'skipped' with the holder's pid and start time), then
// refresh_run under statement_timeout = RefreshTimeout.
//
// The error is nil when every view was attempted; a failed or skipped view is
// reported in its RefreshResult (Status, Error). A non-nil error means the
// refresh could not be attempted or was interrupted (cancelled context, lost
// connection); the results so far are returned with it.
//
// Cancelling ctx during a refresh sends the server a cancel request: the
// refresh is rolled back (the view keeps its contents), its log row says
// 'failed' and the guard is released.
func (s *Store) Refresh(ctx context.Context, view string, wait bool) ([]RefreshResult, error) {
	if s.err != nil {
		return nil, s.err
	}
	views := ViewNames()
	if view != "" {
		if err := CheckView(view); err != nil {
			return nil, err
		}
		views = []string{view}
	}
	var out []RefreshResult
	for _, v := range views {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("refreshing %s: %w", v, err)
		}
		res, err := s.refreshOne(ctx, v, wait)
		if res != nil {
			out = append(out, *res)
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func (s *Store) refreshOne(ctx context.Context, view string, wait bool) (res *RefreshResult, err error) {
	action := "refreshing " + view
	actx, cancel := s.timeout(ctx)
	conn, err := s.primary.Acquire(actx)
	cancel()
	if err != nil {
		return nil, wrap(err, action, RoleRefresher)
	}
	healthy := false
	defer func() {
		// Clean up even when ctx is cancelled: restore the session's
		// statement_timeout, or drop the connection if that fails.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.QueryTimeout)
		defer cancel()
		if healthy {
			if _, rerr := conn.Exec(cctx, "reset statement_timeout"); rerr != nil {
				healthy = false
			}
		}
		if !healthy {
			_ = conn.Conn().Close(cctx)
		}
		conn.Release()
	}()

	actx, cancel = s.timeout(ctx)
	_, err = conn.Exec(actx, "select set_config('statement_timeout', $1, false)",
		strconv.FormatInt(s.opts.RefreshTimeout.Milliseconds(), 10))
	cancel()
	if err != nil {
		return nil, wrap(err, action, RoleRefresher)
	}
	healthy = true

	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", action, err)
	}
	var id int64
	err = s.cancellable(ctx, conn, func(qctx context.Context) error {
		return conn.QueryRow(qctx, s.query("refresh_begin"), view, wait).Scan(&id)
	})
	if err != nil {
		return nil, s.refreshErr(ctx, err, action)
	}

	var status, errText string
	var startedAt time.Time
	var pid int32
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.QueryTimeout)
	err = conn.QueryRow(rctx, s.query("refresh_row"), id).Scan(&status, &errText, &startedAt, &pid)
	cancel()
	if err != nil {
		// The guard may be held by this session: drop it with the connection.
		healthy = false
		return nil, wrap(err, action+": reading log row "+strconv.FormatInt(id, 10), RoleRefresher)
	}
	if status != "running" {
		r := &RefreshResult{View: view, LogID: id, Status: status, Error: errText}
		r.HolderPID, r.HolderSince = parseHolder(errText)
		return r, nil
	}

	// Run it even if ctx was cancelled meanwhile: the cancel request then
	// ends it as 'failed' and releases the guard, rather than leaving a
	// 'running' row behind.
	r := &RefreshResult{}
	var logView string
	err = s.cancellable(ctx, conn, func(qctx context.Context) error {
		return conn.QueryRow(qctx, s.query("refresh_run"), id).
			Scan(&r.LogID, &logView, &r.Status, &r.Rows, &r.DurationMs, &r.Error)
	})
	if err != nil {
		healthy = false
		return nil, s.refreshErr(ctx, err, action)
	}
	r.View = view
	if cerr := ctx.Err(); cerr != nil && r.Status != "ok" {
		return r, fmt.Errorf("%s: %w", action, cerr)
	}
	return r, nil
}

func (s *Store) refreshErr(ctx context.Context, err error, action string) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w (%v)", action, cerr, err)
	}
	return wrap(err, action, RoleRefresher)
}

// cancellable runs fn with a context that ctx's cancellation does not
// reach, bounded by RefreshTimeout plus a minute (the server's
// statement_timeout fires first). When ctx is cancelled it sends the server
// one cancel request for this connection, so the statement ends with
// query_canceled inside PostgreSQL (which the refresh functions record)
// instead of pgx dropping the connection under a running refresh.
func (s *Store) cancellable(ctx context.Context, conn *pgxpool.Conn, fn func(context.Context) error) error {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.RefreshTimeout+time.Minute)
	defer cancel()
	done := make(chan struct{})
	watcher := make(chan struct{})
	started := time.Now()
	go func() {
		defer close(watcher)
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		// A cancel that reaches an idle backend is ignored: give the
		// statement a moment to arrive at the server first.
		if d := 50*time.Millisecond - time.Since(started); d > 0 {
			select {
			case <-done:
				return
			case <-time.After(d):
			}
		}
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.QueryTimeout)
		defer ccancel()
		_ = conn.Conn().PgConn().CancelRequest(cctx)
	}()
	err := fn(qctx)
	close(done)
	<-watcher
	return err
}

var holderRE = regexp.MustCompile(`pid (\d+) since ([^)]+)\)`)

// parseHolder reads "already refreshing (pid N since T)".
func parseHolder(msg string) (int32, *time.Time) {
	m := holderRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, nil
	}
	pid, _ := strconv.ParseInt(m[1], 10, 32)
	for _, layout := range []string{
		"2006-01-02 15:04:05.999999-07",
		"2006-01-02 15:04:05.999999-07:00",
		"2006-01-02 15:04:05.999999-07:00:00",
		time.RFC3339Nano,
	} {
		if t, err := time.Parse(layout, m[2]); err == nil {
			return int32(pid), &t
		}
	}
	return int32(pid), nil
}

// CancelRefresh asks the server to cancel the refresh of view ("" = every
// view) wherever it runs; it returns how many backends were signalled. The
// cancelled refresh records 'failed' and releases its guard.
func (s *Store) CancelRefresh(ctx context.Context, view string) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	var arg *string
	if view != "" {
		if err := CheckView(view); err != nil {
			return 0, err
		}
		arg = &view
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var n int
	if err := s.primary.QueryRow(ctx, s.query("refresh_cancel"), arg).Scan(&n); err != nil {
		return 0, wrap(err, "cancelling the refresh", RoleRefresher)
	}
	return n, nil
}
