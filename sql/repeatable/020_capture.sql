-- 020_capture: change capture on MeshHook's tables. Repeatable.
--
-- Triggers on public.workflow_runs and on the partitioned parent
-- public.workflow_events append, in the writer's own transaction, what a
-- change touched:
--   workflow_runs   INSERT: the new row's (workflow definition, UTC hour of
--                   started_at) key to @schema@.dirty_keys; UPDATE of a
--                   column the metrics read (status, finished_at,
--                   started_at, workflow_id: a run finishing, a paused run
--                   resuming, a status correction, a moved run): the old and
--                   the new key; DELETE (retention jobs, ON DELETE CASCADE
--                   from projects and workflow_definitions): the old rows'
--                   keys.
--   workflow_events the run ids of step events inserted, updated or deleted,
--                   to @schema@.dirty_runs; their keys are looked up when the
--                   log is applied (events deleted by a run's cascade find no
--                   run any more: the run's own DELETE logged its key).
--   TRUNCATE        of either table logs the marker (NULL, NULL): rebuild.
--
-- The hot path — one run inserted, a few step events inserted, the run
-- updated once, each usually its own statement — uses row-level triggers:
-- a WHEN clause (evaluated without calling any function) skips other event
-- types and updates that change nothing the metrics read, and the function
-- does one INSERT of one row. Statement-level triggers with transition
-- tables cost more per statement (a tuplestore, a plan over it, DISTINCT),
-- which is what MeshHook's single-row statements pay (measured in
-- docs/BENCHMARKS-incremental.md). Deletes and event updates are rare and
-- often bulk (retention): statement-level, with transition tables.
--
-- SECURITY DEFINER: MeshHook's roles have no privilege on this schema, and
-- need none: revoking anything from them (or from PUBLIC) cannot make
-- capture fail. The row-level functions carry no SET clause (a SET costs a
-- configuration save and restore on every call, i.e. on every write):
-- instead every name in them is schema-qualified and they use no operator
-- (comparisons are pg_catalog.int8gt calls), so the caller's search_path
-- cannot change what they do (data/reliability's search-path test checks
-- the text). Trigger names carry a hash of the schema name, so several
-- meshtop schemas in one database keep their own; uninstall drops them by
-- their functions' schema.
--
-- Capture never makes MeshHook's write fail. Whatever goes wrong logging a
-- change — the log table dropped or renamed (by hand, or an install half
-- removed), a privilege revoked from its owner, a lock conflict or deadlock
-- with DDL on it — is caught: the change is not logged, and capture is
-- turned off (capture_until := 0), so the next refresh rebuilds the rollup
-- from the raw tables (and fails loudly if meshtop's objects are gone).
-- Catching needs a subtransaction: each function's body is one PL/pgSQL
-- block with EXCEPTION. Measured with single-row statements each in its
-- own transaction, as MeshHook writes them: +2.4 µs per logged row with the
-- gate below, against about 4.2 µs for the trigger and log insert before
-- and about 8 µs for the writer's statement and commit themselves
-- (docs/REFRESH.md has the table). Avoided: an
-- event trigger (superuser-only on PostgreSQL, not available to Supabase's
-- postgres role everywhere); dependencies that make the log undroppable (a
-- WHEN clause naming it costs more, +5 µs, and does nothing for a RENAME).
-- The cost of the block beyond time: a subtransaction that writes gets a
-- subtransaction XID, so one statement that logs more than 64 rows (a bulk
-- backfill in one transaction) overflows that transaction's subtransaction
-- cache, and other sessions' snapshots consult pg_subtrans until it ends.
-- MeshHook writes row by row; docs/OPERATIONS.md says how to backfill.
--
-- The bound (docs/REFRESH.md, "The capture log's bound"): a change is logged
-- only while the database clock is before capture_until, a sequence holding
-- epoch seconds that every refresh moves to its own time + capture_max_age.
-- It is read in the same statement as the log insert: one more relation in
-- its plan, a scan of the sequence's single tuple (no MVCC chain, however
-- often refreshes move it), no extra statement. date_part('epoch', now()) is
-- the writer's transaction start as absolute time, whatever its TimeZone.
-- (A per-session cache of the value in a custom setting measured no cheaper:
-- the PL/pgSQL to read and compare it costs what the scan does.)
--
-- What these triggers cannot see (statements naming a partition directly,
-- ATTACH/DETACH/DROP of a partition) is found at refresh time by the
-- partition fingerprint in 030_rollup.sql, or not at all (DML addressed to a
-- partition by name): docs/REFRESH.md lists each case.

