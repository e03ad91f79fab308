package install_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
)

// captureMode reads capture_state's desired and active modes.
func captureMode(t *testing.T, ctx context.Context, pool *pgxpool.Pool) (desired, mode string) {
	t.Helper()
	if err := pool.QueryRow(ctx, `SELECT desired, mode FROM metrics.capture_state`).Scan(&desired, &mode); err != nil {
		t.Fatal(err)
	}
	return desired, mode
}

// switchCapture runs install with --capture mode on pool.
func switchCapture(t *testing.T, ctx context.Context, pool *pgxpool.Pool, mode string) install.CapturePlan {
	t.Helper()
	in := install.New(pool, "metrics")
	in.SetCapture(mode)
	if _, err := in.Apply(ctx, func(e install.StepEvent) { t.Logf("step %s done=%v err=%v", e.Name, e.Done, e.Err) }); err != nil {
		rows, _ := pool.Query(ctx, "select slot_name || ' ' || database || ' ' || coalesce(wal_status,'') from pg_replication_slots")
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			t.Log(s)
		}
		rows.Close()
		t.Fatalf("install --capture %s: %v", mode, err)
	}
	return in.LastCapture()
}

// TestWALSmoke: install, switch to WAL capture, each kind of change, refresh.
func TestWALSmoke(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAndCompare(t, ctx, db.Pool)
	p := switchCapture(t, ctx, db.Pool, "wal")
	if _, m := captureMode(t, ctx, db.Pool); m != "wal" || p.Target != "wal" {
		t.Fatalf("after install --capture wal: mode %q, plan %+v", m, p)
	}
	addRunsPool(t, ctx, db.Pool)
	m := refreshAndCompare(t, ctx, db.Pool)
	if !strings.HasPrefix(m, "incremental ") || m == "incremental 0" {
		t.Errorf("refresh after WAL-captured runs: %q", m)
	}
	var note string
	if err := db.Pool.QueryRow(ctx, `SELECT coalesce(capture, '') FROM metrics.refresh_log WHERE view_name = 'mv_workflow_metrics_hourly' ORDER BY id DESC LIMIT 1`).Scan(&note); err != nil {
		t.Fatal(err)
	}
	t.Logf("capture note: %s", note)
}
