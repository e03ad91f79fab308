-- store_changes.sql: what got worse. For every workflow with runs, its window
-- of $1 seconds ending at the metrics clock of the hourly view's last
-- successful refresh, against the window of the same length just before it,
-- both from mv_workflow_metrics_hourly (the windows end on the hour, as the
-- detail's charts do):
--   * failure rate: failed / (succeeded + failed + canceled), summed over
--     the window's hours — exact, counts add up;
--   * p95: the median of the window's hourly p95 durations (the typical
--     hour's p95). Percentiles do not merge, so this is not the window's p95;
--     it is computed the same way for both windows, which is what a change
--     needs.
-- Hours are UTC hours, as the view's (date_trunc with a zone: without one
-- the anchor followed the session's TimeZone, half an hour off in
-- Asia/Kolkata). The caller asks only for windows whose previous window the hourly view
-- still holds (it keeps 30 days: 1h, 24h and 7d).
with anchor as (
  select date_trunc('hour', coalesce(
           (select l.data_as_of
              from @schema@.refresh_log l
             where l.view_name = 'mv_workflow_metrics_hourly' and l.status = 'ok'
             order by l.id desc
             limit 1),
           now()), 'UTC') + interval '1 hour' as t
), h as (
  select x.workflow_id, x.failed, x.succeeded + x.failed + x.canceled as done, x.p95_duration,
         x.hour >= anchor.t - $1::float8 * interval '1 second' as cur
  from @schema@.mv_workflow_metrics_hourly x, anchor
  where x.hour >= anchor.t - 2 * $1::float8 * interval '1 second'
    and x.hour < anchor.t
)
select workflow_id::text,
       sum(failed) filter (where cur)::bigint, sum(done) filter (where cur)::bigint,
       percentile_cont(0.5) within group (order by p95_duration) filter (where cur),
       sum(failed) filter (where not cur)::bigint, sum(done) filter (where not cur)::bigint,
       percentile_cont(0.5) within group (order by p95_duration) filter (where not cur)
from h
group by workflow_id
