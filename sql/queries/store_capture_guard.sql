-- store_capture_guard.sql: enforce the WAL slot's bound (capture_guard() in
-- sql/repeatable/025_wal.sql): whoever looks drops a slot nothing consumes.
select coalesce(@schema@.capture_guard(), '')
