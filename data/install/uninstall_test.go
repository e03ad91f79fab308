package install_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
)

// The tests in this file are not parallel: they create and drop the
// cluster-wide meshtop roles, and Go runs sequential top-level tests before
// any parallel one resumes.

// dropMeshtopRoles removes the meshtop roles left by earlier tests (whose
// databases are gone), so a test starts from a cluster without them.
func dropMeshtopRoles(t *testing.T, ctx context.Context, db *pgtest.DB) {
	t.Helper()
	for _, r := range []string{"meshtop_tenant", "meshtop_refresher", "meshtop_reader"} {
		if _, err := db.Pool.Exec(ctx, "DROP ROLE IF EXISTS "+r); err != nil {
			t.Fatalf("dropping leftover role %s: %v", r, err)
		}
	}
}

// snapshot names every class, routine, type and schema of the database and
// every role of the cluster, with role comments.
func snapshot(t *testing.T, ctx context.Context, db *pgtest.DB) []string {
	t.Helper()
	rows, err := db.Pool.Query(ctx, `
SELECT 'class ' || c.oid::regclass::text || ' valid=' || coalesce(i.indisvalid::text, '-') FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid
UNION ALL SELECT 'proc ' || p.oid::regprocedure::text FROM pg_proc p
UNION ALL SELECT 'type ' || t.oid::regtype::text FROM pg_type t
UNION ALL SELECT 'schema ' || n.nspname FROM pg_namespace n
UNION ALL SELECT 'role ' || r.rolname || ' ' || coalesce(shobj_description(r.oid, 'pg_authid'), '') FROM pg_roles r WHERE r.rolname NOT LIKE 'meshtop_test_%'
UNION ALL SELECT 'acl ' || c.oid::regclass::text || ' ' || coalesce(c.relacl::text, '') FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
UNION ALL SELECT 'nsacl ' || n.nspname || ' ' || coalesce(n.nspacl::text, '') FROM pg_namespace n
UNION ALL SELECT 'trigger ' || t.tgrelid::regclass::text || ' ' || t.tgname || ' ' || t.tgfoid::regproc::text FROM pg_trigger t WHERE NOT t.tgisinternal`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func diff(a, b []string) (onlyA, onlyB []string) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			onlyA = append(onlyA, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			onlyB = append(onlyB, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return
}

func TestUninstallLeavesNoTrace(t *testing.T) {
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	dropMeshtopRoles(t, ctx, db)
	// The data set's event partitions are MeshHook's, not meshtop's: create
	// them before the first snapshot.
	if _, err := db.Pool.Exec(ctx, `SELECT public.meshhook_ensure_event_partitions($1::timestamptz - interval '45 days', $1::timestamptz + interval '1 day')`, clock); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, ctx, db)
	in := loadEdgeData(t, ctx, db)
	refreshAll(t, ctx, db.Pool, "metrics")
	// A second meshtop schema in the same database shares the index and the
	// roles: uninstalling the first keeps them.
	other := install.New(db.Pool, "other metrics")
	mustApply(t, ctx, other)
	if err := in.Uninstall(ctx); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	mid := snapshot(t, ctx, db)
	for _, want := range []string{"class meshtop_workflow_runs_started_at_idx valid=true", "role meshtop_reader created by meshtop", "schema other metrics"} {
		if !slices.Contains(mid, want) {
			t.Errorf("after uninstalling one of two schemas, %q is gone", want)
		}
	}
	if slices.Contains(mid, "schema metrics") {
		t.Error("schema metrics still exists")
	}
	// The change-capture triggers on MeshHook's tables: the other schema
	// keeps its own nine (insert, update, delete, truncate on two tables;
	// a moved run's old key).
	var ours, theirs int
	for _, s := range mid {
		if strings.HasPrefix(s, "trigger ") {
			onParent := strings.HasPrefix(s, "trigger workflow_runs ") || strings.HasPrefix(s, "trigger workflow_events ") ||
				strings.HasPrefix(s, "trigger public.workflow_runs ") || strings.HasPrefix(s, "trigger public.workflow_events ")
			switch {
			case strings.Contains(s, " metrics.capture_"):
				ours++ // on the tables or cloned onto partitions
			case strings.Contains(s, `"other metrics".capture_`) && onParent:
				theirs++
			}
		}
	}
	if ours != 0 || theirs != 9 {
		t.Errorf("after uninstalling one of two schemas: %d of its triggers left, %d of the other's (want 0 and 9)", ours, theirs)
	}
	if err := other.Uninstall(ctx); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	after := snapshot(t, ctx, db)
	if onlyBefore, onlyAfter := diff(before, after); len(onlyBefore) > 0 || len(onlyAfter) > 0 {
		t.Fatalf("uninstall left a trace:\nmissing: %v\nextra: %v", onlyBefore, onlyAfter)
	}
	if ok, err := in.Installed(ctx); err != nil || ok {
		t.Fatalf("Installed after Uninstall = %v, %v", ok, err)
	}
	// Uninstalling again is a no-op.
	if err := in.Uninstall(ctx); err != nil {
		t.Fatalf("second Uninstall: %v", err)
	}
}

// Roles that existed before the install are not meshtop's to drop.
func TestUninstallKeepsExistingRoles(t *testing.T) {
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	dropMeshtopRoles(t, ctx, db)
	if _, err := db.Pool.Exec(ctx, "CREATE ROLE meshtop_reader NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropMeshtopRoles(t, context.Background(), db) })
	in := install.New(db.Pool, "metrics")
	mustApply(t, ctx, in)
	if err := in.Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	var roles []string
	rows, err := db.Pool.Query(ctx, `SELECT rolname FROM pg_roles WHERE rolname LIKE 'meshtop\_%' AND rolname NOT LIKE 'meshtop_test_%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	roles, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(roles) != "[meshtop_reader]" {
		t.Fatalf("roles after uninstall = %v; want only the pre-existing meshtop_reader", roles)
	}
}

// Without the meshtop roles, installing needs CREATEROLE.
func TestCheckCreateRole(t *testing.T) {
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	dropMeshtopRoles(t, ctx, db)
	name, pool := roleWith(t, ctx, db, grants{createDB: true, createPublic: true, own: allTables})
	err := install.New(pool, "metrics").Check(ctx)
	wantPrecondition(t, err, "privileges", fmt.Sprintf("Role %s lacks CREATEROLE (to create roles meshtop_reader, meshtop_refresher and meshtop_tenant).", name))
}
