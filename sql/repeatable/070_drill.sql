-- 070_drill: the drill-down — from a workflow's numbers to the runs behind
-- them (docs/METRICS.md "Drill-down", docs/SECURITY.md "The drill-down").
--
-- These functions read MeshHook's raw tables, so each is bounded and served
-- by an index, and reads only what it may show:
--   * runs through meshtop_workflow_runs_drill_idx (migration 017): one
--     range of (workflow_id, status, started_at) per status, newest first,
--     under a LIMIT; a run by its primary key;
--   * a run's events through MeshHook's (run_id, ts) index of each monthly
--     partition, with ts bounded by the run's start (a minute before it)
--     and end (an hour after it: a step still in flight when the run was
--     canceled may finish later), so the partitions of other months are
--     pruned when the run's row is read; at most 5000 events;
--   * of an event's payload only node.id and node.type, an http_attempted's
--     numeric status, a step_failed's numeric attempt and its error when
--     that is a string (MeshHook's HTTP executor writes `error` as the
--     error's text; an object `error` gives only its `message` string) —
--     never step_succeeded's response, never any other field: payloads may
--     carry response bodies, i.e. personal data;
--   * node ids (200), node types (100) and errors (500 in lists, 16384 in
--     a timeline) are cut here, with the error's whole length returned.
-- The caller bounds the statement (set_config('statement_timeout', …, true)
-- in the same transaction: a SET clause on a function does not bound it).
--
-- Readers (meshtop_reader) execute the drill_* functions, which run as the
-- owner (SECURITY DEFINER), so readers never get SELECT on MeshHook's tables
-- and never see more of a payload than the fields above. Tenants
-- (meshtop_tenant, or authenticated where the operator grants it) execute
-- the tenant_* functions, which answer only for workflows and runs of the
-- caller's own projects (public.user_project_ids(), through
-- tenant_project_ids()).
--
-- The drill_* bodies use positional parameters ($1, …): the plan tests
-- (data/store/drill_plan_test.go) and the benchmark PREPARE each body as it
-- is stored (pg_proc.prosrc) and EXPLAIN it with a generic plan, which is
-- how a SQL function's body is planned at every call.

-- Whether the tenant functions are new (their revokes from the API roles
-- happen once, at creation; later re-applications keep the operator's
-- grants to authenticated, as 008 does for tenant_workflow_metrics).
DO $meshtop$
BEGIN
  PERFORM pg_catalog.set_config('meshtop.drill_tenant_new',
    CASE WHEN pg_catalog.to_regprocedure(pg_catalog.quote_ident(@schema@.schema_name()) || '.tenant_failed_runs(uuid, text, integer)') IS NULL
         THEN 'on' ELSE 'off' END, true);
END
$meshtop$;

-- The steps of one run, grouped as MeshHook writes them: a step is a node's
-- span from its step_started (written once per node by the orchestrator) to
-- its final outcome — step_succeeded, or the step_failed no later attempt
-- follows (the HTTP executor writes http_attempted {node, status} and, for a
-- failed attempt, step_failed {node, attempt, error} per attempt, up to 5,
-- without a new step_started). attempts = the span's step_failed events + 1
-- if it succeeded. outcome: succeeded; failed; retrying (the run is open
-- and the last attempt failed before the 5th); running (open, no outcome
-- yet); unfinished (the run ended without the step's outcome). span counts
-- a node's executions in the run (1 for the first; 0 for events before any
-- step_started of the node). p_open: the run is running or paused.
-- Internal (the owner only); not SECURITY DEFINER and without SET, so the
-- planner inlines it into its callers, where the run's id and times are
-- known when each partition is chosen.
CREATE OR REPLACE FUNCTION @schema@.drill_steps(p_run uuid, p_started timestamptz, p_finished timestamptz,
                                                p_open boolean, p_error_chars int)
RETURNS TABLE (node_id text, span int, node_type text, started_at timestamptz, ended_at timestamptz,
               outcome text, attempts int, http_statuses int[], error_attempts int[], errors text[],
               error_chars int[], events int)
