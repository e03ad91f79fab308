-- store_running.sql: refreshes in progress and what they wait for.
-- waiting: the backend waits on a heavyweight lock. pg_stat_activity hides
-- other roles' wait events and queries from roles without pg_read_all_stats,
-- so pg_locks (visible to everyone) decides as well. Blockers come from
-- pg_blocking_pids(); their query reads '<insufficient privilege>' when it is
-- hidden from us, and their age (transaction age, else query age) is null.
select l.id, l.view_name, coalesce(l.pid, 0), l.started_at,
       coalesce(a.wait_event_type = 'Lock', false)
         or exists (select from pg_catalog.pg_locks k where k.pid = l.pid and not k.granted),
       coalesce((
         select json_agg(json_build_object(
                  'pid', b.pid,
                  'query', left(coalesce(ba.query, '<insufficient privilege>'), 200),
                  'age_s', extract(epoch from now() - coalesce(ba.xact_start, ba.query_start))::float8)
                  order by b.pid)
         from unnest(pg_catalog.pg_blocking_pids(l.pid)) as b(pid)
         left join pg_catalog.pg_stat_activity ba on ba.pid = b.pid), '[]'::json)::text
from @schema@.refresh_log_v l
left join pg_catalog.pg_stat_activity a on a.pid = l.pid
where l.state = 'running'
order by l.id
