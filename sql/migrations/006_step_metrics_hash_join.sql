-- 006_step_metrics_hash_join: mv_step_metrics joins its step executions to
-- the window's runs by hash instead of probing workflow_runs' primary key.
--
-- Why: in 003 the planner cannot estimate how many step executions the lead()
-- pairing yields (a filter on window-function output; it guesses a handful)
-- and so joins each of them to workflow_runs through the uuid primary key: one
-- index probe and one heap fetch per execution, ~400k per refresh for 100k
-- runs a month. Those probes land anywhere in the primary key, so their cost
-- grows with the whole history, not with the window: on the same data laid
-- out by time, 003's step view took 1.1-1.3x as long over a 10M-run history
-- as over a 1M-run one with the same runs per hour. Reading the window's runs
-- once (a MATERIALIZED CTE, through meshtop_workflow_runs_started_at_idx)
-- leaves the planner no index to probe, so it hashes one side and streams the
-- other: the same time on both histories, and ~20% less than 003's plan even
-- on the smaller one. The contents are unchanged (the same definition
-- otherwise; the tests compare it with sql/queries/live_step_metrics.sql).
--
-- A materialized view's query cannot be replaced in place: the view is
-- dropped and created again WITH NO DATA, so its next refresh is a plain one
-- (refresh_run checks pg_class.relispopulated), and its grants are restated
-- as in 005_access.

DROP MATERIALIZED VIEW @schema@.mv_step_metrics;

