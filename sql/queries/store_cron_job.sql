-- store_cron_job.sql: meshtop's pg_cron job ($1: job name) and the server's
-- clock (next-run times are computed against it, not the client's).
select jobid, schedule, command, active, now()
from cron.job
where jobname = $1
