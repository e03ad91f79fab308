// Package tui is meshtop's Bubble Tea dashboard: a live workflow table with
// sparklines, a workflow detail page, a refresh console, a first-run
// installer and a help screen. It reads and drives the metrics views only
// through data/store and data/install; it never speaks SQL.
package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

// Options configure the dashboard.
type Options struct {
	// Store is where the data comes from; *store.Store satisfies Source.
	Store Source
	// Installer offers the first-run install; nil never offers it.
	Installer Installer
	// ReadOnly hides and refuses install, refresh and cancel.
	ReadOnly bool
	// Pooler says the database is reached through a transaction pooler:
	// reads work, but refresh, cancel, install and LISTEN need a session, so
	// they are disabled (the console polls instead of listening), a badge
	// says so, and the status line says once what to do.
	Pooler bool
	// NoInstall never offers to install.
	NoInstall bool
	// Interval between polls (default 2s).
	Interval time.Duration
	// Window shown first (default 24h).
	Window store.Window
	// LagWarn and LagCrit colour the refresh-lag badge yellow and red
	// (defaults 5m and 15m).
	LagWarn, LagCrit time.Duration
	// Target is the redacted host/database shown in the header.
	Target string
	// Clock is the model clock for every relative time and chart range
	// (nil = time.Now).
	Clock func() time.Time

	// Output receives the OSC 52 clipboard sequence (default os.Stdout).
	Output io.Writer
	// Renderer draws every style (nil = lipgloss's default renderer, the
	// process's terminal). A server passes each SSH session's own.
	Renderer *lipgloss.Renderer
}

// poolerLine is store.ErrNeedsSession shortened for the status bar (103
// columns with "error: "; the badge "TRANSACTION POOLER: READS ONLY" says
// that reading works).
const poolerLine = "through a transaction pooler: refresh, cancel, install and LISTEN need a session — use port 5432"

// Minimum terminal size; below it a message asks for a bigger window.
const (
	MinWidth  = 80
	MinHeight = 20
)

// RenderFPS is how often Bubble Tea's renderer wakes up to write a changed
// frame (its default is 60). The dashboard's data changes once per poll, so
// 60 wakeups a second were mostly for nothing and were most of an idle
// dashboard's CPU time; at 20 a key's echo waits at most 50 ms, which still
// feels immediate.
const RenderFPS = 20

const (
	minInterval = 250 * time.Millisecond
	maxInterval = time.Minute
)

type screen int

const (
	screenOverview screen = iota
	screenDetail
	screenConsole
	screenInstall
)

var screenNames = map[screen]string{screenOverview: "Overview", screenDetail: "Detail", screenConsole: "Refresh console", screenInstall: "Install"}

// common is shared by the screens: styles, keys and the clock.
type common struct {
	styles Styles
	keys   keyMap
	clock  func() time.Time
	opts   Options

	// Lines of the last frame that are rebuilt only when what they show
	// changes (View runs after every message, most of which change none of
	// them); common is shared by every copy of the model, so they survive
	// View's value receiver.
	header, tabs, help memo
	fits               map[string]struct{} // body lines known to fit fitsWidth cells
	fitsWidth          int
}

// memo is one cached line and the inputs it was drawn from.
type memo struct{ key, line string }

// get returns the line for key, drawing it with draw when key changed.
func (mm *memo) get(key string, draw func() string) string {
	if mm.key != key || mm.line == "" {
		mm.key, mm.line = key, draw()
	}
	return mm.line
}

func (c *common) now() time.Time { return c.clock() }

// connState tracks a lost connection.
type connState struct {
	lost    bool
	attempt int
	next    time.Duration
	err     string
}

// Model is the root model.
type Model struct {
	ctx    context.Context
	cancel context.CancelFunc
	c      *common
	src    Source
	help   help.Model

	width, height int
	screen        screen
	showHelp      bool
	started       bool // the installed check passed and polling runs

	window   store.Window
	interval time.Duration
	paused   bool
	tickSeq  int

	overviewBusy, consoleBusy, detailBusy bool
	// readSeq numbers reads as they start; ovSeq, csSeq, viewsSeq and
	// runSeq are the numbers of the data shown, so a slow old read never
	// replaces newer data (several reads can be under way after NOTIFYs and
	// watch ticks). runSeq is the read the running refreshes come from:
	// both the console read and the watch's cheap poll bring them.
	readSeq, ovSeq, csSeq, viewsSeq, runSeq int
	views                                   []store.ViewStatus // newest view status from either read, for the lag badge

	server    *store.ServerInfo
	status    string
	statusErr bool
	// statusRead: the error is a failed read, which the next successful
	// poll clears. Other errors (a refused key, a failed refresh, install
	// or copy) stay until something replaces them: a poll that happened to
	// land right after one must not wipe it before it was ever drawn.
	statusRead bool
	statusAt   time.Time // model clock
	conn       connState

	listen        *listener
	listenGen     int
	listenAttempt int

	watchSeq    int
	watchActive bool

	spin spinner.Model // the install screen's steps while they run

	ov   overviewModel
	dt   detailModel
	cs   consoleModel
	inst installModel
}

// Run starts the dashboard on the terminal and returns when the user quits
// or ctx is cancelled.
func Run(ctx context.Context, opts Options) error {
	if os.Getenv("NO_COLOR") != "" {
		lipgloss.SetColorProfile(termenv.Ascii)
	}
	m := newModel(ctx, opts)
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx), tea.WithFPS(RenderFPS))
	final, err := p.Run()
	if fm, ok := final.(Model); ok {
		fm.cancel()
	}
	if err != nil && ctx.Err() != nil {
		return nil // cancelled from outside: a clean exit
	}
	return err
}

