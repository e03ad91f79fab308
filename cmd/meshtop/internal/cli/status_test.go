package cli

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/status.golden.json")

// TestStatusJSONGolden pins the JSON contract (docs/JSON.md): a fixed seed,
// a pinned metrics clock and generated_at, and the refresh durations (the
// only measured values) normalised.
func TestStatusJSONGolden(t *testing.T) {
	t.Parallel()
	db := refreshed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.Pool.Exec(ctx, `update metrics.refresh_log
		set started_at = $1, finished_at = $1::timestamptz + interval '0.25 seconds', duration_ms = 250, pid = 4242`, anchor); err != nil {
		t.Fatalf("normalising the refresh log: %v", err)
	}
	r := run(t, runOpts{}, "status", "--json", "--dsn", db.DSN).must(t, 0)
	golden := filepath.Join("testdata", "status.golden.json")
	if *update {
		if err := os.WriteFile(golden, []byte(r.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("reading %s (run with -update to create it): %v", golden, err)
	}
	if r.stdout != string(want) {
		got, exp := strings.Split(r.stdout, "\n"), strings.Split(string(want), "\n")
		for i := range max(len(got), len(exp)) {
			g, e := "", ""
			if i < len(got) {
				g = got[i]
			}
			if i < len(exp) {
				e = exp[i]
			}
			if g != e {
				t.Errorf("status --json differs from %s at line %d:\n got %q\nwant %q\n(run `go test ./cmd/meshtop/internal/cli -run TestStatusJSONGolden -update` after an intended change)", golden, i+1, g, e)
				break
			}
		}
	}
}
