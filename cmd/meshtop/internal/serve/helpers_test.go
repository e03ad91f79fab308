package serve_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/cmd/meshtop/internal/serve"
	"github.com/meshtop/meshtop/data/conn"
	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binary builds cmd/meshtop once per test run (TestMain removes it).
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "meshtop-serve-bin-"); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "meshtop"), "github.com/meshtop/meshtop/cmd/meshtop").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building meshtop: %v", buildErr)
	}
	return filepath.Join(binDir, "meshtop")
}

// proc is a `meshtop serve` process.
type proc struct {
	cmd    *exec.Cmd
	log    *logBuf
	exited chan struct{} // closed when it exited; err is then its exit
	err    error
}

// startProc starts cmd (a meshtop serve with --log-format json) and
// returns once it exited or logged that its SSH listener is up (ssh is then
// its address).
func startProc(t *testing.T, cmd *exec.Cmd) (p *proc, ssh string) {
	t.Helper()
	p = &proc{cmd: cmd, log: &logBuf{}, exited: make(chan struct{})}
	var w io.Writer = p.log
	if testing.Verbose() {
		w = io.MultiWriter(p.log, tlogWriter{t})
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	re := regexp.MustCompile(`"msg":"ssh: serving the dashboard","addr":"([^"]+)"`)
	deadline := time.After(2 * time.Minute)
	for {
		if m := re.FindStringSubmatch(p.log.String()); m != nil {
			return p, m[1]
		}
		select {
		case <-p.exited:
			return p, ""
		case <-deadline:
			t.Fatalf("serve did not listen within 2 minutes:\n%s", p.log.String())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and returns the exit error.
func (p *proc) stop(t *testing.T) error {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(time.Minute):
		t.Fatalf("serve did not stop within a minute of SIGTERM:\n%s", p.log.String())
		return nil
	}
}

// env is a database with history, meshtop installed and refreshed once.
type env struct {
	db *pgtest.DB
}

func setup(t *testing.T) env {
	t.Helper()
	db := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	anchor := time.Now().UTC().Truncate(time.Hour)
	if _, err := fixture.Generate(ctx, db.Pool, fixture.Spec{Seed: 11, Projects: 2, Workflows: 8, Runs: 1200, Days: 10, Anchor: anchor, Events: true}); err != nil {
		t.Fatalf("generating: %v", err)
	}
	if _, err := install.New(db.Pool, "metrics").Apply(ctx, nil); err != nil {
		t.Fatalf("installing: %v", err)
	}
	if _, err := store.New(db.Pool, nil, store.Options{}).Refresh(ctx, "", false); err != nil {
		t.Fatalf("refreshing: %v", err)
	}
	return env{db: db}
}

// pool opens a pool named like a serve instance's.
func (e env) pool(t *testing.T, appName string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := conn.Open(ctx, conn.Options{DSN: e.db.DSN, ApplicationName: appName, MaxConns: maxConns})
	if err != nil {
		t.Fatalf("opening a pool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// logBuf collects a server's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// running is a started server.
type running struct {
	srv    *serve.Server
	addrs  serve.Addrs
	log    *logBuf
	cancel context.CancelFunc
	done   chan error
}

// stop stops the server and returns Run's error.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of its context's end")
	}
}

// start runs a server with cfg on e's database, with the pool and store
// filled in, and waits until it listens.
func start(t *testing.T, e env, cfg serve.Config) *running {
	t.Helper()
	if cfg.Pool == nil {
		cfg.Pool = e.pool(t, "meshtop serve "+cfg.Instance, 8)
	}
	if cfg.Store == nil {
		cfg.Store = store.New(cfg.Pool, nil, store.Options{})
	}
	if cfg.Schema == "" {
		cfg.Schema = "metrics"
	}
	lb := &logBuf{}
	var w io.Writer = lb
	if testing.Verbose() {
		w = io.MultiWriter(lb, tlogWriter{t})
	}
	cfg.Logger = serve.NewLogger(w, "text", slog.LevelInfo)
	ready := make(chan serve.Addrs, 1)
	cfg.Ready = func(a serve.Addrs) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := serve.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("serve.New: %v", err)
	}
	r := &running{srv: srv, log: lb, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Run(ctx) }()
	select {
	case r.addrs = <-ready:
	case err := <-r.done:
		cancel()
		t.Fatalf("serve ended before listening: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not listen within 30s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
		}
	})
	return r
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// waitFor polls cond until it holds or the bound passes.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", bound, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// pgtestNewDatabase is an empty MeshHook database (no meshtop).
func pgtestNewDatabase(t *testing.T) *pgtest.DB { return pgtest.NewDatabase(t) }
