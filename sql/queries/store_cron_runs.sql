-- store_cron_runs.sql: the last 10 runs of pg_cron job $1, newest first.
select start_time, end_time, coalesce(status, ''), coalesce(return_message, '')
from cron.job_run_details
where jobid = $1
order by runid desc
limit 10
