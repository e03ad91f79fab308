-- store_views.sql: one row per meshtop view from the status view, in refresh
-- (dependency) order, with the durations of its last 20 successful refreshes
-- (oldest first) for the refresh console's sparkline, and the log id of its
-- last successful refresh (changes whenever the view's contents may have).
select s.view_name, coalesce(s.populated, false), s.rows, s.size_bytes,
       s.last_refresh_at, extract(epoch from s.lag)::float8,
       s.last_duration_ms, s.median_duration_ms,
       -- On a hot standby the primary's guard locks are invisible, so the
       -- status view calls every 'running' row 'interrupted'; there the raw
       -- status is the better guess (the primary's Views() is exact).
       coalesce(case when pg_catalog.pg_is_in_recovery() and s.last_status = 'interrupted'
                     then 'running' else s.last_status end, ''),
       coalesce(s.last_error, ''),
       s.running_log_id, s.running_pid, s.running_since,
       array(select r.duration_ms
               from (select l.id, l.duration_ms
                       from @schema@.refresh_log l
                      where l.view_name = s.view_name and l.status = 'ok'
                        and l.duration_ms is not null
                      order by l.id desc
                      limit 20) r
              order by r.id)::float8[],
       (select max(l.id) from @schema@.refresh_log l
         where l.view_name = s.view_name and l.status = 'ok')
from @schema@.refresh_status s
order by array_position(array['mv_workflow_metrics_hourly', 'mv_workflow_metrics', 'mv_step_metrics'],
                        s.view_name::text), s.view_name
