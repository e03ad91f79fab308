package tui_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgserver"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

// TestFlowFirstRunInstalls: on a fresh MeshHook database, y on the install
// prompt installs, refreshes every view right away (showing its steps), and
// hands over to an overview with workflow rows — no other key.
func TestFlowFirstRunInstalls(t *testing.T) {
	t.Parallel()
	e := setupUninstalled(t, pgtest.NewDatabase(t))
	var name string
	if err := e.db.Pool.QueryRow(ctxT(t), "select name from public.workflow_definitions order by name limit 1").Scan(&name); err != nil {
		t.Fatal(err)
	}
	tm := start(t, options(normalised{e.st}, e.in))
	waitText(t, tm, "Install now?")
	press(tm, "y")
	waitText(t, tm, "First refresh (", "installed (", "data as of")
	view := quitAndView(t, tm)
	if !strings.Contains(view, "‹Overview›") {
		t.Fatalf("not on the overview after installing:\n%s", view)
	}
	if !strings.Contains(view, name) || strings.Contains(view, "not been refreshed") || strings.Contains(view, "never refreshed") {
		t.Fatalf("the overview after the install shows no workflow rows (want %q):\n%s", name, view)
	}
	ok, err := e.in.Installed(ctxT(t))
	if err != nil || !ok {
		t.Fatalf("Installed() = %v, %v after installing from the dashboard", ok, err)
	}
	vs, err := e.st.Views(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if !v.Populated || v.LastStatus != "ok" {
			t.Fatalf("view %s after the first-run install: populated %v, status %q", v.Name, v.Populated, v.LastStatus)
		}
	}
}

// TestFlowNoMeshHookTables: a database without MeshHook's tables is not
// offered an install: the first screen says what is wrong, and q quits.
func TestFlowNoMeshHookTables(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t, pgtest.Empty)
	in := install.New(db.Pool, schema)
	st := store.New(db.Pool, nil, store.Options{Schema: schema})
	tm := start(t, options(normalised{st}, in))
	waitText(t, tm, "cannot be installed", "has no MeshHook tables")
	press(tm, "q")
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(30*time.Second))
	view := fm.View()
	if strings.Contains(view, "Install now?") || strings.Contains(view, "materialized view") {
		t.Fatalf("an install was offered on a database without MeshHook tables:\n%s", view)
	}
}

// TestFlowNoInstallOffer: --no-install says what to run instead and never
// offers to install.
func TestFlowNoInstallOffer(t *testing.T) {
	t.Parallel()
	e := setupUninstalled(t, pgtest.NewDatabase(t))
	o := options(normalised{e.st}, e.in)
	o.NoInstall = true
	tm := start(t, o)
	waitText(t, tm, "Run `meshtop install`")
	view := quitAndView(t, tm)
	if strings.Contains(view, "Install now?") {
		t.Fatalf("--no-install offered to install:\n%s", view)
	}
}

// TestFlowFilterThenDetail: filter the table, open the one match, see its
// charts and step hotspots.
func TestFlowFilterThenDetail(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewDatabase(t), true)
	ctx := ctxT(t)
	ov, err := e.st.Overview(ctx, store.Window24h)
	if err != nil {
		t.Fatal(err)
	}
	// The busiest workflow's slug as the filter: one match.
	var want store.WorkflowMetrics
	for _, w := range ov.Workflows {
		if w.Runs > want.Runs {
			want = w
		}
	}
	det, err := e.st.Workflow(ctx, want.WorkflowID, store.Window24h)
	if err != nil {
		t.Fatal(err)
	}
	o := options(normalised{e.st}, nil)
	clip := &bytes.Buffer{}
	o.Output = clip
	tm := start(t, o)
	waitText(t, tm, "data as of")
	press(tm, "/")
	tm.Type(want.Slug.String())
	press(tm, "enter", "enter")
	waitText(t, tm, "runs / hour", "Step (node)")
	press(tm, "y")
	waitText(t, tm, "copied "+want.WorkflowID)
	view := quitAndView(t, tm)
	// y wrote the id to the clipboard through OSC 52.
	osc := "\x1b]52;c;" + base64.StdEncoding.EncodeToString([]byte(want.WorkflowID))
	if !strings.Contains(clip.String(), osc) {
		t.Fatalf("no OSC 52 copy of %s in %q", want.WorkflowID, clip.String())
	}
	if !strings.Contains(view, want.WorkflowID) || !strings.Contains(view, want.Name.String()) {
		t.Fatalf("detail of %s (%s) not shown:\n%s", want.Name, want.WorkflowID, view)
	}
	if len(det.Steps) == 0 || !strings.Contains(view, det.Steps[0].NodeID.String()) {
		t.Fatalf("step hotspot %v not shown:\n%s", det.Steps, view)
	}
}

// TestFlowRefreshTurnsLagGreen: before the first refresh the badge is red;
// R in the console refreshes every view and the badge turns green.
func TestFlowRefreshTurnsLagGreen(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewDatabase(t), false)
	tm := start(t, options(normalised{e.st}, nil))
	waitText(t, tm, "lag: never refreshed")
	press(tm, "tab")
	waitText(t, tm, "Recent", "schedule:")
	press(tm, "R")
	waitText(t, tm, "✓ mv_step_metrics", "lag <1m ok")
	press(tm, "tab") // back to the overview, now with data
	waitText(t, tm, "data as of 2026-03-10 12:30:00 UTC")
	view := quitAndView(t, tm)
	if !strings.Contains(view, "lag <1m ok") || strings.Contains(view, "never refreshed") {
		t.Fatalf("the lag badge did not turn ok:\n%s", view)
	}
	vs, err := e.st.Views(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if !v.Populated || v.LastStatus != "ok" {
			t.Fatalf("view %s after R: populated %v, status %s", v.Name, v.Populated, v.LastStatus)
		}
	}
}

