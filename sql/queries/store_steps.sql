-- store_steps.sql: the step hotspots of one workflow ($2, uuid) in one window
-- ($1): nodes that fail most first, then the slowest (p95).
select workflow_id::text, node_id, coalesce(node_type, ''), "window",
       executions, failures, failure_rate, p50_latency, p95_latency, last_failure_at
from @schema@.mv_step_metrics
where "window" = $1 and workflow_id = $2::uuid
order by failures desc, p95_latency desc nulls last, node_id
