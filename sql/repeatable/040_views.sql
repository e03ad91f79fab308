-- 040_views: the three views over the rollup. Repeatable: when this file
-- changes, the views are dropped and created again in one transaction (their
-- grants and tenant_workflow_metrics, which returns mv_workflow_metrics' row
-- type, with them); a re-created materialized view is unpopulated until its
-- next refresh, which is then a plain one.
--
-- Meanings are those of docs/METRICS.md and sql/queries/live_*.sql (the
-- oracles), unchanged since 003: a run is in window W when
-- clock - W < started_at <= clock; durations are finished_at - started_at in
-- ms; a step execution is a step_started followed, for that run and node, by
-- its step_succeeded/step_failed. What changed is where the numbers come
-- from (window_bounds in 010_sketch.sql): whole UTC days and hours from the
-- rollup (exact counts, sums, min/max, last failure; histograms for
-- percentiles), the partial hours at both ends of each window from the raw
-- tables. Percentiles are therefore within 0.9% of percentile_cont, every
-- other number is exact.
--
-- Percentiles from a merged histogram: for p, percentile_cont interpolates
-- between the order statistics floor(r) and ceil(r), r = p * (n - 1)
-- (0-based). Each is estimated by the bucket holding that rank (within
-- alpha), clamped to the exact min/max (and equal to them at ranks 0 and
-- n - 1); the interpolation of two estimates within alpha is within alpha.
--
-- Every name is schema-qualified: PostgreSQL 17 refreshes with
-- search_path = pg_catalog, pg_temp.

-- tenant_workflow_metrics goes with mv_workflow_metrics: keep who may
-- execute it (meshtop_tenant, and whatever the operator granted, e.g. to
-- authenticated) and grant it again below.
-- (A table of the schema, dropped below: a temporary one would leave a
-- pg_temp schema behind in the database.)
DROP TABLE IF EXISTS @schema@.meshtop_tenant_grants;
CREATE TABLE @schema@.meshtop_tenant_grants AS
SELECT a.grantee::regrole::text AS grantee
FROM pg_catalog.pg_proc p
CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
WHERE p.oid = pg_catalog.to_regprocedure(pg_catalog.format('%I.tenant_workflow_metrics(text)', @schema@.schema_name()))
  AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner;

DROP MATERIALIZED VIEW IF EXISTS @schema@.mv_workflow_metrics CASCADE;
DROP MATERIALIZED VIEW IF EXISTS @schema@.mv_step_metrics;
-- A materialized view before 009, a plain view since.
DO $meshtop$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_class c
             WHERE c.relnamespace = pg_catalog.to_regnamespace(pg_catalog.quote_ident(@schema@.schema_name()))
               AND c.relname = 'mv_workflow_metrics_hourly' AND c.relkind = 'm') THEN
    DROP MATERIALIZED VIEW @schema@.mv_workflow_metrics_hourly;
  END IF;
END
$meshtop$;
DROP VIEW IF EXISTS @schema@.mv_workflow_metrics_hourly;

