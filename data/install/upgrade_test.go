package install_test

import (
	"context"
	"strings"
	"testing"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
)

// installThrough applies the embedded migrations up to version last the way
// the installer of that build did (no repeatable files), to stand in for an
// install made by an older meshtop.
func installThrough(t *testing.T, ctx context.Context, db *pgtest.DB, in *install.Installer, last int) {
	t.Helper()
	migs, err := in.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migs {
		if m.Version > last {
			break
		}
		if _, err := db.Pool.Exec(ctx, m.SQL); err != nil {
			t.Fatalf("applying %s: %v", m.Name, err)
		}
		if _, err := db.Pool.Exec(ctx, `INSERT INTO metrics.meshtop_migrations (version, name, checksum) VALUES ($1, $2, $3)`,
			m.Version, m.Name, m.Checksum); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUpgradeInPlace: an install of the windowed views (migrations 001-008),
// refreshed, upgrades by every later migration and the repeatable files (the dry run
// shows them); the first refresh after it builds the rollup (mode full), the
// next ones are incremental, and the views equal their oracles throughout.
func TestUpgradeInPlace(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	in := install.New(db.Pool, "metrics")
	installThrough(t, ctx, db, in, 8)
	c := clock
	if err := in.SetClock(ctx, &c); err != nil {
		t.Fatal(err)
	}
	insertEdgeData(t, ctx, db)
	refreshAll(t, ctx, db.Pool, "metrics")
	var before int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM metrics.mv_workflow_metrics`).Scan(&before); err != nil || before == 0 {
		t.Fatalf("the old install's view: %d rows, %v", before, err)
	}

	dry, err := in.DryRun(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reps, err := in.Repeatables()
	if err != nil {
		t.Fatal(err)
	}
	migs, err := in.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	// Every migration after 008 (009_incremental … 017_drill_index).
	var want []string
	for _, m := range migs {
		if m.Version > 8 {
			want = append(want, "-- meshtop migration "+m.Name)
		}
	}
	newer := len(want)
	for _, r := range reps {
		want = append(want, "-- meshtop repeatable "+r.Name)
	}
	for _, w := range want {
		if !strings.Contains(dry, w+"\n") {
			t.Errorf("the dry run does not show %q", w)
		}
	}
	// An operator's grant on the tenant function (to an API role, say)
	// survives the upgrade, which re-creates the function with the view.
	if _, err := db.Pool.Exec(ctx, `CREATE ROLE meshtop_test_api NOLOGIN; GRANT USAGE ON SCHEMA metrics TO meshtop_test_api;
GRANT EXECUTE ON FUNCTION metrics.tenant_workflow_metrics(text) TO meshtop_test_api`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.Pool.Exec(context.Background(), `DROP OWNED BY meshtop_test_api; DROP ROLE meshtop_test_api`)
	})
	n, err := in.Apply(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != newer+len(reps) {
		t.Errorf("upgrade applied %d steps; want %d (%d migrations after 008, %d repeatables)", n, newer+len(reps), newer, len(reps))
	}
	var granted bool
	if err := db.Pool.QueryRow(ctx, `SELECT has_function_privilege('meshtop_test_api', 'metrics.tenant_workflow_metrics(text)', 'EXECUTE')`).Scan(&granted); err != nil || !granted {
		t.Errorf("the operator's grant on tenant_workflow_metrics after the upgrade: %v, %v", granted, err)
	}
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "full") {
		t.Errorf("first refresh after the upgrade: mode %q; want full", m)
	}
	addRunsPool(t, ctx, db.Pool)
	if m := refreshAndCompare(t, ctx, db.Pool); !strings.HasPrefix(m, "incremental") {
		t.Errorf("second refresh after the upgrade: mode %q; want incremental", m)
	}

	// A changed repeatable file is re-applied, and only it.
	if _, err := db.Pool.Exec(ctx, `UPDATE metrics.meshtop_repeatables SET checksum = 'changed' WHERE name = $1`, reps[0].Name); err != nil {
		t.Fatal(err)
	}
	dry, err = in.DryRun(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(dry, "-- meshtop "); got != 1 || !strings.Contains(dry, "-- meshtop repeatable "+reps[0].Name+"\n") {
		t.Errorf("dry run after one repeatable changed:\n%.500s", dry)
	}
	if n, err := in.Apply(ctx, nil); err != nil || n != 1 {
		t.Fatalf("re-applying the changed repeatable: %d, %v", n, err)
	}
	if ok, err := in.Installed(ctx); err != nil || !ok {
		t.Fatalf("Installed = %v, %v", ok, err)
	}
}
