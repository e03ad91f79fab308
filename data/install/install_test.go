package install_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// ctxT bounds a test's queries. Generous: it is a hang guard, not a timing
// assertion, and a parallel test may first wait its turn to create its
// database on a loaded machine.
func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustApply(t *testing.T, ctx context.Context, in *install.Installer) {
	t.Helper()
	if _, err := in.Apply(ctx, nil); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func TestApplyIdempotent(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	in := install.New(db.Pool, "metrics")
	if ok, err := in.Installed(ctx); err != nil || ok {
		t.Fatalf("Installed before Apply = %v, %v; want false", ok, err)
	}
	migrations, err := in.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	reps, err := in.Repeatables()
	if err != nil {
		t.Fatal(err)
	}
	all := append(migrations, reps...)
	var events []install.StepEvent
	n, err := in.Apply(ctx, func(e install.StepEvent) { events = append(events, e) })
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if n != len(all) || len(events) != 2*len(all) {
		t.Fatalf("applied %d (events %d), want %d", n, len(events), len(all))
	}
	for i, e := range events {
		if e.Done != (i%2 == 1) || e.Err != nil || e.Version != all[i/2].Version {
			t.Fatalf("event %d = %+v", i, e)
		}
	}
	if ok, err := in.Installed(ctx); err != nil || !ok {
		t.Fatalf("Installed after Apply = %v, %v; want true", ok, err)
	}
	n, err = in.Apply(ctx, nil)
	if err != nil || n != 0 {
		t.Fatalf("second Apply = %d, %v; want 0, nil", n, err)
	}
	if s, err := in.DryRun(ctx); err != nil || s != "" {
		t.Fatalf("DryRun after install = %q, %v; want empty", s, err)
	}
	var versions int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM metrics.meshtop_migrations`).Scan(&versions); err != nil || versions != len(migrations) {
		t.Fatalf("recorded versions = %d, %v", versions, err)
	}
	var valid bool
	if err := db.Pool.QueryRow(ctx, `SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = 'public.meshtop_workflow_runs_started_at_idx'::regclass`).Scan(&valid); err != nil || !valid {
		t.Fatalf("started_at index valid = %v, %v", valid, err)
	}
	// Views are created WITH NO DATA.
	var populated int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relnamespace = 'metrics'::regnamespace AND relkind = 'm' AND relispopulated`).Scan(&populated); err != nil || populated != 0 {
		t.Fatalf("populated views after install = %d, %v; want 0", populated, err)
	}
}

