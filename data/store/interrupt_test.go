package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/store"
)

// A cancel that arrives while refresh_run is still preparing — before the
// REFRESH it guards, here held up reading metrics.config, which another
// session has locked — must still leave the log row 'failed' with the
// cancel, and the guard released. (004's refresh_run caught a cancel only
// around the REFRESH: this left the row 'running'.) And a refresh whose
// context ends between refresh_begin and refresh_run is recorded without
// running at all.
func TestCancelOutsideTheRefreshIsRecorded(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// interleave runs between refresh_begin and refresh_run; it gets the
		// refresh's cancel function and returns what to release afterwards.
		interleave func(t *testing.T, e env, cancel context.CancelFunc) (release func())
		wantErr    string
	}{
		{"while refresh_run prepares", func(t *testing.T, e env, cancel context.CancelFunc) func() {
			ctx := ctxT(t)
			tx, err := e.db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `lock table metrics.config in access exclusive mode`); err != nil {
				t.Fatal(err)
			}
			go func() {
				// Cancel once refresh_run waits for the config lock.
				waitFor(t, "refresh_run to wait for metrics.config", func() bool {
					var n int
					_ = e.db.Pool.QueryRow(ctx, `select count(*) from pg_locks l join pg_database d on d.oid = l.database
						where d.datname = current_database() and l.relation = 'metrics.config'::regclass and not l.granted`).Scan(&n)
					return n == 1
				})
				cancel()
			}()
			return func() { _ = tx.Rollback(context.Background()) }
		}, "canceling statement due to user request"},
		{"before refresh_run starts", func(t *testing.T, e env, cancel context.CancelFunc) func() {
			cancel()
			return func() {}
		}, "before the refresh started"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			ctx := ctxT(t)
			refreshAll(t, e.st)
			before := checksum(t, e, store.ViewMetrics)
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var release func()
			store.SetBeforeRun(e.st, func(context.Context) { release = c.interleave(t, e, cancel) })
			res, err := e.st.Refresh(rctx, store.ViewMetrics, false)
			if release != nil {
				release()
			}
			if !errors.Is(err, context.Canceled) || len(res) != 1 || res[0].Status != "failed" || !strings.Contains(res[0].Error.Raw(), c.wantErr) {
				t.Errorf("cancelled Refresh = %+v, %v; want one failed result (%q) and context.Canceled", res, err, c.wantErr)
			}
			log, err := e.st.RefreshLog(ctx, 1)
			if err != nil || len(log) != 1 || log[0].Status != "failed" || !strings.Contains(log[0].Error.Raw(), c.wantErr) {
				t.Errorf("log after cancel = %+v, %v; want the row failed with %q", log, err, c.wantErr)
			}
			if n := guardLocks(t, e); n != 0 {
				t.Errorf("%d guard locks held after the cancelled refresh", n)
			}
			if after := checksum(t, e, store.ViewMetrics); after != before {
				t.Errorf("the cancelled refresh changed the view")
			}
			store.SetBeforeRun(e.st, nil)
			if res, err := e.st.Refresh(ctx, store.ViewMetrics, false); err != nil || res[0].Status != "ok" {
				t.Errorf("refresh after cancel = %+v, %v", res, err)
			}
		})
	}
}

// refresh_begin takes the view's guard (a session advisory lock, which no
// rollback releases) before it inserts the 'running' row. An error after
// that — here its statement_timeout, while the INSERT waits for the log's id
// sequence, which another session holds locked — rolls the row back but
// leaves the session holding the guard. That connection must not go back
// to the pool: every later refresh of the view would be skipped, naming a
// holder that refreshes nothing, for as long as the pool keeps it.
func TestFailedRefreshBeginKeepsNoGuard(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t)
	refreshAll(t, e.st)
	// One connection, so the next refresh would get the same session.
	pool, err := newPool(ctx, e.db.DSN+"&pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool, nil, store.Options{Schema: schema, RefreshTimeout: time.Second})

	tx, err := e.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	// SHARE ROW EXCLUSIVE on the sequence until rollback: nextval waits.
	if _, err := tx.Exec(ctx, `alter sequence metrics.refresh_log_id_seq increment by 1`); err != nil {
		t.Fatal(err)
	}
	res, err := st.Refresh(ctx, store.ViewSteps, false)
	if err == nil || !strings.Contains(err.Error(), "statement timeout") {
		t.Fatalf("Refresh with the log's sequence locked = %+v, %v; want a statement timeout", res, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The session ends when its connection is closed, a moment after Refresh
	// returned; one kept in the pool holds the guard for good.
	waitFor(t, "the failed refresh_begin's guard to be released", func() bool { return guardLocks(t, e) == 0 })
	// The same pool (its one connection, if it was kept), the default
	// statement_timeout.
	res, err = store.New(pool, nil, store.Options{Schema: schema}).Refresh(ctx, store.ViewSteps, false)
	if err != nil || len(res) != 1 || res[0].Status != "ok" {
		t.Errorf("the next refresh = %+v, %v; want ok", res, err)
	}
	if n := guardLocks(t, e); n != 0 {
		t.Errorf("%d guard locks held after the next refresh", n)
	}
}
