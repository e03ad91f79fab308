// Package pgtest gives tests a real PostgreSQL: one throwaway cluster per test
// binary (started lazily by the first test that asks, stopped by Main), and a
// fresh database per test cloned from a template, so tests can run in
// parallel without seeing each other's rows.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// and in a test:
//
//	db := pgtest.NewDatabase(t) // MeshHook schema, no rows
//
// If PostgreSQL is not installed the test fails with a message that says how
// to install it; it never skips.
package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/pgserver"
)

// CronDatabase is the database pg_cron runs its jobs from in the test
// cluster (cron.database_name). Use NewCronDatabase to get it.
const CronDatabase = "meshtop_cron"

var (
	startOnce sync.Once
	server    *pgserver.Server
	startErr  error

	mu        sync.Mutex // serialises template builds and CREATE DATABASE
	templates = map[string]error{}
	cronMu    sync.Mutex
	cronUsed  bool // the shared cluster's pg_cron database was handed out (guarded by cronMu)
	dbSeq     int

	bouncerMu sync.Mutex
	bouncers  = map[string]*pgserver.Bouncer{} // by pool mode
)

// Main runs the tests and then stops the cluster (if one was started). The
// cluster's watchdog removes it even if a test panics.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit: it runs the tests, stops the cluster and
// returns the exit code, for a TestMain that has its own clean-up to do.
func Run(m *testing.M) int {
	code := m.Run()
	bouncerMu.Lock()
	for _, b := range bouncers {
		if err := b.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	bouncerMu.Unlock()
	if server != nil {
		if err := server.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	return code
}

// Server returns the shared cluster, starting it if needed.
func Server(tb testing.TB) *pgserver.Server {
	tb.Helper()
	startOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		server, startErr = pgserver.Start(ctx, pgserver.Options{CronDatabase: CronDatabase})
	})
	if startErr != nil {
		tb.Fatalf("pgtest: cannot start PostgreSQL: %v", startErr)
	}
	return server
}

// AdvisoryLocks counts the advisory locks any session holds in this
// database right now (a refresh guard or an install lock left behind shows
// here; other tests' databases do not count).
func (db *DB) AdvisoryLocks(tb testing.TB) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := db.Pool.QueryRow(ctx, `select count(*) from pg_catalog.pg_locks
		where locktype = 'advisory'
		  and database = (select oid from pg_catalog.pg_database where datname = pg_catalog.current_database())`).Scan(&n); err != nil {
		tb.Fatalf("pgtest: reading pg_locks: %v", err)
	}
	return n
}

// PgBouncer returns a PgBouncer in front of the shared cluster in the given
// pool mode ("transaction", "session" or "statement"), started by the first
// test that asks for that mode and stopped by Main. Every database of the
// cluster is reachable through it: db.Srv's DSN(name) becomes its DSN(name).
// If pgbouncer is not installed the test fails saying how to install it.
func PgBouncer(tb testing.TB, mode string) *pgserver.Bouncer {
	tb.Helper()
	srv := Server(tb)
	bouncerMu.Lock()
	defer bouncerMu.Unlock()
	if b, ok := bouncers[mode]; ok {
		return b
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := srv.StartPgBouncer(ctx, pgserver.BouncerOptions{PoolMode: mode})
	if err != nil {
		tb.Fatalf("pgtest: cannot start PgBouncer (%s mode): %v", mode, err)
	}
	bouncers[mode] = b
	return b
}

// DB is one test's database.
type DB struct {
	Name string
	DSN  string           // superuser DSN
	Pool *pgxpool.Pool    // superuser pool, closed at cleanup
	Srv  *pgserver.Server // the cluster
}

// Template builds a template database's contents; it runs once per test
// binary and name.
type Template struct {
	Name  string
	Build func(ctx context.Context, conn *pgx.Conn) error
}

// MeshHook is the default template: the MeshHook schema with no rows.
var MeshHook = Template{Name: "meshhook", Build: fixture.ApplySchema}

// Empty is a database without MeshHook tables.
var Empty = Template{Name: "empty", Build: func(context.Context, *pgx.Conn) error { return nil }}

// NewDatabase creates a database from the MeshHook template (or the given
// one) and drops it when the test ends.
func NewDatabase(tb testing.TB, tmpl ...Template) *DB {
	tb.Helper()
	t := MeshHook
	if len(tmpl) > 0 {
		t = tmpl[0]
	}
	srv := Server(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tmplName := templateName(t.Name)

	mu.Lock()
	err := ensureTemplate(ctx, srv, tmplName, t)
	dbSeq++
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq)
	if err == nil {
		err = adminExec(ctx, srv, fmt.Sprintf("create database %s template %s",
			pgx.Identifier{name}.Sanitize(), pgx.Identifier{tmplName}.Sanitize()))
	}
	mu.Unlock()
	if err != nil {
		tb.Fatalf("pgtest: creating database from template %q: %v", t.Name, err)
	}
	return attach(tb, srv, name)
}

// NewCronDatabase returns the database pg_cron is configured for, freshly
// created from the MeshHook template. Only one test at a time holds it; the
// cluster must have pg_cron installed (postgresql-15-cron), else the test
// fails saying so.
func NewCronDatabase(tb testing.TB) *DB {
	tb.Helper()
	srv := Server(tb)
	if !srv.HasCron {
		tb.Fatalf("pgtest: pg_cron is not installed; install it with `sudo apt-get install postgresql-15-cron` (make deps does)")
	}
	cronMu.Lock()
	tb.Cleanup(cronMu.Unlock)
	if cronUsed {
		// The database is dropped WITH (FORCE) after each use, which
		// terminates pg_cron's scheduler; it exits with status 0, and
		// PostgreSQL never restarts a background worker that did: no job
		// would run in this cluster again (go test -count=2 ran into it).
		// A later user gets a cluster of its own.
		return newOwnCluster(tb, pgserver.Options{CronDatabase: CronDatabase}, CronDatabase)
	}
	cronUsed = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tmplName := templateName(MeshHook.Name)
	mu.Lock()
	err := ensureTemplate(ctx, srv, tmplName, MeshHook)
	if err == nil {
		err = adminExec(ctx, srv, "drop database if exists "+CronDatabase+" with (force)")
	}
	if err == nil {
		err = adminExec(ctx, srv, fmt.Sprintf("create database %s template %s", CronDatabase, pgx.Identifier{tmplName}.Sanitize()))
	}
	mu.Unlock()
	if err != nil {
		tb.Fatalf("pgtest: creating the pg_cron database: %v", err)
	}
	return attach(tb, srv, CronDatabase)
}

func attach(tb testing.TB, srv *pgserver.Server, name string) *DB {
	tb.Helper()
	db := &DB{Name: name, DSN: srv.DSN(name), Srv: srv}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, db.DSN)
	if err != nil {
		tb.Fatalf("pgtest: connecting to %s: %v", name, err)
	}
	db.Pool = pool
	tb.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, srv, "drop database if exists "+pgx.Identifier{name}.Sanitize()+" with (force)"); err != nil {
			tb.Logf("pgtest: dropping %s: %v", name, err)
		}
	})
	return db
}

