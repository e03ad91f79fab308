-- 090_access: privileges on what the repeatable files create, applied last.
-- The model is 005_access's: nothing in the schema for PUBLIC, anon or
-- authenticated (functions are created executable by PUBLIC by default, so
-- the revokes run again after every re-application); meshtop_reader reads,
-- meshtop_refresher also refreshes and verifies.
DO $meshtop$
DECLARE
  s text := pg_catalog.quote_ident(@schema@.schema_name());
  r text;
  f text;
BEGIN
  FOREACH r IN ARRAY ARRAY['public', 'anon', 'authenticated'] LOOP
    IF r = 'public' OR EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      IF r <> 'public' THEN
        r := pg_catalog.quote_ident(r);
      END IF;
      EXECUTE pg_catalog.format('REVOKE ALL ON ALL TABLES IN SCHEMA %s FROM %s', s, r);
      EXECUTE pg_catalog.format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %s FROM %s', s, r);
      -- Every function but the tenant API (tenant_workflow_metrics and the
      -- drill-down's tenant_* of 070_drill), which operators grant to API
      -- roles on purpose (008_tenant_project_ids; 040_views keeps its
      -- grants); each was created without PUBLIC's EXECUTE. Its helper
      -- tenant_project_ids is revoked like the rest.
      FOR f IN
        SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = pg_catalog.to_regnamespace(s)
          AND p.proname NOT IN ('tenant_workflow_metrics', 'tenant_failed_runs', 'tenant_slowest_runs',
                                'tenant_run', 'tenant_run_steps')
      LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s %s FROM %s',
          CASE WHEN (SELECT p.prokind FROM pg_catalog.pg_proc p WHERE p.oid = f::regprocedure) = 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f, r);
      END LOOP;
    END IF;
  END LOOP;
END
$meshtop$;

GRANT SELECT ON @schema@.refresh_log_v, @schema@.meshtop_repeatables TO meshtop_reader;
-- Called by the plain view mv_workflow_metrics_hourly (functions in a view
-- are checked against its reader).
GRANT EXECUTE ON FUNCTION @schema@.rollup_horizon(timestamptz) TO meshtop_reader;
-- meshtop's own pg_cron job and its runs (060_schedule), without USAGE on
-- schema cron.
GRANT EXECUTE ON FUNCTION @schema@.cron_job(), @schema@.cron_runs(int) TO meshtop_reader;
-- The capture log's size, age and state (meshtop check, Store.CaptureLog).
GRANT EXECUTE ON FUNCTION @schema@.capture_status() TO meshtop_reader;
-- WAL capture's state, and its bound enforced by whoever looks (025_wal).
GRANT EXECUTE ON FUNCTION @schema@.capture_wal_status(), @schema@.capture_guard() TO meshtop_reader;
-- After each refresh (CALL refresh(), data/store): capture as capture_state says.
GRANT EXECUTE ON FUNCTION @schema@.capture_ensure(), @schema@.capture_consume() TO meshtop_refresher;
GRANT EXECUTE ON FUNCTION @schema@.verify(int), @schema@.refresh_request_full() TO meshtop_refresher;
