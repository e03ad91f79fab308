package serve_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/meshtop/meshtop/cmd/meshtop/internal/serve"
	"github.com/meshtop/meshtop/data/store"
)

func newKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeKeys(t *testing.T, path string, keys ...ssh.Signer) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# meshtop test keys\n\n")
	for _, k := range keys {
		b.Write(ssh.MarshalAuthorizedKey(k.PublicKey()))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

type sshFixture struct {
	e                       env
	r                       *running
	viewer, operator, stray ssh.Signer
	hostKeyPath, appName    string
}

func startSSH(t *testing.T, maxSessions int, idle time.Duration) sshFixture {
	t.Helper()
	e := setup(t)
	dir := t.TempDir()
	f := sshFixture{e: e, viewer: newKey(t), operator: newKey(t), stray: newKey(t), hostKeyPath: filepath.Join(dir, "keys", "host_ed25519")}
	writeKeys(t, filepath.Join(dir, "viewers"), f.viewer)
	writeKeys(t, filepath.Join(dir, "operators"), f.operator)
	f.appName = "meshtop serve ssh-test"
	f.r = start(t, e, serve.Config{
		Instance: "ssh-test", Pool: e.pool(t, f.appName, 8), SSHListen: "127.0.0.1:0", SSHHostKey: f.hostKeyPath,
		SSHAuthorizedKeys: filepath.Join(dir, "viewers"), SSHOperatorKeys: filepath.Join(dir, "operators"),
		SSHMaxSessions: maxSessions, SSHIdleTimeout: idle, Interval: 500 * time.Millisecond, Target: "test",
	})
	return f
}

func (f sshFixture) dial(t *testing.T, auth ...ssh.AuthMethod) (*ssh.Client, net.Conn, error) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", f.r.addrs.SSH, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, chans, reqs, err := ssh.NewClientConn(nc, f.r.addrs.SSH, &ssh.ClientConfig{
		User: "sre", Auth: auth, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return ssh.NewClient(c, chans, reqs), nc, nil
}

// term is a dashboard session over SSH.
type term struct {
	t    *testing.T
	sess *ssh.Session
	in   io.WriteCloser
	out  *logBuf
	done chan error
}

func (f sshFixture) open(t *testing.T, c *ssh.Client) *term {
	t.Helper()
	return f.openTerm(t, c, "xterm-256color")
}

func (f sshFixture) openTerm(t *testing.T, c *ssh.Client, termName string) *term {
	t.Helper()
	return openTerm(t, c, termName)
}

// openTerm opens a dashboard session on c with a pty of 120×30.
func openTerm(t *testing.T, c *ssh.Client, termName string) *term {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty(termName, 30, 120, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	in, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &logBuf{}
	sess.Stdout, sess.Stderr = out, out
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, sess: sess, in: in, out: out, done: make(chan error, 1)}
	go func() { tm.done <- sess.Wait() }()
	return tm
}

