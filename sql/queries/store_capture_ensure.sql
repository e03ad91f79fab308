-- store_capture_ensure.sql: after a refresh committed, capture as
-- capture_state says (capture_ensure() in sql/repeatable/025_wal.sql).
select coalesce(@schema@.capture_ensure(), '')
