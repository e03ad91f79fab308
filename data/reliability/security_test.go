package reliability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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
			if o.kind == "procedure" {
				objs[i].try = fmt.Sprintf("call %s(%s)", fn, args)
			} else {
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
	if kinds["materialized view"] < 3 || kinds["function"] < 5 || kinds["procedure"] < 1 || kinds["table"] < 2 {
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
