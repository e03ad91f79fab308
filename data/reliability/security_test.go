package reliability

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/conn"
	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

// secEnv is a database with data, meshtop installed, a pinned clock and
// every view refreshed.
type secEnv struct {
	db     *pgtest.DB
	ctx    context.Context
	schema string
	inst   *install.Installer
	// roleSuffix makes LOGIN role names unique per database (roles are
	// cluster-wide and tests run in parallel).
	roleSuffix string
}

func newSecEnv(t *testing.T) *secEnv {
	t.Helper()
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t, 4*time.Minute)
	if _, err := fixture.Generate(ctx, db.Pool, fixture.Spec{Seed: 21, Projects: 3, Workflows: 10, Runs: 2000, Days: 30, Anchor: anchor, Events: true}); err != nil {
		t.Fatal(err)
	}
	e := &secEnv{db: db, ctx: ctx, schema: "metrics", roleSuffix: db.Name}
	e.inst = install.New(db.Pool, e.schema)
	if _, err := e.inst.Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	a := anchor
	if err := e.inst.SetClock(ctx, &a); err != nil {
		t.Fatal(err)
	}
	st := store.New(db.Pool, nil, store.Options{Schema: e.schema})
	if _, err := st.Refresh(ctx, "", false); err != nil {
		t.Fatal(err)
	}
	return e
}