// New returns the dashboard model (for tests: drive it with teatest).
func New(opts Options) tea.Model { return newModel(context.Background(), opts) }

// NewWithContext is New with a root context: cancelling it ends every
// database command and the LISTEN connection of the model.
func NewWithContext(ctx context.Context, opts Options) tea.Model { return newModel(ctx, opts) }

func newModel(ctx context.Context, opts Options) Model {
	if in, ok := opts.Installer.(*install.Installer); ok && in == nil {
		opts.Installer = nil // a typed nil pointer: no install offer
	}
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.Window == "" {
		opts.Window = store.Window24h
	}
	if opts.LagWarn <= 0 {
		opts.LagWarn = 5 * time.Minute
	}
	if opts.LagCrit <= 0 {
		opts.LagCrit = 15 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Output == nil {
		opts.Output = os.Stdout
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &common{styles: NewStylesFor(DefaultTheme(), opts.Renderer), keys: newKeyMap(opts.ReadOnly || opts.Pooler), clock: opts.Clock, opts: opts}
	h := help.New()
	h.Styles.ShortKey = c.styles.Accent
	h.Styles.FullKey = c.styles.Accent
	return Model{
		ctx: ctx, cancel: cancel, c: c, src: opts.Store, help: h,
		screen: screenOverview, window: opts.Window, interval: opts.Interval,
		ov: newOverview(), cs: newConsole(), spin: spinner.New(spinner.WithSpinner(spinner.MiniDot)),
	}
}

func (m Model) Init() tea.Cmd { return checkInstalled(m.ctx, m.src) }

// start begins normal operation: data, polling and LISTEN.
func (m *Model) start() tea.Cmd {
	m.started = true
	if m.screen == screenInstall {
		m.screen = screenOverview
	}
	if m.status == "" {
		m.setStatus(m.idleStatus(), false)
	}
	return tea.Batch(m.fetchAll(), m.rearmPoll(), m.restartListen())
}

// fetchAll reads what the screens show, skipping reads already under way.
func (m *Model) fetchAll() tea.Cmd {
	var cmds []tea.Cmd
	if !m.overviewBusy {
		m.overviewBusy = true
		m.readSeq++
		cmds = append(cmds, fetchOverview(m.ctx, m.src, m.window, m.readSeq, m.ov.changesKey))
	}
	if m.screen == screenConsole || m.cs.busy() || !m.cs.loaded {
		cmds = append(cmds, m.fetchConsole())
	}
	if m.screen == screenDetail && m.dt.id != "" && !m.detailBusy {
		m.detailBusy = true
		cmds = append(cmds, fetchWorkflow(m.ctx, m.src, m.dt.id, m.window))
	}
	return tea.Batch(cmds...)
}

func (m *Model) fetchConsole() tea.Cmd {
	if m.consoleBusy {
		return nil
	}
	m.consoleBusy = true
	m.readSeq++
	return fetchConsole(m.ctx, m.src, m.readSeq)
}

// fetchRunning reads the running refreshes, numbered like the other reads.
func (m *Model) fetchRunning() tea.Cmd {
	m.readSeq++
	return fetchRunning(m.ctx, m.src, m.readSeq)
}

// rearmPoll starts a new poll loop and so invalidates any pending tick.
func (m *Model) rearmPoll() tea.Cmd {
	m.tickSeq++
	if m.paused {
		return nil
	}
	return pollTick(m.tickSeq, m.interval)
}

func (m *Model) restartListen() tea.Cmd {
	if m.c.opts.Pooler {
		return nil // no LISTEN through a transaction pooler: polling only
	}
	if m.listen != nil {
		m.listen.cancel()
	}
	m.listenGen++
	l, cmd := startListen(m.ctx, m.src, m.listenGen)
	m.listen = l
	return cmd
}

func (m *Model) startWatch() tea.Cmd {
	if m.watchActive {
		return nil
	}
	m.watchActive = true
	m.watchSeq++
	return watchTick(m.watchSeq)
}

func (m *Model) setViews(v []store.ViewStatus, seq int) {
	if seq >= m.viewsSeq {
		m.views, m.viewsSeq = v, seq
	}
}

// setStatus sets the status line. Status texts quote names and errors from
// the database: they are put on one sanitized line here, once.
func (m *Model) setStatus(s string, isErr bool) {
	m.status, m.statusErr, m.statusRead, m.statusAt = safetext.Line(s), isErr, false, m.c.now()
}

// statusTTL is how long an informational status ("copied …", "polling
// every 4s") stays; errors stay until something replaces them.
const statusTTL = 8 * time.Second

// idleStatus is the status line when there is nothing to report: through a
// transaction pooler, what the pooler means; else empty.
func (m *Model) idleStatus() string {
	if m.c.opts.Pooler {
		return poolerLine
	}
	return ""
}

// handleErr routes an error: a lost connection starts reconnecting, any
// other error goes to the status bar. It returns the command to run.
func (m *Model) handleErr(what string, err error) tea.Cmd {
	if m.ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return nil // quitting: reads end cancelled, that is no error
	}
	if isConnErr(err) {
		return m.connLost(err)
	}
	m.setStatus(fmt.Sprintf("%s: %s", what, oneLine(err.Error())), true)
	m.statusRead = true
	return nil
}

func (m *Model) connLost(err error) tea.Cmd {
	m.conn.err = oneLine(err.Error())
	if m.conn.lost {
		return nil // a reconnect loop is already running
	}
	m.conn.lost = true
	m.conn.attempt = 1
	m.conn.next = backoff(1)
	return tea.Tick(m.conn.next, func(time.Time) tea.Msg { return ReconnectTickMsg{Attempt: 1} })
}

func (m Model) quit() (tea.Model, tea.Cmd) {
	m.cancel()
	if m.listen != nil {
		m.listen.cancel()
	}
	return m, tea.Quit
}

// Update handles a message, then keeps the overview's selection on screen
// (View works on a copy and cannot remember the scroll position).
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	nm, cmd := m.update(msg)
	if mm, ok := nm.(Model); ok {
		mm.ov.scrollTo(mm.overviewRows())
		return mm, cmd
	}
	return nm, cmd
}