-- Before 009's final form the capture was statement-level on every
-- operation; these are its functions.
DROP FUNCTION IF EXISTS @schema@.capture_runs() CASCADE;
DROP FUNCTION IF EXISTS @schema@.capture_events() CASCADE;

-- A failed capture turns capture off for everyone: setval(capture_until, 0),
-- not transactional, so it outlives the writer's own rollback, and the next
-- refresh rebuilds. The handler names the sequence by its OID, which each
-- trigger passes as its argument (TG_ARGV[0]), not by name: it still works
-- when the schema or the sequence was renamed, and does nothing (caught in
-- a block of its own) when the sequence is gone too.

-- The row-level functions: one INSERT ... SELECT each, the gate in its WHERE,
-- the whole body one block that catches everything.
CREATE OR REPLACE FUNCTION @schema@.capture_run_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $meshtop$
BEGIN
  INSERT INTO @schema@.dirty_keys (workflow_id, hour)
  SELECT NEW.workflow_id, pg_catalog.date_trunc('hour', NEW.started_at, 'UTC')
  FROM @schema@.capture_until g
  WHERE pg_catalog.int8gt(g.last_value, pg_catalog.int8(pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.now()))));
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  BEGIN
    IF pg_catalog.int8gt(pg_catalog.pg_sequence_last_value(TG_ARGV[0]::pg_catalog.oid), 0) THEN
      PERFORM pg_catalog.setval(TG_ARGV[0]::pg_catalog.oid::pg_catalog.regclass, 0);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    NULL;
  END;
  RETURN NULL;
END
$meshtop$;

CREATE OR REPLACE FUNCTION @schema@.capture_run_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $meshtop$
BEGIN
  INSERT INTO @schema@.dirty_keys (workflow_id, hour)
  SELECT k.column1, k.column2
  FROM @schema@.capture_until g,
       (VALUES (NEW.workflow_id, pg_catalog.date_trunc('hour', NEW.started_at, 'UTC')),
               (OLD.workflow_id, pg_catalog.date_trunc('hour', OLD.started_at, 'UTC'))) k
  WHERE pg_catalog.int8gt(g.last_value, pg_catalog.int8(pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.now()))));
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  BEGIN
    IF pg_catalog.int8gt(pg_catalog.pg_sequence_last_value(TG_ARGV[0]::pg_catalog.oid), 0) THEN
      PERFORM pg_catalog.setval(TG_ARGV[0]::pg_catalog.oid::pg_catalog.regclass, 0);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    NULL;
  END;
  RETURN NULL;
END
$meshtop$;

CREATE OR REPLACE FUNCTION @schema@.capture_event_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $meshtop$
BEGIN
  INSERT INTO @schema@.dirty_runs (run_id)
  SELECT NEW.run_id
  FROM @schema@.capture_until g
  WHERE pg_catalog.int8gt(g.last_value, pg_catalog.int8(pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.now()))));
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  BEGIN
    IF pg_catalog.int8gt(pg_catalog.pg_sequence_last_value(TG_ARGV[0]::pg_catalog.oid), 0) THEN
      PERFORM pg_catalog.setval(TG_ARGV[0]::pg_catalog.oid::pg_catalog.regclass, 0);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    NULL;
  END;
  RETURN NULL;
END
$meshtop$;