func (tm *term) waitText(s string) {
	tm.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(ansi.Strip(tm.out.String()), s) {
		if time.Now().After(deadline) {
			tm.t.Fatalf("timed out waiting for %q on the SSH screen; last output:\n%s", s, tail(ansi.Strip(tm.out.String()), 2000))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (tm *term) send(s string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.in, s); err != nil {
		tm.t.Fatalf("typing %q: %v", s, err)
	}
}

func (tm *term) waitEnd() error {
	tm.t.Helper()
	select {
	case err := <-tm.done:
		return err
	case <-time.After(30 * time.Second):
		tm.t.Fatal("the session did not end within 30s")
		return nil
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (f sshFixture) refreshCount(t *testing.T) int {
	t.Helper()
	var n int
	if err := f.e.db.Pool.QueryRow(context.Background(), "select count(*) from metrics.refresh_log").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The SSH dashboard: keys decide who gets in and who may refresh; what is
// not a dashboard is refused.
func TestSSHDashboard(t *testing.T) {
	f := startSSH(t, 8, time.Hour)
	if st, err := os.Stat(f.hostKeyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("host key not generated with mode 0600: %v %v", st, err)
	}

	// Unknown key and password auth: refused.
	if _, _, err := f.dial(t, ssh.PublicKeys(f.stray)); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("unknown key: %v, want refused", err)
	}
	if _, _, err := f.dial(t, ssh.Password("hunter2"), ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) { return nil, nil })); err == nil {
		t.Error("password login accepted")
	}

	// A viewer: the overview, read-only; R refused with the read-only message.
	vc, _, err := f.dial(t, ssh.PublicKeys(f.viewer))
	if err != nil {
		t.Fatalf("viewer key refused: %v", err)
	}
	defer vc.Close()
	v := f.open(t, vc)
	v.waitText("Overview")
	v.waitText("READ-ONLY")
	v.waitText("data as of")
	// Colours follow each session's terminal (its own renderer), not the
	// server's stdout: 256 colours here, none on a dumb terminal.
	if !strings.Contains(v.out.String(), "\x1b[38;5;") {
		t.Error("an xterm-256color session got no 256-colour styles")
	}
	dc, _, err := f.dial(t, ssh.PublicKeys(f.viewer))
	if err != nil {
		t.Fatal(err)
	}
	dumb := f.openTerm(t, dc, "dumb")
	dumb.waitText("data as of")
	if out := dumb.out.String(); strings.Contains(out, "\x1b[38;") || strings.Contains(out, "\x1b[48;") {
		t.Error("a dumb terminal's session got colours")
	}
	dumb.send("q")
	_ = dumb.waitEnd()
	dc.Close()
	before := f.refreshCount(t)
	v.send("\t")
	v.waitText("Refresh console")
	v.send("R")
	v.waitText("read-only: refreshing and cancelling are disabled")

	// An operator: R refreshes.
	oc, _, err := f.dial(t, ssh.PublicKeys(f.operator))
	if err != nil {
		t.Fatalf("operator key refused: %v", err)
	}
	defer oc.Close()
	o := f.open(t, oc)
	o.waitText("Overview")
	if strings.Contains(ansi.Strip(o.out.String()), "READ-ONLY") {
		t.Error("the operator's session says READ-ONLY")
	}
	o.send("\t")
	o.waitText("Refresh console")
	o.send("R")
	o.waitText("refresh finished: 3 ok")
	if got := f.refreshCount(t); got != before+3 {
		t.Errorf("refresh log grew by %d rows, want 3 (the operator's refresh only)", got-before)
	}
	// Audited: the refresh log names the SSH user and the whole key
	// fingerprint (actor; application_name has it cut to PostgreSQL's 63
	// bytes), serve's log has one line with the fingerprint and the log ids.
	fp := ssh.FingerprintSHA256(f.operator.PublicKey())
	wantActor := "meshtop serve: ssh sre " + fp
	wantApp := wantActor[:63]
	rows, err := f.e.db.Pool.Query(context.Background(), "select id, application_name, triggered_by, actor from metrics.refresh_log order by id desc limit 3")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id int64
		var app, by, actor string
		if err := rows.Scan(&id, &app, &by, &actor); err != nil {
			t.Fatal(err)
		}
		ids = append([]string{strconv.FormatInt(id, 10)}, ids...)
		if app != wantApp || actor != wantActor {
			t.Errorf("refresh log row %d: application_name %q, actor %q; want %q, %q", id, app, actor, wantApp, wantActor)
		}
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	waitFor(t, 30*time.Second, "the operator's refresh in serve's log", func() bool {
		return strings.Contains(f.r.log.String(), "msg=\"ssh: operator action\"")
	})
	var audit string
	for _, line := range strings.Split(f.r.log.String(), "\n") {
		if strings.Contains(line, "msg=\"ssh: operator action\"") {
			audit = line
		}
	}
	for _, want := range []string{"user=sre", "key=" + fp, "action=refresh", "view=all", "log_ids=" + strings.Join(ids, ","), "read_only=false"} {
		if !strings.Contains(audit, want) {
			t.Errorf("serve's log line of the operator's refresh lacks %s:\n%s", want, audit)
		}
	}
	// The pooled connection went back under its own name.
	var leftover int
	if err := f.e.db.Pool.QueryRow(context.Background(), "select count(*) from pg_stat_activity where application_name like 'meshtop serve: ssh%'").Scan(&leftover); err != nil || leftover != 0 {
		t.Errorf("%d backends still named after the operator (%v)", leftover, err)
	}
	// The viewer's dashboard hears of it through the shared LISTEN; its log
	// entry names the SSH user and key.
	v.waitText("ssh sre SHA256:")

	// q ends the session cleanly.
	v.send("q")
	if err := v.waitEnd(); err != nil {
		t.Errorf("session after q: %v, want a clean exit", err)
	}
	o.send("q")
	if err := o.waitEnd(); err != nil {
		t.Errorf("operator session after q: %v", err)
	}

	// Commands other than the dashboard, no pty, forwarding: refused.
	sess, err := oc.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.CombinedOutput("cat /etc/passwd")
	if err == nil || !strings.Contains(string(out), "only shows the dashboard") {
		t.Errorf("exec: %v %q, want refused", err, out)
	}
	sess, _ = oc.NewSession()
	out, err = sess.CombinedOutput("")
	if err == nil || !strings.Contains(strings.ToLower(string(out)), "pty") {
		t.Errorf("shell without a pty: %v %q, want refused", err, out)
	}
	sess, _ = oc.NewSession()
	if err := sess.RequestSubsystem("sftp"); err == nil {
		t.Error("sftp subsystem accepted")
	}
	if c, err := oc.Dial("tcp", f.r.addrs.SSH); err == nil {
		c.Close()
		t.Error("local port forwarding (direct-tcpip) accepted")
	}
	if ln, err := oc.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
		t.Error("remote port forwarding (tcpip-forward) accepted")
	}
	sess, _ = oc.NewSession()
	if err := agent.RequestAgentForwarding(sess); err == nil {
		t.Error("agent forwarding accepted")
	}
	sess.Close()
	if !strings.Contains(f.r.log.String(), "ssh: key refused") || !strings.Contains(f.r.log.String(), "role=operator") {
		t.Errorf("the log lacks the refused key or the operator session:\n%s", f.r.log.String())
	}
}

// Fifty sessions come and go (half quit with q, half drop their
// connection): nothing is left behind — sessions, subscribers, goroutines,
// pool connections, backends.
func TestSSHNoLeaks(t *testing.T) {
	f := startSSH(t, 4, time.Hour)
	cycle := func(i int) {
		c, nc, err := f.dial(t, ssh.PublicKeys(f.viewer))
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		tm := f.open(t, c)
		tm.waitText("data as of")
		if i%2 == 0 {
			tm.send("q")
			if err := tm.waitEnd(); err != nil {
				t.Fatalf("cycle %d: q: %v", i, err)
			}
			c.Close()
		} else {
			nc.Close() // a dropped connection: no goodbye
			_ = tm.waitEnd()
		}
	}
	cycle(0)
	settle := func(what string) {
		waitFor(t, 30*time.Second, what, func() bool {
			return f.r.srv.Sessions() == 0 && f.r.srv.Hub().Subscribers() == 0
		})
	}
	settle("the first session to end")
	baseG := runtime.NumGoroutine()
	backends := func() int {
		var n int
		_ = f.e.db.Pool.QueryRow(context.Background(), "select count(*) from pg_stat_activity where application_name = $1", f.appName).Scan(&n)
		return n
	}
	baseB := backends()
	for i := 1; i <= 50; i++ {
		cycle(i)
	}
	settle("every session to end")
	waitFor(t, 30*time.Second, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= baseG+5 })
	if n := backends(); n > max(baseB, 1)+1 || n > 8 {
		t.Errorf("%d backends of the server after 50 sessions (%d after the first); the pool holds at most 8", n, baseB)
	}
	if st := f.r.srv.Hub().Stats(); st["overview"] > 60 {
		t.Errorf("51 sessions read the overview %d times from the database", st["overview"])
	}

	// Max sessions: the fifth concurrent one is turned away politely.
	var open []*term
	for range 4 {
		c, _, err := f.dial(t, ssh.PublicKeys(f.viewer))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		tm := f.open(t, c)
		tm.waitText("Overview")
		open = append(open, tm)
	}
	c, _, err := f.dial(t, ssh.PublicKeys(f.viewer))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	extra := f.open(t, c)
	extra.waitText("4 sessions are open, the most this server allows")
	if err := extra.waitEnd(); err == nil {
		t.Error("the session over the limit exited 0")
	}
	for _, tm := range open {
		tm.send("q")
		_ = tm.waitEnd()
	}
	settle("the sessions to end")
}

