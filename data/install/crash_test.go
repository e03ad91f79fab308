package install_test

import (
	"testing"

	"github.com/meshtop/meshtop/data/pgtest"
)

// TestRefreshCrashIsInterrupted restarts the whole cluster with an immediate
// shutdown (crash recovery) while a refresh waits: after recovery the view
// has its previous contents, the attempt is reported 'interrupted', and the
// next refresh succeeds. Not parallel: it restarts the shared cluster, and Go
// runs sequential tests before any parallel one.
func TestRefreshCrashIsInterrupted(t *testing.T) {
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	loadEdgeData(t, ctx, db)
	refreshAll(t, ctx, db.Pool, "metrics")
	admin := connect(t, ctx, db.DSN)
	// The test cluster runs with synchronous_commit off; make the test's own
	// writes durable before the crash.
	if _, err := admin.Exec(ctx, "SET synchronous_commit = on"); err != nil {
		t.Fatal(err)
	}
	setConfig(t, ctx, admin, "lock_timeout", "2min")
	before := checksum(t, ctx, admin, "mv_workflow_metrics")
	addRuns(t, ctx, admin)
	blockView(t, ctx, db.DSN, "mv_workflow_metrics")
	runner, id, done := startBlockedRefresh(t, ctx, db.DSN, "mv_workflow_metrics")
	waitFor(t, ctx, "the refresh to wait for its lock", waitingOnLock(ctx, admin, runner.PgConn().PID()))

	if err := db.Srv.Restart(ctx, "immediate"); err != nil {
		t.Fatal(err)
	}
	if res := <-done; res.err == nil {
		t.Fatalf("refresh survived a crash: %+v", res)
	}
	db.Pool.Reset()
	after := connect(t, ctx, db.DSN)
	if r := readLog(t, ctx, after, id); r.status != "running" || r.state != "interrupted" {
		t.Fatalf("log row after the crash: %+v; want running/interrupted", r)
	}
	if got := checksum(t, ctx, after, "mv_workflow_metrics"); got != before {
		t.Fatal("the view changed across the crash")
	}
	refreshAll(t, ctx, db.Pool, "metrics")
	if got := checksum(t, ctx, after, "mv_workflow_metrics"); got == before {
		t.Fatal("the refresh after the crash did not pick up the new runs")
	}
}
