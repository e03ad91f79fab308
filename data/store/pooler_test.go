package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/conn"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

// TestTransactionPoolerStore: through PgBouncer in transaction mode, every
// read works from new client connections again and again (where pgx's
// named statements would meet a pooled session that already has them), and
// what needs a session is refused with ErrNeedsSession before anything
// reaches the server.
func TestTransactionPoolerStore(t *testing.T) {
	e := setup(t)
	refreshAll(t, e.st)
	ctx := ctxT(t)
	dsn := pgtest.PgBouncer(t, "transaction").DSN(e.db.Name)
	var logBefore []store.RefreshLogEntry
	for i := 0; i < 6; i++ {
		pool, pooling, err := conn.OpenDetect(ctx, conn.Options{DSN: dsn})
		if err != nil {
			t.Fatalf("opening through the pooler: %v", err)
		}
		if pooling != conn.TransactionPooler {
			pool.Close()
			t.Fatalf("pooling %v, want %v", pooling, conn.TransactionPooler)
		}
		st := store.New(pool, nil, store.Options{Schema: schema, TransactionPooler: true})
		err = func() error {
			defer pool.Close()
			for j := 0; j < 5; j++ {
				ov, err := st.Overview(ctx, store.Windows[j%len(store.Windows)])
				if err != nil {
					return err
				}
				if len(ov.Workflows) == 0 {
					return errors.New("the overview has no workflows")
				}
				if _, err := st.Workflow(ctx, ov.Workflows[0].WorkflowID, ov.Window); err != nil {
					return err
				}
			}
			if _, err := st.Views(ctx); err != nil {
				return err
			}
			if _, err := st.Running(ctx); err != nil {
				return err
			}
			if _, err := st.Schedule(ctx); err != nil && !errors.Is(err, store.ErrCronUnavailable) {
				return err
			}
			logBefore, err = st.RefreshLog(ctx, 50)
			return err
		}()
		if err != nil {
			t.Fatalf("client %d: a read through the pooler failed: %v", i, err)
		}
	}

	pool, _, err := conn.OpenDetect(ctx, conn.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// The reads' lock_timeout was local to each read's transaction: the
	// pooled server sessions they ran on still have the default.
	for i := 0; i < 4; i++ {
		var lt string
		if err := pool.QueryRow(ctx, "show lock_timeout").Scan(&lt); err != nil {
			t.Fatal(err)
		}
		if lt != "0" {
			t.Fatalf("a pooled server session has lock_timeout %s: a read's setting leaked", lt)
		}
	}
	st := store.New(pool, nil, store.Options{Schema: schema, TransactionPooler: true})
	if !st.ThroughTransactionPooler() {
		t.Fatal("ThroughTransactionPooler is false")
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	refused := map[string]error{}
	_, refused["Refresh"] = st.Refresh(ctx, "", true)
	_, refused["CancelRefresh"] = st.CancelRefresh(ctx, "")
	_, refused["SetSchedule"] = st.SetSchedule(ctx, time.Minute)
	refused["Unschedule"] = st.Unschedule(ctx)
	refused["Listen"] = st.Listen(lctx, make(chan store.RefreshEvent, 1))
	for name, err := range refused {
		if !errors.Is(err, store.ErrNeedsSession) {
			t.Errorf("%s through a transaction pooler: %v, want ErrNeedsSession", name, err)
		}
	}
	logAfter, err := e.st.RefreshLog(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(logAfter) != len(logBefore) {
		t.Fatalf("the refresh log went from %d to %d entries through refused calls", len(logBefore), len(logAfter))
	}
	if locks := e.db.AdvisoryLocks(t); locks != 0 {
		t.Fatalf("%d advisory lock(s) on the server", locks)
	}
}

// TestPreparedStatementErrorsExplained: a pool left in pgx's default
// named-statement mode behind a transaction pooler (what an undetected
// pooler would give) fails as the issue describes; those errors reach
// callers as ErrPreparedStatements, without pgx's statement names or the
// SQLSTATE.
func TestPreparedStatementErrorsExplained(t *testing.T) {
	e := setup(t)
	refreshAll(t, e.st)
	ctx := ctxT(t)
	dsn := pgtest.PgBouncer(t, "transaction").DSN(e.db.Name)
	failures := 0
	for i := 0; i < 20 && failures < 3; i++ {
		pool, err := newPool(ctx, dsn) // pgx's default: named prepared statements
		if err != nil {
			t.Fatal(err)
		}
		st := store.New(pool, nil, store.Options{Schema: schema})
		for _, read := range []func() error{
			func() error { _, err := st.Overview(ctx, store.Window24h); return err },
			func() error { _, err := st.Views(ctx); return err },
			func() error { _, err := st.RefreshLog(ctx, 10); return err },
		} {
			err := read()
			if err == nil {
				continue
			}
			failures++
			if !errors.Is(err, store.ErrPreparedStatements) {
				t.Errorf("client %d: %v, want ErrPreparedStatements", i, err)
			}
			for _, leak := range []string{"stmtcache_", "42P05", "26000"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("client %d: the error shows pgx's internals (%s): %v", i, leak, err)
				}
			}
		}
		pool.Close()
	}
	if failures == 0 {
		t.Fatal("20 clients in named-statement mode never met another client's statements through the pooler: the test no longer shows the failure it guards against")
	}
}

// BenchmarkOverviewExecMode is the cost of reading the overview without
// named prepared statements, as meshtop does through a transaction pooler
// (pgx's describe-cache mode: every statement parsed and planned in the
// round trip that runs it), against the named-statement cache it keeps on a
// direct connection. Both directly against the server, so only the mode
// differs:
//
//	go test -run '^$' -bench OverviewExecMode ./data/store/
func BenchmarkOverviewExecMode(b *testing.B) {
	e := setup(b)
	refreshAll(b, e.st)
	for _, mode := range []string{"cache_statement", "cache_describe"} {
		b.Run(mode, func(b *testing.B) {
			ctx := ctxT(b)
			pool, err := newPool(ctx, e.db.DSN+"&default_query_exec_mode="+mode+"&pool_max_conns=1")
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Close()
			st := store.New(pool, nil, store.Options{Schema: schema})
			if _, err := st.Overview(ctx, store.Window24h); err != nil { // warm: describe or prepare once
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Alternate windows so the workflow-row cache does not
				// skip the read.
				if _, err := st.Overview(ctx, store.Windows[i%2]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
