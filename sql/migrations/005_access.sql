-- 005_access: functions for other roles, and who may use what.
--
-- Security model:
--   * Materialized views have no row-level security and aggregate across all
--     MeshHook tenants, so nothing in this schema is reachable by PUBLIC or by
--     Supabase's API roles anon and authenticated (revoked by name: Supabase's
--     default privileges grant to them directly, so revoking from PUBLIC alone
--     would not be enough). The schema is not in PostgREST's exposed schemas.
--   * meshtop_reader: USAGE on the schema, SELECT on the views, the log and
--     the status views, EXECUTE on running_now(). Not on config.
--   * meshtop_refresher: meshtop_reader plus EXECUTE on refresh_begin,
--     refresh_run, refresh_cancel and the refresh procedure.
--   * meshtop_tenant: EXECUTE on tenant_workflow_metrics() only, which returns
--     the rows of the caller's own projects (public.user_project_ids()).
--   * Every SECURITY DEFINER function pins search_path to pg_catalog, pg_temp
--     and qualifies every name, so objects planted in a caller's search_path
--     are never used.
--   * Nothing here reads public.secrets or event payloads beyond node id/type.

-- Runs open right now per workflow definition (status 'running'), counted
-- from the base table for the dashboard's live column. SECURITY DEFINER so a
-- reader sees all tenants' counts even though RLS guards workflow_runs; it
-- uses MeshHook's status index.
CREATE FUNCTION @schema@.running_now() RETURNS TABLE (workflow_id uuid, running bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT r.workflow_id, count(*)::bigint
  FROM public.workflow_runs r
  WHERE r.status = 'running'
  GROUP BY r.workflow_id
$meshtop$;

-- For API callers: the workflow metrics of one window, only for the projects
-- the caller owns (public.user_project_ids() reads the JWT subject).
CREATE FUNCTION @schema@.tenant_workflow_metrics(p_window text) RETURNS SETOF @schema@.mv_workflow_metrics
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT m.* FROM @schema@.mv_workflow_metrics m
  WHERE m."window" = p_window
    AND m.project_id IN (SELECT public.user_project_ids())
$meshtop$;

-- Revoke everything from PUBLIC and, where they exist, Supabase's API roles.
DO $meshtop$
DECLARE
  s text := pg_catalog.quote_ident(@schema@.schema_name());
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['public', 'anon', 'authenticated'] LOOP
    IF r = 'public' OR EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      IF r <> 'public' THEN
        r := pg_catalog.quote_ident(r);
      END IF;
      EXECUTE pg_catalog.format('REVOKE ALL ON SCHEMA %s FROM %s', s, r);
      EXECUTE pg_catalog.format('REVOKE ALL ON ALL TABLES IN SCHEMA %s FROM %s', s, r);
      EXECUTE pg_catalog.format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %s FROM %s', s, r);
      EXECUTE pg_catalog.format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %s FROM %s', s, r);
      EXECUTE pg_catalog.format('REVOKE ALL ON ALL PROCEDURES IN SCHEMA %s FROM %s', s, r);
    END IF;
  END LOOP;
END
$meshtop$;

GRANT USAGE ON SCHEMA @schema@ TO meshtop_reader, meshtop_tenant;
GRANT SELECT ON @schema@.mv_workflow_metrics, @schema@.mv_workflow_metrics_hourly,
  @schema@.mv_step_metrics, @schema@.refresh_log, @schema@.refresh_log_v,
  @schema@.refresh_status, @schema@.meshtop_migrations TO meshtop_reader;
GRANT EXECUTE ON FUNCTION @schema@.running_now(), @schema@.clock(), @schema@.schema_name(),
  @schema@.view_names(), @schema@.guard_key(text), @schema@.guard_held(text, int) TO meshtop_reader;
GRANT EXECUTE ON FUNCTION @schema@.refresh_begin(text, boolean), @schema@.refresh_run(bigint),
  @schema@.refresh_cancel(text) TO meshtop_refresher;
GRANT EXECUTE ON PROCEDURE @schema@.refresh(text, boolean) TO meshtop_refresher;
GRANT EXECUTE ON FUNCTION @schema@.tenant_workflow_metrics(text) TO meshtop_tenant;
