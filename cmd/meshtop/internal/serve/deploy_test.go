package serve_test

import (
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
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

// unitFile is a parsed systemd unit: each key's values in order, by
// section ("Service.Environment").
type unitFile struct {
	settings map[string][]string
	comment  []string // the leading comment, without its "# "
}

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{settings: map[string][]string{}}
	section, leading := "", true
	for _, line := range strings.Split(string(b), "\n") {
		if leading && strings.HasPrefix(line, "#") {
			u.comment = append(u.comment, strings.TrimPrefix(strings.TrimPrefix(line, "#"), " "))
			continue
		}
		leading = false
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || strings.HasSuffix(line, "\\") {
				t.Fatalf("%s: cannot read %q", path, line)
			}
			u.settings[section+"."+k] = append(u.settings[section+"."+k], v)
		}
	}
	return u
}

// installSteps are the shell lines of the unit's "Install" comment.
func (u unitFile) installSteps(t *testing.T) []string {
	t.Helper()
	var out []string
	in := false
	for _, l := range u.comment {
		switch {
		case strings.HasPrefix(l, "Install"):
			in = true
		case in && strings.TrimSpace(l) == "":
			return out
		case in:
			if !strings.HasPrefix(l, "  ") {
				t.Fatalf("install step %q is not indented", l)
			}
			out = append(out, strings.TrimPrefix(l, "  "))
		}
	}
	if len(out) == 0 {
		t.Fatal("the unit's comment has no install steps")
	}
	return out
}

