-- live_step_metrics: mv_step_metrics computed straight from workflow_runs and
-- workflow_events (the oracle of the tests).
--   $1 timestamptz  the clock
-- A step execution (docs/METRICS.md): a node's step_started in a run through
-- its final outcome. Per (run, node id) in (ts, id) order, events at or
-- before $1: each step_started opens an execution, which lasts until the
-- node's next step_started; its attempts are its step_succeeded and
-- step_failed events. It is an execution once its last attempt is a
-- step_succeeded, or a step_failed that is final: payload.attempt >= 5 or
-- absent, or the node started again, or the run is no longer running or
-- paused. Latency: step_started -> that last attempt. An attempt's HTTP
-- status is that of the http_attempted event right before its outcome (none:
-- a step_failed with no http_attempted right before it). Windows by the
-- run's started_at, one row per window with executions. Only the node (id,
-- type), attempt and status are read from payloads.
-- Written differently from the views on purpose (each start's next start,
-- attempts and each attempt's previous event looked up through the
-- (run_id, ts) index, no window functions), so the two check each other.
WITH ev AS MATERIALIZED (
  SELECT e.run_id, e.id, e.ts, e.type, e.payload,
         CASE WHEN jsonb_typeof(e.payload -> 'node') = 'string' THEN e.payload ->> 'node'
              WHEN jsonb_typeof(e.payload -> 'node') = 'object' THEN e.payload #>> '{node,id}' END AS node_id
  FROM public.workflow_events e
  WHERE e.type IN ('step_started', 'http_attempted', 'step_succeeded', 'step_failed') AND e.ts <= $1::timestamptz
),
-- Each start, with the node's next start in the run, if any.
starts AS (
  SELECT s.run_id, s.id, s.ts, s.node_id, s.payload #>> '{node,type}' AS node_type, n.ts AS next_ts, n.id AS next_id
  FROM ev s
  LEFT JOIN LATERAL (
    SELECT n.ts, n.id FROM public.workflow_events n
    WHERE n.run_id = s.run_id AND n.type = 'step_started' AND n.ts >= s.ts AND n.ts <= $1::timestamptz
      AND (n.ts, n.id) > (s.ts, s.id)
      AND CASE WHEN jsonb_typeof(n.payload -> 'node') = 'string' THEN n.payload ->> 'node'
               WHEN jsonb_typeof(n.payload -> 'node') = 'object' THEN n.payload #>> '{node,id}' END = s.node_id
    ORDER BY n.ts, n.id LIMIT 1) n ON true
  WHERE s.type = 'step_started' AND s.node_id IS NOT NULL
),
-- The attempts of each start (its node's outcomes before its next start),
-- each with the node's event right before it.
att AS (
  SELECT s.run_id, s.id AS start_id, s.node_id, s.ts AS started, s.next_ts, s.node_type AS start_type,
         o.id, o.ts, o.type, o.payload #>> '{node,type}' AS node_type,
         CASE WHEN jsonb_typeof(o.payload -> 'attempt') = 'number'
                OR (o.payload ->> 'attempt') ~ '^[0-9]{1,9}$' THEN (o.payload ->> 'attempt')::numeric END AS attempt,
         p.type AS prev_type,
         CASE WHEN jsonb_typeof(p.payload -> 'status') = 'number'
                OR (p.payload ->> 'status') ~ '^[0-9]{1,9}$' THEN (p.payload ->> 'status')::numeric END AS prev_status
  FROM starts s
  JOIN LATERAL (
    SELECT o.id, o.ts, o.type, o.payload FROM public.workflow_events o
    WHERE o.run_id = s.run_id AND o.type IN ('step_succeeded', 'step_failed')
      AND o.ts >= s.ts AND o.ts <= $1::timestamptz
      AND (o.ts, o.id) > (s.ts, s.id)
      AND (s.next_ts IS NULL OR (o.ts, o.id) < (s.next_ts, s.next_id))
      AND CASE WHEN jsonb_typeof(o.payload -> 'node') = 'string' THEN o.payload ->> 'node'
               WHEN jsonb_typeof(o.payload -> 'node') = 'object' THEN o.payload #>> '{node,id}' END = s.node_id) o ON true
  LEFT JOIN LATERAL (
    SELECT p.type, p.payload FROM public.workflow_events p
    WHERE p.run_id = s.run_id AND p.type IN ('step_started', 'http_attempted', 'step_succeeded', 'step_failed')
      AND p.ts <= o.ts AND (p.ts, p.id) < (o.ts, o.id)
      AND CASE WHEN jsonb_typeof(p.payload -> 'node') = 'string' THEN p.payload ->> 'node'
               WHEN jsonb_typeof(p.payload -> 'node') = 'object' THEN p.payload #>> '{node,id}' END = s.node_id
    ORDER BY p.ts DESC, p.id DESC LIMIT 1) p ON true
),
per_start AS (
  SELECT a.run_id, a.start_id, a.node_id, a.started, a.next_ts,
         greatest(max(a.start_type), max(a.node_type)) AS node_type,
         count(*) AS attempts,
         count(*) FILTER (WHERE a.type = 'step_failed') AS failed_attempts,
         count(*) FILTER (WHERE a.prev_type = 'http_attempted' AND floor(a.prev_status / 100) = 2) AS http_2xx,
         count(*) FILTER (WHERE a.prev_type = 'http_attempted' AND floor(a.prev_status / 100) = 4) AS http_4xx,
         count(*) FILTER (WHERE a.prev_type = 'http_attempted' AND floor(a.prev_status / 100) = 5) AS http_5xx,
         count(*) FILTER (WHERE a.prev_type = 'http_attempted'
                            AND floor(a.prev_status / 100) IS DISTINCT FROM 2 AND floor(a.prev_status / 100) IS DISTINCT FROM 4
                            AND floor(a.prev_status / 100) IS DISTINCT FROM 5) AS http_other,
         count(*) FILTER (WHERE a.type = 'step_failed' AND a.prev_type IS DISTINCT FROM 'http_attempted') AS http_none,
         (array_agg(a.type ORDER BY a.ts DESC, a.id DESC))[1] AS last_type,
         (array_agg(a.ts ORDER BY a.ts DESC, a.id DESC))[1] AS last_ts,
         (array_agg(a.attempt ORDER BY a.ts DESC, a.id DESC))[1] AS last_attempt
  FROM att a
  GROUP BY a.run_id, a.start_id, a.node_id, a.started, a.next_ts
),
execs AS (
  SELECT r.workflow_id, r.started_at AS run_started_at, x.*,
         x.last_type = 'step_failed' AS failed,
         extract(epoch FROM x.last_ts - x.started)::float8 * 1000 AS latency
  FROM per_start x
  JOIN public.workflow_runs r ON r.id = x.run_id
  WHERE x.last_type = 'step_succeeded'
     OR x.last_attempt IS NULL OR x.last_attempt >= 5
     OR x.next_ts IS NOT NULL
     OR r.status NOT IN ('running', 'paused')
)
SELECT x.workflow_id,
       x.node_id,
       max(x.node_type) AS node_type,
       w."window",
       count(*)::bigint AS executions,
       count(*) FILTER (WHERE x.failed)::bigint AS failures,
       avg(x.failed::int::float8) AS failure_rate,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY x.latency) AS p50_latency,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY x.latency) AS p95_latency,
       max(x.last_ts) FILTER (WHERE x.failed) AS last_failure_at,
       sum(x.attempts)::bigint AS attempts,
       avg(x.attempts::float8) AS avg_attempts,
       max(x.attempts)::int AS max_attempts,
       count(*) FILTER (WHERE x.attempts > 1)::bigint AS retried,
       avg((x.attempts > 1)::int::float8) AS retry_rate,
       sum(x.failed_attempts)::bigint AS failed_attempts,
       sum(x.failed_attempts)::float8 / sum(x.attempts)::float8 AS attempt_failure_rate,
       sum(x.http_2xx)::bigint AS http_2xx,
       sum(x.http_4xx)::bigint AS http_4xx,
       sum(x.http_5xx)::bigint AS http_5xx,
       sum(x.http_other)::bigint AS http_other,
       sum(x.http_none)::bigint AS http_none
FROM execs x
JOIN (VALUES ('1h', 1), ('24h', 24), ('7d', 168), ('30d', 720)) AS w("window", hours)
  ON x.run_started_at > $1::timestamptz - make_interval(hours => w.hours)
 AND x.run_started_at <= $1::timestamptz
GROUP BY x.workflow_id, x.node_id, w."window"
