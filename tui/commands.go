package tui

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/muesli/termenv"

	"github.com/meshtop/meshtop/data/store"
)

// Every command that talks to the database runs under a timeout derived from
// the model's root context, which is cancelled when the program quits. The
// store applies its own, shorter, per-query timeouts inside.
const (
	readTimeout    = 15 * time.Second
	refreshTimeout = 30 * time.Minute // the store bounds the REFRESH itself by statement_timeout
	logLimit       = 50
)

// fetchOverview reads the overview of a window: the workflow rows, with
// the comparison with the previous window read with them (store.Overview).
func fetchOverview(ctx context.Context, src Source, w store.Window, seq int) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		ov, err := src.Overview(ctx, w)
		return OverviewLoadedMsg{Window: w, Overview: ov, Err: err, Seq: seq}
	}
}

func fetchWorkflow(ctx context.Context, src Source, id string, w store.Window, seq int) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		d, err := src.Workflow(ctx, id, w)
		return WorkflowLoadedMsg{Seq: seq, ID: id, Window: w, Detail: d, Err: err}
	}
}

// fetchRuns reads a workflow's failed or slowest runs in a window.
func fetchRuns(ctx context.Context, src Source, id string, w store.Window, kind store.RunKind, limit, seq int) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		l, err := src.Runs(ctx, id, w, kind, limit)
		return RunsLoadedMsg{Seq: seq, WorkflowID: id, Window: w, Kind: kind, List: l, Err: err}
	}
}

// fetchRun reads a run's timeline.
func fetchRun(ctx context.Context, src Source, id string, seq int) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		tl, err := src.Run(ctx, id)
		return RunLoadedMsg{Seq: seq, ID: id, Timeline: tl, Err: err}
	}
}

func fetchConsole(ctx context.Context, src Source, seq int) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		msg := ConsoleLoadedMsg{Seq: seq}
		var err error
		if msg.Views, err = src.Views(ctx); err != nil {
			msg.Err = err
			return msg
		}
		if msg.Log, err = src.RefreshLog(ctx, logLimit); err != nil {
			msg.Err = err
			return msg
		}
		if msg.Running, err = src.Running(ctx); err != nil {
			msg.Err = err
			return msg
		}
		if msg.Schedule, msg.Err = src.Schedule(ctx); msg.Err != nil {
			return msg
		}
		if c, err := src.CaptureLog(ctx); err == nil {
			msg.Capture = &c
		}
		return msg
	}
}

func fetchRunning(ctx context.Context, src Source, seq int) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		r, err := src.Running(ctx)
		return RunningLoadedMsg{Seq: seq, Running: r, Err: err}
	}
}

func checkInstalled(ctx context.Context, src Source) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		ok, err := src.Installed(ctx)
		return InstalledCheckedMsg{Installed: ok, Err: err}
	}
}

func reconnect(ctx context.Context, src Source, attempt int) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		info, err := src.Server(ctx)
		return ReconnectedMsg{Attempt: attempt, Server: info, Err: err}
	}
}

func runRefresh(ctx context.Context, src Source, view string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
		defer cancel()
		res, err := src.Refresh(ctx, view, false)
		return RefreshFinishedMsg{View: view, Results: res, Err: err}
	}
}

func cancelRefresh(ctx context.Context, src Source, view string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		n, err := src.CancelRefresh(ctx, view)
		return CancelFinishedMsg{View: view, Canceled: n, Err: err}
	}
}

func pollTick(seq int, d time.Duration) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return PollTickMsg{Seq: seq} })
}

func watchTick(seq int) tea.Cmd {
	return tea.Tick(watchInterval, func(time.Time) tea.Msg { return WatchTickMsg{Seq: seq} })
}

// listener is one LISTEN session: Listen runs in a goroutine started by the
// first command and forwards events to a channel; each RefreshEventMsg
// re-issues waitListen (the pattern of bubbletea's examples/realtime).
type listener struct {
	gen    int
	cancel context.CancelFunc
	events chan store.RefreshEvent
	done   chan error
}

func startListen(ctx context.Context, src Source, gen int) (*listener, tea.Cmd) {
	lctx, cancel := context.WithCancel(ctx)
	l := &listener{gen: gen, cancel: cancel, events: make(chan store.RefreshEvent, 64), done: make(chan error, 1)}
	return l, func() tea.Msg {
		go func() { l.done <- src.Listen(lctx, l.events) }()
		return l.wait()()
	}
}

func (l *listener) wait() tea.Cmd {
	return func() tea.Msg {
		select {
		case ev := <-l.events:
			return RefreshEventMsg{Gen: l.gen, Event: ev}
		case err := <-l.done:
			// Deliver events that raced the end first.
			select {
			case ev := <-l.events:
				l.done <- err
				return RefreshEventMsg{Gen: l.gen, Event: ev}
			default:
			}
			return ListenEndedMsg{Gen: l.gen, Err: err}
		}
	}
}

// copyToClipboard writes an OSC 52 sequence, which terminals (also over SSH
// and in tmux with set-clipboard on) turn into a clipboard write.
func copyToClipboard(w io.Writer, text string) tea.Cmd {
	return func() tea.Msg {
		if w == nil {
			return CopiedMsg{Text: text, Err: errors.New("no terminal to copy through")}
		}
		termenv.NewOutput(w).Copy(text)
		return CopiedMsg{Text: text}
	}
}

// maxBackoff caps the reconnect interval: the dashboard must resume within
// 5 s of the database coming back, however long the outage (issue 7), with
// room for the attempt itself on a loaded machine. One Server() round trip
// every 2 s costs a database nothing.
const maxBackoff = 2 * time.Second

// backoff is 1s, 2s, 2s … (capped at maxBackoff).
func backoff(attempt int) time.Duration {
	d := time.Second
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// isConnErr tells a lost connection (reconnect with back-off, keep the last
// data) from a query error (show it in the status bar). It looks at SQLSTATE
// classes through the SQLState() method pgconn's errors carry, and at network
// errors, without importing the driver.
func isConnErr(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		c := st.SQLState()
		if strings.HasPrefix(c, "08") || c == "57P01" || c == "57P02" || c == "57P03" {
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && !ne.Timeout() {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	s := strings.ToLower(err.Error())
	for _, frag := range []string{
		"failed to connect", "connection refused", "conn closed", "closed pool",
		"unexpected eof", "connection reset", "broken pipe", "server closed the connection",
		"the database system is", "no such host", "terminating connection",
	} {
		if strings.Contains(s, frag) {
			return true
		}
	}
	return false
}
