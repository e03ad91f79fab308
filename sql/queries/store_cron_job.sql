-- store_cron_job.sql: meshtop's pg_cron job, read through the definer
-- function of 060_schedule.sql (a reader needs no privilege on schema cron),
-- and the server's clock (next-run times are computed against it, not the
-- client's). No row when the job does not exist or pg_cron is not installed.
select jobid, schedule, active, server_now from @schema@.cron_job()
