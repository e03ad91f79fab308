-- 015_wal_capture: change capture from the WAL (issue #26). The functions
-- are in sql/repeatable/025_wal.sql; docs/REFRESH.md, "Change capture from
-- the WAL", has the design.
--
-- Where the database allows logical decoding (wal_level = logical, an
-- installing role with REPLICATION), MeshHook's run inserts, run updates and
-- step-event inserts are read from a logical replication slot (pgoutput,
-- two publications limited to what the metrics read) instead of being logged
-- by row-level triggers on MeshHook's hot path. Every apply decodes the slot
-- into the same dirty_keys/dirty_runs the triggers write, in its own
-- transaction, and records how far it consumed here in that transaction;
-- the slot is advanced only to a position already committed here.

-- One row: how changes are captured.
--   desired          what the operator asked for (install --capture): auto,
--                    wal or triggers
--   mode             what captures now: 'triggers' (the row-level triggers),
--                    'arming' (the triggers, while a slot is being set up
--                    beside them), 'wal' (the slot; no row-level trigger)
--   mode_since       when mode last changed
--   wal_lsn          WAL consumed: every transaction whose commit record
--                    starts before it is in the logs (or was applied)
--   wal_consumed_at  when the slot was last consumed
--   wal_txns, wal_changes  transactions and changes decoded since the slot
--                    was created (for status and /metrics)
--   fallback_at, fallback_reason  the last time meshtop dropped its slot and
--                    fell back to the triggers, and why
--   apply_note, apply_note_xid  what the last apply did with capture, and
--                    its transaction (refresh_run logs it: refresh_log.capture)
--   replident_before public.workflow_runs' replica identity before meshtop
--                    set it to FULL, as the clause that restores it
--                    ('DEFAULT', 'NOTHING', 'USING INDEX public.x'); NULL
--                    while meshtop has not changed it
CREATE TABLE @schema@.capture_state (
  one              boolean PRIMARY KEY DEFAULT true CHECK (one),
  desired          text NOT NULL DEFAULT 'auto' CHECK (desired IN ('auto', 'wal', 'triggers')),
  mode             text NOT NULL DEFAULT 'triggers' CHECK (mode IN ('triggers', 'arming', 'wal')),
  mode_since       timestamptz NOT NULL DEFAULT pg_catalog.now(),
  wal_lsn          pg_lsn,
  wal_consumed_at  timestamptz,
  wal_txns         bigint NOT NULL DEFAULT 0,
  wal_changes      bigint NOT NULL DEFAULT 0,
  fallback_at      timestamptz,
  fallback_reason  text,
  replident_before text,
  apply_note       text,
  apply_note_xid   xid8
);
INSERT INTO @schema@.capture_state DEFAULT VALUES;

-- The slot's bound (docs/REFRESH.md, "The slot's bound"): past either,
-- meshtop drops its slot and falls back to the triggers (the next refresh
-- rebuilds the rollup).
--   capture_wal_max_bytes  WAL the slot may hold back: pg_current_wal_lsn()
--                          minus its confirmed position
--   capture_wal_max_age    how long the slot may go unconsumed
INSERT INTO @schema@.config (key, value) VALUES
  ('capture_wal_max_bytes', '1GB'),
  ('capture_wal_max_age', '3 hours');

-- What each refresh's apply did with capture (a WAL consume, a fallback to
-- the triggers and why, missing triggers): the refresh log says it loudly.
ALTER TABLE @schema@.refresh_log ADD COLUMN capture text;
