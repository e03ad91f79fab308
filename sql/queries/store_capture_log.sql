-- store_capture_log.sql: the change-capture log's size, age and state
-- (capture_status() in sql/repeatable/030_rollup.sql), with the age and
-- the time left measured by the server's clock, not the caller's.
select c.log_rows, c.log_bytes, c.since, c.stops_at,
       pg_catalog.date_part('epoch', c.max_age)::float8,
       pg_catalog.date_part('epoch', pg_catalog.now() - c.since)::float8,
       pg_catalog.date_part('epoch', c.stops_at - pg_catalog.now())::float8,
       c.stopped, c.rebuild_pending
from @schema@.capture_status() c
