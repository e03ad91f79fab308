-- 020_capture: change capture on MeshHook's tables. Repeatable.
--
-- Statement-level AFTER triggers with transition tables on
-- public.workflow_runs and on the partitioned parent public.workflow_events
-- append the (workflow definition, UTC hour of the run's started_at) keys a
-- statement touched to @schema@.dirty_keys, in the writer's own transaction:
--   workflow_runs   INSERT: the new rows' keys; DELETE (retention jobs,
--                   ON DELETE CASCADE from projects and workflow_definitions):
--                   the old rows' keys; UPDATE (a run finishing, a paused run
--                   resuming, a status correction, even a changed started_at
--                   or workflow_id): old and new keys.
--   workflow_events the keys of the runs of the step events inserted, updated
--                   or deleted (found by workflow_runs' primary key). Events
--                   deleted by the cascade from a deleted run find no run
--                   any more; the run's own DELETE logged its key.
--   TRUNCATE        of either table logs the marker (NULL, NULL): rebuild.
-- One firing per statement, one INSERT of a handful of keys: the cost does
-- not grow with the rows of a multi-row statement beyond reading its
-- transition table. No unique constraint, so writers never wait for each
-- other here (docs/REFRESH.md).
--
-- What these triggers cannot see (statements naming a partition directly,
-- ATTACH/DETACH/DROP of a partition) is found at refresh time by the
-- partition fingerprint in 030_rollup.sql, or not at all (DML addressed to a
-- partition by name): docs/REFRESH.md lists each case.
--
-- SECURITY DEFINER: MeshHook's roles have no privilege on this schema; the
-- functions do nothing but append keys. Trigger names carry a hash of the
-- schema name, so several meshtop schemas in one database keep their own;
-- uninstall drops them by their functions' schema.

CREATE OR REPLACE FUNCTION @schema@.capture_runs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO @schema@.dirty_keys (workflow_id, hour)
    SELECT DISTINCT n.workflow_id, pg_catalog.date_trunc('hour', n.started_at, 'UTC') FROM meshtop_new n;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO @schema@.dirty_keys (workflow_id, hour)
    SELECT n.workflow_id, pg_catalog.date_trunc('hour', n.started_at, 'UTC') FROM meshtop_new n
    UNION
    SELECT o.workflow_id, pg_catalog.date_trunc('hour', o.started_at, 'UTC') FROM meshtop_old o;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO @schema@.dirty_keys (workflow_id, hour)
    SELECT DISTINCT o.workflow_id, pg_catalog.date_trunc('hour', o.started_at, 'UTC') FROM meshtop_old o;
  ELSE -- TRUNCATE
    INSERT INTO @schema@.dirty_keys (workflow_id, hour) VALUES (NULL, NULL);
  END IF;
  RETURN NULL;
END
$meshtop$;

CREATE OR REPLACE FUNCTION @schema@.capture_events() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO @schema@.dirty_keys (workflow_id, hour)
    SELECT DISTINCT r.workflow_id, pg_catalog.date_trunc('hour', r.started_at, 'UTC')
    FROM (SELECT DISTINCT n.run_id FROM meshtop_new n
          WHERE n.type IN ('step_started', 'step_succeeded', 'step_failed')) e
    JOIN public.workflow_runs r ON r.id = e.run_id;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO @schema@.dirty_keys (workflow_id, hour)
    SELECT DISTINCT r.workflow_id, pg_catalog.date_trunc('hour', r.started_at, 'UTC')
    FROM (SELECT n.run_id FROM meshtop_new n UNION SELECT o.run_id FROM meshtop_old o) e
    JOIN public.workflow_runs r ON r.id = e.run_id;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO @schema@.dirty_keys (workflow_id, hour)
    SELECT DISTINCT r.workflow_id, pg_catalog.date_trunc('hour', r.started_at, 'UTC')
    FROM (SELECT DISTINCT o.run_id FROM meshtop_old o
          WHERE o.type IN ('step_started', 'step_succeeded', 'step_failed')) e
    JOIN public.workflow_runs r ON r.id = e.run_id;
  ELSE -- TRUNCATE
    INSERT INTO @schema@.dirty_keys (workflow_id, hour) VALUES (NULL, NULL);
  END IF;
  RETURN NULL;
END
$meshtop$;

DO $meshtop$
DECLARE
  tag text := 'meshtop_' || pg_catalog.substr(pg_catalog.md5(@schema@.schema_name()), 1, 10);
  fn_runs text := pg_catalog.format('%I.capture_runs()', @schema@.schema_name());
  fn_events text := pg_catalog.format('%I.capture_events()', @schema@.schema_name());
  t record;
BEGIN
  FOR t IN
    SELECT * FROM (VALUES
      ('public.workflow_runs', fn_runs, '_runs'),
      ('public.workflow_events', fn_events, '_events')) AS v(tbl, fn, suffix)
  LOOP
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', tag || t.suffix || '_ins', t.tbl);
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', tag || t.suffix || '_upd', t.tbl);
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', tag || t.suffix || '_del', t.tbl);
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', tag || t.suffix || '_trunc', t.tbl);
    EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS meshtop_new FOR EACH STATEMENT EXECUTE FUNCTION %s',
      tag || t.suffix || '_ins', t.tbl, t.fn);
    EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS meshtop_old NEW TABLE AS meshtop_new FOR EACH STATEMENT EXECUTE FUNCTION %s',
      tag || t.suffix || '_upd', t.tbl, t.fn);
    EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS meshtop_old FOR EACH STATEMENT EXECUTE FUNCTION %s',
      tag || t.suffix || '_del', t.tbl, t.fn);
    EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s',
      tag || t.suffix || '_trunc', t.tbl, t.fn);
  END LOOP;
END
$meshtop$;
