package conn

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshtop/meshtop/data/pgserver"
	"github.com/meshtop/meshtop/data/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const loginRole = "meshtop_conn_login"

var roleOnce sync.Once

// loginDB returns a fresh database and a DSN for a LOGIN role whose password
// is pw.
func loginDB(t *testing.T) (*pgtest.DB, string) {
	t.Helper()
	db := pgtest.NewDatabase(t, pgtest.Empty)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	roleOnce.Do(func() {
		_, err = db.Pool.Exec(ctx, fmt.Sprintf("create role %s login password '%s'", loginRole, pw))
	})
	if err != nil {
		t.Fatalf("creating login role: %v", err)
	}
	return db, db.Srv.UserDSN(db.Name, loginRole, pw)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestOpenAndExplain(t *testing.T) {
	db, good := loginDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("ok sets application_name", func(t *testing.T) {
		pool, err := Open(ctx, Options{DSN: good, ApplicationName: "meshtop-conn-test"})
		if err != nil {
			t.Fatalf("Open: %v", Explain(err))
		}
		defer pool.Close()
		var app string
		if err := pool.QueryRow(ctx, "select current_setting('application_name')").Scan(&app); err != nil {
			t.Fatal(err)
		}
		if app != "meshtop-conn-test" {
			t.Errorf("application_name = %q", app)
		}
		if tg := Target(pool); tg != fmt.Sprintf("%s@%s/%s", loginRole, db.Srv.Addr(), db.Name) || strings.Contains(tg, pw) {
			t.Errorf("Target = %q", tg)
		}
	})

	port := freePort(t)
	cases := []struct {
		name, dsn, want string
	}{
		{"wrong password", db.Srv.UserDSN(db.Name, loginRole, pw+"-wrong"),
			`password authentication failed for user "meshtop_conn_login"`},
		{"unknown database", db.Srv.UserDSN("no_such_db", loginRole, pw),
			`database "no_such_db" does not exist`},
		{"refused", fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/x?sslmode=disable", loginRole, pw, port),
			"connection refused by"},
		{"bad url", fmt.Sprintf("postgres://%s:%s@127.0.0.1:notaport/x", loginRole, pw),
			"the connection string is invalid (invalid port"},
		{"bad key/value", fmt.Sprintf("host=127.0.0.1 password='%s dbname=x", pw),
			"the connection string is invalid (failed to parse as keyword/value"},
		{"tls refused", fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=require", loginRole, pw, db.Srv.Addr(), db.Name),
			"does not accept TLS connections"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool, err := Open(ctx, Options{DSN: c.dsn, ConnectTimeout: 5 * time.Second})
			if err == nil {
				pool.Close()
				t.Fatal("Open succeeded")
			}
			got := Explain(err)
			if !strings.Contains(got, c.want) {
				t.Errorf("Explain = %q, want it to contain %q", got, c.want)
			}
			if strings.Contains(got, pw) || strings.Contains(err.Error(), pw) {
				t.Errorf("password leaked: %q / %q", got, err.Error())
			}
			if strings.ContainsAny(got, "\n\r") {
				t.Errorf("not one line: %q", got)
			}
		})
	}
}

func TestExplainDNS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := Open(ctx, Options{DSN: "postgres://u:" + pw + "@no-such-host.invalid/db", ConnectTimeout: 10 * time.Second})
	if err == nil {
		t.Fatal("Open succeeded")
	}
	got := Explain(err)
	// Without a resolver the lookup may time out instead of failing.
	if !strings.Contains(got, `cannot resolve host "no-such-host.invalid"`) && !strings.Contains(got, "timed out connecting") {
		t.Errorf("Explain = %q", got)
	}
	if strings.Contains(got, pw) {
		t.Errorf("password leaked: %q", got)
	}
}

func TestResolve(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if got, err := ResolveWith("postgres://a@b/c", getenv); err != nil || got != "postgres://a@b/c" {
		t.Errorf("flag: %q %v", got, err)
	}
	env["DATABASE_URL"] = "postgres://from-env/db"
	if got, err := ResolveWith("", getenv); err != nil || got != "postgres://from-env/db" {
		t.Errorf("DATABASE_URL: %q %v", got, err)
	}
	if got, err := ResolveWith("postgres://flag/db", getenv); err != nil || got != "postgres://flag/db" {
		t.Errorf("flag beats env: %q %v", got, err)
	}
	env["DATABASE_URL"] = "postgres://u:" + pw + "@h:bad/db"
	_, err := ResolveWith("", getenv)
	if err == nil {
		t.Fatal("bad DATABASE_URL accepted")
	}
	if got := Explain(err); !strings.Contains(got, "from DATABASE_URL is invalid") || strings.Contains(got, pw) {
		t.Errorf("Explain = %q", got)
	}
	delete(env, "DATABASE_URL")
	if got, err := ResolveWith("", getenv); err != nil || got != "" {
		t.Errorf("libpq env: %q %v", got, err)
	}
}

// TestOpenDetectsPooler runs OpenDetect directly and through a real
// PgBouncer in each pool mode.
func TestOpenDetectsPooler(t *testing.T) {
	db := pgtest.NewDatabase(t, pgtest.Empty)
	cases := []struct {
		name string
		dsn  string
		want Pooling
	}{
		{"direct", db.DSN, Direct},
		{"session", pgtest.PgBouncer(t, "session").DSN(db.Name), SessionPooler},
		{"transaction", pgtest.PgBouncer(t, "transaction").DSN(db.Name), TransactionPooler},
		{"statement", pgtest.PgBouncer(t, "statement").DSN(db.Name), TransactionPooler},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Repeatedly: a pooled server session keeps what an earlier
			// client left, and the answer must not depend on that.
			for i := 0; i < 5; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				pool, got, err := OpenDetect(ctx, Options{DSN: c.dsn})
				if err != nil {
					cancel()
					t.Fatalf("OpenDetect: %v", err)
				}
				var one int
				err = pool.QueryRow(ctx, "select $1::int", 1).Scan(&one)
				pool.Close()
				cancel()
				if got != c.want {
					t.Fatalf("attempt %d: pooling %v, want %v", i, got, c.want)
				}
				if err != nil || one != 1 {
					t.Fatalf("attempt %d: a query after OpenDetect: %v (%d)", i, err, one)
				}
			}
		})
	}
}

// TestOpenDetectCannotTell: behind a session pooler whose server
// connections are all taken but one, the second probe client waits for a
// server connection; OpenDetect gives up on it after probeTimeout and
// answers TransactionPooler, the mode in which meshtop only reads (safe
// either way), instead of failing or guessing session.
func TestOpenDetectCannotTell(t *testing.T) {
	db := pgtest.NewDatabase(t, pgtest.Empty)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := db.Srv.StartPgBouncer(ctx, pgserver.BouncerOptions{PoolMode: "session", PoolSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	holder, err := pgx.Connect(ctx, b.DSN(db.Name))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	if _, err := holder.Exec(ctx, "select 1"); err != nil { // takes one server connection for good
		t.Fatal(err)
	}
	pool, got, err := OpenDetect(ctx, Options{DSN: b.DSN(db.Name)})
	if err != nil {
		t.Fatalf("OpenDetect: %v", err)
	}
	defer pool.Close()
	if got != TransactionPooler {
		t.Fatalf("pooling %v, want %v when the probe cannot tell", got, TransactionPooler)
	}
}
