-- store_refresh_row.sql: the log row refresh_begin wrote ($1): 'running' to
-- go on with refresh_run, or 'skipped' with "already refreshing (pid N since T)".
select status, coalesce(error, ''), started_at, coalesce(pid, 0)
from @schema@.refresh_log
where id = $1
