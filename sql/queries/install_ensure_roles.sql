-- Run by the installer as the first statement of every migration transaction
-- that grants to meshtop's roles, so the roles exist in the same transaction
-- that records dependencies on them.
--
-- Roles are cluster-wide, and several MeshHook databases may share a
-- cluster: `meshtop uninstall` in another database drops the roles as soon
-- as no database depends on them — possibly between the migration that
-- created them (001) and the one that grants to them (005), which are
-- separate transactions. Creating any missing role here, in the granting
-- transaction, closes most of that gap; what is left (a drop that commits
-- between this block and the GRANT) makes the GRANT fail with
-- undefined_object, and the installer rolls back and runs the step again.
-- Once the GRANT has run, PostgreSQL holds a lock on the role until COMMIT
-- and the recorded dependency then keeps DROP ROLE away for good.
--
-- Two installs creating the same role at once: the loser waits for the
-- winner's commit and gets unique_violation/duplicate_object, which means the
-- role exists.
DO $meshtop$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['meshtop_reader', 'meshtop_refresher', 'meshtop_tenant'] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
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
$meshtop$
