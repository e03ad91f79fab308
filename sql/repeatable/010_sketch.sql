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

-- The oldest hour the rollup keeps at clock p_clock: the hour holding the
-- start of the 30-day window (the hourly view shows it whole).
CREATE OR REPLACE FUNCTION @schema@.rollup_horizon(p_clock timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $meshtop$
  SELECT pg_catalog.date_trunc('hour', p_clock - interval '720 hours', 'UTC')
$meshtop$;
