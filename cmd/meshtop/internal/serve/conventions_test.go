package serve_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/meshtop/meshtop/cmd/meshtop/internal/serve"
	"github.com/meshtop/meshtop/data/store"
)

// tool finds a command of Debian's prometheus package. Outside CI a
// machine without it skips the test; `make test` installs it, so under CI
// its absence fails.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := name + " is not installed: `make deps` installs Debian's prometheus package"
		if os.Getenv("CI") != "" {
			t.Fatalf("%s (%v)", msg, err)
		}
		t.Skip(msg)
	}
	return p
}

// promtoolCheck runs `promtool check metrics` (Prometheus's linter of the
// exposition format and naming conventions) on body.
func promtoolCheck(t *testing.T, body string) {
	t.Helper()
	cmd := exec.Command(tool(t, "promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// The live /metrics of a running serve, with every part on (two windows,
// the refresh schedule), passes `promtool check metrics`; no series has a
// label Prometheus sets itself (instance, job); and docs/SERVE.md's table
// lists exactly the meshtop_ families served, with their types.
func TestMetricsFollowPrometheusConventions(t *testing.T) {
	e := setup(t)
	r := start(t, e, serve.Config{Instance: "lint", Listen: "127.0.0.1:0", RefreshEvery: time.Hour,
		MetricsWindows: []store.Window{store.Window24h, store.Window7d}, Version: "1.2.3", Commit: "abc1234"})
	body := get(t, "http://"+r.addrs.HTTP+"/metrics", 200)
	promtoolCheck(t, body)

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	served := map[string]string{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "instance" || l.GetName() == "job" {
					t.Errorf("%s has a label %q: Prometheus sets it on every series it scrapes", name, l.GetName())
				}
			}
		}
		if strings.HasPrefix(name, "meshtop_") {
			served[name] = strings.ToLower(f.GetType().String())
		}
	}
	if f := families["meshtop_build_info"]; f == nil || len(f.GetMetric()) != 1 ||
		!slices.EqualFunc(f.GetMetric()[0].GetLabel(), []string{"commit=abc1234", "instance_name=lint", "version=1.2.3"},
			func(l *dto.LabelPair, s string) bool { return l.GetName()+"="+l.GetValue() == s }) {
		t.Errorf("meshtop_build_info: %s", grepLines(body, "meshtop_build_info"))
	}

	documented := documentedMetrics(t)
	for name, typ := range served {
		if d, ok := documented[name]; !ok {
			t.Errorf("docs/SERVE.md does not list %s (%s)", name, typ)
		} else if d != typ {
			t.Errorf("docs/SERVE.md says %s is a %s; it is a %s", name, d, typ)
		}
	}
	for name := range documented {
		if _, ok := served[name]; !ok && !absentHere[name] {
			t.Errorf("docs/SERVE.md lists %s, which is not served", name)
		}
	}
	r.stop(t)
}

// absentHere are the documented series this test's server does not serve:
// they exist only with a replication slot (the wal capture mode) or after
// a fallback from it.
var absentHere = map[string]bool{
	"meshtop_capture_wal_retained_bytes":             true,
	"meshtop_capture_wal_restart_bytes":              true,
	"meshtop_capture_wal_lag_seconds":                true,
	"meshtop_capture_wal_fallback_timestamp_seconds": true,
}

// documentedMetrics reads the metrics table of docs/SERVE.md: name → type.
func documentedMetrics(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "..", "..", "docs", "SERVE.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`meshtop_") {
			continue
		}
		out[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.TrimSpace(cells[2])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("docs/SERVE.md: no metrics table")
	}
	return out
}
