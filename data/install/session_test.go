package install_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/meshtop/meshtop/data/pgtest"
)

// sessionSettings are settings a refreshing session may carry (an
// operator's PGTZ or PGDATESTYLE, `timezone=` in a DSN, a role's or a
// database's ALTER ... SET) that must change neither what a refresh
// computes nor whether it is incremental. The locales are those every
// cluster has (the test machine has no others).
var sessionSettings = []struct {
	name string
	sets []string
}{
	{"UTC", []string{`SET TimeZone = 'UTC'`}},
	{"Asia/Kolkata, SQL DMY", []string{
		`SET TimeZone = 'Asia/Kolkata'`,
		`SET DateStyle = 'SQL, DMY'`,
	}},
	{"America/St_Johns, everything else odd", []string{
		`SET TimeZone = 'America/St_Johns'`,
		`SET DateStyle = 'Postgres, DMY'`,
		`SET IntervalStyle = 'postgres_verbose'`,
		`SET extra_float_digits = -15`,
		`SET lc_messages = 'POSIX'`,
		`SET lc_monetary = 'C.utf8'`,
		`SET lc_numeric = 'C.utf8'`,
		`SET lc_time = 'POSIX'`,
		`SET search_path = public, pg_temp`,
		`SET timezone_abbreviations = 'India'`,
		`SET quote_all_identifiers = on`,
		`SET transform_null_equals = on`,
		`SET array_nulls = off`,
		`SET bytea_output = 'escape'`,
		`SET default_transaction_isolation = 'repeatable read'`,
		`SET work_mem = '64kB'`,
		`SET enable_hashjoin = off`,
		`SET jit = on`,
		`SET jit_above_cost = 0`,
		`SET stats_fetch_consistency = 'snapshot'`,
	}},
	{"Asia/Kolkata again", []string{`SET TimeZone = 'Asia/Kolkata'`}},
	{"America/St_Johns, sql_standard intervals", []string{
		`SET TimeZone = 'America/St_Johns'`,
		`SET IntervalStyle = 'sql_standard'`,
		`SET DateStyle = 'German'`,
		`SET extra_float_digits = 3`,
	}},
	{"UTC again", []string{`SET TimeZone = 'UTC'`}},
}

