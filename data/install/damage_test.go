package install_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
)

// writerPool connects as a role like the one MeshHook's workers use on
// Supabase (service_role): it owns nothing, bypasses row-level security,
// and may read and write the runs and events through grants, nothing else.
func writerPool(t *testing.T, ctx context.Context, db *pgtest.DB) (*pgxpool.Pool, string) {
	t.Helper()
	name, password := loginRole(t, ctx, db)
	for _, sql := range []string{
		"ALTER ROLE " + name + " BYPASSRLS",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON public.workflow_runs, public.workflow_events TO " + name,
		"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO " + name,
	} {
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	pool, err := pgxpool.New(ctx, db.Srv.UserDSN(db.Name, name, password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, name
}

// captureOff reads capture_until straight from the sequence (capture_status
// needs the log tables, which these tests take away).
func captureUntil(t *testing.T, ctx context.Context, db *pgtest.DB, seq string) int64 {
	t.Helper()
	var v int64
	if err := db.Pool.QueryRow(ctx, `SELECT last_value FROM `+seq).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDamagedInstallNeverFailsWriters damages meshtop's install while
// MeshHook's writers run — privileges revoked, the logs, the capture
// sequence and the schema renamed, a log dropped, then the whole install
// removed by hand and by uninstall, and installed again — and requires that
// not one of their inserts and updates fails. Where capture could not log,
// it turned itself off, and the refresh after the repair rebuilt the rollup:
// the views equal their oracles.
func TestDamagedInstallNeverFailsWriters(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	in := loadEdgeData(t, ctx, db)
	refreshAndCompare(t, ctx, db.Pool)
	pool, writer := writerPool(t, ctx, db)
	w := startWriters(t, pool, 3, "MeshHook")
	w.waitRuns(t, ctx, 10, "before any damage")
	// The damage itself may lose a deadlock against a writer (DROP SCHEMA
	// ... CASCADE locks meshtop's tables, then MeshHook's to drop the
	// triggers, while a writer holds MeshHook's and waits for meshtop's):
	// the operator's statement fails, never the writer's. Tried again, as
	// an operator would.
	exec := func(sql string) {
		t.Helper()
		for {
			_, err := db.Pool.Exec(ctx, sql)
			if err == nil {
				return
			}
			if sqlState(err) != "40P01" {
				t.Fatalf("%s: %v", sql, err)
			}
			t.Logf("%s lost a deadlock, tried again: %v", sql, err)
		}
	}

	// Privileges: the writers never had any on meshtop's schema; taking
	// everything from them and from PUBLIC changes nothing, and capture
	// goes on (the functions run as meshtop's owner).
	for _, sql := range []string{
		"REVOKE ALL ON ALL TABLES IN SCHEMA metrics FROM PUBLIC, " + writer,
		"REVOKE ALL ON ALL SEQUENCES IN SCHEMA metrics FROM PUBLIC, " + writer,
		"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA metrics FROM PUBLIC, " + writer,
		"REVOKE ALL ON SCHEMA metrics FROM PUBLIC, " + writer,
	} {
		exec(sql)
	}
	before := dirtyKeys(t, ctx, db.Pool)
	w.waitRuns(t, ctx, 10, "after privileges were revoked")
	if after := dirtyKeys(t, ctx, db.Pool); after <= before {
		t.Errorf("after REVOKE: the log went from %d to %d rows; capture stopped", before, after)
	}

	// Renamed: each log, the capture sequence, the schema. Each time the
	// writers go on, and capture turns itself off (capture_until = 0).
	for _, c := range []struct{ rename, back, seq string }{
		{"ALTER TABLE metrics.dirty_keys RENAME TO dirty_keys_moved", "ALTER TABLE metrics.dirty_keys_moved RENAME TO dirty_keys", "metrics.capture_until"},
		{"ALTER TABLE metrics.dirty_runs RENAME TO dirty_runs_moved", "ALTER TABLE metrics.dirty_runs_moved RENAME TO dirty_runs", "metrics.capture_until"},
		{"ALTER SEQUENCE metrics.capture_until RENAME TO capture_until_moved", "ALTER SEQUENCE metrics.capture_until_moved RENAME TO capture_until", "metrics.capture_until_moved"},
		{"ALTER SCHEMA metrics RENAME TO metrics_moved", "ALTER SCHEMA metrics_moved RENAME TO metrics", "metrics_moved.capture_until"},
	} {
		exec(c.rename)
		w.waitRuns(t, ctx, 10, "after "+c.rename)
		if v := captureUntil(t, ctx, db, c.seq); v != 0 {
			t.Errorf("after %s: capture_until %d; capture should have turned itself off", c.rename, v)
		}
		exec(c.back)
		w.waitRuns(t, ctx, 5, "after "+c.back)
		// The next refresh rebuilds and resumes capture.
		refreshAll(t, ctx, db.Pool, "metrics")
		if m := lastModes(t, ctx, db.Pool)["mv_workflow_metrics_hourly"]; !strings.HasPrefix(m, "full ") {
			t.Errorf("refresh after %s and back: mode %q; want full", c.rename, m)
		}
		if c := readCapture(t, ctx, db.Pool); c.stopped {
			t.Errorf("capture still off after the rebuild: %+v", c)
		}
	}

	// Dropped: a log table, then the schema by hand (CASCADE takes the
	// capture functions and with them the triggers), then install again
	// and uninstall, all with the writers running.
	exec("DROP TABLE metrics.dirty_runs")
	w.waitRuns(t, ctx, 10, "after DROP TABLE metrics.dirty_runs")
	exec("DROP SCHEMA metrics CASCADE")
	w.waitRuns(t, ctx, 10, "after DROP SCHEMA metrics CASCADE")
	if _, err := in.Apply(ctx, nil); err != nil {
		t.Fatalf("install after the schema was dropped by hand: %v", err)
	}
	w.waitRuns(t, ctx, 10, "after install")
	if err := install.New(db.Pool, "metrics").Uninstall(ctx); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	w.waitRuns(t, ctx, 10, "after uninstall")
	mustApply(t, ctx, in)
	c := clock
	if err := in.SetClock(ctx, &c); err != nil {
		t.Fatal(err)
	}
	w.waitRuns(t, ctx, 10, "after the second install")

	w.halt()
	if errs := w.errors(); len(errs) > 0 {
		t.Fatalf("MeshHook's writers failed: %v", errs)
	}
	refreshAndCompare(t, ctx, db.Pool)
	t.Logf("%d runs written; longest statement %s", w.runs.Load(), w.slow)
}
