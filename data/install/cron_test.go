package install_test

import (
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/pgtest"
)

// TestCronCommand finds out empirically which command a pg_cron (1.4) job
// may use to refresh: two jobs fire in the same minute, one with
// `CALL S.refresh()` and one with `SET statement_timeout = ...; CALL
// S.refresh()`. pg_cron sends a job's command as one simple-query string, so
// the second runs as an implicit transaction in which the procedure's COMMIT
// is refused. Waits for the next minute boundary (~1-2 min), once.
func TestCronCommand(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewCronDatabase(t)
	loadEdgeData(t, ctx, db)
	if _, err := db.Pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_cron`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `SELECT cron.schedule('meshtop-test-call', '* * * * *', 'CALL metrics.refresh(NULL, true)'),
  cron.schedule('meshtop-test-set-call', '* * * * *', $$SET statement_timeout = '10min'; CALL metrics.refresh(NULL, true)$$)`); err != nil {
		t.Fatal(err)
	}
	defer db.Pool.Exec(ctx, `SELECT cron.unschedule(jobname) FROM cron.job WHERE jobname LIKE 'meshtop-test-%'`)
	status := map[string]string{}
	msg := map[string]string{}
	// pg_cron fires at the next minute boundary (the one after, if the
	// jobs were scheduled just before it); then both jobs must finish.
	deadline := time.Now().Add(4 * time.Minute)
	for len(status) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("pg_cron did not finish both jobs (got %v)", status)
		}
		time.Sleep(time.Second)
		rows, err := db.Pool.Query(ctx, `SELECT j.jobname, d.status, coalesce(d.return_message, '')
FROM cron.job_run_details d JOIN cron.job j USING (jobid)
WHERE j.jobname LIKE 'meshtop-test-%' AND d.status IN ('succeeded', 'failed')`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name, st, m string
			if err := rows.Scan(&name, &st, &m); err != nil {
				t.Fatal(err)
			}
			status[name], msg[name] = st, m
		}
		rows.Close()
	}
	t.Logf("CALL metrics.refresh(): %s %q", status["meshtop-test-call"], msg["meshtop-test-call"])
	t.Logf("SET statement_timeout; CALL metrics.refresh(): %s %q", status["meshtop-test-set-call"], msg["meshtop-test-set-call"])
	if status["meshtop-test-call"] != "succeeded" {
		t.Errorf("CALL refresh() job: %s %s", status["meshtop-test-call"], msg["meshtop-test-call"])
	}
	if status["meshtop-test-set-call"] != "failed" || !strings.Contains(msg["meshtop-test-set-call"], "invalid transaction termination") {
		t.Errorf("SET; CALL job: %s %s; expected failed with invalid transaction termination", status["meshtop-test-set-call"], msg["meshtop-test-set-call"])
	}
	var ok int
	if err := db.Pool.QueryRow(ctx, `SELECT count(DISTINCT view_name) FROM metrics.refresh_log WHERE status = 'ok' AND application_name = 'pg_cron'`).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	if ok != 3 {
		t.Errorf("views refreshed by pg_cron = %d; want 3", ok)
	}
}
