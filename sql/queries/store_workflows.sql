-- store_workflows.sql: every workflow definition's metrics for one window
-- ($1: '1h', '24h', '7d', '30d'), for the overview. One row per definition
-- (the view has a row for every definition, also those without runs).
-- Reads ~1 row per workflow from a small materialized view: cheap enough to
-- run on every 2-second poll. Unordered: sorting 1,000 rows by text under a
-- collation costs more than reading them; the Store sorts in Go.
select workflow_id::text, project_id::text, coalesce(project_name, ''), name, slug,
       version, coalesce(status, ''), "window",
       execution_count, succeeded, failed, canceled, running,
       success_rate, failure_rate,
       average_duration, p50_duration, p95_duration, p99_duration, min_duration, max_duration,
       coalesce(resource_consumption, 0), last_failure_at, last_updated
from @schema@.mv_workflow_metrics
where "window" = $1
