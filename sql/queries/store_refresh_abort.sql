-- store_refresh_abort.sql: record log row $1 of this session as 'failed' with
-- error $2 and release its guard — after refresh_run was cancelled before it
-- could record the outcome itself (or was never reached). A row that is not
-- this session's running refresh is returned unchanged.
select coalesce(id, 0), coalesce(view_name, ''), coalesce(status, ''), coalesce("rows", 0),
       coalesce(duration_ms, 0), coalesce(error, '')
from @schema@.refresh_abort($1, $2)
