// Package demo runs the embedded default database of `meshtop demo`: a
// throwaway PostgreSQL cluster with a MeshHook-shaped database named
// "meshhook", a generated 30-day history and live traffic. It does not
// install meshtop's views (the command does that with data/install).
package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/pgserver"
)

// Database is the name of the demo's MeshHook database.
const Database = "meshhook"

// Options configure Start. Zero fields take the defaults: a temporary
// cluster, seed 1, ~200,000 runs, 40 workflows, 3 projects, 30 days, 5 runs
// per second of live traffic.
type Options struct {
	// DataDir keeps the cluster there (created if missing) instead of in a
	// temporary directory; Stop leaves it, and a later Start reuses the
	// seeded database instead of generating it again.
	DataDir string
	// Seed of the generated history and of the traffic.
	Seed int64
	// The history: Runs over Days days, Workflows slugs in Projects projects.
	Runs, Workflows, Projects, Days int
	// TrafficRate is live runs started per second; negative disables live
	// traffic.
	TrafficRate float64
	// Progress, if set, receives one line per start-up step ("starting
	// PostgreSQL", "seeding 200,000 runs", …).
	Progress func(string)
	// SeedProgress, if set, follows the seeding step by step (steps done,
	// their total, the step just finished), for a progress bar.
	SeedProgress func(done, total int, step string)
}

// Defaults of Options.
const (
	DefaultSeed        = 1
	DefaultTrafficRate = 5.0
)

// Env is a running demo.
type Env struct {
	// DSN of the meshhook database, as the superuser postgres (no password:
	// the cluster listens on loopback only).
	DSN    string
	Server *pgserver.Server
	// Seeded tells whether Start generated the history (false: reused from
	// DataDir).
	Seeded bool
	// Summary of the generated history (zero when reused).
	Summary fixture.Summary

	pool    *pgxpool.Pool
	traffic *fixture.Traffic
	// trafficErr is the last error that stopped the live traffic.
	trafficErr atomic.Pointer[trafficFailure]
	cancel     context.CancelFunc
	done       chan error
	once       sync.Once
	stopErr    error
}

// Traffic returns the live traffic generator (nil when disabled), e.g. to
// read its counters.
func (e *Env) Traffic() *fixture.Traffic { return e.traffic }

// Start starts the cluster, creates and seeds the meshhook database (unless
// DataDir already holds a seeded one) and starts live traffic in a goroutine.
// On error everything started is stopped again.
func Start(ctx context.Context, opts Options) (*Env, error) {
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	if opts.Seed == 0 {
		opts.Seed = DefaultSeed
	}
	if opts.TrafficRate == 0 {
		opts.TrafficRate = DefaultTrafficRate
	}
	spec := fixture.Spec{
		Seed: opts.Seed, Runs: opts.Runs, Workflows: opts.Workflows, Projects: opts.Projects,
		Days: opts.Days, Events: true, Progress: opts.SeedProgress,
	}
	if spec.Runs <= 0 {
		spec.Runs = fixture.DefaultRuns
	}

	progress("starting PostgreSQL")
	srv, err := pgserver.Start(ctx, pgserver.Options{
		Dir:          opts.DataDir,
		CronDatabase: Database,
		// Nothing replicates from the demo: minimal WAL lets the generator
		// skip writing WAL for the tables it fills.
		Settings: map[string]string{"wal_level": "minimal", "max_wal_senders": "0"},
	})
	if err != nil {
		return nil, fmt.Errorf("starting the demo database: %w", err)
	}
	env := &Env{DSN: srv.DSN(Database), Server: srv}
	fail := func(err error) (*Env, error) {
		if env.pool != nil {
			env.pool.Close()
		}
		return nil, errors.Join(err, srv.Stop())
	}

	seeded, err := prepareDatabase(ctx, srv, progress)
	if err != nil {
		return fail(err)
	}
	env.pool, err = pgxpool.New(ctx, env.DSN)
	if err != nil {
		return fail(fmt.Errorf("connecting to the demo database: %w", err))
	}
	if !seeded {
		progress("seeding " + commas(spec.Runs) + " runs")
		gctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
		sum, err := fixture.Generate(gctx, env.pool, spec)
		cancel()
		if err != nil {
			return fail(fmt.Errorf("seeding the demo database: %w", err))
		}
		env.Seeded, env.Summary = true, sum
		progress(fmt.Sprintf("seeded %s runs, %s events in %.1fs", commas(int(sum.Runs)), commas(int(sum.Events)), sum.Elapsed.Seconds()))
	} else {
		progress("reusing the seeded database in " + opts.DataDir)
	}

	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	env.cancel = cancel
	env.done = make(chan error, 1)
	if opts.TrafficRate > 0 {
		progress(fmt.Sprintf("starting live traffic (%g runs/s)", opts.TrafficRate))
		env.traffic = fixture.NewTraffic(env.pool, fixture.TrafficSpec{RatePerSec: opts.TrafficRate, Seed: opts.Seed})
		// Partitions first, synchronously: the caller installs meshtop
		// next, and its CREATE INDEX CONCURRENTLY deadlocks with a
		// partition being created at the same time.
		if err := env.traffic.Prepare(ctx); err != nil {
			cancel()
			return fail(err)
		}
		go func() { env.done <- env.runTraffic(tctx) }()
	} else {
		env.done <- nil
	}
	return env, nil
}

