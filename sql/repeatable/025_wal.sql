-- 025_wal: change capture from the WAL (issue #26). Repeatable.
--
-- Where the database allows it (wal_level = logical, an owner with
-- REPLICATION), MeshHook's writers pay no trigger: a logical replication
-- slot (pgoutput) reads what they write to the WAL anyway, through two
-- publications limited to what the metrics need to know:
--   <tag>_runs    public.workflow_runs, INSERT and UPDATE: which runs
--                 changed (the consumer reads only their id). Where a run
--                 is now (its workflow and hour) is read from the table by
--                 id when the change is consumed; where a moved run was
--                 comes from the '_runs_move' trigger of 020_capture.sql
--                 (its WHEN clause is false for every update MeshHook's
--                 workers make), and deleted runs' keys from the
--                 statement-level DELETE trigger. So the replica identity
--                 stays as it is (the primary key: an UPDATE carries no old
--                 row). No column list: one narrower than the replica
--                 identity makes UPDATEs fail, and anyone may set the
--                 identity to FULL later (Supabase Realtime users do).
--   <tag>_events  public.workflow_events (run_id) WHERE type IN the step
--                 types, INSERT only, published as the partitioned parent.
--                 INSERT only: a publication of UPDATE/DELETE would need a
--                 column list covering the replica identity (id, ts), and
--                 MeshHook's cascaded deletes would fail without one.
-- Updates and deletes of events, deletes of runs and TRUNCATE stay with the
-- statement-level triggers of 020_capture.sql (MeshHook's writes never fire
-- them). Until 2026-12-08 the runs publication had every column and
-- workflow_runs REPLICA IDENTITY FULL (the old row in every update's WAL):
-- an install armed then keeps both until capture is switched or removed
-- (the identity it replaced is restored then), and is consumed the same way.
--
-- Consumption (docs/REFRESH.md, "Change capture from the WAL"): every apply
-- (rollup_apply, under its advisory lock) calls wal_consume(), which peeks
-- at the slot through SQL (pg_logical_slot_peek_binary_changes: nothing is
-- consumed by reading), parses pgoutput's messages here, writes the keys to
-- dirty_keys/dirty_runs and records in capture_state.wal_lsn how far it
-- consumed: all in the apply's transaction. The slot's confirmed position is
-- advanced (pg_replication_slot_advance, not transactional) only to a
-- wal_lsn read from a committed row, at the start of the next consume. A
-- consumer killed mid-apply rolls back its keys and its wal_lsn together:
-- the next one reads the same transactions again, and skips those whose
-- commit record starts before wal_lsn (already applied, the slot not yet
-- advanced). So each decoded transaction reaches the rollup exactly once.
--
-- A transaction whose commit record is in the WAL is not yet visible to
-- other snapshots until it leaves the proc array (with synchronous
-- replication, only after the standby confirmed). wal_consume takes the
-- decoded transactions in commit order up to the first one its own
-- snapshot cannot see; that one and all later stay for the next consume.
-- Every later statement of the apply has a newer snapshot, so the buckets
-- it recomputes include every change it consumed.

-- The slot: slots are cluster-wide, so the name has the database in it.
CREATE OR REPLACE FUNCTION @schema@.wal_slot_name() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT 'meshtop_' || substr(md5(current_database() || '/' || @schema@.schema_name()), 1, 20)
$meshtop$;

CREATE OR REPLACE FUNCTION @schema@.wal_publications() RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT ARRAY[@schema@.capture_tag() || '_runs', @schema@.capture_tag() || '_events']
$meshtop$;

-- The slot's bound (config; the defaults when unset or unreadable: a typo
-- must not remove the bound).
CREATE OR REPLACE FUNCTION @schema@.wal_max_bytes() RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v bigint;
BEGIN
  SELECT pg_size_bytes(c.value) INTO v FROM @schema@.config c WHERE c.key = 'capture_wal_max_bytes';
  RETURN CASE WHEN v > 0 THEN v ELSE 1073741824 END;
EXCEPTION WHEN OTHERS THEN
  RETURN 1073741824;
END
$meshtop$;

CREATE OR REPLACE FUNCTION @schema@.wal_max_age() RETURNS interval
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET IntervalStyle = 'postgres'
AS $meshtop$
DECLARE
  v interval;
BEGIN
  SELECT c.value::interval INTO v FROM @schema@.config c WHERE c.key = 'capture_wal_max_age';
  RETURN CASE WHEN v > interval '0' THEN v ELSE interval '3 hours' END;
EXCEPTION WHEN OTHERS THEN
  RETURN interval '3 hours';
END
$meshtop$;

-- Why public.workflow_runs has no replica identity a publication of its
-- UPDATEs can use (PostgreSQL would then refuse MeshHook's updates), or
-- NULL.
CREATE OR REPLACE FUNCTION @schema@.wal_identity_problem() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT CASE
    WHEN c.relreplident = 'n' THEN 'the replica identity of public.workflow_runs is NOTHING (a publication of its updates would make them fail)'
    WHEN c.relreplident = 'd' AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
      THEN 'public.workflow_runs has no primary key (a publication of its updates needs a replica identity)'
    WHEN c.relreplident = 'i' AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)
      THEN 'the replica identity index of public.workflow_runs is gone (a publication of its updates would make them fail)'
  END
  FROM pg_class c WHERE c.oid = 'public.workflow_runs'::regclass
$meshtop$;

-- Why WAL capture is impossible here for the current role, in one line, or
-- NULL when it is possible.
CREATE OR REPLACE FUNCTION @schema@.wal_unavailable() RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_role record;
  v_used int;
  v_max int;
  t text;
BEGIN
  IF current_setting('wal_level') <> 'logical' THEN
    RETURN format('the server runs wal_level = %s; reading changes from the WAL needs logical (Supabase runs logical; elsewhere a superuser sets wal_level = logical and restarts)',
      current_setting('wal_level'));
  END IF;
  IF pg_is_in_recovery() THEN
    RETURN 'the server is a standby';
  END IF;
  SELECT r.rolname, r.rolsuper, r.rolreplication INTO v_role FROM pg_roles r WHERE r.rolname = current_user;
  IF NOT (v_role.rolsuper OR v_role.rolreplication) THEN
    RETURN format('role %s has no REPLICATION attribute (needed to create and read a logical replication slot)', v_role.rolname);
  END IF;
  FOREACH t IN ARRAY ARRAY['public.workflow_runs', 'public.workflow_events'] LOOP
    IF NOT v_role.rolsuper AND NOT pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = t::regclass), 'USAGE') THEN
      RETURN format('role %s does not own %s (publishing it needs ownership)', v_role.rolname, t);
    END IF;
  END LOOP;
  IF @schema@.wal_identity_problem() IS NOT NULL THEN
    RETURN @schema@.wal_identity_problem();
  END IF;
  IF NOT v_role.rolsuper AND NOT has_database_privilege(current_database(), 'CREATE') THEN
    RETURN format('role %s lacks CREATE on database %s (needed to create a publication)', v_role.rolname, current_database());
  END IF;
  SELECT count(*) INTO v_used FROM pg_replication_slots;
  v_max := current_setting('max_replication_slots')::int;
  IF v_used >= v_max AND NOT EXISTS (SELECT FROM pg_replication_slots s WHERE s.slot_name = @schema@.wal_slot_name()) THEN
    RETURN format('all %s replication slots are in use (max_replication_slots)', v_max);
  END IF;
  RETURN NULL;
