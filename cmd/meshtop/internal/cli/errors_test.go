package cli

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/meshtop/meshtop/data/pgtest"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestErrorMessages: every failure is one line on stderr saying what went
// wrong and what to do, with a non-zero exit, and the password in the DSN
// never appears anywhere.
func TestErrorMessages(t *testing.T) {
	t.Parallel()
	db := installed(t)
	bare := seeded(t)
	empty := pgtest.NewDatabase(t, pgtest.Empty)
	const user = "meshtop_cli_nogrant"
	dsn := loginRole(t, db, user)
	readerDSN := loginRole(t, db, "meshtop_cli_reader", "meshtop_reader")
	addr := db.Srv.Addr()
	port := freePort(t)

	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"bad DSN syntax", nil, []string{"status", "--dsn", "postgres://" + user + ":" + secret + "@" + "127.0.0.1:notaport/db"}, 1,
			"meshtop: the connection string from --dsn is invalid (invalid port"},
		{"bad DATABASE_URL", map[string]string{"DATABASE_URL": "host=127.0.0.1 password='" + secret}, []string{"status"}, 1,
			"meshtop: the connection string from DATABASE_URL is invalid (failed to parse as keyword/value: unterminated quoted string"},
		{"unreachable port", nil, []string{"status", "--dsn", fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/db?sslmode=disable", user, secret, port)}, 1,
			fmt.Sprintf("meshtop: connection refused by %s@127.0.0.1:%d/db: is PostgreSQL running there and listening on that port?", user, port)},
		{"unknown host", nil, []string{"status", "--dsn", "postgres://" + user + ":" + secret + "@no-such-host.invalid/db?connect_timeout=5"}, 1,
			`meshtop: cannot resolve host "no-such-host.invalid"`},
		{"wrong password", nil, []string{"status", "--dsn", db.Srv.UserDSN(db.Name, user, secret+"-nope")}, 1,
			fmt.Sprintf(`meshtop: password authentication failed for user %q at %s@%s/%s: check the user name and password`, user, user, addr, db.Name)},
		{"unknown role", nil, []string{"status", "--dsn", db.Srv.UserDSN(db.Name, "meshtop_cli_nobody", secret)}, 1,
			`meshtop: password authentication failed for user "meshtop_cli_nobody"`},
		{"unknown database", nil, []string{"status", "--dsn", db.Srv.UserDSN("no_such_db", user, secret)}, 1,
			fmt.Sprintf(`meshtop: database "no_such_db" does not exist at %s@%s/no_such_db: check the database name`, user, addr)},
		{"no MeshHook tables", nil, []string{"install", "--dsn", empty.Srv.UserDSN(empty.Name, user, secret)}, 1,
			"meshtop: database " + empty.Name + " has no MeshHook tables (public.projects, public.workflow_definitions, public.workflow_runs and public.workflow_events are missing); connect to the MeshHook database"},
		// Issue 24.9: every command says what status and check say of a
		// database without MeshHook's tables, not "run meshtop install".
		{"refresh without MeshHook tables", nil, []string{"refresh", "--dsn", empty.Srv.UserDSN(empty.Name, user, secret)}, 1,
			"meshtop: database " + empty.Name + " has no MeshHook tables"},
		{"refresh --every without MeshHook tables", nil, []string{"refresh", "--every", "1s", "--dsn", empty.Srv.UserDSN(empty.Name, user, secret)}, 1,
			"meshtop: database " + empty.Name + " has no MeshHook tables"},
		{"verify without MeshHook tables", nil, []string{"verify", "--dsn", empty.Srv.UserDSN(empty.Name, user, secret)}, 3,
			"meshtop: database " + empty.Name + " has no MeshHook tables"},
		{"install --dry-run without MeshHook tables", nil, []string{"install", "--dry-run", "--dsn", empty.Srv.UserDSN(empty.Name, user, secret)}, 1,
			"meshtop: database " + empty.Name + " has no MeshHook tables"},
		{"status without MeshHook tables", nil, []string{"status", "--dsn", empty.Srv.UserDSN(empty.Name, user, secret)}, 1,
			"meshtop: database " + empty.Name + " has no MeshHook tables (public.projects, public.workflow_definitions, public.workflow_runs and public.workflow_events are missing); connect to the MeshHook database"},
		{"not installed", nil, []string{"status", "--dsn", bare.Srv.UserDSN(bare.Name, user, secret)}, 1,
			"meshtop: metrics views are not installed; run `meshtop install`"},
		{"no privileges to read", nil, []string{"status", "--dsn", dsn}, 1,
			"meshtop: permission denied reading the overview: as the database owner, GRANT meshtop_reader TO " + user},
		{"no privileges to refresh", nil, []string{"refresh", "--dsn", readerDSN}, 1,
			"as the database owner, GRANT meshtop_refresher TO meshtop_cli_reader"},
		{"no privileges to install", nil, []string{"install", "--dsn", bare.Srv.UserDSN(bare.Name, user, secret)}, 1,
			"meshtop: role " + user + " lacks "},
		{"window 2d", nil, []string{"status", "--window", "2d", "--dsn", dsn}, 1,
			`meshtop: invalid argument "2d" for "--window" flag: unknown window "2d": use one of 1h, 24h, 7d, 30d`},
		{"dashboard without terminal", nil, []string{"--dsn", dsn}, 2,
			"meshtop: the dashboard needs a terminal; use `meshtop status` (or --json) for scripts"},
		{"schema from MESHTOP_SCHEMA", map[string]string{"MESHTOP_DSN": db.DSN, "MESHTOP_SCHEMA": "metrics_elsewhere"}, []string{"status"}, 1,
			"meshtop: metrics views are not installed; run `meshtop install`"},
		{"read-only", map[string]string{"MESHTOP_DSN": dsn, "MESHTOP_READ_ONLY": "1"}, []string{"refresh"}, 1,
			"meshtop: refusing to refresh: --read-only is set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, runOpts{env: c.env}, c.args...).must(t, c.code)
			t.Log(strings.TrimSpace(r.stderr))
			noSecret(t, r)
			if !strings.Contains(r.stderr, c.want) {
				t.Errorf("want %q in stderr; got %s", c.want, r)
			}
			if !strings.HasPrefix(r.stderr, "meshtop: ") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("want exactly one line on stderr; got %s", r)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
				t.Errorf("stack trace: %s", r)
			}
		})
	}
}

// TestUninstallNothingInstalled: uninstall where meshtop is not installed
// says there is nothing to remove, and removes nothing (issue 24.9: it
// said "the objects and roles meshtop created are gone").
func TestUninstallNothingInstalled(t *testing.T) {
	t.Parallel()
	for name, db := range map[string]*pgtest.DB{"no MeshHook tables": pgtest.NewDatabase(t, pgtest.Empty), "not installed": seeded(t)} {
		r := run(t, runOpts{}, "uninstall", "--yes", "--dsn", db.DSN).must(t, 0)
		if !strings.Contains(r.stdout, "nothing to uninstall: meshtop is not installed in schema metrics") || strings.Contains(r.stdout, "gone") {
			t.Errorf("%s: %s", name, r)
		}
	}
}