-- Per workflow definition (one row per version) and window; every definition
-- in every window (zero counts, null rates and durations when idle).
CREATE MATERIALIZED VIEW @schema@.mv_workflow_metrics AS
WITH clock AS MATERIALIZED (
  SELECT @schema@.clock() AS now
),
b AS MATERIALIZED (
  SELECT w.* FROM @schema@.window_bounds((SELECT c.now FROM clock c)) w
),
-- The runs of the partial hours at both ends of each window.
raw AS MATERIALIZED (
  SELECT b."window", r.workflow_id, r.status, r.started_at, r.finished_at,
         pg_catalog.date_part('epoch', r.finished_at - r.started_at) * 1000 AS dur
  FROM b CROSS JOIN LATERAL (
    SELECT x.workflow_id, x.status, x.started_at, x.finished_at FROM public.workflow_runs x
    WHERE x.started_at > b.lo AND x.started_at < b.h0
    UNION ALL
    SELECT x.workflow_id, x.status, x.started_at, x.finished_at FROM public.workflow_runs x
    WHERE x.started_at >= b.h1 AND x.started_at <= b.hi) r
),
-- Whole days and whole hours from the rollup.
parts AS MATERIALIZED (
  SELECT b."window", d.workflow_id, d.runs, d.succeeded, d.failed, d.canceled, d.running, d.finished,
         d.dur_sum_ms, d.dur_min_ms, d.dur_max_ms, d.open_runs, d.open_started_epoch, d.last_failure_at,
         d.hist_k, d.hist_c
  FROM b JOIN @schema@.rollup_runs_day d ON d.bucket >= b.d0 AND d.bucket < b.d1
  UNION ALL
  SELECT b."window", h.workflow_id, h.runs, h.succeeded, h.failed, h.canceled, h.running, h.finished,
         h.dur_sum_ms, h.dur_min_ms, h.dur_max_ms, h.open_runs, h.open_started_epoch, h.last_failure_at,
         h.hist_k, h.hist_c
  FROM b JOIN @schema@.rollup_runs_hour h
    ON (h.bucket >= b.h0 AND h.bucket < b.d0) OR (h.bucket >= b.d1 AND h.bucket < b.h1)
),
agg AS (
  SELECT u."window", u.workflow_id,
         sum(u.runs) AS runs, sum(u.succeeded) AS succeeded, sum(u.failed) AS failed,
         sum(u.canceled) AS canceled, sum(u.running) AS running, sum(u.finished) AS finished,
         sum(u.dur_sum_ms) AS dur_sum_ms, min(u.dur_min_ms) AS mn, max(u.dur_max_ms) AS mx,
         sum(u.open_runs) AS open_runs, sum(u.open_started_epoch) AS open_started_epoch,
         max(u.last_failure_at) AS last_failure_at
  FROM (
    SELECT p."window", p.workflow_id, p.runs, p.succeeded, p.failed, p.canceled, p.running, p.finished,
           p.dur_sum_ms, p.dur_min_ms, p.dur_max_ms, p.open_runs, p.open_started_epoch, p.last_failure_at
    FROM parts p
    UNION ALL
    SELECT r."window", r.workflow_id, 1, (r.status = 'succeeded')::int, (r.status = 'failed')::int,
           (r.status = 'canceled')::int, (r.status IN ('running', 'paused'))::int, (r.dur IS NOT NULL)::int,
           coalesce(EXTRACT(epoch FROM r.finished_at - r.started_at) * 1000, 0), r.dur, r.dur,
           (r.finished_at IS NULL AND r.status IN ('running', 'paused'))::int,
           CASE WHEN r.finished_at IS NULL AND r.status IN ('running', 'paused')
                THEN EXTRACT(epoch FROM r.started_at) ELSE 0 END,
           CASE WHEN r.status = 'failed' THEN coalesce(r.finished_at, r.started_at) END
    FROM raw r
  ) u
  GROUP BY 1, 2
),
hist AS (
  SELECT u."window", u.workflow_id, u.k, sum(u.c) AS c
  FROM (
    SELECT p."window", p.workflow_id, x.k, x.c
    FROM parts p CROSS JOIN LATERAL unnest(p.hist_k, p.hist_c) AS x(k, c)
    UNION ALL
    SELECT r."window", r.workflow_id, @schema@.dd_key(r.dur), 1 FROM raw r WHERE r.dur IS NOT NULL
  ) u
  GROUP BY 1, 2, 3
),
hc AS (
  SELECT h."window", h.workflow_id, h.k, h.c::float8 AS c,
         (sum(h.c) OVER (PARTITION BY h."window", h.workflow_id ORDER BY h.k))::float8 AS upto
  FROM hist h
),
ranks AS (
  SELECT a."window", a.workflow_id, a.finished AS n, a.mn, a.mx, q.i, q.p * (a.finished - 1) AS r
  FROM agg a CROSS JOIN (VALUES (1, 0.5::float8), (2, 0.95::float8), (3, 0.99::float8)) AS q(i, p)
  WHERE a.finished > 0
),
at AS (
  SELECT rk."window", rk.workflow_id, rk.i, rk.r, j.side,
         CASE WHEN j.j = 0 THEN rk.mn
              WHEN j.j = rk.n - 1 THEN rk.mx
              ELSE pg_catalog.float8smaller(pg_catalog.float8larger(@schema@.dd_value(hc.k), rk.mn), rk.mx) END AS v
  FROM ranks rk
  CROSS JOIN LATERAL (VALUES (0, pg_catalog.floor(rk.r)), (1, pg_catalog.ceil(rk.r))) AS j(side, j)
  JOIN hc ON hc."window" = rk."window" AND hc.workflow_id = rk.workflow_id
         AND j.j >= hc.upto - hc.c AND j.j < hc.upto
),
pct AS (
  SELECT x."window", x.workflow_id,
         max(x.v) FILTER (WHERE x.i = 1) AS p50, max(x.v) FILTER (WHERE x.i = 2) AS p95,
         max(x.v) FILTER (WHERE x.i = 3) AS p99
  FROM (
    SELECT at."window", at.workflow_id, at.i,
           max(at.v) FILTER (WHERE at.side = 0)
             + (max(at.r) - pg_catalog.floor(max(at.r)))
               * (max(at.v) FILTER (WHERE at.side = 1) - max(at.v) FILTER (WHERE at.side = 0)) AS v
    FROM at GROUP BY 1, 2, 3
  ) x
  GROUP BY 1, 2
)
SELECT d.id AS workflow_id,
       w."window",
       d.project_id,
       p.name AS project_name,
       d.slug,
       d.name,
       d.version,
       d.status,
       coalesce(a.runs, 0)::bigint AS execution_count,
       coalesce(a.succeeded, 0)::bigint AS succeeded,
       coalesce(a.failed, 0)::bigint AS failed,
       coalesce(a.canceled, 0)::bigint AS canceled,
       coalesce(a.running, 0)::bigint AS running,
       (a.succeeded::float8 / nullif(a.succeeded + a.failed + a.canceled, 0)::float8) AS success_rate,
       (a.failed::float8 / nullif(a.succeeded + a.failed + a.canceled, 0)::float8) AS failure_rate,
       (a.dur_sum_ms / nullif(a.finished, 0))::float8 AS average_duration,
       pc.p50 AS p50_duration,
       pc.p95 AS p95_duration,
       pc.p99 AS p99_duration,
       a.mn::float8 AS min_duration,
       a.mx::float8 AS max_duration,
       coalesce(a.dur_sum_ms / 1000
                + a.open_runs * EXTRACT(epoch FROM (SELECT c.now FROM clock c))
                - a.open_started_epoch, 0)::float8 AS resource_consumption,
       a.last_failure_at,
       (SELECT c.now FROM clock c) AS last_updated
