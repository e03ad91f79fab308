-- store_window_steps.sql: every step row of one window ($1), for status
-- --json and /metrics, ordered by workflow, then as store_steps.sql.
select workflow_id::text, node_id, coalesce(node_type, ''), "window",
       executions, failures, failure_rate, p50_latency, p95_latency, last_failure_at,
       attempts, avg_attempts, max_attempts, retried, retry_rate, failed_attempts, attempt_failure_rate,
       http_2xx, http_4xx, http_5xx, http_other, http_none
from @schema@.mv_step_metrics
where "window" = $1
order by workflow_id, failures desc, p95_latency desc nulls last, node_id
