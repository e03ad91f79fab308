package store_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

func eqf(a, b *float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return math.Abs(*a-*b) <= 1e-9*math.Max(1, math.Abs(*b))
}

func TestOverviewAndWorkflowMatchTheViews(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t)
	refreshAll(t, e.st)

	for _, w := range store.Windows {
		ov, err := e.st.Overview(ctx, w)
		if err != nil {
			t.Fatalf("Overview(%s): %v", w, err)
		}
		// Every row of the view for this window, field by field.
		var n int
		if err := e.db.Pool.QueryRow(ctx, `select count(*) from metrics.mv_workflow_metrics where "window" = $1`, string(w)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 || len(ov.Workflows) != n {
			t.Fatalf("Overview(%s): %d workflows, view has %d", w, len(ov.Workflows), n)
		}
		for _, m := range ov.Workflows {
			var runs, failed int64
			var p95, sr *float64
			var name string
			err := e.db.Pool.QueryRow(ctx, `select m.execution_count, m.failed, m.p95_duration, m.success_rate, m.name
				from metrics.mv_workflow_metrics m where m.workflow_id = $1 and m."window" = $2`, m.WorkflowID, string(w)).
				Scan(&runs, &failed, &p95, &sr, &name)
			if err != nil {
				t.Fatal(err)
			}
			if m.Window != w || m.Runs != runs || m.Failed != failed || !eqf(m.P95Ms, p95) || !eqf(m.SuccessRate, sr) || !m.Name.Is(name) {
				t.Errorf("Overview(%s) row %s = %+v; view has runs=%d failed=%d p95=%v sr=%v name=%s", w, m.WorkflowID, m, runs, failed, p95, sr, name)
			}
			if !m.LastUpdated.Equal(anchor) {
				t.Errorf("LastUpdated = %s, want the pinned clock %s", m.LastUpdated, anchor)
			}
			if m.ProjectName.IsEmpty() {
				t.Errorf("row %s has no project name", m.WorkflowID)
			}
		}

		// Sparkline buckets: as many runs as the hourly view holds in the
		// span, grouped in buckets of HourlyStep, oldest first.
		span := 24 * time.Hour
		if w.Duration() > span {
			span = w.Duration()
		}
		start := anchor.Truncate(ov.HourlyStep).Add(-span + ov.HourlyStep)
		var want int64
		if err := e.db.Pool.QueryRow(ctx, `select coalesce(sum(runs), 0) from metrics.mv_workflow_metrics_hourly where hour >= $1`, start).Scan(&want); err != nil {
			t.Fatal(err)
		}
		var got int64
		for id, pts := range ov.Hourly {
			if len(pts) > int(span/ov.HourlyStep) {
				t.Errorf("Overview(%s): workflow %s has %d buckets, more than %d", w, id, len(pts), span/ov.HourlyStep)
			}
			for i, p := range pts {
				got += p.Runs
				if p.Hour.Before(start) || p.Hour.After(anchor) || !p.Hour.Equal(p.Hour.Truncate(ov.HourlyStep)) {
					t.Errorf("bucket %s outside [%s, %s] or not aligned to %s", p.Hour, start, anchor, ov.HourlyStep)
				}
				if i > 0 && !pts[i-1].Hour.Before(p.Hour) {
					t.Errorf("buckets not oldest first: %s then %s", pts[i-1].Hour, p.Hour)
				}
			}
		}
		if want == 0 || got != want {
			t.Errorf("Overview(%s): %d runs in sparkline buckets, hourly view has %d since %s", w, got, want, start)
		}

		// Live running counts come from the base table.
		rows, _ := e.db.Pool.Query(ctx, `select workflow_id::text, count(*) from public.workflow_runs where status = 'running' group by 1`)
		live := map[string]int64{}
		for rows.Next() {
			var id string
			var c int64
			_ = rows.Scan(&id, &c)
			live[id] = c
		}
		if rows.Err() != nil || len(live) == 0 || fmt.Sprint(live) != fmt.Sprint(ov.RunningNow) {
			t.Errorf("RunningNow = %v, base table says %v (%v)", ov.RunningNow, live, rows.Err())
		}

		if len(ov.Views) != 3 || ov.DataAsOf == nil || !ov.DataAsOf.Equal(anchor) {
			t.Errorf("Views %+v DataAsOf %v; want 3 views and data as of %s", ov.Views, ov.DataAsOf, anchor)
		}
		if ov.Server.InRecovery || ov.Server.VersionNum < 150000 || ov.Server.Database != e.db.Name {
			t.Errorf("Server = %+v", ov.Server)
		}
	}

	// Detail of the workflow with the most failures in 30d.
	var id string
	if err := e.db.Pool.QueryRow(ctx, `select workflow_id::text from metrics.mv_workflow_metrics where "window" = '30d' order by failed desc, workflow_id limit 1`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	d, err := e.st.Workflow(ctx, id, store.Window30d)
	if err != nil {
		t.Fatalf("Workflow: %v", err)
	}
	if d.Metrics.WorkflowID != id || d.Metrics.Failed == 0 {
		t.Errorf("Workflow metrics = %+v", d.Metrics)
	}
	var hours, steps int
	if err := e.db.Pool.QueryRow(ctx, `select count(*) from metrics.mv_workflow_metrics_hourly where workflow_id = $1 and hour >= $2`,
		id, anchor.Truncate(time.Hour).Add(-30*24*time.Hour+time.Hour)).Scan(&hours); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Pool.QueryRow(ctx, `select count(*) from metrics.mv_step_metrics where workflow_id = $1 and "window" = '30d'`, id).Scan(&steps); err != nil {
		t.Fatal(err)
	}
	if len(d.Hourly) != hours || hours == 0 {
		t.Errorf("Workflow hourly: %d points, view has %d", len(d.Hourly), hours)
	}
	if len(d.Steps) != steps || steps == 0 {
		t.Errorf("Workflow steps: %d, view has %d", len(d.Steps), steps)
	}
	// A 1h window's detail covers DetailSpan (6 hours) of hourly points:
	// an hour alone would be one point.
	d1, err := e.st.Workflow(ctx, id, store.Window1h)
	if err != nil {
		t.Fatalf("Workflow 1h: %v", err)
	}
	if err := e.db.Pool.QueryRow(ctx, `select count(*) from metrics.mv_workflow_metrics_hourly where workflow_id = $1 and hour >= $2`,
		id, anchor.Truncate(time.Hour).Add(-store.DetailSpan(store.Window1h)+time.Hour)).Scan(&hours); err != nil {
		t.Fatal(err)
	}
	if len(d1.Hourly) != hours || store.DetailSpan(store.Window1h) != 6*time.Hour {
		t.Errorf("Workflow 1h hourly: %d points, the view has %d in the last 6 hours", len(d1.Hourly), hours)
	}
	for i := 1; i < len(d.Steps); i++ {
		a, b := d.Steps[i-1], d.Steps[i]
		if a.Failures < b.Failures || (a.Failures == b.Failures && a.P95Ms != nil && b.P95Ms != nil && *a.P95Ms < *b.P95Ms) {
			t.Errorf("steps not ordered by failures, then p95: %+v before %+v", a, b)
		}
	}
	if d.Steps[0].Failures == 0 {
		t.Errorf("the workflow with most failures has no failing step: %+v", d.Steps)
	}

	// The sparklines are cached per refresh of the hourly view: new runs
	// appear only after the next refresh, and then they do.
	sum := func() (n int64) {
		ov, err := e.st.Overview(ctx, store.Window24h)
		if err != nil {
			t.Fatal(err)
		}
		for _, pts := range ov.Hourly {
			for _, p := range pts {
				n += p.Runs
			}
		}
		return n
	}
	before := sum()
	if _, err := e.db.Pool.Exec(ctx, `insert into public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
		select project_id, id, 'succeeded', $1::timestamptz - interval '5 minutes', $1::timestamptz - interval '4 minutes'
		from public.workflow_definitions limit 3`, anchor); err != nil {
		t.Fatal(err)
	}
	if got := sum(); got != before {
		t.Errorf("sparklines changed without a refresh: %d runs, then %d", before, got)
	}
	if res, err := e.st.Refresh(ctx, store.ViewHourly, false); err != nil || res[0].Status != "ok" {
		t.Fatalf("refreshing the hourly view: %+v %v", res, err)
	}
	if got := sum(); got != before+3 {
		t.Errorf("sparklines after a refresh: %d runs, want %d", got, before+3)
	}

	if _, err := e.st.Workflow(ctx, "00000000-0000-0000-0000-000000000000", store.Window24h); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown workflow: err = %v, want ErrNotFound", err)
	}
	if _, err := e.st.Workflow(ctx, "x'; drop table x; --", store.Window24h); err == nil {
		t.Errorf("bad workflow id accepted")
	}

	// Views and the log after one refresh of everything.
	vs, err := e.st.Views(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		wantRefreshes := 1
		if v.Name == store.ViewHourly {
			wantRefreshes = 2
		}
		if v.Name != store.ViewNames()[i] || !v.Populated || v.Rows == 0 || v.LastStatus != "ok" || v.LastRefreshID == 0 ||
			v.Lag == nil || *v.Lag != 0 || len(v.RecentDurationsMs) != wantRefreshes || v.Running != nil {
			t.Errorf("view %d = %+v", i, v)
		}
	}
	log, err := e.st.RefreshLog(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 4 || log[1].View != store.ViewSteps || log[0].View != store.ViewHourly || log[0].Status != "ok" || log[0].DataAsOf == nil || !log[0].DataAsOf.Equal(anchor) {
		t.Errorf("RefreshLog = %+v", log)
	}
}

func TestOverviewBeforeFirstRefresh(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t)
	ov, err := e.st.Overview(ctx, store.Window24h)
	if err != nil {
		t.Fatalf("Overview before any refresh: %v", err)
	}
	if len(ov.Workflows) != 0 || ov.DataAsOf != nil || len(ov.Views) != 3 || len(ov.RunningNow) == 0 {
		t.Errorf("Overview = %+v", ov)
	}
	for _, v := range ov.Views {
		if v.Populated || v.LastRefreshAt != nil {
			t.Errorf("view %+v populated before any refresh", v)
		}
	}
	if ok, err := e.st.Installed(ctx); err != nil || !ok {
		t.Errorf("Installed = %v, %v", ok, err)
	}
}

