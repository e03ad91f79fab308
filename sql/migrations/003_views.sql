-- 003_views: the three materialized views.
--
-- Scaling choice: windowed views over the last 30 days only.
--   Every view reads just the runs started in the last 720 hours before
--   @schema@.clock() (through meshtop_workflow_runs_started_at_idx) and the
--   step events of those runs (workflow_events is partitioned by month; the
--   ts >= clock - 720 hours condition lets the executor prune it to at most
--   two partitions). Percentiles are exact (percentile_cont over the window's
--   rows). A refresh therefore costs time proportional to the runs of the last
--   30 days, independent of how much history there is: 10M runs of history at
--   the same run rate as 1M refresh in about the same time.
-- The alternative we did not take: an incremental hourly rollup (append-only
--   buckets updated from new runs) with mergeable sketches (t-digest /
--   DDSketch) for percentiles. It would make each refresh proportional to the
--   runs since the last one, but percentiles would be approximate with a
--   stated error, late updates (a run finishing hours after it started) need
--   re-aggregation of old buckets, and Supabase ships neither the sketch
--   extensions nor pg_ivm / continuous aggregates. At MeshHook's run rates a
--   30-day exact recomputation takes seconds, so exactness won.
--
-- Conventions shared by all views:
--   * A run belongs to a window W when clock - W < started_at <= clock
--     (windows '1h', '24h', '7d', '30d' = 1, 24, 168, 720 hours; written in
--     hours so that daylight-saving changes in the session TimeZone cannot
--     stretch a day).
--   * duration = finished_at - started_at in milliseconds, for runs whose
--     finished_at is not null (succeeded, failed and canceled runs).
--   * Every table and function is schema-qualified: PostgreSQL 17 runs
--     REFRESH with search_path = pg_catalog, pg_temp.
--   * Created WITH NO DATA so the install is fast on big databases; the first
--     refresh is a plain one, later ones are CONCURRENTLY (which needs the
--     unique index on plain columns created below).
--   * Only workflow_events.payload->'node'->>'id' / 'type' are read from event
--     payloads: step_failed payloads may carry response bodies (personal data)
--     and never reach a view.

-- Per workflow definition (one row per version) and window. Every definition
-- appears in every window, with zero counts and null rates/durations when it
-- had no runs, so the dashboard lists idle workflows too.
--   execution_count      all runs started in the window, whatever their status
--   succeeded/failed/canceled  runs in the window with that status
--   running              runs with status running or paused
--   success_rate         succeeded / (succeeded + failed + canceled);
--   failure_rate         failed / (succeeded + failed + canceled); both null
--                        when nothing completed
--   *_duration           over finished runs (ms); average = mean, p50/p95/p99
--                        = percentile_cont (linear interpolation between the
--                        two nearest ranks), min/max
--   resource_consumption run-seconds: finished runs' durations plus the time
--                        still-running/paused runs have been open up to the
--                        clock (a proxy for worker time; MeshHook records no
--                        CPU or memory per run)
--   last_failure_at      latest finished_at of a failed run in the window
--                        (started_at when finished_at is missing)
--   last_updated         the clock when the view was refreshed
CREATE MATERIALIZED VIEW @schema@.mv_workflow_metrics AS
WITH clock AS (
  SELECT @schema@.clock() AS now
),
windows ("window", span) AS (
  VALUES ('1h', interval '1 hour'), ('24h', interval '24 hours'),
         ('7d', interval '168 hours'), ('30d', interval '720 hours')
),
runs AS (
  -- The runs of the widest window; the started_at index makes this a range
  -- scan.
  SELECT r.workflow_id, r.status, r.started_at, r.finished_at,
         pg_catalog.date_part('epoch', r.finished_at - r.started_at) * 1000 AS duration_ms,
         CASE
           WHEN r.finished_at IS NOT NULL THEN pg_catalog.date_part('epoch', r.finished_at - r.started_at)
           WHEN r.status IN ('running', 'paused') THEN greatest(pg_catalog.date_part('epoch', (SELECT c.now FROM clock c) - r.started_at), 0)
           ELSE 0
         END AS run_seconds
  FROM public.workflow_runs r
  WHERE r.started_at > (SELECT c.now FROM clock c) - interval '720 hours'
    AND r.started_at <= (SELECT c.now FROM clock c)
),
agg AS (
  SELECT runs.workflow_id, w."window",
         count(*) AS execution_count,
         count(*) FILTER (WHERE runs.status = 'succeeded') AS succeeded,
         count(*) FILTER (WHERE runs.status = 'failed') AS failed,
         count(*) FILTER (WHERE runs.status = 'canceled') AS canceled,
         count(*) FILTER (WHERE runs.status IN ('running', 'paused')) AS running,
         avg(runs.duration_ms) AS average_duration,
         percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY runs.duration_ms)
           FILTER (WHERE runs.finished_at IS NOT NULL) AS pct,
         min(runs.duration_ms) AS min_duration,
         max(runs.duration_ms) AS max_duration,
         sum(runs.run_seconds) AS resource_consumption,
         max(coalesce(runs.finished_at, runs.started_at)) FILTER (WHERE runs.status = 'failed') AS last_failure_at
  FROM runs
  JOIN windows w ON runs.started_at > (SELECT now FROM clock) - w.span
  GROUP BY runs.workflow_id, w."window"
)
SELECT d.id AS workflow_id,
       w."window",
       d.project_id,
       p.name AS project_name,
       d.slug,
       d.name,
       d.version,
       d.status,
       coalesce(a.execution_count, 0)::bigint AS execution_count,
       coalesce(a.succeeded, 0)::bigint AS succeeded,
       coalesce(a.failed, 0)::bigint AS failed,
       coalesce(a.canceled, 0)::bigint AS canceled,
       coalesce(a.running, 0)::bigint AS running,
       (a.succeeded::float8 / nullif(a.succeeded + a.failed + a.canceled, 0)) AS success_rate,
       (a.failed::float8 / nullif(a.succeeded + a.failed + a.canceled, 0)) AS failure_rate,
       a.average_duration::float8 AS average_duration,
       a.pct[1] AS p50_duration,
       a.pct[2] AS p95_duration,
       a.pct[3] AS p99_duration,
       a.min_duration::float8 AS min_duration,
       a.max_duration::float8 AS max_duration,
       coalesce(a.resource_consumption, 0)::float8 AS resource_consumption,
       a.last_failure_at,
       (SELECT now FROM clock) AS last_updated
