package reliability

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

// TestHostileSchemaInstall installs, refreshes and uninstalls meshtop under
// schema names built to break out of the quoting; each either works as one
// schema of exactly that name or is refused cleanly, and MeshHook's tables
// are untouched.
func TestHostileSchemaInstall(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t, 3*time.Minute)
	names := []string{
		`x"; drop table public.projects; --`,
		`y" cascade; drop schema public cascade; --`,
		`it's $$ quoted $$`,
		`public`,
		`pg_evil`,
		strings.Repeat("z", 64),
	}
	installed, refused := 0, 0
	for _, name := range names {
		in := install.New(db.Pool, name)
		_, err := in.Apply(ctx, nil)
		if err != nil {
			refused++
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("install under %q: error is not one line: %q", name, err)
			}
		} else {
			installed++
			var exists bool
			if err := db.Pool.QueryRow(ctx, "select exists (select from pg_namespace where nspname = $1)", name).Scan(&exists); err != nil || !exists {
				t.Fatalf("install under %q succeeded but no schema of that exact name exists (%v)", name, err)
			}
			st := store.New(db.Pool, nil, store.Options{Schema: name})
			res, err := st.Refresh(ctx, "", false)
			if err != nil {
				t.Fatalf("refresh under %q: %v", name, err)
			}
			for _, r := range res {
				if r.Status != "ok" {
					t.Fatalf("refresh under %q: %s %s %s", name, r.View, r.Status, r.Error)
				}
			}
			if err := in.Uninstall(ctx); err != nil {
				t.Fatalf("uninstall under %q: %v", name, err)
			}
		}
		var projects, public bool
		if err := db.Pool.QueryRow(ctx, "select to_regclass('public.projects') is not null, exists (select from pg_namespace where nspname = 'public')").Scan(&projects, &public); err != nil {
			t.Fatal(err)
		}
		if !projects || !public {
			t.Fatalf("after install/uninstall under %q: public.projects exists %v, schema public exists %v", name, projects, public)
		}
	}
	if installed == 0 || refused == 0 {
		t.Fatalf("installed %d, refused %d: expected some of each", installed, refused)
	}
	report.add("bad_inputs.schema_installs", int64(len(names)))
}

// TestUninstallLeavesForeignSchemas: `meshtop uninstall --schema X` where X
// is not a meshtop schema (Supabase's auth, a user's own schema) must not
// drop it.
func TestUninstallLeavesForeignSchemas(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t, time.Minute)
	if _, err := db.Pool.Exec(ctx, "create schema user_data; create table user_data.keep (id int); insert into user_data.keep values (1)"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"auth", "user_data"} {
		err := install.New(db.Pool, name).Uninstall(ctx)
		var exists bool
		if qerr := db.Pool.QueryRow(context.Background(), "select exists (select from pg_namespace where nspname = $1)", name).Scan(&exists); qerr != nil {
			t.Fatal(qerr)
		}
		if !exists {
			t.Errorf("uninstall --schema %s dropped a schema meshtop never installed (err %v)", name, err)
		}
		if err == nil {
			t.Errorf("uninstall --schema %s: no error for a schema that is not meshtop's", name)
		}
	}
	// The CLI says so in one line.
	r := runCLI(t, ctx, []string{"DATABASE_URL=" + db.DSN}, "uninstall", "--schema", "auth", "--yes")
	if msg := strings.TrimSpace(r.stderr); r.code == 0 || strings.Contains(msg, "\n") || !strings.Contains(msg, "not created by meshtop") {
		t.Errorf("meshtop uninstall --schema auth --yes: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var uid bool
	if err := db.Pool.QueryRow(ctx, "select to_regprocedure('auth.uid()') is not null").Scan(&uid); err != nil || !uid {
		t.Errorf("auth.uid() is gone (%v)", err)
	}
}
