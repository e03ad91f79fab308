package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshtop/meshtop/cmd/meshtop/internal/cli"
	"github.com/meshtop/meshtop/cmd/meshtop/internal/serve"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/store"
)

// A real Prometheus (Debian's package) scrapes meshtop serve; the series
// read back through its HTTP API equal `meshtop status --json` for the same
// refresh.
func TestPrometheusScrapeEqualsStatusJSON(t *testing.T) {
	e := setup(t)
	r := start(t, e, serve.Config{Instance: "prom", Listen: "127.0.0.1:0", MetricsCache: time.Hour,
		MetricsWindows: []store.Window{store.Window24h, store.Window7d}})

	promURL := startPrometheus(t, r.addrs.HTTP)

	// Every exported workflow of both windows, once Prometheus has scraped.
	var runs []promSample
	waitFor(t, 2*time.Minute, "Prometheus to hold meshtop's series", func() bool {
		runs = promQuery(t, promURL, `meshtop_workflow_runs`)
		return len(runs) > 0
	})
	for _, w := range []store.Window{store.Window24h, store.Window7d} {
		doc := statusJSON(t, e, w)
		if len(doc.Workflows) == 0 {
			t.Fatalf("status --json --window %s: no workflows", w)
		}
		byID := map[string]cli.WorkflowJSON{}
		for _, wf := range doc.Workflows {
			byID[wf.WorkflowID] = wf
		}
		sel := fmt.Sprintf(`{window=%q}`, w)
		seen := map[string]bool{}
		for _, s := range promQuery(t, promURL, `meshtop_workflow_runs`+sel) {
			wf, ok := byID[s.Labels["workflow_id"]]
			if !ok {
				t.Fatalf("%s: workflow %s is not in status --json", w, s.Labels["workflow_id"])
			}
			seen[wf.WorkflowID] = true
			want := map[string]int64{"succeeded": wf.Succeeded, "failed": wf.Failed, "canceled": wf.Canceled, "running": wf.Running}[s.Labels["status"]]
			if s.Value != float64(want) {
				t.Errorf("%s %s runs{status=%s} = %v, status --json says %d", w, wf.Slug, s.Labels["status"], s.Value, want)
			}
			if s.Labels["slug"] != wf.Slug.String() || s.Labels["version"] != strconv.Itoa(wf.Version) || s.Labels["project_id"] != wf.ProjectID {
				t.Errorf("labels %v differ from status --json's %s v%d %s", s.Labels, wf.Slug, wf.Version, wf.ProjectID)
			}
		}
		if len(seen) != len(byID) {
			t.Errorf("%s: Prometheus has %d workflows, status --json %d", w, len(seen), len(byID))
		}
		// status --json rounds ratios to 1e-6 and durations to 1e-3 ms.
		check := func(metric string, get func(cli.WorkflowJSON) *float64, scale, tol float64) {
			t.Helper()
			got := map[string]float64{}
			for _, s := range promQuery(t, promURL, metric+sel) {
				got[s.Labels["workflow_id"]] = s.Value
			}
			for id, wf := range byID {
				v := get(wf)
				g, ok := got[id]
				if v == nil {
					if ok {
						t.Errorf("%s %s: Prometheus has %v, status --json null", metric, wf.Slug, g)
					}
					continue
				}
				if !ok || math.Abs(g*scale-*v) > tol/2+1e-9*math.Abs(*v) {
					t.Errorf("%s %s %s: Prometheus %v (present %v), status --json %v", metric, w, wf.Slug, g*scale, ok, *v)
				}
			}
		}
		check(`meshtop_workflow_success_ratio`, func(w cli.WorkflowJSON) *float64 { return w.SuccessRate }, 1, 1e-6)
		check(`meshtop_workflow_failure_ratio`, func(w cli.WorkflowJSON) *float64 { return w.FailureRate }, 1, 1e-6)
		check(`meshtop_workflow_run_duration_p50_seconds`, func(w cli.WorkflowJSON) *float64 { return w.P50DurationMs }, 1e3, 1e-3)
		check(`meshtop_workflow_run_duration_p95_seconds`, func(w cli.WorkflowJSON) *float64 { return w.P95DurationMs }, 1e3, 1e-3)
		check(`meshtop_workflow_run_duration_p99_seconds`, func(w cli.WorkflowJSON) *float64 { return w.P99DurationMs }, 1e3, 1e-3)
		check(`meshtop_workflow_run_duration_average_seconds`, func(w cli.WorkflowJSON) *float64 { return w.AvgDurationMs }, 1e3, 1e-3)

		// Steps: the series of every step (every workflow is exported
		// here, and fewer steps than --metrics-max-steps) equal the
		// workflows' steps in status --json.
		type stepKey struct{ wf, node string }
		steps := map[stepKey]cli.StepJSON{}
		for _, wf := range doc.Workflows {
			for _, st := range wf.Steps {
				steps[stepKey{wf.WorkflowID, st.NodeID.String()}] = st
			}
		}
		if len(steps) == 0 || len(steps) > 100 {
			t.Fatalf("%s: %d steps in status --json; the test wants some, at most --metrics-max-steps", w, len(steps))
		}
		stepCheck := func(metric string, get func(cli.StepJSON, map[string]string) float64, tol float64) {
			t.Helper()
			series := promQuery(t, promURL, metric+sel)
			seen := map[stepKey]bool{}
			for _, s := range series {
				k := stepKey{s.Labels["workflow_id"], s.Labels["node_id"]}
				st, ok := steps[k]
				if !ok {
					t.Fatalf("%s %s: step %v is not in status --json", metric, w, k)
				}
				seen[k] = true
				if want := get(st, s.Labels); math.Abs(s.Value-want) > tol/2+1e-9*math.Abs(want) {
					t.Errorf("%s%v %s: Prometheus %v, status --json %v", metric, s.Labels, w, s.Value, want)
				}
			}
			if len(seen) != len(steps) {
				t.Errorf("%s %s: Prometheus has %d steps, status --json %d", metric, w, len(seen), len(steps))
			}
		}
		stepCheck(`meshtop_step_executions`, func(st cli.StepJSON, l map[string]string) float64 {
			if l["outcome"] == "failed" {
				return float64(st.Failures)
			}
			return float64(st.Executions - st.Failures)
		}, 0)
		stepCheck(`meshtop_step_attempts`, func(st cli.StepJSON, _ map[string]string) float64 { return float64(st.Attempts) }, 0)
		stepCheck(`meshtop_step_failed_attempts`, func(st cli.StepJSON, _ map[string]string) float64 { return float64(st.FailedAttempts) }, 0)
		stepCheck(`meshtop_step_retried_executions`, func(st cli.StepJSON, _ map[string]string) float64 { return float64(st.Retried) }, 0)
		stepCheck(`meshtop_step_attempts_max`, func(st cli.StepJSON, _ map[string]string) float64 { return float64(st.MaxAttempts) }, 0)
		stepCheck(`meshtop_step_http_attempts`, func(st cli.StepJSON, l map[string]string) float64 {
			h := st.HTTPStatus
			return float64(map[string]int64{"2xx": h.S2xx, "4xx": h.S4xx, "5xx": h.S5xx, "other": h.Other, "none": h.None}[l["status_class"]])
		}, 0)
		stepCheck(`meshtop_step_latency_p95_seconds`, func(st cli.StepJSON, _ map[string]string) float64 { return *st.P95LatencyMs / 1e3 }, 1e-6)
		if n := len(promQuery(t, promURL, `meshtop_step_http_attempts`+sel)); n != 5*len(steps) {
			t.Errorf("%s: %d step status-class series, want 5 per step (%d)", w, n, 5*len(steps))
		}

		// Views.
		views := map[string]cli.ViewJSON{}
		for _, v := range doc.Views {
			views[v.Name] = v
		}
		for _, s := range promQuery(t, promURL, `meshtop_view_rows`) {
			if v := views[s.Labels["view"]]; s.Value != float64(v.Rows) {
				t.Errorf("rows of %s: Prometheus %v, status --json %d", v.Name, s.Value, v.Rows)
			}
		}
		for _, s := range promQuery(t, promURL, `meshtop_view_populated`) {
			if v := views[s.Labels["view"]]; s.Value != b2f(v.Populated) {
				t.Errorf("populated of %s: Prometheus %v, status --json %v", v.Name, s.Value, v.Populated)
			}
		}
		for _, s := range promQuery(t, promURL, `meshtop_view_last_refresh_timestamp_seconds`) {
			v := views[s.Labels["view"]]
			at, err := time.Parse(time.RFC3339, *v.LastRefreshAt)
			if err != nil || math.Floor(s.Value) != float64(at.Unix()) {
				t.Errorf("last refresh of %s: Prometheus %v, status --json %s", v.Name, s.Value, *v.LastRefreshAt)
			}
		}
		for _, s := range promQuery(t, promURL, `meshtop_view_last_refresh_duration_seconds`) {
			v := views[s.Labels["view"]]
			if math.Abs(s.Value*1e3-*v.LastDurationMs) > 1e-3 {
				t.Errorf("last duration of %s: Prometheus %v s, status --json %v ms", v.Name, s.Value, *v.LastDurationMs)
			}
		}
		if n := len(promQuery(t, promURL, `meshtop_view_refresh_lag_seconds`)); n != len(doc.Views) {
			t.Errorf("lag series: %d, want one per view (%d)", n, len(doc.Views))
		}
	}
	// Prometheus scraped many times, the cache (1h) kept it to one reading.
	waitFor(t, time.Minute, "several scrapes", func() bool {
		s := promQuery(t, promURL, `count_over_time(up{job="meshtop"}[5m])`)
		for _, x := range s {
			if x.Labels["job"] == "meshtop" && x.Value >= 3 {
				return true
			}
		}
		return false
	})
	reads := promQuery(t, promURL, `meshtop_exporter_database_reads_total`)
	if len(reads) != 1 || reads[0].Value != 1 {
		t.Errorf("database reads after several scrapes: %+v, want exactly 1", reads)
	}
	if up := promQuery(t, promURL, `meshtop_up`); len(up) != 1 || up[0].Value != 1 {
		t.Errorf("meshtop_up: %+v", up)
	}
	if g := promQuery(t, promURL, `go_goroutines{job="meshtop"}`); len(g) != 1 {
		t.Errorf("the Go runtime's metrics are missing: %+v", g)
	}
	r.stop(t)
}