FROM public.workflow_definitions d
CROSS JOIN windows w
JOIN public.projects p ON p.id = d.project_id
LEFT JOIN agg a ON a.workflow_id = d.id AND a."window" = w."window"
WITH NO DATA;

CREATE UNIQUE INDEX mv_workflow_metrics_workflow_window_idx
  ON @schema@.mv_workflow_metrics (workflow_id, "window");
CREATE INDEX mv_workflow_metrics_last_updated_idx
  ON @schema@.mv_workflow_metrics (last_updated);
-- The dashboard reads one window for all workflows.
CREATE INDEX mv_workflow_metrics_window_idx
  ON @schema@.mv_workflow_metrics ("window");

-- Per workflow and hour of started_at (UTC hours), for trend charts, from
-- the hour containing clock - 720 hours up to the clock. Only hours with runs
-- have rows. Percentiles are computed per hour from the runs of that hour and
-- must never be averaged into longer periods (ordered-set aggregates do not
-- merge); mv_workflow_metrics has the exact per-window percentiles.
CREATE MATERIALIZED VIEW @schema@.mv_workflow_metrics_hourly AS
WITH clock AS (
  SELECT @schema@.clock() AS now
)
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
WHERE r.started_at >= pg_catalog.date_trunc('hour', (SELECT c.now FROM clock c) - interval '720 hours', 'UTC')
  AND r.started_at <= (SELECT c.now FROM clock c)
GROUP BY r.workflow_id, pg_catalog.date_trunc('hour', r.started_at, 'UTC')
WITH NO DATA;

CREATE UNIQUE INDEX mv_workflow_metrics_hourly_workflow_hour_idx
  ON @schema@.mv_workflow_metrics_hourly (workflow_id, hour);

-- Per workflow, node and window: step executions and their latency.
--   A step execution is a step_started event of a (run, node id) whose next
--   event of that (run, node id), in ts order, is its step_succeeded or
--   step_failed. Starts without a terminal event yet (steps in progress, or a
--   start superseded by a retry's start) are not executions. Windows are by
--   the run's started_at, as in mv_workflow_metrics; events after the clock
--   are ignored.
--   executions   paired step executions
--   failures     executions that ended with step_failed
--   failure_rate failures / executions
--   p50/p95_latency  percentile_cont of (terminal ts - started ts) in ms
--   last_failure_at  latest step_failed ts
--   node_type    payload->'node'->>'type' of the start (or, failing that, of
--                the terminal event); the largest one seen, should a node id
--                ever change type
-- Cost: this is the most expensive view, since every step event of the last
-- 30 days is read (events of older runs are pruned by partition). It is
-- written for one pass: one sort of the step events by (run, node, ts) for
-- lead(), one hash join to the runs of the window, and one group per
-- (workflow, node) in which each window's percentiles come from a single
-- ordered-set aggregate (an array of fractions) restricted with FILTER,
-- instead of joining every execution to each window and sorting again. Only
-- the node id and type are read from payloads (payloads may hold personal
-- data). refresh_run raises work_mem (config refresh_work_mem) so the sorts
-- stay in memory.
CREATE MATERIALIZED VIEW @schema@.mv_step_metrics AS
WITH clock AS MATERIALIZED (
  SELECT @schema@.clock() AS now
),
runs AS (
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
