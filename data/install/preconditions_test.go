package install_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
)

func wantPrecondition(t *testing.T, err error, kind, msg string) {
	t.Helper()
	var pe *install.PreconditionError
	if !errors.As(err, &pe) {
		t.Fatalf("Check = %v; want a *PreconditionError (%s)", err, kind)
	}
	if pe.Kind != kind || pe.Error() != msg {
		t.Fatalf("Check = %s %q;\nwant     %s %q", pe.Kind, pe.Error(), kind, msg)
	}
}

func userPool(t *testing.T, ctx context.Context, dsn string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestCheckNoMeshHookTables(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t, pgtest.Empty)
	err := install.New(db.Pool, "metrics").Check(ctx)
	wantPrecondition(t, err, "tables", fmt.Sprintf("Database %s has no MeshHook tables (public.projects, public.workflow_definitions, public.workflow_runs and public.workflow_events are missing); connect to the MeshHook database.", db.Name))
	if _, err := install.New(db.Pool, "metrics").Apply(ctx, nil); !errors.As(err, new(*install.PreconditionError)) {
		t.Fatalf("Apply without MeshHook tables = %v", err)
	}
}

func TestCheckStandby(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	standby, err := db.Srv.StartStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := standby.Stop(); err != nil {
			t.Log(err)
		}
	})
	p := userPool(t, ctx, standby.DSN(db.Name))
	err = install.New(p, "metrics").Check(ctx)
	wantPrecondition(t, err, "standby", fmt.Sprintf("The server of database %s is a read-only standby; install on the primary.", db.Name))
}

// privilegedRole creates a login role and gives it what the test says.
type grants struct {
	createDB, createRole, bypassRLS bool
	createPublic                    bool
	own                             []string // MeshHook tables it owns
	sel                             []string // tables it gets SELECT on
}

func roleWith(t *testing.T, ctx context.Context, db *pgtest.DB, g grants) (string, *pgxpool.Pool) {
	t.Helper()
	name, pw := loginRole(t, ctx, db)
	var stmts []string
	if g.createDB {
		stmts = append(stmts, fmt.Sprintf("GRANT CREATE ON DATABASE %s TO %s", db.Name, name))
	}
	if g.createPublic {
		stmts = append(stmts, "GRANT CREATE ON SCHEMA public TO "+name)
	}
	if g.createRole {
		stmts = append(stmts, "ALTER ROLE "+name+" CREATEROLE")
	}
	if g.bypassRLS {
		stmts = append(stmts, "ALTER ROLE "+name+" BYPASSRLS")
	}
	for _, tb := range g.own {
		stmts = append(stmts, "ALTER TABLE "+tb+" OWNER TO "+name)
	}
	for _, tb := range g.sel {
		stmts = append(stmts, "GRANT SELECT ON "+tb+" TO "+name)
	}
	for _, s := range stmts {
		if _, err := db.Pool.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() {
		// Give the tables back before the role is dropped.
		for _, tb := range g.own {
			_, _ = db.Pool.Exec(context.Background(), "ALTER TABLE "+tb+" OWNER TO postgres")
		}
		_, _ = db.Pool.Exec(context.Background(), fmt.Sprintf("REVOKE ALL ON DATABASE %s FROM %s", db.Name, name))
		_, _ = db.Pool.Exec(context.Background(), "REVOKE ALL ON SCHEMA public FROM "+name)
	})
	return name, userPool(t, ctx, db.Srv.UserDSN(db.Name, name, pw))
}

var allTables = []string{"public.projects", "public.workflow_definitions", "public.workflow_runs", "public.workflow_events"}

func TestCheckPrivileges(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	// The meshtop roles exist (as they would after another install), so
	// CREATEROLE is not needed here; TestCheckCreateRole covers it.
	if _, err := install.New(db.Pool, "probe").Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		g    grants
		msg  string // %[1]s role, %[2]s database
	}{
		{"no CREATE on the database", grants{createRole: true, createPublic: true, own: allTables},
			`Role %[1]s lacks CREATE on database %[2]s (to create schema "metrics").`},
		{"not the owner of workflow_runs", grants{createDB: true, createPublic: true, bypassRLS: true, own: []string{"public.projects", "public.workflow_definitions", "public.workflow_events"}, sel: []string{"public.workflow_runs"}},
			`Role %[1]s lacks ownership of public.workflow_runs (CREATE INDEX on it needs it) and TRIGGER on public.workflow_runs (for the change-capture triggers).`},
		{"no SELECT on projects", grants{createDB: true, createPublic: true, bypassRLS: true, own: []string{"public.workflow_definitions", "public.workflow_runs", "public.workflow_events"}},
			`Role %[1]s lacks SELECT on public.projects.`},
		{"no CREATE on schema public", grants{createDB: true, own: allTables},
			`Role %[1]s lacks CREATE on schema public (to create indexes meshtop_workflow_runs_started_at_idx and meshtop_workflow_runs_drill_idx there).`},
		{"row-level security", grants{createDB: true, createPublic: true, own: []string{"public.workflow_runs"}, sel: []string{"public.projects", "public.workflow_definitions", "public.workflow_events"}},
			`Role %[1]s lacks TRIGGER on public.workflow_events (for the change-capture triggers) and BYPASSRLS (row-level security on public.projects, public.workflow_definitions and public.workflow_events would hide other projects' rows from the views).`},
		{"nothing at all", grants{},
			`Role %[1]s lacks CREATE on database %[2]s (to create schema "metrics"); ownership of public.workflow_runs (CREATE INDEX on it needs it); TRIGGER on public.workflow_runs and public.workflow_events (for the change-capture triggers); CREATE on schema public (to create indexes meshtop_workflow_runs_started_at_idx and meshtop_workflow_runs_drill_idx there); SELECT on public.projects, public.workflow_definitions, public.workflow_runs and public.workflow_events; and BYPASSRLS (row-level security on public.projects, public.workflow_definitions, public.workflow_runs and public.workflow_events would hide other projects' rows from the views).`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Drop the indexes so ownership of workflow_runs matters.
			for _, ix := range install.Indexes {
				if _, err := db.Pool.Exec(ctx, "DROP INDEX IF EXISTS public."+ix); err != nil {
					t.Fatal(err)
				}
			}
			name, pool := roleWith(t, ctx, db, tc.g)
			err := install.New(pool, "metrics").Check(ctx)
			wantPrecondition(t, err, "privileges", fmt.Sprintf(tc.msg, name, db.Name))
		})
	}
}