-- Statement-level: deletes of runs, updates and deletes of events, TRUNCATE.
-- Rare, and bulk when they happen: they read the sequence itself, and catch
-- every error in one block per statement. A TRUNCATE's rebuild marker is
-- one row and is logged whether capture is on or off.
CREATE OR REPLACE FUNCTION @schema@.capture_runs_bulk() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO @schema@.dirty_keys (workflow_id, hour)
    SELECT DISTINCT o.workflow_id, date_trunc('hour', o.started_at, 'UTC') FROM meshtop_old o
    WHERE (SELECT g.last_value FROM @schema@.capture_until g) > date_part('epoch', now());
  ELSE -- TRUNCATE
    INSERT INTO @schema@.dirty_keys (workflow_id, hour) VALUES (NULL, NULL);
  END IF;
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  BEGIN
    IF pg_catalog.int8gt(pg_catalog.pg_sequence_last_value(TG_ARGV[0]::pg_catalog.oid), 0) THEN
      PERFORM pg_catalog.setval(TG_ARGV[0]::pg_catalog.oid::pg_catalog.regclass, 0);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    NULL;
  END;
  RETURN NULL;
END
$meshtop$;

CREATE OR REPLACE FUNCTION @schema@.capture_events_bulk() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    INSERT INTO @schema@.dirty_keys (workflow_id, hour) VALUES (NULL, NULL);
  ELSIF (SELECT g.last_value FROM @schema@.capture_until g) <= date_part('epoch', now()) THEN
    NULL; -- capture is off
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO @schema@.dirty_runs (run_id)
    SELECT n.run_id FROM meshtop_new n UNION SELECT o.run_id FROM meshtop_old o;
  ELSE -- DELETE
    INSERT INTO @schema@.dirty_runs (run_id)
    SELECT DISTINCT o.run_id FROM meshtop_old o
    WHERE o.type IN ('step_started', 'step_succeeded', 'step_failed');
  END IF;
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  BEGIN
    IF pg_catalog.int8gt(pg_catalog.pg_sequence_last_value(TG_ARGV[0]::pg_catalog.oid), 0) THEN
      PERFORM pg_catalog.setval(TG_ARGV[0]::pg_catalog.oid::pg_catalog.regclass, 0);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    NULL;
  END;
  RETURN NULL;
END
$meshtop$;

-- The triggers. CREATE OR REPLACE TRIGGER takes SHARE ROW EXCLUSIVE on the
-- table (and on each partition of workflow_events): it waits for writers
-- still in a transaction and, while it waits, makes new writers wait behind
-- it, but a plain reader does not block it. DROP TRIGGER would take ACCESS
-- EXCLUSIVE, which queues behind any open reader and blocks every reader and
-- writer behind it. The installer runs this file with a short lock_timeout
-- and retries (docs/OPERATIONS.md, "Locks on MeshHook's tables").
-- The tag in meshtop's object names on MeshHook's tables.
CREATE OR REPLACE FUNCTION @schema@.capture_tag() RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT 'meshtop_' || substr(md5(@schema@.schema_name()), 1, 10)
$meshtop$;

-- The row-level triggers (MeshHook's hot path: run inserts and updates,
-- step-event inserts), created or enabled (p_on), or disabled. In WAL
-- capture (025_wal.sql, capture_state.mode = 'wal') they are disabled, then
-- dropped as soon as their locks come free (capture_row_triggers_drop): the
-- slot reads the same changes from the WAL. Disabling takes SHARE ROW
-- EXCLUSIVE (as creating does), dropping ACCESS EXCLUSIVE, which a refresh
-- reading the tables conflicts with: under writers and refreshes, a drop
-- may need many tries, and a switch must not wait for them.
CREATE OR REPLACE FUNCTION @schema@.capture_row_triggers(p_on boolean) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  tag text := @schema@.capture_tag();
  s text := pg_catalog.quote_ident(@schema@.schema_name());
  -- The argument of every capture function: capture_until's OID.
  g text := pg_catalog.quote_literal(((s || '.capture_until')::pg_catalog.regclass::pg_catalog.oid)::pg_catalog.text);
