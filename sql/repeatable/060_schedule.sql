-- 060_schedule: the pg_cron schedule of meshtop's refresh, readable by
-- meshtop_reader without any privilege on pg_cron's schema.
--
-- pg_cron keeps its jobs in cron.job and their runs in cron.job_run_details,
-- behind USAGE on schema cron and row-level security (a role sees the jobs
-- it scheduled, unless it bypasses RLS). A login granted meshtop_reader
-- alone — the least privilege docs/SECURITY.md recommends — got "permission
-- denied for schema cron" on every poll of the console, and the dashboard
-- never left "loading refresh status…". These SECURITY DEFINER functions
-- read meshtop's own job (named meshtop-refresh-<schema>; no other job: a
-- job's command can hold anything, e.g. a key passed to net.http_post) and
-- its last runs as the schema's owner, the role install ran as (Supabase's
-- postgres has USAGE on cron and BYPASSRLS). What they return — a schedule,
-- run times, statuses and pg_cron's message — is what the refresh log
-- already shows readers.
--
-- pg_cron may be created after meshtop, or never: the reads are dynamic SQL,
-- and the functions return no row when the extension is not installed. When
-- the owner itself is denied (a self-managed server where a superuser
-- created pg_cron and granted nothing), the error (42501) reaches the
-- caller, and the store reports the schedule as unknown with the grant that
-- would show it. An owner without BYPASSRLS sees only jobs it scheduled
-- itself (docs/SECURITY.md).

CREATE OR REPLACE FUNCTION @schema@.cron_job()
RETURNS TABLE (jobid bigint, schedule text, active boolean, server_now timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_cron') THEN
    RETURN;
  END IF;
  RETURN QUERY EXECUTE
    'SELECT j.jobid, j.schedule, j.active, pg_catalog.now() FROM cron.job j WHERE j.jobname = $1'
    USING 'meshtop-refresh-' || @schema@.schema_name();
END
$meshtop$;

-- The last p_limit (at most 50) runs of meshtop's job, newest first.
CREATE OR REPLACE FUNCTION @schema@.cron_runs(p_limit int DEFAULT 10)
RETURNS TABLE (start_time timestamptz, end_time timestamptz, status text, message text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_cron') THEN
    RETURN;
  END IF;
  RETURN QUERY EXECUTE
    'SELECT d.start_time, d.end_time, coalesce(d.status, ''''), coalesce(d.return_message, '''')
     FROM cron.job_run_details d JOIN cron.job j ON j.jobid = d.jobid
     WHERE j.jobname = $1
     ORDER BY d.runid DESC
     LIMIT $2'
    USING 'meshtop-refresh-' || @schema@.schema_name(), least(greatest(p_limit, 0), 50);
END
$meshtop$;