FROM public.workflow_definitions d
CROSS JOIN (VALUES ('1h'), ('24h'), ('7d'), ('30d')) AS w("window")
JOIN public.projects p ON p.id = d.project_id
LEFT JOIN agg a ON a.workflow_id = d.id AND a."window" = w."window"
LEFT JOIN pct pc ON pc.workflow_id = d.id AND pc."window" = w."window"
WITH NO DATA;

CREATE UNIQUE INDEX mv_workflow_metrics_workflow_window_idx
  ON @schema@.mv_workflow_metrics (workflow_id, "window");
CREATE INDEX mv_workflow_metrics_last_updated_idx
  ON @schema@.mv_workflow_metrics (last_updated);
CREATE INDEX mv_workflow_metrics_window_idx
  ON @schema@.mv_workflow_metrics ("window");

-- Per workflow and UTC hour of started_at, from the hour holding
-- clock - 720 hours up to the clock; only hours with runs. A plain view, not
-- a materialized one: it is the hourly rollup itself (whole hours, as of the
-- last refresh, exact percentile_cont computed when the hour was last
-- recomputed) plus the hour holding the clock from the runs. As a
-- materialized view, its ~one row per workflow and hour (500k rows for 1M
-- runs a month over 1,000 workflows) would be rewritten and diffed by every
-- refresh, which alone costs more than an incremental refresh may.
CREATE VIEW @schema@.mv_workflow_metrics_hourly AS
WITH clock AS MATERIALIZED (
  SELECT @schema@.clock() AS now
)
SELECT h.workflow_id, h.bucket AS hour, h.runs, h.succeeded, h.failed, h.canceled,
       h.p50_ms AS p50_duration, h.p95_ms AS p95_duration
