-- The hourly series of one workflow (the detail screen's charts and the
-- overview's sparklines), read from the hourly view. @workflow@ is replaced by
-- a quoted uuid literal so EXPLAIN can run the exact statement.
select hour, runs, succeeded, failed, canceled, p50_duration, p95_duration
from @schema@.mv_workflow_metrics_hourly
where workflow_id = @workflow@
order by hour