// overviewRows is how many table rows fit on the overview.
func (m Model) overviewRows() int {
	h := m.bodyHeight() - 3 // header, totals, data-as-of
	if m.ov.filtering || m.ov.filter.Value() != "" {
		h--
	}
	return max(1, h)
}

func (m Model) update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		if m.dt.loaded {
			m.dt.drawCharts(m.c, m.width)
		}
		return m, nil
	case tea.KeyMsg:
		// Keys typed quickly (or batched by a slow SSH link) arrive as one
		// message of several runes; outside text input each is a command.
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && !m.ov.filtering {
			var cmds []tea.Cmd
			var cur tea.Model = m
			for _, r := range msg.Runes {
				mm, ok := cur.(Model)
				if !ok {
					break
				}
				// After a '/', handleKey sends the rest to the filter.
				var cmd tea.Cmd
				cur, cmd = mm.handleKey(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
				cmds = append(cmds, cmd)
			}
			return cur, tea.Batch(cmds...)
		}
		return m.handleKey(msg)

	case InstalledCheckedMsg:
		if msg.Err != nil {
			if isConnErr(msg.Err) {
				cmd := m.connLost(msg.Err)
				return m, cmd
			}
			m.setStatus("checking the installation: "+oneLine(msg.Err.Error()), true)
			cmd := m.start()
			return m, cmd
		}
		if msg.Installed {
			cmd := m.start()
			return m, cmd
		}
		m.screen = screenInstall
		m.inst = installModel{state: installUnavailable}
		switch {
		case m.c.opts.Pooler:
			m.inst.state, m.inst.reason = installUnavailable, "Installing needs a server session, which a transaction pooler does not give:\nrun `meshtop install` with the direct or session-pooler URL, port 5432."
		case m.c.opts.ReadOnly:
			m.inst.reason = "meshtop runs read-only, so it will not install anything. Run `meshtop install` with a role that owns the database objects, or ask your DBA to."
		case m.c.opts.NoInstall || m.c.opts.Installer == nil:
			m.inst.reason = "Run `meshtop install` (or `meshtop install --dry-run` to see the SQL) to create the metrics schema and views."
		default:
			// Only a database that can take meshtop is offered the install.
			m.inst.state = installChecking
			return m, tea.Batch(checkInstaller(m.ctx, m.c.opts.Installer), m.spin.Tick)
		}
		return m, nil

	case InstallCheckedMsg:
		var pe *install.PreconditionError
		switch {
		case errors.As(msg.Err, &pe):
			m.inst.state, m.inst.blocked, m.inst.reason = installUnavailable, pe, pe.Msg
		case msg.Err != nil:
			m.inst.state, m.inst.err = installFailed, fmt.Errorf("checking the install preconditions: %w", msg.Err)
		default:
			m.inst.state = installPrompt
			m.inst.objects = m.c.opts.Installer.Objects()
		}
		return m, nil
	case InstallStepMsg:
		m.inst.stepDone(msg.Step, m.c.now())
		cmd := m.inst.run.wait()
		return m, cmd
	case InstallFinishedMsg:
		if msg.Err != nil {
			m.inst.state, m.inst.err = installFailed, msg.Err
			return m, nil
		}
		// The first refresh follows at once: the overview it hands over to
		// shows data, not "never refreshed".
		m.inst.state, m.inst.applied = installRefreshing, msg.Applied
		m.inst.refresh = nil
		for _, v := range m.src.ViewNames() {
			m.inst.refresh = append(m.inst.refresh, firstRefreshStep{view: v})
		}
		ctx, cancel := context.WithCancel(m.ctx)
		m.inst.cancel = cancel
		r, cmd := startFirstRefresh(ctx, m.src)
		m.inst.refreshRun = r
		return m, tea.Batch(cmd, m.spin.Tick)
	case FirstRefreshStepMsg:
		m.inst.refreshStep(msg, m.c.now())
		return m, m.inst.refreshRun.wait()
	case FirstRefreshDoneMsg:
		if m.inst.cancel != nil {
			m.inst.cancel()
		}
		switch {
		case msg.Canceled:
			m.setStatus("installed; first refresh canceled — tab opens the refresh console, R refreshes", false)
		case msg.Err != nil:
			m.setStatus("installed; first refresh: "+oneLine(msg.Err.Error()), true)
		default:
			m.setStatus(fmt.Sprintf("installed (%d migrations) and refreshed", m.inst.applied), false)
		}
		cmd := m.start()
		return m, cmd
	case spinner.TickMsg:
		if m.screen != screenInstall || !m.inst.busy() {
			return m, nil // the spinner stops until something runs again
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return m, cmd

	case PollTickMsg:
		if msg.Seq != m.tickSeq || m.paused || m.conn.lost {
			return m, nil // stale loop, paused, or the reconnect loop owns polling
		}
		cmd := tea.Batch(m.fetchAll(), pollTick(m.tickSeq, m.interval))
		return m, cmd

	case OverviewLoadedMsg:
		m.overviewBusy = false
		if msg.Err != nil {
			cmd := m.handleErr("reading the overview", msg.Err)
			return m, cmd
		}
		if msg.Window != m.window || msg.Seq < m.ovSeq {
			return m, nil
		}
		if m.statusErr && m.statusRead {
			m.setStatus(m.idleStatus(), false)
		}
		m.ovSeq = msg.Seq
		m.server = &msg.Overview.Server
		m.ov.setData(msg.Overview)
		m.setViews(msg.Overview.Views, msg.Seq)
		if msg.ChangesKey != nil {
			m.ov.setChanges(*msg.ChangesKey, msg.Changes)
		}
		return m, nil

	case WorkflowLoadedMsg:
		m.detailBusy = false
		if msg.Err != nil {
			cmd := m.handleErr("reading workflow "+msg.ID, msg.Err)
			return m, cmd
		}
		if msg.ID != m.dt.id || msg.Window != m.window {
			return m, nil
		}
		m.dt.window = msg.Window
		m.dt.setData(m.c, msg.Detail, m.width)
		return m, nil

	case ConsoleLoadedMsg:
		m.consoleBusy = false
		if msg.Err != nil {
			cmd := m.handleErr("reading the refresh status", msg.Err)
			return m, cmd
		}
		if msg.Seq < m.csSeq {
			return m, nil
		}
		m.csSeq = msg.Seq
		if msg.Seq < m.runSeq {
			msg.Running = m.cs.running // a newer poll already told what runs
		} else {
			m.runSeq = msg.Seq
		}
		m.cs.setData(msg)
		m.setViews(msg.Views, msg.Seq)
		if m.cs.busy() {
			cmd := m.startWatch()
			return m, cmd
		}
		return m, nil

	case RunningLoadedMsg:
		if msg.Err != nil {
			cmd := m.handleErr("reading running refreshes", msg.Err)
			return m, cmd
		}
		if msg.Seq < m.runSeq {
			return m, nil // older than what is shown
		}
		m.runSeq = msg.Seq
		m.cs.running = msg.Running
		return m, nil

	case WatchTickMsg:
		if msg.Seq != m.watchSeq {
			return m, nil
		}
		if !m.cs.busy() || m.conn.lost {
			m.watchActive = false
			return m, nil
		}
		cmd := tea.Batch(m.fetchRunning(), watchTick(m.watchSeq))
		return m, cmd

	case RefreshFinishedMsg:
		delete(m.cs.ours, msg.View)
		m.cs.last = &refreshOutcome{view: msg.View, results: msg.Results, err: msg.Err}
		m.setStatus(refreshSummary(msg), msg.Err != nil)
		if msg.Err != nil && isConnErr(msg.Err) {
			cmd := m.connLost(msg.Err)
			return m, cmd
		}
		m.overviewBusy = false // a poll under way may predate the refresh: read again
		cmd := m.fetchAllConsole()
		return m, cmd

	case CancelFinishedMsg:
		if msg.Err != nil {
			cmd := m.handleErr("cancelling the refresh", msg.Err)
			return m, cmd
		}
		m.setStatus(fmt.Sprintf("cancel sent to %d refreshing backend(s)", msg.Canceled), false)
		cmd := m.fetchConsole()
		return m, cmd

	case RefreshEventMsg:
		if m.listen == nil || msg.Gen != m.listen.gen {
			return m, nil
		}
		m.listenAttempt = 0
		cmds := []tea.Cmd{m.listen.wait()}
		m.consoleBusy = false
		cmds = append(cmds, m.fetchConsole())
		if msg.Event.Status != "running" {
			m.overviewBusy = false
			cmds = append(cmds, m.fetchAll())
		} else {
			cmds = append(cmds, m.startWatch())
		}
		return m, tea.Batch(cmds...)

	case ListenEndedMsg:
		if m.listen == nil || msg.Gen != m.listen.gen || m.ctx.Err() != nil {
			return m, nil
		}
		m.listenAttempt++
		gen := msg.Gen
		var cmds []tea.Cmd
		if msg.Err != nil && isConnErr(msg.Err) {
			cmds = append(cmds, m.connLost(msg.Err))
		}
		cmds = append(cmds, tea.Tick(backoff(m.listenAttempt), func(time.Time) tea.Msg { return ListenRetryMsg{Gen: gen} }))
		return m, tea.Batch(cmds...)

	case ListenRetryMsg:
		if m.listen == nil || msg.Gen != m.listen.gen {
			return m, nil
		}
		cmd := m.restartListen()
		return m, cmd

	case ReconnectTickMsg:
		if !m.conn.lost || msg.Attempt != m.conn.attempt {
			return m, nil
		}
		return m, reconnect(m.ctx, m.src, msg.Attempt)

	case ReconnectedMsg:
		if !m.conn.lost || msg.Attempt != m.conn.attempt {
			return m, nil
		}
		if msg.Err != nil {
			m.conn.err = oneLine(msg.Err.Error())
			m.conn.attempt++
			m.conn.next = backoff(m.conn.attempt)
			a := m.conn.attempt
			return m, tea.Tick(m.conn.next, func(time.Time) tea.Msg { return ReconnectTickMsg{Attempt: a} })
		}
		m.conn = connState{}
		m.server = &msg.Server
		m.setStatus("reconnected", false)
		m.overviewBusy, m.consoleBusy, m.detailBusy = false, false, false
		if !m.started {
			return m, checkInstalled(m.ctx, m.src)
		}
		cmd := tea.Batch(m.fetchAll(), m.rearmPoll(), m.restartListen())
		return m, cmd

	case CopiedMsg:
		if msg.Err != nil {
			m.setStatus("copy: "+msg.Err.Error(), true)
		} else {
			m.setStatus("copied "+msg.Text+" to the clipboard (OSC 52)", false)
		}
		return m, nil
	}
	// Messages for the filter input (cursor blink).
	if m.ov.filtering {
		var cmd tea.Cmd
		m.ov.filter, cmd = m.ov.filter.Update(msg)
		return m, cmd
	}
	return m, nil
}

