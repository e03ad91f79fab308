package store_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

func TestCronExpr(t *testing.T) {
	t.Parallel()
	good := map[time.Duration]string{
		time.Minute:      "* * * * *",
		5 * time.Minute:  "*/5 * * * *",
		30 * time.Minute: "*/30 * * * *",
		time.Hour:        "0 * * * *",
		2 * time.Hour:    "0 */2 * * *",
		24 * time.Hour:   "0 0 * * *",
	}
	for d, want := range good {
		got, err := store.CronExpr(d, false)
		if err != nil || got != want {
			t.Errorf("CronExpr(%s) = %q, %v; want %q", d, got, err, want)
		}
	}
	for _, d := range []time.Duration{0, -time.Minute, 10 * time.Second, 90 * time.Second, 7 * time.Minute, 45 * time.Minute, 5 * time.Hour, 48 * time.Hour, time.Minute + time.Millisecond} {
		if got, err := store.CronExpr(d, false); err == nil {
			t.Errorf("CronExpr(%s) = %q; want an error", d, got)
		}
	}
	if _, err := store.CronExpr(10*time.Second, false); err == nil || !strings.Contains(err.Error(), "1.5") {
		t.Errorf("seconds on pg_cron 1.4: err = %v; want one naming pg_cron 1.5", err)
	}
	if got, err := store.CronExpr(10*time.Second, true); err != nil || got != "10 seconds" {
		t.Errorf("CronExpr(10s, seconds) = %q, %v", got, err)
	}
}

