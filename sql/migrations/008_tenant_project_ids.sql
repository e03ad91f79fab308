-- 008_tenant_project_ids: tenant_workflow_metrics works with MeshHook's own
-- public.user_project_ids().
--
-- Why: MeshHook defines
--   create or replace function user_project_ids() returns setof uuid
--   language sql stable security definer
--   as $$ select id from projects where owner = auth.uid() $$
-- with an unqualified `projects` and no SET search_path, so the table is
-- looked up in whatever search_path is in force when the function starts.
-- In 005, tenant_workflow_metrics called it under its own pinned path
-- (pg_catalog, pg_temp) and every call failed with
-- `relation "projects" does not exist`.
--
-- The fix gives user_project_ids(), and nothing else, a path with `public`
-- on it: tenant_project_ids() below pins
--   search_path = pg_catalog, public, pg_temp
-- and only calls public.user_project_ids() (a function with a SET clause is
-- never inlined, so its path is in force while user_project_ids' body is
-- parsed and run). tenant_workflow_metrics keeps pg_catalog, pg_temp.
-- Why this order, and who can change what the body resolves to:
--   * pg_catalog first: an unqualified function or operator of the body
--     (`owner = auth.uid()` is uuid = uuid) finds the built-in with exactly
--     the argument types before anything in public; a same-signature
--     operator or function planted in public is never chosen. Relations
--     named `projects` cannot be created in pg_catalog by any ordinary role.
--   * public second: `projects` resolves to public.projects, MeshHook's
--     table. A second relation of that name cannot exist in public, and only
--     its owner may drop or replace it.
--   * pg_temp last, explicitly: otherwise the caller's temporary schema is
--     searched first for relations, and a `CREATE TEMP TABLE projects` by
--     the caller would decide whose projects it owns. Functions and
--     operators are never looked up in pg_temp.
--   * The caller's own search_path plays no part: a schema the caller
--     controls (`evil.projects`, `evil.user_project_ids`, an `=` operator)
--     is not on the path. auth.uid() is qualified in MeshHook's body.
--   * Residual risk: a role that may CREATE in public could add an overload
--     that out-matches an unqualified call MeshHook might add to the body
--     in the future; the same role could already do that to every API
--     request, whose search_path starts with public. Installer.Warnings
--     names such roles; docs/SECURITY.md has the details.
-- tenant_project_ids is SECURITY INVOKER: called from the definer function
-- it runs as the owner, and nobody else may execute it.

CREATE FUNCTION @schema@.tenant_project_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $meshtop$
  SELECT public.user_project_ids()
$meshtop$;

-- For API callers: the workflow metrics of one window, only for the projects
-- the caller owns (public.user_project_ids() reads the JWT subject).
-- CREATE OR REPLACE keeps the grants made on it (to meshtop_tenant, and any
-- the operator made to authenticated).
CREATE OR REPLACE FUNCTION @schema@.tenant_workflow_metrics(p_window text) RETURNS SETOF @schema@.mv_workflow_metrics
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT m.* FROM @schema@.mv_workflow_metrics m
  WHERE m."window" = p_window
    AND m.project_id IN (SELECT @schema@.tenant_project_ids())
$meshtop$;

-- Only the owner (through tenant_workflow_metrics) executes the helper.
DO $meshtop$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['public', 'anon', 'authenticated'] LOOP
    IF r = 'public' OR EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      IF r <> 'public' THEN
        r := pg_catalog.quote_ident(r);
      END IF;
      EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s.tenant_project_ids() FROM %s',
        pg_catalog.quote_ident(@schema@.schema_name()), r);
    END IF;
  END LOOP;
END
$meshtop$;
