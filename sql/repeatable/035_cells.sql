-- 035_cells: the window cells (window_runs, window_steps) computed from the
-- rollup. Repeatable.
--
-- A cell is one workflow definition in one window ('1h', '24h', '7d',
-- '30d'). Its value at clock c is a function of the raw rows and c alone:
-- the runs with c - W < started_at <= c (and their step executions), read as
-- whole UTC days and hours from the rollup and as raw rows for the partial
-- hours at both ends (window_bounds in 010_sketch.sql). Every duration enters
-- the cell's histogram through dd_key whichever part it comes from, so where
-- the window is split does not change the result.
--
-- Between two refreshes at clocks c0 <= c1 a cell changes only if
--   * a dirty key of its workflow names an hour that overlaps the window at
--     c0 or at c1 (hour + 1h > c0 - W and hour <= c1): a run or step
--     execution was inserted, changed or deleted there; or
--   * a run of its workflow entered or left the window as the clock moved:
--     started_at in (c0 - W, c1 - W] (left) or in (c0, c1] (entered; a run
--     written before c0 with a later started_at).
-- cells_changed returns exactly those cells; rollup_apply (030_rollup.sql)
-- recomputes them with cells_recompute after applying the dirty keys to the
-- rollup, in the same transaction. So a refresh reads the rollup rows of
-- the cells that changed (one per day and edge hour of each), not the
-- window: with one minute of traffic, a few hundred cells of the 4 x
-- (workflow definitions) there are.
--
-- Every name is schema-qualified: PostgreSQL 17 refreshes with
-- search_path = pg_catalog, pg_temp.