FROM @schema@.rollup_runs_hour h
WHERE h.bucket >= @schema@.rollup_horizon((SELECT c.now FROM clock c))
  AND h.bucket < pg_catalog.date_trunc('hour', (SELECT c.now FROM clock c), 'UTC')
UNION ALL
SELECT r.workflow_id,
       pg_catalog.date_trunc('hour', r.started_at, 'UTC') AS hour,
       count(*)::bigint AS runs,
       count(*) FILTER (WHERE r.status = 'succeeded')::bigint AS succeeded,
       count(*) FILTER (WHERE r.status = 'failed')::bigint AS failed,
       count(*) FILTER (WHERE r.status = 'canceled')::bigint AS canceled,
       percentile_cont(0.5::float8) WITHIN GROUP (ORDER BY pg_catalog.date_part('epoch', r.finished_at - r.started_at) * 1000)
         FILTER (WHERE r.finished_at IS NOT NULL) AS p50_duration,
       percentile_cont(0.95::float8) WITHIN GROUP (ORDER BY pg_catalog.date_part('epoch', r.finished_at - r.started_at) * 1000)
         FILTER (WHERE r.finished_at IS NOT NULL) AS p95_duration
FROM public.workflow_runs r
WHERE r.started_at >= pg_catalog.date_trunc('hour', (SELECT c.now FROM clock c), 'UTC')
  AND r.started_at <= (SELECT c.now FROM clock c)
GROUP BY r.workflow_id, pg_catalog.date_trunc('hour', r.started_at, 'UTC');

