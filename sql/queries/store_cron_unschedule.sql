-- store_cron_unschedule.sql: remove meshtop's job ($1: job name) if it
-- exists; no row (and no error) when there is none.
select cron.unschedule(jobid) from cron.job where jobname = $1
