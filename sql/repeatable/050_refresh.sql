-- 050_refresh: refresh_run over the rollup, the log view with the refresh
-- mode, and verify(). Repeatable. refresh_begin, refresh(), refresh_abort
-- and the guard are unchanged (004_refresh.sql, 007_refresh_interrupts.sql);
-- so is refresh_run's contract: it refreshes the view logged as 'running' by
-- refresh_begin in this session, catches every error (the view and the
-- rollup keep their previous contents, the row says 'failed'), releases the
-- guard and returns the row.
--
-- Session settings: refresh_run, verify and every function they call that
-- turns time into text or back carry the same SET clauses (TimeZone UTC,
-- DateStyle ISO, extra_float_digits 1, ...), so a refresher's PGTZ, DateStyle
-- or locale changes neither what a refresh computes nor whether it is
-- incremental (docs/REFRESH.md, "Session settings"). quote_all_identifiers
-- is pinned off because REFRESH MATERIALIZED VIEW CONCURRENTLY itself fails
-- under it on PostgreSQL 15 (it names its diff table by appending "_2" to a
-- quoted name: syntax error at or near "_2"). extra_float_digits matters to
-- verify, which compares rows as jsonb: at -15 a float prints with one
-- significant digit and a 1% drift compared equal.
--
-- What is new: before refreshing, refresh_run applies the dirty-key log to
-- the rollup (rollup_apply in 030_rollup.sql) in the same transaction, so a
-- cancelled or terminated refresh rolls the rollup and the log back together
-- and the next refresh finds the same keys. The row records the mode
-- ('incremental' or 'full') and the log rows consumed. The hourly view is a
-- plain view: its refresh is the apply alone.

CREATE OR REPLACE FUNCTION @schema@.refresh_run(p_log_id bigint) RETURNS @schema@.refresh_log
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- The refresh settings (docs/REFRESH.md, "Session settings").
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on
AS $meshtop$
DECLARE
  v_log @schema@.refresh_log;
  v_populated boolean;
  v_kind "char";
  v_rows bigint;
  v_t0 timestamptz;
  v_msg text;
  v_state text;
  v_lock_timeout text;
  v_work_mem text;
  v_mode text;
  v_keys bigint;
  v_cells text;    -- the kind of window cell the view reads (the hourly view: none)
