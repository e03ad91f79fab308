-- 016_step_attempts: step metrics that follow MeshHook's step lifecycle
-- (issue #25).
--
-- MeshHook's HTTP executor retries a failing call up to 5 times without a new
-- step_started; meshtop paired each step_started with the next step event of
-- its node, so a step that failed twice and then succeeded counted as one
-- failed execution with the latency of its first attempt. A step execution
-- is now a step_started through its final outcome (run_step_executions in
-- sql/repeatable/030_rollup.sql, docs/METRICS.md), and the step buckets and
-- cells keep, per (workflow, node) and bucket or window, exact counts of its
-- attempts:
--   attempts         step_succeeded/step_failed events of the executions
--                    (one per attempt)
--   attempts_max     the most attempts one execution made
--   retried          executions with more than one attempt
--   failed_attempts  their step_failed events
--   http_2xx, http_4xx, http_5xx, http_other
--                    attempts whose http_attempted (right before their
--                    outcome) had a status in that class (other: 1xx, 3xx,
--                    none or not a number)
--   http_none        failed attempts without an http_attempted: no response
--                    (a network error, or a node that makes no HTTP call)
-- Every bucket and cell built before has the old meaning: the next refresh
-- rebuilds the rollup.

ALTER TABLE @schema@.rollup_steps_hour
  ADD COLUMN attempts bigint NOT NULL DEFAULT 0, ADD COLUMN attempts_max int NOT NULL DEFAULT 0,
  ADD COLUMN retried bigint NOT NULL DEFAULT 0, ADD COLUMN failed_attempts bigint NOT NULL DEFAULT 0,
  ADD COLUMN http_2xx bigint NOT NULL DEFAULT 0, ADD COLUMN http_4xx bigint NOT NULL DEFAULT 0,
  ADD COLUMN http_5xx bigint NOT NULL DEFAULT 0, ADD COLUMN http_other bigint NOT NULL DEFAULT 0,
  ADD COLUMN http_none bigint NOT NULL DEFAULT 0;
ALTER TABLE @schema@.rollup_steps_day
  ADD COLUMN attempts bigint NOT NULL DEFAULT 0, ADD COLUMN attempts_max int NOT NULL DEFAULT 0,
  ADD COLUMN retried bigint NOT NULL DEFAULT 0, ADD COLUMN failed_attempts bigint NOT NULL DEFAULT 0,
  ADD COLUMN http_2xx bigint NOT NULL DEFAULT 0, ADD COLUMN http_4xx bigint NOT NULL DEFAULT 0,
  ADD COLUMN http_5xx bigint NOT NULL DEFAULT 0, ADD COLUMN http_other bigint NOT NULL DEFAULT 0,
  ADD COLUMN http_none bigint NOT NULL DEFAULT 0;
ALTER TABLE @schema@.window_steps
  ADD COLUMN attempts bigint NOT NULL DEFAULT 0, ADD COLUMN attempts_max int NOT NULL DEFAULT 0,
  ADD COLUMN retried bigint NOT NULL DEFAULT 0, ADD COLUMN failed_attempts bigint NOT NULL DEFAULT 0,
  ADD COLUMN http_2xx bigint NOT NULL DEFAULT 0, ADD COLUMN http_4xx bigint NOT NULL DEFAULT 0,
  ADD COLUMN http_5xx bigint NOT NULL DEFAULT 0, ADD COLUMN http_other bigint NOT NULL DEFAULT 0,
  ADD COLUMN http_none bigint NOT NULL DEFAULT 0;
ALTER TABLE @schema@.window_days_steps
  ADD COLUMN attempts bigint NOT NULL DEFAULT 0, ADD COLUMN attempts_max int NOT NULL DEFAULT 0,
  ADD COLUMN retried bigint NOT NULL DEFAULT 0, ADD COLUMN failed_attempts bigint NOT NULL DEFAULT 0,
  ADD COLUMN http_2xx bigint NOT NULL DEFAULT 0, ADD COLUMN http_4xx bigint NOT NULL DEFAULT 0,
  ADD COLUMN http_5xx bigint NOT NULL DEFAULT 0, ADD COLUMN http_other bigint NOT NULL DEFAULT 0,
  ADD COLUMN http_none bigint NOT NULL DEFAULT 0;

-- The rows already there keep 0 (no table rewrite); every insert names the
-- columns.
DO $meshtop$
DECLARE
  t text;
  c text;
BEGIN
  FOREACH t IN ARRAY ARRAY['rollup_steps_hour', 'rollup_steps_day', 'window_steps', 'window_days_steps'] LOOP
    FOREACH c IN ARRAY ARRAY['attempts', 'attempts_max', 'retried', 'failed_attempts',
                             'http_2xx', 'http_4xx', 'http_5xx', 'http_other', 'http_none'] LOOP
      EXECUTE pg_catalog.format('ALTER TABLE %s.%I ALTER COLUMN %I DROP DEFAULT',
        pg_catalog.quote_ident(@schema@.schema_name()), t, c);
    END LOOP;
  END LOOP;
END
$meshtop$;

-- Rebuild at the next refresh: the step buckets and cells hold the old
-- pairing. (Not the marker of refresh --full in dirty_keys: a row there
-- shows in the capture log's size until the statistics catch up.)
UPDATE @schema@.rollup_state SET built = false;
