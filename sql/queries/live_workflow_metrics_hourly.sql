-- live_workflow_metrics_hourly: mv_workflow_metrics_hourly computed straight
-- from public.workflow_runs (oracle and benchmark baseline).
--   $1 timestamptz  the clock
-- UTC hours of started_at, from the hour containing $1 - 720 hours to $1;
-- only hours with runs.
SELECT r.workflow_id,
       date_trunc('hour', r.started_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
       count(*)::bigint AS runs,
       sum((r.status = 'succeeded')::int)::bigint AS succeeded,
       sum((r.status = 'failed')::int)::bigint AS failed,
       sum((r.status = 'canceled')::int)::bigint AS canceled,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at)::float8 * 1000) AS p50_duration,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at)::float8 * 1000) AS p95_duration
FROM public.workflow_runs r
WHERE r.started_at >= date_trunc('hour', ($1::timestamptz - interval '720 hours') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
  AND r.started_at <= $1::timestamptz
GROUP BY 1, 2
