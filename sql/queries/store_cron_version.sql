-- store_cron_version.sql: the pg_cron version installed in this database, no
-- row when it is not installed.
select extversion from pg_catalog.pg_extension where extname = 'pg_cron'
