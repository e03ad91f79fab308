package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/x/ansi"
	"golang.org/x/crypto/ssh"

	"github.com/meshtop/meshtop/data/bench"
)

// serveGroup measures `meshtop serve`: the database time per poll with 20
// SSH dashboards against one, the memory each further session costs, and a
// Prometheus scrape with a warm cache against a `status --json` call.
func (b *runner) serveGroup(ctx context.Context, d *dataset) error {
	const role = "bench_serve"
	if err := b.adminExec(ctx, fmt.Sprintf(`do $$ begin
		if not exists (select from pg_roles where rolname = '%s') then create role %s login superuser; end if;
		end $$`, role, role)); err != nil {
		return err
	}
	meshtop, err := filepath.Abs(b.cfg.meshtopBin)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "meshtop-bench-serve")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	keys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(keys, ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600); err != nil {
		return err
	}
	httpAddr, sshAddr := freeAddr(), freeAddr()
	dsn := fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d&sslmode=disable", role, d.DB, url.QueryEscape(b.srv.SocketDir), b.srv.Port)
	cmd := exec.CommandContext(ctx, meshtop, "serve", "--dsn", dsn, "--listen", httpAddr, "--ssh-listen", sshAddr,
		"--ssh-authorized-keys", keys, "--ssh-host-key", filepath.Join(dir, "host_key"), "--ssh-max-sessions", "64",
		"--interval", "1s", "--metrics-cache", "15s", "--max-conns", "8")
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	var serveLog strings.Builder
	var logMu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return serveLog.Write(p) })
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting meshtop serve: %w", err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	base := "http://" + httpAddr
	if err := waitHTTP(ctx, base+"/readyz", time.Minute); err != nil {
		logMu.Lock()
		defer logMu.Unlock()
		return fmt.Errorf("meshtop serve not ready: %w\n%s", err, serveLog.String())
	}
	pid := cmd.Process.Pid
	window, warm := 15*time.Second, 3*time.Second
	logf("serve on %s: %d pairs of %s windows (1 vs 20 SSH sessions, 1 s poll)", d.Label, b.cfg.footPairs, window)

	measure := func(n int) (dbPerPoll, callsPerPoll, rssMB, cpuPct float64, err error) {
		var sessions []*benchSession
		defer func() {
			for _, s := range sessions {
				s.close()
			}
		}()
		for range n {
			s, err := openSession(sshAddr, signer)
			if err != nil {
				return 0, 0, 0, 0, err
			}
			sessions = append(sessions, s)
		}
		for _, s := range sessions {
			if err := s.waitText("data as of", time.Minute); err != nil {
				return 0, 0, 0, 0, err
			}
		}
		time.Sleep(warm) // settle: first reads and the sessions' start are not steady state
		if _, err := d.Pool.Exec(ctx, "select pg_stat_statements_reset()"); err != nil {
			return 0, 0, 0, 0, err
		}
		cpu0, err := cpuSeconds(pid)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		time.Sleep(window)
		cpu1, err := cpuSeconds(pid)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		var ms float64
		var calls, maxCalls, statements int64
		if err := d.Pool.QueryRow(ctx, bench.SQL(bench.StatementsOfApp), role).Scan(&ms, &calls, &maxCalls, &statements); err != nil {
			return 0, 0, 0, 0, err
		}
		rss, err := rssMBOf(pid)
		return ms / window.Seconds(), float64(calls) / window.Seconds(), rss, 100 * (cpu1 - cpu0) / window.Seconds(), err
	}
	var db, calls, rss, cpu []Pair
	for i := 0; i < b.cfg.footPairs; i++ {
		order := []int{1, 20}
		if i%2 == 1 {
			order = []int{20, 1}
		}
		got := map[int][4]float64{}
		for _, n := range order {
			ms, c, mb, pct, err := measure(n)
			if err != nil {
				return fmt.Errorf("%d sessions: %w", n, err)
			}
			got[n] = [4]float64{ms, c, mb, pct}
			logf("  pair %d, %2d sessions: DB %.2f ms/poll, %.1f statements/poll, RSS %.1f MB, serve CPU %.1f%%", i+1, n, ms, c, mb, pct)
		}
		cpu = append(cpu, Pair{A: got[1][3], B: got[20][3]})
		db = append(db, Pair{A: got[1][0], B: got[20][0]})
		calls = append(calls, Pair{A: got[1][1], B: got[20][1]})
		rss = append(rss, Pair{A: got[1][2], B: got[20][2]})
	}
	dr := Summarise(db, false)
	b.report.Add(Figure{Group: "meshtop serve", Name: "Database time per poll (pg_stat_statements, 1 s poll)", Pair: "20 SSH sessions / 1 session",
		Unit: "ms", Ratio: dr, Goal: "≤ 1.2×", Met: boolp(dr.Median <= 1.2)})
	b.report.Add(Figure{Group: "meshtop serve", Name: "Statements per poll (pg_stat_statements calls per second)", Pair: "20 SSH sessions / 1 session",
		Unit: "", Ratio: Summarise(calls, false), Goal: "reported",
		Note: "the count of statements does not depend on the machine's load, the time does: both show whether the sessions share one reader"})
	b.report.Add(Figure{Group: "meshtop serve", Name: "CPU of the serve process (% of one core, over the window)", Pair: "20 SSH sessions / 1 session",
		Unit: "%", Ratio: Summarise(cpu, false), Goal: "reported",
		Note: "the serve process runs on the database's machine here (2 cores): its CPU for drawing 20 dashboards competes with the backends, and pg_stat_statements' time includes sending rows to it, so database time can grow with it although the statements do not"})
	rr := Summarise(rss, false)
	var per []float64
	for _, p := range rss {
		per = append(per, (p.B-p.A)/19)
	}
	b.report.Add(Figure{Group: "meshtop serve", Name: "Resident memory of the serve process (VmRSS)", Pair: "20 SSH sessions / 1 session",
		Unit: "MB", Ratio: rr, Goal: "reported",
		Note: fmt.Sprintf("%.2f MB per additional session (median of %d pairs)", Median(per), len(per))})

	// A scrape with a warm cache vs a status --json call.
	if _, err := httpGet(base + "/metrics"); err != nil { // warm the cache
		return err
	}
	var scrape []Pair
	for i := 0; i < max(5, b.cfg.pairs); i++ {
		t0 := time.Now()
		st := exec.CommandContext(ctx, meshtop, "status", "--json", "--dsn", dsn)
		st.Stdout = io.Discard
		if err := st.Run(); err != nil {
			return fmt.Errorf("meshtop status --json: %w", err)
		}
		statusMs := float64(time.Since(t0).Microseconds()) / 1000
		t0 = time.Now()
		body, err := httpGet(base + "/metrics")
		if err != nil {
			return err
		}
		scrapeMs := float64(time.Since(t0).Microseconds()) / 1000
		if !strings.Contains(body, "meshtop_workflow_runs{") {
			return fmt.Errorf("a scrape without workflow series")
		}
		scrape = append(scrape, Pair{A: statusMs, B: scrapeMs})
	}
	b.report.Add(Figure{Group: "meshtop serve", Name: "Wall time: a scrape with the cache warm vs `meshtop status --json`", Pair: "scrape / status --json",
		Unit: "ms", Ratio: Summarise(scrape, false), Goal: "reported",
		Note: "a warm scrape reads no database (meshtop_exporter_database_reads_total stays put); status --json connects and reads the overview and the schedule"})
	return nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(ctx context.Context, u string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("%s: %s", u, resp.Status)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func httpGet(u string) (string, error) {
	resp, err := http.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return string(b), err
}

// rssMBOf reads VmRSS of a process.
func rssMBOf(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// benchSession is one SSH dashboard.
type benchSession struct {
	client *ssh.Client
	sess   *ssh.Session
	in     io.WriteCloser
	mu     sync.Mutex
	out    strings.Builder
}

func openSession(addr string, signer ssh.Signer) (*benchSession, error) {
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "bench", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("ssh: %w", err)
	}
	s := &benchSession{client: c}
	if s.sess, err = c.NewSession(); err != nil {
		c.Close()
		return nil, err
	}
	if err := s.sess.RequestPty("xterm-256color", 40, 120, ssh.TerminalModes{}); err != nil {
		c.Close()
		return nil, err
	}
	if s.in, err = s.sess.StdinPipe(); err != nil {
		c.Close()
		return nil, err
	}
	s.sess.Stdout = writerFunc(func(p []byte) (int, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.out.Len() < 1<<20 {
			s.out.Write(p)
		}
		return len(p), nil
	})
	if err := s.sess.Shell(); err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

func (s *benchSession) waitText(text string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		s.mu.Lock()
		ok := strings.Contains(ansi.Strip(s.out.String()), text)
		s.mu.Unlock()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("an SSH dashboard never showed %q", text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *benchSession) close() {
	_, _ = io.WriteString(s.in, "q")
	done := make(chan struct{})
	go func() { _ = s.sess.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	s.client.Close()
}
