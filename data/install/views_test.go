package install_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	meshsql "github.com/meshtop/meshtop/sql"
)

// clock is the pinned metrics clock of the hand-made data set. 720 hours
// before it is 2026-01-31 12:00 UTC, so the 30-day window spans three monthly
// event partitions.
var clock = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// edgeData is SQL that inserts runs and events around every window edge.
// Projects P1, P2 (owners u1, u2); definitions:
//
//	w1 (P1, slug a, v1, published)   runs at every edge, all statuses
//	w2 (P1, slug a, v2, published)   a few runs, step events with retries
//	                                 (nodes n1, n2: a new step_started per
//	                                 retry; r1, r2: as MeshHook's workers)
//	w3 (P2, slug b, v1, draft)       never run
//	w4 (P2, slug c, v1, archived)    only runs older than 30 days
const edgeData = `
SELECT public.meshhook_ensure_event_partitions($1::timestamptz - interval '45 days', $1::timestamptz + interval '1 day');
INSERT INTO public.projects (id, owner, name) VALUES
  ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000f1', 'P1'),
  ('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000f2', 'P2');
INSERT INTO public.workflow_definitions (id, project_id, slug, version, definition, name, status) VALUES
  ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 'a', 1, '{"nodes":[{"id":"n1","type":"http_call"}]}', 'A', 'published'),
  ('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-0000000000a1', 'a', 2, '{"nodes":[{"id":"n1","type":"http_call"},{"id":"n2","type":"transform"}]}', 'A', 'published'),
  ('00000000-0000-0000-0000-0000000000b3', '00000000-0000-0000-0000-0000000000a2', 'b', 1, '{"nodes":[]}', 'B', 'draft'),
  ('00000000-0000-0000-0000-0000000000b4', '00000000-0000-0000-0000-0000000000a2', 'c', 1, '{"nodes":[]}', 'C', 'archived');
-- w1: one run per (edge offset, status). Offsets straddle each window edge
-- by one microsecond, plus the clock itself and one run after it.
INSERT INTO public.workflow_runs (id, project_id, workflow_id, status, started_at, finished_at)
SELECT md5('w1:' || o.off || ':' || s.status)::uuid, '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1',
       s.status, $1::timestamptz - o.off::interval,
       CASE WHEN s.status IN ('succeeded', 'failed', 'canceled')
            THEN $1::timestamptz - o.off::interval + (s.ms * o.n) * interval '1 millisecond' END
FROM (VALUES ('0 s', 1), ('30 min', 2), ('1 hour -1 microsecond', 3), ('1 hour', 4), ('1 hour 1 microsecond', 5),
             ('24 hours -1 microsecond', 6), ('24 hours', 7), ('24 hours 1 microsecond', 8),
             ('168 hours -1 microsecond', 9), ('168 hours', 10), ('168 hours 1 microsecond', 11),
             ('720 hours -1 microsecond', 12), ('720 hours', 13), ('720 hours 1 microsecond', 14),
             ('-1 minute', 15)) AS o(off, n)
CROSS JOIN (VALUES ('succeeded', 100), ('failed', 250), ('canceled', 40), ('running', 0), ('paused', 0)) AS s(status, ms);
-- A failed run without finished_at: last_failure_at falls back to started_at.
INSERT INTO public.workflow_runs (id, project_id, workflow_id, status, started_at, finished_at) VALUES
  ('00000000-0000-0000-0000-00000000c0f1', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1',
   'failed', $1::timestamptz - interval '10 minutes', NULL);
-- w2: runs with step events (retries, an unfinished step, a terminal after the
-- clock, events in January, February and March).
INSERT INTO public.workflow_runs (id, project_id, workflow_id, status, started_at, finished_at) VALUES
  ('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b2',
   'succeeded', $1::timestamptz - interval '20 minutes', $1::timestamptz - interval '19 minutes'),
  ('00000000-0000-0000-0000-0000000000d2', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b2',
   'failed', $1::timestamptz - interval '3 days', $1::timestamptz - interval '3 days' + interval '5 seconds'),
  ('00000000-0000-0000-0000-0000000000d3', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b2',
   'running', $1::timestamptz - interval '2 minutes', NULL),
  ('00000000-0000-0000-0000-0000000000d4', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b2',
   'succeeded', $1::timestamptz - interval '719 hours', $1::timestamptz - interval '718 hours'),
  ('00000000-0000-0000-0000-0000000000d5', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b2',
   'succeeded', $1::timestamptz - interval '721 hours', $1::timestamptz - interval '720 hours 30 minutes'),
  ('00000000-0000-0000-0000-0000000000d6', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b2',
   'succeeded', $1::timestamptz - interval '10 days', $1::timestamptz - interval '10 days' + interval '1 minute');
INSERT INTO public.workflow_runs (id, project_id, workflow_id, status, started_at, finished_at) VALUES
  ('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000b4',
   'succeeded', $1::timestamptz - interval '40 days', $1::timestamptz - interval '40 days' + interval '1 second');
INSERT INTO public.workflow_events (run_id, ts, type, payload)
SELECT v.run_id::uuid, $1::timestamptz - v.ago::interval, v.type, v.payload::jsonb
FROM (VALUES
  -- d1: n1 retried (fails, then succeeds), n2 succeeds.
  ('00000000-0000-0000-0000-0000000000d1', '20 minutes', 'step_started', '{"node":{"id":"n1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000d1', '19 minutes 59 seconds', 'http_attempted', '{"node":{"id":"n1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000d1', '19 minutes 58 seconds', 'step_failed', '{"node":{"id":"n1","type":"http_call"},"error":{"status":502,"body":"secret response"}}'),
  ('00000000-0000-0000-0000-0000000000d1', '19 minutes 50 seconds', 'step_started', '{"node":{"id":"n1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000d1', '19 minutes 49 seconds', 'step_succeeded', '{"node":{"id":"n1","type":"http_call"},"next":["n2"]}'),
  ('00000000-0000-0000-0000-0000000000d1', '19 minutes 30 seconds', 'step_started', '{"node":{"id":"n2","type":"transform"}}'),
  ('00000000-0000-0000-0000-0000000000d1', '19 minutes 29 seconds 500 milliseconds', 'step_succeeded', '{"node":{"id":"n2","type":"transform"},"next":[]}'),
  ('00000000-0000-0000-0000-0000000000d1', '19 minutes', 'run_completed', '{}'),
  -- d2: n1 fails.
  ('00000000-0000-0000-0000-0000000000d2', '72 hours', 'step_started', '{"node":{"id":"n1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000d2', '71 hours 59 minutes 57 seconds', 'step_failed', '{"node":{"id":"n1","type":"http_call"},"error":{"status":500}}'),
  -- d3: n1 done, n2 in progress; a terminal after the clock is ignored.
  ('00000000-0000-0000-0000-0000000000d3', '2 minutes', 'step_started', '{"node":{"id":"n1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000d3', '1 minute', 'step_succeeded', '{"node":{"id":"n1","type":"http_call"},"next":["n2"]}'),
  ('00000000-0000-0000-0000-0000000000d3', '30 seconds', 'step_started', '{"node":{"id":"n2","type":"transform"}}'),
  ('00000000-0000-0000-0000-0000000000d3', '-10 seconds', 'step_succeeded', '{"node":{"id":"n2","type":"transform"},"next":[]}'),
  -- d4: in the 30-day window, events in January (partition y2026m01).
  ('00000000-0000-0000-0000-0000000000d4', '719 hours', 'step_started', '{"node":{"id":"n1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000d4', '718 hours 30 minutes', 'step_succeeded', '{"node":{"id":"n1","type":"http_call"},"next":[]}'),
  -- d5: run started outside the window; its events are not counted.
  ('00000000-0000-0000-0000-0000000000d5', '721 hours', 'step_started', '{"node":{"id":"n1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000d5', '720 hours 40 minutes', 'step_failed', '{"node":{"id":"n1","type":"http_call"}}'),
  -- d6: February.
  ('00000000-0000-0000-0000-0000000000d6', '240 hours', 'step_started', '{"node":{"id":"n2","type":"transform"}}'),
  ('00000000-0000-0000-0000-0000000000d6', '239 hours 59 minutes 59 seconds', 'step_succeeded', '{"node":{"id":"n2","type":"transform"},"next":[]}')
) AS v(run_id, ago, type, payload);
-- w2: runs written the way MeshHook's workers write them (issue #25): node
-- r1, an http_call, retried without a new step_started.
INSERT INTO public.workflow_runs (id, project_id, workflow_id, status, started_at, finished_at)
SELECT v.id::uuid, '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b2', v.status,
       $1::timestamptz - v.ago::interval, $1::timestamptz - v.ago::interval + v.took::interval
FROM (VALUES
  ('00000000-0000-0000-0000-0000000000f1', 'succeeded', '40 minutes', '1 minute'),
  ('00000000-0000-0000-0000-0000000000f2', 'failed', '5 hours', '30 seconds'),
  ('00000000-0000-0000-0000-0000000000f3', 'running', '10 minutes', NULL),
  ('00000000-0000-0000-0000-0000000000f4', 'canceled', '30 hours', '20 seconds'),
  ('00000000-0000-0000-0000-0000000000f5', 'running', '72 hours', NULL),
  ('00000000-0000-0000-0000-0000000000f6', 'running', '15 minutes', NULL),
  ('00000000-0000-0000-0000-0000000000f7', 'succeeded', '48 hours', '1 minute')
) AS v(id, status, ago, took);
INSERT INTO public.workflow_events (run_id, ts, type, payload)
SELECT v.run_id::uuid, r.started_at + v.after::interval, v.type, v.payload::jsonb
FROM (VALUES
  -- f1: 503, then 200 after the back-off: one execution, succeeded, 2 attempts.
  ('00000000-0000-0000-0000-0000000000f1', '1 second', 'step_started', '{"node":{"id":"r1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000f1', '2 seconds', 'http_attempted', '{"node":{"id":"r1","type":"http_call"},"status":503}'),
  ('00000000-0000-0000-0000-0000000000f1', '2.001 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":1,"error":"Error: HTTP 503"}'),
  ('00000000-0000-0000-0000-0000000000f1', '3 seconds', 'http_attempted', '{"node":{"id":"r1","type":"http_call"},"status":200}'),
  ('00000000-0000-0000-0000-0000000000f1', '3.5 seconds', 'step_succeeded', '{"node":{"id":"r1","type":"http_call"},"next":[],"response":"secret body"}'),
  -- f2: a network error, 502, 502, 429, 500: finally failed at attempt 5.
  ('00000000-0000-0000-0000-0000000000f2', '1 second', 'step_started', '{"node":{"id":"r1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000f2', '2 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":1,"error":"TypeError: fetch failed"}'),
  ('00000000-0000-0000-0000-0000000000f2', '3 seconds', 'http_attempted', '{"node":{"id":"r1","type":"http_call"},"status":502}'),
  ('00000000-0000-0000-0000-0000000000f2', '3.05 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":2,"error":"Error: HTTP 502"}'),
  ('00000000-0000-0000-0000-0000000000f2', '5 seconds', 'http_attempted', '{"node":{"id":"r1","type":"http_call"},"status":502}'),
  ('00000000-0000-0000-0000-0000000000f2', '5.1 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":3,"error":"Error: HTTP 502"}'),
  ('00000000-0000-0000-0000-0000000000f2', '9 seconds', 'http_attempted', '{"node":{"id":"r1","type":"http_call"},"status":"429"}'),
  ('00000000-0000-0000-0000-0000000000f2', '9.1 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":4,"error":"Error: HTTP 429"}'),
  ('00000000-0000-0000-0000-0000000000f2', '17 seconds', 'http_attempted', '{"node":{"id":"r1","type":"http_call"},"status":500}'),
  ('00000000-0000-0000-0000-0000000000f2', '17.1 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":5,"error":"Error: HTTP 500"}'),
  -- f3: attempt 1 failed, the run still running: pending, no execution yet.
  ('00000000-0000-0000-0000-0000000000f3', '1 second', 'step_started', '{"node":{"id":"r1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000f3', '2 seconds', 'http_attempted', '{"node":{"id":"r1","type":"http_call"},"status":503}'),
  ('00000000-0000-0000-0000-0000000000f3', '2.1 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":1,"error":"Error: HTTP 503"}'),
  -- f4: two 503s, then the run was canceled: final at attempt 2.
  ('00000000-0000-0000-0000-0000000000f4', '1 second', 'step_started', '{"node":{"id":"r1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000f4', '2 seconds', 'http_attempted', '{"node":{"id":"r1","type":"http_call"},"status":503}'),
  ('00000000-0000-0000-0000-0000000000f4', '2.1 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":1,"error":"Error: HTTP 503"}'),
  ('00000000-0000-0000-0000-0000000000f4', '3 seconds', 'http_attempted', '{"node":{"id":"r1","type":"http_call"},"status":503}'),
  ('00000000-0000-0000-0000-0000000000f4', '3.1 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":2,"error":"Error: HTTP 503"}'),
  -- f5: five network errors while the run is still running: final.
  ('00000000-0000-0000-0000-0000000000f5', '1 second', 'step_started', '{"node":{"id":"r1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000f5', '2 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":1,"error":"TypeError: fetch failed"}'),
  ('00000000-0000-0000-0000-0000000000f5', '3 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":2,"error":"TypeError: fetch failed"}'),
  ('00000000-0000-0000-0000-0000000000f5', '5 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":3,"error":"TypeError: fetch failed"}'),
  ('00000000-0000-0000-0000-0000000000f5', '9 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":4,"error":"TypeError: fetch failed"}'),
  ('00000000-0000-0000-0000-0000000000f5', '17 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":5,"error":"TypeError: fetch failed"}'),
  -- f6: attempt 1 failed and the retry's response (200) arrived, its
  -- outcome not yet: pending. r2 names its node by id string: a 301, then
  -- a 2xx.
  ('00000000-0000-0000-0000-0000000000f6', '1 second', 'step_started', '{"node":{"id":"r1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000f6', '2 seconds', 'http_attempted', '{"node":{"id":"r1","type":"http_call"},"status":503}'),
  ('00000000-0000-0000-0000-0000000000f6', '2.1 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":1,"error":"Error: HTTP 503"}'),
  ('00000000-0000-0000-0000-0000000000f6', '3 seconds', 'http_attempted', '{"node":{"id":"r1","type":"http_call"},"status":200}'),
  ('00000000-0000-0000-0000-0000000000f6', '4 seconds', 'step_started', '{"node":{"id":"r2","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000f6', '5 seconds', 'http_attempted', '{"node":"r2","status":301}'),
  ('00000000-0000-0000-0000-0000000000f6', '5.1 seconds', 'step_failed', '{"node":"r2","attempt":"1","error":"Error: HTTP 301"}'),
  ('00000000-0000-0000-0000-0000000000f6', '6 seconds', 'http_attempted', '{"node":"r2","status":204}'),
  ('00000000-0000-0000-0000-0000000000f6', '6.5 seconds', 'step_succeeded', '{"node":"r2","next":[]}'),
  -- f7: attempt 1 failed (500), then the node was started again and
  -- succeeded: two executions, the first failed.
  ('00000000-0000-0000-0000-0000000000f7', '1 second', 'step_started', '{"node":{"id":"r1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000f7', '2 seconds', 'http_attempted', '{"node":{"id":"r1","type":"http_call"},"status":500}'),
  ('00000000-0000-0000-0000-0000000000f7', '2.5 seconds', 'step_failed', '{"node":{"id":"r1","type":"http_call"},"attempt":1,"error":"Error: HTTP 500"}'),
  ('00000000-0000-0000-0000-0000000000f7', '10 seconds', 'step_started', '{"node":{"id":"r1","type":"http_call"}}'),
  ('00000000-0000-0000-0000-0000000000f7', '11 seconds', 'http_attempted', '{"node":{"id":"r1","type":"http_call"},"status":201}'),
  ('00000000-0000-0000-0000-0000000000f7', '12 seconds', 'step_succeeded', '{"node":{"id":"r1","type":"http_call"},"next":[]}')
) AS v(run_id, after, type, payload)
JOIN public.workflow_runs r ON r.id = v.run_id::uuid;
`

