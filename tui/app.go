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
// most wakeups find nothing to write, yet each costs ~0.2 ms of CPU here
// (the ticker's wakeup, and the renderer copies the frame to compare it
// with the last one): at 20 a second they took 0.19 points of an idle dashboard's
// 0.62% of a core, more than its polls, and pg_activity idles at ~0.5%
// (footprint benchmark: 1 s poll, 120×40). At 12 an idle dashboard measured
// ~0.38%; a key's echo waits 42 ms on average and at most 83 ms, under
// what reads as immediate; the first frame with data, drawn on the first
// tick after the data, came ~95 ms after exec (10 a second: 0.35%, but
// ~112 ms, close to pg_activity's 115–195 ms).
const RenderFPS = 12

const (
	minInterval = 250 * time.Millisecond
	maxInterval = time.Minute
)

// connState tracks a lost connection.
type connState struct {
	lost    bool
	attempt int
	next    time.Duration
	err     string
}

// Model is the root model. It owns what is the dashboard's, not a
// screen's: the poll loop, the LISTEN connection, reconnecting, the
// window, pause and interval, the status line, the header, tabs and key
// help; and it routes messages to the screens (screen.go).
type Model struct {
	ctx    context.Context
	cancel context.CancelFunc
	c      *common
	help   help.Model

	width, height int
	screens       [numScreens]screen
	active        screenID
	showHelp      bool
	started       bool // the installed check passed and polling runs

	interval time.Duration
	tickSeq  int
	// waiting counts the refreshes that ended while polling was paused:
	// their data is not on screen.
	waiting int

	// Facts for the header and the lag badge, from the newest read that
	// brought them (factsMsg).
	server               *store.ServerInfo
	views                []store.ViewStatus
	running              []store.RunningRefresh
	viewsSeq, runningSeq int

	status    string
	statusErr bool
	// statusRead: the error is a failed read, which the next successful
	// read clears. Other errors (a refused key, a failed refresh, install
	// or copy) stay until something replaces them: a poll that happened to
	// land right after one must not wipe it before it was ever drawn.
	statusRead bool
	statusAt   time.Time // model clock
	conn       connState

	listen        *listener
	listenGen     int
	listenAttempt int
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
	c := &common{ctx: ctx, src: opts.Store, opts: opts, styles: NewStylesFor(DefaultTheme(), opts.Renderer),
		keys: newKeyMap(opts.ReadOnly || opts.Pooler), clock: opts.Clock, sess: session{window: opts.Window}}
	h := help.New()
	h.Styles.ShortKey = c.styles.Accent
	h.Styles.FullKey = c.styles.Accent
	m := Model{ctx: ctx, cancel: cancel, c: c, help: h, interval: opts.Interval, active: scrOverview}
	m.screens = [numScreens]screen{
		scrOverview: newOverview(c),
		scrDetail:   newDetail(c),
		scrConsole:  newConsole(c),
		scrInstall:  newInstall(c),
		scrRuns:     newRuns(c),
		scrRun:      newRun(c),
	}
	return m
}

func (m Model) Init() tea.Cmd { return checkInstalled(m.ctx, m.c.src) }

// Update handles a message, then the requests the screens sent while
// handling it.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmds := []tea.Cmd{m.handle(msg)}
	for len(m.c.out) > 0 {
		req := m.c.out[0]
		m.c.out = m.c.out[1:]
		cmds = append(cmds, m.request(req))
	}
	return m, tea.Batch(cmds...)
}

// route gives a message to one screen.
func (m *Model) route(id screenID, msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	m.screens[id], cmd = m.screens[id].Update(msg)
	return cmd
}

// broadcast gives a message to every screen.
func (m *Model) broadcast(msg tea.Msg) tea.Cmd {
	var cmds []tea.Cmd
	for id := range m.screens {
		cmds = append(cmds, m.route(screenID(id), msg))
	}
	return tea.Batch(cmds...)
}

// activate makes id the active screen.
func (m *Model) activate(id screenID) tea.Cmd {
	if id == m.active {
		return nil
	}
	prev := m.active
	m.active = id
	return tea.Batch(m.route(prev, focusMsg{active: false}), m.route(id, focusMsg{active: true}))
}

// resize gives every screen the body's size.
func (m *Model) resize() {
	for _, s := range m.screens {
		s.SetSize(m.width, m.bodyHeight())
	}
}

