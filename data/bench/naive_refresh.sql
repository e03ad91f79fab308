-- Refresh of the naive all-time view (plain: it has no previous contents to
-- diff against that would make CONCURRENTLY cheaper).
refresh materialized view meshtop_bench.naive_workflow_metrics
