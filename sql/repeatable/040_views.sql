-- 040_views: the three views over the rollup. Repeatable: when this file
-- changes, the views are dropped and created again in one transaction (their
-- grants and tenant_workflow_metrics, which returns mv_workflow_metrics' row
-- type, with them); a re-created materialized view is unpopulated until its
-- next refresh, which is then a plain one.
--
-- Meanings are those of docs/METRICS.md and sql/queries/live_*.sql (the
-- oracles), unchanged since 003: a run is in window W when
-- clock - W < started_at <= clock; durations are finished_at - started_at in
-- ms; a step execution is a step_started through its final outcome (since
-- 016: step_executions in 030_rollup.sql). What changed is where the numbers come
-- from: the window cells (035_cells.sql), kept up to date by each refresh
-- from the rollup (whole UTC days and hours: exact counts, sums, min/max,
-- last failure; histograms for percentiles) and the raw partial hours at
-- both ends of each window. Percentiles are therefore within 0.9% of
-- percentile_cont, every other number is exact. The two materialized views
-- read only the cells, so their REFRESH ... CONCURRENTLY costs a few
-- thousand rows, whatever the window's volume.
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
-- in every window (zero counts, null rates and durations when idle). The
-- numbers are the run cells (035_cells.sql) as of
-- rollup_state.runs_cells_clock, which is also last_updated: the view adds
-- the definition's columns and the run-seconds of open runs at that clock.
CREATE MATERIALIZED VIEW @schema@.mv_workflow_metrics AS
WITH clock AS MATERIALIZED (
  SELECT coalesce(s.runs_cells_clock, @schema@.clock()) AS now FROM @schema@.rollup_state s
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
       a.p50_ms AS p50_duration,
       a.p95_ms AS p95_duration,
       a.p99_ms AS p99_duration,
       a.dur_min_ms AS min_duration,
       a.dur_max_ms AS max_duration,
       coalesce(a.dur_sum_ms / 1000
                + a.open_runs * EXTRACT(epoch FROM c.now)
                - a.open_started_epoch, 0)::float8 AS resource_consumption,
       a.last_failure_at,
       c.now AS last_updated
FROM public.workflow_definitions d
CROSS JOIN (VALUES ('1h'), ('24h'), ('7d'), ('30d')) AS w("window")
CROSS JOIN clock c
JOIN public.projects p ON p.id = d.project_id
LEFT JOIN @schema@.window_runs a ON a.workflow_id = d.id AND a."window" = w."window"
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
-- recomputed) up to the hour of the last refresh's clock, plus the hours
-- since (the hour holding the clock, and any hour that ended since the last
-- refresh, which builds it) from the runs. As a
-- materialized view, its ~one row per workflow and hour (500k rows for 1M
-- runs a month over 1,000 workflows) would be rewritten and diffed by every
-- refresh, which alone costs more than an incremental refresh may.
CREATE VIEW @schema@.mv_workflow_metrics_hourly AS
WITH clock AS MATERIALIZED (
  SELECT c.now, pg_catalog.date_trunc('hour', coalesce(s.cells_clock, c.now), 'UTC') AS built_to
  FROM (SELECT @schema@.clock() AS now) c CROSS JOIN @schema@.rollup_state s
)
SELECT h.workflow_id, h.bucket AS hour, h.runs, h.succeeded, h.failed, h.canceled,
       h.p50_ms AS p50_duration, h.p95_ms AS p95_duration
FROM @schema@.rollup_runs_hour h
WHERE h.bucket >= @schema@.rollup_horizon((SELECT c.now FROM clock c))
  AND h.bucket < (SELECT LEAST(c.built_to, pg_catalog.date_trunc('hour', c.now, 'UTC')) FROM clock c)
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
WHERE r.started_at >= (SELECT GREATEST(LEAST(c.built_to, pg_catalog.date_trunc('hour', c.now, 'UTC')),
                                                  @schema@.rollup_horizon(c.now)) FROM clock c)
  AND r.started_at <= (SELECT c.now FROM clock c)
GROUP BY r.workflow_id, pg_catalog.date_trunc('hour', r.started_at, 'UTC');

-- Per workflow, node and window: step executions and latency, the window
-- cells of 035_cells.sql. A step execution is a node's step_started in a run
-- through its final outcome (a step_succeeded, or a step_failed no retry of
-- that node follows; step_executions in 030_rollup.sql); failures are
-- executions that finally failed; the attempts columns count its
-- step_succeeded/step_failed events (docs/METRICS.md).
CREATE MATERIALIZED VIEW @schema@.mv_step_metrics AS
SELECT a.workflow_id,
       a.node_id,
       a.node_type,
       a."window",
       a.executions::bigint AS executions,
       a.failures::bigint AS failures,
       a.failures::float8 / a.executions::float8 AS failure_rate,
       a.p50_ms AS p50_latency,
       a.p95_ms AS p95_latency,
       a.last_failure_at,
       a.attempts::bigint AS attempts,
       a.attempts::float8 / a.executions::float8 AS avg_attempts,
       a.attempts_max AS max_attempts,
       a.retried::bigint AS retried,
       a.retried::float8 / a.executions::float8 AS retry_rate,
       a.failed_attempts::bigint AS failed_attempts,
       a.failed_attempts::float8 / nullif(a.attempts, 0)::float8 AS attempt_failure_rate,
       a.http_2xx::bigint AS http_2xx,
       a.http_4xx::bigint AS http_4xx,
       a.http_5xx::bigint AS http_5xx,
       a.http_other::bigint AS http_other,
       a.http_none::bigint AS http_none
FROM @schema@.window_steps a
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
