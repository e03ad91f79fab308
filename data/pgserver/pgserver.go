// Package pgserver starts and stops throwaway PostgreSQL clusters: the
// embedded default that `meshtop demo` runs against, and the clusters the
// test harness and benchmarks use. A cluster lives in a temporary directory,
// listens on loopback only (plus a unix socket in that directory), and is
// removed when it stops — also when the process that started it dies, thanks
// to a small watchdog process.
//
// initdb refuses to run as root; when the current user is root every server
// command runs as the `postgres` system user instead.
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoBinaries is returned when no PostgreSQL server binaries can be found.
var ErrNoBinaries = errors.New("PostgreSQL server binaries not found (looked for pg_ctl on PATH and in /usr/lib/postgresql/*/bin); install them with `sudo apt-get install postgresql-15 postgresql-15-cron` or run `make deps`")

// Options configure a new cluster. The zero value is a throwaway cluster on a
// random port in a new temporary directory.
type Options struct {
	// Dir keeps the cluster in this directory (created if missing) instead of
	// a temporary one, and Stop leaves it in place. An existing cluster in Dir
	// is reused.
	Dir string
	// Port to listen on; 0 picks a free one.
	Port int
	// Settings are extra postgresql.conf lines (name → value, quoted as needed
	// by the caller's value).
	Settings map[string]string
	// CronDatabase, if set and pg_cron is installed, preloads pg_cron with this
	// database as cron.database_name.
	CronDatabase string
	// Durable keeps fsync on. Tests and demos default to fsync=off for speed.
	Durable bool
}

// Server is a running cluster.
type Server struct {
	BinDir    string
	Root      string // the directory holding data/, the socket and the log
	DataDir   string
	SocketDir string
	Port      int
	HasCron   bool // pg_cron is preloaded

	keep     bool
	cred     *syscall.Credential // non-nil when running as root
	watchdog *exec.Cmd

	// A standby's physical replication slot on its primary (see
	// StartStandby), dropped when the standby stops.
	primary *Server
	slot    string
}

// FindBinDir returns the directory holding pg_ctl, initdb and postgres:
// PATH first, then the newest /usr/lib/postgresql/*/bin.
func FindBinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
	if len(matches) > 0 {
		return filepath.Dir(matches[0]), nil
	}
	return "", ErrNoBinaries
}

func versionOf(pgctl string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(pgctl))))
	return v
}

// CronAvailable reports whether the pg_cron extension is installed next to
// the server binaries in binDir (Debian layout).
func CronAvailable(binDir string) bool {
	lib := filepath.Join(filepath.Dir(binDir), "lib", "pg_cron.so")
	if _, err := os.Stat(lib); err != nil {
		return false
	}
	ver := filepath.Base(filepath.Dir(binDir))
	ctl := filepath.Join("/usr/share/postgresql", ver, "extension", "pg_cron.control")
	_, err := os.Stat(ctl)
	return err == nil
}

// Start creates (or reuses) and starts a cluster.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{BinDir: bin}
	if os.Geteuid() == 0 {
		cred, err := postgresCredential()
		if err != nil {
			return nil, err
		}
		s.cred = cred
	}
	if opts.Dir != "" {
		s.Root, s.keep = opts.Dir, true
		if err := os.MkdirAll(s.Root, 0o700); err != nil {
			return nil, fmt.Errorf("creating cluster directory: %w", err)
		}
	} else {
		s.Root, err = os.MkdirTemp("", "meshtop-pg-")
		if err != nil {
			return nil, fmt.Errorf("creating temporary cluster directory: %w", err)
		}
	}
	s.DataDir = filepath.Join(s.Root, "data")
	s.SocketDir = s.Root
	if err := s.chown(s.Root); err != nil {
		s.cleanup()
		return nil, err
	}
	if !s.keep {
		if err := s.startWatchdog(); err != nil {
			s.cleanup()
			return nil, err
		}
	}
	if err := s.init(ctx, opts); err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("running as root, but there is no `postgres` system user to run the server as (initdb refuses root); install PostgreSQL from Debian packages, which creates it")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (s *Server) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	return filepath.Walk(path, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(s.cred.Uid), int(s.cred.Gid))
	})
}