// loginPool creates a LOGIN role (member of member) and returns a pool
// connected as it over TCP with its password.
func (e *secEnv) loginPool(t *testing.T, base, password, member string) (*pgxpool.Pool, string) {
	t.Helper()
	name := base + "_" + e.roleSuffix
	createLoginRole(t, e.ctx, e.db.Pool, name, password, member)
	dsn := e.db.Srv.UserDSN(e.db.Name, name, password)
	pool, err := pgxpool.New(e.ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, dsn
}

type dbObject struct {
	kind string // table, view, materialized view, sequence, function, procedure
	name string // qualified, as regclass/regprocedure text
	oid  uint32
	try  string // the statement that uses it
}

// meshtopObjects lists every relation and routine in the schema, with a
// statement that uses each.
func meshtopObjects(ctx context.Context, t *testing.T, q querier, schema string) []dbObject {
	t.Helper()
	rows, err := q.Query(ctx, `
		select case c.relkind when 'r' then 'table' when 'p' then 'table' when 'v' then 'view'
		         when 'm' then 'materialized view' when 'S' then 'sequence' when 'f' then 'foreign table' end,
		       c.oid::regclass::text, c.oid::int8
		from pg_class c
		where c.relnamespace = $1::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
		union all
		select case p.prokind when 'p' then 'procedure' when 'a' then 'aggregate' when 'w' then 'window function' else 'function' end,
		       p.oid::regprocedure::text, p.oid::int8
		from pg_proc p where p.pronamespace = $1::regnamespace
		order by 1, 2`, qident(schema))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (dbObject, error) {
		var o dbObject
		var oid int64
		err := r.Scan(&o.kind, &o.name, &oid)
		o.oid = uint32(oid)
		return o, err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range objs {
		switch o.kind {
		case "function", "procedure", "aggregate", "window function":
			var args string
			if err := q.QueryRow(ctx, `select coalesce(string_agg('null::' || format_type(t, null), ', ' order by n), '')
				from pg_proc p, unnest(p.proargtypes::oid[]) with ordinality a(t, n) where p.oid = $1`, int64(o.oid)).Scan(&args); err != nil {
				t.Fatal(err)
			}
			fn := o.name[:strings.Index(o.name, "(")]
			var trigger bool
			if err := q.QueryRow(ctx, `select prorettype = 'trigger'::regtype from pg_proc where oid = $1`, int64(o.oid)).Scan(&trigger); err != nil {
				t.Fatal(err)
			}
			switch {
			case trigger:
				// A trigger function cannot be called; attaching it to a
				// trigger needs EXECUTE on it.
				objs[i].try = fmt.Sprintf("create temp table meshtop_probe (x int); create trigger meshtop_probe after insert on meshtop_probe for each statement execute function %s()", fn)
			case o.kind == "procedure":
				objs[i].try = fmt.Sprintf("call %s(%s)", fn, args)
			default:
				objs[i].try = fmt.Sprintf("select * from %s(%s)", fn, args)
			}
		default:
			objs[i].try = "select * from " + o.name + " limit 1"
		}
	}
	return objs
}

// TestAPIRolesDeniedEverywhere: anon and authenticated can neither see nor
// use any meshtop object — checked through the privilege functions and by
// trying each one, with and without USAGE on the schema.
func TestAPIRolesDeniedEverywhere(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	ctx := e.ctx
	objs := meshtopObjects(ctx, t, e.db.Pool, e.schema)
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.kind]++
	}
	// Two materialized views and the hourly view (a plain view over the
	// rollup) besides refresh_log_v and refresh_status.
	if kinds["materialized view"] < 2 || kinds["view"] < 3 || kinds["function"] < 5 || kinds["procedure"] < 1 || kinds["table"] < 2 {
		t.Fatalf("the object list looks incomplete: %v", kinds)
	}
	c, err := pgx.Connect(ctx, e.db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	tries := 0
	// PUBLIC: no ACL entry for it anywhere (a NULL ACL means the default,
	// which for functions grants EXECUTE to PUBLIC).
	var publicGrants int
	if err := c.QueryRow(ctx, `select
		  (select count(*) from pg_class c, aclexplode(coalesce(c.relacl, acldefault((case when c.relkind = 'S' then 's' else 'r' end)::"char", c.relowner))) a
		   where c.relnamespace = $1::regnamespace and a.grantee = 0)
		+ (select count(*) from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f'::"char", p.proowner))) a
		   where p.pronamespace = $1::regnamespace and a.grantee = 0)
		+ (select count(*) from pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n'::"char", n.nspowner))) a
		   where n.oid = $1::regnamespace and a.grantee = 0)`, qident(e.schema)).Scan(&publicGrants); err != nil {
		t.Fatal(err)
	}
	if publicGrants != 0 {
		t.Errorf("%d privileges granted to PUBLIC in schema %s", publicGrants, e.schema)
	}
	for _, role := range []string{"anon", "authenticated"} {
		var usage bool
		if err := c.QueryRow(ctx, "select has_schema_privilege($1, $2, 'USAGE')", role, e.schema).Scan(&usage); err != nil {
			t.Fatal(err)
		}
		if usage {
			t.Errorf("%s has USAGE on schema %s", role, e.schema)
		}
		for _, o := range objs {
			var allowed bool
			var q string
			switch o.kind {
			case "sequence":
				q = "select has_sequence_privilege($1, $2::oid, 'USAGE, SELECT, UPDATE')"
			case "function", "procedure", "aggregate", "window function":
				q = "select has_function_privilege($1, $2::oid, 'EXECUTE')"
			default:
				q = "select has_table_privilege($1, $2::oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')"
			}
			if err := c.QueryRow(ctx, q, role, int64(o.oid)).Scan(&allowed); err != nil {
				t.Fatalf("%s on %s: %v", role, o.name, err)
			}
			if allowed {
				t.Errorf("%s has a privilege on %s %s", role, o.kind, o.name)
			}
		}
		// Try each object for real: first as the role is set up (no USAGE
		// on the schema), then with USAGE granted inside a rolled-back
		// transaction, so the objects' own ACLs are what refuses.
		for _, grantUsage := range []bool{false, true} {
			if _, err := c.Exec(ctx, "begin"); err != nil {
				t.Fatal(err)
			}
			if grantUsage {
				if _, err := c.Exec(ctx, fmt.Sprintf("grant usage on schema %s to %s", qident(e.schema), role)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.Exec(ctx, "set local role "+role); err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if _, err := c.Exec(ctx, "savepoint probe"); err != nil {
					t.Fatal(err)
				}
				_, err := c.Exec(ctx, o.try)
				tries++
				if sqlState(err) != "42501" {
					t.Errorf("%s (usage granted: %v): %s → %v; want permission denied (42501)", role, grantUsage, o.try, err)
				}
				if _, err := c.Exec(ctx, "rollback to savepoint probe"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.Exec(ctx, "rollback"); err != nil {
				t.Fatal(err)
			}
		}
	}
	report.add("security.objects_probed", int64(len(objs)))
	report.add("security.denied_attempts", int64(tries))
	t.Logf("%d objects %v; %d attempts by anon/authenticated, all denied", len(objs), kinds, tries)
}

// TestRolesReaderRefresherTenant: meshtop_reader reads but cannot refresh
// or read secrets; meshtop_refresher refreshes; the tenant function returns
// only the caller's projects, by JWT subject as Supabase sets it.
func TestRolesReaderRefresherTenant(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	ctx := e.ctx
	const pw = "S3cr3t-roles-pw-47"
	reader, _ := e.loginPool(t, "rel_reader", pw, "meshtop_reader")
	refresher, _ := e.loginPool(t, "rel_refresher", pw, "meshtop_refresher")
	tenant, _ := e.loginPool(t, "rel_tenant", pw, "meshtop_tenant")
	S := qident(e.schema)

	t.Run("reader", func(t *testing.T) {
		for _, v := range append(views, "refresh_status", "refresh_log_v", "refresh_log") {
			var n int
			if err := reader.QueryRow(ctx, "select count(*) from "+S+"."+qident(v)).Scan(&n); err != nil {
				t.Errorf("reader cannot read %s: %v", v, err)
			}
		}
		st := store.New(reader, nil, store.Options{Schema: e.schema})
		if _, err := st.Overview(ctx, store.Window24h); err != nil {
			t.Errorf("reader: Overview: %v", err)
		}
		res, err := st.Refresh(ctx, "", false)
		if err == nil {
			t.Fatalf("reader refreshed: %+v", res)
		}
		if msg := conn.Explain(err); !strings.Contains(msg, "meshtop_refresher") || strings.Contains(msg, pw) {
			t.Errorf("reader's refresh error does not name the role to grant (or leaks the password): %q", msg)
		}
		for _, stmt := range []string{
			"select " + S + ".refresh_begin('mv_workflow_metrics')",
			"select * from " + S + ".refresh_run(1)",
			"select " + S + ".refresh_cancel()",
			"call " + S + ".refresh()",
			"refresh materialized view " + S + ".mv_workflow_metrics",
			"refresh materialized view concurrently " + S + ".mv_workflow_metrics",
			"select * from public.secrets",
			"update " + S + ".config set value = '1ms' where key = 'lock_timeout'",
			"insert into " + S + ".refresh_log (view_name, status) values ('x', 'ok')",
			"delete from " + S + ".refresh_log",
		} {
			if _, err := reader.Exec(ctx, stmt); sqlState(err) != "42501" {
				t.Errorf("reader: %s → %v; want permission denied", stmt, err)
			}
		}
	})

	t.Run("refresher", func(t *testing.T) {
		st := store.New(refresher, nil, store.Options{Schema: e.schema})
		res, err := st.Refresh(ctx, "", false)
		if err != nil {
			t.Fatalf("refresher: %v", err)
		}
		for _, r := range res {
			if r.Status != "ok" {
				t.Errorf("refresher: %s %s %s", r.View, r.Status, r.Error)
			}
		}
		if _, err := refresher.Exec(ctx, "call "+S+".refresh()"); err != nil {
			t.Errorf("refresher: call refresh(): %v", err)
		}
		if _, err := refresher.Exec(ctx, "select * from public.secrets"); sqlState(err) != "42501" {
			t.Errorf("refresher reads public.secrets: %v", err)
		}
		if err := compareTruth(ctx, e.db.Pool, e.schema); err != nil {
			t.Error(err)
		}
	})

	t.Run("tenant", func(t *testing.T) {
		rows, err := e.db.Pool.Query(ctx, `select owner::text, array_agg(id::text order by id) from public.projects group by owner order by owner`)
		if err != nil {
			t.Fatal(err)
		}
		type owner struct {
			id       string
			projects []string
		}
		owners, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (owner, error) {
			var o owner
			err := r.Scan(&o.id, &o.projects)
			return o, err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(owners) < 2 {
			t.Fatalf("need at least two tenants, have %d", len(owners))
		}
		var total int
		if err := e.db.Pool.QueryRow(ctx, "select count(*) from "+S+".mv_workflow_metrics where \"window\" = '24h'").Scan(&total); err != nil {
			t.Fatal(err)
		}
		sum := 0
		for _, o := range owners {
			for _, setting := range []string{"request.jwt.claim.sub", "request.jwt.claims"} {
				value := o.id
				if setting == "request.jwt.claims" {
					value = `{"sub":"` + o.id + `","role":"authenticated"}`
				}
				c, err := tenant.Acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got, err := func() ([]string, error) {
					defer c.Release()
					if _, err := c.Exec(ctx, "select set_config($1, $2, false)", setting, value); err != nil {
						return nil, err
					}
					defer c.Exec(context.Background(), "select set_config($1, '', false)", setting)
					rows, err := c.Query(ctx, "select project_id::text from "+S+".tenant_workflow_metrics('24h')")
					if err != nil {
						return nil, err
					}
					return pgx.CollectRows(rows, pgx.RowTo[string])
				}()
				if err != nil {
					t.Fatalf("tenant %s via %s: %v", o.id, setting, err)
				}
				var want int
				if err := e.db.Pool.QueryRow(ctx, "select count(*) from "+S+".mv_workflow_metrics where \"window\" = '24h' and project_id::text = any($1)", o.projects).Scan(&want); err != nil {
					t.Fatal(err)
				}
				if len(got) != want || want == 0 {
					t.Errorf("tenant %s via %s: %d rows, want %d (its own)", o.id, setting, len(got), want)
				}
				for _, p := range got {
					if !slices.Contains(o.projects, p) {
						t.Errorf("tenant %s via %s sees project %s, not its own", o.id, setting, p)
					}
				}
				if setting == "request.jwt.claim.sub" {
					sum += len(got)
				}
			}
		}
		if sum != total {
			t.Errorf("tenants' rows add up to %d, the view has %d", sum, total)
		}
		// No claim, or someone else's uuid: nothing.
		for _, sub := range []string{"", "00000000-0000-0000-0000-000000000000"} {
			var n int
			err := pgx.BeginFunc(ctx, tenant, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "select set_config('request.jwt.claim.sub', $1, true)", sub); err != nil {
					return err
				}
				return tx.QueryRow(ctx, "select count(*) from "+S+".tenant_workflow_metrics('24h')").Scan(&n)
			})
			if err != nil || n != 0 {
				t.Errorf("tenant with sub %q: %d rows, %v; want none", sub, n, err)
			}
		}
		if _, err := tenant.Exec(ctx, "select * from "+S+".mv_workflow_metrics"); sqlState(err) != "42501" {
			t.Errorf("tenant reads the view directly: %v", err)
		}
	})
}
