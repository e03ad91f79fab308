-- store_refresh_begin.sql: take the guard for view $1 ($2: wait for it) and
-- record the attempt in its own committed transaction; returns the log id.
-- A 'skipped' row is written (and its id returned) when another session
-- holds the guard and $2 is false.
select @schema@.refresh_begin($1, $2)