END
$meshtop$;

-- An unsigned big-endian integer of p_len bytes at p_off (0-based) of p.
CREATE OR REPLACE FUNCTION @schema@.pgoutput_int(p bytea, p_off int, p_len int) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $meshtop$
  SELECT ('x' || lpad(encode(substring(p FROM p_off + 1 FOR p_len), 'hex'), 16, '0'))::bit(64)::bigint
$meshtop$;

CREATE OR REPLACE FUNCTION @schema@.pgoutput_lsn(p bytea, p_off int) RETURNS pg_lsn
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $meshtop$
  SELECT '0/0'::pg_lsn + @schema@.pgoutput_int(p, p_off, 8)::numeric
$meshtop$;

-- pgoutput's TupleData at p_off (its Int16 column count): the text of
-- columns p_a and p_b (1-based; NULL for a null, an unchanged TOASTed value,
-- or 0) and, with p_end, the offset just after the tuple (without it the
-- walk stops after the last column asked for and next_off is NULL: an
-- update's old tuple needs its end, to find the new one after it).
DROP FUNCTION IF EXISTS @schema@.pgoutput_tuple(bytea, int, int, int);
CREATE OR REPLACE FUNCTION @schema@.pgoutput_tuple(p bytea, p_off int, p_a int, p_b int, p_end boolean,
  OUT a text, OUT b text, OUT next_off int)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $meshtop$
DECLARE
  n int := (get_byte(p, p_off) << 8) | get_byte(p, p_off + 1);
  o int := p_off + 2;
  k int;
  len int;
BEGIN
  IF NOT p_end THEN
    n := least(n, greatest(p_a, p_b));
  END IF;
  FOR i IN 1..n LOOP
    k := get_byte(p, o);
    IF k = 116 OR k = 98 THEN -- 't', 'b': Int32 length, then the value
      len := (get_byte(p, o + 1) << 24) | (get_byte(p, o + 2) << 16) | (get_byte(p, o + 3) << 8) | get_byte(p, o + 4);
      IF i = p_a THEN
        a := convert_from(substring(p FROM o + 6 FOR len), getdatabaseencoding());
      ELSIF i = p_b THEN
        b := convert_from(substring(p FROM o + 6 FOR len), getdatabaseencoding());
      END IF;
      o := o + 5 + len;
    ELSE -- 'n' (null), 'u' (unchanged TOASTed value)
      o := o + 1;
    END IF;
  END LOOP;
  IF p_end THEN
    next_off := o;
  END IF;
END
$meshtop$;

-- pgoutput's Relation message: the relation's OID and its column names in
-- the order its tuples carry them.
CREATE OR REPLACE FUNCTION @schema@.pgoutput_relation(p bytea, OUT relid oid, OUT cols text[])
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $meshtop$
DECLARE
  o int := 5;  -- after 'R' and the Int32 OID
  z int;
  n int;
BEGIN
  relid := @schema@.pgoutput_int(p, 1, 4)::oid;
  FOR i IN 1..2 LOOP -- namespace, relation name
    o := o + position('\x00'::bytea IN substring(p FROM o + 1));
  END LOOP;
  o := o + 1; -- replica identity setting
  n := (get_byte(p, o) << 8) | get_byte(p, o + 1);
  o := o + 2;
  cols := '{}';
  FOR i IN 1..n LOOP
    o := o + 1; -- flags
    z := position('\x00'::bytea IN substring(p FROM o + 1));
    cols := cols || convert_from(substring(p FROM o + 1 FOR z - 1), getdatabaseencoding());
    o := o + z + 8; -- the name's NUL, type OID, type modifier
  END LOOP;
END
$meshtop$;

-- A 32-bit XID (pgoutput's, pg_locks') as the xid8 within 2^31 of p_ref.
CREATE OR REPLACE FUNCTION @schema@.xid_widen(p_xid bigint, p_ref xid8) RETURNS xid8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $meshtop$
  SELECT ((((p_ref::text::numeric)::bigint >> 32)
           + CASE WHEN p_xid - ((p_ref::text::numeric)::bigint & 4294967295) > 2147483648 THEN -1
                  WHEN p_xid - ((p_ref::text::numeric)::bigint & 4294967295) < -2147483648 THEN 1
                  ELSE 0 END) * 4294967296 + p_xid)::text::xid8
$meshtop$;

-- meshtop's slot, if it exists in this database.
DROP FUNCTION IF EXISTS @schema@.wal_slot();
CREATE FUNCTION @schema@.wal_slot()
RETURNS TABLE (slot_name text, active boolean, active_pid int, wal_status text, restart_lsn pg_lsn, confirmed_flush_lsn pg_lsn)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT s.slot_name::text, s.active, s.active_pid, s.wal_status, s.restart_lsn, s.confirmed_flush_lsn
  FROM pg_replication_slots s
  WHERE s.slot_name = @schema@.wal_slot_name() AND s.database = current_database()
$meshtop$;

-- What is wrong with WAL capture in mode 'wal', or NULL. p_apply: asked by
-- an apply, which is about to consume the slot (its age does not matter
-- then, only how much it holds back).
CREATE OR REPLACE FUNCTION @schema@.wal_problem(p_state @schema@.capture_state, p_apply boolean) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $meshtop$
DECLARE
  v_slot record;
  v_held numeric;
  p text;
BEGIN
  SELECT s.* INTO v_slot FROM @schema@.wal_slot() s;
  IF v_slot.slot_name IS NULL THEN
    RETURN format('the replication slot %s is gone', @schema@.wal_slot_name());
  END IF;
  IF v_slot.wal_status = 'lost' OR v_slot.confirmed_flush_lsn IS NULL THEN
    RETURN format('the server invalidated the replication slot %s (the WAL it held back passed max_slot_wal_keep_size)', v_slot.slot_name);
  END IF;
  IF p_state.wal_lsn IS NULL OR v_slot.confirmed_flush_lsn > p_state.wal_lsn THEN
    RETURN format('the replication slot %s was advanced past what meshtop consumed (%s > %s): changes were skipped',
      v_slot.slot_name, v_slot.confirmed_flush_lsn, p_state.wal_lsn);
  END IF;
  v_held := pg_current_wal_lsn() - v_slot.confirmed_flush_lsn;
  IF v_held > @schema@.wal_max_bytes() THEN
    RETURN format('the replication slot %s held back %s of WAL, more than capture_wal_max_bytes (%s)',
      v_slot.slot_name, pg_size_pretty(v_held), pg_size_pretty(@schema@.wal_max_bytes()));
  END IF;
  IF NOT p_apply AND p_state.wal_consumed_at < clock_timestamp() - @schema@.wal_max_age() THEN
    RETURN format('the replication slot %s was not consumed for %s, longer than capture_wal_max_age (%s)',
      v_slot.slot_name, date_trunc('second', clock_timestamp() - p_state.wal_consumed_at), @schema@.wal_max_age());
  END IF;
  p := @schema@.wal_identity_problem();
  IF p IS NOT NULL THEN
    RETURN p;
  END IF;
  p := @schema@.capture_wal_triggers_missing();
  IF p IS NOT NULL THEN
    RETURN format('the capture triggers %s are missing (moved, deleted or truncated rows would be lost)', p);
  END IF;
  FOREACH p IN ARRAY @schema@.wal_publications() LOOP
    IF NOT EXISTS (SELECT FROM pg_publication x WHERE x.pubname = p) THEN
      RETURN format('the publication %s was dropped', p);
    END IF;
  END LOOP;
  RETURN NULL;
END
$meshtop$;

-- Falls back from WAL capture to the triggers, loudly: the lapse first (a
-- sequence: it outlives a rollback of the caller), the slot dropped (not
-- transactional either), mode 'triggers' with the reason. The row-level
-- triggers are created by capture_ensure() in a short transaction of its
-- own (never inside a refresh, whose locks would hold MeshHook's writers
-- up); until they exist every apply rebuilds the rollup.
CREATE OR REPLACE FUNCTION @schema@.wal_fallback(p_reason text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_s text := quote_ident(@schema@.schema_name());
BEGIN
  PERFORM nextval((v_s || '.capture_lapses')::regclass);
  BEGIN
    PERFORM pg_drop_replication_slot(s.slot_name) FROM @schema@.wal_slot() s WHERE NOT s.active;
  EXCEPTION WHEN OTHERS THEN
    NULL; -- in use by another session right now: capture_ensure() drops it later
  END;
  -- The publications too, at once: DROP PUBLICATION takes no lock on the
  -- tables, and a publication of UPDATE on workflow_runs whose replica
  -- identity someone set to NOTHING makes MeshHook's updates fail.
  DECLARE
    p text;
  BEGIN
    FOREACH p IN ARRAY @schema@.wal_publications() LOOP
      EXECUTE format('DROP PUBLICATION IF EXISTS %I', p);
    END LOOP;
  EXCEPTION WHEN OTHERS THEN
    NULL; -- capture_ensure() drops them later
  END;
  UPDATE @schema@.capture_state s
     SET mode = 'triggers', mode_since = clock_timestamp(), fallback_at = clock_timestamp(), fallback_reason = p_reason;
  RAISE WARNING 'meshtop (schema %): WAL capture fell back to triggers: %; the next refresh rebuilds the rollup', @schema@.schema_name(), p_reason;
END
$meshtop$;

-- Decodes meshtop's slot into dirty_keys (runs: the old and new (workflow,
-- hour) keys of inserts, updates and deletes) and dirty_runs (the run ids
-- of step events inserted), from capture_state.wal_lsn on, and records the
-- new position. The caller holds the apply's advisory lock and commits (or
-- rolls back) all of it together. Returns the transactions and changes
-- consumed and the new position.
CREATE OR REPLACE FUNCTION @schema@.wal_consume(OUT txns bigint, OUT changes bigint, OUT lsn pg_lsn)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on
AS $meshtop$
DECLARE
  v_state @schema@.capture_state;
  v_slot record;
  v_upto pg_lsn;
  v_stopped boolean;
  v_last pg_lsn;
