-- 013_settings_capture_bound: (1) the refresh functions migrations define
-- carry the refresh settings; (2) the change-capture log gets a bound.
--
-- (1) Session settings. The functions migrations define that read or write
-- time as text carry the refresh settings (docs/REFRESH.md, "Session
-- settings"), as the repeatable files' refresh functions do in their own
-- definitions.
--
-- clock() parses config 'clock' (SetClock writes RFC 3339 with an offset,
-- but an operator may write '2026-03-02 12:00' by hand: without a pinned
-- TimeZone that clock moved with each reader's PGTZ). refresh_begin parses
-- config intervals (log_retention, max_refresh_duration) and prints one into
-- a log row; refresh_abort writes the error text that a cancelled refresh
-- records. ALTER FUNCTION ... SET adds to their search_path clause.
ALTER FUNCTION @schema@.clock()
  SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
  SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
  SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on;
ALTER FUNCTION @schema@.refresh_begin(text, boolean)
  SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
  SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
  SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on;
ALTER FUNCTION @schema@.refresh_abort(bigint, text)
  SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
  SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
  SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on;

-- (2) The capture log's bound (docs/REFRESH.md, "The capture log's bound").
-- With nothing consuming the log (meshtop installed, the dashboard tried
-- once, no schedule) every MeshHook run added ~7 rows (~320 bytes) to
-- dirty_keys/dirty_runs forever: 110 MB a day at 4 runs/s. Now the capture
-- triggers log only while the database clock is before capture_until, which
-- every refresh's apply moves to its own time + config capture_max_age
-- (default 24 hours). When it passes, capture stops; the next refresh
-- rebuilds the rollup from the raw tables and capture resumes.
--
-- capture_until is a sequence, not a table row, for two reasons: the
-- triggers read it on MeshHook's hot path, and a sequence's one tuple is
-- read without MVCC (no dead versions to step over however often applies
-- move it); and setval() is not transactional, so an apply's renewal is seen
-- by every writer at once, before the apply commits, which lets the apply
-- wait for the writers that may still have skipped the log and then rebuild
-- from a snapshot that holds their rows (030_rollup.sql, capture_renew).
-- Its value is epoch seconds.
CREATE SEQUENCE @schema@.capture_until AS bigint MINVALUE 0 NO CYCLE;
-- How many applies found capture off (capture_until at or before their
-- clock). Non-transactional for the same reason: an apply that saw the lapse
-- and failed has renewed capture_until all the same, so the lapse must
-- outlive its rollback; rollup_state.capture_lapses_seen (transactional) is
-- the count a successful rebuild has accounted for.
CREATE SEQUENCE @schema@.capture_lapses AS bigint MINVALUE 0 NO CYCLE;
INSERT INTO @schema@.config (key, value) VALUES ('capture_max_age', '24 hours');
DO $meshtop$
DECLARE
  s text := pg_catalog.quote_ident(@schema@.schema_name());
BEGIN
  PERFORM pg_catalog.setval((s || '.capture_until')::regclass,
    pg_catalog.ceil(pg_catalog.date_part('epoch', pg_catalog.now() + interval '24 hours'))::bigint);
  PERFORM pg_catalog.setval((s || '.capture_lapses')::regclass, 0, true);
END
$meshtop$;
-- capture_since: when the log was last consumed (the last successful apply;
-- at first, the install). An apply renews capture only while the last
-- successful one is less than twice capture_max_age old, so a refresh that
-- keeps failing does not keep the log growing either.
-- capture_lapses_seen: how many lapses a successful rebuild has accounted
-- for. capture_horizon: an XID above every transaction that may have
-- written while capture was off, up to lapse capture_horizon_lapses (set by
-- an apply that could not account for them; a later apply whose snapshot
-- has nothing in progress below it can).
ALTER TABLE @schema@.rollup_state ADD COLUMN capture_since timestamptz NOT NULL DEFAULT pg_catalog.now(),
                                  ADD COLUMN capture_lapses_seen bigint NOT NULL DEFAULT 0,
                                  ADD COLUMN capture_horizon xid8,
                                  ADD COLUMN capture_horizon_lapses bigint;