func TestScheduleWithPgCron(t *testing.T) {
	t.Parallel()
	e := setupDB(t, pgtest.NewCronDatabase(t))
	ctx := ctxT(t)

	// Not yet CREATE EXTENSION'd in this database: unavailable.
	sc, err := e.st.Schedule(ctx)
	if err != nil || sc.CronAvailable || sc.Scheduled {
		t.Fatalf("Schedule without the extension = %+v, %v", sc, err)
	}
	if _, err := e.st.SetSchedule(ctx, time.Minute); !errors.Is(err, store.ErrCronUnavailable) ||
		!strings.Contains(err.Error(), "meshtop refresh --every 1m") {
		t.Errorf("SetSchedule without pg_cron: err = %v", err)
	}
	if _, err := e.db.Pool.Exec(ctx, `create extension pg_cron`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.SetSchedule(ctx, 90*time.Second); err == nil {
		t.Errorf("SetSchedule(90s) accepted")
	}
	// Twice: scheduling is idempotent (one job).
	if _, err := e.st.SetSchedule(ctx, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	sc, err = e.st.SetSchedule(ctx, time.Minute)
	if err != nil {
		t.Fatalf("SetSchedule(1m): %v", err)
	}
	var jobs int
	_ = e.db.Pool.QueryRow(ctx, `select count(*) from cron.job where jobname = $1`, e.st.JobName()).Scan(&jobs)
	if !sc.CronAvailable || !sc.Scheduled || sc.Schedule != "* * * * *" || sc.Every != time.Minute || !sc.Active ||
		sc.NextRun == nil || sc.NextRun.Second() != 0 || jobs != 1 {
		t.Errorf("Schedule = %+v (%d jobs)", sc, jobs)
	}

	// pg_cron fires at the top of the next minute.
	deadline := time.Now().Add(150 * time.Second)
	for {
		sc, err = e.st.Schedule(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(sc.LastRuns) > 0 && sc.LastRuns[0].Status != "running" && sc.LastRuns[0].Status != "starting" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pg_cron did not run the job: %+v", sc)
		}
		time.Sleep(time.Second)
	}
	if r := sc.LastRuns[0]; r.Status != "succeeded" || r.End == nil || r.Start.IsZero() {
		t.Errorf("last cron run = %+v; want succeeded", r)
	}
	var ok int
	if err := e.db.Pool.QueryRow(ctx, `select count(distinct view_name) from metrics.refresh_log
		where status = 'ok' and application_name = 'pg_cron'`).Scan(&ok); err != nil || ok != 3 {
		t.Errorf("views refreshed ok by pg_cron: %d (%v); want 3", ok, err)
	}

	if err := e.st.Unschedule(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Unschedule(ctx); err != nil {
		t.Errorf("second Unschedule: %v", err)
	}
	sc, err = e.st.Schedule(ctx)
	if err != nil || !sc.CronAvailable || sc.Scheduled {
		t.Errorf("Schedule after Unschedule = %+v, %v", sc, err)
	}
}

func TestReplicaReads(t *testing.T) {
	t.Parallel()
	// A cluster of its own: a standby of the shared one copies every other
	// test's database and must replay all their writes (database creations,
	// fixtures, refreshes, running in parallel) as well as this test's, so
	// how long its waits take depends on everything else under way.
	e := setupDB(t, pgtest.NewOwnCluster(t))
	ctx := ctxT(t)
	standby, err := e.db.Srv.StartStandby(ctx)
	if err != nil {
		t.Fatalf("starting a standby: %v", err)
	}
	t.Cleanup(func() { _ = standby.Stop() })
	rpool := connect(t, standby.DSN(e.db.Name))
	st := store.New(e.db.Pool, rpool, store.Options{Schema: schema})

	info, err := store.New(rpool, nil, store.Options{}).Server(ctx)
	if err != nil || !info.InRecovery || info.Port != uint16(standby.Port) {
		t.Errorf("standby Server() = %+v, %v; want InRecovery on port %d", info, err, standby.Port)
	}
	if info, err := st.Server(ctx); err != nil || info.InRecovery {
		t.Errorf("primary Server() = %+v, %v", info, err)
	}

	// Refresh on the primary; the replica sees it once replayed.
	refreshAll(t, st)
	var ov store.Overview
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ov, err = st.Overview(ctx, store.Window24h)
		if err != nil {
			t.Fatalf("Overview from the replica: %v", err)
		}
		if len(ov.Workflows) > 0 && ov.DataAsOf != nil {
			break
		}
		if time.Now().After(deadline) {
			var sent, replayed string
			_ = e.db.Pool.QueryRow(ctx, `select pg_current_wal_lsn()::text`).Scan(&sent)
			_ = rpool.QueryRow(ctx, `select coalesce(pg_last_wal_replay_lsn()::text, 'none')`).Scan(&replayed)
			t.Fatalf("the refresh did not reach the standby: primary at %s, standby replayed %s; overview %+v\nstandby log:\n%s",
				sent, replayed, ov, standby.LogTail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !ov.Server.InRecovery || ov.Server.Port != uint16(standby.Port) || ov.Server.ReplicationLag == nil {
		t.Errorf("Overview.Server = %+v; want the standby with a replication lag", ov.Server)
	}
	primary, err := store.New(e.db.Pool, nil, store.Options{}).Overview(ctx, store.Window24h)
	if err != nil || len(primary.Workflows) != len(ov.Workflows) || !reflect.DeepEqual(primary.Workflows, ov.Workflows) {
		t.Errorf("replica and primary overviews differ: %d vs %d workflows (%v)", len(ov.Workflows), len(primary.Workflows), err)
	}
	// Refresh operations still go to the primary.
	if _, err := st.Refresh(ctx, store.ViewSteps, false); err != nil {
		t.Errorf("Refresh with a replica configured: %v", err)
	}
	// A refresh in progress on the primary shows as running on the replica
	// too (the guard lock that proves it is alive exists only on the primary).
	holder, err := e.db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()
	var id int64
	if err := holder.QueryRow(ctx, `select metrics.refresh_begin('mv_step_metrics')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the running refresh to reach the standby", func() bool {
		ov, err := st.Overview(ctx, store.Window24h)
		if err != nil {
			t.Fatal(err)
		}
		return ov.Views[2].LastStatus == "running"
	})
	if vs, err := st.Views(ctx); err != nil || vs[2].LastStatus != "running" || vs[2].Running == nil {
		t.Errorf("primary Views()[2] = %+v, %v; want running", vs[2], err)
	}
	if _, err := holder.Exec(ctx, `select metrics.refresh_run($1)`, id); err != nil {
		t.Fatal(err)
	}

	// A store pointed only at the standby cannot refresh, and says why.
	if _, err := store.New(rpool, nil, store.Options{}).Refresh(ctx, store.ViewSteps, false); err == nil ||
		!strings.Contains(err.Error(), "read-only") {
		t.Errorf("Refresh on a standby: err = %v", err)
	}
}

func connect(t *testing.T, dsn string) *pgxpoolPool {
	t.Helper()
	pool, err := newPool(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