func (s *Server) init(ctx context.Context, opts Options) error {
	if _, err := os.Stat(filepath.Join(s.DataDir, "PG_VERSION")); err == nil {
		// Reused cluster: only refresh the port.
		port, err := pickPort(opts.Port)
		if err != nil {
			return err
		}
		s.Port = port
		s.HasCron = opts.CronDatabase != "" && CronAvailable(s.BinDir)
		return s.writeConf(opts)
	}
	if _, err := s.run(ctx, "initdb", "-D", s.DataDir, "-U", "postgres", "--auth=trust",
		"--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	port, err := pickPort(opts.Port)
	if err != nil {
		return err
	}
	s.Port = port
	s.HasCron = opts.CronDatabase != "" && CronAvailable(s.BinDir)
	hba := strings.Join([]string{
		"# meshtop throwaway cluster: loopback only.",
		"local all all trust",
		"local replication all trust",
		"host all postgres 127.0.0.1/32 trust",
		"host replication all 127.0.0.1/32 trust",
		"# every other role authenticates with a password (lets tests try a wrong one)",
		"host all all 127.0.0.1/32 scram-sha-256",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(s.DataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return fmt.Errorf("writing pg_hba.conf: %w", err)
	}
	if err := s.writeConf(opts); err != nil {
		return err
	}
	return s.chown(s.Root)
}

// writeConf writes meshtop.conf (included from postgresql.conf) so a reused
// cluster gets the current port and settings.
func (s *Server) writeConf(opts Options) error {
	conf := map[string]string{
		"listen_addresses":        "'127.0.0.1'",
		"port":                    strconv.Itoa(s.Port),
		"unix_socket_directories": quote(s.SocketDir),
		"max_connections":         "200",
		"shared_buffers":          "256MB",
		"log_min_messages":        "warning",
		"log_line_prefix":         "'%m [%p] %q%u@%d '",
		// Logical, as Supabase runs it: WAL capture (sql/repeatable/025_wal.sql)
		// reads a logical replication slot. Enough slots for parallel tests,
		// each of which may create one.
		"wal_level":             "logical",
		"max_wal_senders":       "10",
		"max_replication_slots": "64",
		"hot_standby":           "on",
	}
	if !opts.Durable {
		conf["fsync"] = "off"
		conf["synchronous_commit"] = "off"
		conf["full_page_writes"] = "off"
	}
	if s.HasCron {
		conf["shared_preload_libraries"] = "'pg_cron'"
		conf["cron.database_name"] = quote(opts.CronDatabase)
		conf["cron.host"] = quote(s.SocketDir)
		conf["cron.log_min_messages"] = "warning"
	}
	for k, v := range opts.Settings {
		conf[k] = v
	}
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("# written by meshtop's pgserver; edits are overwritten on start\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, conf[k])
	}
	confPath := filepath.Join(s.DataDir, "meshtop.conf")
	if err := os.WriteFile(confPath, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("writing meshtop.conf: %w", err)
	}
	main := filepath.Join(s.DataDir, "postgresql.conf")
	body, err := os.ReadFile(main)
	if err != nil {
		return fmt.Errorf("reading postgresql.conf: %w", err)
	}
	if !bytes.Contains(body, []byte("include_if_exists = 'meshtop.conf'")) {
		body = append(body, []byte("\ninclude_if_exists = 'meshtop.conf'\n")...)
		if err := os.WriteFile(main, body, 0o600); err != nil {
			return fmt.Errorf("writing postgresql.conf: %w", err)
		}
	}
	return s.chown(s.DataDir)
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (s *Server) start(ctx context.Context) error {
	logPath := filepath.Join(s.Root, "server.log")
	if _, err := s.run(ctx, "pg_ctl", "-D", s.DataDir, "-l", logPath, "-w", "-t", "60", "start"); err != nil {
		return fmt.Errorf("starting PostgreSQL: %w\n%s", err, s.LogTail(20))
	}
	return s.waitReady(ctx)
}

// waitReady dials the port until the server accepts connections.
func (s *Server) waitReady(ctx context.Context) error {
	return waitListening(ctx, s.Addr(), "PostgreSQL", nil, func() string { return s.LogTail(20) })
}

// waitListening dials addr until something accepts connections (for at
// most 30 s), ctx ends, or exited (if not nil) is closed because the
// process died; errors name what and end with tail(), its log.
func waitListening(ctx context.Context, addr, what string, exited <-chan struct{}, tail func() string) error {
	deadline := time.Now().Add(30 * time.Second)
	delay := 10 * time.Millisecond
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited while starting:\n%s", what, tail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept connections on %s: %w\n%s", what, addr, err, tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// Addr is host:port of the loopback listener.
func (s *Server) Addr() string { return loopback(s.Port) }

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// DSN returns a connection URL for the superuser `postgres` on database db.
func (s *Server) DSN(db string) string { return dsnAt(s.Addr(), db, "postgres", "") }

// UserDSN returns a connection URL for another role with a password.
func (s *Server) UserDSN(db, user, password string) string {
	return dsnAt(s.Addr(), db, user, password)
}

// dsnAt is a connection URL for user (with password, if any) on db at addr.
func dsnAt(addr, db, user, password string) string {
	if password != "" {
		user += ":" + password
	}
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", user, addr, db)
}

// Restart restarts the server with the given shutdown mode ("fast" or
// "immediate"; immediate means crash recovery on the way back).
func (s *Server) Restart(ctx context.Context, mode string) error {
	logPath := filepath.Join(s.Root, "server.log")
	if _, err := s.run(ctx, "pg_ctl", "-D", s.DataDir, "-l", logPath, "-m", mode, "-w", "-t", "60", "restart"); err != nil {
		return fmt.Errorf("restarting PostgreSQL: %w\n%s", err, s.LogTail(20))
	}
	return s.waitReady(ctx)
}

// StopServer stops the postmaster but keeps the directory (for restart tests).
func (s *Server) StopServer(ctx context.Context, mode string) error {
	_, err := s.run(ctx, "pg_ctl", "-D", s.DataDir, "-m", mode, "-w", "-t", "60", "stop")
	return err
}

// StartServer starts a server stopped with StopServer.
func (s *Server) StartServer(ctx context.Context) error { return s.start(ctx) }

// Stop shuts the server down and removes its directory (unless Options.Dir
// was given). It is safe to call more than once.
func (s *Server) Stop() error {
	if s == nil || s.DataDir == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var errs []error
	if _, err := os.Stat(filepath.Join(s.DataDir, "postmaster.pid")); err == nil {
		mode := "fast"
		if !s.keep {
			mode = "immediate"
		}
		if _, err := s.run(ctx, "pg_ctl", "-D", s.DataDir, "-m", mode, "-w", "-t", "60", "stop"); err != nil {
			errs = append(errs, fmt.Errorf("stopping PostgreSQL: %w", err))
		}
	}
	s.cleanup()
	if err := s.dropSlot(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// dropSlot drops a stopped standby's replication slot on its primary, which
// would otherwise keep all WAL from then on. The primary's walsender may
// still hold it for a moment after the standby is gone; a primary that is
// itself stopped has nothing to keep.
func (s *Server) dropSlot(ctx context.Context) error {
	if s.primary == nil || s.slot == "" {
		return nil
	}
	p := s.primary
	sql := "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = '" + s.slot + "'"
	for {
		if _, err := os.Stat(filepath.Join(p.DataDir, "postmaster.pid")); p.DataDir == "" || err != nil {
			return nil
		}
		_, err := p.run(ctx, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", p.SocketDir, "-p", strconv.Itoa(p.Port),
			"-U", "postgres", "-d", "postgres", "-c", sql)
		if err == nil {
			s.slot = ""
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dropping replication slot %s: %w", s.slot, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Server) cleanup() {
	if s.watchdog != nil && s.watchdog.Process != nil {
		_ = s.watchdog.Process.Kill()
		_ = s.watchdog.Wait()
		s.watchdog = nil
	}
	if !s.keep && s.Root != "" {
		_ = os.RemoveAll(s.Root)
	}
	s.DataDir = ""
}

// LogTail returns the last n lines of the server log.
func (s *Server) LogTail(n int) string { return tailFile(filepath.Join(s.Root, "server.log"), n) }

// tailFile returns the last n lines of the file at path ("" if unreadable).
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// run executes a server binary, as the postgres user when we are root, in
// its own session so a terminal's ctrl+c does not reach the server.
func (s *Server) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.BinDir, name), args...)
	cmd.Dir = s.Root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: s.cred}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}

// startWatchdog starts a detached shell that waits for this process to exit
// and then stops the server and removes the directory: cleanup survives a
// panic, a failed test binary, or kill -9 of meshtop.
func (s *Server) startWatchdog() error {
	script := `
parent=$1 data=$2 root=$3
while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
if [ -f "$data/postmaster.pid" ]; then
  pid=$(head -n 1 "$data/postmaster.pid")
  kill -QUIT "$pid" 2>/dev/null
  i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
fi
rm -rf "$root"
`
	cmd := exec.Command("/bin/sh", "-c", script, "meshtop-pg-watchdog",
		strconv.Itoa(os.Getpid()), s.DataDir, s.Root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting cluster watchdog: %w", err)
	}
	s.watchdog = cmd
	return nil
}

func pickPort(want int) (int, error) {
	if want != 0 {
		return want, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartStandby creates a streaming-replication hot standby of s with
// pg_basebackup -R in a new temporary directory and starts it.
func (s *Server) StartStandby(ctx context.Context) (*Server, error) {
	r := &Server{BinDir: s.BinDir, cred: s.cred}
	var err error
	r.Root, err = os.MkdirTemp("", "meshtop-replica-")
	if err != nil {
		return nil, fmt.Errorf("creating replica directory: %w", err)
	}
	r.DataDir = filepath.Join(r.Root, "data")
	r.SocketDir = r.Root
	if err := r.chown(r.Root); err != nil {
		r.cleanup()
		return nil, err
	}
	if err := r.startWatchdog(); err != nil {
		r.cleanup()
		return nil, err
	}
	// A physical replication slot (created by pg_basebackup, named in the
	// standby's primary_slot_name by -R) keeps the primary's WAL from the
	// backup on until the standby has it. Without one, a primary busy with
	// other tests' writes could recycle the next segment between the end of
	// the backup and the standby's first connection: the standby would wait
	// forever at that segment's start ("requested WAL segment … has
	// already been removed").
	r.slot = "meshtop_" + strings.NewReplacer("-", "_").Replace(strings.ToLower(filepath.Base(r.Root)))
	r.primary = s
	if _, err := r.run(ctx, "pg_basebackup", "-D", r.DataDir, "-R", "-X", "stream", "-c", "fast",
		"-C", "-S", r.slot,
		"-h", s.SocketDir, "-p", strconv.Itoa(s.Port), "-U", "postgres"); err != nil {
		r.cleanup()
		return nil, fmt.Errorf("pg_basebackup: %w", err)
	}
	if r.Port, err = pickPort(0); err != nil {
		r.cleanup()
		return nil, err
	}
	if err := r.writeConf(Options{}); err != nil {
		r.cleanup()
		return nil, err
	}
	if err := r.start(ctx); err != nil {
		r.cleanup()
		return nil, err
	}
	return r, nil
}
