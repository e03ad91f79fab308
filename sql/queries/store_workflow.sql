-- store_workflow.sql: one workflow definition ($2, uuid) in one window ($1),
-- for the detail screen. Same columns as store_workflows.sql; served by the
-- unique index on (workflow_id, "window").
select workflow_id::text, project_id::text, coalesce(project_name, ''), name, slug,
       version, coalesce(status, ''), "window",
       execution_count, succeeded, failed, canceled, running,
       success_rate, failure_rate,
       average_duration, p50_duration, p95_duration, p99_duration, min_duration, max_duration,
       coalesce(resource_consumption, 0), last_failure_at, last_updated
from @schema@.mv_workflow_metrics
where "window" = $1 and workflow_id = $2::uuid