func TestNotInstalled(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t)
	st := store.New(db.Pool, nil, store.Options{})
	if ok, err := st.Installed(ctx); err != nil || ok {
		t.Errorf("Installed = %v, %v; want false", ok, err)
	}
	if _, err := st.Overview(ctx, store.Window1h); !errors.Is(err, store.ErrNotInstalled) {
		t.Errorf("Overview: err = %v, want ErrNotInstalled", err)
	}
	if _, err := st.Refresh(ctx, "", false); !errors.Is(err, store.ErrNotInstalled) {
		t.Errorf("Refresh: err = %v, want ErrNotInstalled", err)
	}
	if _, err := st.RefreshLog(ctx, 5); !errors.Is(err, store.ErrNotInstalled) {
		t.Errorf("RefreshLog: err = %v, want ErrNotInstalled", err)
	}
	if _, err := st.Refresh(ctx, "mv_nope", false); err == nil {
		t.Errorf("unknown view accepted")
	}
	bad := store.New(db.Pool, nil, store.Options{Schema: "pg_evil"})
	if _, err := bad.Overview(ctx, store.Window1h); err == nil {
		t.Errorf("schema pg_evil accepted")
	}
}

// loginPool connects as a new LOGIN role granted roles (none: no access).
func loginPool(t *testing.T, db *pgtest.DB, name string, roles ...string) *pgxpool.Pool {
	t.Helper()
	ctx := ctxT(t)
	const pw = "s3cret-pw"
	if _, err := db.Pool.Exec(ctx, fmt.Sprintf(`create role %s login password '%s'`, name, pw)); err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if _, err := db.Pool.Exec(ctx, fmt.Sprintf(`grant %s to %s`, r, name)); err != nil {
			t.Fatal(err)
		}
	}
	pool, err := pgxpool.New(ctx, db.Srv.UserDSN(db.Name, name, pw))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx := ctxT(t)
		_, _ = db.Pool.Exec(ctx, "drop owned by "+name)
		_, _ = db.Pool.Exec(ctx, "drop role if exists "+name)
	})
	return pool
}

