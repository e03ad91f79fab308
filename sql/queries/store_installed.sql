-- store_installed.sql: are the objects the Store reads present in schema $1
-- (the raw, unquoted name)? Catalog lookups only, so this works for any role
-- that can connect, even one without USAGE on the schema.
select count(*) = 5
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1
  and c.relname in ('mv_workflow_metrics', 'mv_workflow_metrics_hourly',
                    'mv_step_metrics', 'refresh_log', 'refresh_status')