// Concurrent scrapes read the database once per cache interval; the
// endpoints answer as documented and refuse everything but GET.
func TestEndpoints(t *testing.T) {
	e := setup(t)
	r := start(t, e, serve.Config{Instance: "ep", Listen: "127.0.0.1:0", MetricsCache: time.Hour})
	base := "http://" + r.addrs.HTTP
	var wg sync.WaitGroup
	bodies := make([]string, 8) // promhttp serves 8 at once (MaxRequestsInFlight)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies[i] = get(t, base+"/metrics", 200)
		}()
	}
	wg.Wait()
	if !strings.Contains(bodies[0], "meshtop_exporter_database_reads_total 1\n") {
		t.Fatalf("8 concurrent scrapes: want exactly one database read:\n%s", grepLines(bodies[0], "database_reads"))
	}
	if got := get(t, base+"/healthz", 200); got != "ok\n" {
		t.Errorf("/healthz: %q", got)
	}
	if got := get(t, base+"/readyz", 200); got != "ready\n" {
		t.Errorf("/readyz: %q", got)
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		req, _ := http.NewRequest(m, base+"/metrics", strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /metrics: %d, want 405", m, resp.StatusCode)
		}
	}
	// Only documented label names (never instance or job: Prometheus sets
	// those); no names, payloads or connection strings.
	allowed := map[string]bool{"view": true, "outcome": true, "window": true, "workflow_id": true, "project_id": true,
		"slug": true, "version": true, "status": true, "commit": true, "instance_name": true, "role": true, "reason": true, "mode": true, "node_id": true, "status_class": true}
	for _, line := range strings.Split(bodies[0], "\n") {
		if !strings.HasPrefix(line, "meshtop_") {
			continue
		}
		if strings.Contains(line, "postgres://") || strings.Contains(line, e.db.Name) {
			t.Errorf("a series carries connection details: %s", line)
		}
		if i := strings.IndexByte(line, '{'); i > 0 {
			for _, kv := range strings.Split(line[i+1:strings.LastIndexByte(line, '}')], ",") {
				if k, _, _ := strings.Cut(kv, "="); !allowed[k] {
					t.Errorf("undocumented label %q in %s", k, line)
				}
			}
		}
	}
	r.stop(t)

	// Not installed: /readyz says so.
	e2 := env{db: pgtestNewDatabase(t)}
	r2 := start(t, e2, serve.Config{Instance: "ep2", Listen: "127.0.0.1:0"})
	if got := get(t, "http://"+r2.addrs.HTTP+"/readyz", 503); !strings.Contains(got, "not installed") {
		t.Errorf("/readyz without the views: %q", got)
	}
	r2.stop(t)
}

