package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/safetext"
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
// A ctx from WithActor names who asked: the log row's actor, and its
// application_name (cut to 63 bytes) instead of the pool's name.
//
// Cancelling ctx during a refresh sends the server a cancel request: the
// refresh is rolled back (the view keeps its contents), its log row says
// 'failed' and the guard is released.
func (s *Store) Refresh(ctx context.Context, view string, wait bool) ([]RefreshResult, error) {
	if s.err != nil {
		return nil, s.err
	}
	if err := s.needSession(); err != nil {
		return nil, err
	}
	views := ViewNames()
	if view != "" {
		if err := CheckView(view); err != nil {
			return nil, err
		}
		views = []string{view}
	}
	var out []RefreshResult
	for i, v := range views {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("refreshing %s: %w", v, err)
		}
		// WAL capture: every view's apply would read the slot, each
		// decoding again from its restart position; of all views, the
		// first one's apply reads it (as CALL refresh() does).
		res, err := s.refreshOne(ctx, v, wait, view != "" || i == 0)
		if res != nil {
			out = append(out, *res)
		}
		if err != nil {
			return out, err
		}
	}
	// Capture as capture_state says (after a fallback to the triggers, the
	// triggers back; the WAL slot's bound), as CALL refresh() does after
	// its views. Best effort: a schema before WAL capture, or a lock not
	// free now, waits for the next refresh.
	_, _ = s.ensureCapture(ctx)
	return out, nil
}

// refreshOne refreshes view; consume says whether its apply reads WAL
// capture's slot (meshtop.wal_consume, 025_wal.sql's capture_for_apply).
func (s *Store) refreshOne(ctx context.Context, view string, wait, consume bool) (res *RefreshResult, err error) {
	action := "refreshing " + view
	actor := actorFrom(ctx)
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
			for _, reset := range []string{"reset statement_timeout", "reset default_transaction_isolation", "reset meshtop.wal_consume"} {
				if _, rerr := conn.Exec(cctx, reset); rerr != nil {
					healthy = false
					break
				}
			}
		}
		if healthy && actor != "" {
			if _, rerr := conn.Exec(cctx, "reset application_name; reset meshtop.actor"); rerr != nil {
				healthy = false
			}
		}
		if !healthy {
			_ = conn.Conn().Close(cctx)
		}
		conn.Release()
	}()

	// refresh_run runs READ COMMITTED whatever the role's or the
	// database's default_transaction_isolation: after change capture was
	// off, the apply waits for the writers that may have skipped the log
	// and rebuilds from statements that see what they committed
	// (docs/REFRESH.md, "The capture log's bound").
	actx, cancel = s.timeout(ctx)
	_, err = conn.Exec(actx, "select set_config('statement_timeout', $1, false), set_config('default_transaction_isolation', 'read committed', false), set_config('meshtop.wal_consume', $2, false)",
		strconv.FormatInt(s.opts.RefreshTimeout.Milliseconds(), 10), map[bool]string{true: "on", false: "off"}[consume])
	cancel()
	if err != nil {
		return nil, wrap(err, action, RoleRefresher)
	}
	healthy = true
	if actor != "" {
		// Who asked (WithActor) names this connection until the deferred
		// reset: refresh_begin logs meshtop.actor and application_name.
		actx, cancel = s.timeout(ctx)
		_, err = conn.Exec(actx, "select set_config('application_name', $1, false), set_config('meshtop.actor', $2, false)",
			ActorName(actor), actor)
		cancel()
		if err != nil {
			return nil, wrap(err, action, RoleRefresher)
		}
	}

	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", action, err)
	}
	var id int64
	err = s.cancellable(ctx, conn, func(qctx context.Context) error {
		return conn.QueryRow(qctx, s.query("refresh_begin"), view, wait).Scan(&id)
	})
	if ctx.Err() != nil {
		// A cancel request may still be on its way to this session: never
		// hand the connection to another caller.
		healthy = false
	}
	if err != nil {
		// refresh_begin takes the guard, a session lock that no rollback
		// releases, before it inserts the row: whatever ended it after
		// that (statement_timeout, a cancel from elsewhere) left this
		// session holding the guard with no row. Drop it with the
		// connection, or every later refresh of the view is skipped.
		healthy = false
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
		r := &RefreshResult{View: view, LogID: id, Status: status, Error: safetext.New(errText)}
		r.HolderPID, r.HolderSince = parseHolder(errText)
		return r, nil
	}

	if s.beforeRun != nil {
		s.beforeRun(ctx)
	}
	r := &RefreshResult{}
	var logView string
	if cerr := ctx.Err(); cerr != nil {
		// Cancelled between refresh_begin and refresh_run: record it
		// rather than start a refresh nobody waits for.
		err = s.abort(ctx, conn, id, r, &logView, "canceling statement due to user request (before the refresh started)")
	} else {
		err = s.cancellable(ctx, conn, func(qctx context.Context) error {
			return conn.QueryRow(qctx, s.query("refresh_run"), id).
				Scan(&r.LogID, &logView, &r.Status, &r.Rows, &r.DurationMs, &r.Error, &r.Mode, &r.DirtyKeys)
		})
		if ctx.Err() != nil {
			healthy = false // as after refresh_begin
		}
		if err != nil {
			// refresh_run records every error it sees, but a cancel that
			// reaches the server after it returned and before its
			// transaction committed rolls that record back. The session
			// still holds the guard: record the outcome on it. A cancel
			// request may still be in flight: the connection is not reused.
			healthy = false
			if aerr := s.abort(ctx, conn, id, r, &logView, oneLine(err)); aerr != nil {
				err = errors.Join(err, aerr)
			} else {
				err = nil
			}
		}
	}
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

