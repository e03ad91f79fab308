-- 011_cells_per_view: the run cells and the step cells are computed by the
-- refresh of the view that reads them, each at its own clock.
--
-- Why: every refresh applied the dirty-key log and then recomputed every
-- changed cell of both kinds, whichever view it refreshed. `meshtop refresh`
-- (all three views) applies three times, a moment apart; with writes going
-- on, runs enter every window in between, so the three applies recomputed
-- nearly every cell three times — the step cells' raw edge hours (their step
-- events paired per run) most of all, though only mv_step_metrics reads
-- them and the hourly view reads no cell at all. Now mv_workflow_metrics'
-- refresh recomputes the run cells, mv_step_metrics' the step cells, the
-- hourly view's neither (sql/repeatable/030_rollup.sql, rollup_apply).
--
-- runs_cells_clock, steps_cells_clock: the clock each kind of cell was
-- computed at (NULL: every cell of that kind is computed by the next
-- refresh that computes that kind). rollup_state.cells_clock stays the
-- clock of the last apply, to which the rollup's hours are built.
ALTER TABLE @schema@.rollup_state ADD COLUMN runs_cells_clock timestamptz,
                                  ADD COLUMN steps_cells_clock timestamptz;
UPDATE @schema@.rollup_state SET runs_cells_clock = cells_clock, steps_cells_clock = cells_clock;

-- The dirty keys an apply consumed for a kind of cell it did not compute:
-- the next apply that computes that kind adds them to its own when it finds
-- the cells that changed since that kind's clock (035_cells.sql,
-- cells_changed). At most one row per kind, workflow and hour.
CREATE TABLE @schema@.cells_pending (
  kind        text NOT NULL CHECK (kind IN ('runs', 'steps')),
  workflow_id uuid NOT NULL,
  hour        timestamptz NOT NULL,
  PRIMARY KEY (kind, workflow_id, hour)
);
