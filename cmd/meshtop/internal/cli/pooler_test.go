package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

// poolerLine is the one line every session-needing command answers with
// through a transaction pooler.
var poolerLine = "meshtop: " + store.ErrNeedsSession.Error() + "\n"

// noPgxInternals fails if pgx's statement names or the SQLSTATEs of a
// prepared-statement clash reach the user.
func noPgxInternals(t *testing.T, r result) {
	t.Helper()
	for _, s := range []string{"stmtcache_", "42P05", "26000", "prepared statement"} {
		if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
			t.Fatalf("pgx internals (%s) reached the user:\n%s", s, r)
		}
	}
}

// refreshLogRows counts the rows of the refresh log, directly.
func refreshLogRows(t *testing.T, db *pgtest.DB) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := db.Pool.QueryRow(ctx, "select count(*) from metrics.refresh_log").Scan(&n); err != nil {
		t.Fatalf("counting the refresh log: %v", err)
	}
	return n
}

// TestTransactionPoolerReads: through PgBouncer in transaction mode, status,
// status --json and check succeed every time (each run is a new client that
// PgBouncer hands a pooled server session, where pgx's named statements of
// the previous run would clash), print what they print directly, and status
// says once on stderr what the pooler means.
func TestTransactionPoolerReads(t *testing.T) {
	db := refreshed(t)
	pooled := pgtest.PgBouncer(t, "transaction").DSN(db.Name)
	want := map[string]result{}
	cmds := [][]string{{"status"}, {"status", "--json"}, {"check"}}
	for _, args := range cmds {
		want[strings.Join(args, " ")] = run(t, runOpts{}, append(args, "--dsn", db.DSN)...)
	}
	for i := 0; i < 8; i++ {
		for _, args := range cmds {
			name := strings.Join(args, " ")
			r := run(t, runOpts{}, append(args, "--dsn", pooled)...)
			noPgxInternals(t, r)
			w := want[name]
			// The capture log's age ticks between the runs (check's
			// perfdata, status's capture lag).
			if r.code != w.code || ageless(r.stdout) != ageless(w.stdout) {
				t.Fatalf("%s through the pooler (run %d) differs from the direct run:\ndirect: %s\npooled: %s", name, i, w, r)
			}
			if args[0] == "status" {
				note := "meshtop: note: " + store.ErrNeedsSession.Error() + "\n"
				if r.stderr != note {
					t.Fatalf("%s through the pooler: stderr %q, want the one note %q", name, r.stderr, note)
				}
			}
		}
	}
	if want["status"].code != 0 || want["status --json"].code != 0 {
		t.Fatalf("status failed directly: %s", want["status"])
	}
}

// TestTransactionPoolerRefusesWrites: refresh, install, uninstall and
// schedule changes refuse through a transaction pooler with the one line and
// exit 2, before touching anything: no refresh log row, no advisory lock
// left on a pooled server session, the schema still there.
func TestTransactionPoolerRefusesWrites(t *testing.T) {
	db := refreshed(t)
	pooled := pgtest.PgBouncer(t, "transaction").DSN(db.Name)
	before := refreshLogRows(t, db)
	for _, args := range [][]string{
		{"refresh"},
		{"refresh", "--view", store.ViewMetrics, "--wait"},
		{"refresh", "--every", "1s"},
		{"install"},
		{"uninstall", "--yes"},
		{"schedule", "--every", "1m"},
		{"schedule", "--off"},
	} {
		r := run(t, runOpts{}, append(args, "--dsn", pooled)...).must(t, ExitNeedsSession)
		if r.stderr != poolerLine || r.stdout != "" {
			t.Fatalf("%v through the pooler: want only %q on stderr, got %s", args, poolerLine, r)
		}
		if n := db.AdvisoryLocks(t); n != 0 {
			t.Fatalf("%v left %d advisory lock(s) on the server", args, n)
		}
	}
	if after := refreshLogRows(t, db); after != before {
		t.Fatalf("the refresh log went from %d to %d rows: a refusal touched the database", before, after)
	}
	// On a terminal, uninstall refuses before asking.
	r := run(t, runOpts{tty: true, stdin: "y\n"}, "uninstall", "--dsn", pooled).must(t, ExitNeedsSession)
	if r.stderr != poolerLine {
		t.Fatalf("interactive uninstall through the pooler: want only %q on stderr, got %s", poolerLine, r)
	}
	// Reading the schedule and the install plan are reads: they work, the
	// plan with the note that applying it needs a session.
	r = run(t, runOpts{}, "schedule", "--show", "--dsn", pooled).must(t, 0)
	noPgxInternals(t, r)
	fresh := pgtest.NewDatabase(t)
	direct := run(t, runOpts{}, "install", "--dry-run", "--dsn", fresh.DSN).must(t, 0)
	r = run(t, runOpts{}, "install", "--dry-run", "--dsn", pgtest.PgBouncer(t, "transaction").DSN(fresh.Name)).must(t, 0)
	if !strings.Contains(direct.stdout, "CREATE MATERIALIZED VIEW") || r.stdout != direct.stdout || r.stderr != "meshtop: note: "+store.ErrNeedsSession.Error()+"\n" {
		t.Fatalf("install --dry-run through the pooler:\ndirect: %s\npooled: %s", direct, r)
	}
	// And the views are still installed and readable.
	run(t, runOpts{}, "status", "--dsn", db.DSN).must(t, 0)
}

// TestSessionPoolerLikeDirect: PgBouncer in session mode keeps each client
// on one server session, so everything works as on a direct connection,
// refresh included, with no note and no lock left behind.
func TestSessionPoolerLikeDirect(t *testing.T) {
	db := installed(t)
	pooled := pgtest.PgBouncer(t, "session").DSN(db.Name)
	for i := 0; i < 3; i++ {
		r := run(t, runOpts{}, "refresh", "--dsn", pooled).must(t, 0)
		if strings.Count(r.stdout, " ok ") != 3 || r.stderr != "" {
			t.Fatalf("refresh through a session pooler (run %d):\n%s", i, r)
		}
		if n := db.AdvisoryLocks(t); n != 0 {
			t.Fatalf("refresh through a session pooler left %d advisory lock(s)", n)
		}
		for _, args := range [][]string{{"status"}, {"check"}, {"schedule", "--show"}} {
			w := run(t, runOpts{}, append(args, "--dsn", db.DSN)...)
			r := run(t, runOpts{}, append(args, "--dsn", pooled)...)
			noPgxInternals(t, r)
			if r.stderr != "" || r.code != w.code || ageless(r.stdout) != ageless(w.stdout) {
				t.Fatalf("%v through a session pooler differs from the direct run:\ndirect: %s\npooled: %s", args, w, r)
			}
		}
	}
	direct := run(t, runOpts{}, "status", "--json", "--dsn", db.DSN).must(t, 0)
	viaPooler := run(t, runOpts{}, "status", "--json", "--dsn", pooled).must(t, 0)
	if direct.stdout != viaPooler.stdout {
		t.Fatalf("status --json differs through a session pooler:\ndirect: %s\npooled: %s", direct.stdout, viaPooler.stdout)
	}
}

// agesRE matches the ages that tick between two runs of the same command.
var agesRE = regexp.MustCompile(`(capture_age=|wal_lag=)\d+s|"lag_seconds": [0-9.]+|consumed [0-9a-z]+ ago`)

// ageless masks them.
func ageless(s string) string { return agesRE.ReplaceAllString(s, "${1}…") }