// abort records log row id of this connection's session as 'failed' with
// msg and releases its guard (refresh_abort), bounded by QueryTimeout and
// not cancelled by ctx. A cancel request still in flight from cancellable
// may end the first try: it is tried once more. On success it fills r and
// returns nil; a row that was no longer running comes back as it is.
func (s *Store) abort(ctx context.Context, conn *pgxpool.Conn, id int64, r *RefreshResult, view *string, msg string) error {
	var err error
	for try := 0; try < 2; try++ {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.QueryTimeout)
		err = conn.QueryRow(actx, s.query("refresh_abort"), id, msg).
			Scan(&r.LogID, view, &r.Status, &r.Rows, &r.DurationMs, &r.Error)
		cancel()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("recording the interrupted refresh (log row %d): %w", id, err)
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
// a cancel request for this connection, so the statement ends with
// query_canceled inside PostgreSQL (which the refresh functions record)
// instead of pgx dropping the connection under a running refresh.
//
// A cancel request that reaches the backend before the statement does (the
// query still in flight) is ignored by PostgreSQL, so it is sent again every
// cancelResend while fn has not returned. After cancelGiveUp without an
// answer, fn's context is cancelled too: pgx drops the connection, which
// ends the session and releases its guard lock (the log row then reads
// 'interrupted').
func (s *Store) cancellable(ctx context.Context, conn *pgxpool.Conn, fn func(context.Context) error) error {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.RefreshTimeout+time.Minute)
	defer cancel()
	done := make(chan struct{})
	watcher := make(chan struct{})
	go func() {
		defer close(watcher)
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		giveUp := time.NewTimer(cancelGiveUp)
		defer giveUp.Stop()
		resend := time.NewTicker(cancelResend)
		defer resend.Stop()
		for {
			cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.QueryTimeout)
			_ = conn.Conn().PgConn().CancelRequest(cctx)
			ccancel()
			select {
			case <-done:
				return
			case <-giveUp.C:
				cancel()
				return
			case <-resend.C:
			}
		}
	}()
	err := fn(qctx)
	close(done)
	<-watcher
	return err
}

// How often a cancel request is repeated while the statement has not
// returned, and when to stop waiting for it (see cancellable).
const (
	cancelResend = 500 * time.Millisecond
	cancelGiveUp = 30 * time.Second
)

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
	if err := s.needSession(); err != nil {
		return 0, err
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
	// Who cancels (WithActor) is meshtop.actor for this transaction only,
	// where refresh_cancel records it (a transaction pooler keeps it too).
	err := pgx.BeginFunc(ctx, s.primary, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "select set_config('meshtop.actor', $1, true)", actorFrom(ctx)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, s.query("refresh_cancel"), arg).Scan(&n)
	})
	if err != nil {
		return 0, wrap(err, "cancelling the refresh", RoleRefresher)
	}
	return n, nil
}

// oneLine is err's message for the refresh log: PostgreSQL's message text
// when it is a server error, else the whole chain.
func oneLine(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
	}
	return err.Error()
}

// IsCancel tells whether a refresh's error text is an operator's cancel
// (pg_cancel_backend: x in the dashboard, CancelRefresh, a canceled first
// refresh) rather than a failure. A statement_timeout is SQLSTATE 57014
// too, but "due to statement timeout": that one is a failure.
func IsCancel(errText string) bool {
	return strings.Contains(errText, "canceling statement due to user request")
}