// fetchAllConsole reads everything after a refresh finished.
func (m *Model) fetchAllConsole() tea.Cmd {
	m.consoleBusy = false
	return tea.Batch(m.fetchAll(), m.fetchConsole())
}

func (m Model) handleKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.c.keys
	if msg.String() == "ctrl+c" {
		return m.quit()
	}
	// The filter input gets keys first.
	if m.ov.filtering {
		switch msg.String() {
		case "esc":
			m.ov.filtering = false
			m.ov.filter.Blur()
			m.ov.filter.SetValue("")
			m.ov.apply()
			return m, nil
		case "enter":
			m.ov.filtering = false
			m.ov.filter.Blur()
			return m, nil
		case "up", "down":
			// fall through to navigation
		default:
			var cmd tea.Cmd
			m.ov.filter, cmd = m.ov.filter.Update(msg)
			m.ov.apply()
			return m, cmd
		}
	}
	if m.showHelp {
		if key.Matches(msg, k.Quit) {
			return m.quit()
		}
		m.showHelp = false // any key closes the help
		return m, nil
	}
	if m.screen == screenInstall {
		return m.installKey(msg)
	}
	if m.cs.confirmCancel {
		m.cs.confirmCancel = false
		if key.Matches(msg, k.Yes) {
			view := ""
			if len(m.cs.running) == 1 {
				view = m.cs.running[0].View
			} else if r := m.cs.runningFor(m.cs.selectedView()); r != nil {
				view = r.View
			}
			m.setStatus("cancelling the refresh of "+m.cs.cancelTarget()+"…", false)
			return m, cancelRefresh(m.ctx, m.src, view)
		}
		m.setStatus("the refresh keeps running", false)
		return m, nil
	}

	switch {
	case key.Matches(msg, k.Quit):
		return m.quit()
	case key.Matches(msg, k.Help):
		m.showHelp = true
		return m, nil
	case key.Matches(msg, k.NextScreen):
		return m.switchScreen(+1)
	case key.Matches(msg, k.PrevScreen):
		return m.switchScreen(-1)
	case key.Matches(msg, k.Window1), key.Matches(msg, k.Window2), key.Matches(msg, k.Window3), key.Matches(msg, k.Window4):
		w := store.Windows[int(msg.String()[0]-'1')]
		if w == m.window {
			return m, nil
		}
		m.window = w
		m.overviewBusy, m.detailBusy = false, false
		if m.dt.id != "" {
			m.dt.window = w
			m.dt.loaded = false
		}
		cmd := m.fetchAll()
		return m, cmd
	case key.Matches(msg, k.Pause):
		m.paused = !m.paused
		if m.paused {
			m.tickSeq++
			m.setStatus("polling paused (p resumes)", false)
			return m, nil
		}
		m.setStatus("polling resumed", false)
		cmd := tea.Batch(m.fetchAll(), m.rearmPoll())
		return m, cmd
	case key.Matches(msg, k.Faster), key.Matches(msg, k.Slower):
		if key.Matches(msg, k.Faster) {
			m.interval = max(minInterval, m.interval/2)
		} else {
			m.interval = min(maxInterval, m.interval*2)
		}
		m.setStatus("polling every "+fmtEvery(m.interval), false)
		cmd := m.rearmPoll()
		return m, cmd
	}

	switch m.screen {
	case screenOverview:
		return m.overviewKey(msg)
	case screenDetail:
		return m.detailKey(msg)
	case screenConsole:
		return m.consoleKey(msg)
	}
	return m, nil
}

