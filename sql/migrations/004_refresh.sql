-- 004_refresh: the refresh engine — a log, a per-view guard, and entry points
-- callable by non-owners.
--
-- Why this shape:
--   * PostgreSQL records no last-refresh time and (on 15) has no progress view
--     for REFRESH, so meshtop keeps its own log. A refresh is recorded as
--     'running' by refresh_begin in a transaction the caller commits BEFORE
--     refresh_run starts: a terminated backend writes nothing afterwards, and
--     refresh_log_v then reports that row as 'interrupted' because the
--     backend no longer holds the view's guard lock.
--   * The guard is a session advisory lock per view (key 0x6d657368 =
--     'mesh', hashtext(schema || '.' || view)): at most one refresh of a view
--     at a time; a second caller either waits (p_wait) or is logged as
--     'skipped' with who is refreshing.
--   * On PostgreSQL 15 only the owner may refresh a materialized view, so the
--     entry points are SECURITY DEFINER functions owned by the installing
--     role, with search_path pinned to pg_catalog, pg_temp and every name
--     qualified: nothing in a caller's search_path can be picked up.
--   * A SECURITY DEFINER procedure cannot COMMIT, so the procedure refresh()
--     that pg_cron and psql call is SECURITY INVOKER and calls the definer
--     functions between its own COMMITs.
--   * refresh_run catches errors (query_canceled named explicitly: OTHERS
--     does not catch it) in a BEGIN ... EXCEPTION block: the REFRESH is rolled
--     back to the block's savepoint, so the view keeps its previous contents,
--     the row is marked 'failed' with the error, and the function returns
--     normally so the caller's transaction commits the log row.
--   * lock_timeout comes from config and is applied with set_config(..., true)
--     inside refresh_run, before the REFRESH. statement_timeout cannot be set
--     from inside a function; callers set it around their call.

-- One row per refresh attempt.
CREATE TABLE @schema@.refresh_log (
  id               bigserial PRIMARY KEY,
  view_name        text NOT NULL,
  started_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  finished_at      timestamptz,
  duration_ms      float8,
  rows             bigint,
  status           text NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'skipped')),
  error            text,
  pid              int,
  triggered_by     text,
  application_name text,
  "concurrently"   bool, -- a keyword: always write it quoted
  data_as_of       timestamptz
);
-- Pruning in refresh_begin and "latest ok refresh per view" lookups.
CREATE INDEX refresh_log_started_at_idx ON @schema@.refresh_log (started_at);
CREATE INDEX refresh_log_view_status_idx ON @schema@.refresh_log (view_name, status, id DESC);

-- The views meshtop refreshes, in dependency-free refresh order.
CREATE FUNCTION @schema@.view_names() RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $meshtop$
  SELECT ARRAY['mv_workflow_metrics_hourly', 'mv_workflow_metrics', 'mv_step_metrics']
$meshtop$;

-- Second half of a view's guard-lock key.
CREATE FUNCTION @schema@.guard_key(p_view text) RETURNS int
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT pg_catalog.hashtext(@schema@.schema_name() || '.' || p_view)
$meshtop$;

-- Whether backend p_pid holds the guard lock of view p_view.
CREATE FUNCTION @schema@.guard_held(p_view text, p_pid int) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT EXISTS (
    SELECT FROM pg_catalog.pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
      AND l.classid = 1835365224::oid
      AND l.objid = (@schema@.guard_key(p_view))::oid
      AND l.objsubid = 2
      AND l.pid = p_pid)
$meshtop$;

CREATE FUNCTION @schema@.notify(p_log @schema@.refresh_log) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT pg_catalog.pg_notify('meshtop_refresh', pg_catalog.json_build_object(
    'schema', @schema@.schema_name(), 'log_id', p_log.id, 'view', p_log.view_name,
    'status', p_log.status, 'pid', p_log.pid)::text)
$meshtop$;

