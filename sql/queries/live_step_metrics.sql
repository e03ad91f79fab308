-- live_step_metrics: mv_step_metrics computed straight from workflow_runs and
-- workflow_events (oracle and benchmark baseline).
--   $1 timestamptz  the clock
-- A step execution: a step_started of a (run, node id) whose next event of
-- that (run, node id) in ts order is a step_succeeded/step_failed, both at or
-- before $1; windows by the run's started_at, one row per window with
-- executions. Only the node id and type are read from payloads. Written
-- differently from the view on purpose (every execution joined to each
-- window, no FILTER arrays), so the two check each other.
WITH ev AS (
  SELECT e.run_id, e.ts, e.type,
         e.payload #>> '{node,id}' AS node_id,
         e.payload #>> '{node,type}' AS node_type,
         lead(e.type) OVER w AS next_type,
         lead(e.ts) OVER w AS next_ts,
         lead(e.payload #>> '{node,type}') OVER w AS next_node_type
  FROM public.workflow_events e
  WHERE e.type IN ('step_started', 'step_succeeded', 'step_failed') AND e.ts <= $1::timestamptz
  WINDOW w AS (PARTITION BY e.run_id, e.payload #>> '{node,id}' ORDER BY e.ts, e.id)
)
SELECT r.workflow_id,
       ev.node_id,
       max(coalesce(ev.node_type, ev.next_node_type)) AS node_type,
       w."window",
       count(*)::bigint AS executions,
       count(*) FILTER (WHERE ev.next_type = 'step_failed')::bigint AS failures,
       avg((ev.next_type = 'step_failed')::int::float8) AS failure_rate,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ev.next_ts - ev.ts)::float8 * 1000) AS p50_latency,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM ev.next_ts - ev.ts)::float8 * 1000) AS p95_latency,
       max(ev.next_ts) FILTER (WHERE ev.next_type = 'step_failed') AS last_failure_at
FROM ev
JOIN public.workflow_runs r ON r.id = ev.run_id
JOIN (VALUES ('1h', 1), ('24h', 24), ('7d', 168), ('30d', 720)) AS w("window", hours)
  ON r.started_at > $1::timestamptz - make_interval(hours => w.hours)
 AND r.started_at <= $1::timestamptz
WHERE ev.type = 'step_started'
  AND ev.next_type IN ('step_succeeded', 'step_failed')
  AND ev.node_id IS NOT NULL
GROUP BY r.workflow_id, ev.node_id, w."window"
