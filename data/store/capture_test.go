package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/store"
)

// TestCaptureLog: the change-capture log's state as the store reads it,
// through a session whose TimeZone and default isolation are not the
// refresh's: rows logged by writes, capture renewed for capture_max_age by
// a refresh, stopped when its time has passed, and resumed (the rebuild
// settled, not left pending) by the next refresh.
func TestCaptureLog(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	e := setup(t)
	cfg, err := pgxpool.ParseConfig(e.db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["TimeZone"] = "Asia/Kolkata"
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "repeatable read"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st := store.New(pool, nil, store.Options{Schema: schema})
	refreshAll(t, st)

	c, err := st.CaptureLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Stopped || c.RebuildPending || c.MaxAge != 24*time.Hour || c.Left < 23*time.Hour || c.Age > time.Hour || c.Bytes < 0 {
		t.Errorf("after a refresh: %+v", c)
	}

	// Rows logged by a write show (the statistics are flushed when the
	// writing session goes idle; forced here, and waited for).
	w := e.db.Pool
	if _, err := w.Exec(ctx, `INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at)
SELECT project_id, id, 'running', $1::timestamptz - interval '5 minutes' FROM public.workflow_definitions`, anchor); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
		t.Fatal(err)
	}
	for c.Rows == 0 {
		if c, err = st.CaptureLog(ctx); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatalf("the log's rows never showed: %+v", c)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Stopped: nothing consumed the log in time.
	if _, err := w.Exec(ctx, `SELECT setval('metrics.capture_until', 1)`); err != nil {
		t.Fatal(err)
	}
	if c, err = st.CaptureLog(ctx); err != nil || !c.Stopped || !c.RebuildPending || c.Left >= 0 {
		t.Errorf("after capture stopped: %+v, %v", c, err)
	}
	res := refreshAll(t, st)
	if !strings.HasPrefix(res[0].Mode, "full") {
		t.Errorf("refresh after capture stopped: mode %q; want full", res[0].Mode)
	}
	if c, err = st.CaptureLog(ctx); err != nil || c.Stopped || c.RebuildPending {
		t.Errorf("after the rebuild (READ COMMITTED although the session's default is REPEATABLE READ): %+v, %v", c, err)
	}
	res = refreshAll(t, st)
	for _, r := range res {
		if r.Mode != "incremental" {
			t.Errorf("refresh of %s after the rebuild: mode %q; want incremental", r.View, r.Mode)
		}
	}
}

// TestCaptureWAL: in WAL capture the store reports the mode, the slot, its
// retained WAL against its bound and when a refresh last consumed it — to a
// meshtop_reader login too (the console's store type) — and a refresh
// through the store consumes the slot.
func TestCaptureWAL(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	e := setup(t)
	in := install.New(e.db.Pool, schema)
	in.SetCapture(install.CaptureWAL)
	if _, err := in.Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	refreshAll(t, e.st)
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at)
SELECT project_id, id, 'running', $1::timestamptz - interval '5 minutes' FROM public.workflow_definitions`, anchor); err != nil {
		t.Fatal(err)
	}
	reader, err := pgxpool.New(ctx, e.db.LoginRole(t, "store_capture_reader", "meshtop_reader"))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	c, err := store.New(reader, nil, store.Options{Schema: schema}).CaptureLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Capture
	if w == nil || w.Mode != "wal" || w.Desired != "wal" || !w.SlotExists || w.Slot == "" || w.RetainedBytes <= 0 ||
		w.MaxBytes != 1<<30 || w.MaxAge != 3*time.Hour || w.ConsumedAt == nil || w.ReplicaIdentity != "default" || !w.Unavailable.IsEmpty() {
		t.Fatalf("WAL capture as a reader sees it: %+v", w)
	}
	before := w.Transactions
	for _, r := range refreshAll(t, e.st) {
		if r.Status != "ok" {
			t.Fatalf("refresh: %+v", r)
		}
	}
	if c, err = e.st.CaptureLog(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Capture.Transactions <= before {
		t.Errorf("the refresh consumed nothing from the slot: %+v", c.Capture)
	}
	// The slot is read once per refresh of every view: by the first view's
	// apply, not again by the others'.
	rows, err := e.db.Pool.Query(ctx, `SELECT view_name, coalesce(capture, '') FROM `+schema+`.refresh_log ORDER BY id DESC LIMIT 3`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	notes := map[string]string{}
	for rows.Next() {
		var v, note string
		if err := rows.Scan(&v, &note); err != nil {
			t.Fatal(err)
		}
		notes[v] = note
	}
	if n := notes[store.ViewHourly]; !strings.HasPrefix(n, "wal: ") || !strings.Contains(n, " transactions, ") {
		t.Errorf("%s's capture note: %q; want the slot consumed", store.ViewHourly, n)
	}
	for _, v := range []string{store.ViewMetrics, store.ViewSteps} {
		if notes[v] != "wal: consumed by this refresh's first view" {
			t.Errorf("%s's capture note: %q; want the slot read once per refresh", v, notes[v])
		}
	}
}
