package install_test

import (
	"context"
	"testing"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
)

// The tests in this file are not parallel: they create and drop the
// cluster-wide meshtop roles (see uninstall_test.go).

// roleCount counts meshtop's roles in the cluster.
func roleCount(t *testing.T, ctx context.Context, db *pgtest.DB) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = ANY ($1)`, install.Roles).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantReaderGranted fails unless meshtop_reader may read db's workflow view.
func wantReaderGranted(t *testing.T, ctx context.Context, db *pgtest.DB) {
	t.Helper()
	var granted bool
	if err := db.Pool.QueryRow(ctx, `SELECT has_table_privilege('meshtop_reader', 'metrics.mv_workflow_metrics', 'SELECT')`).Scan(&granted); err != nil || !granted {
		t.Fatalf("meshtop_reader may read %s's metrics.mv_workflow_metrics: %v, %v", db.Name, granted, err)
	}
}

// An install in one database and an uninstall in another database of the
// same cluster: the uninstall runs to completion (dropping the roles, which
// nothing depends on yet) exactly while the install is inside the
// transaction that grants to them, after it made sure they exist. The
// install must still succeed and leave the roles in place.
func TestInstallRacesUninstallElsewhere(t *testing.T) {
	ctx := ctxT(t)
	a := pgtest.NewDatabase(t)
	b := pgtest.NewDatabase(t)
	dropMeshtopRoles(t, ctx, a)
	other := install.New(b.Pool, "metrics")
	mustApply(t, ctx, other)

	in := install.New(a.Pool, "metrics")
	paused := 0
	install.SetPause(in, func(at string) {
		// 005_access's SQL is about to run in its transaction (after the
		// step made sure the roles exist, where it does).
		if at != "005_access" {
			return
		}
		paused++
		if paused > 1 {
			return // the retry runs undisturbed
		}
		if err := other.Uninstall(ctx); err != nil {
			t.Errorf("Uninstall in the other database: %v", err)
		}
		if n := roleCount(t, ctx, b); n != 0 {
			t.Errorf("the other database's uninstall left %d roles; the race was not forced", n)
		}
	})
	if _, err := in.Apply(ctx, nil); err != nil {
		t.Fatalf("Apply while another database uninstalls: %v", err)
	}
	if paused < 2 {
		t.Errorf("005_access ran %d time(s); want a retry after the roles were dropped", paused)
	}
	if n := roleCount(t, ctx, a); n != len(install.Roles) {
		t.Fatalf("%d of %d roles exist after the install", n, len(install.Roles))
	}
	wantReaderGranted(t, ctx, a)
	// Clean up: the roles now belong to database a's install.
	if err := in.Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
}

// The reverse: an uninstall has decided which roles nothing depends on, and
// before it drops them an install in another database grants to them. The
// uninstall must keep the roles (they are in use again) and succeed.
func TestUninstallRacesInstallElsewhere(t *testing.T) {
	ctx := ctxT(t)
	a := pgtest.NewDatabase(t)
	b := pgtest.NewDatabase(t)
	dropMeshtopRoles(t, ctx, a)
	un := install.New(a.Pool, "metrics")
	mustApply(t, ctx, un)
	in := install.New(b.Pool, "metrics")
	install.SetPause(un, func(at string) {
		if at == "uninstall:roles" {
			mustApply(t, ctx, in)
		}
	})
	if err := un.Uninstall(ctx); err != nil {
		t.Fatalf("Uninstall while another database installs: %v", err)
	}
	if n := roleCount(t, ctx, b); n != len(install.Roles) {
		t.Fatalf("%d of %d roles left; the other database's install depends on all of them", n, len(install.Roles))
	}
	wantReaderGranted(t, ctx, b)
	if err := in.Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	if n := roleCount(t, ctx, b); n != 0 {
		t.Errorf("%d roles left after the last uninstall", n)
	}
}
