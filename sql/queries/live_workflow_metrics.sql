-- live_workflow_metrics: the numbers of mv_workflow_metrics computed straight
-- from MeshHook's tables, with no materialized view and no meshtop index
-- (the state before meshtop). It is the oracle of the correctness tests and
-- the baseline of the benchmark.
--   $1 timestamptz  the clock the windows are anchored at
-- Same definitions as sql/migrations/003_views.sql, written independently:
-- one aggregate per (definition, window) through LATERAL instead of one pass
-- over the widest window.
SELECT d.id AS workflow_id,
       w."window",
       d.project_id,
       p.name AS project_name,
       d.slug,
       d.name,
       d.version,
       d.status,
       a.execution_count,
       a.succeeded,
       a.failed,
       a.canceled,
       a.running,
       CASE WHEN a.succeeded + a.failed + a.canceled > 0
            THEN a.succeeded::float8 / (a.succeeded + a.failed + a.canceled) END AS success_rate,
       CASE WHEN a.succeeded + a.failed + a.canceled > 0
            THEN a.failed::float8 / (a.succeeded + a.failed + a.canceled) END AS failure_rate,
       a.average_duration,
       a.p50_duration,
       a.p95_duration,
       a.p99_duration,
       a.min_duration,
       a.max_duration,
       a.resource_consumption,
       a.last_failure_at,
       $1::timestamptz AS last_updated
FROM public.workflow_definitions d
JOIN public.projects p ON p.id = d.project_id
CROSS JOIN (VALUES ('1h', 1), ('24h', 24), ('7d', 168), ('30d', 720)) AS w("window", hours)
CROSS JOIN LATERAL (
  SELECT count(*)::bigint AS execution_count,
         count(*) FILTER (WHERE r.status = 'succeeded')::bigint AS succeeded,
         count(*) FILTER (WHERE r.status = 'failed')::bigint AS failed,
         count(*) FILTER (WHERE r.status = 'canceled')::bigint AS canceled,
         count(*) FILTER (WHERE r.status IN ('running', 'paused'))::bigint AS running,
         -- in numeric, as the rollup sums durations (exact), then float8: a
         -- float8 average rounded 6345.4629375 to ...937 where the view says
         -- ...938 (the tests compare averages rounded to 6 decimals)
         avg(extract(epoch FROM r.finished_at - r.started_at) * 1000)::float8 AS average_duration,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at)::float8 * 1000) AS p50_duration,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at)::float8 * 1000) AS p95_duration,
         percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at)::float8 * 1000) AS p99_duration,
         min(extract(epoch FROM r.finished_at - r.started_at)::float8 * 1000) AS min_duration,
         max(extract(epoch FROM r.finished_at - r.started_at)::float8 * 1000) AS max_duration,
         coalesce(sum(CASE
           WHEN r.finished_at IS NOT NULL THEN extract(epoch FROM r.finished_at - r.started_at)::float8
           WHEN r.status IN ('running', 'paused') THEN greatest(extract(epoch FROM $1::timestamptz - r.started_at)::float8, 0)
           ELSE 0 END), 0)::float8 AS resource_consumption,
         max(coalesce(r.finished_at, r.started_at)) FILTER (WHERE r.status = 'failed') AS last_failure_at
  FROM public.workflow_runs r
  WHERE r.workflow_id = d.id
    AND r.started_at > $1::timestamptz - make_interval(hours => w.hours)
    AND r.started_at <= $1::timestamptz
) a
