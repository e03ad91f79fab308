-- meshtop:no-transaction
-- 002_started_at_index: the one object meshtop adds outside its schema.
--
-- MeshHook's workflow_runs has no index on started_at alone, so every windowed
-- aggregate would scan the whole table. With this index a refresh reads only
-- the last 30 days of runs: its cost grows with the run rate, not with the
-- total history. CONCURRENTLY keeps MeshHook's writers running during the
-- build (it cannot run inside a transaction, hence the marker on line 1). If
-- a build is interrupted it leaves an INVALID index behind; the installer
-- finds it (pg_index.indisvalid = false), drops it concurrently and rebuilds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS meshtop_workflow_runs_started_at_idx
  ON public.workflow_runs (started_at)