// TestFlowReadOnlyRefuses: read-only hides refresh keys and refuses them.
func TestFlowReadOnlyRefuses(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewDatabase(t), true)
	o := options(normalised{e.st}, nil)
	o.ReadOnly = true
	tm := start(t, o)
	waitText(t, tm, "data as of", "READ-ONLY")
	press(tm, "tab")
	waitText(t, tm, "Recent")
	press(tm, "R")
	waitText(t, tm, "read-only: refreshing and cancelling are disabled")
	view := quitAndView(t, tm)
	if strings.Contains(view, "refresh all") {
		t.Fatalf("read-only still offers refreshing:\n%s", view)
	}
	log, err := e.st.RefreshLog(ctxT(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 3 {
		t.Fatalf("read-only dashboard wrote to the refresh log: %d entries, want the 3 of setup", len(log))
	}
}

// ownCluster starts a PostgreSQL cluster for this test alone (restarting
// the shared one would break every other test) with a refreshed fixture.
func ownCluster(t *testing.T) (*pgserver.Server, env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{})
	if err != nil {
		t.Fatalf("starting a cluster: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	admin, err := pgx.Connect(ctx, srv.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = admin.Exec(ctx, "create database meshhook")
	admin.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, srv.DSN("meshhook"))
	if err != nil {
		t.Fatal(err)
	}
	err = fixture.ApplySchema(ctx, conn)
	conn.Close(ctx)
	if err != nil {
		t.Fatalf("applying the MeshHook schema: %v", err)
	}
	pool, err := pgxpool.New(ctx, srv.DSN("meshhook"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	db := &pgtest.DB{Name: "meshhook", DSN: srv.DSN("meshhook"), Pool: pool, Srv: srv}
	return srv, setup(t, db, true)
}

// TestFlowDatabaseRestart: the server goes away — banner, last data kept —
// and comes back: the dashboard resumes by itself. The first half is the
// reconnecting-banner golden.
func TestFlowDatabaseRestart(t *testing.T) {
	t.Parallel()
	srv, e := ownCluster(t)
	ctx := ctxT(t)
	o := options(normalised{e.st}, nil)
	o.Interval = 250 * time.Millisecond

	t.Run("banner", func(t *testing.T) {
		tm := start(t, o)
		waitText(t, tm, "data as of")
		if err := srv.StopServer(ctx, "fast"); err != nil {
			t.Fatal(err)
		}
		waitText(t, tm, "reconnecting (attempt 2")
		view := quitAndView(t, tm)
		if !strings.Contains(view, "Σ 17/17 workflows") {
			t.Fatalf("the last data is not kept while reconnecting:\n%s", view)
		}
		golden.RequireEqual(t, []byte(view))
		if err := srv.StartServer(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("recovers", func(t *testing.T) {
		tm := start(t, o)
		waitText(t, tm, "data as of")
		// Filter, sort and window survive the reconnect.
		press(tm, "/")
		tm.Type("slack")
		press(tm, "enter", "s", "s", "3") // sort by p50 (after ΔFail)
		waitText(t, tm, "window 7d · sorted by p50")
		if err := srv.StopServer(ctx, "immediate"); err != nil {
			t.Fatal(err)
		}
		waitText(t, tm, "reconnecting (attempt")
		if err := srv.StartServer(ctx); err != nil {
			t.Fatal(err)
		}
		waitText(t, tm, "reconnected")
		view := quitAndView(t, tm)
		if strings.Contains(view, "reconnecting (attempt") {
			t.Fatalf("still reconnecting after the server came back:\n%s", view)
		}
		for _, kept := range []string{"/slack", "[7d]", "window 7d · sorted by p50"} {
			if !strings.Contains(view, kept) {
				t.Fatalf("%q lost across the reconnect:\n%s", kept, view)
			}
		}
	})
}

// TestFlowInstallWithoutPrivileges: a role that may not create the objects
// is told why and what to do, and nothing is installed.
func TestFlowInstallWithoutPrivileges(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	generate(t, db)
	role := "tui_viewer_" + db.Name
	exec(t, db, "create role "+pgx.Identifier{role}.Sanitize()+" login password 'tui-test-secret'")
	t.Cleanup(func() {
		_, _ = db.Pool.Exec(context.Background(), "drop owned by "+pgx.Identifier{role}.Sanitize())
	})
	pool, err := pgxpool.New(ctxT(t), db.Srv.UserDSN(db.Name, role, "tui-test-secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	in := install.New(pool, schema)
	st := store.New(pool, nil, store.Options{Schema: schema})
	tm := start(t, options(normalised{st}, in))
	// The missing privileges are found before anything is offered.
	waitText(t, tm, "cannot be installed", "lacks")
	view := quitAndView(t, tm)
	if testing.Verbose() {
		t.Log("\n" + view)
	}
	if !strings.Contains(view, "meshtop_reader") {
		t.Fatalf("no advice on what to grant:\n%s", view)
	}
	if strings.Contains(view, "tui-test-secret") {
		t.Fatal("the password appears on screen")
	}
	ok, err := install.New(db.Pool, schema).Installed(ctxT(t))
	if err != nil || ok {
		t.Fatalf("Installed() = %v, %v after a refused install", ok, err)
	}
}
