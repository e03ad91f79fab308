-- 007_refresh_interrupts: a cancel that lands anywhere in a refresh leaves
-- its log row 'failed', never 'running'.
--
-- Why: 004's refresh_run catches query_canceled only around the REFRESH
-- itself. A cancel (ctrl+c, SIGTERM of `refresh --every`, `x` in the console,
-- statement_timeout) that arrives while refresh_run reads its log row or
-- config before the REFRESH, or while it hands the guard over and notifies
-- after it, aborts the whole statement: the 'running' row committed by
-- refresh_begin stays 'running' (refresh_log_v later calls it 'interrupted'),
-- although the backend was alive and could have recorded the outcome. The
-- same happens when the cancel reaches the server just after refresh_run
-- returned but before its transaction committed.
--
-- Two changes close this:
--   * refresh_run's whole body runs in an outer block whose handler marks
--     the row 'failed' (the REFRESH, if it had finished, is rolled back with
--     the block: the view keeps its previous contents) and releases the
--     guard. Errors of a call that was never valid (an unknown row, another
--     session's row) are raised as before.
--   * refresh_abort(id, error) lets the client that started the refresh
--     record the outcome itself when refresh_run was not reached or did not
--     commit: it marks this session's 'running' row 'failed' and releases the
--     guard. data/store calls it on the same connection after any error of
--     refresh_run and when its context was cancelled before refresh_run ran.

-- Releases this session's guard lock of p_view, if it holds it, handing it to
-- the transaction first (as refresh_run does) so no second refresh starts
-- before this transaction commits the log row. Internal: called by the
-- definer functions below, executable by nobody else.
CREATE FUNCTION @schema@.guard_release(p_view text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
BEGIN
  IF EXISTS (
    SELECT FROM pg_catalog.pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.pid = pg_catalog.pg_backend_pid()
      AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
      AND l.classid = 1835365224::oid AND l.objid = (@schema@.guard_key(p_view))::oid AND l.objsubid = 2
  ) THEN
    -- Re-taking a lock this session holds never waits.
    PERFORM pg_catalog.pg_advisory_xact_lock(1835365224, @schema@.guard_key(p_view));
    PERFORM pg_catalog.pg_advisory_unlock(1835365224, @schema@.guard_key(p_view));
  END IF;
END
$meshtop$;

-- Marks this session's 'running' log row p_log_id 'failed' with p_error and
-- releases the view's guard. Returns the row as it now is (NULL fields when
-- it is not a running refresh of this session: nothing is changed then).
CREATE FUNCTION @schema@.refresh_abort(p_log_id bigint, p_error text) RETURNS @schema@.refresh_log
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_log @schema@.refresh_log;
BEGIN
  UPDATE @schema@.refresh_log g
     SET status = 'failed', finished_at = pg_catalog.clock_timestamp(),
         duration_ms = pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - g.started_at) * 1000,
         error = coalesce(p_error, 'interrupted')
   WHERE g.id = p_log_id AND g.status = 'running' AND g.pid = pg_catalog.pg_backend_pid()
  RETURNING g.* INTO v_log;
  IF FOUND THEN
    PERFORM @schema@.guard_release(v_log.view_name);
    PERFORM pg_catalog.set_config('synchronous_commit', 'on', true);
    PERFORM @schema@.notify(v_log);
  ELSE
    SELECT g.* INTO v_log FROM @schema@.refresh_log g WHERE g.id = p_log_id;
  END IF;
  RETURN v_log;
END
$meshtop$;

-- As in 004, with the whole body inside a block whose handler records the
-- outcome (see the header).
CREATE OR REPLACE FUNCTION @schema@.refresh_run(p_log_id bigint) RETURNS @schema@.refresh_log
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_log @schema@.refresh_log;
  v_populated boolean;
  v_rows bigint;
  v_t0 timestamptz;
  v_msg text;
  v_state text;
  v_lock_timeout text;
  v_work_mem text;