func (m *Model) handle(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		m.resize()
		return nil
	case tea.KeyMsg:
		// Keys typed quickly (or batched by a slow SSH link) arrive as one
		// message of several runes; outside text input each is a command.
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && !m.screens[m.active].TakesText() {
			var cmds []tea.Cmd
			for i, r := range msg.Runes {
				if m.screens[m.active].TakesText() {
					// After a '/', the rest is the filter's text.
					cmds = append(cmds, m.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: msg.Runes[i:]}))
					break
				}
				cmds = append(cmds, m.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}}))
				for len(m.c.out) > 0 { // a rune's requests before the next rune
					req := m.c.out[0]
					m.c.out = m.c.out[1:]
					cmds = append(cmds, m.request(req))
				}
			}
			return tea.Batch(cmds...)
		}
		return m.key(msg)
	case resultFor:
		return m.route(msg.screen(), msg)

	case InstalledCheckedMsg:
		if msg.Err != nil {
			if isConnErr(msg.Err) {
				return m.connLost(msg.Err)
			}
			m.setStatus("checking the installation: "+oneLine(msg.Err.Error()), true)
			return m.start()
		}
		if msg.Installed {
			return m.start()
		}
		return tea.Batch(m.activate(scrInstall), m.route(scrInstall, msg))

	case PollTickMsg:
		if msg.Seq != m.tickSeq || m.c.sess.paused || m.conn.lost {
			return nil // stale loop, paused, or the reconnect loop owns polling
		}
		return tea.Batch(m.broadcast(pollMsg{}), pollTick(m.tickSeq, m.interval))

	case RefreshEventMsg:
		if m.listen == nil || msg.Gen != m.listen.gen {
			return nil
		}
		m.listenAttempt = 0
		if m.c.sess.paused {
			// Paused means the screens stay as they are: the event is
			// counted, not read.
			if msg.Event.Status != "running" {
				m.waiting++
				m.setPausedStatus()
			}
			return m.listen.wait()
		}
		return tea.Batch(m.listen.wait(), m.broadcast(refreshEventMsg{ev: msg.Event}))

	case ListenEndedMsg:
		if m.listen == nil || msg.Gen != m.listen.gen || m.ctx.Err() != nil {
			return nil
		}
		m.listenAttempt++
		gen := msg.Gen
		var cmds []tea.Cmd
		if msg.Err != nil && isConnErr(msg.Err) {
			cmds = append(cmds, m.connLost(msg.Err))
		}
		cmds = append(cmds, tea.Tick(backoff(m.listenAttempt), func(time.Time) tea.Msg { return ListenRetryMsg{Gen: gen} }))
		return tea.Batch(cmds...)

	case ListenRetryMsg:
		if m.listen == nil || msg.Gen != m.listen.gen {
			return nil
		}
		return m.restartListen()

	case ReconnectTickMsg:
		if !m.conn.lost || msg.Attempt != m.conn.attempt {
			return nil
		}
		return reconnect(m.ctx, m.c.src, msg.Attempt)

	case ReconnectedMsg:
		if !m.conn.lost || msg.Attempt != m.conn.attempt {
			return nil
		}
		if msg.Err != nil {
			m.conn.err = oneLine(msg.Err.Error())
			m.conn.attempt++
			m.conn.next = backoff(m.conn.attempt)
			a := m.conn.attempt
			return tea.Tick(m.conn.next, func(time.Time) tea.Msg { return ReconnectTickMsg{Attempt: a} })
		}
		m.conn = connState{}
		m.c.sess.lost = false
		m.resize() // the banner is gone
		m.server = &msg.Server
		m.setStatus("reconnected", false)
		if !m.started {
			return checkInstalled(m.ctx, m.c.src)
		}
		return tea.Batch(m.broadcast(pollMsg{force: true}), m.rearmPoll(), m.restartListen())

	case CopiedMsg:
		if msg.Err != nil {
			m.setStatus("copy: "+msg.Err.Error(), true)
		} else {
			m.setStatus("copied "+msg.Text+" to the clipboard (OSC 52)", false)
		}
		return nil
	}
	// Anything else (a text input's cursor blink, a spinner's tick) is the
	// active screen's.
	return m.route(m.active, msg)
}

