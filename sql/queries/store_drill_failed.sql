-- store_drill_failed.sql: the newest failed runs of one workflow in a window,
-- each with its final failure ($1 workflow id, $2 window, $3 limit); see
-- sql/repeatable/070_drill.sql. Run after set_config('statement_timeout',
-- …, true) in the same batch.
select run_id::text, workflow_id::text, status, started_at, finished_at,
       node_id, node_type, attempts, http_status, error, error_chars, scanned, capped
from @schema@.drill_failed_runs($1::uuid, $2::text, $3::int)