// The workflow cap keeps the worst failure ratios.
func TestMaxWorkflows(t *testing.T) {
	e := setup(t)
	r := start(t, e, serve.Config{Instance: "cap", Listen: "127.0.0.1:0", MetricsMaxWorkflows: 3})
	body := get(t, "http://"+r.addrs.HTTP+"/metrics", 200)
	ratios := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "meshtop_workflow_failure_ratio{") {
			id := between(line, `workflow_id="`, `"`)
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			ratios[id] = v
		}
	}
	if len(ratios) != 3 {
		t.Fatalf("exported %d workflows, want 3:\n%s", len(ratios), grepLines(body, "failure_ratio"))
	}
	if !strings.Contains(body, `meshtop_workflows_exported{window="24h"} 3`) {
		t.Errorf("meshtop_workflows_exported: %s", grepLines(body, "meshtop_workflows"))
	}
	doc := statusJSON(t, e, store.Window24h)
	minKept := math.Inf(1)
	for _, v := range ratios {
		minKept = math.Min(minKept, v)
	}
	for _, wf := range doc.Workflows {
		if _, kept := ratios[wf.WorkflowID]; !kept && wf.FailureRate != nil && *wf.FailureRate > minKept+1e-6 {
			t.Errorf("%s (failure ratio %v) was dropped while %v was kept", wf.Slug, *wf.FailureRate, minKept)
		}
	}
	r.stop(t)
}

