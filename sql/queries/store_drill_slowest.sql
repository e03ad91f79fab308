-- store_drill_slowest.sql: the slowest finished runs of one workflow in a
-- window, each with its failing or slowest step ($1 workflow id, $2 window,
-- $3 limit); see sql/repeatable/070_drill.sql.
select run_id::text, workflow_id::text, status, started_at, finished_at,
       node_id, node_type, attempts, http_status, error, error_chars, scanned, capped
from @schema@.drill_slowest_runs($1::uuid, $2::text, $3::int)