BEGIN
  IF NOT p_on THEN
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgrelid = 'public.workflow_runs'::pg_catalog.regclass AND t.tgname = tag || '_runs_ins') THEN
      EXECUTE pg_catalog.format('ALTER TABLE public.workflow_runs DISABLE TRIGGER %I', tag || '_runs_ins');
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgrelid = 'public.workflow_runs'::pg_catalog.regclass AND t.tgname = tag || '_runs_upd') THEN
      EXECUTE pg_catalog.format('ALTER TABLE public.workflow_runs DISABLE TRIGGER %I', tag || '_runs_upd');
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgrelid = 'public.workflow_events'::pg_catalog.regclass AND t.tgname = tag || '_events_ins') THEN
      EXECUTE pg_catalog.format('ALTER TABLE public.workflow_events DISABLE TRIGGER %I', tag || '_events_ins');
    END IF;
    RETURN;
  END IF;
  PERFORM @schema@.capture_statement_triggers(false);
  EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER %I AFTER INSERT ON public.workflow_runs FOR EACH ROW EXECUTE FUNCTION %s.capture_run_insert(%s)',
    tag || '_runs_ins', s, g);
  EXECUTE pg_catalog.format($q$CREATE OR REPLACE TRIGGER %I AFTER UPDATE ON public.workflow_runs FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.finished_at IS DISTINCT FROM NEW.finished_at
          OR OLD.started_at IS DISTINCT FROM NEW.started_at OR OLD.workflow_id IS DISTINCT FROM NEW.workflow_id)
    EXECUTE FUNCTION %s.capture_run_update(%s)$q$, tag || '_runs_upd', s, g);
  EXECUTE pg_catalog.format($q$CREATE OR REPLACE TRIGGER %I AFTER INSERT ON public.workflow_events FOR EACH ROW
    WHEN (NEW.type IN ('step_started', 'step_succeeded', 'step_failed'))
    EXECUTE FUNCTION %s.capture_event_insert(%s)$q$, tag || '_events_ins', s, g);
END
$meshtop$;

-- Drops the row-level triggers that are disabled (WAL capture), if any.
CREATE OR REPLACE FUNCTION @schema@.capture_row_triggers_drop() RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  r record;
  n int := 0;
BEGIN
  FOR r IN
    SELECT t.tgname, t.tgrelid::regclass::text AS rel FROM pg_trigger t
    WHERE t.tgparentid = 0 AND t.tgenabled = 'D'
      AND (t.tgrelid, t.tgname) IN (('public.workflow_runs'::regclass, @schema@.capture_tag() || '_runs_ins'),
                                    ('public.workflow_runs'::regclass, @schema@.capture_tag() || '_runs_upd'),
                                    ('public.workflow_events'::regclass, @schema@.capture_tag() || '_events_ins'))
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
    n := n + 1;
  END LOOP;
  RETURN n > 0;
END
$meshtop$;

-- Whether the three row-level triggers exist (and are enabled).
CREATE OR REPLACE FUNCTION @schema@.capture_triggers_exist() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT count(*) = 3 FROM pg_trigger t
  WHERE t.tgparentid = 0 AND t.tgenabled <> 'D'
    AND (t.tgrelid, t.tgname) IN (('public.workflow_runs'::regclass, @schema@.capture_tag() || '_runs_ins'),
                                  ('public.workflow_runs'::regclass, @schema@.capture_tag() || '_runs_upd'),
                                  ('public.workflow_events'::regclass, @schema@.capture_tag() || '_events_ins'))
$meshtop$;

-- Whether the triggers WAL capture relies on exist (and are enabled): a
-- moved run's old key, deleted runs' keys, TRUNCATE, and events updated or
-- deleted.
CREATE OR REPLACE FUNCTION @schema@.capture_wal_triggers_missing() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT string_agg(w.name, ', ' ORDER BY w.name)
  FROM (VALUES ('public.workflow_runs'::regclass, @schema@.capture_tag() || '_runs_move'),
               ('public.workflow_runs'::regclass, @schema@.capture_tag() || '_runs_del'),
               ('public.workflow_runs'::regclass, @schema@.capture_tag() || '_runs_trunc'),
               ('public.workflow_events'::regclass, @schema@.capture_tag() || '_events_upd'),
               ('public.workflow_events'::regclass, @schema@.capture_tag() || '_events_del'),
               ('public.workflow_events'::regclass, @schema@.capture_tag() || '_events_trunc')) w(rel, name)
  WHERE NOT EXISTS (SELECT FROM pg_trigger t
                    WHERE t.tgrelid = w.rel AND t.tgname = w.name AND t.tgparentid = 0 AND t.tgenabled <> 'D')
