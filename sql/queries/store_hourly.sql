-- store_hourly.sql: hourly points of every workflow for the overview's
-- sparklines, grouped into buckets of $2 seconds covering $1 seconds up to
-- the metrics clock of the last successful refresh of the hourly view (so a
-- pinned clock gives stable series).
--
-- Buckets: 1 h for the 1h/24h windows (24 points), 6 h for 7d (28 points),
-- 1 day for 30d (30 points): a sparkline is ~20 cells wide, and sending
-- 720 hourly rows for each of 1,000 workflows every 2 s would cost far more
-- than the rest of the poll. Counts are summed; p50/p95 of a bucket are the
-- worst (max) hourly value in it — percentiles do not merge, and a sparkline
-- of the worst hour is what an operator looks for. Only buckets with runs are
-- returned.
--
-- Cost control:
--   * The hourly view changes only when it is refreshed. The Store caches the
--     result with the id of the refresh it came from and passes that id as
--     $3: when it is still the latest successful refresh, the one-time filter
--     stops the query before it reads anything.
--   * One range scan of the hours since the span's start (the rollup's
--     bucket index, and the runs since the last refresh from the
--     started_at index), the start passed down as a parameter (an
--     initplan) so both branches of the hourly view use it as an index
--     bound. It used to be a LATERAL ... LIMIT per workflow of
--     mv_workflow_metrics: 1,400 index probes of the rollup and of
--     workflow_runs, 61 ms on 1M runs over 1,000 workflows against 9 ms
--     for this (the footprint benchmark's largest database cost). Hours of
--     workflows without a row in mv_workflow_metrics are returned too; the
--     overview looks them up by id and ignores them.
--   * Grouped and ordered by the uuid, not its text: cheaper comparisons.
with anchor as (
  select l.id, l.data_as_of as t
  from @schema@.refresh_log l
  where l.view_name = 'mv_workflow_metrics_hourly' and l.status = 'ok'
  order by l.id desc
  limit 1
), span as (
  select anchor.id,
         to_timestamp(floor(extract(epoch from anchor.t)::float8 / $2::float8) * $2::float8
                      - $1::float8 + $2::float8) as start
  from anchor
  where anchor.id is distinct from $3::bigint
)
select (select span.id from span),
       h.workflow_id::text,
       to_timestamp(floor(extract(epoch from h.hour)::float8 / $2::float8) * $2::float8) as bucket,
       sum(h.runs)::bigint, sum(h.succeeded)::bigint, sum(h.failed)::bigint, sum(h.canceled)::bigint,
       max(h.p50_duration), max(h.p95_duration)
from @schema@.mv_workflow_metrics_hourly h
where h.hour >= (select span.start from span)
group by h.workflow_id, 3
order by h.workflow_id, 3
