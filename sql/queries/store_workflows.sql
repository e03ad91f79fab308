-- store_workflows.sql: every workflow definition's metrics for one window
-- ($1: '1h', '24h', '7d', '30d'), for the overview. One row per definition
-- (the view has a row for every definition, also those without runs).
-- Unordered: sorting 1,000 rows by text under a collation costs more than
-- reading them; the Store sorts in Go.
--
-- Cost control: the view changes only when it is refreshed, and the
-- dashboard polls every 2 s. The Store caches the rows with the id of the
-- successful refresh they came from and passes it as $2. When that is still
-- the latest successful refresh, the query returns NO row without reading
-- the view; otherwise every row carries the id ($2 = -1 forces a read). The
-- id and the rows come from one statement, so one snapshot: a refresh
-- committing meanwhile cannot pair new rows with an old id. The LEFT JOIN
-- returns one row of empty values when the view has no row for the window,
-- so "read, but empty" is never mistaken for "unchanged" (the Store drops
-- rows whose workflow_id is empty).
with anchor as (
  select coalesce((select max(l.id) from @schema@.refresh_log l
                    where l.view_name = 'mv_workflow_metrics' and l.status = 'ok'), 0) as id
)
select anchor.id,
       coalesce(m.workflow_id::text, ''), coalesce(m.project_id::text, ''), coalesce(m.project_name, ''),
       coalesce(m.name, ''), coalesce(m.slug, ''), coalesce(m.version, 0), coalesce(m.status, ''),
       coalesce(m."window", ''),
       coalesce(m.execution_count, 0), coalesce(m.succeeded, 0), coalesce(m.failed, 0),
       coalesce(m.canceled, 0), coalesce(m.running, 0),
       m.success_rate, m.failure_rate,
       m.average_duration, m.p50_duration, m.p95_duration, m.p99_duration, m.min_duration, m.max_duration,
       coalesce(m.resource_consumption, 0), m.last_failure_at,
       coalesce(m.last_updated, 'epoch'::timestamptz)
from anchor
left join @schema@.mv_workflow_metrics m on m."window" = $1
where anchor.id is distinct from $2::bigint