LANGUAGE sql STABLE PARALLEL SAFE
AS $meshtop$
  WITH ev AS (
    SELECT e.id, e.ts, e.type,
           pg_catalog.left(e.payload -> 'node' ->> 'id', 200) AS node_id,
           pg_catalog.left(e.payload -> 'node' ->> 'type', 100) AS node_type,
           CASE WHEN e.type = 'http_attempted' AND pg_catalog.jsonb_typeof(e.payload -> 'status') = 'number' THEN
             CASE WHEN (e.payload -> 'status')::numeric BETWEEN 0 AND 999 THEN (e.payload -> 'status')::numeric::int END
           END AS http_status,
           CASE WHEN e.type = 'step_failed' AND pg_catalog.jsonb_typeof(e.payload -> 'attempt') = 'number' THEN
             CASE WHEN (e.payload -> 'attempt')::numeric BETWEEN 0 AND 1000000 THEN (e.payload -> 'attempt')::numeric::int END
           END AS attempt,
           CASE WHEN e.type = 'step_failed' THEN
             CASE pg_catalog.jsonb_typeof(e.payload -> 'error')
               WHEN 'string' THEN e.payload ->> 'error'
               WHEN 'object' THEN
                 CASE WHEN pg_catalog.jsonb_typeof(e.payload -> 'error' -> 'message') = 'string'
                      THEN e.payload -> 'error' ->> 'message' END
             END
           END AS error
    FROM public.workflow_events e
    WHERE e.run_id = p_run
      AND e.ts >= p_started - interval '1 minute'
      AND e.ts <= coalesce(p_finished + interval '1 hour', 'infinity')
      AND e.type IN ('step_started', 'http_attempted', 'step_succeeded', 'step_failed')
    ORDER BY e.ts, e.id
    LIMIT 5000
  ), sp AS (
    SELECT ev.*,
           (count(*) FILTER (WHERE ev.type = 'step_started')
              OVER (PARTITION BY ev.node_id ORDER BY ev.ts, ev.id))::int AS span
    FROM ev
    WHERE ev.node_id IS NOT NULL
  ), g AS (
    SELECT sp.node_id, sp.span,
           min(sp.ts) FILTER (WHERE sp.type = 'step_started') AS started_at,
           min(sp.ts) AS first_ts,
           (pg_catalog.array_agg(sp.node_type ORDER BY sp.ts, sp.id) FILTER (WHERE sp.node_type IS NOT NULL))[1] AS node_type,
           (pg_catalog.array_agg(sp.type ORDER BY sp.ts DESC, sp.id DESC)
              FILTER (WHERE sp.type IN ('step_succeeded', 'step_failed')))[1] AS last_type,
           max(sp.ts) FILTER (WHERE sp.type IN ('step_succeeded', 'step_failed')) AS ended_at,
           (pg_catalog.array_agg(sp.attempt ORDER BY sp.ts DESC, sp.id DESC) FILTER (WHERE sp.type = 'step_failed'))[1] AS last_attempt,
           count(*) FILTER (WHERE sp.type = 'step_failed') AS failures,
           pg_catalog.array_agg(sp.http_status ORDER BY sp.ts, sp.id)
             FILTER (WHERE sp.type = 'http_attempted' AND sp.http_status IS NOT NULL) AS http_statuses,
           pg_catalog.array_agg(coalesce(sp.attempt, 0) ORDER BY sp.ts, sp.id) FILTER (WHERE sp.type = 'step_failed') AS error_attempts,
           pg_catalog.array_agg(coalesce(pg_catalog.left(sp.error, p_error_chars), '') ORDER BY sp.ts, sp.id)
             FILTER (WHERE sp.type = 'step_failed') AS errors,
           pg_catalog.array_agg(coalesce(pg_catalog.length(sp.error), 0) ORDER BY sp.ts, sp.id)
             FILTER (WHERE sp.type = 'step_failed') AS error_chars,
           count(*)::int AS events
    FROM sp
    GROUP BY sp.node_id, sp.span
  )
  SELECT g.node_id, g.span, g.node_type, coalesce(g.started_at, g.first_ts), g.ended_at,
         CASE WHEN g.last_type = 'step_succeeded' THEN 'succeeded'
              WHEN g.last_type = 'step_failed' AND p_open AND coalesce(g.last_attempt, 0) < 5 THEN 'retrying'
              WHEN g.last_type = 'step_failed' THEN 'failed'
              WHEN p_open THEN 'running'
              ELSE 'unfinished' END,
         (g.failures + CASE WHEN g.last_type = 'step_succeeded' THEN 1 ELSE 0 END)::int,
         coalesce(g.http_statuses, '{}'), coalesce(g.error_attempts, '{}'), coalesce(g.errors, '{}'),
         coalesce(g.error_chars, '{}'), g.events
  FROM g