func TestPermissions(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t)
	refreshAll(t, e.st)

	nobody := store.New(loginPool(t, e.db, e.db.Name+"_nobody"), nil, store.Options{})
	var perr *store.PermissionError
	if _, err := nobody.Overview(ctx, store.Window24h); !errors.As(err, &perr) || perr.Role != store.RoleReader {
		t.Errorf("Overview without grants: err = %v, want a PermissionError naming %s", err, store.RoleReader)
	}

	readerName := e.db.Name + "_reader"
	reader := store.New(loginPool(t, e.db, readerName, store.RoleReader), nil, store.Options{})
	info, err := reader.Server(ctx)
	if err != nil || info.User != readerName || info.Database != e.db.Name || info.Host == "" || info.Port == 0 ||
		info.Version == "" || strings.Contains(info.Version, " ") || info.InRecovery || info.ReplicationLag != nil {
		t.Errorf("Server() = %+v, %v", info, err)
	}
	if strings.Contains(fmt.Sprintf("%+v", info), "s3cret") {
		t.Errorf("Server() shows the password: %+v", info)
	}
	ov, err := reader.Overview(ctx, store.Window24h)
	if err != nil || len(ov.Workflows) == 0 || len(ov.RunningNow) == 0 {
		t.Errorf("reader Overview: %d workflows, %d running, err %v", len(ov.Workflows), len(ov.RunningNow), err)
	}
	if _, err := reader.RefreshLog(ctx, 5); err != nil {
		t.Errorf("reader RefreshLog: %v", err)
	}
	if _, err := reader.Running(ctx); err != nil {
		t.Errorf("reader Running: %v", err)
	}
	if _, err := reader.Refresh(ctx, store.ViewSteps, false); !errors.As(err, &perr) || perr.Role != store.RoleRefresher {
		t.Errorf("reader Refresh: err = %v, want a PermissionError naming %s", err, store.RoleRefresher)
	}

	refresher := store.New(loginPool(t, e.db, e.db.Name+"_refresher", store.RoleRefresher), nil, store.Options{})
	res, err := refresher.Refresh(ctx, store.ViewSteps, false)
	if err != nil || len(res) != 1 || res[0].Status != "ok" {
		t.Errorf("refresher Refresh = %+v, %v", res, err)
	}
}

func TestReadsGiveUpOnLockedViews(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := ctxT(t)
	refreshAll(t, e.st)
	// One connection, warmed up: LockTimeout bounds executing the read
	// batch; preparing it on a fresh connection is bounded only by the
	// query timeout (see Options.LockTimeout).
	pool := connect(t, e.db.DSN+"&pool_max_conns=1")
	st := store.New(pool, nil, store.Options{Schema: schema, LockTimeout: 100 * time.Millisecond, QueryTimeout: time.Minute})
	if _, err := st.Overview(ctx, store.Window24h); err != nil {
		t.Fatal(err)
	}
	// A session holding ACCESS EXCLUSIVE on the log (as a plain, first
	// refresh does on its view): reads fail with lock_timeout rather than
	// hanging until the query timeout.
	tx, err := e.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `lock table metrics.refresh_log in access exclusive mode`); err != nil {
		t.Fatal(err)
	}
	_, err = st.Overview(ctx, store.Window24h)
	if !errors.Is(err, store.ErrLocked) {
		t.Errorf("Overview with the log locked: err = %v, want ErrLocked", err)
	}
}
