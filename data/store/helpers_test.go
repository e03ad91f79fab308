package store_test

import (
	"context"
	"github.com/jackc/pgx/v5/pgxpool"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// anchor pins the metrics clock and the generated history.
var anchor = time.Date(2026, 3, 10, 12, 30, 0, 0, time.UTC)

const schema = "metrics"

type env struct {
	db *pgtest.DB
	st *store.Store
	in *install.Installer
}

// setup gives a database with a small generated history, meshtop installed
// and the metrics clock pinned at anchor; nothing refreshed yet.
func setup(t testing.TB) env {
	t.Helper()
	return setupDB(t, pgtest.NewDatabase(t))
}

func setupDB(t testing.TB, db *pgtest.DB) env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := fixture.Generate(ctx, db.Pool, fixture.Spec{
		Seed: 7, Projects: 2, Workflows: 8, Runs: 3000, Days: 30, Anchor: anchor, Events: true,
	}); err != nil {
		t.Fatalf("generating history: %v", err)
	}
	in := install.New(db.Pool, schema)
	if _, err := in.Apply(ctx, nil); err != nil {
		t.Fatalf("installing: %v", err)
	}
	a := anchor
	if err := in.SetClock(ctx, &a); err != nil {
		t.Fatalf("pinning the clock: %v", err)
	}
	return env{db: db, in: in, st: store.New(db.Pool, nil, store.Options{Schema: schema})}
}

func refreshAll(t testing.TB, st *store.Store) []store.RefreshResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := st.Refresh(ctx, "", false)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if len(res) != 3 {
		t.Fatalf("refresh: %d results, want 3: %+v", len(res), res)
	}
	for _, r := range res {
		if r.Status != "ok" {
			t.Fatalf("refresh %s: status %s (%s)", r.View, r.Status, r.Error)
		}
	}
	return res
}

// ctxT bounds a test's queries. Generous: the machine is shared and its
// load is high at times; this is a hang guard, not a timing assertion.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

type pgxpoolPool = pgxpool.Pool

func newPool(ctx context.Context, dsn string) (*pgxpool.Pool, error) { return pgxpool.New(ctx, dsn) }
