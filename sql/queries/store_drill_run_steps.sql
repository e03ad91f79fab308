-- store_drill_run_steps.sql: one run's steps, grouped as MeshHook writes
-- them ($1 run id); see sql/repeatable/070_drill.sql.
select node_id, span, node_type, started_at, ended_at, outcome, attempts,
       http_statuses, error_attempts, errors, error_chars, events
from @schema@.drill_run_steps($1::uuid)
