package pgtest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Two parallel tests write to a table of the same name; each sees only its
// own row.
func TestDatabasesAreIsolated(t *testing.T) {
	for _, name := range []string{"a", "b", "c"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := pgtest.NewDatabase(t)
			ctx := context.Background()
			if _, err := db.Pool.Exec(ctx, "insert into public.projects (owner, name) values (gen_random_uuid(), $1)", name); err != nil {
				t.Fatal(err)
			}
			var names []string
			rows, err := db.Pool.Query(ctx, "select name from public.projects")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					t.Fatal(err)
				}
				names = append(names, n)
			}
			if rows.Err() != nil {
				t.Fatal(rows.Err())
			}
			if len(names) != 1 || names[0] != name {
				t.Fatalf("database %s sees projects %v, want only [%s]", db.Name, names, name)
			}
		})
	}
}

func TestEmptyTemplateHasNoMeshHookTables(t *testing.T) {
	db := pgtest.NewDatabase(t, pgtest.Empty)
	var n int
	if err := db.Pool.QueryRow(context.Background(), "select count(*) from pg_tables where schemaname='public'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("empty template has %d public tables", n)
	}
}

func TestServerListensOnLoopbackOnly(t *testing.T) {
	db := pgtest.NewDatabase(t)
	var addrs string
	if err := db.Pool.QueryRow(context.Background(), "show listen_addresses").Scan(&addrs); err != nil {
		t.Fatal(err)
	}
	if addrs != "127.0.0.1" {
		t.Fatalf("listen_addresses = %q", addrs)
	}
	var fsync string
	if err := db.Pool.QueryRow(context.Background(), "show fsync").Scan(&fsync); err != nil {
		t.Fatal(err)
	}
	if fsync != "off" {
		t.Fatalf("fsync = %q, want off for speed", fsync)
	}
}

// A test binary that panics still leaves no cluster behind: the child
// process below starts a cluster, reports its directory and panics; the
// watchdog must stop the server and remove the directory.
func TestClusterRemovedAfterPanic(t *testing.T) {
	if os.Getenv("PGTEST_PANIC_CHILD") == "1" {
		srv := pgtest.Server(t)
		os.WriteFile(os.Getenv("PGTEST_REPORT"), []byte(srv.Root+"\n"+srv.DataDir), 0o644)
		panic("deliberate panic to test cleanup")
	}
	report := filepath.Join(t.TempDir(), "report")
	cmd := exec.Command(os.Args[0], "-test.run=^TestClusterRemovedAfterPanic$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PGTEST_PANIC_CHILD=1", "PGTEST_REPORT="+report)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("child should have failed by panicking; output:\n%s", out)
	}
	if !strings.Contains(string(out), "deliberate panic") {
		t.Fatalf("child failed for another reason:\n%s", out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("child did not report its cluster: %v\n%s", err, out)
	}
	root := strings.SplitN(string(b), "\n", 2)[0]
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := os.Stat(root)
		if os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster directory %s still exists 30s after the child panicked", root)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// And no postgres process still runs from it.
	ps, _ := exec.Command("ps", "-eo", "args").Output()
	if strings.Contains(string(ps), root) {
		t.Fatalf("a process still references %s:\n%s", root, ps)
	}
}

// A standby streams through a replication slot of its own, which holds the
// primary's WAL until the standby has it and is dropped with the standby.
func TestStandbyUsesAndDropsItsSlot(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db := pgtest.NewDatabase(t)
	standby, err := db.Srv.StartStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slots := func() (n int) {
		t.Helper()
		if err := db.Pool.QueryRow(ctx, `select count(*) from pg_replication_slots
			where slot_name like 'meshtop_meshtop_replica_%' and slot_type = 'physical'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := slots(); n < 1 {
		t.Errorf("no replication slot for the standby")
	}
	before := slots()
	if err := standby.Stop(); err != nil {
		t.Fatalf("stopping the standby: %v", err)
	}
	if n := slots(); n != before-1 {
		t.Errorf("%d standby slots after stopping one of %d", n, before)
	}
}