-- Starts a refresh of p_view: takes the view's guard lock (waiting for it
-- when p_wait) and logs a 'running' row, or logs a 'skipped' row naming the
-- holder. Also prunes log rows older than config log_retention. The caller
-- must COMMIT before calling refresh_run with the returned id, so the
-- 'running' row survives whatever happens to the refresh.
CREATE FUNCTION @schema@.refresh_begin(p_view text, p_wait boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_key int;
  v_holder int;
  v_since timestamptz;
  v_log @schema@.refresh_log;
  v_retention interval;
  v_max interval;
  v_overdue boolean := false;
BEGIN
  IF p_view IS NULL OR NOT (p_view = ANY (@schema@.view_names())) THEN
    RAISE EXCEPTION 'unknown view %; meshtop refreshes %', coalesce(p_view, 'NULL'),
      pg_catalog.array_to_string(@schema@.view_names(), ', ')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;

  SELECT c.value::interval INTO v_retention FROM @schema@.config c WHERE c.key = 'log_retention';
  IF v_retention IS NOT NULL THEN
    DELETE FROM @schema@.refresh_log l WHERE l.started_at < pg_catalog.now() - v_retention;
  END IF;

  -- The caller's COMMIT of this row must be durable even where
  -- synchronous_commit is off: after a crash the row is what tells that the
  -- attempt was interrupted.
  PERFORM pg_catalog.set_config('synchronous_commit', 'on', true);

  v_key := @schema@.guard_key(p_view);
  IF p_wait THEN
    PERFORM pg_catalog.pg_advisory_lock(1835365224, v_key);
  ELSIF NOT pg_catalog.pg_try_advisory_lock(1835365224, v_key) THEN
    SELECT l.pid INTO v_holder FROM pg_catalog.pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
      AND l.classid = 1835365224::oid AND l.objid = v_key::oid AND l.objsubid = 2
    LIMIT 1;
    SELECT max(g.started_at) INTO v_since FROM @schema@.refresh_log g
    WHERE g.view_name = p_view AND g.status = 'running' AND g.pid = v_holder;
    -- A holder running past max_refresh_duration is cancelled (it logs
    -- 'failed' and keeps the view's contents); this call still skips, and
    -- the next one runs.
    SELECT c.value::interval INTO v_max FROM @schema@.config c WHERE c.key = 'max_refresh_duration';
    IF v_holder IS NOT NULL AND v_since IS NOT NULL AND v_max IS NOT NULL
       AND pg_catalog.clock_timestamp() - v_since > v_max THEN
      v_overdue := pg_catalog.pg_cancel_backend(v_holder);
    END IF;
    INSERT INTO @schema@.refresh_log AS g (view_name, started_at, finished_at, duration_ms, status, error,
      pid, triggered_by, application_name, "concurrently", data_as_of)
    VALUES (p_view, pg_catalog.clock_timestamp(), pg_catalog.clock_timestamp(), 0, 'skipped',
      pg_catalog.format('already refreshing (pid %s since %s)%s', coalesce(v_holder::text, '?'),
        coalesce(pg_catalog.to_char(v_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '?'),
        CASE WHEN v_overdue THEN pg_catalog.format('; cancelled it: running longer than max_refresh_duration %s', v_max) ELSE '' END),
      pg_catalog.pg_backend_pid(), session_user, pg_catalog.current_setting('application_name'),
      NULL, @schema@.clock())
    RETURNING g.* INTO v_log;
    PERFORM @schema@.notify(v_log);
    RETURN v_log.id;
  END IF;

  INSERT INTO @schema@.refresh_log AS g (view_name, status, pid, triggered_by, application_name,
    "concurrently", data_as_of)
  SELECT p_view, 'running', pg_catalog.pg_backend_pid(), session_user,
    pg_catalog.current_setting('application_name'), c.relispopulated, @schema@.clock()
  FROM pg_catalog.pg_class c
  WHERE c.relnamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = @schema@.schema_name())
    AND c.relname = p_view
  RETURNING g.* INTO v_log;
  PERFORM @schema@.notify(v_log);
  RETURN v_log.id;
END
$meshtop$;

-- Runs the refresh logged as 'running' by refresh_begin in this session:
-- REFRESH (CONCURRENTLY when the view is populated, plain the first time)
-- under config lock_timeout, then marks the row 'ok' (rows, duration) or
-- 'failed' (error), releases the guard lock and notifies. Returns the row.
CREATE FUNCTION @schema@.refresh_run(p_log_id bigint) RETURNS @schema@.refresh_log
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

  -- Hand the guard over to this transaction before releasing the session
  -- lock: it is held until COMMIT, so no second refresh starts (and queues
  -- on the view lock this transaction still holds) and refresh_log_v does
  -- not read the finishing attempt as 'interrupted' in between. Re-taking
  -- a lock this session holds never waits.
  PERFORM pg_catalog.pg_advisory_xact_lock(1835365224, @schema@.guard_key(v_log.view_name));
  PERFORM pg_catalog.pg_advisory_unlock(1835365224, @schema@.guard_key(v_log.view_name));
  PERFORM pg_catalog.set_config('synchronous_commit', 'on', true);
  PERFORM @schema@.notify(v_log);
  RETURN v_log;
END
$meshtop$;

-- For pg_cron and psql: refresh one view (p_view) or all of them, each in
-- its own transactions (begin; COMMIT; run; COMMIT). SECURITY INVOKER so it
-- may COMMIT; the caller needs EXECUTE on it and on refresh_begin/refresh_run
-- (role meshtop_refresher). Must be CALLed outside an explicit transaction
-- block.
CREATE PROCEDURE @schema@.refresh(p_view text DEFAULT NULL, p_wait boolean DEFAULT false)
LANGUAGE plpgsql SECURITY INVOKER
-- No SET search_path (a procedure with one cannot COMMIT): every name and
-- operator below is qualified, so a caller's search_path cannot redirect it.
AS $meshtop$
DECLARE
  v text;
  v_id bigint;
  v_status text;
BEGIN
  IF p_view IS NOT NULL AND NOT (p_view OPERATOR(pg_catalog.=) ANY (@schema@.view_names())) THEN
    RAISE EXCEPTION 'unknown view %; meshtop refreshes %', p_view,
      pg_catalog.array_to_string(@schema@.view_names(), ', ')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOREACH v IN ARRAY @schema@.view_names() LOOP
    CONTINUE WHEN p_view IS NOT NULL AND v OPERATOR(pg_catalog.<>) p_view;
    v_id := @schema@.refresh_begin(v, p_wait);
    COMMIT;
    SELECT g.status INTO v_status FROM @schema@.refresh_log g WHERE g.id OPERATOR(pg_catalog.=) v_id;
    IF v_status OPERATOR(pg_catalog.=) 'running' THEN
      PERFORM @schema@.refresh_run(v_id);
      COMMIT;
    END IF;
  END LOOP;
END
$meshtop$;

-- Cancels (pg_cancel_backend) the refreshes holding the guard lock of p_view,
-- or of every view when p_view is null. The cancelled refresh catches the
-- cancel, logs 'failed' and keeps the view's contents. Returns how many
-- backends were signalled. Signalling another role's backend needs the owner
-- to be a superuser or a member of pg_signal_backend.
CREATE FUNCTION @schema@.refresh_cancel(p_view text DEFAULT NULL) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_n int := 0;
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
    IF pg_catalog.pg_cancel_backend(r.pid) THEN
      v_n := v_n + 1;
    END IF;
  END LOOP;
  RETURN v_n;
END
$meshtop$;

-- The log with a derived state: a 'running' row whose backend no longer
-- holds the view's guard lock was interrupted (terminated backend, crash,
-- lost connection) and will never finish.
CREATE VIEW @schema@.refresh_log_v AS
SELECT g.*,
       CASE WHEN g.status = 'running' AND NOT @schema@.guard_held(g.view_name, g.pid)
            THEN 'interrupted' ELSE g.status END AS state
FROM @schema@.refresh_log g;

-- One row per view: is it populated, how big, how fresh, how long refreshes
-- take, what happened last and what is running now.
CREATE VIEW @schema@.refresh_status AS
WITH v AS (
  SELECT u.view_name, u.ord
  FROM pg_catalog.unnest(@schema@.view_names()) WITH ORDINALITY AS u(view_name, ord)
)
SELECT v.view_name,
       c.relispopulated AS populated,
       ok.rows,
       -- Heap + TOAST + indexes from pg_class.relpages, NOT
       -- pg_total_relation_size(): that opens the view with ACCESS SHARE and
       -- so queues behind a plain (first) refresh's ACCESS EXCLUSIVE lock,
       -- freezing every dashboard poll for the whole refresh. relpages is
       -- exact after a plain refresh (its index rebuild updates it) and
       -- refreshed by (auto)vacuum after CONCURRENTLY ones.
       (SELECT pg_catalog.sum(r.relpages)::bigint * pg_catalog.current_setting('block_size')::bigint
          FROM pg_catalog.pg_class r
         WHERE r.oid = c.oid OR r.oid = c.reltoastrelid
            OR r.oid IN (SELECT i.indexrelid FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid)) AS size_bytes,
       ok.data_as_of AS last_refresh_at,
       @schema@.clock() - ok.data_as_of AS lag,
       ok.duration_ms AS last_duration_ms,
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x.duration_ms)
          FROM (SELECT g.duration_ms FROM @schema@.refresh_log g
                WHERE g.view_name = v.view_name AND g.status = 'ok'
                ORDER BY g.id DESC LIMIT 20) x) AS median_duration_ms,
       last.state AS last_status,
       last.error AS last_error,
       run.id AS running_log_id,
       run.pid AS running_pid,
       run.started_at AS running_since
FROM v
LEFT JOIN pg_catalog.pg_class c
  ON c.relname = v.view_name
 AND c.relnamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = @schema@.schema_name())
LEFT JOIN LATERAL (
  SELECT g.rows, g.data_as_of, g.duration_ms FROM @schema@.refresh_log g
  WHERE g.view_name = v.view_name AND g.status = 'ok'
  ORDER BY g.id DESC LIMIT 1) ok ON true
LEFT JOIN LATERAL (
  SELECT g.state, g.error FROM @schema@.refresh_log_v g
  WHERE g.view_name = v.view_name AND g.status <> 'skipped'
  ORDER BY g.id DESC LIMIT 1) last ON true
LEFT JOIN LATERAL (
  SELECT g.id, g.pid, g.started_at FROM @schema@.refresh_log_v g
  WHERE g.view_name = v.view_name AND g.state = 'running'
  ORDER BY g.id DESC LIMIT 1) run ON true
ORDER BY v.ord;