BEGIN
  SELECT g.* INTO v_log FROM @schema@.refresh_log g WHERE g.id = p_log_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'refresh log row % does not exist', p_log_id USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF v_log.status <> 'running' OR v_log.pid <> pg_catalog.pg_backend_pid() THEN
    RAISE EXCEPTION 'refresh log row % is not a running refresh started by this session (status %, pid %)',
      p_log_id, v_log.status, v_log.pid USING ERRCODE = 'invalid_parameter_value';
  END IF;

  BEGIN
    SELECT c.value INTO v_lock_timeout FROM @schema@.config c WHERE c.key = 'lock_timeout';
    PERFORM pg_catalog.set_config('lock_timeout', coalesce(v_lock_timeout, '5s'), true);
    SELECT c.value INTO v_work_mem FROM @schema@.config c WHERE c.key = 'refresh_work_mem';
    IF v_work_mem IS NOT NULL THEN
      PERFORM pg_catalog.set_config('work_mem', v_work_mem, true);
    END IF;

    SELECT c.relispopulated INTO v_populated FROM pg_catalog.pg_class c
    WHERE c.relnamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = @schema@.schema_name())
      AND c.relname = v_log.view_name;

    v_t0 := pg_catalog.clock_timestamp();
    BEGIN
      IF v_populated THEN
        EXECUTE pg_catalog.format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I.%I', @schema@.schema_name(), v_log.view_name);
      ELSE
        EXECUTE pg_catalog.format('REFRESH MATERIALIZED VIEW %I.%I', @schema@.schema_name(), v_log.view_name);
      END IF;
      EXECUTE pg_catalog.format('SELECT count(*) FROM %I.%I', @schema@.schema_name(), v_log.view_name) INTO v_rows;
      UPDATE @schema@.refresh_log g
         SET status = 'ok', finished_at = pg_catalog.clock_timestamp(),
             duration_ms = pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - v_t0) * 1000,
             rows = v_rows, "concurrently" = v_populated
       WHERE g.id = p_log_id
      RETURNING g.* INTO v_log;
    EXCEPTION WHEN query_canceled OR OTHERS THEN
      -- The REFRESH was rolled back: the view keeps its previous contents.
      GET STACKED DIAGNOSTICS v_msg = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE;
      UPDATE @schema@.refresh_log g
         SET status = 'failed', finished_at = pg_catalog.clock_timestamp(),
             duration_ms = pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - v_t0) * 1000,
             error = v_msg || ' (SQLSTATE ' || v_state || ')', "concurrently" = v_populated
       WHERE g.id = p_log_id
      RETURNING g.* INTO v_log;
    END;

    PERFORM @schema@.guard_release(v_log.view_name);
    PERFORM pg_catalog.set_config('synchronous_commit', 'on', true);
    PERFORM @schema@.notify(v_log);
  EXCEPTION WHEN query_canceled OR OTHERS THEN
    -- Interrupted before or after the REFRESH (or in its handler): everything
    -- since the block began is rolled back, the REFRESH included, so the view
    -- keeps its previous contents and the row is 'running' again here.
    GET STACKED DIAGNOSTICS v_msg = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE;
    v_log := @schema@.refresh_abort(p_log_id, v_msg || ' (SQLSTATE ' || v_state || ')');
  END;
  RETURN v_log;
END
$meshtop$;

-- New functions are executable by PUBLIC by default: close them as 005 closes
-- everything, then grant refresh_abort with the other entry points.
DO $meshtop$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['public', 'anon', 'authenticated'] LOOP
    IF r = 'public' OR EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      IF r <> 'public' THEN
        r := pg_catalog.quote_ident(r);
      END IF;
      EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %1$s.guard_release(text), %1$s.refresh_abort(bigint, text) FROM %2$s',
        pg_catalog.quote_ident(@schema@.schema_name()), r);
    END IF;
  END LOOP;
END
$meshtop$;

GRANT EXECUTE ON FUNCTION @schema@.refresh_abort(bigint, text) TO meshtop_refresher;
