package cli

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

var update = flag.Bool("update", false, "rewrite testdata/status.golden.json")

// TestStatusJSONGolden pins the JSON contract (docs/JSON.md): a fixed seed,
// a pinned metrics clock and generated_at, and the refresh durations (the
// only measured values) normalised.
func TestStatusJSONGolden(t *testing.T) {
	t.Parallel()
	db := installInto(t, seedWith(t, pgtest.NewDatabase(t), true)) // with step events: steps[]
	run(t, runOpts{}, "refresh", "--dsn", db.DSN).must(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.Pool.Exec(ctx, `update metrics.refresh_log
		set started_at = $1, finished_at = $1::timestamptz + interval '0.25 seconds', duration_ms = 250, pid = 4242`, anchor); err != nil {
		t.Fatalf("normalising the refresh log: %v", err)
	}
	if _, err := db.Pool.Exec(ctx, `update metrics.capture_state set mode_since = $1`, anchor); err != nil {
		t.Fatalf("normalising the capture state: %v", err)
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

// change compares with the previous window where the hourly view holds one
// (issue 14.9): an object for 24h, null for 30d.
func TestChangeJSON(t *testing.T) {
	r := func(v float64) *float64 { return &v }
	ch := map[string]store.Change{"a": {FailureRate: r(0.3), PrevFailureRate: r(0.1), P95HourMs: r(150), PrevP95HourMs: r(100)}}
	c := changeJSON(ch, "a", store.Window24h)
	if c == nil || *c.FailureRateDelta != 0.2 || *c.P95Ratio != 0.5 {
		t.Fatalf("24h: %+v", c)
	}
	if c := changeJSON(ch, "a", store.Window30d); c != nil {
		t.Fatalf("30d: %+v, want null", c)
	}
}
