package reliability

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/conn"
	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/store"
)

// TestReplica: a real streaming replica (pg_basebackup -R) of a cluster of
// this test's own. Metrics are read from it, a refresh on the primary
// becomes visible there, replication lag is reported, and install and
// refresh against it fail with one clear line.
func TestReplica(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 10*time.Minute) // a hang guard, not a timing assertion
	srv, pool := ownCluster(t, ctx)
	if _, err := fixture.Generate(ctx, pool, fixture.Spec{Seed: 5, Projects: 3, Workflows: 10, Runs: 2000, Days: 30, Anchor: anchor, Events: true}); err != nil {
		t.Fatal(err)
	}
	const schema = "metrics"
	in := install.New(pool, schema)
	if _, err := in.Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	clock := anchor
	if err := in.SetClock(ctx, &clock); err != nil {
		t.Fatal(err)
	}
	const pw = "S3cr3t-replica-pw-5"
	createLoginRole(t, ctx, pool, "rel_replica_refresher", pw, "meshtop_refresher")
	primaryStore := store.New(pool, nil, store.Options{Schema: schema})
	if _, err := primaryStore.Refresh(ctx, "", false); err != nil {
		t.Fatal(err)
	}

	rep, err := srv.StartStandby(ctx)
	if err != nil {
		t.Fatalf("starting the standby: %v", err)
	}
	t.Cleanup(func() { _ = rep.Stop() })
	rpool, err := pgxpool.New(ctx, rep.UserDSN("meshhook", "rel_replica_refresher", pw))
	if err != nil {
		t.Fatal(err)
	}
	defer rpool.Close()
	rsuper, err := pgxpool.New(ctx, rep.DSN("meshhook")) // for checksums and ground truth
	if err != nil {
		t.Fatal(err)
	}
	defer rsuper.Close()
	caughtUp := func() {
		t.Helper()
		var lsn string
		if err := pool.QueryRow(ctx, "select pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		if err := waitFor(ctx, 2*time.Minute, "the standby to replay "+lsn, func() (bool, error) {
			var ok bool
			err := rpool.QueryRow(ctx, "select pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&ok)
			return ok, err
		}); err != nil {
			t.Fatal(err)
		}
	}
	caughtUp()
	same := func() bool {
		p, err := checksums(ctx, pool, schema)
		if err != nil {
			t.Fatal(err)
		}
		r, err := checksums(ctx, rsuper, schema)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range views {
			if p[v] != r[v] {
				return false
			}
		}
		return true
	}
	if !same() {
		t.Fatal("after catching up, the standby's views differ from the primary's")
	}

	st := store.New(pool, rpool, store.Options{Schema: schema})
	ov, err := st.Overview(ctx, store.Window24h)
	if err != nil {
		t.Fatalf("Overview from the replica: %v", err)
	}
	if !ov.Server.InRecovery {
		t.Fatalf("Overview's server should be the standby: %+v", ov.Server)
	}
	if len(ov.Workflows) == 0 || ov.DataAsOf == nil || !ov.DataAsOf.Equal(anchor) {
		t.Fatalf("Overview from the replica: %d workflows, data as of %v; want rows as of %s", len(ov.Workflows), ov.DataAsOf, anchor)
	}
	standbyOnly := store.New(rpool, nil, store.Options{Schema: schema})

	// A refresh on the primary (through the store that reads from the
	// replica) becomes visible on the standby.
	clock = anchor.Add(time.Hour)
	if err := in.SetClock(ctx, &clock); err != nil {
		t.Fatal(err)
	}
	res, err := st.Refresh(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != "ok" {
			t.Fatalf("refresh on the primary: %s %s %s", r.View, r.Status, r.Error)
		}
	}
	if err := waitFor(ctx, 2*time.Minute, "the refresh to reach the standby", func() (bool, error) {
		ov, err := st.Overview(ctx, store.Window24h)
		return err == nil && ov.DataAsOf != nil && ov.DataAsOf.Equal(clock), err
	}); err != nil {
		t.Fatal(err)
	}
	caughtUp()
	if !same() {
		t.Fatal("after the refresh replicated, the standby's views differ from the primary's")
	}
	if err := compareTruth(ctx, rsuper, schema); err != nil {
		t.Fatalf("on the standby: %v", err)
	}
	// Replication lag is known once the standby has replayed a transaction.
	ov, err = st.Overview(ctx, store.Window24h)
	if err != nil || ov.Server.ReplicationLag == nil {
		t.Fatalf("Overview from the replica after replay: lag %v, %v; want a replication lag", ov.Server.ReplicationLag, err)
	}
	info, err := standbyOnly.Server(ctx)
	if err != nil || !info.InRecovery || info.ReplicationLag == nil {
		t.Fatalf("Server() of the standby: %+v, %v; want in recovery with a lag", info, err)
	}
	if strings.Contains(info.Host+info.User, pw) {
		t.Fatal("ServerInfo carries the password")
	}
	t.Logf("replication lag reported: overview %s, server %s", *ov.Server.ReplicationLag, *info.ReplicationLag)

	// Install and refresh against the standby: one clear line each.
	oneLine := func(what string, err error, wants ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s on the standby succeeded", what)
		}
		msg := conn.Explain(err)
		if strings.Contains(msg, "\n") || strings.Contains(msg, pw) {
			t.Errorf("%s on the standby: not one clean line: %q", what, msg)
		}
		for _, w := range wants {
			if !strings.Contains(strings.ToLower(msg), w) {
				t.Errorf("%s on the standby: %q does not mention %q", what, msg, w)
			}
		}
		t.Logf("%s on the standby: %s", what, msg)
	}
	rin := install.New(rpool, schema)
	err = rin.Check(ctx)
	var pre *install.PreconditionError
	if !errors.As(err, &pre) || pre.Kind != "standby" {
		t.Errorf("Check on the standby: %v; want a standby precondition error", err)
	}
	oneLine("install check", err, "standby")
	// Apply of an installed, up-to-date schema has nothing to write: it may
	// succeed as a no-op; anything it would write must fail.
	if applied, err := rin.Apply(ctx, nil); err != nil {
		oneLine("install", err, "standby")
	} else if applied != 0 {
		t.Errorf("install on the standby applied %d migrations", applied)
	}
	_, err = install.New(rpool, "metrics_other").Apply(ctx, nil)
	oneLine("install into a new schema", err, "standby")
	_, err = standbyOnly.Refresh(ctx, "", false)
	oneLine("refresh", err, "standby")

	// The same through the CLI, with the password in DATABASE_URL.
	bad := rep.UserDSN("meshhook", "rel_replica_refresher", pw)
	// (`meshtop install` of an up-to-date schema has nothing to write and
	// says so; schedule first finds no pg_cron here, and says that.)
	for _, args := range [][]string{{"install", "--schema", "metrics_other"}, {"refresh"}, {"refresh", "--view", "mv_step_metrics"}, {"uninstall", "--yes"}, {"schedule", "--every", "1m"}} {
		r := runCLI(t, ctx, []string{"DATABASE_URL=" + bad}, args...)
		msg := strings.TrimSpace(r.stderr)
		if r.code == 0 || msg == "" || strings.Contains(msg, "\n") || strings.Contains(r.stdout+r.stderr, pw) || (args[0] != "schedule" && !strings.Contains(msg, "standby")) {
			t.Errorf("meshtop %s against the standby: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	r := runCLI(t, ctx, []string{"DATABASE_URL=" + srv.UserDSN("meshhook", "rel_replica_refresher", pw)},
		"status", "--json", "--replica-dsn", bad)
	var status struct {
		Views []struct {
			Name       string   `json:"name"`
			LagSeconds *float64 `json:"lag_seconds"`
		} `json:"views"`
		Workflows []json.RawMessage `json:"workflows"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &status) != nil || len(status.Views) != len(views) || len(status.Workflows) == 0 {
		t.Errorf("meshtop status --json --replica-dsn: exit %d\nstdout: %.500s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr+srv.LogTail(100000)+rep.LogTail(100000), pw) {
		t.Error("the password leaked (output or a server log)")
	}
	report.add("replica.refreshes_replicated", 1)
	report.add("bad_inputs.standby_writes", 9)
}
