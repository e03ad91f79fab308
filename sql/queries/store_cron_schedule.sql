-- store_cron_schedule.sql: create or replace (same name → same job) meshtop's
-- job: $1 job name, $2 schedule ('*/5 * * * *' or, with pg_cron ≥ 1.5,
-- '30 seconds'), $3 command.
select cron.schedule($1, $2, $3)
