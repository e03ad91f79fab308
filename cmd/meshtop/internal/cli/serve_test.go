package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/meshtop/meshtop/data/pgtest"
)

// Bad flags and files: one line on stderr, exit 1, before anything runs.
func TestServeBadFlags(t *testing.T) {
	db := installed(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "keys")
	if err := os.WriteFile(garbage, []byte("no key here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Web configurations the exporter-toolkit refuses: a password not
	// hashed with bcrypt, a certificate without its key.
	plainPassword := filepath.Join(dir, "web-plain.yml")
	noKey := filepath.Join(dir, "web-nokey.yml")
	for p, cfg := range map[string]string{
		plainPassword: "basic_auth_users:\n  prometheus: secret\n",
		noKey:         "tls_server_config:\n  cert_file: meshtop.crt\n",
	} {
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keys := writeKeyFile(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-windows", "24h,2d"}, `--metrics-windows: unknown window "2d"`},
		{[]string{"--log-format", "xml"}, `--log-format "xml": use text or json`},
		{[]string{"--metrics-max-workflows", "0"}, "--metrics-max-workflows 0: must be at least 1"},
		{[]string{"--metrics-max-steps", "0"}, "--metrics-max-steps 0: must be at least 1"},
		{[]string{"--metrics-cache", "0s"}, "invalid argument"},
		{[]string{"--ssh-listen", "127.0.0.1:0"}, "--ssh-listen needs --ssh-authorized-keys FILE"},
		{[]string{"--ssh-listen", "127.0.0.1:0", "--ssh-authorized-keys", filepath.Join(dir, "nope")}, "--ssh-authorized-keys " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{[]string{"--ssh-listen", "127.0.0.1:0", "--ssh-authorized-keys", garbage}, "line 1: not a public key"},
		{[]string{"--listen", ""}, "nothing to serve"},
		{[]string{"--ssh-max-startups", "0"}, "--ssh-max-startups 0: must be at least 1"},
		{[]string{"--ssh-max-per-source", "0"}, "--ssh-max-per-source 0: must be at least 1"},
		{[]string{"--ssh-login-grace", "0s"}, "invalid argument"},
		{[]string{"--ssh-auth-fail-delay", "-1s"}, "invalid argument"},
		// No --ssh-host-key and nowhere to put the default: one line.
		{[]string{"--ssh-listen", "127.0.0.1:0", "--ssh-authorized-keys", keys}, "--ssh-host-key: no state directory"},
		{[]string{"--read-only", "--refresh-every", "1m"}, "refusing to schedule refreshes"},
		{[]string{"--dsn-file", filepath.Join(dir, "nope"), "--dsn", ""}, "--dsn-file " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{[]string{"--web.config.file", filepath.Join(dir, "nope")}, "--web.config.file " + filepath.Join(dir, "nope") + ": open " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{[]string{"--web.config.file", plainPassword}, "--web.config.file " + plainPassword + ": crypto/bcrypt"},
		{[]string{"--web.config.file", noKey}, "--web.config.file " + noKey + ": "},
	}
	for _, c := range cases {
		args := append([]string{"serve", "--dsn", db.DSN}, c.args...)
		r := run(t, runOpts{}, args...).must(t, ExitError)
		if !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\nmeshtop: ") > 0 ||
			!strings.Contains(lastLine(r.stderr), c.want) {
			t.Errorf("serve %v: want a last line containing %q, got:\n%s", c.args, c.want, r.stderr)
		}
	}
}

// MESHTOP_WEB_CONFIG_FILE is --web.config.file (dots become underscores).
func TestServeWebConfigFromEnvironment(t *testing.T) {
	db := installed(t)
	nope := filepath.Join(t.TempDir(), "nope.yml")
	r := run(t, runOpts{env: map[string]string{"MESHTOP_WEB_CONFIG_FILE": nope}}, "serve", "--dsn", db.DSN, "--listen", "127.0.0.1:0").must(t, ExitError)
	if want := "--web.config.file " + nope + ": "; !strings.Contains(lastLine(r.stderr), want) {
		t.Errorf("MESHTOP_WEB_CONFIG_FILE=%s: want a last line containing %q:\n%s", nope, want, r.stderr)
	}
}

func lastLine(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return ls[len(ls)-1]
}

// serve runs on a password role's DSN from the environment, answers its
// endpoints, stops cleanly when its context ends (as on SIGTERM), and
// never logs the password.
func TestServeRunsAndStops(t *testing.T) {
	db := refreshed(t)
	dsn := loginRole(t, db, "serve_reader", "meshtop_reader")
	dsnFile := filepath.Join(t.TempDir(), "database-url")
	if err := os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan result, 1)
	go func() {
		done <- runInto(ctx, runOpts{env: map[string]string{"MESHTOP_DSN_FILE": dsnFile, "MESHTOP_LOG_FORMAT": "json"}},
			&stdout, &stderr, "serve", "--listen", "127.0.0.1:0", "--instance", "cli-test")
	}()
	addrRe := regexp.MustCompile(`"msg":"http: serving[^}]*"addr":"([^"]+)"`)
	var addr string
	waitFor(t, "serve to listen", time.Minute, func() bool {
		m := addrRe.FindStringSubmatch(stderr.String())
		if m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get("http://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %s", p, resp.Status)
		}
	}
	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s")
	}
	r.must(t, ExitOK)
	for _, want := range []string{`"instance":"cli-test"`, `"application_name":"meshtop serve cli-test"`, "meshtop serve stopped", "serve_reader@"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("log lacks %s:\n%s", want, r.stderr)
		}
	}
	noSecret(t, r)

	// A wrong password: one line, no password.
	bad := strings.Replace(dsn, secret, secret+"-wrong", 1)
	r = run(t, runOpts{env: map[string]string{"DATABASE_URL": bad}}, "serve", "--listen", "127.0.0.1:0").must(t, ExitError)
	if strings.Contains(r.stderr, secret) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
		t.Errorf("wrong password: want one line without the password:\n%s", r.stderr)
	}
}

// Through a transaction pooler serve refuses what needs a session (the
// leader lock, the dashboards' LISTEN) with the pooler's one line, exit 2,
// and serves metrics, which only read.
func TestServeThroughTransactionPooler(t *testing.T) {
	db := refreshed(t)
	pooled := pgtest.PgBouncer(t, "transaction").DSN(db.Name)
	for _, args := range [][]string{{"--refresh-every", "1m"}, {"--ssh-listen", "127.0.0.1:0", "--ssh-authorized-keys", writeKeyFile(t)}} {
		r := run(t, runOpts{}, append([]string{"serve", "--dsn", pooled, "--listen", "127.0.0.1:0"}, args...)...).must(t, ExitNeedsSession)
		if r.stderr != poolerLine {
			t.Errorf("serve %v through the pooler: %q, want %q", args, r.stderr, poolerLine)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan result, 1)
	go func() {
		done <- runInto(ctx, runOpts{}, &stdout, &stderr, "serve", "--dsn", pooled, "--listen", "127.0.0.1:0", "--metrics-cache", "1ms")
	}()
	addrRe := regexp.MustCompile(`msg="http: serving[^"]*" addr=(\S+)`)
	var addr string
	waitFor(t, "serve to listen", time.Minute, func() bool {
		if m := addrRe.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	for i := 0; i < 5; i++ { // each scrape reads through the pooler again
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "meshtop_up 1\n") || !strings.Contains(string(b), "meshtop_workflow_runs{") {
			t.Fatalf("scrape %d through the pooler:\n%s", i, b)
		}
	}
	cancel()
	(<-done).must(t, ExitOK)
}

// Without --ssh-host-key the host key goes to the state directory
// ($XDG_STATE_HOME/meshtop here), and the SSH limits come from
// MESHTOP_SSH_* like every flag.
func TestServeSSHDefaults(t *testing.T) {
	db := installed(t)
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan result, 1)
	env := map[string]string{"XDG_STATE_HOME": state, "MESHTOP_LOG_FORMAT": "json",
		"MESHTOP_SSH_LOGIN_GRACE": "7s", "MESHTOP_SSH_MAX_STARTUPS": "3", "MESHTOP_SSH_MAX_PER_SOURCE": "2", "MESHTOP_SSH_AUTH_FAIL_DELAY": "0"}
	go func() {
		done <- runInto(ctx, runOpts{env: env}, &stdout, &stderr,
			"serve", "--dsn", db.DSN, "--listen", "", "--ssh-listen", "127.0.0.1:0", "--ssh-authorized-keys", writeKeyFile(t))
	}()
	waitFor(t, "serve to listen", time.Minute, func() bool { return strings.Contains(stderr.String(), "ssh: serving the dashboard") })
	key := filepath.Join(state, "meshtop", "ssh_host_ed25519_key")
	for _, want := range []string{`"login_grace":"7s"`, `"max_startups":3`, `"max_per_source":2`, `"auth_fail_delay":"0s"`, `"host_key":"` + key + `"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, stderr.String())
		}
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("host key: %v %v, want a 0600 file", st, err)
	}
	if st, err := os.Stat(filepath.Dir(key)); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Errorf("the created directory: %v %v, want 0700", st, err)
	}
	cancel()
	select {
	case r := <-done:
		r.must(t, ExitOK)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s")
	}
}

func writeKeyFile(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, gossh.MarshalAuthorizedKey(s.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Two `meshtop serve` processes with --refresh-every: the leader is killed
// with SIGKILL (no goodbye: its lock dies with its session) and the other
// refreshes within two intervals; SIGTERM stops the survivor with exit 0.
func TestServeLeaderKilled(t *testing.T) {
	db := refreshed(t)
	bin := binary(t)
	const every = 2 * time.Second
	type proc struct {
		cmd *exec.Cmd
		log *syncBuffer
	}
	startProc := func(name string) *proc {
		p := &proc{log: &syncBuffer{}}
		p.cmd = exec.Command(bin, "serve", "--listen", "", "--refresh-every", every.String(), "--instance", name)
		p.cmd.Env = append(os.Environ(), "DATABASE_URL="+db.DSN)
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
				_ = p.cmd.Wait()
			}
		})
		return p
	}
	procs := map[string]*proc{"one": startProc("one"), "two": startProc("two")}
	lastBy := func(since time.Time) (string, time.Time) {
		var app string
		var at time.Time
		err := db.Pool.QueryRow(context.Background(), `select coalesce(application_name, ''), started_at from metrics.refresh_log
			where view_name = 'mv_workflow_metrics' and started_at >= $1 order by id desc limit 1`, since).Scan(&app, &at)
		if err != nil {
			return "", time.Time{}
		}
		return strings.TrimPrefix(app, "meshtop serve "), at
	}
	var leader string
	start := time.Now()
	waitFor(t, "a refresh by a serve process", time.Minute, func() bool { leader, _ = lastBy(start); return leader != "" })
	other := map[string]string{"one": "two", "two": "one"}[leader]
	if err := procs[leader].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = procs[leader].cmd.Wait()
	killed := time.Now()
	var by string
	var at time.Time
	waitFor(t, "the other process to refresh", time.Minute, func() bool { by, at = lastBy(killed); return by == other })
	if d := at.Sub(killed); d > 2*every {
		t.Errorf("%s refreshed %v after %s was killed; want within two intervals", other, d, leader)
	}
	p := procs[other]
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, p.log.String())
	}
	if !strings.Contains(p.log.String(), "meshtop serve stopped") {
		t.Errorf("no clean stop in the log:\n%s", p.log.String())
	}
}
