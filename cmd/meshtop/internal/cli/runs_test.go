package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/workersim"
)

// drillDB is the drill-down scenario (data/workersim: runs as MeshHook's
// workers write them), meshtop installed, the clock pinned at anchor and
// every view refreshed.
func drillDB(t *testing.T) (*pgtest.DB, workersim.Drill) {
	t.Helper()
	db := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := workersim.Scenario(ctx, db.Pool, anchor)
	if err != nil {
		t.Fatal(err)
	}
	installInto(t, db)
	run(t, runOpts{}, "refresh", "--dsn", db.DSN).must(t, 0)
	return db, d
}

// checkGolden compares out with testdata/name (rewritten with -update).
func checkGolden(t *testing.T, name, out string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s (run with -update to create it): %v", path, err)
	}
	if out != string(want) {
		got, exp := strings.Split(out, "\n"), strings.Split(string(want), "\n")
		for i := range max(len(got), len(exp)) {
			g, e := "", ""
			if i < len(got) {
				g = got[i]
			}
			if i < len(exp) {
				e = exp[i]
			}
			if g != e {
				t.Errorf("output differs from %s at line %d:\n got %q\nwant %q\n(run with -update after an intended change)", path, i+1, g, e)
				return
			}
		}
	}
}

// noControl fails when the output carries a character a terminal acts on.
func noControl(t *testing.T, what, out string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\x07", "\u202e", "\r"} {
		if strings.Contains(out, bad) {
			t.Errorf("%s printed %q", what, bad)
		}
	}
	if strings.Contains(out, workersim.PersonalData) {
		t.Errorf("%s printed a response body's personal data", what)
	}
}

// TestRunsAndRun: `runs` lists a workflow's failed runs (by slug or id) and
// its slowest runs, `run` a run's timeline, as text and as the JSON
// documents of docs/JSON.md (goldens); hostile error texts come out as
// visible escapes in text and as \u escapes in JSON that decode to the
// exact text; response bodies never come out.
func TestRunsAndRun(t *testing.T) {
	t.Parallel()
	db, d := drillDB(t)
	dsn := []string{"--dsn", db.DSN}

	r := run(t, runOpts{}, append([]string{"runs", "--workflow", d.W1Slug, "--json"}, dsn...)...).must(t, 0)
	noControl(t, "runs --json", r.stdout)
	checkGolden(t, "runs.golden.json", r.stdout)
	var doc RunsJSON
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SchemaVersion != 1 || doc.List != "failed" || len(doc.Runs) != 2 || doc.Runs[0].RunID != d.Runs["fail-1"] ||
		doc.Runs[1].Step == nil || doc.Runs[1].Step.Error == nil ||
		doc.Runs[1].Step.Error.Raw() != string([]rune(workersim.HostileError)[:500]) || doc.Runs[1].Step.ErrorChars != len([]rune(workersim.HostileError)) {
		t.Errorf("runs --json: %+v", doc)
	}
	r = run(t, runOpts{}, append([]string{"runs", "--workflow", d.W1Slug}, dsn...)...).must(t, 0)
	noControl(t, "runs", r.stdout)
	checkGolden(t, "runs.golden.txt", r.stdout)

	r = run(t, runOpts{}, append([]string{"runs", "--workflow", strings.ToUpper(d.W1), "--slowest", "--limit", "3", "--window", "7d"}, dsn...)...).must(t, 0)
	checkGolden(t, "runs_slowest.golden.txt", r.stdout)

	r = run(t, runOpts{}, append([]string{"run", d.Runs["fail-2"], "--json"}, dsn...)...).must(t, 0)
	noControl(t, "run --json", r.stdout)
	checkGolden(t, "run.golden.json", r.stdout)
	var rd RunJSON
	if err := json.Unmarshal([]byte(r.stdout), &rd); err != nil {
		t.Fatal(err)
	}
	if len(rd.Steps) != 3 || rd.Steps[2].Outcome != "failed" || len(rd.Steps[2].Errors) != 5 || rd.Steps[2].Errors[4].Error.Raw() != workersim.HostileError {
		t.Errorf("run --json: %+v", rd.Steps)
	}
	r = run(t, runOpts{}, append([]string{"run", d.Runs["retry-1"]}, dsn...)...).must(t, 0)
	checkGolden(t, "run_retry.golden.txt", r.stdout)
	r = run(t, runOpts{}, append([]string{"run", d.Runs["fail-2"]}, dsn...)...).must(t, 0)
	noControl(t, "run", r.stdout)
	if !strings.Contains(r.stdout, `attempts 1–5:`) || !strings.Contains(r.stdout, `Error: HTTP 500 \x1b[2J\x1b[31mRED`) ||
		!strings.Contains(r.stdout, "    second line 0123") || !strings.Contains(r.stdout, "0123456789 END\n") {
		t.Errorf("run prints the hostile error otherwise than whole, sanitized, its line break kept:\n%.2000s", r.stdout)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"runs", "--workflow", "no-such-slug"}, `meshtop: no workflow has the slug or id "no-such-slug"`},
		{[]string{"runs"}, "meshtop: --workflow is required"},
		{[]string{"runs", "--workflow", "x", "--failed", "--slowest"}, "exclude each other"},
		{[]string{"runs", "--workflow", "x", "--limit", "201"}, "--limit 201: use 1 to 200"},
		{[]string{"run", workersim.ID("run:none")}, "run not found"},
		{[]string{"run", "not-a-uuid\x1b[2J"}, `not a run id`},
	} {
		r := run(t, runOpts{}, append(c.args, dsn...)...).must(t, 1)
		if !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "\x1b") {
			t.Errorf("%v: want %q, got %s", c.args, c.want, r)
		}
	}
}

