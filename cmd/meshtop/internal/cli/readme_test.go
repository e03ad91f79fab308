package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/demo"
	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/pgtest"
)

// TestREADMEJqExamples runs every `meshtop status --json | jq '…'` line
// of the README against demo-shaped data — the demo's seed and its 40
// workflows, among them versions without runs, whose rates are null — and
// requires jq to succeed (issue 24.10: `sort_by(-.failure_rate)` failed
// with "null (null) cannot be negated"). jq comes from Debian
// (.ci/install-deps installs it).
func TestREADMEJqExamples(t *testing.T) {
	t.Parallel()
	jq, err := exec.LookPath("jq")
	if err != nil {
		t.Fatal("jq is not installed: run .ci/install-deps (or apt-get install jq)")
	}
	b, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cmd := regexp.MustCompile(`(?m)^meshtop status --json((?: --window \S+)?) \| jq '([^']+)'`)
	found := cmd.FindAllStringSubmatch(string(b), -1)
	if len(found) == 0 {
		t.Fatal("no `meshtop status --json | jq` example in the README")
	}

	db := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := fixture.Generate(ctx, db.Pool, fixture.Spec{
		Seed: demo.DefaultSeed, Projects: 4, Workflows: 40, Runs: 20_000, Days: 30, Anchor: anchor,
	}); err != nil {
		t.Fatalf("generating the demo-shaped history: %v", err)
	}
	installInto(t, db)
	run(t, runOpts{}, "refresh", "--dsn", db.DSN).must(t, 0)

	for _, m := range found {
		args := append([]string{"status", "--json", "--dsn", db.DSN}, strings.Fields(m[1])...)
		doc := run(t, runOpts{}, args...).must(t, 0).stdout
		if !strings.Contains(doc, `"failure_rate": null`) {
			t.Fatalf("the demo-shaped data has no workflow with a null failure rate: the example is not put to the test")
		}
		c := exec.Command(jq, m[2])
		c.Stdin = strings.NewReader(doc)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Errorf("README: jq '%s' failed: %v\n%s", m[2], err, out)
			continue
		}
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Errorf("README: jq '%s' printed no JSON: %v\n%s", m[2], err, out)
		}
		if top, ok := v.([]any); ok && strings.Contains(m[2], "failure_rate") {
			if len(top) == 0 || len(top) > 5 {
				t.Errorf("README: jq '%s' gave %d workflows", m[2], len(top))
			}
			prev := 2.0
			for _, w := range top {
				fr, ok := w.(map[string]any)["failure_rate"].(float64)
				if !ok || fr > prev {
					t.Errorf("README: jq '%s': not the workflows failing most, in order: %s", m[2], out)
					break
				}
				prev = fr
			}
		}
	}
}
