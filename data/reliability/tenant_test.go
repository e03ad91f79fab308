package reliability

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
)

// userProjectIDs are the definitions of public.user_project_ids() the
// tenant API must work with: MeshHook's own (what the fixture has: `projects`
// unqualified, no SET search_path, so it resolves through whatever path is in
// force when it starts) and a tidied one with qualified names and an empty
// path.
var userProjectIDs = []struct{ name, ddl string }{
	{"meshhook", `create or replace function user_project_ids() returns setof uuid language sql stable security definer as $$ select id from projects where owner = auth.uid() $$`},
	{"qualified", `create or replace function public.user_project_ids() returns setof uuid language sql stable security definer
set search_path = '' as $$ select p.id from public.projects p where p.owner = auth.uid() $$`},
}

// hostileTenantPath is the search_path a hostile API caller sets: its own
// temp schema and schema first, then public, with pg_catalog last so its
// operators shadow the built-ins too.
const hostileTenantPath = "pg_temp, caller, public, pg_catalog"

// plantForTenant plants, as authenticated, look-alikes of everything
// user_project_ids() and tenant_workflow_metrics() resolve by name, in every
// schema authenticated can create in here: schema caller (its own) and
// public (CREATE granted, as on a database upgraded from PostgreSQL 14 where
// PUBLIC kept CREATE on public). The planted objects claim every project for
// attacker and record their use in caller.calls. Temp objects are planted
// per request (tenantRequest).
func plantForTenant(ctx context.Context, t *testing.T, q *pgx.Conn, attacker string) {
	t.Helper()
	stmts := []string{
		"create schema caller authorization authenticated",
		"grant create on schema public to authenticated",
		"begin",
		"set local role authenticated",
		"create table caller.calls (name text)",
		// What the unqualified names of MeshHook's body could resolve to.
		"create table caller.projects (id uuid, owner uuid)",
		`create function caller.user_project_ids() returns setof uuid language plpgsql as $f$
begin insert into caller.calls values ('caller.user_project_ids'); return query select id from caller.projects; end $f$`,
		// auth look-alikes: uid() where an unqualified call would find it.
		`create function caller.uid() returns uuid language plpgsql as $f$
begin insert into caller.calls values ('caller.uid'); return '` + attacker + `'; end $f$`,
		`create function public.uid() returns uuid language plpgsql as $f$
begin insert into caller.calls values ('public.uid'); return '` + attacker + `'; end $f$`,
		// uuid = uuid that is always true, in both schemas: owner = auth.uid()
		// and project_id IN (…) would admit every project.
		`create function caller.uuid_eq(uuid, uuid) returns boolean language plpgsql as $f$
begin insert into caller.calls values ('caller.='); return true; end $f$`,
		"create operator caller.= (leftarg = uuid, rightarg = uuid, function = caller.uuid_eq)",
		`create function public.meshtop_test_uuid_eq(uuid, uuid) returns boolean language plpgsql as $f$
begin insert into caller.calls values ('public.='); return true; end $f$`,
		"create operator public.= (leftarg = uuid, rightarg = uuid, function = public.meshtop_test_uuid_eq)",
		`create function public.meshtop_test_text_eq(text, text) returns boolean language plpgsql as $f$
begin insert into caller.calls values ('public.=(text)'); return true; end $f$`,
		"create operator public.= (leftarg = text, rightarg = text, function = public.meshtop_test_text_eq)",
		"grant all on all tables in schema caller to public",
		"grant usage on schema caller to public",
		"commit",
		// Every project's id (an attacker may learn ids; RLS hides them from
		// it here, so the test fills them in).
		"insert into caller.projects select id, '" + attacker + "' from public.projects",
	}
	for _, s := range stmts {
		if _, err := q.Exec(ctx, s); err != nil {
			t.Fatalf("planting: %s: %v", s, err)
		}
	}
	// What authenticated cannot plant: the real table and function are not
	// its own.
	for _, s := range []string{
		"create table public.projects (id uuid, owner uuid)",
		"create or replace function public.user_project_ids() returns setof uuid language sql as $f$ select null::uuid $f$",
	} {
		if err := pgx.BeginFunc(ctx, q, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "set local role authenticated"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, s)
			return err
		}); err == nil {
			t.Fatalf("authenticated could run %s", s)
		}
	}
}

// tenantRequest runs a query as PostgREST runs an API request: in a
// transaction, SET LOCAL ROLE role, the JWT claims in request.jwt.claims
// (empty claims: none at all). With hostile set, the caller first puts its
// own schemas ahead in search_path and a temp table projects claiming every
// project. It returns the rows' text forms, sorted.
func tenantRequest(ctx context.Context, c *pgx.Conn, role, sub, query string, hostile bool, attacker string) ([]string, error) {
	// Rolled back: nothing planted per request outlives it.
	tx, err := c.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "set local role "+qident(role)); err != nil {
		return nil, err
	}
	if sub != "" {
		if _, err := tx.Exec(ctx, "select pg_catalog.set_config('request.jwt.claims', $1, true)",
			`{"sub":"`+sub+`","role":"`+role+`"}`); err != nil {
			return nil, err
		}
	}
	if hostile {
		for _, s := range []string{
			"set local search_path = " + hostileTenantPath,
			"create temp table projects (id uuid, owner uuid)",
			"insert into pg_temp.projects select p.id, '" + attacker + "' from caller.projects p",
		} {
			if _, err := tx.Exec(ctx, s); err != nil {
				return nil, fmt.Errorf("%s: %w", s, err)
			}
		}
	}
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	slices.Sort(out)
	return out, err
}