// At most --metrics-max-steps steps are exported per window, those with the
// most final failures (then failed attempts).
func TestMaxSteps(t *testing.T) {
	e := setup(t)
	r := start(t, e, serve.Config{Instance: "stepcap", Listen: "127.0.0.1:0", MetricsMaxSteps: 2})
	body := get(t, "http://"+r.addrs.HTTP+"/metrics", 200)
	failed := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "meshtop_step_executions{") && strings.Contains(line, `outcome="failed"`) {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			failed[between(line, `workflow_id="`, `"`)+"/"+between(line, `node_id="`, `"`)] = v
		}
	}
	if len(failed) != 2 {
		t.Fatalf("exported %d steps, want 2:\n%s", len(failed), grepLines(body, "meshtop_step_executions"))
	}
	if !strings.Contains(body, `meshtop_steps_exported{window="24h"} 2`) {
		t.Errorf("meshtop_steps_exported: %s", grepLines(body, "meshtop_steps"))
	}
	doc := statusJSON(t, e, store.Window24h)
	minKept := math.Inf(1)
	for _, v := range failed {
		minKept = math.Min(minKept, v)
	}
	for _, wf := range doc.Workflows {
		for _, st := range wf.Steps {
			if _, kept := failed[wf.WorkflowID+"/"+st.NodeID.String()]; !kept && float64(st.Failures) > minKept {
				t.Errorf("%s %s (%d failures) was dropped while one with %v was kept", wf.Slug, st.NodeID, st.Failures, minKept)
			}
		}
	}
	r.stop(t)
}

func between(s, a, b string) string {
	_, rest, _ := strings.Cut(s, a)
	v, _, _ := strings.Cut(rest, b)
	return v
}

func grepLines(body, sub string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func get(t *testing.T, u string, want int) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Errorf("GET %s: %v", u, err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Errorf("GET %s: %d, want %d: %s", u, resp.StatusCode, want, b)
	}
	return string(b)
}

// statusJSON runs `meshtop status --json` in-process.
func statusJSON(t *testing.T, e env, w store.Window) cli.StatusJSON {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := cli.Main(ctx, []string{"status", "--json", "--window", string(w), "--dsn", e.db.DSN}, cli.IO{
		Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" },
	})
	if code != 0 {
		t.Fatalf("status --json: exit %d: %s", code, errb.String())
	}
	var doc cli.StatusJSON
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("status --json: %v", err)
	}
	return doc
}

type promSample struct {
	Labels map[string]string
	Value  float64
}

// promJob is one scrape job of the test's Prometheus: plain HTTP unless
// CAFile is set (then HTTPS trusting that CA), with basic auth when User is
// set.
type promJob struct {
	Name, Target       string
	CAFile             string
	User, PasswordFile string
}

func (j promJob) yaml() string {
	s := fmt.Sprintf("  - job_name: %q\n", j.Name)
	if j.CAFile != "" {
		s += fmt.Sprintf("    scheme: https\n    tls_config:\n      ca_file: %q\n", j.CAFile)
	}
	if j.User != "" {
		s += fmt.Sprintf("    basic_auth:\n      username: %q\n      password_file: %q\n", j.User, j.PasswordFile)
	}
	return s + fmt.Sprintf("    static_configs:\n      - targets: [%q]\n", j.Target)
}

// startPrometheus runs Debian's prometheus with a temporary configuration
// scraping target (job meshtop, plain HTTP) every second, on a free
// loopback port; it is stopped when the test ends.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	return startPrometheusJobs(t, promJob{Name: "meshtop", Target: target})
}

