-- store_verify.sql: recompute the rollup of the last $1 hours from the raw
-- tables and return every field of every bucket that differs from the stored
-- rollup (buckets still waiting in the dirty-key log excepted). Run inside a
-- REPEATABLE READ transaction: the log and the raw tables in one snapshot.
select kind, workflow_id::text, coalesce(node_id, ''), bucket, field,
       coalesce(stored, 'null'), coalesce(recomputed, 'null')
from @schema@.verify($1)
