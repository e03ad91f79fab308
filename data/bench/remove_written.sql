-- Removes what one pgbench run of the write-impact group wrote: every run and
-- event created at or after $1 (the moment just before that pgbench run
-- started; MeshHook's created_at defaults to now() and the pgbench script
-- never sets it). Each pgbench run adds tens of thousands of runs to the
-- views' 30-day window; without this, every later run would refresh a bigger
-- window than the one before, and the pairs would no longer compare like with
-- like. The events go first so that the cascade from workflow_runs finds
-- nothing left to delete.
with removed_events as (
  delete from public.workflow_events where created_at >= $1
)
delete from public.workflow_runs where created_at >= $1