// request handles what a screen asked of the root.
func (m *Model) request(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case statusMsg:
		m.setStatus(msg.text, msg.err)
	case readFailedMsg:
		return m.handleErr(msg.what, msg.err)
	case readOKMsg:
		if m.statusErr && m.statusRead {
			m.setStatus(m.idleStatus(), false)
		}
	case factsMsg:
		if msg.server != nil {
			m.server = msg.server
		}
		if msg.views != nil && msg.seq >= m.viewsSeq {
			m.views, m.viewsSeq = msg.views, msg.seq
		}
		if msg.hasRunning && msg.seq >= m.runningSeq {
			m.running, m.runningSeq = msg.running, msg.seq
		}
	case navMsg:
		cmd := m.activate(msg.to)
		if msg.open != nil {
			cmd = tea.Batch(cmd, m.route(msg.to, msg.open))
		}
		return cmd
	case backMsg:
		return m.activate(screenInfos[m.active].parent)
	case dataChangedMsg:
		if m.c.sess.paused {
			m.waiting++
			m.setPausedStatus()
			return nil
		}
		return m.broadcast(pollMsg{force: true})
	case quitMsg:
		return m.quit()
	case installDoneMsg:
		return m.start()
	}
	return nil
}

// start begins normal operation: data, polling and LISTEN.
func (m *Model) start() tea.Cmd {
	m.started = true
	var cmd tea.Cmd
	if m.active == scrInstall {
		cmd = m.activate(scrOverview)
	}
	if m.status == "" {
		m.setStatus(m.idleStatus(), false)
	}
	return tea.Batch(cmd, m.broadcast(pollMsg{force: true}), m.rearmPoll(), m.restartListen())
}