BEGIN
  SELECT g.* INTO v_log FROM @schema@.refresh_log g WHERE g.id = p_log_id;
  v_cells := CASE v_log.view_name WHEN 'mv_workflow_metrics' THEN 'runs' WHEN 'mv_step_metrics' THEN 'steps' END;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'refresh log row % does not exist', p_log_id USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF v_log.status <> 'running' OR v_log.pid <> pg_catalog.pg_backend_pid() THEN
    RAISE EXCEPTION 'refresh log row % is not a running refresh started by this session (status %, pid %)',
      p_log_id, v_log.status, v_log.pid USING ERRCODE = 'invalid_parameter_value';
  END IF;

  -- The outer block records a cancel that lands before or after the
  -- refresh itself (007_refresh_interrupts).
  BEGIN
    SELECT c.value INTO v_lock_timeout FROM @schema@.config c WHERE c.key = 'lock_timeout';
    PERFORM pg_catalog.set_config('lock_timeout', coalesce(v_lock_timeout, '5s'), true);
    SELECT c.value INTO v_work_mem FROM @schema@.config c WHERE c.key = 'refresh_work_mem';
    IF v_work_mem IS NOT NULL THEN
      PERFORM pg_catalog.set_config('work_mem', v_work_mem, true);
    END IF;
    -- No JIT: the rollup's queries are cheap but their estimates (unnested
    -- histograms, key arrays) are not, and compiling them cost seconds, many
    -- times the queries themselves.
    PERFORM pg_catalog.set_config('jit', 'off', true);

    SELECT c.relispopulated, c.relkind INTO v_populated, v_kind FROM pg_catalog.pg_class c
    WHERE c.relnamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = @schema@.schema_name())
      AND c.relname = v_log.view_name;

    v_t0 := pg_catalog.clock_timestamp();
    BEGIN
      SELECT a.mode, a.dirty_keys INTO v_mode, v_keys
      FROM @schema@.rollup_apply(CASE WHEN v_cells IS NULL THEN ARRAY[]::text[] ELSE ARRAY[v_cells] END) a;
      IF v_kind = 'm' AND v_populated THEN
        EXECUTE pg_catalog.format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I.%I', @schema@.schema_name(), v_log.view_name);
      ELSIF v_kind = 'm' THEN
        EXECUTE pg_catalog.format('REFRESH MATERIALIZED VIEW %I.%I', @schema@.schema_name(), v_log.view_name);
      END IF;
      IF v_kind = 'v' THEN
        -- The hourly view: the rollup's hours before the hour of the
        -- cells' clock (every row rollup_runs_hour holds below it, after the
        -- apply: rollup_state.hour_rows less those at or after it) plus
        -- what the view reads from the runs from that hour on. Counting the
        -- view would read every workflow's every hour of 30 days.
        EXECUTE pg_catalog.format($q$
          SELECT s.hour_rows
                 - (SELECT count(*) FROM %1$I.rollup_runs_hour h WHERE h.bucket >= pg_catalog.date_trunc('hour', s.cells_clock, 'UTC'))
                 + (SELECT count(*) FROM %1$I.%2$I v WHERE v.hour >= pg_catalog.date_trunc('hour', s.cells_clock, 'UTC'))
          FROM %1$I.rollup_state s$q$, @schema@.schema_name(), v_log.view_name) INTO v_rows;
      END IF;
      IF v_rows IS NULL THEN
        EXECUTE pg_catalog.format('SELECT count(*) FROM %I.%I', @schema@.schema_name(), v_log.view_name) INTO v_rows;
      END IF;
      -- The data's age: the clock of the cells this view reads when older
      -- than the refresh (an apply running elsewhere made this one go on
      -- with the cells as they were: rollup_apply).
      UPDATE @schema@.refresh_log g
         SET status = 'ok', finished_at = pg_catalog.clock_timestamp(),
             duration_ms = pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - v_t0) * 1000,
             rows = v_rows, "concurrently" = v_populated, mode = v_mode, dirty_keys = v_keys,
             capture = (SELECT c.apply_note FROM @schema@.capture_state c
                        WHERE c.apply_note_xid = pg_catalog.pg_current_xact_id_if_assigned()),
             data_as_of = least(g.data_as_of, (SELECT CASE v_cells WHEN 'runs' THEN s.runs_cells_clock
                                                                          WHEN 'steps' THEN s.steps_cells_clock END
                                               FROM @schema@.rollup_state s))
       WHERE g.id = p_log_id
      RETURNING g.* INTO v_log;
    EXCEPTION WHEN query_canceled OR OTHERS THEN
      -- The REFRESH and the apply were rolled back: the view, the rollup
      -- and the dirty-key log keep their previous contents.
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
    -- Interrupted before or after the refresh (or in its handler):
    -- everything since the block began is rolled back, the apply and the
    -- REFRESH included.
    GET STACKED DIAGNOSTICS v_msg = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE;
    v_log := @schema@.refresh_abort(p_log_id, v_msg || ' (SQLSTATE ' || v_state || ')');
  END;
  RETURN v_log;
END
$meshtop$;

