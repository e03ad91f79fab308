-- store_drill_run.sql: one run and its workflow ($1 run id); see
-- sql/repeatable/070_drill.sql.
select run_id::text, workflow_id::text, project_id::text, project_name, workflow_name, slug, version,
       status, started_at, finished_at
from @schema@.drill_run($1::uuid)
