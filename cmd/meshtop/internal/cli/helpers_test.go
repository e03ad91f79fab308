package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// anchor is the fixed "now" of every test data set and the pinned clock.
var anchor = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

// secret is the password of the test's LOGIN roles; it must never show up
// in any output.
const secret = "S3cr3t-pw-xyz"

// syncBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// result is what one in-process run of meshtop produced.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

type runOpts struct {
	env   map[string]string
	stdin string
	tty   bool
	clock func() time.Time
}

// run runs meshtop in-process with args and a clean environment.
func run(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return runCtx(ctx, o, args...)
}

func runCtx(ctx context.Context, o runOpts, args ...string) result {
	var stdout, stderr syncBuffer
	return runInto(ctx, o, &stdout, &stderr, args...)
}

func runInto(ctx context.Context, o runOpts, stdout, stderr *syncBuffer, args ...string) result {
	clock := o.clock
	if clock == nil {
		clock = func() time.Time { return anchor }
	}
	code := Main(ctx, args, IO{
		Stdin:      strings.NewReader(o.stdin),
		Stdout:     stdout,
		Stderr:     stderr,
		Getenv:     func(k string) string { return o.env[k] },
		IsTerminal: func(any) bool { return o.tty },
		Clock:      clock,
		Build:      BuildInfo{Version: "1.2.3", Commit: "abc1234"},
	})
	return result{stdout.String(), stderr.String(), code}
}

// must fails the test unless the run exited with code.
func (r result) must(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got %s", code, r)
	}
	return r
}

// seeded returns a database with a small deterministic MeshHook history.
func seeded(t *testing.T) *pgtest.DB {
	t.Helper()
	return seed(t, pgtest.NewDatabase(t))
}

// seed fills db with the history of seeded.
func seed(t *testing.T, db *pgtest.DB) *pgtest.DB {
	t.Helper()
	return seedWith(t, db, false)
}

// seedWith fills db with the history of seeded, with its step events when
// events is set (only status --json shows steps; the other tests save the
// events' time).
func seedWith(t *testing.T, db *pgtest.DB, events bool) *pgtest.DB {
	t.Helper()
	// The bounds of the helpers are hang guards, not timing assertions:
	// dozens of parallel tests share the machine.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := fixture.Generate(ctx, db.Pool, fixture.Spec{
		Seed: 42, Projects: 2, Workflows: 6, Runs: 3000, Days: 10, Anchor: anchor, Events: events,
	}); err != nil {
		t.Fatalf("generating fixture: %v", err)
	}
	return db
}

// installed returns a seeded database with meshtop installed and the
// metrics clock pinned to anchor (not yet refreshed).
func installed(t *testing.T) *pgtest.DB {
	t.Helper()
	return installInto(t, seeded(t))
}

// installInto installs meshtop into db and pins its metrics clock to anchor.
func installInto(t *testing.T, db *pgtest.DB) *pgtest.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	in := install.New(db.Pool, "metrics")
	if _, err := in.Apply(ctx, nil); err != nil {
		t.Fatalf("installing: %v", err)
	}
	setClock(t, db, anchor)
	return db
}

func setClock(t *testing.T, db *pgtest.DB, at time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := install.New(db.Pool, "metrics").SetClock(ctx, &at); err != nil {
		t.Fatalf("pinning the clock: %v", err)
	}
}

// refreshed returns an installed database refreshed at anchor.
func refreshed(t *testing.T) *pgtest.DB {
	t.Helper()
	db := installed(t)
	run(t, runOpts{}, "refresh", "--dsn", db.DSN).must(t, 0)
	return db
}

var roleMu sync.Mutex
var rolesMade = map[string]bool{}

// loginRole creates (once per cluster) a LOGIN role with password secret,
// granted the given roles, and returns its DSN for db.
func loginRole(t *testing.T, db *pgtest.DB, name string, grants ...string) string {
	t.Helper()
	roleMu.Lock()
	defer roleMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if !rolesMade[name] {
		if _, err := db.Pool.Exec(ctx, fmt.Sprintf("create role %s login password '%s'", name, secret)); err != nil {
			t.Fatalf("creating role %s: %v", name, err)
		}
		rolesMade[name] = true
	}
	for _, g := range grants {
		if _, err := db.Pool.Exec(ctx, fmt.Sprintf("grant %s to %s", g, name)); err != nil {
			t.Fatalf("granting %s to %s: %v", g, name, err)
		}
	}
	return db.Srv.UserDSN(db.Name, name, secret)
}

// noSecret fails if the password shows up anywhere in r.
func noSecret(t *testing.T, r result) {
	t.Helper()
	if strings.Contains(r.stdout, secret) || strings.Contains(r.stderr, secret) {
		t.Errorf("password leaked:\n%s", r)
	}
}

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
