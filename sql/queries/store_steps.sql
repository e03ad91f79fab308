-- store_steps.sql: the step hotspots of one workflow ($2, uuid) in one window
-- ($1): nodes that fail most first, then the slowest (p95). Columns as
-- store_window_steps.sql.
select workflow_id::text, node_id, coalesce(node_type, ''), "window",
       executions, failures, failure_rate, p50_latency, p95_latency, last_failure_at,
       attempts, avg_attempts, max_attempts, retried, retry_rate, failed_attempts, attempt_failure_rate,
       http_2xx, http_4xx, http_5xx, http_other, http_none
from @schema@.mv_step_metrics
where "window" = $1 and workflow_id = $2::uuid
order by failures desc, p95_latency desc nulls last, node_id
