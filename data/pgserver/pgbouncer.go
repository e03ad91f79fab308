package pgserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoPgBouncer is returned when the pgbouncer binary cannot be found.
var ErrNoPgBouncer = errors.New("pgbouncer not found (looked on PATH and in /usr/sbin); install it with `sudo apt-get install pgbouncer` or run `make deps`")

// BouncerOptions configure a PgBouncer in front of a cluster.
type BouncerOptions struct {
	// PoolMode is "transaction" (Supabase's port 6543), "session" or
	// "statement"; default "transaction".
	PoolMode string
	// PoolSize is default_pool_size: server connections per database and
	// user; default 4.
	PoolSize int
	// Users may connect besides postgres (auth_type = trust: any password
	// is accepted; the server side uses the cluster's unix socket, where
	// every role is trusted).
	Users []string
}

// Bouncer is a running PgBouncer on loopback, forwarding every database to
// a cluster's unix socket. Stop it with Stop.
type Bouncer struct {
	Root     string // its directory: pgbouncer.ini, userlist.txt, log, pid
	Port     int
	PoolMode string

	cmd      *exec.Cmd
	exited   chan struct{}
	watchdog *exec.Cmd
}

// FindPgBouncer returns the path of the pgbouncer binary.
func FindPgBouncer() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNoPgBouncer
}

// StartPgBouncer starts a PgBouncer in front of s in a new temporary
// directory, listening on 127.0.0.1 on a free port (no unix socket). Like
// the cluster, it runs as the postgres system user when we are root
// (pgbouncer refuses to run as root), and a watchdog stops it and removes
// its directory if this process dies.
func (s *Server) StartPgBouncer(ctx context.Context, opts BouncerOptions) (*Bouncer, error) {
	bin, err := FindPgBouncer()
	if err != nil {
		return nil, err
	}
	if opts.PoolMode == "" {
		opts.PoolMode = "transaction"
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = 4
	}
	b := &Bouncer{PoolMode: opts.PoolMode, exited: make(chan struct{})}
	if b.Root, err = os.MkdirTemp("", "meshtop-pgbouncer-"); err != nil {
		return nil, fmt.Errorf("creating the pgbouncer directory: %w", err)
	}
	fail := func(err error) (*Bouncer, error) {
		b.cleanup()
		return nil, err
	}
	if b.Port, err = pickPort(0); err != nil {
		return fail(err)
	}
	users := append([]string{"postgres"}, opts.Users...)
	sort.Strings(users)
	var ul strings.Builder
	for _, u := range users {
		fmt.Fprintf(&ul, "%q \"\"\n", u)
	}
	ini := strings.Join([]string{
		"; written by meshtop's pgserver for one test run",
		"[databases]",
		"* = host=" + s.SocketDir + " port=" + strconv.Itoa(s.Port),
		"[pgbouncer]",
		"listen_addr = 127.0.0.1",
		"listen_port = " + strconv.Itoa(b.Port),
		"unix_socket_dir =",
		"auth_type = trust",
		"auth_file = " + filepath.Join(b.Root, "userlist.txt"),
		"pool_mode = " + opts.PoolMode,
		"default_pool_size = " + strconv.Itoa(opts.PoolSize),
		"max_client_conn = 200",
		"logfile = " + filepath.Join(b.Root, "pgbouncer.log"),
		"pidfile = " + filepath.Join(b.Root, "pgbouncer.pid"),
		"ignore_startup_parameters = extra_float_digits",
		"",
	}, "\n")
	for name, body := range map[string]string{"pgbouncer.ini": ini, "userlist.txt": ul.String()} {
		if err := os.WriteFile(filepath.Join(b.Root, name), []byte(body), 0o600); err != nil {
			return fail(fmt.Errorf("writing %s: %w", name, err))
		}
	}
	if err := s.chown(b.Root); err != nil {
		return fail(err)
	}
	if err := b.startWatchdog(); err != nil {
		return fail(err)
	}
	cmd := exec.Command(bin, filepath.Join(b.Root, "pgbouncer.ini"))
	cmd.Dir = b.Root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: s.cred}
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("starting pgbouncer: %w", err))
	}
	b.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(b.exited)
	}()
	if err := b.waitReady(ctx); err != nil {
		return fail(err)
	}
	return b, nil
}

// waitReady dials the port until pgbouncer accepts connections (bounded).
func (b *Bouncer) waitReady(ctx context.Context) error {
	return waitListening(ctx, b.Addr(), "pgbouncer", b.exited, func() string { return b.LogTail(20) })
}

// Addr is host:port of the listener.
func (b *Bouncer) Addr() string { return loopback(b.Port) }

// DSN returns a connection URL for the superuser postgres on database db,
// through the pooler.
func (b *Bouncer) DSN(db string) string { return dsnAt(b.Addr(), db, "postgres", "") }

// UserDSN returns a connection URL for another role (one of
// BouncerOptions.Users) through the pooler.
func (b *Bouncer) UserDSN(db, user, password string) string {
	return dsnAt(b.Addr(), db, user, password)
}

// LogTail returns the last n lines of pgbouncer's log.
func (b *Bouncer) LogTail(n int) string { return tailFile(filepath.Join(b.Root, "pgbouncer.log"), n) }

// Stop shuts pgbouncer down (SIGINT: immediate, closing its server
// connections) and removes its directory. It is safe to call more than once.
func (b *Bouncer) Stop() error {
	if b == nil || b.Root == "" {
		return nil
	}
	var err error
	if b.cmd != nil && b.cmd.Process != nil {
		_ = b.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-b.exited:
		case <-time.After(10 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.exited
			err = errors.New("pgbouncer did not stop within 10s of SIGINT; killed")
		}
	}
	b.cleanup()
	return err
}

func (b *Bouncer) cleanup() {
	if b.watchdog != nil && b.watchdog.Process != nil {
		_ = b.watchdog.Process.Kill()
		_ = b.watchdog.Wait()
		b.watchdog = nil
	}
	if b.Root != "" {
		_ = os.RemoveAll(b.Root)
	}
	b.Root = ""
}

// startWatchdog starts a detached shell that stops pgbouncer (by its pid
// file) and removes its directory once this process has exited.
func (b *Bouncer) startWatchdog() error {
	script := `
parent=$1 root=$2
while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
if [ -f "$root/pgbouncer.pid" ]; then kill -INT "$(head -n 1 "$root/pgbouncer.pid")" 2>/dev/null; fi
sleep 0.2
rm -rf "$root"
`
	cmd := exec.Command("/bin/sh", "-c", script, "meshtop-pgbouncer-watchdog", strconv.Itoa(os.Getpid()), b.Root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the pgbouncer watchdog: %w", err)
	}
	b.watchdog = cmd
	return nil
}