$meshtop$;

-- The newest failed runs of workflow $1 started in window $2 ('1h', '24h',
-- '7d', '30d', anchored at clock(), as the views are), at most $3 (1–200),
-- newest first, each with its final failure: the node, its attempts, the
-- last HTTP status and the error (500 characters; error_chars is its whole
-- length). One range of meshtop_workflow_runs_drill_idx, then each run's
-- events.
CREATE OR REPLACE FUNCTION @schema@.drill_failed_runs(p_workflow uuid, p_window text, p_limit int)
RETURNS TABLE (run_id uuid, workflow_id uuid, status text, started_at timestamptz, finished_at timestamptz,
               node_id text, node_type text, attempts int, http_status int, error text, error_chars int,
               scanned bigint, capped boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT r.id, r.workflow_id, r.status, r.started_at, r.finished_at,
         s.node_id, s.node_type, s.attempts,
         s.http_statuses[pg_catalog.cardinality(s.http_statuses)],
         s.errors[pg_catalog.cardinality(s.errors)],
         s.error_chars[pg_catalog.cardinality(s.error_chars)],
         count(*) OVER (), false
  FROM (
    SELECT x.id, x.workflow_id, x.status, x.started_at, x.finished_at
    FROM public.workflow_runs x
    WHERE x.workflow_id = $1 AND x.status = 'failed'
      AND x.started_at > (SELECT b.lo FROM @schema@.window_bounds(@schema@.clock()) b WHERE b."window" = $2)
      AND x.started_at <= (SELECT b.hi FROM @schema@.window_bounds(@schema@.clock()) b WHERE b."window" = $2)
    ORDER BY x.started_at DESC
    LIMIT LEAST(GREATEST($3, 1), 200)
  ) r
  LEFT JOIN LATERAL (
    SELECT d.node_id, d.node_type, d.attempts, d.http_statuses, d.errors, d.error_chars
    FROM @schema@.drill_steps(r.id, r.started_at, r.finished_at, false, 500) d
    WHERE d.outcome = 'failed'
    ORDER BY d.ended_at DESC NULLS LAST, d.node_id
    LIMIT 1
  ) s ON true
  ORDER BY r.started_at DESC, r.id DESC
$meshtop$;

-- The slowest finished runs (finished_at − started_at) of workflow $1
-- started in window $2, at most $3 (1–200), slowest first. Considered: the
-- newest 5000 succeeded, 5000 failed and 5000 canceled runs of the window
-- (three ranges of meshtop_workflow_runs_drill_idx, read newest first);
-- scanned is how many were, capped whether a cap was reached (then the
-- answer is the slowest of the newest 15000, not of the whole window).
-- Each run comes with its failing step (failed runs) or else its slowest
-- step: node, attempts, last HTTP status, error.
CREATE OR REPLACE FUNCTION @schema@.drill_slowest_runs(p_workflow uuid, p_window text, p_limit int)
RETURNS TABLE (run_id uuid, workflow_id uuid, status text, started_at timestamptz, finished_at timestamptz,
               node_id text, node_type text, attempts int, http_status int, error text, error_chars int,
               scanned bigint, capped boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  WITH finished AS (
    (SELECT x.id, x.workflow_id, x.status, x.started_at, x.finished_at FROM public.workflow_runs x
     WHERE x.workflow_id = $1 AND x.status = 'succeeded'
       AND x.started_at > (SELECT b.lo FROM @schema@.window_bounds(@schema@.clock()) b WHERE b."window" = $2)
       AND x.started_at <= (SELECT b.hi FROM @schema@.window_bounds(@schema@.clock()) b WHERE b."window" = $2)
     ORDER BY x.started_at DESC LIMIT 5000)
    UNION ALL
    (SELECT x.id, x.workflow_id, x.status, x.started_at, x.finished_at FROM public.workflow_runs x
     WHERE x.workflow_id = $1 AND x.status = 'failed'
       AND x.started_at > (SELECT b.lo FROM @schema@.window_bounds(@schema@.clock()) b WHERE b."window" = $2)
       AND x.started_at <= (SELECT b.hi FROM @schema@.window_bounds(@schema@.clock()) b WHERE b."window" = $2)
     ORDER BY x.started_at DESC LIMIT 5000)
    UNION ALL
    (SELECT x.id, x.workflow_id, x.status, x.started_at, x.finished_at FROM public.workflow_runs x
     WHERE x.workflow_id = $1 AND x.status = 'canceled'
       AND x.started_at > (SELECT b.lo FROM @schema@.window_bounds(@schema@.clock()) b WHERE b."window" = $2)
       AND x.started_at <= (SELECT b.hi FROM @schema@.window_bounds(@schema@.clock()) b WHERE b."window" = $2)
     ORDER BY x.started_at DESC LIMIT 5000)
  ), top AS (
    SELECT f.id, f.workflow_id, f.status, f.started_at, f.finished_at,
           count(*) OVER () AS scanned,
           (count(*) FILTER (WHERE f.status = 'succeeded') OVER () >= 5000
            OR count(*) FILTER (WHERE f.status = 'failed') OVER () >= 5000
            OR count(*) FILTER (WHERE f.status = 'canceled') OVER () >= 5000) AS capped
    FROM finished f
    WHERE f.finished_at IS NOT NULL
    ORDER BY f.finished_at - f.started_at DESC, f.id
    LIMIT LEAST(GREATEST($3, 1), 200)
  )
  SELECT t.id, t.workflow_id, t.status, t.started_at, t.finished_at,
         s.node_id, s.node_type, s.attempts,
         s.http_statuses[pg_catalog.cardinality(s.http_statuses)],
         s.errors[pg_catalog.cardinality(s.errors)],
         s.error_chars[pg_catalog.cardinality(s.error_chars)],
         t.scanned, t.capped
  FROM top t
  LEFT JOIN LATERAL (
    SELECT d.node_id, d.node_type, d.attempts, d.http_statuses, d.errors, d.error_chars
    FROM @schema@.drill_steps(t.id, t.started_at, t.finished_at, false, 500) d
    ORDER BY (t.status = 'failed' AND d.outcome = 'failed') DESC,
             d.ended_at - d.started_at DESC NULLS LAST, d.node_id
    LIMIT 1
  ) s ON true
  ORDER BY t.finished_at - t.started_at DESC, t.id
$meshtop$;

-- One run: its workflow (name, slug, version, project) and its own status,
-- start and finish. By MeshHook's primary key.
CREATE OR REPLACE FUNCTION @schema@.drill_run(p_run uuid)
RETURNS TABLE (run_id uuid, workflow_id uuid, project_id uuid, project_name text, workflow_name text,
               slug text, version int, status text, started_at timestamptz, finished_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT r.id, r.workflow_id, r.project_id, p.name, d.name, d.slug, d.version, r.status, r.started_at, r.finished_at
  FROM public.workflow_runs r
  LEFT JOIN public.workflow_definitions d ON d.id = r.workflow_id
  LEFT JOIN public.projects p ON p.id = r.project_id
  WHERE r.id = $1
$meshtop$;

-- One run's timeline: every step (drill_steps) with its whole errors (up to
-- 16384 characters each), in the order the steps started.
CREATE OR REPLACE FUNCTION @schema@.drill_run_steps(p_run uuid)
RETURNS TABLE (node_id text, span int, node_type text, started_at timestamptz, ended_at timestamptz,
               outcome text, attempts int, http_statuses int[], error_attempts int[], errors text[],
               error_chars int[], events int)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT s.node_id, s.span, s.node_type, s.started_at, s.ended_at, s.outcome, s.attempts,
         s.http_statuses, s.error_attempts, s.errors, s.error_chars, s.events
  FROM public.workflow_runs r
  CROSS JOIN LATERAL @schema@.drill_steps(r.id, r.started_at, r.finished_at,
                                          r.status IN ('running', 'paused'), 16384) s
  WHERE r.id = $1
  ORDER BY s.started_at, s.node_id, s.span
$meshtop$;

-- The tenant API's drill-down: the same answers, for workflows and runs of
-- the caller's own projects only (nothing otherwise, as for a workflow or
-- run that does not exist).
CREATE OR REPLACE FUNCTION @schema@.tenant_failed_runs(p_workflow uuid, p_window text, p_limit int DEFAULT 20)
RETURNS TABLE (run_id uuid, workflow_id uuid, status text, started_at timestamptz, finished_at timestamptz,
               node_id text, node_type text, attempts int, http_status int, error text, error_chars int,
               scanned bigint, capped boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT f.* FROM @schema@.drill_failed_runs(p_workflow, p_window, p_limit) f
  WHERE EXISTS (SELECT FROM public.workflow_definitions d
                WHERE d.id = p_workflow AND d.project_id IN (SELECT @schema@.tenant_project_ids()))
$meshtop$;

CREATE OR REPLACE FUNCTION @schema@.tenant_slowest_runs(p_workflow uuid, p_window text, p_limit int DEFAULT 20)
RETURNS TABLE (run_id uuid, workflow_id uuid, status text, started_at timestamptz, finished_at timestamptz,
               node_id text, node_type text, attempts int, http_status int, error text, error_chars int,
               scanned bigint, capped boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT f.* FROM @schema@.drill_slowest_runs(p_workflow, p_window, p_limit) f
  WHERE EXISTS (SELECT FROM public.workflow_definitions d
                WHERE d.id = p_workflow AND d.project_id IN (SELECT @schema@.tenant_project_ids()))
$meshtop$;

CREATE OR REPLACE FUNCTION @schema@.tenant_run(p_run uuid)
RETURNS TABLE (run_id uuid, workflow_id uuid, project_id uuid, project_name text, workflow_name text,
               slug text, version int, status text, started_at timestamptz, finished_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT f.* FROM @schema@.drill_run(p_run) f
  WHERE f.project_id IN (SELECT @schema@.tenant_project_ids())
$meshtop$;

CREATE OR REPLACE FUNCTION @schema@.tenant_run_steps(p_run uuid)
RETURNS TABLE (node_id text, span int, node_type text, started_at timestamptz, ended_at timestamptz,
               outcome text, attempts int, http_statuses int[], error_attempts int[], errors text[],
               error_chars int[], events int)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT f.* FROM @schema@.drill_run_steps(p_run) f
  WHERE EXISTS (SELECT FROM public.workflow_runs r
                WHERE r.id = p_run AND r.project_id IN (SELECT @schema@.tenant_project_ids()))
$meshtop$;

-- Privileges. A function is created executable by PUBLIC: revoke that at
-- every application (CREATE OR REPLACE keeps the ACL). The API roles never
-- get the readers' functions; they lose the tenant functions once, when
-- these are created (an operator's later grant to authenticated is kept:
-- 090_access leaves tenant_* alone).
DO $meshtop$
DECLARE
  s text := pg_catalog.quote_ident(@schema@.schema_name());
  f text;
  r text;
BEGIN
  FOREACH f IN ARRAY ARRAY['drill_steps(uuid, timestamptz, timestamptz, boolean, integer)',
                           'drill_failed_runs(uuid, text, integer)', 'drill_slowest_runs(uuid, text, integer)',
                           'drill_run(uuid)', 'drill_run_steps(uuid)',
                           'tenant_failed_runs(uuid, text, integer)', 'tenant_slowest_runs(uuid, text, integer)',
                           'tenant_run(uuid)', 'tenant_run_steps(uuid)'] LOOP
    EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s.%s FROM PUBLIC', s, f);
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
      IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r)
         AND (f NOT LIKE 'tenant\_%' OR pg_catalog.current_setting('meshtop.drill_tenant_new', true) = 'on') THEN
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s.%s FROM %I', s, f, r);
      END IF;
    END LOOP;
  END LOOP;
END
$meshtop$;

GRANT EXECUTE ON FUNCTION @schema@.drill_failed_runs(uuid, text, int), @schema@.drill_slowest_runs(uuid, text, int),
  @schema@.drill_run(uuid), @schema@.drill_run_steps(uuid) TO meshtop_reader;
GRANT EXECUTE ON FUNCTION @schema@.tenant_failed_runs(uuid, text, int), @schema@.tenant_slowest_runs(uuid, text, int),
  @schema@.tenant_run(uuid), @schema@.tenant_run_steps(uuid) TO meshtop_tenant;
