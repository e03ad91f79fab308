package install_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/meshtop/meshtop/data/pgtest"
)

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// tryAs runs sql as role (SET ROLE) in a transaction that is rolled back,
// returning the error.
func tryAs(ctx context.Context, c *pgx.Conn, role, sql string) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, sql)
	return err
}

// loginRole creates a LOGIN role with a random name and password, granted
// the given roles, dropped when the test ends.
func loginRole(t *testing.T, ctx context.Context, db *pgtest.DB, grants ...string) (name, password string) {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name = "meshtop_test_" + hex.EncodeToString(b[:4])
	password = hex.EncodeToString(b[4:]) + "Aa1"
	if _, err := db.Pool.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", name, password)); err != nil {
		t.Fatal(err)
	}
	for _, g := range grants {
		if _, err := db.Pool.Exec(ctx, "GRANT "+g+" TO "+name); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = db.Pool.Exec(ctx, "DROP OWNED BY "+name)
		if _, err := db.Pool.Exec(ctx, "DROP ROLE "+name); err != nil {
			t.Logf("dropping role %s: %v", name, err)
		}
	})
	return name, password
}

func TestAccessControl(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAll(t, ctx, db.Pool, "metrics")
	c := connect(t, ctx, db.DSN)

	// Every relation and routine in the schema.
	var rels, procs []string
	rows, err := c.Query(ctx, `SELECT format('SELECT FROM %s LIMIT 1', c.oid::regclass) FROM pg_class c
WHERE c.relnamespace = 'metrics'::regnamespace AND c.relkind IN ('r', 'v', 'm')`)
	if err != nil {
		t.Fatal(err)
	}
	rels, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	rows, err = c.Query(ctx, `SELECT CASE p.prokind WHEN 'p' THEN format('CALL %s(%s)', p.oid::regproc, array_to_string(array_fill('NULL'::text, ARRAY[p.pronargs]), ','))
  ELSE format('SELECT %s(%s)', p.oid::regproc, array_to_string(array_fill('NULL'::text, ARRAY[p.pronargs]), ',')) END
FROM pg_proc p WHERE p.pronamespace = 'metrics'::regnamespace`)
	if err != nil {
		t.Fatal(err)
	}
	procs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) < 8 || len(procs) < 10 {
		t.Fatalf("found %d relations, %d routines", len(rels), len(procs))
	}
	// Supabase's API roles: denied on everything (no USAGE on the schema).
	for _, role := range []string{"anon", "authenticated"} {
		for _, q := range append(append([]string{}, rels...), procs...) {
			if err := tryAs(ctx, c, role, q); sqlState(err) != "42501" {
				t.Errorf("%s: %s -> %v; want permission denied", role, q, err)
			}
		}
	}
	// The reader reads the views, the log and the status, not config, and
	// cannot refresh or read MeshHook's secrets.
	for _, q := range []string{
		`SELECT FROM metrics.mv_workflow_metrics`, `SELECT FROM metrics.mv_workflow_metrics_hourly`,
		`SELECT FROM metrics.mv_step_metrics`, `SELECT FROM metrics.refresh_log_v`, `SELECT FROM metrics.refresh_status`,
		`SELECT FROM metrics.running_now()`,
	} {
		if err := tryAs(ctx, c, "meshtop_reader", q); err != nil {
			t.Errorf("meshtop_reader: %s -> %v", q, err)
		}
	}
	for _, q := range []string{
		`SELECT FROM metrics.config`, `SELECT metrics.refresh_begin('mv_step_metrics')`, `SELECT metrics.refresh_run(1)`,
		`SELECT metrics.refresh_cancel()`, `CALL metrics.refresh()`, `SELECT FROM public.secrets`,
		`REFRESH MATERIALIZED VIEW metrics.mv_step_metrics`, `SELECT metrics.tenant_workflow_metrics('1h')`,
		`UPDATE metrics.refresh_log SET status = 'ok'`,
	} {
		if err := tryAs(ctx, c, "meshtop_reader", q); sqlState(err) != "42501" {
			t.Errorf("meshtop_reader: %s -> %v; want permission denied", q, err)
		}
	}
	// The running_now counts come from the base table despite RLS.
	var running int64
	if _, err := c.Exec(ctx, "SET ROLE meshtop_reader"); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, `SELECT coalesce(sum(running), 0) FROM metrics.running_now()`).Scan(&running); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "RESET ROLE"); err != nil {
		t.Fatal(err)
	}
	var direct int64
	if err := c.QueryRow(ctx, `SELECT count(*) FROM public.workflow_runs WHERE status = 'running'`).Scan(&direct); err != nil {
		t.Fatal(err)
	}
	if running != direct || running == 0 {
		t.Errorf("running_now() as reader = %d; want %d", running, direct)
	}

	// A login role granted meshtop_refresher refreshes (CALL commits), and
	// objects planted in its search_path are not used by the definer
	// functions.
	name, pw := loginRole(t, ctx, db, "meshtop_refresher")
	if _, err := c.Exec(ctx, `CREATE SCHEMA planted;
CREATE TABLE planted.calls (fn text);
GRANT ALL ON SCHEMA planted TO PUBLIC;
GRANT ALL ON planted.calls TO PUBLIC;
CREATE FUNCTION planted.hashtext(text) RETURNS int LANGUAGE sql AS $$ INSERT INTO planted.calls VALUES ('hashtext') RETURNING 1 $$;
CREATE FUNCTION planted.pg_try_advisory_lock(int, int) RETURNS boolean LANGUAGE sql AS $$ INSERT INTO planted.calls VALUES ('pg_try_advisory_lock') RETURNING true $$;
CREATE FUNCTION planted.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS $$ INSERT INTO planted.calls VALUES ('clock_timestamp') RETURNING now() $$;
CREATE FUNCTION planted.format(text, text, text) RETURNS text LANGUAGE sql AS $$ INSERT INTO planted.calls VALUES ('format') RETURNING 'SELECT 1' $$;
CREATE FUNCTION planted.set_config(text, text, boolean) RETURNS text LANGUAGE sql AS $$ INSERT INTO planted.calls VALUES ('set_config') RETURNING '' $$;
CREATE TABLE planted.config (key text, value text);
GRANT ALL ON planted.config TO PUBLIC;
INSERT INTO planted.config VALUES ('clock', '2000-01-01T00:00:00Z'), ('lock_timeout', '1ms');`); err != nil {
		t.Fatal(err)
	}
	rc := connect(t, ctx, db.Srv.UserDSN(db.Name, name, pw))
	if _, err := rc.Exec(ctx, `SET search_path = planted, pg_catalog, public`); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Exec(ctx, `CALL metrics.refresh()`); err != nil {
		t.Fatalf("refresher CALL refresh(): %v", err)
	}
	var id int64
	var st string
	if err := rc.QueryRow(ctx, `SELECT metrics.refresh_begin('mv_workflow_metrics')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if err := rc.QueryRow(ctx, `SELECT status FROM metrics.refresh_run($1)`, id).Scan(&st); err != nil || st != "ok" {
		t.Fatalf("refresher refresh_run: %s %v", st, err)
	}
	var calls int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM planted.calls`).Scan(&calls); err != nil || calls != 0 {
		t.Errorf("planted functions were called %d times (%v)", calls, err)
	}
	var bad int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM metrics.refresh_log WHERE triggered_by = $1 AND (status <> 'ok' OR data_as_of <> $2)`, name, clock).Scan(&bad); err != nil || bad != 0 {
		t.Errorf("%d refreshes by the refresher failed or used a planted clock (%v)", bad, err)
	}
	if _, err := rc.Exec(ctx, `SELECT FROM metrics.config`); sqlState(err) != "42501" {
		t.Errorf("refresher reads config: %v", err)
	}

	// A tenant sees only its own projects' rows.
	tname, tpw := loginRole(t, ctx, db, "meshtop_tenant")
	tc := connect(t, ctx, db.Srv.UserDSN(db.Name, tname, tpw))
	if _, err := tc.Exec(ctx, `SELECT set_config('request.jwt.claim.sub', '00000000-0000-0000-0000-0000000000f1', false)`); err != nil {
		t.Fatal(err)
	}
	var n int
	var projects string
	if err := tc.QueryRow(ctx, `SELECT count(*), string_agg(DISTINCT project_name, ',') FROM metrics.tenant_workflow_metrics('30d')`).Scan(&n, &projects); err != nil {
		t.Fatal(err)
	}
	if n != 2 || projects != "P1" {
		t.Errorf("tenant f1 sees %d rows of projects %s; want 2 rows of P1", n, projects)
	}
	if _, err := tc.Exec(ctx, `SELECT set_config('request.jwt.claim.sub', '00000000-0000-0000-0000-0000000000f2', false)`); err != nil {
		t.Fatal(err)
	}
	if err := tc.QueryRow(ctx, `SELECT count(*), coalesce(string_agg(DISTINCT project_name, ','), '') FROM metrics.tenant_workflow_metrics('30d')`).Scan(&n, &projects); err != nil {
		t.Fatal(err)
	}
	if n != 2 || projects != "P2" {
		t.Errorf("tenant f2 sees %d rows of projects %s; want 2 rows of P2", n, projects)
	}
	for _, q := range []string{`SELECT FROM metrics.mv_workflow_metrics`, `SELECT metrics.running_now()`, `SELECT FROM metrics.refresh_log`} {
		if _, err := tc.Exec(ctx, q); sqlState(err) != "42501" {
			t.Errorf("tenant: %s -> %v; want permission denied", q, err)
		}
	}
}