// The unit starts as its comment says to install it, on a fresh host: the
// install steps run as written (paths moved under a temporary root, the
// example connection string replaced by the test database's), then the
// unit's ExecStart runs as systemd would run it — an unprivileged user (a
// DynamicUser stand-in), the unit's Environment= and EnvironmentFile=,
// LoadCredential= copied to a credentials directory only that user reads,
// StateDirectory= made for it, %d and %S expanded, its UMask — and serves
// a dashboard. With the old install step (/etc/meshtop 0700) it fails with
// "permission denied", as it did in production.
func TestSystemdUnitStarts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the install steps are root's, and ExecStart must run as another user, as systemd runs it (CI runs as root)")
	}
	svc, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody to run the service as: %v", err)
	}
	uid, _ := strconv.Atoi(svc.Uid)
	gid, _ := strconv.Atoi(svc.Gid)
	e := setup(t)
	bin := binary(t)
	unitPath := filepath.Join(deployDir, "systemd", "meshtop-serve.service")
	u := parseUnit(t, unitPath)

	// A fresh host under root (world-searchable, like /).
	root, err := os.MkdirTemp("", "meshtop-unit-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	at := func(p string) string { return filepath.Join(root, p) }
	for _, d := range []string{"usr/local/bin", "etc/systemd/system", "var/lib", "run/credentials", "src/bin", "src/deploy/systemd"} {
		if err := os.MkdirAll(at(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile := func(from, to string, mode os.FileMode) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(bin, at("src/bin/meshtop"), 0o755)
	copyFile(unitPath, at("src/deploy/systemd/meshtop-serve.service"), 0o644)
	viewer, operator := newKey(t), newKey(t)
	writeKeys(t, at("src/viewers.pub"), viewer)
	writeKeys(t, at("src/operators.pub"), operator)

	// The install steps, as root.
	dsnRe := regexp.MustCompile(`'postgres://[^']*'`)
	moved := strings.NewReplacer("/usr/local/bin/", at("usr/local/bin")+"/", "/etc/systemd/system/", at("etc/systemd/system")+"/",
		"/etc/meshtop", at("etc/meshtop"), "MESHTOP_SSH_LISTEN=:2222", "MESHTOP_SSH_LISTEN=127.0.0.1:0")
	var script []string
	for _, step := range u.installSteps(t) {
		if strings.HasPrefix(step, "systemctl ") {
			continue // no systemd here: what it would do follows
		}
		step = moved.Replace(step)
		if dsnRe.MatchString(step) {
			step = dsnRe.ReplaceAllLiteralString(step, "'"+e.db.DSN+"'")
		}
		script = append(script, step)
	}
	cmd := exec.Command("sh", "-e", "-x", "-c", strings.Join(script, "\n"))
	cmd.Dir = at("src")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the install steps failed: %v\n%s", err, out)
	}
	// This machine's port 9188 may be taken: the operator's file overrides
	// the unit's Environment= (as EnvironmentFile= does under systemd).
	envFile, err := os.OpenFile(at("etc/meshtop/serve.env"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = envFile.WriteString("MESHTOP_LISTEN=127.0.0.1:0\n")
	envFile.Close()

	// What systemd does before ExecStart.
	stateDir := at("var/lib/meshtop")
	if err := os.Mkdir(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if mode := u.settings["Service.StateDirectoryMode"]; len(mode) != 1 || mode[0] != "0700" {
		t.Fatalf("StateDirectoryMode=%v, want 0700", mode)
	}
	credDir := at("run/credentials/meshtop-serve.service")
	if err := os.Mkdir(credDir, 0o500); err != nil {
		t.Fatal(err)
	}
	for _, c := range u.settings["Service.LoadCredential"] {
		id, from, ok := strings.Cut(c, ":")
		if !ok {
			t.Fatalf("LoadCredential=%s: want ID:PATH", c)
		}
		copyFile(moved.Replace(from), filepath.Join(credDir, id), 0o400)
		if err := os.Chown(filepath.Join(credDir, id), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{stateDir, credDir} {
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	spec := strings.NewReplacer("%S", at("var/lib"), "%d", credDir, "%%", "%")
	expand := func(s string) string {
		s = spec.Replace(s)
		if i := strings.Index(strings.ReplaceAll(s, "%%", ""), "%"); i >= 0 {
			t.Fatalf("%q: a specifier this test does not expand", s)
		}
		return s
	}
	env := map[string]string{"PATH": "/usr/local/bin:/usr/bin:/bin", "STATE_DIRECTORY": stateDir, "CREDENTIALS_DIRECTORY": credDir}
	for _, a := range u.settings["Service.Environment"] {
		k, v, _ := strings.Cut(strings.Trim(moved.Replace(expand(a)), `"`), "=")
		env[k] = v
	}
	for _, f := range u.settings["Service.EnvironmentFile"] {
		optional := strings.HasPrefix(f, "-")
		b, err := os.ReadFile(moved.Replace(expand(strings.TrimPrefix(f, "-"))))
		if err != nil {
			if optional {
				continue
			}
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && line[0] != '#' {
				k, v, _ := strings.Cut(line, "=")
				env[k] = v
			}
		}
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	umask := u.settings["Service.UMask"]
	if len(umask) != 1 {
		t.Fatalf("UMask=%v", umask)
	}
	execStart := strings.Fields(moved.Replace(expand(strings.Join(u.settings["Service.ExecStart"], " "))))
	run := func() (*proc, string) {
		cmd := exec.Command("sh", append([]string{"-c", `umask "$0"; shift; exec "$@"`, umask[0], "--"}, execStart...)...)
		cmd.Env = environ
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		return startProc(t, cmd)
	}

	p, addr := run()
	if addr == "" {
		t.Fatalf("the unit's ExecStart exited: %v\n%s", p.err, p.log.String())
	}
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, chans, reqs, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{User: "sre", Auth: []ssh.AuthMethod{ssh.PublicKeys(viewer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("the viewer's key: %v\n%s", err, p.log.String())
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	tm := openTerm(t, client, "xterm-256color")
	tm.waitText("data as of")
	tm.send("q")
	_ = tm.waitEnd()

	// The host key in the state directory, the directories as they were.
	hostKey := filepath.Join(stateDir, "ssh_host_ed25519_key")
	for path, want := range map[string]os.FileMode{stateDir: 0o700, at("etc/meshtop"): 0o755, hostKey: 0o600, hostKey + ".pub": 0o644} {
		st, err := os.Stat(path)
		if err != nil {
			t.Error(err)
			continue
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %o, want %o", path, st.Mode().Perm(), want)
		}
	}
	if st, err := os.Stat(hostKey); err == nil && st.Sys().(*syscall.Stat_t).Uid != uint32(uid) {
		t.Errorf("the host key is owned by uid %d, want the service's %d", st.Sys().(*syscall.Stat_t).Uid, uid)
	}
	if err := p.stop(t); err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, p.log.String())
	}
	if !strings.Contains(p.log.String(), "meshtop serve stopped") {
		t.Errorf("no clean stop in the log:\n%s", p.log.String())
	}

	// The old install step: a configuration directory the service cannot
	// enter. It fails at once, saying why.
	if err := os.Chmod(at("etc/meshtop"), 0o700); err != nil {
		t.Fatal(err)
	}
	p, addr = run()
	if addr != "" {
		t.Fatal("serve started with /etc/meshtop 0700")
	}
	if err := p.err; err == nil || !strings.Contains(p.log.String(), "authorized_keys: permission denied (meshtop runs as uid "+svc.Uid) {
		t.Errorf("with /etc/meshtop 0700: %v, want exit 1 with permission denied and a hint:\n%s", err, p.log.String())
	}

	// systemd's own check of the unit, where systemd-analyze exists.
	t.Run("systemd-analyze verify", func(t *testing.T) {
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze is not installed")
		}
		dir := t.TempDir()
		b, err := os.ReadFile(unitPath)
		if err != nil {
			t.Fatal(err)
		}
		// verify checks that ExecStart's program exists.
		b = []byte(strings.ReplaceAll(string(b), "/usr/local/bin/meshtop", bin))
		if err := os.WriteFile(filepath.Join(dir, "meshtop-serve.service"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", "--man=no", filepath.Join(dir, "meshtop-serve.service")).CombinedOutput()
		if err != nil || strings.Contains(string(out), "meshtop-serve.service") {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
}
