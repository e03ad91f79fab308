-- 010_window_days: the whole-day part of each window cell, cached.
--
-- Why: a cell of the 7d or 30d window merged, on every recompute, the
-- histograms of every whole UTC day in its window — 30 day buckets per
-- cell, each with as many histogram keys as its durations spread over. The
-- denser the traffic, the more keys per day, so a refresh after one minute of
-- traffic cost more on a busier database although only the edge hours had
-- changed (docs/BENCHMARKS-incremental.md: 1.9-2.2x on 10x the volume). The
-- whole days of a window change only when the window's day range moves (once
-- a day) or a change lands in one of those days. These tables keep, per
-- cell, the merge of its whole days for the day range [d0, d1) it was made
-- for; cells_recompute (sql/repeatable/035_cells.sql) rebuilds a cell's
-- entry when its range moved, rollup_apply (030_rollup.sql) deletes the
-- entries a changed day falls in, and a rebuild deletes them all.

-- Per workflow definition and window: the runs of the whole days of the
-- window (one row per cached cell, zero counts when the days hold no runs;
-- columns as in rollup_runs_day).
CREATE TABLE @schema@.window_days_runs (
  workflow_id        uuid NOT NULL,
  "window"           text NOT NULL,
  d0                 timestamptz NOT NULL,
  d1                 timestamptz NOT NULL,
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
  hist_k             int[] NOT NULL,
  hist_c             int[] NOT NULL,
  PRIMARY KEY (workflow_id, "window")
);

-- Per workflow definition, window and node id: the step executions of the
-- window's whole days (a row per node with executions there; valid while
-- the cell's window_days_runs row is).
CREATE TABLE @schema@.window_days_steps (
  workflow_id     uuid NOT NULL,
  "window"        text NOT NULL,
  node_id         text NOT NULL,
  node_type       text,
  executions      bigint NOT NULL,
  failures        bigint NOT NULL,
  lat_min_ms      float8,
  lat_max_ms      float8,
  last_failure_at timestamptz,
  hist_k          int[] NOT NULL,
  hist_c          int[] NOT NULL,
  PRIMARY KEY (workflow_id, "window", node_id)
);

-- The number of rows in rollup_runs_hour, kept by statement triggers on it
-- (030_rollup.sql): the hourly view's row count, which every refresh logs,
-- without counting the ~one row per workflow and hour of 30 days the view
-- holds (NULL: not known yet, counted).
ALTER TABLE @schema@.rollup_state ADD COLUMN hour_rows bigint;
