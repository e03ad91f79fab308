-- Benchmark helpers, in their own schema meshtop_bench (never meshtop's).
create extension if not exists pg_stat_statements;
create schema if not exists meshtop_bench;

-- The workflows the pgbench script starts runs of: published or draft
-- definitions numbered 1..n, so the script can pick one with random(1, n).
drop table if exists meshtop_bench.wf;
create table meshtop_bench.wf as
  select row_number() over (order by d.id)::int as n, d.id, d.project_id
  from public.workflow_definitions d
  where d.status is distinct from 'archived';
create unique index on meshtop_bench.wf (n);
analyze meshtop_bench.wf;

-- The naive alternative to meshtop's views, for contrast: the same columns
-- as mv_workflow_metrics, but aggregated over ALL runs ever recorded (one
-- row per workflow, window 'all'). Its refresh re-reads the whole history,
-- so it grows with the history; meshtop's windowed views read only the last
-- 30 days through the started_at index.
drop materialized view if exists meshtop_bench.naive_workflow_metrics;
create materialized view meshtop_bench.naive_workflow_metrics as
select d.id as workflow_id,
       'all'::text as "window",
       d.project_id, p.name as project_name, d.slug, d.name, d.version, d.status,
       count(r.id) as execution_count,
       count(*) filter (where r.status = 'succeeded') as succeeded,
       count(*) filter (where r.status = 'failed') as failed,
       count(*) filter (where r.status = 'canceled') as canceled,
       count(*) filter (where r.status in ('running', 'paused')) as running,
       (count(*) filter (where r.status = 'succeeded'))::float8
         / nullif(count(*) filter (where r.status in ('succeeded', 'failed', 'canceled')), 0) as success_rate,
       (count(*) filter (where r.status = 'failed'))::float8
         / nullif(count(*) filter (where r.status in ('succeeded', 'failed', 'canceled')), 0) as failure_rate,
       avg(extract(epoch from r.finished_at - r.started_at) * 1000) as average_duration,
       percentile_cont(0.5) within group (order by extract(epoch from r.finished_at - r.started_at) * 1000) as p50_duration,
       percentile_cont(0.95) within group (order by extract(epoch from r.finished_at - r.started_at) * 1000) as p95_duration,
       percentile_cont(0.99) within group (order by extract(epoch from r.finished_at - r.started_at) * 1000) as p99_duration,
       min(extract(epoch from r.finished_at - r.started_at) * 1000) as min_duration,
       max(extract(epoch from r.finished_at - r.started_at) * 1000) as max_duration,
       coalesce(sum(extract(epoch from coalesce(r.finished_at, now()) - r.started_at)), 0)::float8 as resource_consumption,
       max(coalesce(r.finished_at, r.started_at)) filter (where r.status = 'failed') as last_failure_at,
       now() as last_updated
from public.workflow_definitions d
join public.projects p on p.id = d.project_id
left join public.workflow_runs r on r.workflow_id = d.id
group by d.id, p.name
with no data;
create unique index on meshtop_bench.naive_workflow_metrics (workflow_id, "window");