func TestConcurrentInstallers(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	migrations, err := install.New(db.Pool, "metrics").Migrations()
	if err != nil {
		t.Fatal(err)
	}
	reps, err := install.New(db.Pool, "metrics").Repeatables()
	if err != nil {
		t.Fatal(err)
	}
	all := append(migrations, reps...)
	const n = 3
	applied := make([]int, n)
	var g errgroup.Group
	for i := range n {
		g.Go(func() error {
			var err error
			applied[i], err = install.New(db.Pool, "metrics").Apply(ctx, nil)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("concurrent Apply: %v", err)
	}
	winners := 0
	for _, a := range applied {
		switch a {
		case len(all):
			winners++
		case 0:
		default:
			t.Fatalf("an installer applied %d of %d migrations", a, len(all))
		}
	}
	if winners != 1 {
		t.Fatalf("applied counts %v: want exactly one installer to apply everything", applied)
	}
}

// sqlRecorder is a pgx tracer that records every statement sent.
type sqlRecorder struct {
	mu    sync.Mutex
	stmts []string
}

func (r *sqlRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	r.stmts = append(r.stmts, d.SQL)
	r.mu.Unlock()
	return ctx
}
func (r *sqlRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func TestDryRunIsWhatApplyRuns(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	// Leave an INVALID index behind, as an interrupted concurrent build would,
	// so the plan must include dropping it.
	if _, err := db.Pool.Exec(ctx, `CREATE INDEX meshtop_workflow_runs_started_at_idx ON public.workflow_runs (started_at)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'public.meshtop_workflow_runs_started_at_idx'::regclass`); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	rec := &sqlRecorder{}
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	in := install.New(pool, "metrics")
	dry, err := in.DryRun(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dry, "DROP INDEX CONCURRENTLY IF EXISTS public.meshtop_workflow_runs_started_at_idx") {
		t.Fatalf("dry run does not drop the invalid index:\n%.2000s", dry)
	}
	rec.mu.Lock()
	rec.stmts = nil
	rec.mu.Unlock()
	if _, err := in.Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var executed []string
	for _, s := range rec.stmts {
		if !strings.HasPrefix(s, "-- meshtop:bookkeeping\n") {
			executed = append(executed, s+"\n;\n")
		}
	}
	var dryStmts []string
	for _, line := range strings.SplitAfter(dry, "\n") {
		if strings.HasPrefix(line, "-- meshtop migration ") || strings.HasPrefix(line, "-- meshtop repeatable ") {
			continue
		}
		dryStmts = append(dryStmts, line)
	}
	if got, want := strings.Join(executed, ""), strings.Join(dryStmts, ""); got != want {
		t.Fatalf("Apply executed something other than the dry run.\nexecuted:\n%.3000s\ndry run:\n%.3000s", got, want)
	}
	var valid bool
	if err := db.Pool.QueryRow(ctx, `SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = 'public.meshtop_workflow_runs_started_at_idx'::regclass`).Scan(&valid); err != nil || !valid {
		t.Fatalf("rebuilt index valid = %v, %v", valid, err)
	}
}

func TestHostileSchemaName(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	name := `m'x"; DROP TABLE public.secrets; --`
	in := install.New(db.Pool, name)
	mustApply(t, ctx, in)
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, name).Scan(&n); err != nil || n != 1 {
		t.Fatalf("schema %q count = %d, %v", name, n, err)
	}
	if _, err := db.Pool.Exec(ctx, `SELECT FROM public.secrets`); err != nil {
		t.Fatalf("public.secrets gone: %v", err)
	}
	for _, bad := range []string{"", "public", "pg_meshtop", strings.Repeat("x", 64)} {
		if _, err := install.New(db.Pool, bad).Apply(ctx, nil); err == nil {
			t.Errorf("Apply into %q succeeded; want refusal", bad)
		}
	}
	var pe *install.PreconditionError
	if err := install.New(db.Pool, "public").Check(ctx); err == nil || errors.As(err, &pe) {
		t.Errorf("Check(public) = %v; want a schema-name error", err)
	}
}

// The installer's CREATE INDEX CONCURRENTLY can lose a deadlock to other DDL
// on workflow_runs (MeshHook creating a workflow_events partition takes SHARE
// ROW EXCLUSIVE on it for the foreign key). Here a session the index build
// must wait for (an older REPEATABLE READ snapshot) then asks for such a
// lock: PostgreSQL aborts the index build, which has waited longer. The
// installer rebuilds the index and succeeds once that session is done.
func TestInstallRetriesIndexBuildAfterDeadlock(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	other := connect(t, ctx, db.DSN)
	// PostgreSQL looks for a deadlock once, deadlock_timeout after a session
	// starts to wait, and the session that finds the cycle is its victim.
	// For the index build to be the one, it must look after the cycle has
	// formed and before the other session looks: the other session waits
	// 5 minutes before looking, the build 10 s (only the cycle's second
	// wait, started right after the build is seen waiting, must come
	// within those 10 s).
	if _, err := other.Exec(ctx, "SET deadlock_timeout = '5min'; BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM public.projects"); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["deadlock_timeout"] = "10s"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	installed := make(chan error, 1)
	go func() {
		_, err := install.New(pool, "metrics").Apply(ctx, nil)
		installed <- err
	}()
	admin := connect(t, ctx, db.DSN)
	waitFor(t, ctx, "the index build to wait for the older snapshot", func() (bool, error) {
		var n int
		// This database only: every parallel install in the cluster builds
		// the index CONCURRENTLY and may wait on a virtualxid a moment.
		err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()
			  AND query ILIKE '%CREATE INDEX CONCURRENTLY%' AND wait_event = 'virtualxid'`).Scan(&n)
		return n == 1, err
	})
	// Now conflict with the build's SHARE UPDATE EXCLUSIVE lock: a cycle.
	locked := make(chan error, 1)
	go func() {
		_, err := other.Exec(ctx, "LOCK TABLE public.workflow_runs IN SHARE ROW EXCLUSIVE MODE")
		locked <- err
	}()
	if err := <-locked; err != nil {
		t.Fatalf("the other session lost the deadlock instead: %v", err)
	}
	if _, err := other.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := <-installed; err != nil {
		t.Fatalf("install after a deadlocked index build: %v", err)
	}
	var valid bool
	if err := admin.QueryRow(ctx, `SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE c.relname = 'meshtop_workflow_runs_started_at_idx'`).Scan(&valid); err != nil || !valid {
		t.Fatalf("index valid = %v, %v", valid, err)
	}
}