-- Per workflow, node and window: step executions and latency (see the top
-- of this file and 030_rollup.sql for the pairing).
CREATE MATERIALIZED VIEW @schema@.mv_step_metrics AS
WITH clock AS MATERIALIZED (
  SELECT @schema@.clock() AS now
),
b AS MATERIALIZED (
  SELECT w.* FROM @schema@.window_bounds((SELECT c.now FROM clock c)) w
),
-- The runs of the partial hours at both ends of each window...
rr AS MATERIALIZED (
  SELECT b."window", r.id, r.workflow_id, r.started_at
  FROM b CROSS JOIN LATERAL (
    SELECT x.id, x.workflow_id, x.started_at FROM public.workflow_runs x
    WHERE x.started_at > b.lo AND x.started_at < b.h0
    UNION ALL
    SELECT x.id, x.workflow_id, x.started_at FROM public.workflow_runs x
    WHERE x.started_at >= b.h1 AND x.started_at <= b.hi) r
),
er AS MATERIALIZED (
  SELECT DISTINCT rr.id, rr.started_at FROM rr
),
-- ... and their step executions, probed per run through the (run_id, ts)
-- indexes. ts >= the oldest edge prunes the event partitions (a scalar
-- subquery: an InitPlan, evaluated before pruning).
ev AS (
  SELECT x.*
  FROM er CROSS JOIN LATERAL (
    SELECT e.run_id, e.ts, e.type,
           e.payload -> 'node' ->> 'id' AS node_id,
           e.payload -> 'node' ->> 'type' AS node_type,
           pg_catalog.lead(e.type) OVER w AS next_type,
           pg_catalog.lead(e.ts) OVER w AS next_ts,
           pg_catalog.lead(e.payload -> 'node' ->> 'type') OVER w AS next_node_type
    FROM public.workflow_events e
    WHERE e.run_id = er.id
      AND e.ts >= (SELECT pg_catalog.date_trunc('hour', min(b.lo), 'UTC') FROM b)
      AND e.ts <= (SELECT c.now FROM clock c)
      AND e.ts >= pg_catalog.date_trunc('hour', er.started_at, 'UTC')
      AND e.type IN ('step_started', 'step_succeeded', 'step_failed')
    WINDOW w AS (PARTITION BY e.payload -> 'node' ->> 'id' ORDER BY e.ts, e.id)) x
),
raw AS MATERIALIZED (
  SELECT rr."window", rr.workflow_id, ev.node_id,
         coalesce(ev.node_type, ev.next_node_type) AS node_type,
         ev.next_type = 'step_failed' AS failed,
         ev.next_ts AS ended_at,
         pg_catalog.date_part('epoch', ev.next_ts - ev.ts) * 1000 AS lat
  FROM ev JOIN rr ON rr.id = ev.run_id
  WHERE ev.type = 'step_started' AND ev.next_type IN ('step_succeeded', 'step_failed')
    AND ev.node_id IS NOT NULL
),
parts AS MATERIALIZED (
  SELECT b."window", d.workflow_id, d.node_id, d.node_type, d.executions, d.failures,
         d.lat_min_ms, d.lat_max_ms, d.last_failure_at, d.hist_k, d.hist_c
  FROM b JOIN @schema@.rollup_steps_day d ON d.bucket >= b.d0 AND d.bucket < b.d1
  UNION ALL
  SELECT b."window", h.workflow_id, h.node_id, h.node_type, h.executions, h.failures,
         h.lat_min_ms, h.lat_max_ms, h.last_failure_at, h.hist_k, h.hist_c
  FROM b JOIN @schema@.rollup_steps_hour h
    ON (h.bucket >= b.h0 AND h.bucket < b.d0) OR (h.bucket >= b.d1 AND h.bucket < b.h1)
),
agg AS (
  SELECT u."window", u.workflow_id, u.node_id, max(u.node_type) AS node_type,
         sum(u.executions) AS executions, sum(u.failures) AS failures,
         min(u.mn) AS mn, max(u.mx) AS mx, max(u.last_failure_at) AS last_failure_at
  FROM (
    SELECT p."window", p.workflow_id, p.node_id, p.node_type, p.executions, p.failures,
           p.lat_min_ms AS mn, p.lat_max_ms AS mx, p.last_failure_at
    FROM parts p
    UNION ALL
    SELECT r."window", r.workflow_id, r.node_id, r.node_type, 1, r.failed::int, r.lat, r.lat,
           CASE WHEN r.failed THEN r.ended_at END
    FROM raw r
  ) u
  GROUP BY 1, 2, 3
),
hist AS (
  SELECT u."window", u.workflow_id, u.node_id, u.k, sum(u.c) AS c
  FROM (
    SELECT p."window", p.workflow_id, p.node_id, x.k, x.c
    FROM parts p CROSS JOIN LATERAL unnest(p.hist_k, p.hist_c) AS x(k, c)
    UNION ALL
    SELECT r."window", r.workflow_id, r.node_id, @schema@.dd_key(r.lat), 1 FROM raw r
  ) u
  GROUP BY 1, 2, 3, 4
),
hc AS (
  SELECT h."window", h.workflow_id, h.node_id, h.k, h.c::float8 AS c,
         (sum(h.c) OVER (PARTITION BY h."window", h.workflow_id, h.node_id ORDER BY h.k))::float8 AS upto
  FROM hist h
),
ranks AS (
  SELECT a."window", a.workflow_id, a.node_id, a.executions AS n, a.mn, a.mx, q.i, q.p * (a.executions - 1) AS r
  FROM agg a CROSS JOIN (VALUES (1, 0.5::float8), (2, 0.95::float8)) AS q(i, p)
),
at AS (
  SELECT rk."window", rk.workflow_id, rk.node_id, rk.i, rk.r, j.side,
         CASE WHEN j.j = 0 THEN rk.mn
              WHEN j.j = rk.n - 1 THEN rk.mx
              ELSE pg_catalog.float8smaller(pg_catalog.float8larger(@schema@.dd_value(hc.k), rk.mn), rk.mx) END AS v
  FROM ranks rk
  CROSS JOIN LATERAL (VALUES (0, pg_catalog.floor(rk.r)), (1, pg_catalog.ceil(rk.r))) AS j(side, j)
  JOIN hc ON hc."window" = rk."window" AND hc.workflow_id = rk.workflow_id AND hc.node_id = rk.node_id
         AND j.j >= hc.upto - hc.c AND j.j < hc.upto
),
pct AS (
  SELECT x."window", x.workflow_id, x.node_id,
         max(x.v) FILTER (WHERE x.i = 1) AS p50, max(x.v) FILTER (WHERE x.i = 2) AS p95
  FROM (
    SELECT at."window", at.workflow_id, at.node_id, at.i,
           max(at.v) FILTER (WHERE at.side = 0)
             + (max(at.r) - pg_catalog.floor(max(at.r)))
               * (max(at.v) FILTER (WHERE at.side = 1) - max(at.v) FILTER (WHERE at.side = 0)) AS v
    FROM at GROUP BY 1, 2, 3, 4
  ) x
  GROUP BY 1, 2, 3
)
SELECT a.workflow_id,
       a.node_id,
       a.node_type,
       a."window",
       a.executions::bigint AS executions,
       a.failures::bigint AS failures,
       a.failures::float8 / a.executions::float8 AS failure_rate,
       pc.p50 AS p50_latency,
       pc.p95 AS p95_latency,
       a.last_failure_at
