-- store_refresh_cancel.sql: cancel the backends refreshing view $1 (null: all
-- views); returns how many were signalled.
select @schema@.refresh_cancel($1)