$meshtop$;

-- The triggers of every mode (CREATE OR REPLACE: SHARE ROW EXCLUSIVE on
-- the two tables for a moment; callers run it under a short lock_timeout):
-- deletes, TRUNCATE, events updated or deleted, statement-level; and a
-- moved run (workflow_id or started_at changed: a correction), row-level.
-- WAL capture reads which runs changed from the WAL and where they are now
-- from the table, so the bucket a moved run left comes from the
-- '_runs_move' trigger. Its WHEN clause is false for every update
-- MeshHook's workers make (status, finished_at): it is then never called
-- and queues nothing. With the row-level triggers too (triggers mode) a
-- move is logged twice: harmless. Run by this file, by the switch to WAL
-- capture (capture_wal_prepare) and with the row-level triggers
-- (capture_row_triggers(true)), so that a trigger dropped by hand comes back.
-- p_replace: replace them even if they all exist (an install: a trigger an
-- older meshtop defined differently is replaced).
CREATE OR REPLACE FUNCTION @schema@.capture_statement_triggers(p_replace boolean) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  tag text := @schema@.capture_tag();
  s text := pg_catalog.quote_ident(@schema@.schema_name());
  -- The argument of every capture function: capture_until's OID.
  g text := pg_catalog.quote_literal(((s || '.capture_until')::pg_catalog.regclass::pg_catalog.oid)::pg_catalog.text);
BEGIN
  IF NOT p_replace AND @schema@.capture_wal_triggers_missing() IS NULL THEN
    RETURN; -- all there: no lock taken
  END IF;
  EXECUTE pg_catalog.format($q$CREATE OR REPLACE TRIGGER %I AFTER UPDATE ON public.workflow_runs FOR EACH ROW
    WHEN (OLD.started_at IS DISTINCT FROM NEW.started_at OR OLD.workflow_id IS DISTINCT FROM NEW.workflow_id)
    EXECUTE FUNCTION %s.capture_run_update(%s)$q$, tag || '_runs_move', s, g);
  EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER %I AFTER DELETE ON public.workflow_runs REFERENCING OLD TABLE AS meshtop_old FOR EACH STATEMENT EXECUTE FUNCTION %s.capture_runs_bulk(%s)',
    tag || '_runs_del', s, g);
  EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER %I AFTER TRUNCATE ON public.workflow_runs FOR EACH STATEMENT EXECUTE FUNCTION %s.capture_runs_bulk(%s)',
    tag || '_runs_trunc', s, g);
  EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER %I AFTER UPDATE ON public.workflow_events REFERENCING OLD TABLE AS meshtop_old NEW TABLE AS meshtop_new FOR EACH STATEMENT EXECUTE FUNCTION %s.capture_events_bulk(%s)',
    tag || '_events_upd', s, g);
  EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER %I AFTER DELETE ON public.workflow_events REFERENCING OLD TABLE AS meshtop_old FOR EACH STATEMENT EXECUTE FUNCTION %s.capture_events_bulk(%s)',
    tag || '_events_del', s, g);
  EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER %I AFTER TRUNCATE ON public.workflow_events FOR EACH STATEMENT EXECUTE FUNCTION %s.capture_events_bulk(%s)',
    tag || '_events_trunc', s, g);
END
$meshtop$;

DO $meshtop$
BEGIN
  -- The row-level triggers, unless the WAL captures (capture_state, 015).
  IF (SELECT c.mode FROM @schema@.capture_state c) <> 'wal' THEN
    PERFORM @schema@.capture_row_triggers(true);
  END IF;
  PERFORM @schema@.capture_statement_triggers(true);
END
$meshtop$;
