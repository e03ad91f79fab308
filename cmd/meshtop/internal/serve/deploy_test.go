package serve_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const deployDir = "../../../../deploy"

// The alerting rules are valid and their unit tests pass (promtool from
// Debian's prometheus package).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed: `make deps` installs Debian's prometheus package (%v)", err)
	}
	dir := filepath.Join(deployDir, "prometheus")
	for _, args := range [][]string{{"check", "rules", "meshtop-alerts.yml"}, {"test", "rules", "meshtop-alerts.test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "meshtop-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, alert := range []string{"MeshtopExporterDown", "MeshtopRefreshLagHigh", "MeshtopRefreshesFailing", "MeshtopWorkflowFailureRatioHigh"} {
		if !strings.Contains(string(b), "alert: "+alert+"\n") {
			t.Errorf("meshtop-alerts.yml lacks %s", alert)
		}
	}
}

// The systemd unit is hardened and takes credentials from files, never the
// command line.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "systemd", "meshtop-serve.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("not a setting: %q", line)
			continue
		}
		unit[k] = append(unit[k], v)
	}
	want := map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": "", "KillSignal": "SIGTERM",
	}
	for k, v := range want {
		if got := unit[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%v, want %q", k, got, v)
		}
	}
	if len(unit["LoadCredential"]) == 0 {
		t.Error("no LoadCredential: the connection string must come from a credential")
	}
	exec := strings.Join(unit["ExecStart"], " ")
	for _, bad := range []string{"--dsn", "postgres://", "password", "PGPASSWORD"} {
		if strings.Contains(exec, bad) {
			t.Errorf("ExecStart carries %q: credentials never go on the command line", bad)
		}
	}
	for _, env := range unit["Environment"] {
		if strings.Contains(strings.ToLower(env), "password") || strings.Contains(env, "postgres://") {
			t.Errorf("Environment=%s carries a credential", env)
		}
	}
}