// trafficRetry is how long live traffic waits before it starts again
// after an error.
const trafficRetry = 5 * time.Second

// runTraffic runs the live traffic until ctx ends. An error (a statement
// timeout, a lock timeout, the database restarting, meshtop being
// uninstalled under a write) stops one run of the generator, not the demo's
// traffic: it is kept for TrafficErr and the generator starts again after
// trafficRetry. Returns the last error if the traffic was failing when ctx
// ended.
func (e *Env) runTraffic(ctx context.Context) error {
	for {
		err := e.traffic.Run(ctx)
		if ctx.Err() != nil {
			return err
		}
		e.trafficErr.Store(&trafficFailure{err: err, at: time.Now()})
		select {
		case <-ctx.Done():
			return err
		case <-time.After(trafficRetry):
		}
	}
}

type trafficFailure struct {
	err error
	at  time.Time
}

// TrafficErr returns when the last error that stopped the live traffic
// (which then started again) happened, and the error; nil if none did.
func (e *Env) TrafficErr() (time.Time, error) {
	if f := e.trafficErr.Load(); f != nil {
		return f.at, f.err
	}
	return time.Time{}, nil
}

// prepareDatabase creates the meshhook database with the fixture schema if
// needed and reports whether it already holds a seeded history.
func prepareDatabase(ctx context.Context, srv *pgserver.Server, progress func(string)) (seeded bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, srv.DSN("postgres"))
	if err != nil {
		return false, fmt.Errorf("connecting to the demo cluster: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := admin.QueryRow(ctx, "select exists (select from pg_database where datname = $1)", Database).Scan(&exists); err != nil {
		return false, fmt.Errorf("checking for the %s database: %w", Database, err)
	}
	if !exists {
		progress("creating database " + Database)
		if _, err := admin.Exec(ctx, "create database "+pgx.Identifier{Database}.Sanitize()); err != nil {
			return false, fmt.Errorf("creating the %s database: %w", Database, err)
		}
	}
	conn, err := pgx.Connect(ctx, srv.DSN(Database))
	if err != nil {
		return false, fmt.Errorf("connecting to the %s database: %w", Database, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var hasSchema bool
	if err := conn.QueryRow(ctx, "select to_regclass('public.workflow_runs') is not null").Scan(&hasSchema); err != nil {
		return false, fmt.Errorf("checking the MeshHook schema: %w", err)
	}
	if !hasSchema {
		progress("creating the MeshHook schema")
		if err := fixture.ApplySchema(ctx, conn); err != nil {
			return false, err
		}
	}
	if srv.HasCron {
		// As on Supabase, where pg_cron is an extension away.
		if _, err := conn.Exec(ctx, "create extension if not exists pg_cron"); err != nil {
			return false, fmt.Errorf("creating the pg_cron extension: %w", err)
		}
	}
	if err := conn.QueryRow(ctx, "select exists (select from public.workflow_runs)").Scan(&seeded); err != nil {
		return false, fmt.Errorf("checking for a seeded history: %w", err)
	}
	return seeded, nil
}

// Stop stops the live traffic (finishing its runs in flight), then the
// server, and removes the cluster's directory unless Options.DataDir was
// given. It is safe to call more than once; later calls return the first
// call's result.
func (e *Env) Stop() error {
	e.once.Do(func() {
		var errs []error
		if e.cancel != nil {
			e.cancel()
			select {
			case err := <-e.done:
				if err != nil {
					errs = append(errs, fmt.Errorf("live traffic: %w", err))
				}
			case <-time.After(30 * time.Second):
				errs = append(errs, errors.New("live traffic did not stop within 30s"))
			}
		}
		if e.pool != nil {
			e.pool.Close()
		}
		if err := e.Server.Stop(); err != nil {
			errs = append(errs, err)
		}
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}

// Root is the cluster's directory (removed by Stop unless it is DataDir).
func (e *Env) Root() string { return e.Server.Root }

// PostmasterPID reads the server's process id from postmaster.pid (0 when
// the server is not running).
func (e *Env) PostmasterPID() int {
	b, err := os.ReadFile(filepath.Join(e.Server.Root, "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	return pid
}

// commas formats n with thousands separators: 200000 → "200,000".
func commas(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
