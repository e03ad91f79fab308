-- 009_incremental: the state of incremental refresh — a dirty-key log
-- written by statement-level triggers on MeshHook's tables, hourly and daily
-- rollups, and the bookkeeping of repeatable SQL files. The functions and
-- views that use them are repeatable files (sql/repeatable/*.sql), re-applied
-- whenever their checksum changes; see docs/REFRESH.md for the design.
--
-- The three views of 003/006 are replaced over the rollup by
-- sql/repeatable/040_views.sql (same names, columns and unique indexes;
-- mv_workflow_metrics_hourly becomes a plain view), which also re-creates
-- tenant_workflow_metrics (it returns mv_workflow_metrics' row type) with
-- the grants it had.

-- Which repeatable files ran, with the checksum of each as applied.
CREATE TABLE @schema@.meshtop_repeatables (
  name       text PRIMARY KEY,
  checksum   text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- The dirty-key logs. Written by the capture triggers in the writer's own
-- transaction, so a key commits (or rolls back) with the change it
-- describes, and a transaction still open while a refresh runs is seen by a
-- later refresh: no watermark can skip it. Append-only, with no unique
-- constraint, no index and no identity column (a sequence call per logged
-- row): a unique key would make a writer wait for every uncommitted writer
-- of the same (workflow, hour) (docs/POSTGRES-FACTS), and the refresh takes
-- the whole (small) table with one DELETE ... RETURNING, which removes
-- exactly the rows it read. workflow_id NULL is a marker meaning "rebuild
-- everything" (TRUNCATE, refresh --full).
CREATE TABLE @schema@.dirty_keys (
  workflow_id uuid,
  hour        timestamptz
);
ALTER TABLE @schema@.dirty_keys SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

-- Runs whose step events were inserted, changed or deleted: their keys are
-- looked up when the log is applied, not in the writer's transaction (an
-- index probe of workflow_runs per event saved on MeshHook's hottest path).
CREATE TABLE @schema@.dirty_runs (
  run_id uuid NOT NULL
);
ALTER TABLE @schema@.dirty_runs SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

-- Per workflow definition and UTC hour of started_at: everything the run
-- metrics need, exact, plus a log-bucket histogram of durations (keys and
-- counts in ascending key order, see dd_key in sql/repeatable/010_sketch.sql).
--   runs, succeeded, failed, canceled   counts by status
--   running                             status running or paused
--   finished                            runs with finished_at (durations)
--   dur_sum_ms, dur_min_ms, dur_max_ms  over finished runs, ms (numeric sum: exact)
--   open_runs, open_started_epoch       runs without finished_at and status
--                                       running/paused, and the sum of their
--                                       started_at epochs: their run-seconds
--                                       at clock c are open_runs*c - sum
--   last_failure_at                     max(coalesce(finished_at, started_at)) of failed runs
--   p50_ms, p95_ms                      exact percentile_cont of that hour (hourly view)
CREATE TABLE @schema@.rollup_runs_hour (
  workflow_id        uuid NOT NULL,
  bucket             timestamptz NOT NULL,
  runs               bigint NOT NULL,
  succeeded          bigint NOT NULL,
  failed             bigint NOT NULL,
  canceled           bigint NOT NULL,
  running            bigint NOT NULL,
  finished           bigint NOT NULL,
  dur_sum_ms         numeric NOT NULL,
  dur_min_ms         float8,
  dur_max_ms         float8,
  open_runs          bigint NOT NULL,
  open_started_epoch numeric NOT NULL,
  last_failure_at    timestamptz,
  p50_ms             float8,
  p95_ms             float8,
  hist_k             int[] NOT NULL,
  hist_c             int[] NOT NULL,
  PRIMARY KEY (workflow_id, bucket)
);
CREATE INDEX rollup_runs_hour_bucket_idx ON @schema@.rollup_runs_hour (bucket);

-- The same per UTC day, merged from the hours (p50_ms/p95_ms unused): the
-- windows read whole days from here, whole hours at their edges from the
-- hourly table, and the partial hours at both ends from the runs.
CREATE TABLE @schema@.rollup_runs_day (LIKE @schema@.rollup_runs_hour INCLUDING ALL);

-- Per workflow definition, node id and UTC hour of the run's started_at:
-- step executions (see mv_step_metrics), failures, latency min/max and a
-- histogram of latencies (ms).
CREATE TABLE @schema@.rollup_steps_hour (
  workflow_id     uuid NOT NULL,
  node_id         text NOT NULL,
  bucket          timestamptz NOT NULL,
  node_type       text,
  executions      bigint NOT NULL,
  failures        bigint NOT NULL,
  lat_min_ms      float8,
  lat_max_ms      float8,
  last_failure_at timestamptz,
  hist_k          int[] NOT NULL,
  hist_c          int[] NOT NULL,
  PRIMARY KEY (workflow_id, bucket, node_id)
);
CREATE INDEX rollup_steps_hour_bucket_idx ON @schema@.rollup_steps_hour (bucket);
CREATE TABLE @schema@.rollup_steps_day (LIKE @schema@.rollup_steps_hour INCLUDING ALL);

-- One row: whether the rollup is built, for which pinned clock ('' = now()),
-- and the workflow_events partitions it was built over (a change there that
-- no trigger sees — a partition dropped, detached, attached with rows or
-- truncated — forces a rebuild when it touches the window).
CREATE TABLE @schema@.rollup_state (
  one         boolean PRIMARY KEY DEFAULT true CHECK (one),
  built       boolean NOT NULL DEFAULT false,
  built_clock text,
  built_at    timestamptz,
  partitions  jsonb
);
INSERT INTO @schema@.rollup_state DEFAULT VALUES;

-- The window cells: per workflow definition and window ('1h', '24h', '7d',
-- '30d'), the window's run metrics at clock rollup_state.cells_clock, final
-- except for what depends on the clock (resource_consumption) and the
-- definition's own columns, which the view adds. A refresh recomputes only
-- the cells whose window contents changed since the previous refresh (a
-- dirty key inside the window, or runs that entered or left it as the clock
-- moved): mv_workflow_metrics and mv_step_metrics are materialized views over
-- these tables, so their REFRESH ... CONCURRENTLY reads a few thousand rows
-- whatever the window's volume (sql/repeatable/035_cells.sql). No row: no
-- runs in that window.
CREATE TABLE @schema@.window_runs (
  workflow_id        uuid NOT NULL,
  "window"           text NOT NULL,
  runs               bigint NOT NULL,
  succeeded          bigint NOT NULL,
  failed             bigint NOT NULL,
  canceled           bigint NOT NULL,
  running            bigint NOT NULL,
  finished           bigint NOT NULL,
  dur_sum_ms         numeric NOT NULL,
  dur_min_ms         float8,
  dur_max_ms         float8,
  open_runs          bigint NOT NULL,
  open_started_epoch numeric NOT NULL,
  last_failure_at    timestamptz,
  p50_ms             float8,
  p95_ms             float8,
  p99_ms             float8,
  PRIMARY KEY (workflow_id, "window")
);

-- Per workflow definition, node id and window: step executions (only cells
-- with at least one).
CREATE TABLE @schema@.window_steps (
  workflow_id     uuid NOT NULL,
  node_id         text NOT NULL,
  "window"        text NOT NULL,
  node_type       text,
  executions      bigint NOT NULL,
  failures        bigint NOT NULL,
  p50_ms          float8,
  p95_ms          float8,
  last_failure_at timestamptz,
  PRIMARY KEY (workflow_id, "window", node_id)
);

-- The clock the window cells were computed at (NULL: none yet, every cell
-- is computed by the next refresh).
ALTER TABLE @schema@.rollup_state ADD COLUMN cells_clock timestamptz;

-- How each refresh used the rollup: 'incremental' or 'full' (rebuilt from
-- the raw tables), and how many dirty-key log rows it consumed.
ALTER TABLE @schema@.refresh_log ADD COLUMN mode text, ADD COLUMN dirty_keys bigint;

