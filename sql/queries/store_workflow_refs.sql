-- store_workflow_refs.sql: the workflow definitions a workflow id or slug
-- names ($1), from mv_workflow_metrics (one row per definition and
-- window; every definition has a 30d row, with runs or without), newest
-- version first.
select m.workflow_id::text, m.project_id::text, m.project_name, m.name, m.slug, m.version
from @schema@.mv_workflow_metrics m
where m."window" = '30d' and (m.workflow_id::text = lower($1) or m.slug = $1)
order by m.project_name, m.slug, m.version desc, m.workflow_id
