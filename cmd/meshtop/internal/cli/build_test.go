package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// -ldflags win; what they leave empty comes from the go command's stamps;
// "(devel)" is no version.
func TestStampedBuild(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260101000000-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef"}}}
	for _, c := range []struct {
		in   BuildInfo
		bi   *debug.BuildInfo
		want BuildInfo
	}{
		{BuildInfo{}, bi, BuildInfo{"v0.0.0-20260101000000-0123456789ab+dirty", "0123456789abcdef"}},
		{BuildInfo{"1.2.3", "abc"}, bi, BuildInfo{"1.2.3", "abc"}},
		{BuildInfo{"1.2.3", ""}, bi, BuildInfo{"1.2.3", "0123456789abcdef"}},
		{BuildInfo{}, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, BuildInfo{}},
		{BuildInfo{}, nil, BuildInfo{}},
	} {
		if got := stamped(c.in, c.bi); got != c.want {
			t.Errorf("stamped(%+v) = %+v, want %+v", c.in, got, c.want)
		}
	}
	if got := (BuildInfo{}).orUnknown(); got != (BuildInfo{"dev", "unknown"}) {
		t.Errorf("orUnknown: %+v", got)
	}
}

// `make build` stamps the checkout's version and commit: `meshtop version`
// and the meshtop_build_info of that binary running `meshtop serve` (basic
// auth from MESHTOP_WEB_CONFIG_FILE) show `git rev-parse HEAD`, and its live
// /metrics passes `promtool check metrics`.
func TestMakeBuildStampsVersion(t *testing.T) {
	t.Parallel()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not a git checkout (or no git): nothing to stamp (%v)", err)
	}
	root := strings.TrimSpace(string(top))
	head := gitOut(t, root, "rev-parse", "HEAD")
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("promtool is not installed: `make deps` installs Debian's prometheus package (%v)", err)
		}
		t.Skip("promtool is not installed: `make deps` installs Debian's prometheus package")
	}
	bin := filepath.Join(t.TempDir(), "meshtop")
	if out, err := exec.Command("make", "-C", root, "--no-print-directory", "build", "BIN="+bin).CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("meshtop version: %v", err)
	}
	m := regexp.MustCompile(`^meshtop (\S+) \(commit (\S+), go`).FindStringSubmatch(string(out))
	if m == nil || m[1] == "dev" || m[2] != head {
		t.Fatalf("meshtop version after make build: %q, want the commit %s and a version", out, head)
	}
	version := m[1]

	db := refreshed(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("scrape-me"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(t.TempDir(), "web-config.yml")
	if err := os.WriteFile(webConfig, fmt.Appendf(nil, "basic_auth_users:\n  prometheus: %s\n", hash), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var logs syncBuffer
	cmd := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0", "--instance", "stamped")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+db.DSN, "MESHTOP_LOG_FORMAT=json", "MESHTOP_WEB_CONFIG_FILE="+webConfig)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	addrRe := regexp.MustCompile(`"msg":"http: serving[^}]*"addr":"([^"]+)"`)
	var addr string
	waitFor(t, "serve to listen", time.Minute, func() bool {
		if m := addrRe.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	scrape := func(auth bool) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
		if auth {
			req.SetBasicAuth("prometheus", "scrape-me")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := scrape(false); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without credentials: %d, want 401", code)
	}
	code, body := scrape(true)
	if code != 200 {
		t.Fatalf("GET /metrics with credentials: %d\n%s", code, body)
	}
	want := fmt.Sprintf("meshtop_build_info{commit=%q,instance_name=\"stamped\",version=%q} 1\n", head, version)
	if !strings.Contains(body, want) {
		t.Errorf("want %s in /metrics:\n%s", want, grep(body, "build_info"))
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics on meshtop serve's /metrics: %v\n%s", err, out)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, logs.String())
	}
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
