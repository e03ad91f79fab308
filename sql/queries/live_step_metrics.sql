-- live_step_metrics: mv_step_metrics computed straight from workflow_runs and
-- workflow_events (oracle and benchmark baseline).
--   $1 timestamptz  the clock
-- A step execution: the k-th step_started of a (run, node id) paired with the
-- k-th step_succeeded/step_failed of the same (run, node id), in ts order,
-- both at or before $1; windows by the run's started_at. Only the node id and
-- type are read from payloads.
WITH starts AS (
  SELECT e.run_id, e.ts, e.payload #>> '{node,id}' AS node_id, e.payload #>> '{node,type}' AS node_type,
         row_number() OVER (PARTITION BY e.run_id, e.payload #>> '{node,id}' ORDER BY e.ts, e.id) AS k
  FROM public.workflow_events e
  WHERE e.type = 'step_started' AND e.ts <= $1::timestamptz
),
ends AS (
  SELECT e.run_id, e.ts, e.type, e.payload #>> '{node,id}' AS node_id, e.payload #>> '{node,type}' AS node_type,
         row_number() OVER (PARTITION BY e.run_id, e.payload #>> '{node,id}' ORDER BY e.ts, e.id) AS k
  FROM public.workflow_events e
  WHERE e.type IN ('step_succeeded', 'step_failed') AND e.ts <= $1::timestamptz
)
SELECT r.workflow_id,
       s.node_id,
       max(coalesce(s.node_type, f.node_type)) AS node_type,
       w."window",
       count(*)::bigint AS executions,
       count(*) FILTER (WHERE f.type = 'step_failed')::bigint AS failures,
       avg((f.type = 'step_failed')::int::float8) AS failure_rate,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM f.ts - s.ts)::float8 * 1000) AS p50_latency,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM f.ts - s.ts)::float8 * 1000) AS p95_latency,
       max(f.ts) FILTER (WHERE f.type = 'step_failed') AS last_failure_at
FROM starts s
JOIN ends f USING (run_id, node_id, k)
JOIN public.workflow_runs r ON r.id = s.run_id
JOIN (VALUES ('1h', 1), ('24h', 24), ('7d', 168), ('30d', 720)) AS w("window", hours)
  ON r.started_at > $1::timestamptz - make_interval(hours => w.hours)
 AND r.started_at <= $1::timestamptz
WHERE s.node_id IS NOT NULL
GROUP BY r.workflow_id, s.node_id, w."window"
