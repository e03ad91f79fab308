-- 014_refresh_actor: who asked for a refresh, and who cancelled one, in the
-- refresh log — a person, not only the database role.
--
-- `meshtop serve` runs every SSH operator's refresh as its own login role,
-- so triggered_by (session_user) said `postgres` for all of them, and
-- application_name holds at most 63 bytes: the SSH user and key fingerprint
-- did not fit. A caller that knows who asks sets the custom setting
-- meshtop.actor on its session (store.WithActor: for `serve`,
-- "ssh USER SHA256:<fingerprint>"); refresh_begin's log row takes it from
-- there (a BEFORE INSERT trigger, so refresh_begin itself is unchanged), and
-- refresh_cancel records the canceller of each refresh it signals in
-- refresh_cancels (the cancelled row itself is written by the cancelled
-- backend; updating it from here could wait behind that backend's lock).
-- Neither is a privilege: anyone who may refresh may name themselves, as
-- with application_name. What it adds is accountability among operators
-- who share a login.

ALTER TABLE @schema@.refresh_log ADD COLUMN actor text;

CREATE FUNCTION @schema@.refresh_log_actor() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $meshtop$
BEGIN
  NEW.actor := nullif(pg_catalog.current_setting('meshtop.actor', true), '');
  RETURN NEW;
END
$meshtop$;

CREATE TRIGGER refresh_log_actor BEFORE INSERT ON @schema@.refresh_log
  FOR EACH ROW EXECUTE FUNCTION @schema@.refresh_log_actor();

-- One row per refresh a refresh_cancel() call signalled; pruned with its
-- log row.
CREATE TABLE @schema@.refresh_cancels (
  log_id      bigint NOT NULL REFERENCES @schema@.refresh_log (id) ON DELETE CASCADE,
  canceled_by text NOT NULL,           -- meshtop.actor, else role (application)
  role        text NOT NULL,           -- session_user of the canceller
  at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX refresh_cancels_log_id_idx ON @schema@.refresh_cancels (log_id);

-- As in 004_refresh.sql, plus the record of who cancelled.
CREATE OR REPLACE FUNCTION @schema@.refresh_cancel(p_view text DEFAULT NULL) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_n int := 0;
  v_ids bigint[];
  v_by text := coalesce(nullif(pg_catalog.current_setting('meshtop.actor', true), ''),
                        session_user || coalesce(' (' || nullif(pg_catalog.current_setting('application_name'), '') || ')', ''));
  r record;
BEGIN
  FOR r IN
    SELECT DISTINCT l.pid FROM pg_catalog.pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
      AND l.classid = 1835365224::oid AND l.objsubid = 2
      AND l.objid IN (SELECT (@schema@.guard_key(v))::oid FROM pg_catalog.unnest(@schema@.view_names()) v
                      WHERE p_view IS NULL OR v = p_view)
      AND l.pid <> pg_catalog.pg_backend_pid()
  LOOP
    -- The refreshes signalled, read before the signal: a cancelled
    -- refresh may log itself 'failed' and commit before a read after it.
    SELECT pg_catalog.array_agg(g.id) INTO v_ids FROM @schema@.refresh_log g
    WHERE g.status = 'running' AND g.pid = r.pid AND (p_view IS NULL OR g.view_name = p_view);
    IF pg_catalog.pg_cancel_backend(r.pid) THEN
      v_n := v_n + 1;
      INSERT INTO @schema@.refresh_cancels (log_id, canceled_by, role)
      SELECT i, v_by, session_user FROM pg_catalog.unnest(v_ids) i;
    END IF;
  END LOOP;
  RETURN v_n;
END
$meshtop$;