-- The log with a derived state (as in 004) and, appended, the refresh mode
-- and dirty keys consumed, who asked (014_refresh_actor: the caller's
-- meshtop.actor) and who cancelled it (the latest refresh_cancel that
-- signalled it).
CREATE OR REPLACE VIEW @schema@.refresh_log_v AS
SELECT g.id, g.view_name, g.started_at, g.finished_at, g.duration_ms, g.rows, g.status, g.error,
       g.pid, g.triggered_by, g.application_name, g."concurrently", g.data_as_of,
       CASE WHEN g.status = 'running' AND NOT @schema@.guard_held(g.view_name, g.pid)
            THEN 'interrupted' ELSE g.status END AS state,
       g.mode, g.dirty_keys, g.actor,
       (SELECT c.canceled_by FROM @schema@.refresh_cancels c WHERE c.log_id = g.id
        ORDER BY c.at DESC LIMIT 1) AS canceled_by,
       g.capture
FROM @schema@.refresh_log g;

-- Recomputes the rollup of the last p_hours hours (at most the 30-day
-- window) from the raw tables into temporary tables and returns every field
-- of every bucket that differs from the stored rollup, except buckets with
-- keys still waiting in the dirty-key log (the next refresh recomputes them).
-- The rollup stores exact values, so any difference is drift. Call it in a
-- REPEATABLE READ transaction, so the log and the raw tables are read in one
-- snapshot. Raises object_not_in_prerequisite_state (55000) when there is
-- nothing to check against: the rollup is not built, or a rebuild is pending.
CREATE OR REPLACE FUNCTION @schema@.verify(p_hours int DEFAULT 720)
RETURNS TABLE (kind text, workflow_id uuid, node_id text, bucket timestamptz, field text, stored text, recomputed text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- The refresh settings (docs/REFRESH.md, "Session settings").
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on
AS $meshtop$
DECLARE
  v_clock timestamptz := @schema@.clock();
  v_from timestamptz;
  v_state @schema@.rollup_state;
  v_pinned text;
  v_s text := quote_ident(@schema@.schema_name());
  v_kclock timestamptz;
  t text;
  u text;
BEGIN
  SELECT s.* INTO v_state FROM @schema@.rollup_state s;
  SELECT coalesce(c.value, '') INTO v_pinned FROM @schema@.config c WHERE c.key = 'clock';
  IF NOT v_state.built THEN
    RAISE EXCEPTION 'the rollup has not been built yet: run a refresh first'
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF v_state.built_clock IS DISTINCT FROM v_pinned
     OR EXISTS (SELECT FROM @schema@.dirty_keys d WHERE d.workflow_id IS NULL) THEN
    RAISE EXCEPTION 'a full rebuild of the rollup is pending: run a refresh first'
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF (SELECT c.rebuild_pending FROM @schema@.capture_status() c) THEN
    -- Changes made while capture was off are in no log: the rollup misses
    -- them until the next refresh rebuilds it.
    RAISE EXCEPTION 'change capture was off (nothing refreshed for longer than config capture_max_age): a full rebuild of the rollup is pending: run a refresh first'
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  v_from := greatest(@schema@.rollup_horizon(v_clock),
                     date_trunc('hour', v_clock - make_interval(hours => greatest(p_hours, 1)), 'UTC'));
  IF p_hours >= 720 AND least(v_state.runs_cells_clock, v_state.steps_cells_clock) IS NOT NULL THEN
    -- The cells are checked too: from the start of their 30-day windows.
    v_from := least(v_from, @schema@.rollup_horizon(least(v_state.runs_cells_clock, v_state.steps_cells_clock)));
  END IF;

  FOREACH t IN ARRAY ARRAY['runs_hour', 'steps_hour', 'runs_day', 'steps_day'] LOOP
    EXECUTE format('DROP TABLE IF EXISTS pg_temp.%I', 'meshtop_verify_' || t);
    EXECUTE format('CREATE TEMP TABLE %I (LIKE %s.%I) ON COMMIT DROP', 'meshtop_verify_' || t, v_s, 'rollup_' || t);
  END LOOP;
  PERFORM @schema@.rollup_recompute(true, NULL, NULL, v_from, v_clock,
    'pg_temp.meshtop_verify_runs_hour'::regclass, 'pg_temp.meshtop_verify_steps_hour'::regclass,
    'pg_temp.meshtop_verify_runs_day'::regclass, 'pg_temp.meshtop_verify_steps_day'::regclass,
    date_trunc('day', coalesce(v_state.cells_clock, v_clock), 'UTC'), NULL);

  FOREACH t IN ARRAY ARRAY['runs_hour', 'steps_hour', 'runs_day', 'steps_day'] LOOP
    RETURN QUERY EXECUTE format($q$
      WITH s AS (
        SELECT x.* FROM %1$s.%2$I x WHERE x.bucket >= $1 AND x.bucket < $2
      ),
      v AS (
        SELECT x.* FROM pg_temp.%3$I x WHERE x.bucket >= $1 AND x.bucket < $2
      ),
      d AS (
        SELECT coalesce(s.workflow_id, v.workflow_id) AS wf, coalesce(%4$s) AS node,
               coalesce(s.bucket, v.bucket) AS b, to_jsonb(s) AS sj, to_jsonb(v) AS vj
        FROM s FULL JOIN v ON v.workflow_id = s.workflow_id AND v.bucket = s.bucket %5$s
        WHERE to_jsonb(s) IS DISTINCT FROM to_jsonb(v)
      )
      SELECT %6$L, d.wf, d.node, d.b, f.key, d.sj ->> f.key, d.vj ->> f.key
      FROM d CROSS JOIN LATERAL jsonb_object_keys(coalesce(d.sj, d.vj)) AS f(key)
      WHERE (d.sj -> f.key) IS DISTINCT FROM (d.vj -> f.key)
        AND (%7$s)
        AND NOT EXISTS (SELECT FROM %1$s.pending_keys() k
                        WHERE k.workflow_id = d.wf AND k.hour >= d.b AND k.hour < d.b + %8$L::interval)
      ORDER BY 2, 3, 4, 5
    $q$, v_s, 'rollup_' || t, 'meshtop_verify_' || t,
      CASE WHEN t LIKE 'steps%' THEN 's.node_id, v.node_id' ELSE 'NULL::text' END,
      CASE WHEN t LIKE 'steps%' THEN 'AND v.node_id = s.node_id' ELSE '' END,
      t,
      -- Days partly before v_from were recomputed from part of their hours.
      CASE WHEN t LIKE '%day' THEN 'd.b >= date_trunc(''day'', $1, ''UTC'') + interval ''24 hours''' ELSE 'true' END,
      CASE WHEN t LIKE '%day' THEN '24 hours' ELSE '1 hour' END)
    -- (Not before the rollup's own horizon: the cells of a kind computed
    -- at an older clock need older hours, which the rollup has dropped.)
    USING greatest(v_from, @schema@.rollup_horizon(coalesce(v_state.cells_clock, v_clock))),
          date_trunc('hour', coalesce(v_state.cells_clock, v_clock), 'UTC');
  END LOOP;

  -- The window cells (035_cells.sql), recomputed from the rollup just
  -- recomputed from the raw tables, each kind at the clock it was computed
  -- at, except those of workflows with keys still in the log or pending for
  -- that kind (cells_pending): what the views show against what the raw
  -- tables give. Reported with bucket = that clock and field
  -- '<window>.<column>'. Only when the whole 30-day window was recomputed
  -- (p_hours >= 720, the default).
  IF p_hours < 720 THEN
    RETURN;
  END IF;
  FOREACH t IN ARRAY ARRAY['runs', 'steps'] LOOP
    v_kclock := CASE t WHEN 'runs' THEN v_state.runs_cells_clock ELSE v_state.steps_cells_clock END;
    CONTINUE WHEN v_kclock IS NULL;
    -- (With empty whole-day caches: every cell's days are merged afresh
    -- from the recomputed days, so a stale cache entry shows as cell drift.)
    FOREACH u IN ARRAY ARRAY['window_runs', 'window_steps', 'window_days_runs', 'window_days_steps'] LOOP
      EXECUTE format('DROP TABLE IF EXISTS pg_temp.%I', 'meshtop_verify_' || u);
      EXECUTE format('CREATE TEMP TABLE %I (LIKE %s.%I INCLUDING INDEXES) ON COMMIT DROP', 'meshtop_verify_' || u, v_s, u);
    END LOOP;
    PERFORM @schema@.cells_recompute(v_kclock, c.wf, c.win,
      'pg_temp.meshtop_verify_window_runs'::regclass, 'pg_temp.meshtop_verify_window_steps'::regclass,
      'pg_temp.meshtop_verify_runs_hour'::regclass, 'pg_temp.meshtop_verify_runs_day'::regclass,
      'pg_temp.meshtop_verify_steps_hour'::regclass, 'pg_temp.meshtop_verify_steps_day'::regclass,
      'pg_temp.meshtop_verify_window_days_runs'::regclass, 'pg_temp.meshtop_verify_window_days_steps'::regclass,
      ARRAY[t])
    FROM @schema@.cells_changed(NULL, v_kclock, NULL, NULL) c;
    RETURN QUERY EXECUTE format($q$
      WITH d AS (
        SELECT coalesce(s.workflow_id, v.workflow_id) AS wf, coalesce(%3$s) AS node,
               coalesce(s."window", v."window") AS win, to_jsonb(s) AS sj, to_jsonb(v) AS vj
        FROM %1$s.%2$I s FULL JOIN pg_temp.%4$I v
          ON v.workflow_id = s.workflow_id AND v."window" = s."window" %5$s
        WHERE to_jsonb(s) IS DISTINCT FROM to_jsonb(v)
      )
      SELECT %6$L, d.wf, d.node, $1, d.win || '.' || f.key, d.sj ->> f.key, d.vj ->> f.key
      FROM d CROSS JOIN LATERAL jsonb_object_keys(coalesce(d.sj, d.vj)) AS f(key)
      WHERE (d.sj -> f.key) IS DISTINCT FROM (d.vj -> f.key)
        AND NOT EXISTS (SELECT FROM %1$s.pending_keys() k WHERE k.workflow_id = d.wf)
        AND NOT EXISTS (SELECT FROM %1$s.cells_pending p WHERE p.kind = %7$L AND p.workflow_id = d.wf)
      ORDER BY 2, 3, 5
    $q$, v_s, 'window_' || t,
      CASE WHEN t = 'steps' THEN 's.node_id, v.node_id' ELSE 'NULL::text' END,
      'meshtop_verify_window_' || t,
      CASE WHEN t = 'steps' THEN 'AND v.node_id = s.node_id' ELSE '' END,
      t || '_window', t)
    USING v_kclock;
  END LOOP;
END
$meshtop$;

-- One row per view (as in 004_refresh.sql, which this replaces): populated,
-- size, freshness, durations, last status, the running refresh; appended:
-- the mode and dirty keys of the last ok refresh. The hourly view is a plain
-- view over the rollup: it counts as populated once the rollup is built.
CREATE OR REPLACE VIEW @schema@.refresh_status AS
WITH v AS (
  SELECT u.view_name, u.ord
  FROM pg_catalog.unnest(@schema@.view_names()) WITH ORDINALITY AS u(view_name, ord)
), k AS MATERIALIZED (
  -- The metrics clock once per query, not once per view: clock() carries
  -- the refresh settings (SET clauses), so each call saves and restores them.
  SELECT @schema@.clock() AS now
)
SELECT v.view_name,
       CASE WHEN c.relkind = 'v' THEN (SELECT s.built FROM @schema@.rollup_state s)
            ELSE c.relispopulated END AS populated,
       ok.rows,
       -- Heap + TOAST + indexes from pg_class.relpages, NOT
       -- pg_total_relation_size() (see 004_refresh.sql); for the plain
       -- view, its rollup table.
       -- Looked up by oid through the catalogs' indexes (pg_class by oid,
       -- pg_index by indrelid): an OR of the three made it a scan of all of
       -- pg_class for each view, most of this view's cost on every poll.
       ((SELECT pg_catalog.sum(r.relpages)::bigint
           FROM pg_catalog.pg_class t
           JOIN pg_catalog.pg_class r ON r.oid IN (t.oid, t.reltoastrelid)
          WHERE t.oid = coalesce(rt.oid, c.oid))
        + coalesce((SELECT pg_catalog.sum(ic.relpages)::bigint
                      FROM pg_catalog.pg_index i
                      JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                     WHERE i.indrelid = coalesce(rt.oid, c.oid)), 0))
         * pg_catalog.current_setting('block_size')::bigint AS size_bytes,
       ok.data_as_of AS last_refresh_at,
       (SELECT k.now FROM k) - ok.data_as_of AS lag,
       ok.duration_ms AS last_duration_ms,
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x.duration_ms)
          FROM (SELECT g.duration_ms FROM @schema@.refresh_log g
                WHERE g.view_name = v.view_name AND g.status = 'ok'
                ORDER BY g.id DESC LIMIT 20) x) AS median_duration_ms,
       last.state AS last_status,
       last.error AS last_error,
       run.id AS running_log_id,
       run.pid AS running_pid,
       run.started_at AS running_since,
       ok.mode AS last_mode,
       ok.dirty_keys AS last_dirty_keys
