// Command gendoc runs the reliability suite and a fuzz run of every fuzz
// target in the module, then rewrites docs/RELIABILITY.md from what they
// measured: every figure in that file comes from this run.
//
//	go run ./data/reliability/gendoc [-out docs/RELIABILITY.md] [-fuzztime 10s]
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

type report struct {
	Counts map[string]int64 `json:"counts"`
}

type fuzzResult struct {
	pkg, target string
	execs       int64
	elapsed     string
	ok          bool
}

func main() {
	out := flag.String("out", "docs/RELIABILITY.md", "file to write")
	fuzztime := flag.Duration("fuzztime", 10*time.Second, "fuzz time per target")
	flag.Parse()
	if err := run(*out, *fuzztime); err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
}

func run(out string, fuzztime time.Duration) error {
	tmp, err := os.CreateTemp("", "reliability-report-*.json")
	if err != nil {
		return err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())

	started := time.Now()
	fmt.Fprintln(os.Stderr, "gendoc: go test -count=1 ./data/reliability/")
	cmd := exec.Command("go", "test", "-count=1", "-timeout", "30m", "-v", "./data/reliability/")
	cmd.Env = append(os.Environ(), "RELIABILITY_REPORT="+tmp.Name())
	var testLog bytes.Buffer
	cmd.Stdout = io.MultiWriter(&testLog, os.Stderr)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("the reliability suite failed (no document written): %w", err)
	}
	suiteTime := time.Since(started)
	b, err := os.ReadFile(tmp.Name())
	if err != nil {
		return fmt.Errorf("reading the suite's report: %w", err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("parsing the suite's report: %w", err)
	}
	tests := testDurations(testLog.String())

	fuzz, err := runFuzz(fuzztime)
	if err != nil {
		return err
	}
	doc := render(rep, tests, suiteTime, fuzz, fuzztime)
	if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "gendoc: wrote", out)
	return nil
}

var testLine = regexp.MustCompile(`^--- (PASS|FAIL): (\S+) \(([0-9.]+)s\)`)

func testDurations(log string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		if s := testLine.FindStringSubmatch(line); s != nil {
			m[s[2]] = s[3] + " s"
		}
	}
	return m
}

var execsLine = regexp.MustCompile(`fuzz: elapsed: (\S+), execs: (\d+)`)

// runFuzz runs every Fuzz target of every package, like `make fuzz`, and
// keeps the last execs figure each printed.
func runFuzz(fuzztime time.Duration) ([]fuzzResult, error) {
	list, err := exec.Command("go", "list", "./...").Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	var results []fuzzResult
	for _, pkg := range strings.Fields(string(list)) {
		names, err := exec.Command("go", "test", "-list", "^Fuzz", pkg).Output()
		if err != nil {
			return nil, fmt.Errorf("listing fuzz targets of %s: %w", pkg, err)
		}
		for _, name := range strings.Fields(string(names)) {
			if !strings.HasPrefix(name, "Fuzz") {
				continue
			}
			fmt.Fprintf(os.Stderr, "gendoc: fuzz %s %s\n", pkg, name)
			cmd := exec.Command("go", "test", "-run", "^$", "-fuzz", "^"+name+"$", "-fuzztime", fuzztime.String(), pkg)
			outb, err := cmd.CombinedOutput()
			r := fuzzResult{pkg: pkg, target: name, ok: err == nil}
			sc := bufio.NewScanner(bytes.NewReader(outb))
			for sc.Scan() {
				if m := execsLine.FindStringSubmatch(sc.Text()); m != nil {
					r.elapsed = m[1]
					r.execs, _ = strconv.ParseInt(m[2], 10, 64)
				}
			}
			if !r.ok {
				return nil, fmt.Errorf("fuzz %s %s failed:\n%s", pkg, name, outb)
			}
			results = append(results, r)
		}
	}
	return results, nil
}

