-- store_server.sql: facts about the server a Store reads from (primary or
-- hot standby). Run by store.Server and as part of every Overview batch.
--
-- replication_lag_s is only set on a standby:
--   * null  when nothing has been replayed yet (pg_last_xact_replay_timestamp
--           is null right after the standby started);
--   * 0     when everything received has been replayed: an idle primary sends
--           no new transactions, so now() − replay time would grow forever
--           without the standby being behind;
--   * else  now() − commit time of the last replayed transaction.
select current_setting('server_version')          as version,
       current_setting('server_version_num')::int as version_num,
       pg_is_in_recovery()                        as in_recovery,
       (case
          when not pg_is_in_recovery() then null
          when pg_last_xact_replay_timestamp() is null then null
          when pg_last_wal_receive_lsn() is not null
           and pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
          else greatest(0, extract(epoch from now() - pg_last_xact_replay_timestamp()))
        end)::float8                              as replication_lag_s
