-- store_running_now.sql: live count of running runs per workflow, from the
-- base table through the definer function (it bypasses MeshHook's RLS as the
-- views' owner and uses the status index). Not from a view: "running now"
-- must not wait for a refresh.
select workflow_id::text, running from @schema@.running_now()