// TestRunsAsReaderThroughPoolerAndReplica: a login granted only
// meshtop_reader reads the drill-down (through the definer functions) but
// not MeshHook's tables; through PgBouncer in transaction mode the answers
// are the direct ones; with --replica-dsn the reads go to the replica (here
// a database that has the runs, while --dsn names one where meshtop is not
// even installed).
func TestRunsAsReaderThroughPoolerAndReplica(t *testing.T) {
	t.Parallel()
	db, d := drillDB(t)
	reader := loginRole(t, db, "drill_reader", "meshtop_reader")
	args := func(dsn string, rest ...string) []string { return append(rest, "--dsn", dsn) }
	direct := run(t, runOpts{}, args(db.DSN, "runs", "--workflow", d.W1Slug, "--json")...).must(t, 0)
	directRun := run(t, runOpts{}, args(db.DSN, "run", d.Runs["fail-1"], "--json")...).must(t, 0)

	r := run(t, runOpts{}, args(reader, "runs", "--workflow", d.W1Slug, "--json")...).must(t, 0)
	if r.stdout != direct.stdout {
		t.Errorf("runs as meshtop_reader differs:\n%s\nwant\n%s", r.stdout, direct.stdout)
	}
	run(t, runOpts{}, args(reader, "run", d.Runs["fail-1"], "--json")...).must(t, 0)
	noSecret(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rp, err := pgxpool.New(ctx, reader)
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	for _, q := range []string{"select count(*) from public.workflow_events", "select count(*) from public.workflow_runs",
		"select * from metrics.drill_steps(gen_random_uuid(), now(), now(), false, 10)"} {
		if _, err := rp.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("meshtop_reader ran %q: %v", q, err)
		}
	}

	pooled := pgtest.PgBouncer(t, "transaction").DSN(db.Name)
	for i := range 4 {
		r := run(t, runOpts{}, args(pooled, "runs", "--workflow", d.W1Slug, "--json")...).must(t, 0)
		noPgxInternals(t, r)
		if r.stdout != direct.stdout {
			t.Fatalf("runs through the pooler (run %d) differs:\n%s", i, r)
		}
		r = run(t, runOpts{}, args(pooled, "run", d.Runs["fail-1"], "--json")...).must(t, 0)
		if r.stdout != directRun.stdout {
			t.Fatalf("run through the pooler (run %d) differs:\n%s", i, r)
		}
	}

	bare := pgtest.NewDatabase(t) // MeshHook's tables, no meshtop
	r = run(t, runOpts{}, "runs", "--workflow", d.W1Slug, "--json", "--dsn", bare.DSN, "--replica-dsn", db.DSN).must(t, 0)
	if r.stdout != direct.stdout {
		t.Errorf("runs with --replica-dsn did not read the replica:\n%s", r)
	}
	r = run(t, runOpts{}, "run", d.Runs["fail-1"], "--json", "--dsn", bare.DSN, "--replica-dsn", db.DSN).must(t, 0)
	if r.stdout != directRun.stdout {
		t.Errorf("run with --replica-dsn did not read the replica:\n%s", r)
	}
}
