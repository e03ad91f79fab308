-- store_refresh_log.sql: the newest $1 refresh attempts. state is the derived
-- status (status, or 'interrupted' for a 'running' row whose backend no
-- longer holds meshtop's guard lock).
select id, view_name, started_at, finished_at, duration_ms, "rows", state,
       coalesce(error, ''), coalesce(pid, 0), coalesce(triggered_by, ''),
       coalesce(application_name, ''), coalesce("concurrently", false), data_as_of,
       coalesce(mode, ''), coalesce(dirty_keys, 0)
from @schema@.refresh_log_v
order by id desc
limit $1
