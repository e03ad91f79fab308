-- store_refresh_outcomes.sql: refresh attempts with an id above $1, oldest
-- first, at most $2 of them, with their derived state (running, ok, failed,
-- skipped, or interrupted for a 'running' row whose backend is gone). The
-- exporter counts finished attempts from these, remembering the ids it has
-- counted; the id index makes this a short range scan.
select id, view_name, state
from @schema@.refresh_log_v
where id > $1
order by id
limit $2