// switchScreen is tab / shift+tab: between the overview and the refresh
// console, as the README says. The detail is reached with enter on a row
// (never a stale one through tab); from it tab goes on to the console and
// shift+tab back to the overview.
func (m Model) switchScreen(dir int) (tea.Model, tea.Cmd) {
	switch {
	case m.screen == screenDetail && dir > 0, m.screen == screenOverview:
		m.screen = screenConsole
	default:
		m.screen = screenOverview
	}
	if m.screen == screenConsole {
		cmd := m.fetchConsole()
		return m, cmd
	}
	return m, nil
}

func (m Model) overviewKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.c.keys
	page := max(1, m.bodyHeight()-4)
	switch {
	case key.Matches(msg, k.Up):
		m.ov.move(-1)
	case key.Matches(msg, k.Down):
		m.ov.move(1)
	case key.Matches(msg, k.PageUp):
		m.ov.move(-page)
	case key.Matches(msg, k.PageDown):
		m.ov.move(page)
	case key.Matches(msg, k.Top):
		m.ov.top()
	case key.Matches(msg, k.Bottom):
		m.ov.sel = len(m.ov.rows) - 1
		m.ov.clampSel()
	case key.Matches(msg, k.Filter):
		m.ov.filtering = true
		cmd := m.ov.filter.Focus()
		return m, cmd
	case key.Matches(msg, k.Back):
		if m.ov.filter.Value() != "" {
			m.ov.filter.SetValue("")
			m.ov.apply()
		}
	case key.Matches(msg, k.Sort):
		m.ov.sortCol = (m.ov.sortCol + 1) % numSortable
		m.ov.apply()
		m.ov.top()
	case key.Matches(msg, k.SortDir):
		m.ov.sortDesc = !m.ov.sortDesc
		m.ov.apply()
		m.ov.top()
	case key.Matches(msg, k.Worse):
		// What got worse against the previous window, worst first.
		m.ov.sortCol, m.ov.sortDesc = colDeltaFail, true
		m.ov.apply()
		m.ov.top()
	case key.Matches(msg, k.Copy):
		if w := m.ov.selected(); w != nil {
			return m, copyToClipboard(m.c.opts.Output, w.WorkflowID)
		}
	case key.Matches(msg, k.Enter):
		w := m.ov.selected()
		if w == nil {
			return m, nil
		}
		m.dt.open(w.WorkflowID, m.window)
		m.screen = screenDetail
		m.detailBusy = true
		return m, fetchWorkflow(m.ctx, m.src, w.WorkflowID, m.window)
	}
	return m, nil
}

