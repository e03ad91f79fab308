-- 030_rollup: maintaining the rollup from the dirty-key log. Repeatable.
--
-- rollup_apply() is called by refresh_run before a view is refreshed. It
-- reads the dirty keys visible to it, recomputes exactly those (workflow,
-- hour) buckets from the raw tables — runs and step executions alike — and
-- the UTC days holding them from the hours, then deletes exactly the log
-- rows it read (by id). A key committed after it read the log stays for the
-- next refresh; a bucket recomputed from a later snapshot than the one the
-- log was read in is only ever newer. So the rollup never misses a change,
-- whatever the interleaving (docs/REFRESH.md has the argument).
--
-- It rebuilds everything instead (mode 'full') when the rollup was never
-- built, when the log holds the marker (NULL, NULL) (TRUNCATE, refresh
-- --full), when a pinned clock (config clock) moved back or was set or
-- unset (steps after the clock are ignored, so buckets depend on it; a
-- pinned clock moving forward is incremental), or when a partition of
-- workflow_events that could hold rows of the window changed in a way no
-- trigger sees (dropped, detached, attached with rows, truncated by name).

-- A number in an event payload (payload.attempt, payload.status): a JSON
-- number, or a string of digits; NULL for anything else.
CREATE OR REPLACE FUNCTION @schema@.event_number(p jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $meshtop$
  SELECT CASE pg_catalog.jsonb_typeof(p)
    WHEN 'number' THEN (p #>> '{}')::numeric
    WHEN 'string' THEN CASE WHEN (p #>> '{}') ~ '^[0-9]{1,9}$' THEN (p #>> '{}')::numeric END
  END
$meshtop$;

-- Step executions, as MeshHook's workers write them (docs/METRICS.md,
-- "mv_step_metrics"; the oracle is sql/queries/live_step_metrics.sql).
-- The orchestrator writes one step_started per node it enqueues; the HTTP
-- executor makes up to 5 attempts, each writing http_attempted {node, status}
-- when a response arrives, then step_succeeded (a 2xx) or step_failed {node,
-- attempt, error}, and retries a failure without a new step_started. Per run
-- and node, in (ts, id) order:
--   * each step_started opens an execution (events before the first are
--     ignored); its attempts are its step_succeeded/step_failed events, each
--     with the http_attempted right before it, if any, as its HTTP status;
--   * its final outcome is its last attempt, if that is a step_succeeded, or
--     a step_failed that is final: attempt >= 5 (or no attempt number: a
--     failure nothing retries), or the node started again, or the run is no
--     longer running or paused (its status now). A step_failed with attempt
--     < 5 in a running or paused run is pending — not an execution yet: its
--     retry (an event of the run: dirty_runs) or the run's end (an update of
--     the run: dirty_keys) makes the refresh recompute it. http_attempted
--     events after the last attempt (a retry whose outcome is not written
--     yet) are ignored until that outcome is;
--   * its latency is step_started -> final outcome (ms).
-- Only payload.node (its id and type: an object {id, type}, or an id
-- string), payload.attempt of step_failed and payload.status of
-- http_attempted are read; never error texts or responses (personal data).
-- Of the runs p_runs (NULL: every run) started at or after p_lo, the events
-- from p_lo and from the hour the run started in (older ones are ignored:
-- MeshHook writes a run before its events) up to p_clock.
-- A SQL function without SET clauses, not strict: the planner inlines it
-- into each caller, where a constant NULL p_runs folds away (a rebuild: the
-- runs joined by hash, the events sorted once) and an array probes the
-- (run_id, ts) index of each event partition once per run (a refresh's few
-- keys, the windows' edge hours).
CREATE OR REPLACE FUNCTION @schema@.step_executions(p_runs uuid[], p_lo timestamptz, p_clock timestamptz)
RETURNS TABLE (run_id uuid, workflow_id uuid, run_started_at timestamptz, node_id text, node_type text,
               failed boolean, ended_at timestamptz, lat float8, attempts int, failed_attempts int,
               http_2xx int, http_4xx int, http_5xx int, http_other int, http_none int)
LANGUAGE sql STABLE PARALLEL SAFE
AS $meshtop$
  SELECT z.run_id, z.workflow_id, z.run_started_at, z.node_id, z.node_type, z.type = 'step_failed', z.ts,
         pg_catalog.date_part('epoch', z.ts - z.started) * 1000,
         z.attempts::int, z.failed_attempts::int, z.http_2xx::int, z.http_4xx::int, z.http_5xx::int,
         z.http_other::int, z.http_none::int
  FROM (
    -- Per execution (run, node, seg), without the http_attempted rows: the
    -- counts so far; its last row (no next one) is its last attempt.
    SELECT y.run_id, y.workflow_id, y.run_started_at, y.run_ended, y.node_id, y.ts, y.type,
           y.attempt, y.seg, y.segs,
           pg_catalog.lead(y.type) OVER w AS next_type,
           pg_catalog.first_value(y.ts) OVER w AS started,
           pg_catalog.max(y.node_type) OVER w AS node_type,
           pg_catalog.count(*) FILTER (WHERE y.type <> 'step_started') OVER w AS attempts,
           pg_catalog.count(*) FILTER (WHERE y.type = 'step_failed') OVER w AS failed_attempts,
           pg_catalog.count(*) FILTER (WHERE y.cls = '2xx') OVER w AS http_2xx,
           pg_catalog.count(*) FILTER (WHERE y.cls = '4xx') OVER w AS http_4xx,
           pg_catalog.count(*) FILTER (WHERE y.cls = '5xx') OVER w AS http_5xx,
           pg_catalog.count(*) FILTER (WHERE y.cls = 'other') OVER w AS http_other,
           pg_catalog.count(*) FILTER (WHERE y.cls = 'none') OVER w AS http_none
    FROM (
      SELECT x.*,
             CASE WHEN x.type = 'step_started' THEN NULL
                  WHEN x.prev_type = 'http_attempted' THEN
                    CASE WHEN x.prev_status >= 200 AND x.prev_status < 300 THEN '2xx'
                         WHEN x.prev_status >= 400 AND x.prev_status < 500 THEN '4xx'
                         WHEN x.prev_status >= 500 AND x.prev_status < 600 THEN '5xx'
                         ELSE 'other' END
                  WHEN x.type = 'step_failed' THEN 'none' END AS cls
      FROM (
        -- Per (run, node) in (ts, id) order: which execution (the
        -- step_started seen so far), how many the node has, the event before.
        SELECT e.run_id, e.workflow_id, e.run_started_at, e.run_ended, e.node_id, e.node_type,
               e.ts, e.id, e.type, e.attempt,
               pg_catalog.count(*) FILTER (WHERE e.type = 'step_started') OVER v AS seg,
               pg_catalog.count(*) FILTER (WHERE e.type = 'step_started') OVER u AS segs,
               pg_catalog.lag(e.type) OVER v AS prev_type,
               pg_catalog.lag(e.status) OVER v AS prev_status
        FROM (
          SELECT e.run_id, r.workflow_id, r.started_at AS run_started_at,
                 r.status NOT IN ('running', 'paused') AS run_ended,
                 e.ts, e.id, e.type,
                 CASE pg_catalog.jsonb_typeof(e.payload -> 'node')
                   WHEN 'object' THEN e.payload -> 'node' ->> 'id'
                   WHEN 'string' THEN e.payload ->> 'node' END AS node_id,
                 CASE pg_catalog.jsonb_typeof(e.payload -> 'node')
                   WHEN 'object' THEN e.payload -> 'node' ->> 'type' END AS node_type,
                 CASE WHEN e.type = 'step_failed' THEN @schema@.event_number(e.payload -> 'attempt') END AS attempt,
                 CASE WHEN e.type = 'http_attempted' THEN @schema@.event_number(e.payload -> 'status') END AS status
          FROM public.workflow_events e
          JOIN public.workflow_runs r ON r.id = e.run_id
          WHERE (p_runs IS NULL OR e.run_id = ANY (p_runs)) AND (p_runs IS NULL OR r.id = ANY (p_runs))
            AND e.ts >= p_lo AND e.ts <= p_clock
            AND r.started_at >= p_lo
            AND e.ts >= pg_catalog.date_trunc('hour', r.started_at, 'UTC')
            AND e.type IN ('step_started', 'http_attempted', 'step_succeeded', 'step_failed')
        ) e
        WINDOW u AS (PARTITION BY e.run_id, e.node_id),
               v AS (PARTITION BY e.run_id, e.node_id ORDER BY e.ts, e.id ROWS UNBOUNDED PRECEDING)
      ) x
      WHERE x.type <> 'http_attempted' AND x.seg > 0 AND x.node_id IS NOT NULL
    ) y
    WINDOW w AS (PARTITION BY y.run_id, y.node_id, y.seg ORDER BY y.ts, y.id ROWS UNBOUNDED PRECEDING)
  ) z
  WHERE z.next_type IS NULL AND z.type <> 'step_started'
    AND (z.type = 'step_succeeded' OR z.attempt IS NULL OR z.attempt >= 5
         OR z.seg < z.segs OR z.run_ended)
$meshtop$;

-- Recomputes buckets from the raw tables into the given tables (the rollup's
-- own, or verify's temporary copies). p_full: every hour from p_from on;
-- otherwise the (p_wf[i], p_hour[i]) keys, which must be distinct. Step
-- events after p_clock are ignored, as are events older than the hour their
-- run started in (MeshHook writes a run before its events).
-- Days: only whole UTC days before p_days_before (the day holding the clock
-- is never read as a day: the windows take its hours), those of the keys and,
-- for every workflow, those in [p_days_from, p_days_before): the days that
-- ended since the last apply, built once from their hours.
DROP FUNCTION IF EXISTS @schema@.rollup_recompute(boolean, uuid[], timestamptz[], timestamptz, timestamptz,
  regclass, regclass, regclass, regclass);
CREATE OR REPLACE FUNCTION @schema@.rollup_recompute(
  p_full boolean, p_wf uuid[], p_hour timestamptz[], p_from timestamptz, p_clock timestamptz,
  p_runs_hour regclass, p_steps_hour regclass, p_runs_day regclass, p_steps_day regclass,
  p_days_before timestamptz, p_days_from timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- The refresh settings (docs/REFRESH.md, "Session settings"): nothing here
-- may depend on the caller's session.
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on
AS $meshtop$
DECLARE
  v_src text;      -- the runs whose buckets are recomputed
  v_hours text;    -- hour rows whose days are recomputed
  v_keys text;     -- (wf, h) of the hour buckets to recompute
  v_days text;     -- (wf, d) of the day buckets to recompute
  v_lo timestamptz;
  v_tail text;     -- the steps' aggregation and INSERT
  v_build text;    -- a rebuild's table of step executions
  v_runs uuid[];   -- the keys' runs
BEGIN
  IF p_full THEN
    v_lo := p_from;
    v_src := $q$SELECT r.id, r.workflow_id, pg_catalog.date_trunc('hour', r.started_at, 'UTC') AS bucket,
                       r.status, r.started_at, r.finished_at
                FROM public.workflow_runs r WHERE r.started_at >= $3$q$;
    v_hours := $q$SELECT t.*, pg_catalog.date_trunc('day', t.bucket, 'UTC') AS day FROM %1$s t WHERE t.bucket < coalesce($3, 'infinity')$q$;
  ELSE
    SELECT min(h) INTO v_lo FROM pg_catalog.unnest(p_hour) h;
    -- The keys' runs: each key hour read once through the started_at index
    -- when the keys span no more hours than workflows (a minute of traffic:
    -- one or two hours, many workflows), else each workflow's runs read once
    -- through the workflow_id index (a backfill of one workflow over many
    -- hours). Probing the workflow_id index per key would read a workflow's
    -- whole history for every hour of it.
    IF (SELECT count(DISTINCT h) FROM pg_catalog.unnest(p_hour) h)
       <= (SELECT count(DISTINCT w) FROM pg_catalog.unnest(p_wf) w) THEN
      v_src := $q$SELECT r.id, r.workflow_id, k.h AS bucket, r.status, r.started_at, r.finished_at
                  FROM (SELECT DISTINCT x.h FROM unnest($2::timestamptz[]) AS x(h)) hh
                  CROSS JOIN LATERAL (
                    SELECT x.id, x.workflow_id, x.status, x.started_at, x.finished_at FROM public.workflow_runs x
                    WHERE x.started_at >= hh.h AND x.started_at < hh.h + interval '1 hour'
                    OFFSET 0) r -- a fence: flattened, the planner probes workflow_id per key
                  JOIN unnest($1::uuid[], $2::timestamptz[]) AS k(wf, h) ON k.wf = r.workflow_id AND k.h = hh.h$q$;
    ELSE
      v_src := $q$SELECT r.id, r.workflow_id, k.h AS bucket, r.status, r.started_at, r.finished_at
                  FROM (SELECT DISTINCT x.wf FROM unnest($1::uuid[]) AS x(wf)) ww
                  CROSS JOIN LATERAL (
                    SELECT x.id, x.workflow_id, x.status, x.started_at, x.finished_at FROM public.workflow_runs x
                    WHERE x.workflow_id = ww.wf
                      AND x.started_at >= (SELECT min(y.h) FROM unnest($2::timestamptz[]) AS y(h))
                    OFFSET 0) r
                  JOIN unnest($1::uuid[], $2::timestamptz[]) AS k(wf, h)
                    ON k.wf = r.workflow_id AND k.h = pg_catalog.date_trunc('hour', r.started_at, 'UTC')$q$;
    END IF;
    v_keys := $q$SELECT k.wf, k.h FROM unnest($1::uuid[], $2::timestamptz[]) AS k(wf, h)$q$;
    v_days := pg_catalog.format($q$SELECT k.wf, pg_catalog.date_trunc('day', k.h, 'UTC') AS d
                 FROM unnest($1::uuid[], $2::timestamptz[]) AS k(wf, h)
                 WHERE k.h < $3
                 UNION
                 SELECT t.workflow_id, pg_catalog.date_trunc('day', t.bucket, 'UTC')
                 FROM %s t WHERE t.bucket >= $4 AND t.bucket < $3$q$, p_runs_hour);
    v_hours := 'SELECT t.*, k.d AS day FROM (' || pg_catalog.replace(v_days, '%', '%%') || $q$) k
                  JOIN %1$s t ON t.workflow_id = k.wf AND t.bucket >= k.d AND t.bucket < k.d + interval '24 hours'$q$;
  END IF;

  -- Hours: delete the buckets, insert what the raw tables hold for them.
  IF p_full THEN
    EXECUTE pg_catalog.format('DELETE FROM %s', p_runs_hour);
    EXECUTE pg_catalog.format('DELETE FROM %s', p_steps_hour);
    EXECUTE pg_catalog.format('DELETE FROM %s', p_runs_day);
    EXECUTE pg_catalog.format('DELETE FROM %s', p_steps_day);
  ELSIF v_lo IS NOT NULL THEN
    EXECUTE pg_catalog.format('DELETE FROM %1$s t USING (%2$s) k WHERE t.workflow_id = k.wf AND t.bucket = k.h',
      p_runs_hour, v_keys) USING p_wf, p_hour;
    EXECUTE pg_catalog.format('DELETE FROM %1$s t USING (%2$s) k WHERE t.workflow_id = k.wf AND t.bucket = k.h',
      p_steps_hour, v_keys) USING p_wf, p_hour;
  END IF;

  IF p_full OR v_lo IS NOT NULL THEN
  EXECUTE pg_catalog.format($q$
    WITH rs AS (
      SELECT s.workflow_id, s.bucket, s.status, s.started_at, s.finished_at,
             pg_catalog.date_part('epoch', s.finished_at - s.started_at) * 1000 AS dur
      FROM (%2$s) s
    ),
    h AS (
      SELECT rs.workflow_id, rs.bucket, @schema@.dd_key(rs.dur) AS k, count(*)::int AS c
      FROM rs WHERE rs.dur IS NOT NULL GROUP BY 1, 2, 3
    ),
    ha AS (
      SELECT h.workflow_id, h.bucket, array_agg(h.k ORDER BY h.k) AS ks, array_agg(h.c ORDER BY h.k) AS cs
      FROM h GROUP BY 1, 2
    ),
    a AS (
      SELECT rs.workflow_id, rs.bucket,
             count(*) AS runs,
             count(*) FILTER (WHERE rs.status = 'succeeded') AS succeeded,
             count(*) FILTER (WHERE rs.status = 'failed') AS failed,
             count(*) FILTER (WHERE rs.status = 'canceled') AS canceled,
             count(*) FILTER (WHERE rs.status IN ('running', 'paused')) AS running,
             count(rs.dur) AS finished,
             coalesce(sum(EXTRACT(epoch FROM rs.finished_at - rs.started_at) * 1000), 0) AS dur_sum_ms,
             min(rs.dur) AS dur_min_ms, max(rs.dur) AS dur_max_ms,
             count(*) FILTER (WHERE rs.finished_at IS NULL AND rs.status IN ('running', 'paused')) AS open_runs,
             coalesce(sum(EXTRACT(epoch FROM rs.started_at))
               FILTER (WHERE rs.finished_at IS NULL AND rs.status IN ('running', 'paused')), 0) AS open_started_epoch,
             max(coalesce(rs.finished_at, rs.started_at)) FILTER (WHERE rs.status = 'failed') AS last_failure_at,
             percentile_cont(ARRAY[0.5, 0.95]::float8[]) WITHIN GROUP (ORDER BY rs.dur)
               FILTER (WHERE rs.dur IS NOT NULL) AS pct
      FROM rs GROUP BY 1, 2
    )
    INSERT INTO %1$s (workflow_id, bucket, runs, succeeded, failed, canceled, running, finished,
      dur_sum_ms, dur_min_ms, dur_max_ms, open_runs, open_started_epoch, last_failure_at,
      p50_ms, p95_ms, hist_k, hist_c)
    SELECT a.workflow_id, a.bucket, a.runs, a.succeeded, a.failed, a.canceled, a.running, a.finished,
           a.dur_sum_ms, a.dur_min_ms, a.dur_max_ms, a.open_runs, a.open_started_epoch, a.last_failure_at,
           a.pct[1], a.pct[2], coalesce(ha.ks, '{}'), coalesce(ha.cs, '{}')
    FROM a LEFT JOIN ha ON ha.workflow_id = a.workflow_id AND ha.bucket = a.bucket
  $q$, p_runs_hour, v_src) USING p_wf, p_hour, p_from;

  -- Step executions, paired as in mv_step_metrics, by their run's hour.
  -- One pass over them: per (bucket, node, histogram key), then per (bucket,
  -- node) with the histogram's arrays.
  v_tail := $q$
    hk AS (
      SELECT st.workflow_id, st.bucket, st.node_id, @schema@.dd_key(st.lat) AS k,
             count(*) AS c, count(*) FILTER (WHERE st.failed) AS f,
             min(st.lat) AS mn, max(st.lat) AS mx,
             max(st.ended_at) FILTER (WHERE st.failed) AS lf, max(st.node_type) AS nt,
             sum(st.attempts) AS a, max(st.attempts) AS am, count(*) FILTER (WHERE st.attempts > 1) AS rt,
             sum(st.failed_attempts) AS fa, sum(st.http_2xx) AS h2, sum(st.http_4xx) AS h4,
             sum(st.http_5xx) AS h5, sum(st.http_other) AS ho, sum(st.http_none) AS hn
      FROM st GROUP BY 1, 2, 3, 4
    )
    INSERT INTO %1$s (workflow_id, node_id, bucket, node_type, executions, failures,
      lat_min_ms, lat_max_ms, last_failure_at, hist_k, hist_c,
      attempts, attempts_max, retried, failed_attempts, http_2xx, http_4xx, http_5xx, http_other, http_none)
    SELECT hk.workflow_id, hk.node_id, hk.bucket, max(hk.nt), sum(hk.c), sum(hk.f),
           min(hk.mn), max(hk.mx), max(hk.lf),
           array_agg(hk.k ORDER BY hk.k), array_agg(hk.c::int ORDER BY hk.k),
           sum(hk.a), max(hk.am), sum(hk.rt), sum(hk.fa), sum(hk.h2), sum(hk.h4), sum(hk.h5),
           sum(hk.ho), sum(hk.hn)
    FROM hk GROUP BY 1, 2, 3
  $q$;
  IF p_full THEN
    -- A rebuild pairs a month of step events: as CREATE TABLE AS, whose
    -- query may run in parallel (an INSERT ... SELECT never does), joining
    -- the runs by hash and sorting the events once. (Literals, not
    -- parameters: a utility statement takes none. They are written and read
    -- back under this function's pinned DateStyle and TimeZone, ISO and UTC,
    -- which is exact; under a caller's DateStyle 'SQL, DMY' in Asia/Kolkata
    -- the clock went out as '02/03/2026 17:30:00 IST' and came back as
    -- Israel Standard Time, 3.5 hours late.) An unlogged table of
    -- this schema named for the backend, dropped in the same transaction:
    -- a temporary table would leave a pg_temp schema behind in MeshHook's
    -- database.
    v_build := pg_catalog.format('%I.%I', @schema@.schema_name(), 'rollup_build_' || pg_catalog.pg_backend_pid());
    EXECUTE pg_catalog.format('DROP TABLE IF EXISTS %s', v_build);
    EXECUTE pg_catalog.format($q$
      CREATE UNLOGGED TABLE %3$s AS
      SELECT pg_catalog.date_trunc('hour', x.run_started_at, 'UTC') AS bucket, x.*
      FROM @schema@.step_executions(NULL, %1$L::timestamptz, %2$L::timestamptz) x
    $q$, p_from, p_clock, v_build);
    EXECUTE pg_catalog.format('WITH st AS (SELECT s.* FROM %2$s s),' || v_tail, p_steps_hour, v_build);
    EXECUTE pg_catalog.format('DROP TABLE %s', v_build);
  ELSE
    -- A few keys probe each run's events through the (run_id, ts)
    -- indexes: the runs' ids go in as an array (a constant when the
    -- statement is planned: the index condition run_id = ANY). ts >= v_lo
    -- prunes workflow_events to the partitions that matter.
    EXECUTE pg_catalog.format('SELECT coalesce(array_agg(s.id), ''{}'') FROM (%s) s', v_src)
      INTO v_runs USING p_wf, p_hour, p_from;
    EXECUTE pg_catalog.format($q$
      WITH st AS (
        SELECT pg_catalog.date_trunc('hour', x.run_started_at, 'UTC') AS bucket, x.*
        FROM @schema@.step_executions($1, $2, $3) x
      ),$q$ || v_tail, p_steps_hour) USING v_runs, v_lo, p_clock;
  END IF;
  END IF;

  -- Days: merged from the hours of each (workflow, day) touched, once the
  -- hours are up to date.
  IF NOT p_full THEN
    EXECUTE pg_catalog.format('DELETE FROM %1$s t USING (%2$s) k WHERE t.workflow_id = k.wf AND t.bucket = k.d',
      p_runs_day, v_days) USING p_wf, p_hour, p_days_before, p_days_from;
    EXECUTE pg_catalog.format('DELETE FROM %1$s t USING (%2$s) k WHERE t.workflow_id = k.wf AND t.bucket = k.d',
      p_steps_day, v_days) USING p_wf, p_hour, p_days_before, p_days_from;
  END IF;

  EXECUTE pg_catalog.format($q$
    WITH src AS MATERIALIZED (%2$s),
    h AS (
      SELECT src.workflow_id, src.day, u.k, sum(u.c)::int AS c
      FROM src CROSS JOIN LATERAL unnest(src.hist_k, src.hist_c) AS u(k, c)
      GROUP BY 1, 2, 3
    ),
    ha AS (
      SELECT h.workflow_id, h.day, array_agg(h.k ORDER BY h.k) AS ks, array_agg(h.c ORDER BY h.k) AS cs
      FROM h GROUP BY 1, 2
    ),
    a AS (
      SELECT src.workflow_id, src.day, sum(src.runs) AS runs, sum(src.succeeded) AS succeeded,
             sum(src.failed) AS failed, sum(src.canceled) AS canceled, sum(src.running) AS running,
             sum(src.finished) AS finished, sum(src.dur_sum_ms) AS dur_sum_ms,
             min(src.dur_min_ms) AS dur_min_ms, max(src.dur_max_ms) AS dur_max_ms,
             sum(src.open_runs) AS open_runs, sum(src.open_started_epoch) AS open_started_epoch,
             max(src.last_failure_at) AS last_failure_at
      FROM src GROUP BY 1, 2
    )
    INSERT INTO %1$s (workflow_id, bucket, runs, succeeded, failed, canceled, running, finished,
      dur_sum_ms, dur_min_ms, dur_max_ms, open_runs, open_started_epoch, last_failure_at,
      p50_ms, p95_ms, hist_k, hist_c)
    SELECT a.workflow_id, a.day, a.runs, a.succeeded, a.failed, a.canceled, a.running, a.finished,
           a.dur_sum_ms, a.dur_min_ms, a.dur_max_ms, a.open_runs, a.open_started_epoch, a.last_failure_at,
           NULL, NULL, coalesce(ha.ks, '{}'), coalesce(ha.cs, '{}')
    FROM a LEFT JOIN ha ON ha.workflow_id = a.workflow_id AND ha.day = a.day
  $q$, p_runs_day, pg_catalog.format(v_hours, p_runs_hour)) USING p_wf, p_hour, p_days_before, p_days_from;

  EXECUTE pg_catalog.format($q$
    WITH src AS MATERIALIZED (%2$s),
    h AS (
      SELECT src.workflow_id, src.node_id, src.day, u.k, sum(u.c)::int AS c
      FROM src CROSS JOIN LATERAL unnest(src.hist_k, src.hist_c) AS u(k, c)
      GROUP BY 1, 2, 3, 4
    ),
    ha AS (
      SELECT h.workflow_id, h.node_id, h.day, array_agg(h.k ORDER BY h.k) AS ks, array_agg(h.c ORDER BY h.k) AS cs
      FROM h GROUP BY 1, 2, 3
    ),
    a AS (
      SELECT src.workflow_id, src.node_id, src.day, max(src.node_type) AS node_type,
             sum(src.executions) AS executions, sum(src.failures) AS failures,
             min(src.lat_min_ms) AS lat_min_ms, max(src.lat_max_ms) AS lat_max_ms,
             max(src.last_failure_at) AS last_failure_at,
             sum(src.attempts) AS attempts, max(src.attempts_max) AS attempts_max,
             sum(src.retried) AS retried, sum(src.failed_attempts) AS failed_attempts,
             sum(src.http_2xx) AS http_2xx, sum(src.http_4xx) AS http_4xx, sum(src.http_5xx) AS http_5xx,
             sum(src.http_other) AS http_other, sum(src.http_none) AS http_none
      FROM src GROUP BY 1, 2, 3
    )
    INSERT INTO %1$s (workflow_id, node_id, bucket, node_type, executions, failures,
      lat_min_ms, lat_max_ms, last_failure_at, hist_k, hist_c,
      attempts, attempts_max, retried, failed_attempts, http_2xx, http_4xx, http_5xx, http_other, http_none)
    SELECT a.workflow_id, a.node_id, a.day, a.node_type, a.executions, a.failures,
           a.lat_min_ms, a.lat_max_ms, a.last_failure_at, ha.ks, ha.cs,
           a.attempts, a.attempts_max, a.retried, a.failed_attempts, a.http_2xx, a.http_4xx, a.http_5xx,
           a.http_other, a.http_none
    FROM a JOIN ha ON ha.workflow_id = a.workflow_id AND ha.node_id = a.node_id AND ha.day = a.day
  $q$, p_steps_day, pg_catalog.format(v_hours, p_steps_hour)) USING p_wf, p_hour, p_days_before, p_days_from;
END
$meshtop$;

-- The partitions of public.workflow_events as {oid: [relfilenode, upper
-- bound]}: a partition dropped, detached, attached or truncated changes it.
-- The bound is text from pg_get_expr, which writes it in the session's
-- TimeZone and DateStyle: '2026-03-01 05:30:00+05:30' in Asia/Kolkata,
-- '01/03/2026 05:30:00 IST' under DateStyle SQL, DMY. Before the SET clauses
-- below, two refreshers with different TimeZones (an operator's PGTZ against
-- pg_cron's session) saw every partition "changed" and rebuilt on every
-- refresh. Now the text is always written as UTC ISO ('2026-03-01
-- 00:00:00+00'), and partitions_changed compares bounds as timestamptz
-- values anyway (a fingerprint stored by an older meshtop in another zone
-- is the same value written differently).
CREATE OR REPLACE FUNCTION @schema@.event_partitions() RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
-- The refresh settings (docs/REFRESH.md, "Session settings"): nothing here
-- may depend on the caller's session.
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on
AS $meshtop$
  SELECT coalesce(jsonb_object_agg(c.oid::text, jsonb_build_array(
           c.relfilenode::text,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), $r$TO \('([^']*)'\)$r$))[1])), '{}'::jsonb)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'public.workflow_events'::regclass
$meshtop$;

-- A partition bound of event_partitions() as a value: NULL when absent
-- (MAXVALUE, DEFAULT) or unreadable (a fingerprint an older meshtop wrote in
-- an exotic DateStyle): the caller then assumes the worst. Parsed under the
-- pinned settings; the text carries its UTC offset, and for a timestamptz an
-- explicit offset decides the value whatever the TimeZone.
CREATE OR REPLACE FUNCTION @schema@.partition_bound(p_text text) RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- The refresh settings (docs/REFRESH.md, "Session settings"): nothing here
-- may depend on the caller's session.
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on
AS $meshtop$
BEGIN
  RETURN p_text::timestamptz;
EXCEPTION WHEN OTHERS THEN
  RETURN NULL; -- called once per changed partition at refresh time, never on a writer's path
END
$meshtop$;

-- Whether a change between two event_partitions() values can matter to the
-- rollup: a partition that disappeared or was rewritten and could have held
-- events at or after p_horizon (unknown bound: assume so), or one that
-- appeared or was rewritten and holds rows now. A partition whose
-- relfilenode and bound value are the same in both is unchanged, however
-- its bound was written.
CREATE OR REPLACE FUNCTION @schema@.partitions_changed(p_old jsonb, p_new jsonb, p_horizon timestamptz) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- The refresh settings (docs/REFRESH.md, "Session settings"): nothing here
-- may depend on the caller's session.
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on
AS $meshtop$
DECLARE
  r record;
  v_rows boolean;
  v_old_bound timestamptz;
  v_new_bound timestamptz;
BEGIN
  IF p_old IS NULL THEN
    RETURN true;
  END IF;
  FOR r IN
    SELECT coalesce(o.key, n.key) AS oid, o.value AS old, n.value AS new
    FROM jsonb_each(p_old) o FULL JOIN jsonb_each(p_new) n ON n.key = o.key
    WHERE o.value IS DISTINCT FROM n.value
  LOOP
    v_old_bound := @schema@.partition_bound(r.old ->> 1);
    v_new_bound := @schema@.partition_bound(r.new ->> 1);
    CONTINUE WHEN r.old IS NOT NULL AND r.new IS NOT NULL
      AND (r.old ->> 0) = (r.new ->> 0)
      AND v_old_bound = v_new_bound; -- same partition, same bound, other spelling
    IF r.old IS NOT NULL AND (v_old_bound IS NULL OR v_old_bound > p_horizon) THEN
      RETURN true; -- gone or rewritten: it may have held rows of the window
    END IF;
    IF r.new IS NOT NULL THEN
      EXECUTE format('SELECT EXISTS (SELECT FROM %s)', r.oid::oid::regclass) INTO v_rows;
      IF v_rows AND (v_new_bound IS NULL OR v_new_bound > p_horizon) THEN
        RETURN true; -- appeared (or was rewritten) holding rows of the window
      END IF;
    END IF;
  END LOOP;
  RETURN false;
END
$meshtop$;

-- The capture log's bound (013_settings_capture_bound.sql, 020_capture.sql,
-- docs/REFRESH.md "The capture log's bound"). config capture_max_age, as an
-- interval (24 hours when unset or unreadable: a typo must not turn capture
-- off).
CREATE OR REPLACE FUNCTION @schema@.capture_max_age() RETURNS interval
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on
AS $meshtop$
DECLARE
  v interval;
BEGIN
  SELECT c.value::interval INTO v FROM @schema@.config c WHERE c.key = 'capture_max_age';
  RETURN CASE WHEN v > interval '0' THEN v ELSE interval '24 hours' END;
EXCEPTION WHEN OTHERS THEN
  RETURN interval '24 hours'; -- once per refresh, never on a writer's path
END
$meshtop$;

-- The transactions writing to MeshHook's tables right now (holding ROW
-- EXCLUSIVE on public.workflow_runs, public.workflow_events or one of its
-- partitions, with a transaction ID), other than this one, as xid8. Read
-- from pg_locks (readable by any role, and not MVCC: what holds locks now).
-- Right after an apply renews capture, every writer that read the gate
-- closed is one of these or has ended: its row or statement was written,
-- which gave it an XID and the lock, before its AFTER trigger ran. A
-- prepared transaction counts (it keeps its locks and XID without a
-- backend). pg_locks shows 32-bit XIDs; each is widened to the xid8 within
-- 2^31 of the current snapshot's xmax.
CREATE OR REPLACE FUNCTION @schema@.capture_writers() RETURNS xid8[]
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on
AS $meshtop$
  WITH rels AS (
    SELECT c.oid FROM pg_class c
    WHERE c.oid IN ('public.workflow_runs'::regclass, 'public.workflow_events'::regclass)
       OR c.oid IN (SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = 'public.workflow_events'::regclass)
  ),
  w AS (
    SELECT DISTINCT l.virtualtransaction FROM pg_locks l
    WHERE l.locktype = 'relation' AND l.granted AND l.mode = 'RowExclusiveLock'
      AND l.relation IN (SELECT rels.oid FROM rels)
      AND l.pid IS DISTINCT FROM pg_backend_pid()
      AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
  ),
  x AS (
    SELECT DISTINCT t.transactionid::text::bigint AS x FROM pg_locks t JOIN w ON w.virtualtransaction = t.virtualtransaction
    WHERE t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND t.granted
  ),
  ref AS (
    SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS r
  )
  SELECT coalesce(array_agg(((ref.r >> 32) + CASE WHEN x.x - (ref.r & 4294967295) > 2147483648 THEN -1
                                                   WHEN x.x - (ref.r & 4294967295) < -2147483648 THEN 1
                                                   ELSE 0 END) * 4294967296 + x.x)::text[]::xid8[], '{}')
  FROM x CROSS JOIN ref
$meshtop$;

-- Waits until none of p_xids is in progress, or p_timeout has passed
-- (polling every 10 ms: MeshHook's transactions are single statements,
-- gone in milliseconds).
CREATE OR REPLACE FUNCTION @schema@.capture_wait(p_xids xid8[], p_timeout interval) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on
AS $meshtop$
DECLARE
  v_deadline timestamptz := clock_timestamp() + p_timeout;
BEGIN
  WHILE EXISTS (SELECT FROM unnest(p_xids) x WHERE pg_xact_status(x) = 'in progress')
        AND clock_timestamp() < v_deadline LOOP
    PERFORM pg_sleep(0.01);
  END LOOP;
END
$meshtop$;

-- Renews change capture for an apply, under the apply's lock. Returns the
-- number of lapses so far (capture_lapses), whether a rebuild in this
-- transaction accounts for all of them (settled), and otherwise an XID
-- horizon for a later apply (horizon, horizon_lapses).
--   * capture_until := now + capture_max_age, unless the last successful
--     apply (rollup_state.capture_since) is more than twice capture_max_age
--     old: a refresh that keeps failing must not keep the log growing.
--     setval() is seen by every writer at once, before this transaction
--     commits; if it rolls back, capture stays renewed (harmless: the log
--     is consumed by the next successful apply).
--   * If capture_until had already passed (capture off now, or since the
--     last apply), capture_lapses is incremented, also non-transactionally:
--     the lapse outlives a rollback of this apply, whose renewal did not
--     roll back either.
--   * If any lapse is not yet accounted for (capture_lapses >
--     capture_lapses_seen), the caller rebuilds. The rebuild accounts for
--     the lapses only if its snapshots see every row written while capture
--     was off, i.e. every writer that read the gate closed has ended (and
--     is not hidden from the rebuild). Such a writer has an XID below any
--     assigned after the renewal, and is still writing or has ended.
--     READ COMMITTED (CALL refresh() and meshtop refresh make sure of it):
--     wait for the transactions writing to MeshHook's tables now
--     (capture_writers, up to config lock_timeout); once they have ended,
--     every later statement of the rebuild sees them. REPEATABLE READ: the
--     snapshot was taken before the renewal, so writers that ended since
--     stay hidden; settled only if a previous apply left a horizon for
--     these lapses and nothing below it is in progress in this snapshot.
--     Otherwise the horizon is this transaction's own XID, assigned right
--     after the renewal (unknown if it had one already), the next apply
--     settles, and until then every apply rebuilds.
CREATE OR REPLACE FUNCTION @schema@.capture_renew(p_state @schema@.rollup_state,
  OUT lapses bigint, OUT settled boolean, OUT horizon xid8, OUT horizon_lapses bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on
AS $meshtop$
DECLARE
  v_s text := quote_ident(@schema@.schema_name());
  v_now timestamptz := clock_timestamp();
  v_max interval := @schema@.capture_max_age();
  v_had_xid boolean := pg_current_xact_id_if_assigned() IS NOT NULL;
  v_until bigint;
  v_timeout interval;
  v_writers xid8[];
BEGIN
  SELECT g.last_value INTO v_until FROM @schema@.capture_until g;
  IF p_state.capture_since > v_now - 2 * v_max THEN
    PERFORM setval((v_s || '.capture_until')::regclass, ceil(date_part('epoch', v_now + v_max))::bigint);
  END IF;
  IF v_until <= date_part('epoch', v_now) THEN
    PERFORM nextval((v_s || '.capture_lapses')::regclass);
  END IF;
  SELECT g.last_value INTO lapses FROM @schema@.capture_lapses g;
  settled := lapses <= p_state.capture_lapses_seen;
  IF settled THEN
    RETURN;
  END IF;
  -- A horizon left by a previous apply, for all these lapses.
  IF p_state.capture_horizon IS NOT NULL AND p_state.capture_horizon_lapses >= lapses
     AND NOT EXISTS (SELECT FROM pg_snapshot_xip(pg_current_snapshot()) x WHERE x < p_state.capture_horizon) THEN
    settled := true;
    RETURN;
  END IF;
  IF current_setting('transaction_isolation') = 'read committed' THEN
    v_writers := @schema@.capture_writers();
    BEGIN
      SELECT c.value::interval INTO v_timeout FROM @schema@.config c WHERE c.key = 'lock_timeout';
    EXCEPTION WHEN OTHERS THEN
      v_timeout := NULL;
    END;
    PERFORM @schema@.capture_wait(v_writers, coalesce(v_timeout, interval '5 seconds'));
    settled := NOT EXISTS (SELECT FROM unnest(v_writers) x WHERE pg_xact_status(x) = 'in progress');
    IF settled THEN
      RETURN;
    END IF;
  END IF;
  IF NOT v_had_xid THEN
    horizon := pg_current_xact_id();
    horizon_lapses := lapses;
  ELSE
    horizon := p_state.capture_horizon; -- keep what a previous apply knew
    horizon_lapses := p_state.capture_horizon_lapses;
  END IF;
END
$meshtop$;

-- The capture log as data/store reads it (Store.CaptureLog; meshtop check):
--   log_rows        estimated rows in dirty_keys + dirty_runs (the statistics'
--                   live tuples: no scan of a log that may hold millions)
--   log_bytes       their size on disk (a consumed log's space is reused,
--                   not returned: this stays at its high-water mark)
--   since           when the log was last consumed (the last successful
--                   apply; at first, the install): its oldest entry is about
--                   this old
--   stops_at        when capture stops unless a refresh consumes the log
--   max_age         config capture_max_age
--   stopped         capture is off now (stops_at has passed)
--   rebuild_pending capture was off since the last successful apply: the
--                   rollup misses changes until the next refresh rebuilds it
CREATE OR REPLACE FUNCTION @schema@.capture_status(
  OUT log_rows bigint, OUT log_bytes bigint, OUT since timestamptz, OUT stops_at timestamptz,
  OUT max_age interval, OUT stopped boolean, OUT rebuild_pending boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on
SET stats_fetch_consistency = 'none'
AS $meshtop$
DECLARE
  v_s text := quote_ident(@schema@.schema_name());
  v_until bigint;
  v_lapses bigint;
BEGIN
  log_rows := greatest(pg_stat_get_live_tuples((v_s || '.dirty_keys')::regclass), 0)
          + greatest(pg_stat_get_live_tuples((v_s || '.dirty_runs')::regclass), 0);
  log_bytes := pg_relation_size((v_s || '.dirty_keys')::regclass) + pg_relation_size((v_s || '.dirty_runs')::regclass);
  SELECT s.capture_since INTO since FROM @schema@.rollup_state s;
  SELECT g.last_value INTO v_until FROM @schema@.capture_until g;
  SELECT g.last_value INTO v_lapses FROM @schema@.capture_lapses g;
  stops_at := to_timestamp(v_until);
  max_age := @schema@.capture_max_age();
  stopped := v_until <= date_part('epoch', now());
  rebuild_pending := stopped OR v_lapses > (SELECT s.capture_lapses_seen FROM @schema@.rollup_state s);
END
$meshtop$;

-- Applies the dirty-key log to the rollup (see the top of this file) and
-- returns how: mode 'incremental' or 'full', and the number of log rows
-- consumed. Refreshes of different views may run at once: one applies, the
-- others go on with the rollup as it is (it is complete, only a few seconds
-- older), unless it has to be rebuilt, which they wait for.
-- p_kinds: the window cells to bring up to date after the apply, 'runs'
-- (window_runs, read by mv_workflow_metrics) and/or 'steps' (window_steps,
-- read by mv_step_metrics); each refresh computes those of its view
-- (migration 011). The keys consumed for a kind not computed wait in
-- cells_pending for the next apply that computes it.
DROP FUNCTION IF EXISTS @schema@.rollup_apply();
CREATE OR REPLACE FUNCTION @schema@.rollup_apply(p_kinds text[], OUT mode text, OUT dirty_keys bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- The refresh settings (docs/REFRESH.md, "Session settings"): nothing here
-- may depend on the caller's session.
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 1 SET timezone_abbreviations = 'Default' SET quote_all_identifiers = off
SET transform_null_equals = off SET array_nulls = on SET standard_conforming_strings = on
AS $meshtop$
DECLARE
  v_key int := hashtext(@schema@.schema_name() || '.rollup');
  v_s text := quote_ident(@schema@.schema_name());
  v_clock timestamptz := @schema@.clock();
  v_pinned text;
  v_horizon timestamptz := @schema@.rollup_horizon(@schema@.clock());
  v_state @schema@.rollup_state;
  v_kwf uuid[];
  v_khour timestamptz[];
  v_runs uuid[];
  v_nkeys bigint;
  v_nruns bigint;
  v_marker boolean;
  v_parts jsonb;
  v_full boolean;
  v_wf uuid[];
  v_hour timestamptz[];
  v_cells record;
  v_hnow timestamptz;
  v_hprev timestamptz;
  v_awf uuid[];
  v_ahour timestamptz[];
  v_kind text;
  v_kclock timestamptz;
  v_pwf uuid[];
  v_phour timestamptz[];
  v_reset text[] := '{}'; -- kinds whose cells are all computed next time
  v_capture record;       -- what capture_renew returns
  v_complete boolean;     -- capture_for_apply: no change went uncaptured
BEGIN
  SELECT coalesce(c.value, '') INTO v_pinned FROM @schema@.config c WHERE c.key = 'clock';
  IF NOT pg_try_advisory_xact_lock(1835365224, v_key) THEN
    -- Another refresh is applying the log right now: go on with the rollup
    -- and the cells as they are (docs/REFRESH.md, "Apply, then refresh";
    -- refresh_run logs the cells' clock as the data's age).
    SELECT s.* INTO v_state FROM @schema@.rollup_state s;
    IF v_state.built AND v_state.built_clock IS NOT DISTINCT FROM v_pinned THEN
      mode := 'incremental';
      dirty_keys := 0;
      RETURN; -- another refresh is applying the log right now
    END IF;
    PERFORM pg_advisory_xact_lock(1835365224, v_key);
  END IF;
  SELECT s.* INTO v_state FROM @schema@.rollup_state s;
  -- WAL capture (025_wal.sql): the slot's changes into the logs before they
  -- are read, or a fallback to the triggers. Incomplete capture (a slot
  -- lost, the row-level triggers missing) rebuilds, and settles no lapse
  -- until capture is whole again.
  SELECT c.complete INTO v_complete FROM @schema@.capture_for_apply() c;
  -- Renew change capture (before the log is read: from here on every writer
  -- logs), and rebuild if it was off since the last successful apply.
  SELECT c.lapses, c.settled, c.horizon, c.horizon_lapses INTO v_capture FROM @schema@.capture_renew(v_state) c;
  v_capture.settled := v_capture.settled AND v_complete;

  -- The log rows this refresh consumes: those visible now, taken out of
  -- the logs by one DELETE each, which removes exactly the rows it returns.
  -- Rows committed later stay for the next refresh. (If anything below
  -- fails, the DELETEs roll back with it.)
  WITH d AS (DELETE FROM @schema@.dirty_keys RETURNING workflow_id, hour)
  SELECT array_agg(d.workflow_id), array_agg(d.hour), coalesce(bool_or(d.workflow_id IS NULL), false), count(*)
  INTO v_kwf, v_khour, v_marker, v_nkeys
  FROM d;
  WITH d AS (DELETE FROM @schema@.dirty_runs RETURNING run_id)
  SELECT array_agg(DISTINCT d.run_id), count(*) INTO v_runs, v_nruns FROM d;
  dirty_keys := v_nkeys + v_nruns;

  v_parts := @schema@.event_partitions();
  -- A pinned clock that moved back needs hours the rollup already dropped;
  -- switching between a pinned clock and now() is rare: rebuild.
  v_full := NOT v_state.built OR v_marker OR NOT v_complete
    OR v_capture.lapses > v_state.capture_lapses_seen
    OR (v_state.built_clock = '') <> (v_pinned = '')
    OR (v_pinned <> '' AND v_pinned::timestamptz < v_state.built_clock::timestamptz)
    OR (v_state.partitions IS DISTINCT FROM v_parts
        AND @schema@.partitions_changed(v_state.partitions, v_parts, v_horizon));

  IF v_full THEN
    mode := 'full';
    PERFORM @schema@.rollup_recompute(true, NULL, NULL, v_horizon, v_clock,
      (v_s || '.rollup_runs_hour')::regclass, (v_s || '.rollup_steps_hour')::regclass,
      (v_s || '.rollup_runs_day')::regclass, (v_s || '.rollup_steps_day')::regclass,
      date_trunc('day', v_clock, 'UTC'), NULL);
  ELSE
    mode := 'incremental';
    -- A pinned clock that moved forward brings the step events between the
    -- two clocks into their runs' buckets (steps after the clock are
    -- ignored). With now() events are not written after the clock, so the
    -- log has their keys already (docs/REFRESH.md: future-dated events).
    -- Keys older than the horizon have no bucket any more, but may still
    -- name a cell's window at the previous clock: they go to cells_changed.
    SELECT array_agg(k.workflow_id), array_agg(k.hour) INTO v_wf, v_hour
    FROM (SELECT k.wf AS workflow_id, k.h AS hour FROM unnest(v_kwf, v_khour) AS k(wf, h)
          WHERE k.wf IS NOT NULL
          UNION
          -- Runs whose step events changed: their keys now (a run deleted
          -- since logged its own key).
          SELECT r.workflow_id, date_trunc('hour', r.started_at, 'UTC')
          FROM public.workflow_runs r WHERE r.id = ANY (v_runs)
          UNION
          SELECT r.workflow_id, date_trunc('hour', r.started_at, 'UTC')
          FROM public.workflow_events e JOIN public.workflow_runs r ON r.id = e.run_id
          WHERE v_pinned <> '' AND v_state.built_clock <> v_pinned
            AND e.ts > v_state.built_clock::timestamptz AND e.ts <= v_clock
            AND e.type IN ('step_started', 'step_succeeded', 'step_failed')
            AND r.started_at >= v_horizon) k;
    -- The hour holding the clock is never read from the rollup (the
    -- windows and the hourly view read it from the runs), so its keys only
    -- go to cells_changed; each hour is built once it has ended, at the
    -- first apply after (all of it: its stale buckets deleted first). Then
    -- the hours of the older keys, then the days they belong to and the
    -- days that ended since the last apply (a day is read whole only once
    -- it ended).
    v_hnow := date_trunc('hour', v_clock, 'UTC');
    v_hprev := greatest(date_trunc('hour', coalesce(v_state.cells_clock, v_horizon), 'UTC'), v_horizon);
    IF v_hprev < v_hnow THEN
      DELETE FROM @schema@.rollup_runs_hour t WHERE t.bucket >= v_hprev AND t.bucket < v_hnow;
      DELETE FROM @schema@.rollup_steps_hour t WHERE t.bucket >= v_hprev AND t.bucket < v_hnow;
    END IF;
    SELECT array_agg(k.wf), array_agg(k.h) INTO v_awf, v_ahour
    FROM (SELECT x.wf, x.h FROM unnest(v_wf, v_hour) AS x(wf, h)
          WHERE x.h >= v_horizon AND x.h < v_hprev
          UNION
          SELECT DISTINCT r.workflow_id, date_trunc('hour', r.started_at, 'UTC')
          FROM public.workflow_runs r
          WHERE r.started_at >= v_hprev AND r.started_at < v_hnow) k;
    PERFORM @schema@.rollup_recompute(false, v_awf, v_ahour, v_horizon, v_clock,
      (v_s || '.rollup_runs_hour')::regclass, (v_s || '.rollup_steps_hour')::regclass,
      (v_s || '.rollup_runs_day')::regclass, (v_s || '.rollup_steps_day')::regclass,
      date_trunc('day', v_clock, 'UTC'),
      date_trunc('day', coalesce(v_state.cells_clock, v_horizon), 'UTC'));
    -- The cells' cached whole days (035_cells.sql) that hold a day just
    -- recomputed from a key. (The days that ended since the last apply move
    -- every cell's day range, which makes its entry stale by itself.)
    DELETE FROM @schema@.window_days_runs c
    USING (SELECT DISTINCT k.wf, date_trunc('day', k.h, 'UTC') AS d FROM unnest(v_awf, v_ahour) AS k(wf, h)) k
    WHERE c.workflow_id = k.wf AND k.d >= c.d0 AND k.d < c.d1;
    -- Hours that left the 30-day window (the clock only moves forward
    -- here; a pinned clock that moves rebuilds).
    DELETE FROM @schema@.rollup_runs_hour t WHERE t.bucket < v_horizon;
    DELETE FROM @schema@.rollup_steps_hour t WHERE t.bucket < v_horizon;
    DELETE FROM @schema@.rollup_runs_day t WHERE t.bucket < date_trunc('day', v_horizon, 'UTC');
    DELETE FROM @schema@.rollup_steps_day t WHERE t.bucket < date_trunc('day', v_horizon, 'UTC');
  END IF;

  IF v_full THEN
    DELETE FROM @schema@.window_days_runs;
    DELETE FROM @schema@.window_days_steps;
  END IF;
  -- The window cells of each kind asked for that changed since that kind
  -- was last computed, from the rollup just brought up to date
  -- (035_cells.sql): the keys of this apply and those pending for it since;
  -- all of them after a rebuild. For a kind not asked for, this apply's
  -- keys wait in cells_pending (none need to when its cells are all to be
  -- computed anyway).
  FOREACH v_kind IN ARRAY ARRAY['runs', 'steps'] LOOP
    v_kclock := CASE WHEN v_full THEN NULL
                     WHEN v_kind = 'runs' THEN v_state.runs_cells_clock
                     ELSE v_state.steps_cells_clock END;
    IF NOT v_kind = ANY (p_kinds) THEN
      IF v_kclock IS NULL OR v_kclock <= v_clock - interval '720 hours' THEN
        -- All its cells next time: after a rebuild, or when that kind was
        -- last computed a window's length ago or more (which also bounds
        -- what waits in cells_pending when a view is never refreshed).
        DELETE FROM @schema@.cells_pending p WHERE p.kind = v_kind;
        v_reset := v_reset || v_kind;
      ELSE
        INSERT INTO @schema@.cells_pending (kind, workflow_id, hour)
        SELECT DISTINCT v_kind, k.wf, k.h FROM unnest(v_wf, v_hour) AS k(wf, h) WHERE k.wf IS NOT NULL
        ON CONFLICT DO NOTHING;
      END IF;
      CONTINUE;
    END IF;
    WITH d AS (DELETE FROM @schema@.cells_pending p WHERE p.kind = v_kind RETURNING p.workflow_id, p.hour)
    SELECT array_agg(x.wf), array_agg(x.h) INTO v_pwf, v_phour
    FROM (SELECT d.workflow_id AS wf, d.hour AS h FROM d
          UNION
          SELECT k.wf, k.h FROM unnest(v_wf, v_hour) AS k(wf, h) WHERE k.wf IS NOT NULL) x;
    IF v_kclock IS NULL THEN
      EXECUTE format('DELETE FROM %s.%I', v_s, 'window_' || v_kind);
    END IF;
    SELECT c.wf, c.win INTO v_cells FROM @schema@.cells_changed(v_kclock, v_clock, v_pwf, v_phour) c;
    PERFORM @schema@.cells_recompute(v_clock, v_cells.wf, v_cells.win,
      (v_s || '.window_runs')::regclass, (v_s || '.window_steps')::regclass,
      (v_s || '.rollup_runs_hour')::regclass, (v_s || '.rollup_runs_day')::regclass,
      (v_s || '.rollup_steps_hour')::regclass, (v_s || '.rollup_steps_day')::regclass,
      (v_s || '.window_days_runs')::regclass, (v_s || '.window_days_steps')::regclass,
      ARRAY[v_kind]);
  END LOOP;

  UPDATE @schema@.rollup_state s
     SET built = true, built_clock = v_pinned, built_at = clock_timestamp(), partitions = v_parts,
         cells_clock = v_clock,
         capture_since = clock_timestamp(),
         capture_lapses_seen = CASE WHEN v_capture.settled THEN v_capture.lapses ELSE s.capture_lapses_seen END,
         capture_horizon = CASE WHEN v_capture.settled THEN NULL ELSE v_capture.horizon END,
         capture_horizon_lapses = CASE WHEN v_capture.settled THEN NULL ELSE v_capture.horizon_lapses END,
         runs_cells_clock = CASE WHEN 'runs' = ANY (p_kinds) THEN v_clock
                                 WHEN 'runs' = ANY (v_reset) THEN NULL ELSE s.runs_cells_clock END,
         steps_cells_clock = CASE WHEN 'steps' = ANY (p_kinds) THEN v_clock
                                  WHEN 'steps' = ANY (v_reset) THEN NULL ELSE s.steps_cells_clock END;
END
$meshtop$;

-- rollup_state.hour_rows follows the rows of rollup_runs_hour: statement
-- triggers with transition tables add what was inserted and subtract what
-- was deleted (only rollup_apply writes the table, under its advisory lock),
-- and every re-application of this file recounts it.
CREATE OR REPLACE FUNCTION @schema@.hour_rows_count() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $meshtop$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE @schema@.rollup_state s SET hour_rows = s.hour_rows + (SELECT count(*) FROM meshtop_new);
  ELSE
    UPDATE @schema@.rollup_state s SET hour_rows = s.hour_rows - (SELECT count(*) FROM meshtop_old);
  END IF;
  RETURN NULL;
END
$meshtop$;
DROP TRIGGER IF EXISTS meshtop_hour_rows_ins ON @schema@.rollup_runs_hour;
DROP TRIGGER IF EXISTS meshtop_hour_rows_del ON @schema@.rollup_runs_hour;
CREATE TRIGGER meshtop_hour_rows_ins AFTER INSERT ON @schema@.rollup_runs_hour
  REFERENCING NEW TABLE AS meshtop_new FOR EACH STATEMENT EXECUTE FUNCTION @schema@.hour_rows_count();
CREATE TRIGGER meshtop_hour_rows_del AFTER DELETE ON @schema@.rollup_runs_hour
  REFERENCING OLD TABLE AS meshtop_old FOR EACH STATEMENT EXECUTE FUNCTION @schema@.hour_rows_count();
UPDATE @schema@.rollup_state s SET hour_rows = (SELECT count(*) FROM @schema@.rollup_runs_hour);

-- The keys waiting in the logs (verify leaves their buckets and cells out:
-- the next refresh recomputes them).
CREATE OR REPLACE FUNCTION @schema@.pending_keys() RETURNS TABLE (workflow_id uuid, hour timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT k.workflow_id, k.hour FROM @schema@.dirty_keys k
  UNION
  SELECT r.workflow_id, date_trunc('hour', r.started_at, 'UTC')
  FROM @schema@.dirty_runs d JOIN public.workflow_runs r ON r.id = d.run_id
$meshtop$;

-- refresh --full: the next refresh rebuilds the rollup from the raw tables.
CREATE OR REPLACE FUNCTION @schema@.refresh_request_full() RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  INSERT INTO @schema@.dirty_keys (workflow_id, hour) VALUES (NULL, NULL)
$meshtop$;
