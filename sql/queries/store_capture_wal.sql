-- store_capture_wal.sql: how changes are captured (capture_wal_status() in
-- sql/repeatable/025_wal.sql), with ages by the server's clock. Run after
-- capture_guard(), which enforces the slot's bound.
select c.desired, c.mode, c.mode_since, c.slot_name, c.slot_exists, c.slot_active, coalesce(c.wal_status, ''),
       c.retained_bytes::float8, c.restart_bytes::float8, coalesce(c.consumed_lsn::text, ''), c.consumed_at,
       pg_catalog.date_part('epoch', pg_catalog.now() - c.consumed_at)::float8,
       c.txns, c.changes, c.max_bytes, pg_catalog.date_part('epoch', c.max_age)::float8,
       c.fallback_at, coalesce(c.fallback_reason, ''), c.replica_identity, coalesce(c.unavailable, '')
from @schema@.capture_wal_status() c