// TestInstallAsTableOwner installs as an ordinary role that owns MeshHook's
// tables (no superuser): Check passes, Apply works, and the views see every
// tenant's rows.
func TestInstallAsTableOwner(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db) // superuser install into "metrics" creates the roles
	// The index exists already (built by the first install), so CREATE on
	// schema public is not needed.
	// Owning the tables but not the partitions of workflow_events is not
	// enough: the capture trigger is cloned onto each partition.
	_, parentsOnly := roleWith(t, ctx, db, grants{createDB: true, own: allTables})
	err := install.New(parentsOnly, "owned").Check(ctx)
	var pe *install.PreconditionError
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "partitions of public.workflow_events") {
		t.Fatalf("Check as owner of the tables but not of their partitions: %v; want a precondition naming the partitions", err)
	}
	// MeshHook's partitions of workflow_events belong to the owner of the
	// table too.
	var parts []string
	if err := db.Pool.QueryRow(ctx, `SELECT array_agg(inhrelid::regclass::text) FROM pg_inherits WHERE inhparent = 'public.workflow_events'::regclass`).Scan(&parts); err != nil {
		t.Fatal(err)
	}
	_, pool := roleWith(t, ctx, db, grants{createDB: true, own: append(slices.Clone(allTables), parts...)})
	in := install.New(pool, "owned")
	if err := in.Check(ctx); err != nil {
		t.Fatalf("Check as table owner: %v", err)
	}
	mustApply(t, ctx, in)
	c := clock
	if err := in.SetClock(ctx, &c); err != nil {
		t.Fatal(err)
	}
	refreshAll(t, ctx, pool, "owned")
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT project_id) FROM owned.mv_workflow_metrics WHERE execution_count > 0`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("projects with runs seen by the owner's views = %d, %v; want 1 (P1)", n, err)
	}
	var steps int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM owned.mv_step_metrics`).Scan(&steps); err != nil || steps == 0 {
		t.Fatalf("step rows = %d, %v", steps, err)
	}
}

func TestVersionSentences(t *testing.T) {
	// The cluster here is 15.18; the thresholds are checked on the sentences.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := pgtest.NewDatabase(t)
	w, err := install.New(db.Pool, "metrics").Warnings(ctx)
	if err != nil || len(w) != 0 {
		t.Fatalf("Warnings on 15.18 = %v, %v", w, err)
	}
	for _, tc := range []struct {
		num     int
		refuse  bool
		warning bool
	}{{140011, true, false}, {150000, false, true}, {150005, false, true}, {150006, false, false}, {170002, false, false}} {
		r, wr := install.VersionProblem(tc.num, "x"), install.VersionWarning(tc.num, "x")
		if (r != "") != tc.refuse || (wr != "") != tc.warning {
			t.Errorf("%d: refuse %q warning %q", tc.num, r, wr)
		}
		if wr != "" && !strings.Contains(wr, "CVE-2024-0985") {
			t.Errorf("warning %q does not name the CVE", wr)
		}
	}
}

// TestWarnsWhoMayCreateInPublic: a role other than public's owner that may
// CREATE there (PUBLIC, as on a database upgraded from PostgreSQL 14, or an
// API role) is named in a warning with the REVOKE to run; the default of
// PostgreSQL 15 gives none.
func TestWarnsWhoMayCreateInPublic(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	in := install.New(db.Pool, "metrics")
	if w, err := in.Warnings(ctx); err != nil || len(w) != 0 {
		t.Fatalf("Warnings with PostgreSQL 15's default ACL on public = %v, %v; want none", w, err)
	}
	if _, err := db.Pool.Exec(ctx, "GRANT CREATE ON SCHEMA public TO PUBLIC, authenticated"); err != nil {
		t.Fatal(err)
	}
	w, err := in.Warnings(ctx)
	if err != nil || len(w) != 1 {
		t.Fatalf("Warnings = %v, %v; want one", w, err)
	}
	for _, want := range []string{"PUBLIC and authenticated may create objects in schema public", "pg_catalog, public, pg_temp",
		"REVOKE CREATE ON SCHEMA public FROM PUBLIC, authenticated unless they need it."} {
		if !strings.Contains(w[0], want) {
			t.Errorf("warning %q does not say %q", w[0], want)
		}
	}
	if _, err := db.Pool.Exec(ctx, "REVOKE CREATE ON SCHEMA public FROM PUBLIC, authenticated"); err != nil {
		t.Fatal(err)
	}
	if w, err := in.Warnings(ctx); err != nil || len(w) != 0 {
		t.Fatalf("Warnings after the REVOKE = %v, %v; want none", w, err)
	}
}