func (m Model) detailKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.c.keys
	switch {
	case key.Matches(msg, k.Back):
		m.screen = screenOverview
	case key.Matches(msg, k.Up):
		m.dt.stepOff = max(0, m.dt.stepOff-1)
	case key.Matches(msg, k.Down):
		m.dt.stepOff++
	case key.Matches(msg, k.Top):
		m.dt.stepOff = 0
	case key.Matches(msg, k.Copy):
		if m.dt.id != "" {
			return m, copyToClipboard(m.c.opts.Output, m.dt.id)
		}
	}
	return m, nil
}

func (m Model) consoleKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.c.keys
	if m.c.opts.ReadOnly || m.c.opts.Pooler {
		// The bindings are disabled (and so hidden from the help); say why
		// the keys do nothing.
		switch msg.String() {
		case "r", "R", "x":
			if m.c.opts.Pooler {
				m.setStatus(poolerLine, true)
			} else {
				m.setStatus("read-only: refreshing and cancelling are disabled", true)
			}
			return m, nil
		}
	}
	switch {
	case key.Matches(msg, k.Back):
		m.screen = screenOverview
	case key.Matches(msg, k.Up):
		m.cs.sel = max(0, m.cs.sel-1)
	case key.Matches(msg, k.Down):
		m.cs.sel = min(max(0, len(m.cs.views)-1), m.cs.sel+1)
	case key.Matches(msg, k.LogUp):
		m.cs.selectLog(m.cs.logSel - 1)
	case key.Matches(msg, k.LogDown):
		m.cs.selectLog(m.cs.logSel + 1)
	case key.Matches(msg, k.Enter):
		m.cs.toggleLog()
	case key.Matches(msg, k.Refresh), key.Matches(msg, k.RefreshAll):
		view := ""
		if key.Matches(msg, k.Refresh) {
			view = m.cs.selectedView()
			if view == "" {
				return m, nil
			}
		}
		if _, ok := m.cs.ours[view]; ok {
			m.setStatus("that refresh is already under way", false)
			return m, nil
		}
		m.cs.ours[view] = m.c.now()
		name := view
		if name == "" {
			name = "all views"
		}
		m.setStatus("refreshing "+name+"…", false)
		cmd := tea.Batch(runRefresh(m.ctx, m.src, view), m.startWatch(), m.fetchRunning())
		return m, cmd
	case key.Matches(msg, k.Cancel):
		if len(m.cs.running) == 0 {
			m.setStatus("no refresh is running", false)
			return m, nil
		}
		m.cs.confirmCancel = true
	}
	return m, nil
}

func (m Model) installKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.c.keys
	switch m.inst.state {
	case installPrompt, installFailed:
		switch {
		case key.Matches(msg, k.Yes):
			m.inst.steps, m.inst.err = nil, nil
			if m.inst.objects == nil {
				// The precondition check itself failed: check again.
				m.inst.state = installChecking
				return m, tea.Batch(checkInstaller(m.ctx, m.c.opts.Installer), m.spin.Tick)
			}
			m.inst.state = installRunning
			r, cmd := startInstall(m.ctx, m.c.opts.Installer)
			m.inst.run = r
			return m, tea.Batch(cmd, m.spin.Tick)
		case key.Matches(msg, k.No), key.Matches(msg, k.Quit):
			return m.quit()
		}
	case installRefreshing:
		switch {
		case key.Matches(msg, k.Cancel) && m.inst.cancel != nil:
			m.inst.canceling = true
			m.inst.cancel()
		case key.Matches(msg, k.Quit):
			return m.quit()
		}
	case installUnavailable:
		if key.Matches(msg, k.Quit) || key.Matches(msg, k.No) {
			return m.quit()
		}
	}
	return m, nil
}

// Layout.

func (m Model) bodyHeight() int {
	h := m.height - 4 // header, tabs, status, help line
	if m.conn.lost {
		h--
	}
	return max(1, h)
}

