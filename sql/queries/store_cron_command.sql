-- store_cron_command.sql: the command meshtop's pg_cron job runs (comment
-- lines are stripped before scheduling). statement_timeout must be set by
-- the command that calls the refresh: a function or procedure cannot bound
-- its own run. @statement_timeout@ is replaced with the Store's
-- RefreshTimeout (e.g. 600000ms).
SET statement_timeout = '@statement_timeout@'; CALL @schema@.refresh()
