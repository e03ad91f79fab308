-- store_cron_runs.sql: the last 10 runs of meshtop's pg_cron job, newest
-- first (060_schedule.sql).
select start_time, end_time, status, message from @schema@.cron_runs(10)