// startPrometheusJobs is startPrometheus with the given scrape jobs.
func startPrometheusJobs(t *testing.T, jobs ...promJob) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus is not installed: `make deps` installs Debian's prometheus package (%v)", err)
	}
	dir := t.TempDir()
	cfg := "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
	for _, j := range jobs {
		cfg += j.yaml()
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var logb logBuf
	cmd := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &logb, &logb
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logb.String())
		}
	})
	u := "http://" + addr
	deadline := time.Now().Add(time.Minute)
	for {
		if resp, err := http.Get(u + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return u
			}
		}
		select {
		case <-exited:
			t.Fatalf("prometheus exited:\n%s", logb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready within a minute:\n%s", logb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// promQuery runs an instant query through Prometheus's HTTP API.
func promQuery(t *testing.T, base, q string) []promSample {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		t.Fatalf("query %s: %v %s", q, err, body.Error)
	}
	var out []promSample
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("query %s: value %v", q, r.Value)
		}
		out = append(out, promSample{Labels: r.Metric, Value: v})
	}
	return out
}

// meshtop_view_refreshes_total counts the attempts that finish after the
// process started, whoever ran them, once each: also those that finished
// before the first scrape, not those already in the log at the start.
func TestRefreshCounters(t *testing.T) {
	e := setup(t) // one refresh of every view in the log already
	r := start(t, e, serve.Config{Instance: "cnt", Listen: "127.0.0.1:0", MetricsCache: time.Millisecond})
	url := "http://" + r.addrs.HTTP + "/metrics"
	line := `meshtop_view_refreshes_total{outcome="ok",view="mv_workflow_metrics"} `
	st := store.New(e.db.Pool, nil, store.Options{})
	for range 2 {
		if _, err := st.Refresh(context.Background(), "", false); err != nil {
			t.Fatal(err)
		}
	}
	if body := get(t, url, 200); !strings.Contains(body, line+"2\n") {
		t.Fatalf("first scrape, after two refreshes since the start: %s", grepLines(body, "refreshes_total"))
	}
	if _, err := st.Refresh(context.Background(), "", false); err != nil {
		t.Fatal(err)
	}
	body := get(t, url, 200)
	if !strings.Contains(body, line+"3\n") {
		t.Fatalf("after a third refresh: %s", grepLines(body, "refreshes_total"))
	}
	if body = get(t, url, 200); !strings.Contains(body, line+"3\n") {
		t.Fatalf("a second scrape counted again: %s", grepLines(body, "refreshes_total"))
	}
	r.stop(t)

	// Started before meshtop was installed: every attempt of the log counts.
	e2 := env{db: pgtestNewDatabase(t)}
	r2 := start(t, e2, serve.Config{Instance: "cnt2", Listen: "127.0.0.1:0", MetricsCache: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := install.New(e2.db.Pool, "metrics").Apply(ctx, nil); err != nil {
		t.Fatalf("installing: %v", err)
	}
	if _, err := store.New(e2.db.Pool, nil, store.Options{}).Refresh(ctx, "", false); err != nil {
		t.Fatal(err)
	}
	if body := get(t, "http://"+r2.addrs.HTTP+"/metrics", 200); !strings.Contains(body, line+"1\n") {
		t.Fatalf("installed and refreshed after the start: %s", grepLines(body, "refreshes_total"))
	}
	r2.stop(t)
}

// TestCaptureSeries: /metrics says how changes are captured and how close
// the capture log is to its bound — and that capture stopped once nothing
// consumed the log within it (issue 23.8).
func TestCaptureSeries(t *testing.T) {
	e := setup(t)
	r := start(t, e, serve.Config{Instance: "capture", Listen: "127.0.0.1:0", MetricsCache: time.Millisecond, Interval: 10 * time.Millisecond})
	body := get(t, "http://"+r.addrs.HTTP+"/metrics", 200)
	for _, want := range []string{`meshtop_capture_mode{mode="triggers"} 1`, `meshtop_capture_mode{mode="wal"} 0`,
		"meshtop_capture_stopped 0", "meshtop_capture_log_max_age_seconds 86400"} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(body, "meshtop_capture"))
		}
	}
	if _, err := e.db.Pool.Exec(context.Background(), `select setval('metrics.capture_until', 1)`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "meshtop_capture_stopped 1", func() bool {
		body = get(t, "http://"+r.addrs.HTTP+"/metrics", 200)
		return strings.Contains(body, "meshtop_capture_stopped 1\n") && strings.Contains(body, "meshtop_capture_rebuild_pending 1\n")
	})
	r.stop(t)
}
