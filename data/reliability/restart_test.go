package reliability

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/pgserver"
	"github.com/meshtop/meshtop/data/store"
	"github.com/meshtop/meshtop/tui"
)

// How soon the CLI and the dashboard resume after the database is back
// (the 5 s) follows from their retry delays, capped at 1 s for
// `refresh --every 1s` and at maxBackoff (2 s) for the dashboard: the
// delays are min(back-off, --every, --max-retry-delay) in cli.refreshEvery
// and tui.backoff (TestBackoff). What this test
// asserts is that the first attempt made after the database is back
// succeeds: at most one failure (the attempt in flight when it came back)
// is reported after that, and none after the resume. Timing the resume
// here would be a timed test on a shared, noisy machine; the time taken is
// reported (restarts.*_resume_ms_max), not asserted. resumeGuard is a hang
// guard.
const resumeGuard = 2 * time.Minute

// ownCluster starts a cluster of this test's own (restarts would disturb
// every other test on the shared one) with a database "meshhook" holding
// the MeshHook schema.
func ownCluster(t *testing.T, ctx context.Context) (*pgserver.Server, *pgxpool.Pool) {
	t.Helper()
	// Durable: with synchronous_commit off (the test default) a crash can
	// lose the committed 'running' log row, which production never does.
	srv, err := pgserver.Start(ctx, pgserver.Options{Durable: true})
	if err != nil {
		t.Fatalf("starting a cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Logf("stopping the cluster: %v", err)
		}
	})
	admin, err := pgx.Connect(ctx, srv.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "create database meshhook"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, srv.DSN("meshhook"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := fixture.ApplySchema(ctx, conn); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, srv.DSN("meshhook"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return srv, pool
}

// createLoginRole creates a LOGIN role with a password, member of the given
// meshtop role. The password goes through a parameter-free statement built
// with format() server-side so no failing statement could log it.
func createLoginRole(t *testing.T, ctx context.Context, q querier, name, password, member string) {
	t.Helper()
	if _, err := q.Exec(ctx, fmt.Sprintf("create role %s login", qident(name))); err != nil {
		t.Fatalf("creating role %s: %v", name, err)
	}
	if _, err := q.Exec(ctx, "select set_config('reliability.pw', $1, false)", password); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Exec(ctx, fmt.Sprintf(`do $$ begin execute format('alter role %%I password %%L', %s, current_setting('reliability.pw')); end $$`,
		"'"+name+"'")); err != nil {
		t.Fatalf("setting the password of %s: %v", name, err)
	}
	if member != "" {
		if _, err := q.Exec(ctx, fmt.Sprintf("grant %s to %s", qident(member), qident(name))); err != nil {
			t.Fatalf("granting %s to %s: %v", member, name, err)
		}
	}
}

// lineLog collects a process's output lines with their arrival times.
type lineLog struct {
	mu    sync.Mutex
	lines []timedLine
	all   bytes.Buffer
}

type timedLine struct {
	at   time.Time
	text string
}

func (l *lineLog) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l.mu.Lock()
		l.lines = append(l.lines, timedLine{time.Now(), sc.Text()})
		l.all.WriteString(sc.Text() + "\n")
		l.mu.Unlock()
	}
}

