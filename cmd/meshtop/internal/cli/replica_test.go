package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/pgtest"
)

// TestReplica reads metrics from a real streaming replica (pg_basebackup
// -R) while refreshes go to the primary, and checks the clear errors of
// writes aimed at the standby.
func TestReplica(t *testing.T) {
	t.Parallel()
	// A cluster of its own: a standby of the shared one copies every other
	// test's database and must replay all their writes as well as this
	// test's, so its waits would depend on everything else under way.
	db := installInto(t, seed(t, pgtest.NewOwnCluster(t)))
	run(t, runOpts{}, "refresh", "--dsn", db.DSN).must(t, 0)
	bare := seed(t, pgtest.NewClusterDatabase(t, db.Srv, "bare"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	standby, err := db.Srv.StartStandby(ctx)
	if err != nil {
		t.Fatalf("starting the standby: %v", err)
	}
	t.Cleanup(func() { _ = standby.Stop() })
	replica := standby.DSN(db.Name)
	both := []string{"--dsn", db.DSN, "--replica-dsn", replica}

	status := func() StatusJSON {
		t.Helper()
		r := run(t, runOpts{}, append([]string{"status", "--json"}, both...)...).must(t, 0)
		var doc StatusJSON
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("%v: %s", err, r)
		}
		return doc
	}
	doc := status()
	if len(doc.Workflows) == 0 || len(doc.Views) != 3 {
		t.Fatalf("status from the replica: %+v", doc)
	}
	for _, v := range doc.Views {
		if v.LagSeconds == nil || *v.LagSeconds < 0 {
			t.Errorf("view %s lag %v", v.Name, v.LagSeconds)
		}
	}
	r := run(t, runOpts{}, append([]string{"status"}, both...)...).must(t, 0)
	if !strings.Contains(r.stdout, "(standby)") {
		t.Errorf("status table does not say it read a standby: %.300s", r.stdout)
	}

	// The drill-down reads the standby as well: its functions only read.
	var slug, failedRun string
	if err := db.Pool.QueryRow(ctx, `select d.slug, r.id::text from public.workflow_runs r join public.workflow_definitions d on d.id = r.workflow_id
		where r.status = 'failed' order by r.started_at desc limit 1`).Scan(&slug, &failedRun); err != nil {
		t.Fatal(err)
	}
	r = run(t, runOpts{}, append([]string{"runs", "--workflow", slug, "--window", "30d", "--json"}, both...)...).must(t, 0)
	if !strings.Contains(r.stdout, failedRun) {
		t.Errorf("runs from the replica lacks the newest failed run %s:\n%.1000s", failedRun, r.stdout)
	}
	run(t, runOpts{}, append([]string{"run", failedRun}, both...)...).must(t, 0)

	// A refresh through the CLI goes to the primary and shows up on the
	// replica once replayed.
	later := anchor.Add(time.Hour)
	setClock(t, db, later)
	run(t, runOpts{}, append([]string{"refresh"}, both...)...).must(t, 0)
	want := later.UTC().Format(time.RFC3339)
	waitFor(t, "the refresh to replay on the standby", time.Minute, func() bool {
		for _, v := range status().Views {
			if v.LastRefreshAt == nil || *v.LastRefreshAt != want {
				return false
			}
		}
		return true
	})
	run(t, runOpts{}, append([]string{"check", "--min-success-rate", "0", "--max-lag", "1h"}, both...)...).must(t, CheckOK)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"install on the standby", []string{"install", "--dsn", standby.DSN(bare.Name)},
			"meshtop: the server of database " + bare.Name + " is a read-only standby; use the primary (or --replica-dsn for reads)\n"},
		{"refresh on the standby", []string{"refresh", "--dsn", replica},
			"is a read-only standby; use the primary (or --replica-dsn for reads)\n"},
		{"unreachable replica", []string{"status", "--dsn", db.DSN, "--replica-dsn", "postgres://u:" + secret + "@127.0.0.1:1/db"},
			"meshtop: replica: connection refused by u@127.0.0.1:1/db"},
	}
	for _, c := range cases {
		r := run(t, runOpts{}, c.args...).must(t, 1)
		if !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: want %q, got %s", c.name, c.want, r)
		}
		noSecret(t, r)
	}
}
