-- One dashboard screen read from the views: every window ('1h', '24h', '7d',
-- '30d') of every workflow, all the columns the overview shows. This is the
-- "after" side of the retrieval benchmark; the "before" side is
-- sql/queries/live_workflow_metrics.sql, the same numbers computed from the
-- raw tables.
select workflow_id, "window", project_id, project_name, slug, name, version,
       status, execution_count, succeeded, failed, canceled, running,
       success_rate, failure_rate, average_duration, p50_duration,
       p95_duration, p99_duration, min_duration, max_duration,
       resource_consumption, last_failure_at, last_updated
from @schema@.mv_workflow_metrics
