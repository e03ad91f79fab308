-- $1 new finished runs, started within the last hour and spread over the
-- benchmark's workflows, each with its step events, as MeshHook's workers
-- would have written them: used to measure a refresh right after a burst of
-- new traffic. Durations are log-normal around ~2 s; 3% fail.
with new_runs as (
  insert into public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
  select w.project_id, w.id,
         case when random() < 0.03 then 'failed' else 'succeeded' end,
         s.started_at,
         s.started_at + make_interval(secs => exp(ln(2.0) + 0.8 * (random() + random() + random() - 1.5)))
  from (
    select g, now() - random() * interval '1 hour' as started_at,
           1 + floor(random() * (select count(*) from meshtop_bench.wf))::int as n
    from generate_series(1, $1::int) g
  ) s
  join meshtop_bench.wf w on w.n = s.n
  returning id, status, started_at, finished_at
)
insert into public.workflow_events (run_id, ts, type, payload)
select r.id, e.ts, e.type, e.payload
from new_runs r
cross join lateral (values
  (r.started_at, 'step_started', '{"node":{"id":"fetch","type":"http_call"}}'::jsonb),
  (r.started_at + (r.finished_at - r.started_at) / 2,
   case when r.status = 'failed' then 'step_failed' else 'step_succeeded' end,
   case when r.status = 'failed'
        then '{"node":{"id":"fetch","type":"http_call"},"error":{"status":502,"message":"upstream returned 502"}}'::jsonb
        else '{"node":{"id":"fetch","type":"http_call"},"next":[]}'::jsonb end),
  (r.finished_at, 'run_completed', '{}'::jsonb)
) as e(ts, type, payload)