// sessionConn opens a session carrying the given settings.
func sessionConn(t *testing.T, ctx context.Context, dsn string, sets []string) *pgx.Conn {
	t.Helper()
	c := connect(t, ctx, dsn)
	for _, s := range sets {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return c
}

// verifyAs runs verify(720) in one REPEATABLE READ transaction of c and
// returns the differences.
func verifyAs(t *testing.T, ctx context.Context, c *pgx.Conn) []string {
	t.Helper()
	tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT kind || ' ' || coalesce(node_id, '-') || ' ' || field || ' ' || coalesce(stored, 'null') || ' ' || coalesce(recomputed, 'null') FROM metrics.verify(720)`)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return out
}

// viewContents returns every row of the three views as text, read in a
// session with fixed settings.
func viewContents(t *testing.T, ctx context.Context, c *pgx.Conn) string {
	t.Helper()
	var s string
	if err := c.QueryRow(ctx, `SELECT
  (SELECT string_agg(v::text, E'\n' ORDER BY v.workflow_id, v."window") FROM metrics.mv_workflow_metrics v) || E'\n--\n' ||
  (SELECT string_agg(v::text, E'\n' ORDER BY v.workflow_id, v.hour) FROM metrics.mv_workflow_metrics_hourly v) || E'\n--\n' ||
  (SELECT string_agg(v::text, E'\n' ORDER BY v.workflow_id, v.node_id, v."window") FROM metrics.mv_step_metrics v)`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRefreshIndependentOfSessionSettings alternates refreshes between
// sessions with different TimeZone, DateStyle, IntervalStyle, locale and
// float settings, through both entry points (CALL refresh() as pg_cron
// runs it, refresh_begin/refresh_run as meshtop refresh runs them). Each
// stays incremental, every view equals its oracle, verify (run in that
// session too) finds nothing, and a full rebuild under any of them gives
// the same contents.
func TestRefreshIndependentOfSessionSettings(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	plain := sessionConn(t, ctx, db.DSN, sessionSettings[0].sets)
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "full ") {
		t.Fatalf("first refresh: mode %q; want a full build", m)
	}
	want := viewContents(t, ctx, plain)

	refreshIn := func(c *pgx.Conn, viaFunctions bool) {
		t.Helper()
		if !viaFunctions {
			if _, err := c.Exec(ctx, `CALL metrics.refresh()`); err != nil {
				t.Fatalf("CALL refresh(): %v", err)
			}
			return
		}
		for _, v := range []string{"mv_workflow_metrics_hourly", "mv_workflow_metrics", "mv_step_metrics"} {
			var id int64
			if err := c.QueryRow(ctx, `SELECT metrics.refresh_begin($1, false)`, v).Scan(&id); err != nil {
				t.Fatalf("refresh_begin(%s): %v", v, err)
			}
			var status string
			if err := c.QueryRow(ctx, `SELECT (metrics.refresh_run($1)).status`, id).Scan(&status); err != nil {
				t.Fatalf("refresh_run(%s): %v", v, err)
			}
			if status != "ok" {
				var e string
				_ = c.QueryRow(ctx, `SELECT coalesce(error, '') FROM metrics.refresh_log WHERE id = $1`, id).Scan(&e)
				t.Fatalf("refresh_run(%s): status %s %s", v, status, e)
			}
		}
	}

	for i, s := range sessionSettings {
		c := sessionConn(t, ctx, db.DSN, s.sets)
		// A quiet refresh first: nothing changed, so nothing may be rebuilt.
		refreshIn(c, i%2 == 1)
		for v, m := range lastModes(t, ctx, db.Pool) {
			if !strings.HasPrefix(m, "incremental ") {
				t.Errorf("%s: quiet refresh of %s: mode %q; want incremental", s.name, v, m)
			}
		}
		if got := viewContents(t, ctx, plain); got != want {
			t.Errorf("%s: a quiet refresh changed the views:\n%s\nwant\n%s", s.name, got, want)
		}
		// Then a change: new runs and step events.
		if _, err := db.Pool.Exec(ctx, `WITH r AS (
  INSERT INTO public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
  SELECT '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b2', 'succeeded',
         $1::timestamptz - g * interval '41 minutes' - $2 * interval '1 minute',
         $1::timestamptz - g * interval '41 minutes' - $2 * interval '1 minute' + g * interval '1.5 seconds'
  FROM generate_series(1, 30) g RETURNING id, started_at)
INSERT INTO public.workflow_events (run_id, ts, type, payload)
SELECT r.id, r.started_at + x.off, x.type, '{"node":{"id":"s","type":"transform"}}'
FROM r, (VALUES (interval '1 second', 'step_started'), (interval '1.25 seconds', 'step_succeeded')) x(off, type)`,
			clock, i); err != nil {
			t.Fatal(err)
		}
		refreshIn(c, i%2 == 0)
		for v, m := range lastModes(t, ctx, db.Pool) {
			if !strings.HasPrefix(m, "incremental ") {
				t.Errorf("%s: refresh of %s after new runs: mode %q; want incremental", s.name, v, m)
			}
		}
		compareAllToLive(t, ctx, db.Pool, clock)
		if d := verifyAs(t, ctx, c); len(d) != 0 {
			t.Errorf("%s: verify: %v", s.name, d)
		}
		want = viewContents(t, ctx, plain)
	}

	// A full rebuild in each session gives exactly what the incremental
	// refreshes built.
	for _, s := range sessionSettings {
		c := sessionConn(t, ctx, db.DSN, s.sets)
		if _, err := c.Exec(ctx, `SELECT metrics.refresh_request_full()`); err != nil {
			t.Fatal(err)
		}
		refreshIn(c, false)
		if m := lastModes(t, ctx, db.Pool)["mv_workflow_metrics_hourly"]; !strings.HasPrefix(m, "full ") {
			t.Errorf("%s: refresh after refresh_request_full: mode %q", s.name, m)
		}
		if got := viewContents(t, ctx, plain); got != want {
			t.Errorf("%s: a full rebuild gave other contents:\n%s\nwant\n%s", s.name, got, want)
		}
	}
}

// TestVerifyIndependentOfSessionSettings: verify compares every field at
// full precision whatever the session's extra_float_digits (at -15 floats
// print with one significant digit, and a 1% error would compare equal).
func TestVerifyIndependentOfSessionSettings(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAndCompare(t, ctx, db.Pool)
	if _, err := db.Pool.Exec(ctx, `UPDATE metrics.window_runs SET p95_ms = p95_ms * 1.01 WHERE "window" = '30d' AND p95_ms > 0`); err != nil {
		t.Fatal(err)
	}
	for _, s := range sessionSettings {
		c := sessionConn(t, ctx, db.DSN, s.sets)
		d := verifyAs(t, ctx, c)
		if !strings.Contains(strings.Join(d, "\n"), "runs_window - 30d.p95_ms ") {
			t.Errorf("%s: verify does not report the changed p95: %v", s.name, d)
		}
		for _, line := range d {
			if !strings.Contains(line, "30d.p95_ms") {
				t.Errorf("%s: verify reports %s", s.name, line)
			}
		}
	}
}

// TestPartitionFingerprintFromAnotherZone: a fingerprint stored by an older
// meshtop in a session of another TimeZone (bounds written with that zone's
// offset) is the same partitions, so the next refresh stays incremental; a
// bound that cannot be read is taken as changed (a rebuild, to be safe).
func TestPartitionFingerprintFromAnotherZone(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAndCompare(t, ctx, db.Pool)
	rewrite := func(bound string) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, `UPDATE metrics.rollup_state s SET partitions = (
  SELECT jsonb_object_agg(p.key, jsonb_build_array(p.value ->> 0, `+bound+`))
  FROM jsonb_each(s.partitions) p)`); err != nil {
			t.Fatal(err)
		}
	}
	// As an older meshtop wrote them in Asia/Kolkata: '2026-03-01 05:30:00+05:30'.
	rewrite(`to_char((p.value ->> 1)::timestamptz AT TIME ZONE 'Asia/Kolkata', 'YYYY-MM-DD HH24:MI:SS') || '+05:30'`)
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "incremental ") {
		t.Errorf("after a fingerprint written in Asia/Kolkata: mode %q; want incremental", m)
	}
	rewrite(`'not a time'`)
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "full ") {
		t.Errorf("after an unreadable fingerprint: mode %q; want full", m)
	}
}
