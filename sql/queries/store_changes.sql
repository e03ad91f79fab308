-- store_changes.sql: what got worse. For every workflow with runs, its window
-- of $1 seconds against the window of the same length just before it, both
-- summed from mv_workflow_metrics_hourly over whole hours ending at the hour
-- of $2 — the clock of the workflow rows they are shown beside (the
-- overview passes its rows' last_updated; null: mv_workflow_metrics' own
-- clock). Whole hours before the rows' hour come from the hourly rollup:
-- the view's current hour is read live from the runs, and a Δ that moved
-- with every run committed would differ between two dashboards showing the
-- same rows.
--   * failure rate: failed / (succeeded + failed + canceled), summed over
--     the window's hours — exact, counts add up (the completed counts are
--     returned too: a rate of a few runs is noise);
--   * p95: the median of the window's hourly p95 durations (the typical
--     hour's p95). Percentiles do not merge, so this is not the window's p95;
--     it is computed the same way for both windows, which is what a change
--     needs.
-- Hours are UTC hours, as the view's (date_trunc with a zone: without one
-- the anchor followed the session's TimeZone, half an hour off in
-- Asia/Kolkata). The caller asks only for windows whose previous window the hourly view
-- still holds (it keeps 30 days: 1h, 24h and 7d).
with anchor as (
  select pg_catalog.date_trunc('hour', coalesce(
           $2::timestamptz,
           (select max(m.last_updated) from @schema@.mv_workflow_metrics m),
           now()), 'UTC') as t
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
