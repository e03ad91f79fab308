-- store_workflow_hourly.sql: every hourly point of one workflow ($2, uuid)
-- within the window ($1 seconds) ending at the metrics clock of the last
-- successful refresh of the hourly view; oldest first, only hours with runs.
-- The hours are UTC hours, whatever the session's TimeZone.
with anchor as (
  select coalesce(
           (select l.data_as_of
              from @schema@.refresh_log l
             where l.view_name = 'mv_workflow_metrics_hourly' and l.status = 'ok'
             order by l.id desc
             limit 1),
           now()) as t
)
select h.workflow_id::text, h.hour, h.runs, h.succeeded, h.failed, h.canceled,
       h.p50_duration, h.p95_duration
from @schema@.mv_workflow_metrics_hourly h, anchor
where h.workflow_id = $2::uuid
  and h.hour >= date_trunc('hour', anchor.t, 'UTC') - ($1::float8 - 3600) * interval '1 second'
order by h.hour