func render(rep report, tests map[string]string, suiteTime time.Duration, fuzz []fuzzResult, fuzztime time.Duration) string {
	c := rep.Counts
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	host, _ := os.Hostname()
	w("# Reliability and security: figures of the last run\n\n")
	w("Written by `go run ./data/reliability/gendoc` on %s (%s, %d CPUs, %s), which ran the suite in `data/reliability` (%s) and a %s fuzz run of every fuzz target. Every figure below is a count from that run; the same tests run in `make test` (and so in `.ci/run`) on every change. Rerun the generator to refresh this file.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), host, runtime.NumCPU(), runtime.Version(), suiteTime.Round(time.Second), fuzztime)

	w("## Summary\n\n| What | Figure | Reproduce |\n|---|---|---|\n")
	w("| Interrupted refreshes injected and survived | **%d** of %d | `go test -count=1 -run 'TestInterruptedRefreshes|TestRestarts' ./data/reliability/` |\n", c["interruptions.total"], c["interruptions.total"])
	w("| Database restarts survived (during refreshes, under `refresh --every`, under the dashboard) | **%d** (%d + %d + %d) | `go test -count=1 -run TestRestarts -v ./data/reliability/` |\n",
		c["restarts.during_refresh"]+c["restarts.under_cli"]+c["restarts.under_dashboard"], c["restarts.during_refresh"], c["restarts.under_cli"], c["restarts.under_dashboard"])
	w("| Concurrent refresh callers, with live MeshHook traffic | **%d** callers for %d s: %d calls, %d log rows | `go test -count=1 -run TestConcurrentRefreshes -v ./data/reliability/` |\n",
		c["concurrency.callers"], c["concurrency.seconds"], c["concurrency.calls"], c["concurrency.log_rows"])
	bad := c["bad_inputs.schema_names"] + c["bad_inputs.schema_installs"] + c["bad_inputs.cli_error_paths"] + c["bad_inputs.standby_writes"]
	w("| Bad inputs tried (hostile schema names, CLI error paths with a password in the DSN, writes against a standby) | **%d** | `go test -count=1 -run 'TestHostile|TestCLIErrorPaths|TestReplica' ./data/reliability/` |\n", bad)
	w("| Privilege probes by anon/authenticated (all denied) | **%d** attempts on %d objects | `go test -count=1 -run TestAPIRolesDeniedEverywhere -v ./data/reliability/` |\n", c["security.denied_attempts"], c["security.objects_probed"])
	var execs int64
	for _, f := range fuzz {
		execs += f.execs
	}
	w("| Fuzz executions | **%d** over %d targets | `make fuzz` (or the per-target commands below) |\n", execs, len(fuzz))
	w("| Rows lost | **%d** | every test above |\n\n", c["rows_lost"])

	w("## Interruptions by kind\n\nEach one: the views keep exactly their previous contents (md5 of every row, after the data and the pinned clock moved so that a refresh that secretly succeeded would show), the attempt is logged `failed` (cancel, timeouts) or reads `interrupted` in `refresh_log_v` (terminate, crash), no guard lock or refreshing backend is left (`pg_locks`, `pg_stat_activity`), the next refresh succeeds and every view equals its ground truth (`sql/queries/live_*.sql`, `EXCEPT ALL` both ways), and the interrupted view's contents then change.\n\n| Kind | Survived |\n|---|---|\n")
	var kinds []string
	for k := range c {
		if strings.HasPrefix(k, "interruptions.") && k != "interruptions.total" {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		w("| %s | %d |\n", strings.TrimPrefix(k, "interruptions."), c[k])
	}
	w("| **total** | **%d** |\n\n", c["interruptions.total"])
	w("Points reached: the first (plain) refresh while it waits for the view's lock; a CONCURRENTLY refresh waiting for the view's lock (held by a session's `COMMENT ON MATERIALIZED VIEW` in an open transaction: `LOCK TABLE` refuses materialized views); holding the view's lock while waiting for a base-table lock; and while computing, at three points every refresh passes once it holds its locks (the dirty-key log consumed; the window cells written; the REFRESH done and its log row written, before commit), where a test-only trigger makes the refresh wait for an advisory lock the test holds until the interruption lands — so a refresh of 20 ms is caught as surely as one of 20 s. Restarts use `pg_ctl restart -m immediate` on a cluster of the test's own with `fsync` and `synchronous_commit` on (with them off, as the shared test cluster runs, a crash can lose the committed `running` row — which production settings never do).\n\n")

	w("## Restarts under the CLI and the dashboard\n\n`meshtop refresh --every 1s` (the binary, password in `DATABASE_URL`) and the dashboard (`tui.New` driven by teatest, 1 s poll) each saw the database stopped with `-m immediate` and started again, and restarted in one step: both kept running, showed the outage (a `failed` line on stderr; the `reconnecting` banner over the last data) and resumed within 5 s of the database returning (the dashboard once after a 10 s outage): slowest resume %d ms for the CLI, %d ms for the dashboard. The CLI exits 0 on SIGTERM. `/proc/PID/cmdline` of the CLI does not contain the password; stdout, stderr and the server log never do.\n\n", c["restarts.cli_resume_ms_max"], c["restarts.dashboard_resume_ms_max"])

	w("## Concurrency\n\n%d callers (all views or one, a third with `wait`) for %d s (30 s chosen to keep `make test` short) against live traffic (`fixture.NewTraffic`, 20 runs/s, statement_timeout 5 s = meshtop's lock_timeout), sampled every 50 ms (%d samples):\n\n",
		c["concurrency.callers"], c["concurrency.seconds"], c["concurrency.samples"])
	w("- at most **%d** backend inside `refresh_run` for any one view at a time, at most one holder of a view's refresh lock; 'ok' log intervals of a view never overlap;\n", c["concurrency.max_refreshing_per_view"])
	w("- %d calls → %d ok and %d skipped log rows, every returned log id present with a final state and every new log row returned to a caller: **%d lost**; no deadlock (40P01) and no error;\n", c["concurrency.calls"], c["concurrency.ok"], c["concurrency.skipped"], c["rows_lost"])
	w("- traffic wrote %d runs; its longest lock wait seen was %d ms (bound: 5 s), and no traffic statement failed.\n\n", c["concurrency.traffic_runs"], c["concurrency.traffic_max_lock_wait_ms"])

	w("## Replica\n\nA streaming replica (`pg_basebackup -R` via `pgserver.StartStandby`): the store reads metrics from it, a refresh on the primary becomes visible there (data-as-of and checksums match the primary, ground truth holds on the standby), replication lag is reported (`ServerInfo.ReplicationLag`), and install into a new schema, refresh, uninstall and schedule against it fail with one line (API through `conn.Explain`, and the CLI) — %d attempts.\n\n", c["bad_inputs.standby_writes"])

	w("## Security\n\n")
	w("- **anon, authenticated, PUBLIC**: no ACL entry for PUBLIC on the schema or any object in it; `has_*_privilege` false for anon and authenticated on all %d objects (tables, views, materialized views, sequence, functions, procedure); and %d real attempts (select / execute / call each object, first as set up, then with USAGE on the schema granted in a rolled-back transaction) all denied with 42501.\n", c["security.objects_probed"], c["security.denied_attempts"])
	w("- **meshtop_reader** reads the views, log and status (and `store.Overview` works) but cannot refresh (store error names `meshtop_refresher`), REFRESH directly, write the log or config, or read `public.secrets`; **meshtop_refresher** refreshes (store and `CALL refresh()`); **meshtop_tenant** through `tenant_workflow_metrics` sees exactly its own projects' rows, with `request.jwt.claim.sub` or `request.jwt.claims` set as Supabase does, nothing without a claim or with another uuid, and cannot read the view directly.\n")
	w("- **Tenant API on MeshHook's own `user_project_ids()`** (unqualified `projects`, no `SET search_path`; and a qualified variant): as `authenticated` (SET ROLE, JWT in `request.jwt.claims` as PostgREST sets it, the function granted to it) each subject gets exactly its own projects' rows (one owns two projects), no subject or an unknown one none, `anon` 42501; with a table `projects`, a `user_project_ids()`, `uid()` look-alikes and an always-true `uuid = uuid` planted in every schema the caller can create in (its own, `public` with CREATE granted, its temp schema) and put first on its search_path, the results are identical and nothing planted runs.\n")
	w("- **search_path**: %d planted objects (functions shadowing `now`, `hashtext`, `pg_advisory_*`, `set_config`, `format`, meshtop's own helper names…, tables named `refresh_log`, `config`, `pg_locks`…, `=` operators for text/int/bigint, temp tables) in a schema placed before `pg_catalog`: every SECURITY DEFINER function pins its search_path and used none of them; refreshes logged to meshtop's own log at the pinned clock.\n", c["security.planted_objects"])
	w("- The invoker procedure `CALL refresh()` (pg_cron's entry point) run from that hostile session used none of them either, and refreshed every view.\n")
	w("- **Hostile `--schema`**: %d names executed as `create schema` in a real database (each created exactly one schema of exactly that name or was refused) and %d through install → refresh → uninstall; `public.projects` survived every one. Uninstall refuses a schema meshtop did not create.\n", c["bad_inputs.schema_names"], c["bad_inputs.schema_installs"])
	w("- **Passwords**: %d CLI invocations on error paths (wrong password, unknown role/database, refused port, unknown host, bad URL/key-value/port/sslmode syntax, TLS required, not installed, no MeshHook tables, reader refreshing, usage errors), each with a password in `--dsn` and in `DATABASE_URL`: non-zero exit with one line, the password never in stdout, stderr or the server log. A password given with `--dsn` is visible to other local users in `ps` / `/proc/PID/cmdline` like any argument: use `DATABASE_URL`, `~/.pgpass` or a service file.\n\n", c["bad_inputs.cli_error_paths"])

	w("## What this suite found (and the fixes, each its own commit)\n\n")
	w("- `meshtop uninstall --schema auth` (or any schema meshtop did not create) dropped that schema CASCADE — Supabase's `auth` included. Uninstall now refuses a schema without `meshtop_migrations` (`TestUninstallLeavesForeignSchemas`).\n")
	w("- `refresh_run` released the guard before its transaction committed: a second caller could start, queue on the view lock the first still held and fail on lock_timeout, and `refresh_log_v` read the finishing attempt as `interrupted` meanwhile. The guard is now handed to a transaction-level advisory lock first (`TestGuardHeldUntilCommit`; in the concurrency run, calls went up and traffic's lock waits down).\n")
	w("- The `refresh` procedure (SECURITY INVOKER, pg_cron's entry point; it cannot pin search_path because it COMMITs) compared with unqualified operators, which a caller listing its own schema before `pg_catalog` redirected (its own rights only, no escalation). Its operators are now qualified (`TestPlantedSearchPathIgnored`).\n")
	w("- Passwords in malformed DSNs: `conn.Explain` let a password through when pgx's parse error quoted a fragment ending in a raw backslash (found by the CLI's `FuzzRedact` in this generator's fuzz run), and `DSNError.Error()` showed the tail of a key/value password typed with an unquoted space (pgx masks only up to the space; found by `FuzzDSNErrorsHidePassword`). Both now elide the connection string entirely; the failing inputs are kept as seeds.\n")
	w("- `tenant_workflow_metrics` called MeshHook's own `user_project_ids()` (unqualified `projects`; the fixture had a tidied, qualified copy) under its pinned `pg_catalog, pg_temp`: every call failed with `relation \"projects\" does not exist`, and a caller who created a temp table `projects` listing other projects' ids as its own got their metrics (a named pg_temp is searched for relations). Migration 008 calls it through a helper pinned to `pg_catalog, public, pg_temp`; the fixture now has MeshHook's definition (`TestTenantAPIWithMeshHookDefinitions`).\n")
	w("- The dashboard's reconnect back-off grew to 30 s, so after a long outage it could take up to 30 s to resume; capped at 2 s to meet the 5 s bound (`TestRestarts/dashboard`, 10 s outage).\n")
	w("- Test-environment lessons kept in the tests: `LOCK TABLE` refuses materialized views (the blocker uses `COMMENT ON MATERIALIZED VIEW` in an open transaction); with `synchronous_commit=off` a crash can lose the committed `running` row, so restart tests use a durable cluster; and sequences jump by 32 after crash recovery, so log ids are never assumed dense.\n\n")

	w("## Fuzzing\n\nSeeds are committed under each package's `testdata/fuzz`. `make test` runs every target for FUZZTIME (default 10 s).\n\n| Package | Target | Executions | Command |\n|---|---|---|---|\n")
	for _, f := range fuzz {
		w("| %s | %s | %d | `go test -run '^$' -fuzz '^%s$' -fuzztime %s %s` |\n", strings.TrimPrefix(f.pkg, "github.com/meshtop/meshtop/"), f.target, f.execs, f.target, fuzztime, "./"+strings.TrimPrefix(f.pkg, "github.com/meshtop/meshtop/"))
	}
	w("\n## Test durations in this run\n\n| Test | Time |\n|---|---|\n")
	var names []string
	for n := range tests {
		if !strings.Contains(n, "/") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		w("| %s | %s |\n", n, tests[n])
	}
	return b.String()
}
