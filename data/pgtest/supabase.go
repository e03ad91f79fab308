package pgtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// SupabasePassword is the password of the roles SupabaseOwner and
// LoginRole create.
const SupabasePassword = "S3cr3t-supa-pw-7"

// SupabaseOwner makes db look to meshtop like a Supabase project's
// database and returns the DSN of its owner role, as Supabase's `postgres`
// is: not a superuser, with CREATEROLE, CREATEDB, REPLICATION and BYPASSRLS;
// owner of MeshHook's tables (and their partitions, sequences and
// functions) in public; CREATE on the database. Where pg_cron is installed
// in db (CREATE EXTENSION pg_cron first, in NewCronDatabase), the owner
// gets Supabase's grants on it: USAGE on schema cron and everything on its
// tables, sequences and functions, with grant option. The role is named
// after the database (roles are cluster-wide), so parallel tests do not
// share one.
func (db *DB) SupabaseOwner(tb testing.TB) (role, dsn string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	role = "supa_" + db.Name
	r := pgx.Identifier{role}.Sanitize()
	stmts := []string{
		fmt.Sprintf(`DO $$ BEGIN
		  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %s) THEN
		    CREATE ROLE %s LOGIN NOSUPERUSER CREATEROLE CREATEDB REPLICATION BYPASSRLS PASSWORD %s;
		  END IF; END $$`, quoteLiteral(role), r, quoteLiteral(SupabasePassword)),
		fmt.Sprintf("GRANT CREATE, CONNECT, TEMPORARY ON DATABASE %s TO %s", pgx.Identifier{db.Name}.Sanitize(), r),
		fmt.Sprintf("GRANT USAGE, CREATE ON SCHEMA public TO %s", r),
		fmt.Sprintf(`DO $$ DECLARE o record; BEGIN
		  FOR o IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
		           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
		             AND NOT (c.relkind = 'S' AND EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
		  LOOP
		    EXECUTE format('ALTER %%s %%s OWNER TO %s',
		      CASE o.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
		                     WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, o.name);
		  END LOOP;
		  FOR o IN SELECT p.oid::regprocedure AS name FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace LOOP
		    EXECUTE format('ALTER ROUTINE %%s OWNER TO %s', o.name);
		  END LOOP;
		END $$`, r, r),
		fmt.Sprintf(`DO $$ BEGIN
		  IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
		    GRANT USAGE ON SCHEMA cron TO %[1]s WITH GRANT OPTION;
		    GRANT ALL ON ALL TABLES IN SCHEMA cron TO %[1]s WITH GRANT OPTION;
		    GRANT ALL ON ALL SEQUENCES IN SCHEMA cron TO %[1]s WITH GRANT OPTION;
		    GRANT ALL ON ALL FUNCTIONS IN SCHEMA cron TO %[1]s WITH GRANT OPTION;
		  END IF; END $$`, r),
	}
	for _, s := range stmts {
		if _, err := db.Pool.Exec(ctx, s); err != nil {
			tb.Fatalf("pgtest: making %s Supabase-shaped: %v", db.Name, err)
		}
	}
	return role, db.Srv.UserDSN(db.Name, role, SupabasePassword)
}

// LoginRole creates (once per cluster) a login role with SupabasePassword,
// member of the given roles and nothing else, and returns its DSN for db.
func (db *DB) LoginRole(tb testing.TB, name string, memberOf ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := pgx.Identifier{name}.Sanitize()
	if _, err := db.Pool.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN
	  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %s) THEN
	    CREATE ROLE %s LOGIN PASSWORD %s;
	  END IF; END $$`, quoteLiteral(name), r, quoteLiteral(SupabasePassword))); err != nil {
		tb.Fatalf("pgtest: creating role %s: %v", name, err)
	}
	for _, m := range memberOf {
		if _, err := db.Pool.Exec(ctx, fmt.Sprintf("GRANT %s TO %s", pgx.Identifier{m}.Sanitize(), r)); err != nil {
			tb.Fatalf("pgtest: granting %s to %s: %v", m, name, err)
		}
	}
	return db.Srv.UserDSN(db.Name, name, SupabasePassword)
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings on).
func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