// templateName is derived from the template's name and the fixture schema,
// so a changed schema never reuses a stale template (clusters are per test
// binary, but -count and reused data dirs exist).
func templateName(name string) string {
	h := sha256.Sum256([]byte(name + "\x00" + fixture.SchemaSQL()))
	return "tmpl_" + name + "_" + hex.EncodeToString(h[:4])
}

// ensureTemplate builds a template once; mu must be held.
func ensureTemplate(ctx context.Context, srv *pgserver.Server, tmplName string, t Template) error {
	if err, ok := templates[tmplName]; ok {
		return err
	}
	err := func() error {
		if err := adminExec(ctx, srv, "create database "+pgx.Identifier{tmplName}.Sanitize()); err != nil {
			return err
		}
		conn, err := pgx.Connect(ctx, srv.DSN(tmplName))
		if err != nil {
			return err
		}
		buildErr := t.Build(ctx, conn)
		conn.Close(ctx)
		if buildErr != nil {
			return buildErr
		}
		// Mark it a template only after it was built completely.
		return adminExec(ctx, srv, "alter database "+pgx.Identifier{tmplName}.Sanitize()+" is_template true")
	}()
	templates[tmplName] = err
	return err
}

func adminExec(ctx context.Context, srv *pgserver.Server, sql string) error {
	conn, err := pgx.Connect(ctx, srv.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// NewOwnCluster starts a cluster for this test alone, with a database
// "meshhook" holding the MeshHook schema, and stops it when the test ends.
// For tests that need what the shared cluster cannot give a test in
// isolation: a standby that streams and replays only this test's changes,
// a server to stop and restart.
func NewOwnCluster(tb testing.TB) *DB {
	tb.Helper()
	return newOwnCluster(tb, pgserver.Options{}, "meshhook")
}

func newOwnCluster(tb testing.TB, opts pgserver.Options, name string) *DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, opts)
	if err != nil {
		tb.Fatalf("pgtest: starting a cluster: %v", err)
	}
	tb.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			tb.Logf("pgtest: stopping the cluster: %v", err)
		}
	})
	if opts.CronDatabase != "" && !srv.HasCron {
		tb.Fatalf("pgtest: pg_cron is not installed; install it with `sudo apt-get install postgresql-15-cron` (make deps does)")
	}
	return NewClusterDatabase(tb, srv, name)
}

// NewClusterDatabase creates database name with the MeshHook schema in srv
// (a cluster of NewOwnCluster); its pool is closed when the test ends.
func NewClusterDatabase(tb testing.TB, srv *pgserver.Server, name string) *DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := adminExec(ctx, srv, "create database "+pgx.Identifier{name}.Sanitize())
	if err == nil {
		var conn *pgx.Conn
		if conn, err = pgx.Connect(ctx, srv.DSN(name)); err == nil {
			err = fixture.ApplySchema(ctx, conn)
			conn.Close(ctx)
		}
	}
	if err != nil {
		tb.Fatalf("pgtest: creating the MeshHook database %s: %v", name, err)
	}
	db := &DB{Name: name, DSN: srv.DSN(name), Srv: srv}
	if db.Pool, err = pgxpool.New(ctx, db.DSN); err != nil {
		tb.Fatalf("pgtest: connecting to %s: %v", name, err)
	}
	tb.Cleanup(db.Pool.Close) // before the cluster stops
	return db
}
