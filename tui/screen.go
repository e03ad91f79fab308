package tui

import (
	"context"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/meshtop/meshtop/data/store"
)

// A screen is one page of the dashboard (soft-serve's panes): a model with
// its own keys, help and size, that reads its own data and decides itself
// whether a result is stale. The root routes: keys go to the active
// screen, a result goes to the screen whose type it names (resultFor),
// and what concerns every screen (the poll loop, the window, a NOTIFY,
// focus) is broadcast. The root never sets a screen's fields; a screen
// asks the root for what is the root's (the status line, another screen,
// quitting) with a request message (c.send).
//
// Adding a screen is a model implementing screen, an entry in screenInfos
// (its title, where tab and esc lead from it, the views it reads), and the
// type of its results naming it.
type screen interface {
	// Update handles a message routed to the screen.
	Update(msg tea.Msg) (screen, tea.Cmd)
	// View draws the screen's body: at most the size SetSize gave, lines
	// of at most its width. It changes nothing a later frame depends on
	// (caches aside, which are keyed by everything they depend on).
	View() string
	// SetSize is the body's size: the terminal less the header, tabs,
	// status and key help.
	SetSize(width, height int)
	// ShortHelp is the key help line, most important first (the root adds
	// help and quit); FullHelp the screen's groups of the help screen.
	ShortHelp() []key.Binding
	FullHelp() [][]key.Binding
	// CapturesKeys: the screen takes every key before the global ones (a
	// confirmation, the install screen). TakesText: and it is text input,
	// so runes that arrive together are one text, not separate commands.
	CapturesKeys() bool
	TakesText() bool
}

type screenID int

const (
	scrOverview screenID = iota
	scrDetail
	scrConsole
	scrInstall
	scrRuns
	scrRun
	numScreens
)

// screenInfo is what the root knows about a screen: its title, whether tab
// reaches it (the others are opened from a parent, and esc goes back to
// it), and which views its numbers come from (the lag badge describes
// those; nil: every view).
type screenInfo struct {
	title  string
	tab    bool
	parent screenID
	reads  []string
}

var screenInfos = [numScreens]screenInfo{
	scrOverview: {title: "Overview", tab: true, reads: []string{store.ViewHourly, store.ViewMetrics}},
	scrDetail:   {title: "Detail", parent: scrOverview},
	scrConsole:  {title: "Refresh console", tab: true},
	scrInstall:  {title: "Install"},
	scrRuns:     {title: "Runs", parent: scrDetail},
	scrRun:      {title: "Run", parent: scrRuns},
}

// tabOrder is the screens tab cycles through.
var tabOrder = []screenID{scrOverview, scrConsole}

// resultFor is implemented by the results of a screen's reads and actions:
// the root routes each to the screen it names, whichever is active.
type resultFor interface{ screen() screenID }

func (OverviewLoadedMsg) screen() screenID   { return scrOverview }
func (WorkflowLoadedMsg) screen() screenID   { return scrDetail }
func (ConsoleLoadedMsg) screen() screenID    { return scrConsole }
func (RunningLoadedMsg) screen() screenID    { return scrConsole }
func (WatchTickMsg) screen() screenID        { return scrConsole }
func (RefreshFinishedMsg) screen() screenID  { return scrConsole }
func (CancelFinishedMsg) screen() screenID   { return scrConsole }
func (InstallCheckedMsg) screen() screenID   { return scrInstall }
func (InstallStepMsg) screen() screenID      { return scrInstall }
func (InstallFinishedMsg) screen() screenID  { return scrInstall }
func (FirstRefreshStepMsg) screen() screenID { return scrInstall }
func (FirstRefreshDoneMsg) screen() screenID { return scrInstall }
func (openWorkflowMsg) screen() screenID     { return scrDetail }
func (RunsLoadedMsg) screen() screenID       { return scrRuns }
func (openRunsMsg) screen() screenID         { return scrRuns }
func (RunLoadedMsg) screen() screenID        { return scrRun }
func (openRunMsg) screen() screenID          { return scrRun }