func (m Model) View() string {
	if m.width == 0 || m.height == 0 {
		return "starting meshtop…"
	}
	if !m.c.styles.current() {
		// The colour profile changed since the styles were built: rebuild
		// them (c is shared by every copy of the model).
		m.c.styles = NewStylesFor(m.c.styles.Theme, m.c.styles.renderer())
		m.c.header, m.c.tabs, m.c.help = memo{}, memo{}, memo{}
		clear(m.ov.rowCache) // styled with the old colours
		clear(m.ov.sparks)
	}
	st := m.c.styles
	m.help.Styles.ShortKey, m.help.Styles.FullKey = st.Accent, st.Accent
	if m.width < MinWidth || m.height < MinHeight {
		msg := fmt.Sprintf("meshtop needs a terminal of at least %d×%d\nthis one is %d×%d: make it larger", MinWidth, MinHeight, m.width, m.height)
		return lipgloss.Place(m.width, m.height, lipgloss.Center, lipgloss.Center, st.Warn.Render(msg))
	}
	lines := make([]string, 0, m.height)
	lines = append(lines, m.headerView())
	if m.conn.lost {
		lines = append(lines, st.Banner.Render(fit(fmt.Sprintf(" reconnecting (attempt %d, next in %s) — %s; showing the last data",
			m.conn.attempt, fmtDur(m.conn.next), connReason(m.conn.err)), m.width)))
	}
	lines = append(lines, m.tabsView())
	body := m.bodyView(m.bodyHeight())
	lines = append(lines, m.c.exactLines(body, m.bodyHeight(), m.width)...)
	lines = append(lines, m.statusView())
	lines = append(lines, m.c.help.get(fmt.Sprint(m.screen, "|", m.width, "|", m.ov.filtering, m.inst.state), m.footer))
	return strings.Join(lines, "\n")
}

func (m *Model) bodyView(h int) string {
	st := m.c.styles
	if m.showHelp {
		return st.Title.Render("Keys") + "\n\n" + m.fullHelp() + "\n\n" + st.Muted.Render("any key closes this help")
	}
	switch m.screen {
	case screenInstall:
		return m.inst.view(m.c, m.width, h, m.spin.View())
	case screenDetail:
		return m.dt.view(m.c, m.width, h)
	case screenConsole:
		return m.cs.view(m.c, m.width, h)
	}
	if !m.started && !m.ov.loaded {
		return st.Muted.Render("connecting…")
	}
	return m.ov.view(m.c, m.width, h, m.conn.lost)
}

// footer is the key help line: every key of the screen's short help that
// fits, dropping the least important first (help and quit always stay).
func (m Model) footer() string {
	items := m.c.keys.shortHelp(m.screen, m.ov.filtering)
	if m.screen == screenInstall && m.inst.state == installRefreshing {
		items = []key.Binding{m.c.keys.Cancel, m.c.keys.Quit}
	}
	h := m.help
	h.Width = 0 // we fit it ourselves, whole items only
	for {
		v := h.ShortHelpView(items)
		if ansi.StringWidth(v) <= m.width || len(items) <= 2 {
			return fit(v, m.width)
		}
		items = append(items[:len(items)-3], items[len(items)-2:]...)
	}
}

// fullHelp lays the key map's groups out as columns, as many side by side
// as the terminal is wide, the rest below.
func (m Model) fullHelp() string {
	h := m.help
	h.ShowAll, h.Width = true, 0
	var rows, row []string
	w := 0
	for _, g := range m.c.keys.fullHelp() {
		col := h.FullHelpView([][]key.Binding{g})
		cw := lipgloss.Width(col)
		if len(row) > 0 && w+4+cw > m.width {
			rows = append(rows, lipgloss.JoinHorizontal(lipgloss.Top, row...))
			row, w = nil, 0
		}
		if len(row) > 0 {
			col = lipgloss.NewStyle().PaddingLeft(4).Render(col)
			cw += 4
		}
		row, w = append(row, col), w+cw
	}
	rows = append(rows, lipgloss.JoinHorizontal(lipgloss.Top, row...))
	return strings.Join(rows, "\n\n")
}

