-- store_refresh_run.sql: run the refresh recorded as log row $1. The caller
-- sets statement_timeout on this session first (a function cannot bound
-- itself). Errors and cancellation are caught inside: the row comes back
-- 'failed' with the error text, and the guard is released.
select id, view_name, status, coalesce("rows", 0), coalesce(duration_ms, 0), coalesce(error, ''),
       coalesce(mode, ''), coalesce(dirty_keys, 0)
from @schema@.refresh_run($1)
