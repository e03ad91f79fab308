package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
)

// cliPassword is in every DSN of the CLI error-path test; it must never be
// printed.
const cliPassword = "S3cr3t-cli-pw-7731"

type cliRun struct {
	args   []string
	env    []string
	code   int
	stdout string
	stderr string
}

func runCLI(t *testing.T, ctx context.Context, env []string, args ...string) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, meshtopBinary(t), args...)
	// A clean environment: no DATABASE_URL or PG* from the test runner.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliRun{args: args, env: env, stdout: out.String(), stderr: errb.String()}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else {
			t.Fatalf("meshtop %v: %v", args, err)
		}
	}
	return r
}

// TestCLIErrorPathsNeverShowPasswords runs every error path of the CLI with
// a DSN carrying a password, both from --dsn and from DATABASE_URL: each
// fails with one line on stderr, a non-zero exit, and no password anywhere
// (stdout, stderr, the server log).
func TestCLIErrorPathsNeverShowPasswords(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 5*time.Minute)
	db := pgtest.NewDatabase(t)                  // MeshHook tables, meshtop installed below
	bare := pgtest.NewDatabase(t)                // MeshHook tables, meshtop not installed
	empty := pgtest.NewDatabase(t, pgtest.Empty) // no MeshHook tables
	if _, err := install.New(db.Pool, "metrics").Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	srv := db.Srv
	suffix := db.Name
	reader := "rel_cli_reader_" + suffix
	createLoginRole(t, ctx, db.Pool, reader, cliPassword, "meshtop_reader")
	for _, d := range []string{db.Name, bare.Name, empty.Name} {
		if _, err := db.Pool.Exec(ctx, fmt.Sprintf("grant connect on database %s to %s", qident(d), qident(reader))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := empty.Pool.Exec(ctx, "grant create on database "+qident(empty.Name)+" to "+qident(reader)); err != nil {
		t.Fatal(err)
	}
	good := srv.UserDSN(db.Name, reader, cliPassword)
	dsns := map[string]string{
		"wrong password":   srv.UserDSN(db.Name, reader, cliPassword+"-wrong"),
		"unknown role":     srv.UserDSN(db.Name, "nobody_"+suffix, cliPassword),
		"unknown database": srv.UserDSN("no_such_db_"+suffix, reader, cliPassword),
		"refused port":     fmt.Sprintf("postgres://%s:%s@127.0.0.1:1/%s?sslmode=disable&connect_timeout=5", reader, cliPassword, db.Name),
		"unknown host":     fmt.Sprintf("postgres://%s:%s@no-such-host.invalid/%s?connect_timeout=5", reader, cliPassword, db.Name),
		"bad port syntax":  fmt.Sprintf("postgres://%s:%s@127.0.0.1:notaport/%s", reader, cliPassword, db.Name),
		"bad url syntax":   fmt.Sprintf("postgres://%s:%s@[::1/%s", reader, cliPassword, db.Name),
		"bad kv syntax":    fmt.Sprintf("host=127.0.0.1 user=%s password=%s port=abc", reader, cliPassword),
		"bad kv quoting":   fmt.Sprintf("host=127.0.0.1 user=%s password='%s", reader, cliPassword),
		"bad sslmode":      srv.UserDSN(db.Name, reader, cliPassword) + "&sslmode=bogus",
		"tls required":     strings.Replace(srv.UserDSN(db.Name, reader, cliPassword), "sslmode=disable", "sslmode=require", 1),
		"not installed":    srv.UserDSN(bare.Name, reader, cliPassword),
		"no meshhook":      srv.UserDSN(empty.Name, reader, cliPassword),
		"reader refreshes": good,
	}
	commands := [][]string{
		{"status"}, {"status", "--json"}, {"check"}, {"refresh"}, {"install"}, {"install", "--dry-run"},
		{"uninstall", "--yes"}, {"schedule", "--show"}, {"schedule", "--every", "1m"},
	}
	// Usage errors, with a good DSN carrying the password.
	usage := [][]string{
		{"status", "--window", "2d"}, {"check", "--max-lag", "soon"}, {"check", "--min-success-rate", "1.5"},
		{"refresh", "--view", "mv_nope"}, {"refresh", "--every", "-1s"}, {"--no-such-flag"}, {"status", "--schema", "public"},
		{"status", "--schema", `x"; drop table public.projects; --`}, {"uninstall"}, {"install", "--read-only"}, {"refresh", "--read-only"},
		{"serve", "--metrics-windows", "2d"}, {"serve", "--ssh-listen", "127.0.0.1:0"}, {"serve", "--read-only", "--refresh-every", "1m"},
		{}, // the dashboard without a terminal
	}
	type probe struct {
		name string
		r    cliRun
	}
	var probes []probe
	for name, dsn := range dsns {
		for _, c := range commands {
			if name == "reader refreshes" && c[0] != "refresh" && c[0] != "install" && c[0] != "uninstall" && c[0] != "schedule" {
				continue // those succeed for a reader
			}
			probes = append(probes,
				probe{name + " via --dsn", runCLI(t, ctx, nil, append([]string{"--dsn", dsn}, c...)...)},
				probe{name + " via DATABASE_URL", runCLI(t, ctx, []string{"DATABASE_URL=" + dsn}, c...)})
		}
	}
	for _, c := range usage {
		probes = append(probes, probe{"usage", runCLI(t, ctx, []string{"DATABASE_URL=" + good}, c...)})
	}
	tried, failed, succeeded := 0, 0, 0
	for _, p := range probes {
		r := p.r
		tried++
		what := fmt.Sprintf("%s: meshtop %s", p.name, strings.Join(r.args, " "))
		all := r.stdout + r.stderr
		if strings.Contains(all, cliPassword) {
			t.Errorf("%s: the password is in the output:\n%s", what, all)
		}
		if r.code == 0 {
			// Not an error after all (uninstall where nothing is installed,
			// schedule --show without pg_cron, install already up to date,
			// a dry run): only the password check applies.
			succeeded++
			continue
		}
		// One line says what went wrong: on stderr, or for check (a
		// monitoring plugin) the status line on stdout.
		msg := strings.TrimSpace(r.stderr)
		if msg == "" && len(r.args) > 0 && (r.args[0] == "check" || (len(r.args) > 2 && r.args[2] == "check")) {
			msg = strings.TrimSpace(r.stdout)
		}
		if msg == "" || (strings.Count(msg, "\n") > 0 && !slices.Contains(r.args, "--no-such-flag")) {
			t.Errorf("%s: exit %d, want one line saying what went wrong, got:\nstdout: %s\nstderr: %s", what, r.code, r.stdout, r.stderr)
		}
		failed++
		if strings.Contains(all, "goroutine ") || strings.Contains(all, "panic:") {
			t.Errorf("%s: a stack trace:\n%s", what, all)
		}
	}
	if strings.Contains(srv.LogTail(1000000), cliPassword) {
		t.Errorf("the password is in the server log")
	}
	var projects bool
	if err := db.Pool.QueryRow(ctx, "select to_regclass('public.projects') is not null").Scan(&projects); err != nil || !projects {
		t.Errorf("public.projects is gone (%v)", err)
	}
	report.add("bad_inputs.cli_error_paths", int64(tried))
	t.Logf("%d CLI invocations with a password in the DSN (%d failed with one line, %d were not errors), none printed the password", tried, failed, succeeded)
}
