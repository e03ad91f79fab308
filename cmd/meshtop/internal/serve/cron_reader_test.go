package serve_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/meshtop/meshtop/cmd/meshtop/internal/serve"
	"github.com/meshtop/meshtop/data/conn"
	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

// TestReaderServeOnSupabaseWithCron (issue 23.1): `meshtop serve` with a
// login that holds meshtop_reader alone, on a database shaped like
// Supabase's (pg_cron installed, a non-superuser owner that installed
// meshtop and scheduled the refresh). Every session's console shows the
// schedule; twenty sessions on the console cost the database at most 1.2×
// the statements of one (counted from the server's statement log for that
// login); the server log has no permission error of that login.
func TestReaderServeOnSupabaseWithCron(t *testing.T) {
	db := pgtest.NewCronDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := db.Pool.Exec(ctx, "create extension pg_cron"); err != nil {
		t.Fatal(err)
	}
	anchor := time.Now().UTC().Truncate(time.Hour)
	if _, err := fixture.Generate(ctx, db.Pool, fixture.Spec{Seed: 5, Projects: 2, Workflows: 8, Runs: 1200, Days: 10, Anchor: anchor, Events: true}); err != nil {
		t.Fatal(err)
	}
	_, ownerDSN := db.SupabaseOwner(t)
	opool, err := conn.Open(ctx, conn.Options{DSN: ownerDSN})
	if err != nil {
		t.Fatal(err)
	}
	defer opool.Close()
	if _, err := install.New(opool, "metrics").Apply(ctx, nil); err != nil {
		t.Fatalf("installing as the owner: %v", err)
	}
	ost := store.New(opool, nil, store.Options{})
	if _, err := ost.Refresh(ctx, "", false); err != nil {
		t.Fatal(err)
	}
	// Daily at midnight: the job exists, and does not fire (and add its
	// own statements) while the test counts.
	sc, err := ost.SetSchedule(ctx, 24*time.Hour)
	if err != nil {
		t.Fatalf("scheduling as the owner: %v", err)
	}

	reader := "serve_reader"
	readerDSN := db.LoginRole(t, reader, "meshtop_reader")
	// Every statement of the reader's sessions goes to the server log.
	if _, err := db.Pool.Exec(ctx, "alter role "+reader+" in database "+db.Name+" set log_statement = 'all'"); err != nil {
		t.Fatal(err)
	}
	rpool, err := conn.Open(ctx, conn.Options{DSN: readerDSN, ApplicationName: "meshtop serve cron-reader", MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rpool.Close) // after serve has stopped (cleanups run last first)

	dir := t.TempDir()
	f := sshFixture{e: env{db: db}, viewer: newKey(t)}
	writeKeys(t, filepath.Join(dir, "viewers"), f.viewer)
	f.r = start(t, f.e, serve.Config{
		Instance: "cron-reader", Pool: rpool, Store: store.New(rpool, nil, store.Options{}),
		SSHListen: "127.0.0.1:0", SSHHostKey: filepath.Join(dir, "host_ed25519"),
		SSHAuthorizedKeys: filepath.Join(dir, "viewers"), SSHMaxSessions: 32, SSHIdleTimeout: time.Hour,
		Interval: time.Second, Target: "test",
	})

	logPath := filepath.Join(db.Srv.Root, "server.log")
	prefix := reader + "@" + db.Name + " "
	count := func() (statements, denied int, kinds map[string]int) {
		kinds = map[string]int{}
		fh, err := os.Open(logPath)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, prefix) {
				continue
			}
			if i := strings.Index(line, "LOG:  statement: "); i >= 0 {
				statements++
				kinds[trunc(line[i+17:], 50)]++
			} else if i := strings.Index(line, "LOG:  execute "); i >= 0 {
				statements++
				rest := line[i+len("LOG:  execute "):]
				if j := strings.Index(rest, ": "); j >= 0 {
					kinds[trunc(rest[j+2:], 70)]++
				}
			}
			if strings.Contains(line, "permission denied") {
				denied++
			}
		}
		return statements, denied, kinds
	}
	want := "schedule: pg_cron job " + strconv.FormatInt(sc.JobID, 10)
	openConsoles := func(n int) []*term {
		var out []*term
		for range n {
			c, _, err := f.dial(t, ssh.PublicKeys(f.viewer))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			tm := f.open(t, c)
			tm.waitText("data as of")
			tm.send("\t")
			out = append(out, tm)
		}
		for _, tm := range out {
			tm.waitText(want)
		}
		return out
	}
	measure := func(what string) int {
		const window = 15 * time.Second // at a 1 s interval: 15 polls of every kind
		before, _, k0 := count()
		time.Sleep(window)
		after, _, k1 := count()
		t.Logf("%s: %d statements in %s", what, after-before, window)
		for k, n := range k1 {
			if n > k0[k] {
				t.Logf("  %4d  %s", n-k0[k], k)
			}
		}
		return after - before
	}

	openConsoles(1)
	one := measure("1 session on the console")
	openConsoles(19)
	twenty := measure("20 sessions on the console")
	if one == 0 {
		t.Fatal("no statement of the reader was logged: the count measures nothing")
	}
	if ratio := float64(twenty) / float64(one); ratio > 1.2 {
		t.Errorf("20 sessions cost %.2f× the statements of one (%d vs %d); want ≤ 1.2×", ratio, twenty, one)
	}
	if _, denied, _ := count(); denied > 0 {
		t.Errorf("%d permission errors of %s in the server log", denied, reader)
	}
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
