package serve_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/meshtop/meshtop/cmd/meshtop/internal/serve"
	"github.com/meshtop/meshtop/data/store"
)

// fds counts the open files of process pid.
func fds(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("counting open files: %v", err)
	}
	return len(ents)
}

// idleConn is a TCP connection that never says anything; closed records
// when the server closed it.
type idleConn struct {
	c      net.Conn
	opened time.Time
	closed atomic.Int64 // unix nanos, 0 while open
}

func dialIdle(t *testing.T, addr string, from net.IP) *idleConn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: from}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing from %s: %v", from, err)
	}
	ic := &idleConn{c: c, opened: time.Now()}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 512)
		for { // the server's version line, then nothing until it closes
			if _, err := c.Read(buf); err != nil {
				ic.closed.Store(time.Now().UnixNano())
				return
			}
		}
	}()
	return ic
}

func countClosed(cs []*idleConn) int {
	n := 0
	for _, c := range cs {
		if c.closed.Load() != 0 {
			n++
		}
	}
	return n
}

// Before authentication the SSH listener holds at most --ssh-max-startups
// connections (at most --ssh-max-per-source from one address) and closes
// each after --ssh-login-grace: 300 idle TCP connections leave the
// process's open files bounded, and all of them closed.
func TestSSHPreAuthLimits(t *testing.T) {
	db := pgtestNewDatabase(t)
	bin := binary(t)
	dir := t.TempDir()
	writeKeys(t, filepath.Join(dir, "viewers"), newKey(t))
	const grace, maxStartups, perSource = 5 * time.Second, 10, 5
	cmd := exec.Command(bin, "serve", "--listen", "", "--log-format", "json",
		"--ssh-listen", "127.0.0.1:0", "--ssh-authorized-keys", filepath.Join(dir, "viewers"),
		"--ssh-host-key", filepath.Join(dir, "host_key"), "--ssh-login-grace", grace.String(),
		"--ssh-max-startups", strconv.Itoa(maxStartups), "--ssh-max-per-source", strconv.Itoa(perSource))
	cmd.Env = append(os.Environ(), "DATABASE_URL="+db.DSN)
	p, addr := startProc(t, cmd)
	if addr == "" {
		t.Fatalf("serve exited:\n%s", p.log.String())
	}
	pid := p.cmd.Process.Pid
	base := fds(t, pid)

	// Sample the server's open files all along.
	var peak atomic.Int64
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() {
		defer sampling.Done()
		for {
			ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			if err == nil && int64(len(ents)) > peak.Load() {
				peak.Store(int64(len(ents)))
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()

	// 300 connections from 60 addresses, 5 each: the per-source cap is not
	// reached, the overall one is.
	var flood []*idleConn
	for i := range 300 {
		flood = append(flood, dialIdle(t, addr, net.IPv4(127, 0, 0, byte(2+i%60))))
	}
	waitFor(t, time.Minute, "the server to close all but --ssh-max-startups of 300 idle connections", func() bool {
		return countClosed(flood) >= 300-maxStartups
	})
	if n := fds(t, pid); n > base+maxStartups+3 {
		t.Errorf("%d open files holding 300 idle connections (%d before): want at most %d more", n, base, maxStartups)
	}
	// Those kept are closed after the grace time.
	waitFor(t, grace+time.Minute, "the server to close every idle connection", func() bool { return countClosed(flood) == 300 })
	kept := 0
	for _, c := range flood {
		if d := time.Unix(0, c.closed.Load()).Sub(c.opened); d >= grace/2 {
			kept++
			if d < grace-500*time.Millisecond {
				t.Errorf("a connection kept waiting was closed %v after it opened; the grace time is %v", d, grace)
			}
		}
	}
	if kept == 0 || kept > maxStartups {
		t.Errorf("%d connections were kept for the grace time, want 1..%d", kept, maxStartups)
	}
	waitFor(t, time.Minute, "the open files to return to where they were", func() bool { return fds(t, pid) <= base+1 })

	// From one address: --ssh-max-per-source are kept, the rest closed at once.
	var one []*idleConn
	for range perSource + 3 {
		one = append(one, dialIdle(t, addr, net.IPv4(127, 0, 0, 1)))
	}
	waitFor(t, time.Minute, "the connections over --ssh-max-per-source to be closed", func() bool { return countClosed(one) >= 3 })
	if n := countClosed(one); n != 3 {
		t.Errorf("%d of %d connections from one address closed before the grace time, want 3", n, perSource+3)
	}
	waitFor(t, grace+time.Minute, "the rest to be closed after the grace time", func() bool { return countClosed(one) == len(one) })

	close(stopSampling)
	sampling.Wait()
	if pk := int(peak.Load()); pk > base+maxStartups+3 {
		t.Errorf("the server held %d open files at the peak of the flood (%d before): want at most %d more", pk, base, maxStartups)
	}
	log := p.log.String()
	for _, want := range []string{"too many unauthenticated connections", `"reason":"max_startups"`, "not authenticated within the login grace time"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %s:\n%s", want, log)
		}
	}
	if n := strings.Count(log, "too many unauthenticated connections"); n > 10 {
		t.Errorf("%d log lines for the refused connections: want them throttled", n)
	}
	if err := p.stop(t); err != nil {
		t.Errorf("serve after SIGTERM: %v", err)
	}
}

// Removing a key from the key files ends its open sessions (with a
// message); removing it from the operator file only ends its operator
// sessions. A failed authentication is answered only after the delay.
func TestSSHKeyRevoked(t *testing.T) {
	f := startSSH(t, 8, time.Hour)
	dir := filepath.Dir(filepath.Dir(f.hostKeyPath)) // the key files are beside keys/

	// A failed authentication waits for --ssh-auth-fail-delay (default 1s).
	start := time.Now()
	if _, _, err := f.dial(t, ssh.PublicKeys(f.stray)); err == nil {
		t.Fatal("a stray key got in")
	}
	if d := time.Since(start); d < serve.DefaultSSHAuthFailDelay {
		t.Errorf("a refused key was answered after %v, want at least %v", d, serve.DefaultSSHAuthFailDelay)
	}

	vc, _, err := f.dial(t, ssh.PublicKeys(f.viewer))
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	v := f.open(t, vc)
	v.waitText("data as of")
	oc, _, err := f.dial(t, ssh.PublicKeys(f.operator))
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	o := f.open(t, oc)
	o.waitText("data as of")

	// The viewer's key goes: its session ends and says why.
	writeKeys(t, filepath.Join(dir, "viewers"), f.stray)
	v.waitText("your key was removed from the authorized keys; disconnected")
	_ = v.waitEnd()
	waitFor(t, 30*time.Second, "the viewer's connection to be closed", func() bool {
		_, _, err := vc.SendRequest("keepalive@openssh.com", true, nil)
		return err != nil
	})
	if _, _, err := f.dial(t, ssh.PublicKeys(f.viewer)); err == nil {
		t.Error("the removed key logs in again")
	}
	select {
	case err := <-o.done:
		t.Fatalf("the operator's session ended with the viewer's key: %v", err)
	default:
	}

	// The operator's key moves to the viewers: its operator session ends.
	writeKeys(t, filepath.Join(dir, "viewers"), f.operator)
	writeKeys(t, filepath.Join(dir, "operators"))
	o.waitText("your key was removed from the operator keys")
	_ = o.waitEnd()
	oc2, _, err := f.dial(t, ssh.PublicKeys(f.operator))
	if err != nil {
		t.Fatalf("the operator's key, now a viewer's, is refused: %v", err)
	}
	defer oc2.Close()
	o2 := f.open(t, oc2)
	o2.waitText("READ-ONLY")
	o2.send("q")
	_ = o2.waitEnd()

	waitFor(t, 30*time.Second, "the sessions to be gone", func() bool { return f.r.srv.Sessions() == 0 })
	log := f.r.log.String()
	for _, want := range []string{"ssh: key revoked; ending its connection", "key=" + ssh.FingerprintSHA256(f.viewer.PublicKey()),
		"ssh: session ended: your key was removed"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
}

// The host key is generated without touching its directory: a 0755
// directory stays 0755, the key is 0600, its .pub 0644; missing
// directories are created 0700; an existing key is kept.
func TestHostKeyGeneration(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "viewers")
	writeKeys(t, keys, newKey(t))
	shared := filepath.Join(dir, "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	newServer := func(hostKey string) {
		t.Helper()
		_, err := serve.New(context.Background(), serve.Config{SSHListen: "127.0.0.1:0", SSHAuthorizedKeys: keys,
			SSHHostKey: hostKey, Store: store.New(nil, nil, store.Options{})})
		if err != nil {
			t.Fatal(err)
		}
	}
	mode := func(p string) os.FileMode {
		t.Helper()
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	key := filepath.Join(shared, "ssh_host_ed25519_key")
	newServer(key)
	if m := mode(shared); m != 0o755 {
		t.Errorf("the key's directory is %o after generation, want 0755 as it was", m)
	}
	if m := mode(key); m != 0o600 {
		t.Errorf("private key %o, want 0600", m)
	}
	if m := mode(key + ".pub"); m != 0o644 {
		t.Errorf(".pub %o, want 0644", m)
	}
	priv, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubLine, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if pub, _, _, _, err := ssh.ParseAuthorizedKey(pubLine); err != nil || ssh.FingerprintSHA256(pub) != ssh.FingerprintSHA256(signer.PublicKey()) {
		t.Errorf(".pub does not hold the key's public half: %v", err)
	}
	if ents, _ := os.ReadDir(shared); len(ents) != 2 {
		t.Errorf("the directory holds %d entries, want the key and its .pub (no temporary files)", len(ents))
	}
	newServer(key)
	if again, _ := os.ReadFile(key); string(again) != string(priv) {
		t.Error("an existing host key was replaced")
	}

	nested := filepath.Join(dir, "new", "state", "ssh_host_ed25519_key")
	newServer(nested)
	for _, d := range []string{filepath.Join(dir, "new"), filepath.Join(dir, "new", "state")} {
		if m := mode(d); m&0o077 != 0 {
			t.Errorf("created directory %s is %o, want 0700", d, m)
		}
	}
}

// Without --ssh-host-key the key goes to the state directory, never the
// working directory.
func TestDefaultHostKeyPath(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	cases := []struct {
		env  func(string) string
		want string
	}{
		{env("STATE_DIRECTORY", "/var/lib/meshtop", "XDG_STATE_HOME", "/x", "HOME", "/home/a"), "/var/lib/meshtop/ssh_host_ed25519_key"},
		{env("STATE_DIRECTORY", "/var/lib/meshtop:/var/lib/other"), "/var/lib/meshtop/ssh_host_ed25519_key"},
		{env("XDG_STATE_HOME", "/home/a/.state", "HOME", "/home/a"), "/home/a/.state/meshtop/ssh_host_ed25519_key"},
		{env("XDG_STATE_HOME", "relative", "HOME", "/home/a"), "/home/a/.local/state/meshtop/ssh_host_ed25519_key"},
		{env("HOME", "/home/a"), "/home/a/.local/state/meshtop/ssh_host_ed25519_key"},
	}
	for _, c := range cases {
		got, err := serve.DefaultHostKeyPath(c.env)
		if err != nil || got != c.want {
			t.Errorf("got %q, %v; want %q", got, err, c.want)
		}
	}
	for _, e := range []func(string) string{env(), env("HOME", "/"), env("HOME", "relative")} {
		if got, err := serve.DefaultHostKeyPath(e); err == nil || !strings.Contains(err.Error(), "--ssh-host-key") {
			t.Errorf("no state directory: %q, %v; want an error naming --ssh-host-key", got, err)
		}
	}
}
