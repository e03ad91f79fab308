-- store_refresh_full.sql: make the next refresh rebuild the rollup from the
-- raw tables (logs the marker key (NULL, NULL), as a TRUNCATE does).
select @schema@.refresh_request_full()
