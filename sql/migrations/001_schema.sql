-- 001_schema: meshtop's own schema, its bookkeeping tables, the metrics clock
-- and the three NOLOGIN roles.
--
-- The schema name is written as @schema@ everywhere; the installer replaces it
-- with a quoted identifier (pgx.Identifier{name}.Sanitize()), never with a
-- string literal, so a hostile schema name cannot inject SQL.

CREATE SCHEMA @schema@;

-- Which migrations ran, with a checksum of each file as it was applied.
CREATE TABLE @schema@.meshtop_migrations (
  version    int PRIMARY KEY,
  name       text NOT NULL,
  checksum   text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- Settings, owner-only (no role is granted anything on it):
--   lock_timeout   how long a refresh waits for its lock on a view before it
--                  gives up (set_config(..., true) inside refresh_run), so a
--                  refresh queued behind a long reader never makes the readers
--                  behind it queue too.
--   clock          empty = now(); a fixed timestamptz pins the metrics clock
--                  (every window is anchored at @schema@.clock()) so tests and
--                  screenshots are reproducible.
--   log_retention  refresh_log rows older than this are deleted by
--                  refresh_begin.
--   refresh_work_mem  work_mem of a refresh (set_config(..., true) inside
--                  refresh_run): the views sort a month of runs and step
--                  events, and in-memory sorts are several times faster than
--                  spilling to disk. Only the refreshing backend uses it.
--   max_refresh_duration  a refresh still holding its guard after this long
--                  is cancelled by the next refresh_begin of that view. It
--                  bounds refreshes that no statement_timeout can bound:
--                  pg_cron's `CALL refresh()` cannot be preceded by SET in
--                  the same command (the procedure's COMMIT fails there).
CREATE TABLE @schema@.config (
  key   text PRIMARY KEY,
  value text NOT NULL
);
INSERT INTO @schema@.config (key, value) VALUES
  ('lock_timeout', '5s'),
  ('clock', ''),
  ('log_retention', '30 days'),
  ('refresh_work_mem', '256MB'),
  ('max_refresh_duration', '30 minutes');

-- The metrics clock. SECURITY DEFINER because config is owner-only while
-- readers call clock() through refresh_status. The value is parsed as an
-- ISO 8601 timestamp with offset (SetClock writes RFC 3339), so DateStyle
-- does not matter.
CREATE FUNCTION @schema@.clock() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $meshtop$
  SELECT coalesce(
    (SELECT nullif(c.value, '')::timestamptz FROM @schema@.config c WHERE c.key = 'clock'),
    now())
$meshtop$;

-- The schema's own name as text (for advisory-lock keys, NOTIFY payloads and
-- dynamic SQL), obtained without ever writing the name into a string literal:
-- the function's search_path holds only this schema, so current_schema() is
-- its name.
CREATE FUNCTION @schema@.schema_name() RETURNS text
LANGUAGE sql STABLE
SET search_path = @schema@
AS $meshtop$
  SELECT pg_catalog.current_schema()::text
$meshtop$;

-- Roles are cluster-wide. Create the ones that are missing and mark those
-- meshtop created with a comment, so Uninstall drops only roles meshtop
-- created (and only once no database depends on them any more). Two installs
-- racing in different databases may both try to create a role: the loser
-- treats it as already existing.
DO $meshtop$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['meshtop_reader', 'meshtop_refresher', 'meshtop_tenant'] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      BEGIN
        EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', r, 'created by meshtop');
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL; -- created concurrently by another install
      END;
    END IF;
  END LOOP;
  -- The refresher can read everything the reader can.
  IF NOT pg_catalog.pg_has_role('meshtop_refresher', 'meshtop_reader', 'MEMBER') THEN
    GRANT meshtop_reader TO meshtop_refresher;
  END IF;
END
$meshtop$;