// Broadcasts: the root sends these to every screen.
type (
	// pollMsg: the poll loop ticked (or polling resumed, or the database
	// came back). force: a read under way may predate what changed; read
	// again anyway.
	pollMsg struct{ force bool }
	// windowMsg: the window changed (c.sess.window).
	windowMsg struct{}
	// refreshEventMsg: a refresh started or ended somewhere (NOTIFY).
	refreshEventMsg struct{ ev store.RefreshEvent }
	// focusMsg: the screen became active, or stopped being it.
	focusMsg struct{ active bool }
)

// Requests: a screen sends these to the root (c.send); the root handles
// them right after the screen's Update, in order.
type (
	statusMsg struct {
		text string
		err  bool
	}
	// readFailedMsg: a read failed; a lost connection starts the
	// reconnect loop, anything else goes to the status line.
	readFailedMsg struct {
		what string
		err  error
	}
	// readOKMsg: a read succeeded (it clears a failed read's error).
	readOKMsg struct{}
	// factsMsg: what a read told about the session — the server, the
	// views' status, the running refreshes — for the header and the lag
	// badge; seq orders reads of different screens.
	factsMsg struct {
		seq        int
		server     *store.ServerInfo
		views      []store.ViewStatus
		running    []store.RunningRefresh
		hasRunning bool
	}
	// navMsg: show screen to, and give it open (if any) first.
	navMsg struct {
		to   screenID
		open tea.Msg
	}
	// backMsg: back to the active screen's parent.
	backMsg struct{}
	// dataChangedMsg: a refresh this dashboard ran ended: every screen
	// reads again (unless polling is paused).
	dataChangedMsg struct{}
	quitMsg        struct{}
	// installDoneMsg: the install screen is done (installed and refreshed,
	// or the refresh canceled): normal operation starts.
	installDoneMsg struct{}
)

// openWorkflowMsg opens the detail of a workflow.
type openWorkflowMsg struct{ id string }

// openRunsMsg opens a workflow's failed or slowest runs; title is the
// workflow's name line (sanitized).
type openRunsMsg struct {
	id    string
	kind  store.RunKind
	title string
}

// openRunMsg opens a run's timeline.
type openRunMsg struct{ id string }

// session is what the root decides and every screen reads: the window, the
// poll state, the connection. Only the root writes it.
type session struct {
	window store.Window
	paused bool
	lost   bool // the connection is lost: the data shown is the last
}

// common is shared by the root and the screens: the context, the source,
// the options, styles, keys and clock, the session, the request outbox,
// and the root's cached lines.
type common struct {
	ctx    context.Context
	src    Source
	opts   Options
	styles Styles
	keys   keyMap
	clock  func() time.Time
	sess   session

	seq int       // the last read number given out (nextSeq)
	out []tea.Msg // requests to the root (send)

	// noCache renders without any cache (tests compare the two).
	noCache bool

	// Lines of the last frame that are rebuilt only when what they show
	// changes (View runs after every message, most of which change none of
	// them).
	header, tabs, help memo
	fits               map[string]struct{} // body lines known to fit fitsWidth cells
	fitsWidth          int
}

func (c *common) now() time.Time { return c.clock() }

// nextSeq numbers a read: every screen's reads are numbered from one
// counter, so results that carry the same facts (the views' status) can be
// ordered whichever screen asked.
func (c *common) nextSeq() int {
	c.seq++
	return c.seq
}

// send queues a request to the root.
func (c *common) send(msg tea.Msg) { c.out = append(c.out, msg) }

// status asks for a line in the status bar.
func (c *common) status(text string, isErr bool) { c.send(statusMsg{text: text, err: isErr}) }

// memo is one cached line and the inputs it was drawn from.
type memo struct{ key, line string }

// get returns the line for key, drawing it with draw when key changed.
func (c *common) get(mm *memo, key string, draw func() string) string {
	if c.noCache {
		return draw()
	}
	if mm.key != key || mm.line == "" {
		mm.key, mm.line = key, draw()
	}
	return mm.line
}
