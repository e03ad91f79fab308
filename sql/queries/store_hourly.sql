-- store_hourly.sql: hourly points of every workflow for the overview's
-- sparklines, grouped into buckets of $2 seconds covering $1 seconds up to
-- the metrics clock of the last successful refresh of the hourly view (so a
-- pinned clock gives stable series).
--
-- Buckets: 1 h for the 1h/24h windows (24 points), 6 h for 7d (28 points),
-- 1 day for 30d (30 points): a sparkline is ~20 cells wide, and reading
-- 720 hourly rows for each of 1,000 workflows every 2 s would cost far more
-- than the rest of the poll. Counts are summed; p50/p95 of a bucket are the
-- worst (max) hourly value in it — percentiles do not merge, and a sparkline
-- of the worst hour is what an operator looks for. Only buckets with runs are
-- returned. The lateral join reads each workflow's hours through the unique
-- index on (workflow_id, hour) instead of scanning the whole hourly view.
with anchor as (
  select coalesce(
           (select l.data_as_of
              from @schema@.refresh_log l
             where l.view_name = 'mv_workflow_metrics_hourly' and l.status = 'ok'
             order by l.id desc
             limit 1),
           now()) as t
), span as (
  select to_timestamp(floor(extract(epoch from t)::float8 / $2::float8) * $2::float8
                      - $1::float8 + $2::float8) as start
  from anchor
)
select w.workflow_id::text,
       to_timestamp(floor(extract(epoch from h.hour)::float8 / $2::float8) * $2::float8) as bucket,
       sum(h.runs)::bigint, sum(h.succeeded)::bigint, sum(h.failed)::bigint, sum(h.canceled)::bigint,
       max(h.p50_duration), max(h.p95_duration)
from (select distinct workflow_id from @schema@.mv_workflow_metrics) w
cross join span
cross join lateral (
  select * from @schema@.mv_workflow_metrics_hourly x
  where x.workflow_id = w.workflow_id and x.hour >= span.start
) h
group by 1, 2
order by 1, 2