// refreshSummary is the status line after a refresh this meshtop started.
func refreshSummary(msg RefreshFinishedMsg) string {
	if msg.Err != nil {
		return "refresh: " + oneLine(msg.Err.Error())
	}
	counts := map[string]int{}
	for _, r := range msg.Results {
		if r.Status == "failed" && isCancel(r.Error) {
			counts["canceled"]++
			continue
		}
		counts[r.Status]++
	}
	var parts []string
	for _, st := range []string{"ok", "skipped", "canceled", "failed"} {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	return "refresh finished: " + strings.Join(parts, ", ")
}

// connReason says in a few words why the connection is gone; the raw
// error (with host and port) stays out of the banner.
func connReason(err string) string {
	e := strings.ToLower(err)
	switch {
	case strings.Contains(e, "refused"):
		return "the server refuses connections"
	case strings.Contains(e, "terminating connection"), strings.Contains(e, "shutting down"), strings.Contains(e, "57p01"):
		return "the server shut down"
	case strings.Contains(e, "starting up"), strings.Contains(e, "57p03"):
		return "the server is starting up"
	case strings.Contains(e, "timeout"), strings.Contains(e, "timed out"):
		return "the server does not answer"
	}
	return "connection lost"
}

// exactLines cuts or pads s to exactly h lines of at most w cells. It
// remembers which lines fit: measuring a styled line's width (escape
// sequences, grapheme clusters) is costly, and most lines of a frame are
// the same as in the last one.
func (c *common) exactLines(s string, h, w int) []string {
	ls := strings.Split(s, "\n")
	if len(ls) > h {
		ls = ls[:h]
	}
	if c.fits == nil || c.fitsWidth != w || len(c.fits) > 4*h+64 {
		c.fits, c.fitsWidth = map[string]struct{}{}, w
	}
	for i, l := range ls {
		if _, ok := c.fits[l]; ok || len(l) <= w { // a byte per cell at least
			continue
		}
		if ansi.StringWidth(l) > w {
			ls[i] = ansi.Truncate(l, w, "")
			continue
		}
		c.fits[l] = struct{}{}
	}
	for len(ls) < h {
		ls = append(ls, "")
	}
	return ls
}

func (m Model) headerView() string {
	var target, server string
	target = m.c.opts.Target
	if target == "" && m.server != nil {
		target = fmt.Sprintf("%s:%d/%s", m.server.Host, m.server.Port, m.server.Database)
	}
	if m.server != nil {
		role := "primary"
		if m.server.InRecovery {
			role = "replica"
			if m.server.ReplicationLag != nil {
				role += " (replay lag " + fmtReplayLag(*m.server.ReplicationLag) + ")"
			}
		}
		server = "PG " + m.server.Version + " " + role
	}
	poll := "every " + fmtEvery(m.interval)
	if m.paused {
		poll = "paused"
	}
	// The target and the server's version come from the operator's
	// configuration and the server, not from tenants; sanitized all the same.
	target, server = safetext.Sanitize(target), safetext.Sanitize(server)
	lag, level := m.lagState()
	key := strings.Join([]string{target, server, string(m.window), lag, fmt.Sprint(level), poll, fmt.Sprint(m.width)}, "\x00")
	return m.c.header.get(key, func() string { return m.drawHeader(target, server, poll) })
}

func (m Model) drawHeader(target, server, poll string) string {
	st := m.c.styles
	var wins []string
	for _, w := range store.Windows {
		if w == m.window {
			wins = append(wins, st.WinActive.Render("["+string(w)+"]"))
		} else {
			wins = append(wins, st.WinPassive.Render(" "+string(w)+" "))
		}
	}
	// On a narrow terminal the server version goes first, then the target:
	// the window, the lag badge and the poll state always show.
	sep := st.Muted.Render(" │ ")
	for drop := 0; ; drop++ {
		parts := []string{st.Title.Render("meshtop")}
		if target != "" && drop < 2 {
			parts = append(parts, target)
		}
		if server != "" && drop < 1 {
			parts = append(parts, server)
		}
		parts = append(parts, strings.Join(wins, ""), m.lagBadge(), st.Muted.Render(poll))
		h := strings.Join(parts, sep)
		if ansi.StringWidth(h) <= m.width || drop >= 2 {
			return fit(h, m.width)
		}
	}
}

// Levels of the lag badge.
const (
	lagUnknown = iota
	lagOK
	lagWarn
	lagCrit
)

// lagBadge is the worst refresh lag of the views, coloured by LagWarn and
// LagCrit, with a word for terminals without colour.
func (m Model) lagBadge() string {
	st := m.c.styles
	text, level := m.lagState()
	switch level {
	case lagCrit:
		return st.BadgeBad.Render(text)
	case lagWarn:
		return st.BadgeWarn.Render(text)
	case lagOK:
		return st.BadgeGood.Render(text)
	}
	return st.Muted.Render(text)
}

// screenViews names the views the current screen reads (nil: all of them):
// the lag badge describes those, so the overview's badge does not say
// "never refreshed" because of the step view it never reads.
func (m Model) screenViews() []string {
	if m.screen == screenOverview && !m.showHelp {
		return []string{store.ViewHourly, store.ViewMetrics}
	}
	return nil
}

// lagState is the lag badge's text and level: the worst lag of the views
// the screen reads; "refreshing" for a view never refreshed whose first
// refresh is under way.
func (m Model) lagState() (string, int) {
	want := m.screenViews()
	var worst time.Duration
	seen, refreshing := 0, false
	for _, v := range m.views {
		if want != nil && !slices.Contains(want, v.Name) {
			continue
		}
		seen++
		if !v.Populated || v.Lag == nil {
			if v.Running == nil && m.cs.runningFor(v.Name) == nil {
				return "lag: never refreshed", lagCrit
			}
			refreshing = true
			continue
		}
		worst = max(worst, *v.Lag)
	}
	switch {
	case seen == 0:
		return "lag ?", lagUnknown
	case refreshing:
		return "lag: refreshing…", lagWarn
	case worst >= m.c.opts.LagCrit:
		return "lag " + fmtAge(worst) + " crit", lagCrit
	case worst >= m.c.opts.LagWarn:
		return "lag " + fmtAge(worst) + " warn", lagWarn
	}
	return "lag " + fmtAge(worst) + " ok", lagOK
}

func (m Model) tabsView() string {
	key := fmt.Sprint(m.screen, m.dt.id != "", m.showHelp, m.c.opts.ReadOnly, m.c.opts.Pooler, m.width)
	return m.c.tabs.get(key, m.drawTabs)
}

func (m Model) drawTabs() string {
	st := m.c.styles
	var tabs []string
	for _, s := range []screen{screenOverview, screenDetail, screenConsole} {
		name := screenNames[s]
		if s == screenDetail && m.screen != screenDetail {
			continue // reached with enter on a row, not with tab
		}
		if s == m.screen && !m.showHelp {
			tabs = append(tabs, st.TabActive.Render("‹"+name+"›"))
		} else {
			tabs = append(tabs, st.TabPassive.Render(" "+name+" "))
		}
	}
	if m.screen == screenInstall {
		tabs = []string{st.TabActive.Render("‹Install›")}
	}
	if m.showHelp {
		tabs = append(tabs, st.TabActive.Render("‹Help›"))
	}
	if m.c.opts.ReadOnly {
		tabs = append(tabs, st.Warn.Render("READ-ONLY"))
	}
	if m.c.opts.Pooler {
		tabs = append(tabs, st.Warn.Render("TRANSACTION POOLER: READS ONLY"))
	}
	return fit(strings.Join(tabs, " "), m.width)
}

func (m Model) statusView() string {
	st := m.c.styles
	if m.status == "" || !m.statusErr && m.c.now().Sub(m.statusAt) > statusTTL {
		return ""
	}
	if m.statusErr {
		return st.Error.Render(fit("error: "+m.status, m.width))
	}
	return st.Status.Render(fit(m.status, m.width))
}
