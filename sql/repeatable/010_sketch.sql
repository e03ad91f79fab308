-- 010_sketch: the duration histogram and the window arithmetic shared by the
-- rollup and the views. Repeatable: re-applied whenever this file changes.
--
-- Histogram (DDSketch's logarithmic index mapping). With relative accuracy
-- alpha = 0.009 and gamma = (1 + alpha) / (1 - alpha), a value x > 0 goes to
-- bucket i = ceil(ln(x) / ln(gamma)), i.e. gamma^(i-1) < x <= gamma^i, and is
-- estimated as 2 * gamma^i / (gamma + 1), which is within alpha of every
-- value of the bucket. Keys are i + 4000 for x > 0, -(i + 4000) for x < 0
-- (mirrored) and 0 for x = 0, so keys sort like the values they stand for.
-- Durations carry microseconds (>= 0.001 ms), so i stays within about
-- -400..1800: the offset keeps every key of a positive value positive.
-- Bucket counts are merged by adding them, and subtracted the same way: any
-- set of hours gives the histogram of its runs, and a percentile computed
-- from it is within alpha (0.9%) of the exact one (docs/METRICS.md).
--
-- Plain SQL functions without SET clauses, so the planner inlines them.

CREATE OR REPLACE FUNCTION @schema@.dd_key(x float8) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $meshtop$
  SELECT CASE
    WHEN x > 0 THEN pg_catalog.int4larger(pg_catalog.ceil(pg_catalog.ln(x) / pg_catalog.ln(1.009::float8 / 0.991::float8))::int, -3999) + 4000
    WHEN x < 0 THEN -(pg_catalog.int4larger(pg_catalog.ceil(pg_catalog.ln(-x) / pg_catalog.ln(1.009::float8 / 0.991::float8))::int, -3999) + 4000)
    ELSE 0
  END
$meshtop$;

-- The estimate of the values in bucket k (see dd_key).
CREATE OR REPLACE FUNCTION @schema@.dd_value(k int) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $meshtop$
  SELECT CASE WHEN k = 0 THEN 0::float8
    ELSE pg_catalog.sign(k)::float8
         * pg_catalog.exp((pg_catalog.abs(k) - 4000)::float8 * pg_catalog.ln(1.009::float8 / 0.991::float8))
         * 2 / (1 + 1.009::float8 / 0.991::float8)
  END
$meshtop$;

-- Percentiles from a merged histogram: p_k (ascending keys) and p_c (their
-- counts, summing to p_n), with the exact minimum and maximum, for each
-- fraction of p_q (ascending). For fraction q, percentile_cont interpolates
-- between the order statistics floor(r) and ceil(r), r = q * (n - 1)
-- (0-based); each is estimated by the bucket holding that rank (within
-- alpha), clamped to the exact min/max and equal to them at ranks 0 and
-- n - 1; the interpolation of two estimates within alpha is within alpha.
-- NULL when p_n is 0, or for a fraction whose ranks the counts do not reach.
-- One pass over the keys for all fractions (the windows' cells call it once
-- each: a join of every key with every rank cost more than the rest of a
-- cell's recompute).
CREATE OR REPLACE FUNCTION @schema@.dd_percentiles(
  p_k int[], p_c bigint[], p_n bigint, p_min float8, p_max float8, p_q float8[])
RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
DECLARE
  v_nq int := coalesce(cardinality(p_q), 0);
  v_r float8[] := '{}';    -- r of each fraction
  v_lo float8[];           -- estimate at floor(r), at ceil(r)
  v_hi float8[];
  v_f int := 1;            -- next fraction whose floor rank is unresolved
  v_c int := 1;            -- ... whose ceil rank is unresolved
  v_cum bigint := 0;
  v_res float8[] := '{}';
  v_j int;
BEGIN
  IF p_n IS NULL OR p_n <= 0 THEN
    RETURN NULL;
  END IF;
  FOR v_j IN 1 .. v_nq LOOP
    v_r := v_r || (p_q[v_j] * (p_n - 1));
  END LOOP;
  v_lo := array_fill(NULL::float8, ARRAY[v_nq]);
  v_hi := array_fill(NULL::float8, ARRAY[v_nq]);
  -- The floors ascend with the fractions, and so do the ceilings: two
  -- pointers, one pass over the keys.
  FOR v_j IN 1 .. coalesce(cardinality(p_k), 0) LOOP
    EXIT WHEN v_f > v_nq AND v_c > v_nq;
    v_cum := v_cum + p_c[v_j];
    WHILE v_f <= v_nq AND floor(v_r[v_f]) < v_cum LOOP
      v_lo[v_f] := @schema@.dd_rank_value(floor(v_r[v_f]), p_n, p_k[v_j], p_min, p_max);
      v_f := v_f + 1;
    END LOOP;
    WHILE v_c <= v_nq AND ceil(v_r[v_c]) < v_cum LOOP
      v_hi[v_c] := @schema@.dd_rank_value(ceil(v_r[v_c]), p_n, p_k[v_j], p_min, p_max);
      v_c := v_c + 1;
    END LOOP;
  END LOOP;
  FOR v_j IN 1 .. v_nq LOOP
    v_res := v_res || (v_lo[v_j] + (v_r[v_j] - floor(v_r[v_j])) * (v_hi[v_j] - v_lo[v_j]));
  END LOOP;
  RETURN v_res;
END
$meshtop$;

-- The estimate of the order statistic at 0-based rank p_rank of p_n values
-- whose bucket is p_k: the exact minimum or maximum at either end, else the
-- bucket's estimate clamped to them.
CREATE OR REPLACE FUNCTION @schema@.dd_rank_value(p_rank float8, p_n bigint, p_k int, p_min float8, p_max float8)
RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $meshtop$
  SELECT CASE WHEN p_rank = 0 THEN p_min
              WHEN p_rank = p_n - 1 THEN p_max
              ELSE pg_catalog.float8smaller(pg_catalog.float8larger(@schema@.dd_value(p_k), p_min), p_max) END
$meshtop$;

-- The four windows at clock p_clock, each split into what is read from
-- where. A window holds runs with lo < started_at <= hi (lo = clock - span).
--   raw          lo < started_at < h0, and h1 <= started_at <= hi: the
--                partial hours at both ends, from workflow_runs through
--                meshtop_workflow_runs_started_at_idx
--   hourly rows  [h0, d0) and [d1, h1)
--   daily rows   [d0, d1)
-- h0 = the first whole hour after lo, h1 = the hour holding the clock, d0/d1
-- the whole UTC days between them (d0 = d1 = h1 when there are none). Spans
-- are whole hours, so h0 <= h1 always (1h: h0 = h1, everything raw).
-- Hours and days are UTC; 24 hours, never '1 day' (the session TimeZone
-- could make a day 23 or 25 hours long).
CREATE OR REPLACE FUNCTION @schema@.window_bounds(p_clock timestamptz)
RETURNS TABLE ("window" text, ord int, span interval, lo timestamptz, hi timestamptz,
               h0 timestamptz, h1 timestamptz, d0 timestamptz, d1 timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $meshtop$
  SELECT w.name, w.ord, w.span, p_clock - w.span, p_clock, x.h0, x.h1,
         CASE WHEN y.d0 < y.d1 THEN y.d0 ELSE x.h1 END,
         CASE WHEN y.d0 < y.d1 THEN y.d1 ELSE x.h1 END
  FROM (VALUES ('1h', 1, interval '1 hour'), ('24h', 2, interval '24 hours'),
               ('7d', 3, interval '168 hours'), ('30d', 4, interval '720 hours')) AS w(name, ord, span)
  CROSS JOIN LATERAL (
    SELECT pg_catalog.date_trunc('hour', p_clock - w.span, 'UTC') + interval '1 hour' AS h0,
           pg_catalog.date_trunc('hour', p_clock, 'UTC') AS h1) x
  CROSS JOIN LATERAL (
    SELECT CASE WHEN pg_catalog.date_trunc('day', x.h0, 'UTC') = x.h0 THEN x.h0
                ELSE pg_catalog.date_trunc('day', x.h0, 'UTC') + interval '24 hours' END AS d0,
           pg_catalog.date_trunc('day', x.h1, 'UTC') AS d1) y
$meshtop$;

-- The runs of the raw parts of the four windows at clock p_clock (see
-- window_bounds): each window's lower partial hour (lo, h0), tagged with the
-- window, and the upper one [h1, clock], which every window shares, once,
-- with "window" NULL. Each range is one scan of
-- meshtop_workflow_runs_started_at_idx, whatever the number of cells the
-- caller joins it to (by hash, on the workflow): joined to the cells inside
-- one query, the planner probed the index once per cell, reading every
-- workflow's runs of the edge hours for each of them — a cost of cells x the
-- current hour's traffic (4 minutes for 224 cells after 500k runs in the
-- hour). The caller filters by workflow. The SET clause also keeps the
-- planner from inlining the function into the caller's query, which is
-- what brought the per-cell probes back.
CREATE OR REPLACE FUNCTION @schema@.edge_runs(p_clock timestamptz)
RETURNS TABLE ("window" text, id uuid, workflow_id uuid, status text, started_at timestamptz,
               finished_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT b."window", x.id, x.workflow_id, x.status::text, x.started_at, x.finished_at
  FROM @schema@.window_bounds(p_clock) b
  CROSS JOIN LATERAL (
    SELECT x.id, x.workflow_id, x.status, x.started_at, x.finished_at FROM public.workflow_runs x
    WHERE x.started_at > b.lo AND x.started_at < b.h0) x
  UNION ALL
  SELECT NULL, x.id, x.workflow_id, x.status::text, x.started_at, x.finished_at
  FROM public.workflow_runs x
  WHERE x.started_at >= pg_catalog.date_trunc('hour', p_clock, 'UTC') AND x.started_at <= p_clock
$meshtop$;

-- The oldest hour the rollup keeps at clock p_clock: the hour holding the
-- start of the 30-day window (the hourly view shows it whole).
CREATE OR REPLACE FUNCTION @schema@.rollup_horizon(p_clock timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $meshtop$
  SELECT pg_catalog.date_trunc('hour', p_clock - interval '720 hours', 'UTC')
$meshtop$;
