package reliability

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshtop/meshtop/data/pgtest"
	meshsql "github.com/meshtop/meshtop/sql"
)

// Every hostile schema name is either refused by QuoteSchema or, substituted
// into `create schema X`, creates exactly one schema with exactly that name
// and nothing else, in a real database.
func TestHostileSchemaNamesCreateOneSchema(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t, pgtest.Empty)
	ctx := ctxT(t, time.Minute)
	// Each name is tried in a REPEATABLE READ transaction, rolled back: its
	// snapshot hides what the parallel tests do meanwhile — pg_roles is
	// cluster-wide, and they create and drop roles — while what this
	// transaction's own statement did is visible to it.
	snapshot := func(tx pgx.Tx) (int, int, int) {
		var ns, cls, roles int
		if err := tx.QueryRow(ctx, `select (select count(*) from pg_namespace), (select count(*) from pg_class), (select count(*) from pg_roles)`).Scan(&ns, &cls, &roles); err != nil {
			t.Fatal(err)
		}
		return ns, cls, roles
	}
	var refused, created int
	for _, name := range hostileSchemaNames {
		quoted, err := meshsql.QuoteSchema(name)
		if err != nil {
			refused++
			continue
		}
		tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
		if err != nil {
			t.Fatal(err)
		}
		ns0, cls0, roles0 := snapshot(tx)
		if _, err := tx.Exec(ctx, "create schema "+quoted); sqlState(err) == "42P06" {
			_ = tx.Rollback(ctx)
			refused++ // an existing schema (information_schema): refused by the server
			continue
		} else if err != nil {
			_ = tx.Rollback(ctx)
			t.Fatalf("create schema %s (from %q): %v", quoted, name, err)
		}
		ns1, cls1, roles1 := snapshot(tx)
		var exists bool
		if err := tx.QueryRow(ctx, `select exists (select from pg_namespace where nspname = $1)`, name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatalf("rolling back create schema %s: %v", quoted, err)
		}
		if !exists || ns1 != ns0+1 || cls1 != cls0 || roles1 != roles0 {
			t.Fatalf("create schema %s (from %q): schema exists=%v, namespaces %d→%d, relations %d→%d, roles %d→%d; want exactly one new schema",
				quoted, name, exists, ns0, ns1, cls0, cls1, roles0, roles1)
		}
		created++
	}
	if refused == 0 || created == 0 {
		t.Fatalf("expected some names refused and some created; refused %d, created %d", refused, created)
	}
	report.add("bad_inputs.schema_names", int64(len(hostileSchemaNames)))
	t.Logf("%d hostile schema names: %d refused, %d created exactly one schema", len(hostileSchemaNames), refused, created)
}