FROM v
LEFT JOIN pg_catalog.pg_class c
  ON c.relname = v.view_name
 AND c.relnamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = @schema@.schema_name())
LEFT JOIN pg_catalog.pg_class rt
  ON c.relkind = 'v' AND rt.relname = 'rollup_runs_hour' AND rt.relnamespace = c.relnamespace
LEFT JOIN LATERAL (
  SELECT g.rows, g.data_as_of, g.duration_ms, g.mode, g.dirty_keys FROM @schema@.refresh_log g
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

-- CALL refresh() (pg_cron's command), as in 004_refresh.sql, with one
-- change: each view's refresh_run runs READ COMMITTED whatever the
-- session's default_transaction_isolation (a role or database may set
-- REPEATABLE READ). The apply's statements must each see what committed
-- before them: after capture was off it waits for the writers that may have
-- skipped the log to end, then rebuilds from later snapshots (030_rollup.sql,
-- capture_resume). A procedure cannot carry SET clauses (it could not
-- COMMIT), so SET TRANSACTION opens each transaction after a COMMIT, before
-- any query takes a snapshot. No SET search_path either: every name and
-- operator is qualified.
CREATE OR REPLACE PROCEDURE @schema@.refresh(p_view text DEFAULT NULL, p_wait boolean DEFAULT false)
LANGUAGE plpgsql SECURITY INVOKER
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
    SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
    SELECT g.status INTO v_status FROM @schema@.refresh_log g WHERE g.id OPERATOR(pg_catalog.=) v_id;
    IF v_status OPERATOR(pg_catalog.=) 'running' THEN
      -- WAL capture: the slot is read once per CALL, by the first view's
      -- apply (025_wal.sql, capture_for_apply).
      PERFORM pg_catalog.set_config('meshtop.wal_consume',
        CASE WHEN p_view IS NULL AND v OPERATOR(pg_catalog.<>) (@schema@.view_names())[1] THEN 'off' ELSE 'on' END, true);
      PERFORM @schema@.refresh_run(v_id);
      COMMIT;
    END IF;
  END LOOP;
  -- Capture as capture_state says (025_wal.sql): the slot's bound, the
  -- row-level triggers after a fallback. A short transaction of its own
  -- (its DDL on MeshHook's tables waits at most 200ms).
  PERFORM @schema@.capture_ensure();
  COMMIT;
END
$meshtop$;