// since returns lines that arrived after t and contain sub.
func (l *lineLog) since(t time.Time, sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ln := range l.lines {
		if ln.at.After(t) && strings.Contains(ln.text, sub) {
			out = append(out, ln.text)
		}
	}
	return out
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// TestRestarts restarts the database (pg_ctl -m immediate: crash recovery)
// on a cluster of its own: during refreshes, under `meshtop refresh
// --every 1s`, and under the dashboard.
func TestRestarts(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 15*time.Minute) // a hang guard, not a timing assertion
	srv, pool := ownCluster(t, ctx)
	e := newFaultEnv(t, ctx, pool, srv.DSN("meshhook"), srv, fixture.Spec{
		Seed: 11, Projects: 3, Workflows: 12, Runs: 8000, Days: 30, Anchor: anchor, Events: true,
	})
	e.refreshAllOK("first refresh")

	t.Run("during refresh", func(t *testing.T) {
		e.t = t
		for _, inj := range []injection{
			{kind: kindRestart, point: pointViewLock, view: views[1]},
			{kind: kindRestart, point: pointBaseLock, view: views[0]},
			{kind: kindRestart, point: pointCells, view: views[2]},
		} {
			if !e.inject(inj) {
				t.Fatalf("%s: not interrupted", inj)
			}
			report.add("restarts.during_refresh", 1)
		}
	})

	const pw = "S3cr3t-restart-pw-91"
	createLoginRole(t, ctx, pool, "rel_refresher", pw, "meshtop_refresher")
	userDSN := srv.UserDSN("meshhook", "rel_refresher", pw)

	t.Run("refresh --every", func(t *testing.T) {
		bin := meshtopBinary(t)
		cmd := exec.Command(bin, "refresh", "--every", "1s")
		cmd.Env = append(os.Environ(), "DATABASE_URL="+userDSN)
		stdout, _ := cmd.StdoutPipe()
		stderr, _ := cmd.StderrPipe()
		var out, errs lineLog
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		var readers sync.WaitGroup
		readers.Add(2)
		go func() { defer readers.Done(); out.consume(stdout) }()
		go func() { defer readers.Done(); errs.consume(stderr) }()
		go func() { readers.Wait(); exited <- cmd.Wait() }()
		defer func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
			}
		}()
		wait := func(d time.Duration, what string, cond func() bool) {
			t.Helper()
			if err := waitFor(ctx, d, what, func() (bool, error) { return cond(), nil }); err != nil {
				t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errs.String())
			}
		}
		start := time.Now()
		wait(2*time.Minute, "a first refresh", func() bool { return len(out.since(start, " ok ")) >= 3 })

		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(cmdline, []byte(pw)) {
			t.Fatalf("the password is visible in /proc/PID/cmdline: %q", cmdline)
		}

		// Stop (immediate), see the outage reported, start again, see it
		// resume; then a restart in one step.
		for round := 0; round < 2; round++ {
			down := time.Now()
			if round == 0 {
				if err := srv.StopServer(ctx, "immediate"); err != nil {
					t.Fatal(err)
				}
				wait(2*time.Minute, "the outage to be reported", func() bool { return len(errs.since(down, "failed")) > 0 })
				if err := srv.StartServer(ctx); err != nil {
					t.Fatal(err)
				}
			} else if err := srv.Restart(ctx, "immediate"); err != nil {
				t.Fatal(err)
			}
			back := time.Now()
			wait(resumeGuard, "a successful refresh after the database came back", func() bool {
				return len(out.since(back, "mv_step_metrics")) > 0 && len(out.since(back, " ok ")) >= 3
			})
			if failed := errs.since(back, "failed"); len(failed) > 1 {
				t.Fatalf("round %d: %d attempts failed after the database was back (at most the one in flight may):\n%s",
					round, len(failed), strings.Join(failed, "\n"))
			}
			t.Logf("round %d: resumed %s after the database came back", round, time.Since(back).Round(10*time.Millisecond))
			report.add("restarts.under_cli", 1)
			report.max("restarts.cli_resume_ms_max", time.Since(back).Milliseconds())
		}
		if len(errs.since(start, "back after")) == 0 {
			t.Fatalf("the recovery was not reported on stderr:\n%s", errs.String())
		}
		select {
		case err := <-exited:
			t.Fatalf("meshtop refresh --every exited during the restarts: %v\n%s", err, errs.String())
		default:
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("meshtop refresh --every after SIGTERM: %v\n%s", err, errs.String())
			}
		case <-time.After(2 * time.Minute): // it may repeat its cancel request for 30 s
			t.Fatal("meshtop refresh --every did not stop within 2 min of SIGTERM")
		}
		for name, text := range map[string]string{"stdout": out.String(), "stderr": errs.String(), "server log": srv.LogTail(100000)} {
			if strings.Contains(text, pw) {
				t.Fatalf("the password appears in %s", name)
			}
		}
		if err := waitNoRefresh(ctx, pool); err != nil {
			t.Fatal(err)
		}
		t.Logf("stderr of meshtop refresh --every:\n%s", errs.String())
	})

	t.Run("dashboard", func(t *testing.T) {
		upool, err := pgxpool.New(ctx, userDSN)
		if err != nil {
			t.Fatal(err)
		}
		defer upool.Close() // after the program has quit: it holds a LISTEN connection
		st := store.New(upool, nil, store.Options{Schema: "metrics"})
		m := &viewRecorder{m: tui.New(tui.Options{Store: st, Interval: time.Second, NoInstall: true, Target: "reliability", Output: io.Discard})}
		tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(120, 40))
		quit := sync.OnceFunc(func() {
			tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
			tm.WaitFinished(t, teatest.WithFinalTimeout(time.Minute))
		})
		defer quit()
		go func() { _, _ = io.Copy(io.Discard, tm.Output()) }() // keep the pipe drained
		waitView := func(d time.Duration, what string, cond func(v string) bool) {
			t.Helper()
			if err := waitFor(ctx, d, what, func() (bool, error) { return cond(m.last()), nil }); err != nil {
				t.Fatalf("%v; the screen:\n%s", err, m.last())
			}
		}
		healthy := func(v string) bool { return strings.Contains(v, "workflows") && !strings.Contains(v, "reconnecting") }
		waitView(2*time.Minute, "the overview", healthy)

		for round := 0; round < 2; round++ {
			if err := srv.StopServer(ctx, "immediate"); err != nil {
				t.Fatal(err)
			}
			waitView(2*time.Minute, "the outage to show", func(v string) bool {
				return strings.Contains(v, "reconnecting") && strings.Contains(v, "workflows") // last data kept
			})
			if round == 1 {
				// A longer outage: the reconnect back-off has grown.
				time.Sleep(10 * time.Second)
			}
			if err := srv.StartServer(ctx); err != nil {
				t.Fatal(err)
			}
			back := time.Now()
			atBack := reconnectAttempt(m.last())
			maxSeen := atBack
			waitView(resumeGuard, "the dashboard to resume", func(v string) bool {
				maxSeen = max(maxSeen, reconnectAttempt(v))
				return healthy(v)
			})
			if maxSeen > atBack+1 {
				t.Fatalf("round %d: the dashboard was at reconnect attempt %d when the database came back and resumed only after attempt %d (at most the attempt in flight may fail)",
					round, atBack, maxSeen)
			}
			t.Logf("round %d: dashboard resumed %s after the database came back", round, time.Since(back).Round(10*time.Millisecond))
			report.add("restarts.under_dashboard", 1)
			report.max("restarts.dashboard_resume_ms_max", time.Since(back).Milliseconds())
		}
		quit()
		if strings.Contains(srv.LogTail(100000), pw) {
			t.Fatal("the password appears in the server log")
		}
	})
}

// reconnectAttempt reads the attempt number from the dashboard's
// "reconnecting (attempt N, …" banner, 0 when there is none.
func reconnectAttempt(view string) int {
	_, rest, ok := strings.Cut(view, "reconnecting (attempt ")
	n := 0
	if ok {
		_, _ = fmt.Sscanf(rest, "%d", &n)
	}
	return n
}

// viewRecorder wraps the dashboard's model and remembers its last frame, so
// the test can read what the screen shows now rather than parse the
// renderer's diff stream.
type viewRecorder struct {
	m    tea.Model
	mu   sync.Mutex
	view string
}

func (r *viewRecorder) Init() tea.Cmd { return r.m.Init() }

func (r *viewRecorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	r.m, cmd = r.m.Update(msg)
	return r, cmd
}

func (r *viewRecorder) View() string {
	v := r.m.View()
	r.mu.Lock()
	r.view = v
	r.mu.Unlock()
	return v
}

func (r *viewRecorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.view
}