// TestTenantAPIWithMeshHookDefinitions: with tenant_workflow_metrics granted
// to Supabase's authenticated role, an API caller gets exactly its own
// projects' rows — with MeshHook's own user_project_ids() and with the
// qualified variant — and objects it plants in every schema it can create in
// (its own schema, public, its temp schema) change nothing.
func TestTenantAPIWithMeshHookDefinitions(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	ctx := e.ctx
	S := qident(e.schema)
	c, err := pgx.Connect(ctx, e.db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })

	// Two tenants: owner A gets a second project (one of C's), so "its own
	// projects" is more than one.
	rows, err := c.Query(ctx, "select owner::text from public.projects order by owner")
	if err != nil {
		t.Fatal(err)
	}
	owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(owners) < 3 {
		t.Fatalf("need three project owners, have %d", len(owners))
	}
	a, b := owners[0], owners[1]
	if _, err := c.Exec(ctx, "update public.projects set owner = $1 where owner = $2", a, owners[2]); err != nil {
		t.Fatal(err)
	}
	want := func(owner string) []string {
		t.Helper()
		rows, err := c.Query(ctx, `select m::text from `+S+`.mv_workflow_metrics m
			where m."window" = '30d' and m.project_id in (select id from public.projects where owner = $1)`, owner)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	wantA, wantB := want(a), want(b)
	var projectsA int
	if err := c.QueryRow(ctx, `select count(distinct project_id) from `+S+`.mv_workflow_metrics m
		where m."window" = '30d' and m.project_id in (select id from public.projects where owner = $1)`, a).Scan(&projectsA); err != nil {
		t.Fatal(err)
	}
	if len(wantA) == 0 || len(wantB) == 0 || projectsA < 2 {
		t.Fatalf("tenant A has %d rows over %d projects, B %d rows: the data set is not what the test expects", len(wantA), projectsA, len(wantB))
	}

	// Supabase's API roles are NOINHERIT: a membership in meshtop_tenant
	// gives a request that did SET ROLE authenticated nothing on PostgreSQL
	// 15 (docs/SECURITY.md says to grant the function directly). Rolled back:
	// roles are shared by the cluster's other tests.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"grant meshtop_tenant to authenticated", "set local role authenticated"} {
		if _, err := tx.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.Exec(ctx, "select * from "+S+".tenant_workflow_metrics('30d')"); sqlState(err) != "42501" {
		t.Errorf("authenticated (NOINHERIT), member of meshtop_tenant: %v; want permission denied", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The grant docs/SECURITY.md gives for the API roles: per database, so
	// the cluster's other tests do not see it.
	if _, err := c.Exec(ctx, "grant usage on schema "+S+" to authenticated; grant execute on function "+S+".tenant_workflow_metrics(text) to authenticated"); err != nil {
		t.Fatal(err)
	}

	query := "select t::text from " + S + ".tenant_workflow_metrics('30d') t"
	check := func(t *testing.T, hostile bool) {
		for _, tc := range []struct {
			who, sub string
			want     []string
		}{{"A", a, wantA}, {"B", b, wantB}, {"no subject", "", nil}, {"unknown subject", "00000000-0000-0000-0000-00000000dead", nil}} {
			got, err := tenantRequest(ctx, c, "authenticated", tc.sub, query, hostile, a)
			if err != nil {
				t.Errorf("authenticated, %s: %v", tc.who, err)
				continue
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("authenticated, %s: %d rows, want %d (its own projects' rows, exactly)", tc.who, len(got), len(tc.want))
			}
		}
		if _, err := tenantRequest(ctx, c, "anon", a, query, false, a); sqlState(err) != "42501" {
			t.Errorf("anon: %v; want permission denied", err)
		}
		// The helper that gives user_project_ids() its path is the owner's
		// alone.
		if _, err := tenantRequest(ctx, c, "authenticated", a, "select "+S+".tenant_project_ids()::text", false, a); sqlState(err) != "42501" {
			t.Errorf("authenticated calls tenant_project_ids() directly: %v; want permission denied", err)
		}
	}
	for _, hostile := range []bool{false, true} {
		if hostile {
			plantForTenant(ctx, t, c, a)
			// The planted objects do work where the caller's own path
			// reaches them: the probe below is not vacuous.
			got, err := tenantRequest(ctx, c, "authenticated", a, "select id::text from projects", true, a)
			if err != nil || len(got) < 3 {
				t.Fatalf("the hostile caller's own lookup of projects: %d rows, %v; want every project", len(got), err)
			}
			if _, err := c.Exec(ctx, "truncate caller.calls"); err != nil {
				t.Fatal(err)
			}
		}
		for _, def := range userProjectIDs {
			if _, err := c.Exec(ctx, def.ddl); err != nil {
				t.Fatalf("%s: %v", def.name, err)
			}
			t.Run(fmt.Sprintf("%s/hostile=%v", def.name, hostile), func(t *testing.T) { check(t, hostile) })
		}
	}
	rows, err = c.Query(ctx, "select distinct name from caller.calls order by 1")
	if err != nil {
		t.Fatal(err)
	}
	calls, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) > 0 {
		t.Errorf("planted objects were used: %v", calls)
	}
}