BEGIN
  SELECT s.* INTO v_state FROM @schema@.capture_state s;
  SELECT s.* INTO v_slot FROM @schema@.wal_slot() s;
  -- The position the last committed consume recorded: the slot may let go
  -- of the WAL before it.
  IF v_state.wal_lsn > v_slot.confirmed_flush_lsn THEN
    PERFORM pg_replication_slot_advance(v_slot.slot_name, v_state.wal_lsn);
  END IF;
  v_upto := pg_current_wal_flush_lsn();
  -- Every message is looked at once or twice, so each step is plain SQL on
  -- bytes, without a function call per message (the tuple walker only
  -- where the id is not a tuple's first column): at saturated writes a
  -- consume reads some 300,000 messages every 10 s (docs/REFRESH.md, "What
  -- it costs").
  WITH m AS MATERIALIZED (
    SELECT c.o, c.lsn, c.xid, c.data, get_byte(c.data, 0) AS t
    FROM pg_logical_slot_peek_binary_changes(v_slot.slot_name, v_upto, NULL,
           'proto_version', '1',
           'publication_names', array_to_string(@schema@.wal_publications(), ',')) WITH ORDINALITY AS c(lsn, xid, data, o)
  ),
  snap AS MATERIALIZED (
    SELECT x.s, age((pg_snapshot_xmin(x.s)::text::bigint & 4294967295)::text::xid) AS xmin_age
    FROM (SELECT pg_current_snapshot() AS s) x
  ),
  -- Each transaction's Commit ('C'), in commit order (pgoutput sends
  -- transactions whole, one after another): the row's lsn is the end of its
  -- commit record. Those that end at or before wal_lsn were applied (the
  -- slot had not been advanced yet).
  com AS MATERIALIZED (
    SELECT m.o, m.xid, m.lsn FROM m WHERE m.t = 67
  ),
  fresh AS MATERIALIZED (
    SELECT com.o, com.lsn,
           -- A decoded transaction committed; one whose XID precedes the
           -- snapshot's xmin (older by age(), which counts modulo 2^32)
           -- had finished before it, so is visible. Only the newest need
           -- the snapshot's word.
           CASE WHEN age(com.xid) > snap.xmin_age THEN true
                ELSE pg_visible_in_snapshot(@schema@.xid_widen(com.xid::text::bigint, pg_snapshot_xmax(snap.s)), snap.s) END AS visible
    FROM com, snap
    WHERE com.lsn > v_state.wal_lsn
  ),
  -- Those taken are the fresh ones before the first invisible one: the
  -- messages after the last applied Commit up to the last taken one
  -- (scalars, so that no join of the messages with the transactions
  -- depends on the planner's estimates).
  cut AS MATERIALIZED (
    SELECT c.lo, coalesce(c.hi, c.lo) AS hi, c.txns, c.last, c.inv < 9223372036854775807 AS stopped
    FROM (SELECT coalesce((SELECT max(com.o) FROM com WHERE com.lsn <= v_state.wal_lsn), 0) AS lo,
                 max(f.o) FILTER (WHERE f.o < i.inv) AS hi, count(*) FILTER (WHERE f.o < i.inv) AS txns,
                 max(f.lsn) FILTER (WHERE f.o < i.inv) AS last, min(i.inv) AS inv
          FROM (SELECT coalesce(min(f.o) FILTER (WHERE NOT f.visible), 9223372036854775807) AS inv FROM fresh f) i
               LEFT JOIN fresh f ON true) c
  ),
  rel AS MATERIALIZED ( -- Relation messages, from every transaction (a skipped one may hold them), with the
                        -- position of the column read and the ordinal of the next one of the same relation
    SELECT r.relid, m.o, coalesce(lead(m.o) OVER (PARTITION BY r.relid ORDER BY m.o), 9223372036854775807) AS next_o,
           array_position(r.cols, CASE WHEN r.relid = 'public.workflow_runs'::regclass THEN 'id' ELSE 'run_id' END) AS i_id
    FROM m CROSS JOIN LATERAL @schema@.pgoutput_relation(m.data) r WHERE m.t = 82
  ),
  -- The run id of each change taken ('I', 'U', 'D'): a run's id, or a step
  -- event's run_id, from the first tuple (an update's or delete's old one,
  -- if the table's replica identity sends one: the same run). Read in place
  -- when it is the tuple's first column as text ('t', its length, its
  -- text), else by the walker.
  ids AS MATERIALIZED (
    SELECT r.relid,
           CASE WHEN r.i_id = 1 AND get_byte(m.data, 8) = 116
                THEN convert_from(substring(m.data FROM 14 FOR (get_byte(m.data, 9) << 24) | (get_byte(m.data, 10) << 16)
                                                                | (get_byte(m.data, 11) << 8) | get_byte(m.data, 12)),
                                  getdatabaseencoding())
                ELSE (@schema@.pgoutput_tuple(m.data, 6, r.i_id, 0, false)).a END AS id
    FROM m, cut, rel r
    WHERE m.t IN (73, 85, 68) AND m.o > cut.lo AND m.o < cut.hi
      AND r.relid = ((get_byte(m.data, 1)::bigint << 24) | (get_byte(m.data, 2) << 16) | (get_byte(m.data, 3) << 8) | get_byte(m.data, 4))::oid
      AND m.o > r.o AND m.o < r.next_o
  ),
  -- Where the runs that changed are now, in this statement's snapshot,
  -- which sees every transaction taken (and perhaps later ones: they are
  -- consumed again next time, which is harmless). A run deleted since is
  -- not found: the DELETE trigger logged its key. A moved run's old key was
  -- logged by the '_runs_move' trigger, in the move's transaction.
  keys AS (
    INSERT INTO @schema@.dirty_keys (workflow_id, hour)
    SELECT DISTINCT r.workflow_id, date_trunc('hour', r.started_at, 'UTC')
    FROM public.workflow_runs r
    WHERE r.id = ANY ((SELECT array_agg(DISTINCT x.id::uuid) FROM ids x
                       WHERE x.relid = 'public.workflow_runs'::regclass AND x.id IS NOT NULL)::uuid[])
    RETURNING 1
  ),
  runs AS (
    INSERT INTO @schema@.dirty_runs (run_id)
    SELECT DISTINCT x.id::uuid FROM ids x
    WHERE x.relid = 'public.workflow_events'::regclass AND x.id IS NOT NULL
    RETURNING 1
  )
  -- (keys and runs run to completion whether read or not.)
  SELECT cut.txns, (SELECT count(*) FROM ids), cut.last, cut.stopped
  INTO txns, changes, v_last, v_stopped
  FROM cut;
  -- All decoded transactions up to v_upto were consumed, or all before the
  -- first this snapshot cannot see (it is read again next time: its commit
  -- record starts after the last one taken ends).
  lsn := CASE WHEN v_stopped THEN coalesce(v_last, v_state.wal_lsn) ELSE greatest(v_upto, v_last) END;
  lsn := greatest(lsn, v_state.wal_lsn);
  txns := coalesce(txns, 0);
  UPDATE @schema@.capture_state s
     SET wal_lsn = lsn, wal_consumed_at = clock_timestamp(),
         wal_txns = s.wal_txns + txns, wal_changes = s.wal_changes + changes;
END
$meshtop$;

-- WAL capture for an apply (rollup_apply): in mode 'wal', consume the slot
-- or, if it is unusable, fall back — unless the caller set meshtop.wal_consume
-- to 'off' for this transaction: a refresh of every view (CALL refresh(),
-- data/store's Refresh) consumes with its first view's apply only, as every
-- peek decodes again from the slot's restart position (docs/REFRESH.md,
-- "What it costs"); in modes 'triggers'/'arming', check
-- that the row-level triggers exist. Returns whether capture was complete
-- since the last apply (if not, the caller rebuilds and counts no lapse as
-- settled) and a note for the refresh log.
CREATE OR REPLACE FUNCTION @schema@.capture_for_apply(OUT complete boolean, OUT note text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $meshtop$
DECLARE
  v_state @schema@.capture_state;
  v_why text;
  v record;
BEGIN
  SELECT s.* INTO v_state FROM @schema@.capture_state s;
  complete := true;
  IF v_state.mode = 'wal' THEN
    v_why := @schema@.wal_problem(v_state, true);
    IF v_why IS NULL AND current_setting('meshtop.wal_consume', true) = 'off' THEN
      note := 'wal: consumed by this refresh''s first view';
    ELSIF v_why IS NULL THEN
      BEGIN
        SELECT c.* INTO v FROM @schema@.wal_consume() c;
        note := format('wal: %s transactions, %s changes, up to %s', v.txns, v.changes, v.lsn);
      EXCEPTION WHEN object_in_use THEN
        -- Another session reads the slot right now (an operator's peek):
        -- its changes stay in the slot for the next apply.
        note := 'wal: the slot is in use by another session; not consumed this time';
      WHEN query_canceled THEN
        RAISE;
      WHEN OTHERS THEN
        v_why := 'reading the replication slot failed: ' || SQLERRM;
      END;
    END IF;
    IF v_why IS NOT NULL THEN
      PERFORM @schema@.wal_fallback(v_why);
      complete := false;
      note := 'fell back to triggers: ' || v_why;
    END IF;
  ELSIF NOT @schema@.capture_triggers_exist() THEN
    PERFORM nextval((quote_ident(@schema@.schema_name()) || '.capture_lapses')::regclass);
    complete := false;
    note := 'the capture triggers are missing: rebuilding until they are back';
  END IF;
  IF note IS NOT NULL THEN
    -- For refresh_run's log row (a transaction-local setting would not
    -- outlive this function's SET clauses).
    UPDATE @schema@.capture_state s SET apply_note = note, apply_note_xid = pg_current_xact_id();
  END IF;
END
$meshtop$;

-- Creates the publications and marks capture 'arming': the first step of
-- switching to WAL capture. CREATE PUBLICATION takes SHARE UPDATE
-- EXCLUSIVE on the tables, which no writer waits for (VACUUM or an index
-- build would hold it up); a trigger re-created takes SHARE ROW EXCLUSIVE
-- for a moment: the installer runs this under its short lock_timeout and
-- tries again.
CREATE OR REPLACE FUNCTION @schema@.capture_wal_prepare() RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_pubs text[] := @schema@.wal_publications();
BEGIN
  -- The triggers WAL capture relies on (a moved run's old key, deletes),
  -- in case one was dropped by hand.
  PERFORM @schema@.capture_statement_triggers(false);
  IF NOT EXISTS (SELECT FROM pg_publication p WHERE p.pubname = v_pubs[1]) THEN
    EXECUTE format($q$CREATE PUBLICATION %I FOR TABLE public.workflow_runs WITH (publish = 'insert, update')$q$, v_pubs[1]);
  END IF;
  IF NOT EXISTS (SELECT FROM pg_publication p WHERE p.pubname = v_pubs[2]) THEN
    EXECUTE format($q$CREATE PUBLICATION %I FOR TABLE public.workflow_events (run_id)
      WHERE (type IN ('step_started', 'step_succeeded', 'step_failed'))
      WITH (publish = 'insert', publish_via_partition_root = true)$q$, v_pubs[2]);
  END IF;
  UPDATE @schema@.capture_state s SET mode = 'arming', mode_since = clock_timestamp() WHERE s.mode = 'triggers';
END
$meshtop$;

-- The second step, creating the slot, is a statement of the installer's
-- (data/install/capture.go): pg_create_logical_replication_slot, in a
-- transaction of its own that has written nothing before (PostgreSQL
-- requires it), at top level (inside a PL/pgSQL function, with other
-- transactions running, PostgreSQL 15 fails with "snapshot reference ... is
-- not owned by resource owner TopTransaction"). It waits for the
-- transactions running now to end (that is how a slot finds its consistent
-- point), which holds no writer up.
DROP FUNCTION IF EXISTS @schema@.capture_wal_slot();

-- The last step to WAL capture: the slot decodes every transaction that
-- commits after its consistent point and the row-level triggers logged
-- everything until now, so disabling them here loses nothing (both logged
-- what committed in between: harmless). Takes SHARE ROW EXCLUSIVE on the
-- two tables for a moment (as creating them does): short lock_timeout,
-- retried. capture_ensure() drops them later.
CREATE OR REPLACE FUNCTION @schema@.capture_wal_activate() RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_slot record;
  v_state @schema@.capture_state;
BEGIN
  SELECT s.* INTO v_state FROM @schema@.capture_state s FOR UPDATE;
  SELECT s.* INTO v_slot FROM @schema@.wal_slot() s;
  IF v_slot.slot_name IS NULL OR v_slot.wal_status = 'lost' THEN
    RAISE EXCEPTION 'meshtop''s replication slot % is missing or invalid', @schema@.wal_slot_name()
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF v_state.mode = 'triggers' THEN
    RAISE EXCEPTION 'WAL capture was not prepared (capture mode is triggers)' USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF v_state.mode = 'arming' THEN
    PERFORM @schema@.capture_row_triggers(false);
    UPDATE @schema@.capture_state s
       SET mode = 'wal', mode_since = clock_timestamp(), wal_lsn = v_slot.confirmed_flush_lsn,
           wal_consumed_at = clock_timestamp(), wal_txns = 0, wal_changes = 0;
  END IF;
END
$meshtop$;

-- Switching back, first step: the row-level triggers (from now on every
-- write logs its keys). Returns the WAL insert position after they exist:
-- every transaction that wrote without them committed before it (CREATE
-- TRIGGER waited for them), so consuming the slot past it loses nothing.
CREATE OR REPLACE FUNCTION @schema@.capture_triggers_on() RETURNS pg_lsn
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
BEGIN
  PERFORM @schema@.capture_row_triggers(true);
  -- Flushed at commit: the drain reads up to the flushed WAL.
  PERFORM set_config('synchronous_commit', 'on', true);
  RETURN pg_current_wal_insert_lsn();
END
$meshtop$;

-- Switching back, second step: consume the slot past p_target under the
-- apply's lock (held by the caller's transaction: pg_advisory_xact_lock),
-- then mode 'triggers'. Returns false when the slot could not be consumed
-- that far yet (a transaction before p_target not yet visible: try again).
-- A slot already gone means changes were lost: the next apply rebuilds.
CREATE OR REPLACE FUNCTION @schema@.capture_wal_drain(p_target pg_lsn) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_state @schema@.capture_state;
  v_why text;
  v record;
BEGIN
  PERFORM pg_advisory_xact_lock(1835365224, hashtext(@schema@.schema_name() || '.rollup'));
  SELECT s.* INTO v_state FROM @schema@.capture_state s;
  IF v_state.mode <> 'wal' THEN
    RETURN true;
  END IF;
  IF NOT @schema@.capture_triggers_exist() THEN
    RAISE EXCEPTION 'the capture triggers do not exist: create them before draining the slot'
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  v_why := @schema@.wal_problem(v_state, true);
  IF v_why IS NULL THEN
    SELECT c.* INTO v FROM @schema@.wal_consume() c;
    IF v.lsn < p_target THEN
      RETURN false;
    END IF;
    UPDATE @schema@.capture_state s SET mode = 'triggers', mode_since = clock_timestamp();
  ELSE
    PERFORM @schema@.wal_fallback(v_why);
  END IF;
  RETURN true;
END
$meshtop$;

-- Removes what WAL capture added, when capture is not 'wal': the slot, the
-- publications, and workflow_runs' replica identity as it was (unless
-- another meshtop schema of this database publishes it too). ALTER TABLE ...
-- REPLICA IDENTITY takes ACCESS EXCLUSIVE for a moment: callers run this
-- under a short lock_timeout.
CREATE OR REPLACE FUNCTION @schema@.capture_wal_teardown() RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_state @schema@.capture_state;
  p text;
BEGIN
  SELECT s.* INTO v_state FROM @schema@.capture_state s;
  IF v_state.mode = 'wal' THEN
    RETURN;
  END IF;
  PERFORM pg_drop_replication_slot(s.slot_name) FROM @schema@.wal_slot() s;
  FOREACH p IN ARRAY @schema@.wal_publications() LOOP
    EXECUTE format('DROP PUBLICATION IF EXISTS %I', p);
  END LOOP;
  IF v_state.replident_before IS NOT NULL
     AND NOT EXISTS (SELECT FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
                     WHERE r.prrelid = 'public.workflow_runs'::regclass AND p.pubname LIKE 'meshtop\_%\_runs') THEN
    EXECUTE 'ALTER TABLE public.workflow_runs REPLICA IDENTITY ' || v_state.replident_before;
  END IF;
  UPDATE @schema@.capture_state s SET replident_before = NULL, mode = 'triggers',
         mode_since = CASE WHEN s.mode = 'triggers' THEN s.mode_since ELSE clock_timestamp() END;
END
$meshtop$;

-- After a refresh, in a short transaction of its own (CALL refresh() and
-- data/store run it after the refresh committed; install too): bring
-- capture to the state capture_state says, and enforce the slot's bound.
--   mode 'wal'      the bound: a slot unconsumed too long, holding back too
--                   much, lost or broken is dropped (fallback)
--   mode 'triggers' the row-level triggers created if missing (after a
--                   fallback); what WAL capture left removed (an orphaned
--                   slot, the publications, the replica identity)
--   mode 'arming'   an install that stopped half-way (over 15 minutes ago)
--                   is undone
-- Under a lock_timeout of 200ms: a lock it cannot get now is tried at the
-- next refresh (returns 'retry'). SECURITY DEFINER: refreshers need no
-- privilege on MeshHook's tables. Returns what it did, or NULL.
CREATE OR REPLACE FUNCTION @schema@.capture_ensure() RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $meshtop$
DECLARE
  v_state @schema@.capture_state;
  v_why text;
  v_did text;
BEGIN
  PERFORM set_config('lock_timeout', '200ms', true);
  -- The state row locked until this transaction ends: an install switching
  -- modes updates it at each step, so what is decided here from the mode
  -- read cannot be acted on after the install moved on (a 'triggers' read
  -- just before capture_wal_prepare committed tore down the publications
  -- and reset 'arming' to 'triggers' under it: TestWALModelSwitches, CI
  -- 2026-12-08).
  BEGIN
    SELECT s.* INTO v_state FROM @schema@.capture_state s FOR UPDATE;
  EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
    RETURN 'retry';
  END;
  IF v_state.mode = 'wal' THEN
    v_why := @schema@.wal_problem(v_state, false);
    IF v_why IS NULL THEN
      -- The row-level triggers the switch disabled, dropped once their
      -- locks come free.
      BEGIN
        IF @schema@.capture_row_triggers_drop() THEN
          RETURN 'disabled capture triggers dropped';
        END IF;
      EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        RETURN 'retry';
      END;
      RETURN NULL;
    END IF;
    PERFORM @schema@.wal_fallback(v_why);
    v_did := 'fell back to triggers: ' || v_why;
    SELECT s.* INTO v_state FROM @schema@.capture_state s;
  END IF;
  IF v_state.mode = 'arming' AND v_state.mode_since < clock_timestamp() - interval '15 minutes' THEN
    UPDATE @schema@.capture_state s SET mode = 'triggers', mode_since = clock_timestamp();
    v_state.mode := 'triggers';
  END IF;
  IF v_state.mode = 'triggers' THEN
    BEGIN
      IF NOT @schema@.capture_triggers_exist() THEN
        PERFORM @schema@.capture_row_triggers(true);
        v_did := concat_ws('; ', v_did, 'capture triggers re-created');
      END IF;
      IF EXISTS (SELECT FROM @schema@.wal_slot()) OR v_state.replident_before IS NOT NULL
         OR EXISTS (SELECT FROM pg_publication p WHERE p.pubname = ANY (@schema@.wal_publications())) THEN
        PERFORM @schema@.capture_wal_teardown();
        v_did := concat_ws('; ', v_did, 'WAL capture''s slot, publications and replica identity removed');
      END IF;
    EXCEPTION WHEN lock_not_available OR object_in_use OR deadlock_detected THEN
      RETURN concat_ws('; ', v_did, 'retry');
    END;
  END IF;
  RETURN v_did;
END
$meshtop$;

-- The slot's bound, for meshtop's readers (status, check, the dashboard,
-- /metrics): whoever looks enforces it, so a slot nothing consumes is
-- dropped by the next meshtop that connects even when no refresh runs.
-- Changes nothing else (the triggers come back with the next refresh).
CREATE OR REPLACE FUNCTION @schema@.capture_guard() RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $meshtop$
DECLARE
  v_state @schema@.capture_state;
  v_why text;
BEGIN
  SELECT s.* INTO v_state FROM @schema@.capture_state s;
  IF v_state.mode <> 'wal' THEN
    RETURN NULL;
  END IF;
  v_why := @schema@.wal_problem(v_state, false);
  IF v_why IS NOT NULL THEN
    PERFORM @schema@.wal_fallback(v_why);
  END IF;
  RETURN v_why;
END
$meshtop$;

-- What `install --capture auto` picks: WAL where possible and a schedule
-- consumes it (meshtop's pg_cron job, or p_loop: a refresh loop asking),
-- else triggers; and why, in one line.
CREATE OR REPLACE FUNCTION @schema@.capture_auto(p_loop boolean DEFAULT false, OUT mode text, OUT why text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_cron boolean := false;
BEGIN
  why := @schema@.wal_unavailable();
  IF why IS NOT NULL THEN
    mode := 'triggers';
    why := 'WAL capture is impossible: ' || why;
    RETURN;
  END IF;
  BEGIN
    v_cron := EXISTS (SELECT FROM @schema@.cron_job() j WHERE j.active);
  EXCEPTION WHEN OTHERS THEN
    v_cron := false;
  END;
  IF v_cron OR p_loop THEN
    mode := 'wal';
    why := CASE WHEN v_cron THEN 'meshtop''s pg_cron job consumes the slot' ELSE 'a refresh loop consumes the slot' END;
  ELSE
    mode := 'triggers';
    why := 'nothing refreshes on a schedule yet (no pg_cron job, no refresh loop): a slot nothing consumes would hold back WAL';
  END IF;
END
$meshtop$;

-- Capture's state for status, check, /metrics and the console (Store.Capture).
CREATE OR REPLACE FUNCTION @schema@.capture_wal_status(
  OUT desired text, OUT mode text, OUT mode_since timestamptz,
  OUT slot_name text, OUT slot_exists boolean, OUT slot_active boolean, OUT wal_status text,
  OUT retained_bytes numeric, OUT restart_bytes numeric,
  OUT consumed_lsn pg_lsn, OUT consumed_at timestamptz, OUT txns bigint, OUT changes bigint,
  OUT max_bytes bigint, OUT max_age interval,
  OUT fallback_at timestamptz, OUT fallback_reason text, OUT replica_identity text, OUT unavailable text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
AS $meshtop$
DECLARE
  v_state @schema@.capture_state;
  v_slot record;
BEGIN
  SELECT s.* INTO v_state FROM @schema@.capture_state s;
  SELECT s.* INTO v_slot FROM @schema@.wal_slot() s;
  desired := v_state.desired;
  mode := v_state.mode;
  mode_since := v_state.mode_since;
  slot_name := @schema@.wal_slot_name();
  slot_exists := v_slot.slot_name IS NOT NULL;
  slot_active := coalesce(v_slot.active, false);
  wal_status := v_slot.wal_status;
  IF slot_exists AND NOT pg_is_in_recovery() THEN
    retained_bytes := pg_current_wal_lsn() - v_slot.confirmed_flush_lsn;
    restart_bytes := pg_current_wal_lsn() - v_slot.restart_lsn;
  END IF;
  consumed_lsn := v_state.wal_lsn;
  consumed_at := v_state.wal_consumed_at;
  txns := v_state.wal_txns;
  changes := v_state.wal_changes;
  max_bytes := @schema@.wal_max_bytes();
  max_age := @schema@.wal_max_age();
  fallback_at := v_state.fallback_at;
  fallback_reason := v_state.fallback_reason;
  replica_identity := (SELECT CASE c.relreplident WHEN 'd' THEN 'default' WHEN 'f' THEN 'full' WHEN 'n' THEN 'nothing' ELSE 'index' END
                       FROM pg_class c WHERE c.oid = 'public.workflow_runs'::regclass);
  unavailable := @schema@.wal_unavailable();
END
$meshtop$;

-- Consumes the slot into the logs now, without applying them: a consumer
-- between refreshes (make bench's wal group measures WAL capture's cost on
-- the writers with it). Does nothing while an apply runs (it consumes
-- then), outside mode 'wal', or when the slot is unusable (the next
-- refresh falls back).
CREATE OR REPLACE FUNCTION @schema@.capture_consume(OUT txns bigint, OUT changes bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_state @schema@.capture_state;
BEGIN
  txns := 0;
  changes := 0;
  IF NOT pg_try_advisory_xact_lock(1835365224, hashtext(@schema@.schema_name() || '.rollup')) THEN
    RETURN;
  END IF;
  SELECT s.* INTO v_state FROM @schema@.capture_state s;
  IF v_state.mode <> 'wal' OR @schema@.wal_problem(v_state, true) IS NOT NULL THEN
    RETURN;
  END IF;
  SELECT c.txns, c.changes INTO txns, changes FROM @schema@.wal_consume() c;
END
$meshtop$;