// rearmPoll starts a new poll loop and so invalidates any pending tick.
func (m *Model) rearmPoll() tea.Cmd {
	m.tickSeq++
	if m.c.sess.paused {
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
	l, cmd := startListen(m.ctx, m.c.src, m.listenGen)
	m.listen = l
	return cmd
}

// setStatus sets the status line. Status texts quote names and errors from
// the database: they are put on one sanitized line here, once.
func (m *Model) setStatus(s string, isErr bool) {
	m.status, m.statusErr, m.statusRead, m.statusAt = safetext.Line(s), isErr, false, m.c.now()
}

// setPausedStatus says that polling is paused and what finished since.
func (m *Model) setPausedStatus() {
	if m.statusErr {
		return // an error stays until something replaces it
	}
	s := "polling paused: the screens show the data of the moment p was pressed (p resumes)"
	if m.waiting > 0 {
		s = fmt.Sprintf("polling paused · %s finished since, not shown (p resumes)", plural(m.waiting, "refresh", "refreshes"))
	}
	m.setStatus(s, false)
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
	m.c.sess.lost = true
	m.resize() // the banner takes a line
	m.conn.attempt = 1
	m.conn.next = backoff(1)
	return tea.Tick(m.conn.next, func(time.Time) tea.Msg { return ReconnectTickMsg{Attempt: 1} })
}

func (m *Model) quit() tea.Cmd {
	m.cancel()
	if m.listen != nil {
		m.listen.cancel()
	}
	return tea.Quit
}

// key handles a key: ctrl+c always quits; a screen that captures keys gets
// them first; then the help screen, the global keys, and the active
// screen.
func (m *Model) key(msg tea.KeyMsg) tea.Cmd {
	k := m.c.keys
	if msg.String() == "ctrl+c" {
		return m.quit()
	}
	if m.screens[m.active].CapturesKeys() {
		return m.route(m.active, msg)
	}
	if m.showHelp {
		if key.Matches(msg, k.Quit) {
			return m.quit()
		}
		m.showHelp = false // any key closes the help
		return nil
	}
	switch {
	case key.Matches(msg, k.Quit):
		return m.quit()
	case key.Matches(msg, k.Help):
		m.showHelp = true
		return nil
	case key.Matches(msg, k.NextScreen):
		return m.switchScreen(+1)
	case key.Matches(msg, k.PrevScreen):
		return m.switchScreen(-1)
	case key.Matches(msg, k.Window1), key.Matches(msg, k.Window2), key.Matches(msg, k.Window3), key.Matches(msg, k.Window4):
		w := store.Windows[int(msg.String()[0]-'1')]
		if w == m.c.sess.window {
			return nil
		}
		m.c.sess.window = w
		return m.broadcast(windowMsg{})
	case key.Matches(msg, k.Pause):
		m.c.sess.paused = !m.c.sess.paused
		if m.c.sess.paused {
			m.tickSeq++
			m.waiting = 0
			m.setPausedStatus()
			return nil
		}
		m.setStatus("polling resumed", false)
		m.waiting = 0
		return tea.Batch(m.broadcast(pollMsg{force: true}), m.rearmPoll())
	case key.Matches(msg, k.Faster), key.Matches(msg, k.Slower):
		if key.Matches(msg, k.Faster) {
			m.interval = max(minInterval, m.interval/2)
		} else {
			m.interval = min(maxInterval, m.interval*2)
		}
		if m.c.sess.paused {
			m.setStatus("polling every "+fmtEvery(m.interval)+" once resumed (p)", false)
			return nil
		}
		m.setStatus("polling every "+fmtEvery(m.interval), false)
		return m.rearmPoll()
	}
	return m.route(m.active, msg)
}

// switchScreen is tab / shift+tab: through the tab screens (the overview
// and the refresh console, as the README says). A screen opened from
// another (the detail from the overview, the runs from the detail, a run
// from the runs) is not a tab: from it, tab goes on to the tab after the
// tab it was opened from, and shift+tab back to its parent.
func (m *Model) switchScreen(dir int) tea.Cmd {
	from := m.active
	if !screenInfos[from].tab {
		if dir < 0 {
			return m.activate(screenInfos[from].parent)
		}
		from = tabRoot(from)
	}
	i := slices.Index(tabOrder, from)
	if i < 0 {
		return nil
	}
	return m.activate(tabOrder[(i+dir+len(tabOrder))%len(tabOrder)])
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
		// them (c is shared by every copy of the model); the screens'
		// caches key on the styles' profile.
		m.c.styles = NewStylesFor(m.c.styles.Theme, m.c.styles.renderer())
		m.c.header, m.c.tabs, m.c.help = memo{}, memo{}, memo{}
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
	var body string
	switch {
	case m.showHelp:
		body = st.Title.Render("Keys") + "\n\n" + m.fullHelp() + "\n\n" + st.Muted.Render("any key closes this help")
	case !m.started && m.active == scrOverview:
		body = st.Muted.Render("connecting…")
	default:
		body = m.screens[m.active].View()
	}
	lines = append(lines, m.c.exactLines(body, m.bodyHeight(), m.width)...)
	lines = append(lines, m.statusView())
	lines = append(lines, m.footer())
	return strings.Join(lines, "\n")
}

// footer is the key help line: every key of the screen's short help that
// fits, dropping the least important first (help and quit always stay).
func (m Model) footer() string {
	items := m.screens[m.active].ShortHelp()
	if !m.screens[m.active].CapturesKeys() {
		items = append(items, m.c.keys.Help, m.c.keys.Quit)
	}
	var key strings.Builder
	for _, b := range items {
		key.WriteString(b.Help().Key + "\x00" + b.Help().Desc + "\x00")
	}
	fmt.Fprint(&key, m.width)
	return m.c.get(&m.c.help, key.String(), func() string {
		h := m.help
		h.Width = 0 // we fit it ourselves, whole items only
		for {
			v := h.ShortHelpView(items)
			if ansi.StringWidth(v) <= m.width || len(items) <= 2 {
				return fit(v, m.width)
			}
			items = append(items[:len(items)-3], items[len(items)-2:]...)
		}
	})
}

// fullHelp lays the active screen's groups of keys and the global ones out
// as columns, as many side by side as the terminal is wide, the rest below.
func (m Model) fullHelp() string {
	h := m.help
	h.ShowAll, h.Width = true, 0
	var rows, row []string
	w := 0
	groups := append(m.screens[m.active].FullHelp(), m.c.keys.globalHelp())
	for _, g := range groups {
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
		if _, ok := c.fits[l]; (ok && !c.noCache) || len(l) <= w { // a byte per cell at least
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
	if m.c.sess.paused {
		poll = "paused"
		if m.waiting > 0 {
			poll = fmt.Sprintf("paused · %d waiting", m.waiting)
		}
	}
	// The target and the server's version come from the operator's
	// configuration and the server, not from tenants; sanitized all the same.
	target, server = safetext.Sanitize(target), safetext.Sanitize(server)
	lag, level := m.lagState()
	key := strings.Join([]string{target, server, string(m.c.sess.window), lag, fmt.Sprint(level), poll, fmt.Sprint(m.width)}, "\x00")
	return m.c.get(&m.c.header, key, func() string { return m.drawHeader(target, server, poll) })
}

func (m Model) drawHeader(target, server, poll string) string {
	st := m.c.styles
	var wins []string
	for _, w := range store.Windows {
		if w == m.c.sess.window {
			wins = append(wins, st.WinActive.Render("["+string(w)+"]"))
		} else {
			wins = append(wins, st.WinPassive.Render(" "+string(w)+" "))
		}
	}
	sep := st.Muted.Render(" │ ")
	fixed := []string{strings.Join(wins, ""), m.lagBadge(), st.Muted.Render(poll)}
	build := func(target, server string) string {
		parts := []string{st.Title.Render("meshtop")}
		for _, p := range []string{target, server} {
			if p != "" {
				parts = append(parts, p)
			}
		}
		return strings.Join(append(parts, fixed...), sep)
	}
	// On a narrow terminal the server version goes first, then the
	// target is shortened — but the database's name always shows: an SRE
	// with several sessions open must see which database this one is. The
	// window, the lag badge and the poll state always show.
	if h := build(target, server); ansi.StringWidth(h) <= m.width {
		return fit(h, m.width)
	}
	room := m.width - ansi.StringWidth(build("", "")) - ansi.StringWidth(sep)
	return fit(build(shortTarget(target, room), ""), m.width)
}

// shortTarget fits host:port/database into room cells: the database's name
// whole, the host cut in the middle ("db.exa…com:5432/meshhook"), or the
// name alone ("…/meshhook"), or, when even that is too long, its start.
func shortTarget(target string, room int) string {
	if ansi.StringWidth(target) <= room {
		return target
	}
	i := strings.LastIndex(target, "/")
	if i < 0 {
		return ansi.Truncate(target, max(1, room), "…")
	}
	host, db := target[:i], target[i:]
	if keep := room - ansi.StringWidth(db) - 1; keep >= 6 {
		head := keep / 2
		tail := keep - head
		hr := []rune(host)
		if len(hr) > keep {
			return string(hr[:head]) + "…" + string(hr[len(hr)-tail:]) + db
		}
	}
	if short := "…" + db; ansi.StringWidth(short) <= room {
		return short
	}
	return ansi.Truncate(strings.TrimPrefix(db, "/"), max(1, room), "…")
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
	if m.showHelp {
		return nil
	}
	return screenInfos[m.active].reads
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
			if v.Running == nil && !slices.ContainsFunc(m.running, func(r store.RunningRefresh) bool { return r.View == v.Name }) {
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
	key := fmt.Sprint(m.active, m.showHelp, m.c.opts.ReadOnly, m.c.opts.Pooler, m.width)
	return m.c.get(&m.c.tabs, key, m.drawTabs)
}

func (m Model) drawTabs() string {
	st := m.c.styles
	var ids []screenID
	for _, id := range tabOrder {
		ids = append(ids, id)
		// A screen opened from a tab shows beside it while it is open,
		// after the screens it was opened through (Overview Detail Runs
		// ‹Run›).
		if m.active != scrInstall && !screenInfos[m.active].tab && tabRoot(m.active) == id {
			var chain []screenID
			for s := m.active; !screenInfos[s].tab; s = screenInfos[s].parent {
				chain = append([]screenID{s}, chain...)
			}
			ids = append(ids, chain...)
		}
	}
	if m.active == scrInstall {
		ids = []screenID{scrInstall}
	}
	var tabs []string
	for _, id := range ids {
		name := screenInfos[id].title
		if id == m.active && !m.showHelp {
			tabs = append(tabs, st.TabActive.Render("‹"+name+"›"))
		} else {
			tabs = append(tabs, st.TabPassive.Render(" "+name+" "))
		}
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

// tabRoot is the tab a screen was opened from (itself for a tab).
func tabRoot(id screenID) screenID {
	for !screenInfos[id].tab && id != scrInstall {
		id = screenInfos[id].parent
	}
	return id
}

func (m Model) statusView() string {
	st := m.c.styles
	if m.status == "" || !m.statusErr && !m.c.sess.paused && m.c.now().Sub(m.statusAt) > statusTTL {
		return ""
	}
	if m.statusErr {
		return st.Error.Render(fit("error: "+m.status, m.width))
	}
	return st.Status.Render(fit(m.status, m.width))
}

// plural is "1 refresh", "3 refreshes".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
