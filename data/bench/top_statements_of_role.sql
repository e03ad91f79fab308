-- The statements one role spent the most database time on since the last
-- pg_stat_statements_reset(), for the footprint notes: where a dashboard's
-- per-poll database time goes.
select s.calls::bigint,
       s.total_exec_time::float8 as total_ms,
       (s.total_exec_time / greatest(s.calls, 1))::float8 as mean_ms,
       left(regexp_replace(s.query, '\s+', ' ', 'g'), 90) as query
from pg_stat_statements s
join pg_roles r on r.oid = s.userid
where r.rolname = $1
order by s.total_exec_time desc
limit $2