// Bad SSH configuration: one line naming the flag and the file.
func TestSSHConfigErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "viewers")
	writeKeys(t, good, newKey(t))
	unreadable := filepath.Join(dir, "unreadable")
	writeKeys(t, unreadable, newKey(t))
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("ssh-ed25519 not-base64!!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badHost := filepath.Join(dir, "host")
	if err := os.WriteFile(badHost, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  serve.Config
		want string
	}{
		{"missing keys", serve.Config{SSHAuthorizedKeys: filepath.Join(dir, "nope"), SSHHostKey: filepath.Join(dir, "h1")}, "--ssh-authorized-keys " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"malformed keys", serve.Config{SSHAuthorizedKeys: garbage, SSHHostKey: filepath.Join(dir, "h2")}, "--ssh-authorized-keys " + garbage + ": line 1: not a public key"},
		{"bad operator keys", serve.Config{SSHAuthorizedKeys: good, SSHOperatorKeys: garbage, SSHHostKey: filepath.Join(dir, "h3")}, "--ssh-operator-keys " + garbage},
		{"bad host key", serve.Config{SSHAuthorizedKeys: good, SSHHostKey: badHost}, "--ssh-host-key " + badHost + ": not an unencrypted private key"},
		{"no keys flag", serve.Config{SSHHostKey: filepath.Join(dir, "h4")}, "--ssh-listen needs --ssh-authorized-keys"},
	}
	if os.Geteuid() != 0 { // root reads anything
		cases = append(cases, struct {
			name string
			cfg  serve.Config
			want string
		}{"unreadable keys", serve.Config{SSHAuthorizedKeys: unreadable, SSHHostKey: filepath.Join(dir, "h5")}, "permission denied"})
	}
	for _, c := range cases {
		c.cfg.SSHListen = "127.0.0.1:0"
		c.cfg.Store = store.New(nil, nil, store.Options{})
		_, err := serve.New(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line containing %q", c.name, err, c.want)
		}
	}
}

// A session without a key press for the idle timeout is ended with a
// message; the dashboard's own redraws do not keep it open, key presses do.
func TestSSHIdleTimeout(t *testing.T) {
	const idle = 5 * time.Second
	f := startSSH(t, 4, idle)
	c, _, err := f.dial(t, ssh.PublicKeys(f.viewer))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tm := f.open(t, c)
	tm.waitText("data as of")
	tm.send("j")
	for range 4 { // keys keep it open: 4 s of them, each within the timeout
		time.Sleep(time.Second) // the pace of the keys is what is under test
		tm.send("j")
	}
	lastKey := time.Now()
	tm.waitText("no key pressed for 5s; disconnected")
	if d := time.Since(lastKey); d < idle-500*time.Millisecond {
		t.Errorf("ended %v after the last key; the timeout is %v", d, idle)
	}
	_ = tm.waitEnd()
	waitFor(t, 10*time.Second, "the session to be gone", func() bool { return f.r.srv.Sessions() == 0 })
	if !strings.Contains(f.r.log.String(), "ssh: session idle timeout") {
		t.Errorf("no idle timeout in the log:\n%s", f.r.log.String())
	}
}