FROM agg a
LEFT JOIN pct pc ON pc."window" = a."window" AND pc.workflow_id = a.workflow_id AND pc.node_id = a.node_id
WHERE a.executions > 0
WITH NO DATA;

CREATE UNIQUE INDEX mv_step_metrics_workflow_node_window_idx
  ON @schema@.mv_step_metrics (workflow_id, node_id, "window");

-- For API callers: the workflow metrics of one window, only for the projects
-- the caller owns (as in 008_tenant_project_ids; it returns the view's row
-- type, so it is re-created with the view).
CREATE FUNCTION @schema@.tenant_workflow_metrics(p_window text) RETURNS SETOF @schema@.mv_workflow_metrics
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT m.* FROM @schema@.mv_workflow_metrics m
  WHERE m."window" = p_window
    AND m.project_id IN (SELECT @schema@.tenant_project_ids())
$meshtop$;

-- Grants as in 005_access.
REVOKE ALL ON @schema@.mv_workflow_metrics, @schema@.mv_workflow_metrics_hourly, @schema@.mv_step_metrics FROM PUBLIC;
REVOKE ALL ON FUNCTION @schema@.tenant_workflow_metrics(text) FROM PUBLIC;
DO $meshtop$
DECLARE
  s text := pg_catalog.quote_ident(@schema@.schema_name());
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      EXECUTE pg_catalog.format('REVOKE ALL ON %1$s.mv_workflow_metrics, %1$s.mv_workflow_metrics_hourly, %1$s.mv_step_metrics FROM %2$I', s, r);
    END IF;
  END LOOP;
END
$meshtop$;
GRANT SELECT ON @schema@.mv_workflow_metrics, @schema@.mv_workflow_metrics_hourly, @schema@.mv_step_metrics TO meshtop_reader;
GRANT EXECUTE ON FUNCTION @schema@.tenant_workflow_metrics(text) TO meshtop_tenant;
DO $meshtop$
DECLARE
  g text;
BEGIN
  FOR g IN SELECT t.grantee FROM @schema@.meshtop_tenant_grants t LOOP
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %I.tenant_workflow_metrics(text) TO %s', @schema@.schema_name(), g);
  END LOOP;
END
$meshtop$;
DROP TABLE @schema@.meshtop_tenant_grants;
