-- Database time spent by one role's statements since the last
-- pg_stat_statements_reset(): the footprint benchmark connects meshtop and
-- pg_activity as different roles, because pg_stat_statements does not record
-- application_name. polls = calls of the most frequent statement (context
-- only: the benchmark counts polls from the window and the interval).
select coalesce(sum(s.total_exec_time), 0)::float8 as exec_ms,
       coalesce(sum(s.calls), 0)::bigint as calls,
       coalesce(max(s.calls), 0)::bigint as polls,
       count(*)::bigint as statements
from pg_stat_statements s
join pg_roles r on r.oid = s.userid
where r.rolname = $1
