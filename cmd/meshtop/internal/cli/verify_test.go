package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestVerifyExitCodes: 3 before the rollup is built, 0 when it matches the
// raw tables, 1 (with the differing fields, also as JSON) after a bucket was
// corrupted by hand, 0 again after refresh --full.
func TestVerifyExitCodes(t *testing.T) {
	t.Parallel()
	db := installed(t)
	dsn := []string{"--dsn", db.DSN}
	r := run(t, runOpts{}, append([]string{"verify"}, dsn...)...).must(t, 3)
	if !strings.Contains(r.stderr, "cannot be verified") {
		t.Errorf("verify before the first refresh: %s", r)
	}
	run(t, runOpts{}, append([]string{"refresh"}, dsn...)...).must(t, 0)
	r = run(t, runOpts{}, append([]string{"verify", "--window", "7d"}, dsn...)...).must(t, 0)
	if !strings.Contains(r.stdout, "matches the raw tables") {
		t.Errorf("verify after a refresh: %s", r)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.Pool.Exec(ctx, `UPDATE metrics.rollup_runs_hour SET failed = failed + 1
WHERE bucket = (SELECT max(bucket) FROM metrics.rollup_runs_hour WHERE bucket < $1::timestamptz - interval '3 hours')`, anchor); err != nil {
		t.Fatal(err)
	}
	r = run(t, runOpts{}, append([]string{"verify"}, dsn...)...).must(t, 1)
	if !strings.Contains(r.stdout, "runs_hour") || !strings.Contains(r.stdout, " failed ") || !strings.Contains(r.stderr, "refresh --full") {
		t.Errorf("verify after corrupting a bucket: %s", r)
	}
	r = run(t, runOpts{}, append([]string{"verify", "--json"}, dsn...)...).must(t, 1)
	var doc struct {
		SchemaVersion int  `json:"schema_version"`
		Clean         bool `json:"clean"`
		Drift         []struct {
			Kind, Field string
		} `json:"drift"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.SchemaVersion != 1 || doc.Clean || len(doc.Drift) == 0 {
		t.Errorf("verify --json: %+v, %v\n%s", doc, err, r.stdout)
	}
	for _, d := range doc.Drift { // one per workflow with runs in that hour
		if d.Kind != "runs_hour" || d.Field != "failed" {
			t.Errorf("verify --json reports %+v; only runs_hour.failed was changed", d)
		}
	}
	r = run(t, runOpts{}, append([]string{"refresh", "--full"}, dsn...)...).must(t, 0)
	if !strings.Contains(r.stdout, "  full") {
		t.Errorf("refresh --full: %s", r)
	}
	run(t, runOpts{}, append([]string{"verify"}, dsn...)...).must(t, 0)
}