CREATE MATERIALIZED VIEW @schema@.mv_step_metrics AS
WITH clock AS MATERIALIZED (
  SELECT @schema@.clock() AS now
),
-- MATERIALIZED: the window's runs are read once through the started_at index
-- and joined to the step executions by hash (see the header).
runs AS MATERIALIZED (
  SELECT r.id, r.workflow_id, r.started_at
  FROM public.workflow_runs r
  WHERE r.started_at > (SELECT c.now FROM clock c) - interval '720 hours'
    AND r.started_at <= (SELECT c.now FROM clock c)
),
events AS (
  -- ts >= clock - 720 hours lets the executor prune workflow_events to the
  -- monthly partitions of the window (events of a run are not older than the
  -- run). The clock is compared as a scalar subquery (an InitPlan evaluated
  -- once), not joined: a joined value would defeat partition pruning.
  SELECT e.run_id, e.ts, e.type,
         e.payload -> 'node' ->> 'id' AS node_id,
         e.payload -> 'node' ->> 'type' AS node_type,
         pg_catalog.lead(e.type) OVER w AS next_type,
         pg_catalog.lead(e.ts) OVER w AS next_ts,
         pg_catalog.lead(e.payload -> 'node' ->> 'type') OVER w AS next_node_type
  FROM public.workflow_events e
  WHERE e.ts >= (SELECT c.now FROM clock c) - interval '720 hours'
    AND e.ts <= (SELECT c.now FROM clock c)
    AND e.type IN ('step_started', 'step_succeeded', 'step_failed')
  WINDOW w AS (PARTITION BY e.run_id, e.payload -> 'node' ->> 'id' ORDER BY e.ts, e.id)
),
steps AS (
  SELECT runs.workflow_id, runs.started_at AS run_started_at, events.node_id,
         coalesce(events.node_type, events.next_node_type) AS node_type,
         events.next_type = 'step_failed' AS failed,
         events.next_ts AS ended_at,
         pg_catalog.date_part('epoch', events.next_ts - events.ts) * 1000 AS latency_ms
  FROM events
  JOIN runs ON runs.id = events.run_id
  WHERE events.type = 'step_started'
    AND events.next_type IN ('step_succeeded', 'step_failed')
    AND events.node_id IS NOT NULL
),
per_node AS (
  SELECT steps.workflow_id, steps.node_id, max(steps.node_type) AS node_type,
    -- [1h, 24h, 7d, 30d]
    ARRAY[count(*) FILTER (WHERE steps.run_started_at > c.now - interval '1 hour'),
          count(*) FILTER (WHERE steps.run_started_at > c.now - interval '24 hours'),
          count(*) FILTER (WHERE steps.run_started_at > c.now - interval '168 hours'),
          count(*)] AS executions,
    ARRAY[count(*) FILTER (WHERE steps.failed AND steps.run_started_at > c.now - interval '1 hour'),
          count(*) FILTER (WHERE steps.failed AND steps.run_started_at > c.now - interval '24 hours'),
          count(*) FILTER (WHERE steps.failed AND steps.run_started_at > c.now - interval '168 hours'),
          count(*) FILTER (WHERE steps.failed)] AS failures,
    ARRAY[max(steps.ended_at) FILTER (WHERE steps.failed AND steps.run_started_at > c.now - interval '1 hour'),
          max(steps.ended_at) FILTER (WHERE steps.failed AND steps.run_started_at > c.now - interval '24 hours'),
          max(steps.ended_at) FILTER (WHERE steps.failed AND steps.run_started_at > c.now - interval '168 hours'),
          max(steps.ended_at) FILTER (WHERE steps.failed)] AS last_failure_at,
    percentile_cont(ARRAY[0.5, 0.95]::float8[]) WITHIN GROUP (ORDER BY steps.latency_ms)
      FILTER (WHERE steps.run_started_at > c.now - interval '1 hour') AS p_1h,
    percentile_cont(ARRAY[0.5, 0.95]::float8[]) WITHIN GROUP (ORDER BY steps.latency_ms)
      FILTER (WHERE steps.run_started_at > c.now - interval '24 hours') AS p_24h,
    percentile_cont(ARRAY[0.5, 0.95]::float8[]) WITHIN GROUP (ORDER BY steps.latency_ms)
      FILTER (WHERE steps.run_started_at > c.now - interval '168 hours') AS p_7d,
    percentile_cont(ARRAY[0.5, 0.95]::float8[]) WITHIN GROUP (ORDER BY steps.latency_ms) AS p_30d
  FROM steps CROSS JOIN clock c
  GROUP BY steps.workflow_id, steps.node_id
)
SELECT n.workflow_id,
       n.node_id,
       n.node_type,
       w."window",
       n.executions[w.i] AS executions,
       n.failures[w.i] AS failures,
       n.failures[w.i]::float8 / n.executions[w.i] AS failure_rate,
       (CASE w.i WHEN 1 THEN n.p_1h WHEN 2 THEN n.p_24h WHEN 3 THEN n.p_7d ELSE n.p_30d END)[1] AS p50_latency,
       (CASE w.i WHEN 1 THEN n.p_1h WHEN 2 THEN n.p_24h WHEN 3 THEN n.p_7d ELSE n.p_30d END)[2] AS p95_latency,
       n.last_failure_at[w.i] AS last_failure_at
FROM per_node n
CROSS JOIN (VALUES (1, '1h'), (2, '24h'), (3, '7d'), (4, '30d')) AS w(i, "window")
-- A window without executions has no row (as for an unknown node).
WHERE n.executions[w.i] > 0
WITH NO DATA;

CREATE UNIQUE INDEX mv_step_metrics_workflow_node_window_idx
  ON @schema@.mv_step_metrics (workflow_id, node_id, "window");

-- As in 005_access: nobody but meshtop_reader (and the owner) reads it, even
-- in a schema with default privileges for Supabase's API roles.
DO $meshtop$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['public', 'anon', 'authenticated'] LOOP
    IF r = 'public' OR EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      IF r <> 'public' THEN
        r := pg_catalog.quote_ident(r);
      END IF;
      EXECUTE pg_catalog.format('REVOKE ALL ON %s.mv_step_metrics FROM %s',
        pg_catalog.quote_ident(@schema@.schema_name()), r);
    END IF;
  END LOOP;
END
$meshtop$;

GRANT SELECT ON @schema@.mv_step_metrics TO meshtop_reader;