-- Recomputes the cells (p_wf[i], p_win[i]) at clock p_clock into p_runs and
-- p_steps (window_runs/window_steps, or verify's temporary copies) from the
-- given rollup tables (the rollup's own, or verify's recomputed ones): deletes
-- them, then inserts what the rollup and the raw edge hours hold for them
-- (no row for a cell without runs or step executions). The pairs must be
-- distinct.
DROP FUNCTION IF EXISTS @schema@.cells_recompute(timestamptz, uuid[], text[], regclass, regclass);
DROP FUNCTION IF EXISTS @schema@.cells_recompute(timestamptz, uuid[], text[], regclass, regclass,
  regclass, regclass, regclass, regclass);
-- p_days_runs, p_days_steps: the cells' whole-day parts (window_days_runs,
-- window_days_steps of migration 010, or verify's empty temporary copies).
-- A cell whose entry was made for another day range, or has none, gets a new
-- one from p_runs_day/p_steps_day first; then every cell reads its whole
-- days as that one merged row (per node for steps) instead of up to 30 day
-- buckets, so its cost no longer grows with the histogram keys a busier
-- day holds. Whoever changes a day bucket deletes the entries whose range
-- holds it (rollup_apply).
-- p_kinds: which cells, 'runs' (p_runs) and/or 'steps' (p_steps); the
-- whole-day entries of both kinds are made together either way (a steps
-- entry is valid while its runs entry is).
DROP FUNCTION IF EXISTS @schema@.cells_recompute(timestamptz, uuid[], text[], regclass, regclass,
  regclass, regclass, regclass, regclass, regclass, regclass);
CREATE OR REPLACE FUNCTION @schema@.cells_recompute(
  p_clock timestamptz, p_wf uuid[], p_win text[], p_runs regclass, p_steps regclass,
  p_runs_hour regclass, p_runs_day regclass, p_steps_hour regclass, p_steps_day regclass,
  p_days_runs regclass, p_days_steps regclass, p_kinds text[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_swf uuid[];   -- cells whose whole-day entry is missing or for other days
  v_swin text[];
  v_runs uuid[];  -- the runs of the cells' edge hours
BEGIN
  IF coalesce(cardinality(p_wf), 0) = 0 THEN
    RETURN;
  END IF;

  -- The whole-day entries: stale ones replaced.
  EXECUTE pg_catalog.format($q$
    SELECT array_agg(k.wf), array_agg(k.win)
    FROM unnest($1::uuid[], $2::text[]) AS k(wf, win)
    JOIN @schema@.window_bounds($3) b ON b."window" = k.win
    WHERE NOT EXISTS (SELECT FROM %s x WHERE x.workflow_id = k.wf AND x."window" = k.win
                        AND x.d0 = b.d0 AND x.d1 = b.d1)$q$, p_days_runs)
  INTO v_swf, v_swin USING p_wf, p_win, p_clock;
  IF coalesce(cardinality(v_swf), 0) > 0 THEN
    EXECUTE pg_catalog.format($q$
      DELETE FROM %s t USING unnest($1::uuid[], $2::text[]) AS k(wf, win)
      WHERE t.workflow_id = k.wf AND t."window" = k.win$q$, p_days_runs) USING v_swf, v_swin;
    EXECUTE pg_catalog.format($q$
      DELETE FROM %s t USING unnest($1::uuid[], $2::text[]) AS k(wf, win)
      WHERE t.workflow_id = k.wf AND t."window" = k.win$q$, p_days_steps) USING v_swf, v_swin;
    EXECUTE pg_catalog.format($q$
      INSERT INTO %1$s (workflow_id, "window", d0, d1, runs, succeeded, failed, canceled, running, finished,
        dur_sum_ms, dur_min_ms, dur_max_ms, open_runs, open_started_epoch, last_failure_at, hist_k, hist_c)
      WITH s AS MATERIALIZED (
        SELECT k.wf, k.win, b.d0, b.d1
        FROM unnest($1::uuid[], $2::text[]) AS k(wf, win)
        JOIN @schema@.window_bounds($3) b ON b."window" = k.win
      ),
      src AS MATERIALIZED (
        SELECT s.wf, s.win, d.*
        FROM s CROSS JOIN LATERAL (
          SELECT d.runs, d.succeeded, d.failed, d.canceled, d.running, d.finished,
                 d.dur_sum_ms, d.dur_min_ms, d.dur_max_ms, d.open_runs, d.open_started_epoch,
                 d.last_failure_at, d.hist_k, d.hist_c
          FROM %2$s d WHERE d.workflow_id = s.wf AND d.bucket >= s.d0 AND d.bucket < s.d1) d
      ),
      h AS (
        SELECT src.wf, src.win, u.k, sum(u.c)::int AS c
        FROM src CROSS JOIN LATERAL unnest(src.hist_k, src.hist_c) AS u(k, c)
        GROUP BY 1, 2, 3
      ),
      ha AS (
        SELECT h.wf, h.win, array_agg(h.k ORDER BY h.k) AS ks, array_agg(h.c ORDER BY h.k) AS cs
        FROM h GROUP BY 1, 2
      ),
      a AS (
        SELECT src.wf, src.win, sum(src.runs) AS runs, sum(src.succeeded) AS succeeded,
               sum(src.failed) AS failed, sum(src.canceled) AS canceled, sum(src.running) AS running,
               sum(src.finished) AS finished, sum(src.dur_sum_ms) AS dur_sum_ms,
               min(src.dur_min_ms) AS dur_min_ms, max(src.dur_max_ms) AS dur_max_ms,
               sum(src.open_runs) AS open_runs, sum(src.open_started_epoch) AS open_started_epoch,
               max(src.last_failure_at) AS last_failure_at
        FROM src GROUP BY 1, 2
      )
      SELECT s.wf, s.win, s.d0, s.d1, coalesce(a.runs, 0), coalesce(a.succeeded, 0), coalesce(a.failed, 0),
             coalesce(a.canceled, 0), coalesce(a.running, 0), coalesce(a.finished, 0), coalesce(a.dur_sum_ms, 0),
             a.dur_min_ms, a.dur_max_ms, coalesce(a.open_runs, 0), coalesce(a.open_started_epoch, 0),
             a.last_failure_at, coalesce(ha.ks, '{}'), coalesce(ha.cs, '{}')
      FROM s
      LEFT JOIN a ON a.wf = s.wf AND a.win = s.win
      LEFT JOIN ha ON ha.wf = s.wf AND ha.win = s.win
    $q$, p_days_runs, p_runs_day) USING v_swf, v_swin, p_clock;
    EXECUTE pg_catalog.format($q$
      INSERT INTO %1$s (workflow_id, "window", node_id, node_type, executions, failures,
        lat_min_ms, lat_max_ms, last_failure_at, hist_k, hist_c,
        attempts, attempts_max, retried, failed_attempts, http_2xx, http_4xx, http_5xx, http_other, http_none)
      WITH s AS MATERIALIZED (
        SELECT k.wf, k.win, b.d0, b.d1
        FROM unnest($1::uuid[], $2::text[]) AS k(wf, win)
        JOIN @schema@.window_bounds($3) b ON b."window" = k.win
      ),
      src AS MATERIALIZED (
        SELECT s.wf, s.win, d.*
        FROM s CROSS JOIN LATERAL (
          SELECT d.node_id, d.node_type, d.executions, d.failures, d.lat_min_ms, d.lat_max_ms,
                 d.last_failure_at, d.hist_k, d.hist_c,
                 d.attempts, d.attempts_max, d.retried, d.failed_attempts,
                 d.http_2xx, d.http_4xx, d.http_5xx, d.http_other, d.http_none
          FROM %2$s d WHERE d.workflow_id = s.wf AND d.bucket >= s.d0 AND d.bucket < s.d1) d
      ),
      h AS (
        SELECT src.wf, src.win, src.node_id, u.k, sum(u.c)::int AS c
        FROM src CROSS JOIN LATERAL unnest(src.hist_k, src.hist_c) AS u(k, c)
        GROUP BY 1, 2, 3, 4
      ),
      ha AS (
        SELECT h.wf, h.win, h.node_id, array_agg(h.k ORDER BY h.k) AS ks, array_agg(h.c ORDER BY h.k) AS cs
        FROM h GROUP BY 1, 2, 3
      ),
      a AS (
        SELECT src.wf, src.win, src.node_id, max(src.node_type) AS node_type,
               sum(src.executions) AS executions, sum(src.failures) AS failures,
               min(src.lat_min_ms) AS lat_min_ms, max(src.lat_max_ms) AS lat_max_ms,
               max(src.last_failure_at) AS last_failure_at,
               sum(src.attempts) AS attempts, max(src.attempts_max) AS attempts_max,
               sum(src.retried) AS retried, sum(src.failed_attempts) AS failed_attempts,
               sum(src.http_2xx) AS http_2xx, sum(src.http_4xx) AS http_4xx, sum(src.http_5xx) AS http_5xx,
               sum(src.http_other) AS http_other, sum(src.http_none) AS http_none
        FROM src GROUP BY 1, 2, 3
      )
      SELECT a.wf, a.win, a.node_id, a.node_type, a.executions, a.failures,
             a.lat_min_ms, a.lat_max_ms, a.last_failure_at, ha.ks, ha.cs,
             a.attempts, a.attempts_max, a.retried, a.failed_attempts,
             a.http_2xx, a.http_4xx, a.http_5xx, a.http_other, a.http_none
      FROM a JOIN ha ON ha.wf = a.wf AND ha.win = a.win AND ha.node_id = a.node_id
    $q$, p_days_steps, p_steps_day) USING v_swf, v_swin, p_clock;
  END IF;
  IF 'runs' = ANY (p_kinds) THEN
  EXECUTE pg_catalog.format($q$
    DELETE FROM %s t USING unnest($1::uuid[], $2::text[]) AS k(wf, win)
    WHERE t.workflow_id = k.wf AND t."window" = k.win$q$, p_runs) USING p_wf, p_win;

  -- Runs. Percentiles from the merged histogram (dd_percentiles in
  -- 010_sketch.sql: within alpha of percentile_cont).
  EXECUTE pg_catalog.format($q$
    INSERT INTO %1$s (workflow_id, "window", runs, succeeded, failed, canceled, running, finished,
      dur_sum_ms, dur_min_ms, dur_max_ms, open_runs, open_started_epoch, last_failure_at,
      p50_ms, p95_ms, p99_ms)
    WITH b AS MATERIALIZED (
      SELECT w.* FROM @schema@.window_bounds($3) w
    ),
    cells AS MATERIALIZED (
      SELECT k.wf, k.win FROM unnest($1::uuid[], $2::text[]) AS k(wf, win)
    ),
    -- The runs of the partial hours at both ends of each window, of the
    -- cells' workflows (edge_runs, below).
    raw AS MATERIALIZED (
      SELECT c.win AS "window", r.workflow_id, r.status, r.started_at, r.finished_at,
             pg_catalog.date_part('epoch', r.finished_at - r.started_at) * 1000 AS dur
      FROM @schema@.edge_runs($3) r
      JOIN cells c ON c.wf = r.workflow_id AND (r."window" IS NULL OR c.win = r."window")
    ),
    -- Whole days as the cell's cached merge (above), whole hours from the
    -- rollup: per cell, a primary-key lookup and two range scans (LATERAL,
    -- so both the workflow and the bucket range are index conditions).
    parts AS MATERIALIZED (
      SELECT b."window", c.wf AS workflow_id, x.*
      FROM b JOIN cells c ON c.win = b."window"
      CROSS JOIN LATERAL (
        SELECT d.runs, d.succeeded, d.failed, d.canceled, d.running, d.finished,
               d.dur_sum_ms, d.dur_min_ms, d.dur_max_ms, d.open_runs, d.open_started_epoch, d.last_failure_at,
               d.hist_k, d.hist_c
        FROM %2$s d WHERE d.workflow_id = c.wf AND d."window" = b."window"
        UNION ALL
        SELECT h.runs, h.succeeded, h.failed, h.canceled, h.running, h.finished,
               h.dur_sum_ms, h.dur_min_ms, h.dur_max_ms, h.open_runs, h.open_started_epoch, h.last_failure_at,
               h.hist_k, h.hist_c
        FROM %3$s h WHERE h.workflow_id = c.wf AND h.bucket >= b.h0 AND h.bucket < b.d0
        UNION ALL
        SELECT h.runs, h.succeeded, h.failed, h.canceled, h.running, h.finished,
               h.dur_sum_ms, h.dur_min_ms, h.dur_max_ms, h.open_runs, h.open_started_epoch, h.last_failure_at,
               h.hist_k, h.hist_c
        FROM %3$s h WHERE h.workflow_id = c.wf AND h.bucket >= b.d1 AND h.bucket < b.h1) x
    ),
    agg AS (
      SELECT u."window", u.workflow_id,
             sum(u.runs) AS runs, sum(u.succeeded) AS succeeded, sum(u.failed) AS failed,
             sum(u.canceled) AS canceled, sum(u.running) AS running, sum(u.finished) AS finished,
             sum(u.dur_sum_ms) AS dur_sum_ms, min(u.dur_min_ms) AS mn, max(u.dur_max_ms) AS mx,
             sum(u.open_runs) AS open_runs, sum(u.open_started_epoch) AS open_started_epoch,
             max(u.last_failure_at) AS last_failure_at
      FROM (
        SELECT p."window", p.workflow_id, p.runs, p.succeeded, p.failed, p.canceled, p.running, p.finished,
               p.dur_sum_ms, p.dur_min_ms, p.dur_max_ms, p.open_runs, p.open_started_epoch, p.last_failure_at
        FROM parts p
        UNION ALL
        SELECT r."window", r.workflow_id, 1, (r.status = 'succeeded')::int, (r.status = 'failed')::int,
               (r.status = 'canceled')::int, (r.status IN ('running', 'paused'))::int, (r.dur IS NOT NULL)::int,
               coalesce(EXTRACT(epoch FROM r.finished_at - r.started_at) * 1000, 0), r.dur, r.dur,
               (r.finished_at IS NULL AND r.status IN ('running', 'paused'))::int,
               CASE WHEN r.finished_at IS NULL AND r.status IN ('running', 'paused')
                    THEN EXTRACT(epoch FROM r.started_at) ELSE 0 END,
               CASE WHEN r.status = 'failed' THEN coalesce(r.finished_at, r.started_at) END
        FROM raw r
      ) u
      GROUP BY 1, 2
    ),
    hist AS (
      SELECT u."window", u.workflow_id, u.k, sum(u.c) AS c
      FROM (
        SELECT p."window", p.workflow_id, x.k, x.c
        FROM parts p CROSS JOIN LATERAL unnest(p.hist_k, p.hist_c) AS x(k, c)
        UNION ALL
        SELECT r."window", r.workflow_id, @schema@.dd_key(r.dur), 1 FROM raw r WHERE r.dur IS NOT NULL
      ) u
      GROUP BY 1, 2, 3
    ),
    -- Merged histograms, then percentiles (dd_percentiles, 010_sketch.sql).
    ha AS (
      SELECT h."window", h.workflow_id, array_agg(h.k ORDER BY h.k) AS ks, array_agg(h.c ORDER BY h.k) AS cs
      FROM hist h GROUP BY 1, 2
    )
    SELECT a.workflow_id, a."window", a.runs, a.succeeded, a.failed, a.canceled, a.running, a.finished,
           a.dur_sum_ms, a.mn, a.mx, a.open_runs, a.open_started_epoch, a.last_failure_at,
           pc.p[1], pc.p[2], pc.p[3]
    FROM agg a
    LEFT JOIN ha ON ha."window" = a."window" AND ha.workflow_id = a.workflow_id
    CROSS JOIN LATERAL (
      SELECT @schema@.dd_percentiles(ha.ks, ha.cs, a.finished::bigint, a.mn, a.mx, '{0.5,0.95,0.99}'::float8[]) AS p) pc
    WHERE a.runs > 0
  $q$, p_runs, p_days_runs, p_runs_hour) USING p_wf, p_win, p_clock;
  END IF;

  IF 'steps' = ANY (p_kinds) THEN
  EXECUTE pg_catalog.format($q$
    DELETE FROM %s t USING unnest($1::uuid[], $2::text[]) AS k(wf, win)
    WHERE t.workflow_id = k.wf AND t."window" = k.win$q$, p_steps) USING p_wf, p_win;

  -- Step executions (step_executions in 030_rollup.sql; events after the
  -- clock are ignored). The runs of the partial hours at both ends of each
  -- window, of the cells' workflows (edge_runs), each once, as an array: a
  -- constant when the statement below is planned.
  SELECT coalesce(array_agg(DISTINCT r.id), '{}') INTO v_runs
  FROM @schema@.edge_runs(p_clock) r
  JOIN unnest(p_wf, p_win) AS c(wf, win) ON c.wf = r.workflow_id AND (r."window" IS NULL OR c.win = r."window");
  EXECUTE pg_catalog.format($q$
    INSERT INTO %1$s (workflow_id, node_id, "window", node_type, executions, failures,
      p50_ms, p95_ms, last_failure_at,
      attempts, attempts_max, retried, failed_attempts, http_2xx, http_4xx, http_5xx, http_other, http_none)
    WITH b AS MATERIALIZED (
      SELECT w.* FROM @schema@.window_bounds($3) w
    ),
    cells AS MATERIALIZED (
      SELECT k.wf, k.win FROM unnest($1::uuid[], $2::text[]) AS k(wf, win)
    ),
    -- The step executions of the runs of the partial hours at both ends
    -- of each window, of the cells' workflows (v_runs, above), probed per
    -- run through the (run_id, ts) indexes (ts >= the hour of the oldest
    -- edge prunes the event partitions; a parameter, not a subquery: the
    -- planner inlines no function whose arguments hold one) ...
    ev AS MATERIALIZED (
      SELECT x.* FROM @schema@.step_executions($4, $5, $3) x
    ),
    -- ... and the windows (of the cells) each run is at an edge of.
    raw AS MATERIALIZED (
      SELECT b."window", ev.workflow_id, ev.node_id, ev.node_type, ev.failed, ev.ended_at, ev.lat,
             ev.attempts, ev.failed_attempts, ev.http_2xx, ev.http_4xx, ev.http_5xx, ev.http_other, ev.http_none
      FROM ev
      JOIN b ON (ev.run_started_at > b.lo AND ev.run_started_at < b.h0)
             OR (ev.run_started_at >= b.h1 AND ev.run_started_at <= b.hi)
      JOIN cells c ON c.wf = ev.workflow_id AND c.win = b."window"
    ),
    parts AS MATERIALIZED (
      SELECT b."window", c.wf AS workflow_id, x.*
      FROM b JOIN cells c ON c.win = b."window"
      CROSS JOIN LATERAL (
        SELECT d.node_id, d.node_type, d.executions, d.failures,
               d.lat_min_ms, d.lat_max_ms, d.last_failure_at, d.hist_k, d.hist_c,
               d.attempts, d.attempts_max, d.retried, d.failed_attempts,
               d.http_2xx, d.http_4xx, d.http_5xx, d.http_other, d.http_none
        FROM %2$s d WHERE d.workflow_id = c.wf AND d."window" = b."window"
        UNION ALL
        SELECT h.node_id, h.node_type, h.executions, h.failures,
               h.lat_min_ms, h.lat_max_ms, h.last_failure_at, h.hist_k, h.hist_c,
               h.attempts, h.attempts_max, h.retried, h.failed_attempts,
               h.http_2xx, h.http_4xx, h.http_5xx, h.http_other, h.http_none
        FROM %3$s h WHERE h.workflow_id = c.wf AND h.bucket >= b.h0 AND h.bucket < b.d0
        UNION ALL
        SELECT h.node_id, h.node_type, h.executions, h.failures,
               h.lat_min_ms, h.lat_max_ms, h.last_failure_at, h.hist_k, h.hist_c,
               h.attempts, h.attempts_max, h.retried, h.failed_attempts,
               h.http_2xx, h.http_4xx, h.http_5xx, h.http_other, h.http_none
        FROM %3$s h WHERE h.workflow_id = c.wf AND h.bucket >= b.d1 AND h.bucket < b.h1) x
    ),
    agg AS (
      SELECT u."window", u.workflow_id, u.node_id, max(u.node_type) AS node_type,
             sum(u.executions) AS executions, sum(u.failures) AS failures,
             min(u.mn) AS mn, max(u.mx) AS mx, max(u.last_failure_at) AS last_failure_at,
             sum(u.attempts) AS attempts, max(u.attempts_max) AS attempts_max,
             sum(u.retried) AS retried, sum(u.failed_attempts) AS failed_attempts,
             sum(u.http_2xx) AS http_2xx, sum(u.http_4xx) AS http_4xx, sum(u.http_5xx) AS http_5xx,
             sum(u.http_other) AS http_other, sum(u.http_none) AS http_none
      FROM (
        SELECT p."window", p.workflow_id, p.node_id, p.node_type, p.executions, p.failures,
               p.lat_min_ms AS mn, p.lat_max_ms AS mx, p.last_failure_at,
               p.attempts, p.attempts_max, p.retried, p.failed_attempts,
               p.http_2xx, p.http_4xx, p.http_5xx, p.http_other, p.http_none
        FROM parts p
        UNION ALL
        SELECT r."window", r.workflow_id, r.node_id, r.node_type, 1, r.failed::int, r.lat, r.lat,
               CASE WHEN r.failed THEN r.ended_at END,
               r.attempts, r.attempts, (r.attempts > 1)::int, r.failed_attempts,
               r.http_2xx, r.http_4xx, r.http_5xx, r.http_other, r.http_none
        FROM raw r
      ) u
      GROUP BY 1, 2, 3
    ),
    hist AS (
      SELECT u."window", u.workflow_id, u.node_id, u.k, sum(u.c) AS c
      FROM (
        SELECT p."window", p.workflow_id, p.node_id, x.k, x.c
        FROM parts p CROSS JOIN LATERAL unnest(p.hist_k, p.hist_c) AS x(k, c)
        UNION ALL
        SELECT r."window", r.workflow_id, r.node_id, @schema@.dd_key(r.lat), 1 FROM raw r
      ) u
      GROUP BY 1, 2, 3, 4
    ),
    ha AS (
      SELECT h."window", h.workflow_id, h.node_id, array_agg(h.k ORDER BY h.k) AS ks, array_agg(h.c ORDER BY h.k) AS cs
      FROM hist h GROUP BY 1, 2, 3
    )
    SELECT a.workflow_id, a.node_id, a."window", a.node_type, a.executions, a.failures,
           pc.p[1], pc.p[2], a.last_failure_at,
           a.attempts, a.attempts_max, a.retried, a.failed_attempts,
           a.http_2xx, a.http_4xx, a.http_5xx, a.http_other, a.http_none
    FROM agg a
    LEFT JOIN ha ON ha."window" = a."window" AND ha.workflow_id = a.workflow_id AND ha.node_id = a.node_id
    CROSS JOIN LATERAL (
      SELECT @schema@.dd_percentiles(ha.ks, ha.cs, a.executions::bigint, a.mn, a.mx, '{0.5,0.95}'::float8[]) AS p) pc
    WHERE a.executions > 0
  $q$, p_steps, p_days_steps, p_steps_hour) USING p_wf, p_win, p_clock, v_runs,
    (SELECT pg_catalog.date_trunc('hour', min(b.lo), 'UTC') FROM @schema@.window_bounds(p_clock) b);
  END IF;
END
$meshtop$;

-- The cells whose contents may differ between clock p_from (the clock of
-- the stored cells) and p_to >= p_from, given the (workflow, hour) keys of
-- every change applied to the rollup since (see the top of this file).
-- p_from NULL: every cell (every workflow definition in every window).
CREATE OR REPLACE FUNCTION @schema@.cells_changed(
  p_from timestamptz, p_to timestamptz, p_key_wf uuid[], p_key_hour timestamptz[],
  OUT wf uuid[], OUT win text[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
BEGIN
  IF p_from IS NULL OR p_from > p_to THEN
    SELECT array_agg(d.id), array_agg(b."window") INTO wf, win
    FROM public.workflow_definitions d CROSS JOIN @schema@.window_bounds(p_to) b;
    RETURN;
  END IF;
  SELECT array_agg(x.wf), array_agg(x.win) INTO wf, win
  FROM (
    -- A change inside the window at either clock.
    SELECT k.wf, b."window" AS win
    FROM unnest(p_key_wf, p_key_hour) AS k(wf, h)
    JOIN @schema@.window_bounds(p_to) b
      ON k.h + interval '1 hour' > p_from - b.span AND k.h <= p_to
    WHERE k.wf IS NOT NULL
    UNION
    -- Runs that left the window, or entered it without a change (written
    -- before p_from with a later started_at).
    SELECT r.workflow_id, b."window"
    FROM @schema@.window_bounds(p_to) b
    CROSS JOIN LATERAL (
      SELECT x.workflow_id FROM public.workflow_runs x
      WHERE x.started_at > p_from - b.span AND x.started_at <= p_to - b.span
      UNION ALL
      SELECT x.workflow_id FROM public.workflow_runs x
      WHERE x.started_at > p_from AND x.started_at <= p_to) r
    WHERE p_to > p_from
  ) x;
END
$meshtop$;
