-- store_refresh_log.sql: the newest $1 refresh attempts. state is the derived
-- status (status, or 'interrupted' for a 'running' row whose backend no
-- longer holds meshtop's guard lock). actor: who asked (meshtop.actor);
-- canceled_by: who cancelled it, if anyone did through refresh_cancel.
select id, view_name, started_at, finished_at, duration_ms, "rows", state,
       coalesce(error, ''), coalesce(pid, 0), coalesce(triggered_by, ''),
       coalesce(application_name, ''), coalesce("concurrently", false), data_as_of,
       coalesce(mode, ''), coalesce(dirty_keys, 0), coalesce(actor, ''), coalesce(canceled_by, '')
from @schema@.refresh_log_v
order by id desc
limit $1