// loadEdgeData installs meshtop, pins the clock and inserts edgeData.
func loadEdgeData(t *testing.T, ctx context.Context, db *pgtest.DB) *install.Installer {
	t.Helper()
	in := install.New(db.Pool, "metrics")
	mustApply(t, ctx, in)
	c := clock
	if err := in.SetClock(ctx, &c); err != nil {
		t.Fatal(err)
	}
	insertEdgeData(t, ctx, db)
	return in
}

// insertEdgeData inserts edgeData in one transaction.
func insertEdgeData(t *testing.T, ctx context.Context, db *pgtest.DB) {
	t.Helper()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, stmt := range splitStatements(edgeData) {
		var args []any
		if strings.Contains(stmt, "$1") {
			args = append(args, clock)
		}
		if _, err := tx.Exec(ctx, stmt, args...); err != nil {
			t.Fatalf("loading edge data: %v\n%s", err, stmt)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func splitStatements(s string) []string {
	var out []string
	cur := ""
	for _, line := range splitLines(s) {
		cur += line + "\n"
		if len(line) > 0 && line[len(line)-1] == ';' {
			out = append(out, cur)
			cur = ""
		}
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// refreshAll refreshes every view with CALL refresh() and fails on any
// status other than ok.
func refreshAll(t *testing.T, ctx context.Context, pool *pgxpool.Pool, schema string) {
	t.Helper()
	q, _ := meshsql.QuoteSchema(schema)
	if _, err := pool.Exec(ctx, "CALL "+q+".refresh()"); err != nil {
		t.Fatalf("CALL refresh(): %v", err)
	}
	rows, err := pool.Query(ctx, "SELECT view_name, status, coalesce(error, '') FROM "+q+".refresh_log ORDER BY id DESC LIMIT 3")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v, st, e string
		if err := rows.Scan(&v, &st, &e); err != nil {
			t.Fatal(err)
		}
		if st != "ok" {
			t.Fatalf("refresh of %s: %s %s", v, st, e)
		}
	}
}

// compareToLive asserts view EXCEPT ALL live and live EXCEPT ALL view are
// both empty on cols (floats rounded to 6 decimals), and that every
// percentile column in pcts is within 1% (relative) of the live one for the
// rows matched on keys (docs/METRICS.md: percentiles come from a histogram
// with 0.9% relative accuracy; everything else is exact).
func compareToLive(t *testing.T, ctx context.Context, pool *pgxpool.Pool, view, liveFile string, at time.Time, cols string, keys string, pcts ...string) {
	t.Helper()
	live, err := meshsql.Queries.ReadFile("queries/" + liveFile)
	if err != nil {
		t.Fatal(err)
	}
	q := fmt.Sprintf(`WITH v AS (SELECT %[1]s FROM metrics.%[2]s),
l AS (SELECT %[1]s FROM (%[3]s) live)
SELECT 'view only' AS side, v::text FROM (SELECT * FROM v EXCEPT ALL SELECT * FROM l) v
UNION ALL
SELECT 'live only', l::text FROM (SELECT * FROM l EXCEPT ALL SELECT * FROM v) l
LIMIT 20`, cols, view, string(live))
	reportRows(t, ctx, pool, view, q, at)
	if len(pcts) > 0 {
		var conds []string
		for _, c := range pcts {
			conds = append(conds, fmt.Sprintf(`(v.%[1]s IS NULL) <> (l.%[1]s IS NULL) OR abs(v.%[1]s - l.%[1]s) > 0.01 * abs(l.%[1]s)`, c))
		}
		var on []string
		for _, k := range strings.Split(keys, ",") {
			k = strings.TrimSpace(k)
			on = append(on, fmt.Sprintf("v.%[1]s = l.%[1]s", k))
		}
		q = fmt.Sprintf(`SELECT 'percentile beyond 1%%', row(v.*)::text || ' vs ' || row(l.*)::text
FROM metrics.%[1]s v JOIN (%[2]s) l ON %[3]s
WHERE %[4]s
LIMIT 20`, view, string(live), strings.Join(on, " AND "), strings.Join(conds, " OR "))
		reportRows(t, ctx, pool, view, q, at)
	}
	var count int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM metrics."+view).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count == 0 {
		t.Errorf("%s is empty", view)
	}
}

// reportRows fails the test with every (side, row) the query returns.
func reportRows(t *testing.T, ctx context.Context, pool *pgxpool.Pool, view, q string, at time.Time) {
	t.Helper()
	rows, err := pool.Query(ctx, q, at)
	if err != nil {
		t.Fatalf("comparing %s with its live query: %v", view, err)
	}
	defer rows.Close()
	for rows.Next() {
		var side, row string
		if err := rows.Scan(&side, &row); err != nil {
			t.Fatal(err)
		}
		t.Errorf("%s: %s %s", view, side, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

const (
	// Percentiles of the window views are compared within 1% (workflowPcts,
	// stepPcts); the hourly view's are exact.
	workflowCols = `workflow_id, "window", project_id, project_name, slug, name, version, status,
  execution_count, succeeded, failed, canceled, running,
  round(success_rate::numeric, 9) sr, round(failure_rate::numeric, 9) fr,
  round(average_duration::numeric, 6) ad,
  round(min_duration::numeric, 6) mn, round(max_duration::numeric, 6) mx,
  round(resource_consumption::numeric, 6) rc, last_failure_at, last_updated`
	workflowKeys = `workflow_id, "window"`
	hourlyCols   = `workflow_id, hour, runs, succeeded, failed, canceled,
  round(p50_duration::numeric, 6) p50, round(p95_duration::numeric, 6) p95`
	stepCols = `workflow_id, node_id, node_type, "window", executions, failures,
  round(failure_rate::numeric, 9) fr, last_failure_at,
  attempts, round(avg_attempts::numeric, 9) aa, max_attempts, retried, round(retry_rate::numeric, 9) rr,
  failed_attempts, round(attempt_failure_rate::numeric, 9) afr, http_2xx, http_4xx, http_5xx, http_other, http_none`
	stepKeys = `workflow_id, node_id, "window"`
)

var (
	workflowPcts = []string{"p50_duration", "p95_duration", "p99_duration"}
	stepPcts     = []string{"p50_latency", "p95_latency"}
)

// compareAllToLive compares the three views with their oracles at clock at.
func compareAllToLive(t *testing.T, ctx context.Context, pool *pgxpool.Pool, at time.Time) {
	t.Helper()
	compareToLive(t, ctx, pool, "mv_workflow_metrics", "live_workflow_metrics.sql", at, workflowCols, workflowKeys, workflowPcts...)
	compareToLive(t, ctx, pool, "mv_workflow_metrics_hourly", "live_workflow_metrics_hourly.sql", at, hourlyCols, "")
	compareToLive(t, ctx, pool, "mv_step_metrics", "live_step_metrics.sql", at, stepCols, stepKeys, stepPcts...)
}

func TestViewsMatchLiveQueriesAtEdges(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAll(t, ctx, db.Pool, "metrics")
	compareAllToLive(t, ctx, db.Pool, clock)

	// Hand-checked values at the edges (w1 has one run per status at each
	// offset; the 1h window holds offsets 0 s, 30 min, 1 h - 1 µs plus the
	// failed run without finished_at).
	type row struct {
		exec, succ, fail, canc, run int64
		fr                          *float64
	}
	want := map[string]row{
		"1h":  {exec: 3*5 + 1, succ: 3, fail: 4, canc: 3, run: 6},
		"24h": {exec: 6*5 + 1, succ: 6, fail: 7, canc: 6, run: 12},
		"7d":  {exec: 9*5 + 1, succ: 9, fail: 10, canc: 9, run: 18},
		"30d": {exec: 12*5 + 1, succ: 12, fail: 13, canc: 12, run: 24},
	}
	for w, r := range want {
		var got row
		var lastFail time.Time
		if err := db.Pool.QueryRow(ctx, `SELECT execution_count, succeeded, failed, canceled, running, failure_rate, last_failure_at
FROM metrics.mv_workflow_metrics WHERE workflow_id = '00000000-0000-0000-0000-0000000000b1' AND "window" = $1`, w).Scan(
			&got.exec, &got.succ, &got.fail, &got.canc, &got.run, &got.fr, &lastFail); err != nil {
			t.Fatal(err)
		}
		wantFR := float64(r.fail) / float64(r.succ+r.fail+r.canc)
		if got.exec != r.exec || got.succ != r.succ || got.fail != r.fail || got.canc != r.canc || got.run != r.run ||
			got.fr == nil || *got.fr != wantFR {
			t.Errorf("w1 %s = %+v (fr %v); want %+v (fr %v)", w, got, got.fr, r, wantFR)
		}
		// Latest failure: the run at the clock, finished 250 ms later.
		if !lastFail.Equal(clock.Add(250 * time.Millisecond)) {
			t.Errorf("w1 %s last_failure_at = %v", w, lastFail)
		}
	}
	// Every definition appears in every window; the idle ones with zeros.
	var n, idle int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE execution_count = 0 AND success_rate IS NULL AND p50_duration IS NULL)
FROM metrics.mv_workflow_metrics`).Scan(&n, &idle); err != nil {
		t.Fatal(err)
	}
	// w1 and w2 have runs in every window; w3 (never run) and w4 (only runs
	// older than 30 days) have none.
	if n != 16 || idle != 8 {
		t.Errorf("rows = %d, idle rows = %d; want 16 and 8", n, idle)
	}
	// Steps of w2 in the 1h window: n1 executed twice in d1 (failed, then
	// succeeded) and once in d3; n2 once in d1 (d3's n2 ends after the clock).
	var exec, fails int64
	var p50 float64
	if err := db.Pool.QueryRow(ctx, `SELECT executions, failures, p50_latency FROM metrics.mv_step_metrics
WHERE workflow_id = '00000000-0000-0000-0000-0000000000b2' AND node_id = 'n1' AND "window" = '1h'`).Scan(&exec, &fails, &p50); err != nil {
		t.Fatal(err)
	}
	// latencies 1 s, 2 s, 60 s; percentiles are within 1% (docs/METRICS.md)
	if exec != 3 || fails != 1 || math.Abs(p50-2000) > 20 {
		t.Errorf("n1 1h = %d executions, %d failures, p50 %v; want 3, 1, 2000 ± 1%%", exec, fails, p50)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT executions, failures, p50_latency FROM metrics.mv_step_metrics
WHERE workflow_id = '00000000-0000-0000-0000-0000000000b2' AND node_id = 'n2' AND "window" = '1h'`).Scan(&exec, &fails, &p50); err != nil {
		t.Fatal(err)
	}
	if exec != 1 || fails != 0 || p50 != 500 { // one execution: its exact latency (the minimum)
		t.Errorf("n2 1h = %d executions, %d failures, p50 %v; want 1, 0, 500", exec, fails, p50)
	}
	// 30d: n1 = d1 ×2, d2, d3, d4 (d5 started outside the window).
	if err := db.Pool.QueryRow(ctx, `SELECT executions, failures FROM metrics.mv_step_metrics
WHERE workflow_id = '00000000-0000-0000-0000-0000000000b2' AND node_id = 'n1' AND "window" = '30d'`).Scan(&exec, &fails); err != nil {
		t.Fatal(err)
	}
	if exec != 5 || fails != 2 {
		t.Errorf("n1 30d = %d executions, %d failures; want 5, 2", exec, fails)
	}

	// r1 and r2 are written as MeshHook's workers write them: retries
	// without a new step_started (edgeData's runs f1-f7).
	type steps struct {
		exec, fail, attempts, failedAttempts, retried int64
		maxAttempts                                   int
		h2xx, h4xx, h5xx, hOther, hNone               int64
	}
	for _, c := range []struct {
		node, window string
		want         steps
		p50          float64
	}{
		// f1 (503, then 200); f3 and f6 are pending.
		{"r1", "1h", steps{exec: 1, attempts: 2, failedAttempts: 1, retried: 1, maxAttempts: 2, h2xx: 1, h5xx: 1}, 2500},
		// f6's r2: a 301, then a 204 (node ids as strings).
		{"r2", "1h", steps{exec: 1, attempts: 2, failedAttempts: 1, retried: 1, maxAttempts: 2, h2xx: 1, hOther: 1}, 2500},
		// + f2: a network error, 502, 502, 429, 500 (final at attempt 5).
		{"r1", "24h", steps{exec: 2, fail: 1, attempts: 7, failedAttempts: 6, retried: 2, maxAttempts: 5, h2xx: 1, h4xx: 1, h5xx: 4, hNone: 1}, 9300},
		// + f4 (two 503s, canceled), f5 (five network errors), f7 (a 500,
		// then started again: 201).
		{"r1", "7d", steps{exec: 6, fail: 4, attempts: 16, failedAttempts: 14, retried: 4, maxAttempts: 5, h2xx: 2, h4xx: 1, h5xx: 7, hNone: 6}, 2300},
	} {
		var got steps
		var p50 float64
		if err := db.Pool.QueryRow(ctx, `SELECT executions, failures, attempts, failed_attempts, retried, max_attempts,
  http_2xx, http_4xx, http_5xx, http_other, http_none, p50_latency
FROM metrics.mv_step_metrics WHERE workflow_id = '00000000-0000-0000-0000-0000000000b2' AND node_id = $1 AND "window" = $2`,
			c.node, c.window).Scan(&got.exec, &got.fail, &got.attempts, &got.failedAttempts, &got.retried, &got.maxAttempts,
			&got.h2xx, &got.h4xx, &got.h5xx, &got.hOther, &got.hNone, &p50); err != nil {
			t.Fatalf("%s %s: %v", c.node, c.window, err)
		}
		if got != c.want || math.Abs(p50-c.p50) > 0.01*c.p50 {
			t.Errorf("%s %s = %+v, p50 %v; want %+v, p50 %v ± 1%%", c.node, c.window, got, p50, c.want, c.p50)
		}
	}
	var lastFail time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT last_failure_at FROM metrics.mv_step_metrics
WHERE workflow_id = '00000000-0000-0000-0000-0000000000b2' AND node_id = 'r1' AND "window" = '7d'`).Scan(&lastFail); err != nil {
		t.Fatal(err)
	}
	if want := clock.Add(-5*time.Hour + 17100*time.Millisecond); !lastFail.Equal(want) {
		t.Errorf("r1 7d last_failure_at = %v; want f2's fifth attempt, %v", lastFail, want)
	}
}
