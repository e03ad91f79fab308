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
-- SECURITY DEFINER: MeshHook's roles have no privilege on this schema. The
-- row-level functions carry no SET clause (a SET costs a configuration
-- save and restore on every call, i.e. on every write): instead every name
-- in them is schema-qualified and they use no operator, so the caller's
-- search_path cannot change what they do. Trigger names carry a hash of the
-- schema name, so several meshtop schemas in one database keep their own;
-- uninstall drops them by their functions' schema.
--
-- What these triggers cannot see (statements naming a partition directly,
-- ATTACH/DETACH/DROP of a partition) is found at refresh time by the
-- partition fingerprint in 030_rollup.sql, or not at all (DML addressed to a
-- partition by name): docs/REFRESH.md lists each case.

-- Before 009's final form the capture was statement-level on every
-- operation; these are its functions.
DROP FUNCTION IF EXISTS @schema@.capture_runs() CASCADE;
DROP FUNCTION IF EXISTS @schema@.capture_events() CASCADE;

CREATE OR REPLACE FUNCTION @schema@.capture_run_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $meshtop$
BEGIN
  INSERT INTO @schema@.dirty_keys (workflow_id, hour)
  VALUES (NEW.workflow_id, pg_catalog.date_trunc('hour', NEW.started_at, 'UTC'));
  RETURN NULL;
END
$meshtop$;

CREATE OR REPLACE FUNCTION @schema@.capture_run_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $meshtop$
BEGIN
  INSERT INTO @schema@.dirty_keys (workflow_id, hour)
  VALUES (NEW.workflow_id, pg_catalog.date_trunc('hour', NEW.started_at, 'UTC')),
         (OLD.workflow_id, pg_catalog.date_trunc('hour', OLD.started_at, 'UTC'));
  RETURN NULL;
END
$meshtop$;

CREATE OR REPLACE FUNCTION @schema@.capture_event_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $meshtop$
BEGIN
  INSERT INTO @schema@.dirty_runs (run_id) VALUES (NEW.run_id);
  RETURN NULL;
END
$meshtop$;

-- Statement-level: deletes of runs, updates and deletes of events, TRUNCATE.
CREATE OR REPLACE FUNCTION @schema@.capture_runs_bulk() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO @schema@.dirty_keys (workflow_id, hour)
    SELECT DISTINCT o.workflow_id, pg_catalog.date_trunc('hour', o.started_at, 'UTC') FROM meshtop_old o;
  ELSE -- TRUNCATE
    INSERT INTO @schema@.dirty_keys (workflow_id, hour) VALUES (NULL, NULL);
  END IF;
  RETURN NULL;
END
$meshtop$;

CREATE OR REPLACE FUNCTION @schema@.capture_events_bulk() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    INSERT INTO @schema@.dirty_runs (run_id)
    SELECT n.run_id FROM meshtop_new n UNION SELECT o.run_id FROM meshtop_old o;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO @schema@.dirty_runs (run_id)
    SELECT DISTINCT o.run_id FROM meshtop_old o
    WHERE o.type IN ('step_started', 'step_succeeded', 'step_failed');
  ELSE -- TRUNCATE
    INSERT INTO @schema@.dirty_keys (workflow_id, hour) VALUES (NULL, NULL);
  END IF;
  RETURN NULL;
END
$meshtop$;

DO $meshtop$
DECLARE
  tag text := 'meshtop_' || pg_catalog.substr(pg_catalog.md5(@schema@.schema_name()), 1, 10);
  s text := pg_catalog.quote_ident(@schema@.schema_name());
  t record;
BEGIN
  FOR t IN
    SELECT * FROM (VALUES
      ('public.workflow_runs', '_runs'),
      ('public.workflow_events', '_events')) AS v(tbl, suffix)
  LOOP
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', tag || t.suffix || '_ins', t.tbl);
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', tag || t.suffix || '_upd', t.tbl);
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', tag || t.suffix || '_del', t.tbl);
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', tag || t.suffix || '_trunc', t.tbl);
  END LOOP;

  EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER INSERT ON public.workflow_runs FOR EACH ROW EXECUTE FUNCTION %s.capture_run_insert()',
    tag || '_runs_ins', s);
  EXECUTE pg_catalog.format($q$CREATE TRIGGER %I AFTER UPDATE ON public.workflow_runs FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.finished_at IS DISTINCT FROM NEW.finished_at
          OR OLD.started_at IS DISTINCT FROM NEW.started_at OR OLD.workflow_id IS DISTINCT FROM NEW.workflow_id)
    EXECUTE FUNCTION %s.capture_run_update()$q$, tag || '_runs_upd', s);
  EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER DELETE ON public.workflow_runs REFERENCING OLD TABLE AS meshtop_old FOR EACH STATEMENT EXECUTE FUNCTION %s.capture_runs_bulk()',
    tag || '_runs_del', s);
  EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER TRUNCATE ON public.workflow_runs FOR EACH STATEMENT EXECUTE FUNCTION %s.capture_runs_bulk()',
    tag || '_runs_trunc', s);

  EXECUTE pg_catalog.format($q$CREATE TRIGGER %I AFTER INSERT ON public.workflow_events FOR EACH ROW
    WHEN (NEW.type IN ('step_started', 'step_succeeded', 'step_failed'))
    EXECUTE FUNCTION %s.capture_event_insert()$q$, tag || '_events_ins', s);
  EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER UPDATE ON public.workflow_events REFERENCING OLD TABLE AS meshtop_old NEW TABLE AS meshtop_new FOR EACH STATEMENT EXECUTE FUNCTION %s.capture_events_bulk()',
    tag || '_events_upd', s);
  EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER DELETE ON public.workflow_events REFERENCING OLD TABLE AS meshtop_old FOR EACH STATEMENT EXECUTE FUNCTION %s.capture_events_bulk()',
    tag || '_events_del', s);
  EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER TRUNCATE ON public.workflow_events FOR EACH STATEMENT EXECUTE FUNCTION %s.capture_events_bulk()',
    tag || '_events_trunc', s);
END
$meshtop$;
