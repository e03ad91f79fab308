package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/store"
)

// Installer is what the first-run screen uses of *install.Installer.
type Installer interface {
	Check(ctx context.Context) error
	Schema() string
	Pending(ctx context.Context) ([]install.Migration, error)
	Objects() []install.Object
	Apply(ctx context.Context, onStep func(install.StepEvent)) (int, error)
}

var _ Installer = (*install.Installer)(nil)

type installState int

const (
	installChecking    installState = iota // checking the preconditions before offering anything
	installPrompt                          // showing what will be created, asking
	installUnavailable                     // not installed and we may not (or cannot) install
	installRunning
	installRefreshing // installed; the first refresh of every view runs
	installFailed
)

// installModel is the first-run screen: preconditions, the offer (every
// object, scrollable, what install adds outside its schema first), the
// install's steps, then the first refresh of every view, so the overview
// it hands over to is filled.
type installModel struct {
	c             *common
	width, height int

	state  installState
	reason string // why we cannot install (read-only, --no-install, a precondition)
	// blocked is a precondition that fails: the database cannot take
	// meshtop as it is (no MeshHook tables, a standby, too old, missing
	// privileges).
	blocked *install.PreconditionError
	objects []install.Object
	scroll  int // the first line of the object list shown
	pending int // migrations install applies, known before it starts
	steps   []install.StepEvent
	stepAt  time.Time // when the running install step started (model clock)
	applied int
	err     error
	run     *pump[install.StepEvent, InstallFinishedMsg]
	spin    spinner.Model

	// The first refresh: one row per view, in refresh order.
	refresh       []firstRefreshStep
	refreshRun    *pump[FirstRefreshStepMsg, FirstRefreshDoneMsg]
	cancel        context.CancelFunc
	confirmCancel bool
	canceling     bool
}

// firstRefreshStep is one view of the first refresh.
type firstRefreshStep struct {
	view    string
	started *time.Time // model clock
	result  *store.RefreshResult
}

func newInstall(c *common) *installModel {
	return &installModel{c: c, spin: spinner.New(spinner.WithSpinner(spinner.MiniDot))}
}

func (im *installModel) SetSize(w, h int) {
	im.width, im.height = w, h
	im.clampScroll()
}

// The install screen takes every key: there are no tabs or windows yet.
func (im *installModel) CapturesKeys() bool { return true }
func (im *installModel) TakesText() bool    { return false }

func (im *installModel) ShortHelp() []key.Binding {
	k := im.c.keys
	switch {
	case im.confirmCancel:
		return []key.Binding{k.Yes, k.No}
	case im.state == installRefreshing:
		return []key.Binding{k.Cancel, k.Quit}
	case im.state == installPrompt:
		return []key.Binding{k.Yes, k.No, k.move("scroll"), k.PageDown, k.Bottom, k.Quit}
	case im.state == installFailed:
		return []key.Binding{k.Yes, k.No, k.Quit}
	}
	return []key.Binding{k.Quit}
}

func (im *installModel) FullHelp() [][]key.Binding {
	k := im.c.keys
	// The prompts say their own y and n; the help lists what moves.
	return [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom, k.Cancel}}
}

func (im *installModel) Update(msg tea.Msg) (screen, tea.Cmd) {
	cmd := im.update(msg)
	im.clampScroll()
	return im, cmd
}

func (im *installModel) update(msg tea.Msg) tea.Cmd {
	c := im.c
	switch msg := msg.(type) {
	case InstalledCheckedMsg: // not installed: offer to, or say why not
		im.state = installUnavailable
		switch {
		case c.opts.Pooler:
			im.reason = "Installing needs a server session, which a transaction pooler does not give:\nrun `meshtop install` with the direct or session-pooler URL, port 5432."
		case c.opts.ReadOnly:
			im.reason = "meshtop runs read-only, so it will not install anything. Run `meshtop install` with a role that owns the database objects, or ask your DBA to."
		case c.opts.NoInstall || c.opts.Installer == nil:
			im.reason = "Run `meshtop install` (or `meshtop install --dry-run` to see the SQL) to create the metrics schema and views."
		default:
			// Only a database that can take meshtop is offered the install.
			im.state = installChecking
			return tea.Batch(checkInstaller(c.ctx, c.opts.Installer), im.spin.Tick)
		}
	case InstallCheckedMsg:
		var pe *install.PreconditionError
		switch {
		case errors.As(msg.Err, &pe):
			im.state, im.blocked, im.reason = installUnavailable, pe, pe.Msg
		case msg.Err != nil:
			im.state, im.err = installFailed, fmt.Errorf("checking the install preconditions: %w", msg.Err)
		default:
			im.state, im.pending = installPrompt, msg.Pending
			im.objects = c.opts.Installer.Objects()
		}
	case InstallStepMsg:
		im.stepDone(msg.Step, c.now())
		return im.run.wait()
	case InstallFinishedMsg:
		if msg.Err != nil {
			im.state, im.err = installFailed, msg.Err
			return nil
		}
		// The first refresh follows at once: the overview it hands over to
		// shows data, not "never refreshed".
		im.state, im.applied = installRefreshing, msg.Applied
		im.refresh = nil
		for _, v := range c.src.ViewNames() {
			im.refresh = append(im.refresh, firstRefreshStep{view: v})
		}
		ctx, cancel := context.WithCancel(c.ctx)
		im.cancel = cancel
		r, cmd := startFirstRefresh(ctx, c.src)
		im.refreshRun = r
		return tea.Batch(cmd, im.spin.Tick)
	case FirstRefreshStepMsg:
		im.refreshStep(msg, c.now())
		return im.refreshRun.wait()
	case FirstRefreshDoneMsg:
		if im.cancel != nil {
			im.cancel()
		}
		im.confirmCancel = false
		switch {
		case msg.Canceled:
			c.status("installed; first refresh canceled — tab opens the refresh console, R refreshes", false)
		case msg.Err != nil:
			c.status("installed; first refresh: "+oneLine(msg.Err.Error()), true)
		default:
			c.status(fmt.Sprintf("installed (%s) and refreshed", plural(im.applied, "migration", "migrations")), false)
		}
		c.send(installDoneMsg{})
	case spinner.TickMsg:
		if !im.busy() {
			return nil // the spinner stops until something runs again
		}
		var cmd tea.Cmd
		im.spin, cmd = im.spin.Update(msg)
		return cmd
	case tea.KeyMsg:
		return im.key(msg)
	}
	return nil
}

func (im *installModel) key(msg tea.KeyMsg) tea.Cmd {
	k := im.c.keys
	if im.confirmCancel {
		im.confirmCancel = false
		if key.Matches(msg, k.Yes) && im.cancel != nil && im.state == installRefreshing {
			im.canceling = true
			im.cancel()
		}
		return nil
	}
	switch im.state {
	case installPrompt, installFailed:
		switch {
		case key.Matches(msg, k.Yes):
			im.steps, im.err = nil, nil
			if im.objects == nil {
				// The precondition check itself failed: check again.
				im.state = installChecking
				return tea.Batch(checkInstaller(im.c.ctx, im.c.opts.Installer), im.spin.Tick)
			}
			im.state = installRunning
			r, cmd := startInstall(im.c.ctx, im.c.opts.Installer)
			im.run = r
			return tea.Batch(cmd, im.spin.Tick)
		case key.Matches(msg, k.No), key.Matches(msg, k.Quit):
			im.c.send(quitMsg{})
		case key.Matches(msg, k.Up):
			im.scroll--
		case key.Matches(msg, k.Down):
			im.scroll++
		case key.Matches(msg, k.PageUp):
			im.scroll -= max(1, im.listRoom()-1)
		case key.Matches(msg, k.PageDown):
			im.scroll += max(1, im.listRoom()-1)
		case key.Matches(msg, k.Top):
			im.scroll = 0
		case key.Matches(msg, k.Bottom):
			im.scroll = len(im.objectLines())
		}
	case installRefreshing:
		switch {
		case key.Matches(msg, k.Cancel) && im.cancel != nil && !im.canceling:
			// As in the console: a refresh is cancelled only when asked
			// twice.
			im.confirmCancel = true
		case key.Matches(msg, k.Quit):
			im.c.send(quitMsg{})
		}
	case installUnavailable:
		if key.Matches(msg, k.Quit) || key.Matches(msg, k.No) {
			im.c.send(quitMsg{})
		}
	}
	return nil
}

func (im *installModel) stepDone(s install.StepEvent, now time.Time) {
	if !s.Done {
		im.stepAt = now
	}
	for i := range im.steps {
		if im.steps[i].Version == s.Version && im.steps[i].Name == s.Name {
			im.steps[i] = s
			return
		}
	}
	im.steps = append(im.steps, s)
}

// pump carries a goroutine's events and its final result to the model: each
// event is one message, after which the model asks for the next (the
// pattern of bubbletea's examples/realtime).
type pump[E, D any] struct {
	events chan E
	done   chan D
	ev     func(E) tea.Msg
	fin    func(D) tea.Msg
}

func newPump[E, D any](ev func(E) tea.Msg, fin func(D) tea.Msg) *pump[E, D] {
	return &pump[E, D]{events: make(chan E, 16), done: make(chan D, 1), ev: ev, fin: fin}
}

// wait returns the next event, or the result once every event was read.
func (p *pump[E, D]) wait() tea.Cmd {
	return func() tea.Msg {
		select {
		case e := <-p.events:
			return p.ev(e)
		case d := <-p.done:
			select {
			case e := <-p.events:
				p.done <- d
				return p.ev(e)
			default:
			}
			return p.fin(d)
		}
	}
}

// checkInstaller checks the preconditions and counts the migrations
// install would apply (the screen shows "3 of 18" from the start).
func checkInstaller(ctx context.Context, inst Installer) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		if err := inst.Check(ctx); err != nil {
			return InstallCheckedMsg{Err: err}
		}
		p, err := inst.Pending(ctx)
		return InstallCheckedMsg{Pending: len(p), Err: err}
	}
}

// startInstall runs Apply in a goroutine; its steps arrive as InstallStepMsg.
func startInstall(ctx context.Context, inst Installer) (*pump[install.StepEvent, InstallFinishedMsg], tea.Cmd) {
	p := newPump(func(s install.StepEvent) tea.Msg { return InstallStepMsg{Step: s} },
		func(d InstallFinishedMsg) tea.Msg { return d })
	return p, func() tea.Msg {
		go func() {
			ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
			defer cancel()
			n, err := inst.Apply(ctx, func(s install.StepEvent) { p.events <- s })
			p.done <- InstallFinishedMsg{Applied: n, Err: err}
		}()
		return p.wait()()
	}
}

// startFirstRefresh refreshes every view, one after the other, in a
// goroutine; each view's start and result arrive as FirstRefreshStepMsg.
// Cancelling ctx (x) cancels the refresh under way: the view keeps its
// (empty) contents and the log records the cancel.
func startFirstRefresh(ctx context.Context, src Source) (*pump[FirstRefreshStepMsg, FirstRefreshDoneMsg], tea.Cmd) {
	p := newPump(func(s FirstRefreshStepMsg) tea.Msg { return s },
		func(d FirstRefreshDoneMsg) tea.Msg { return d })
	return p, func() tea.Msg {
		go func() {
			ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
			defer cancel()
			for _, v := range src.ViewNames() {
				p.events <- FirstRefreshStepMsg{View: v}
				res, err := src.Refresh(ctx, v, false)
				for i := range res {
					p.events <- FirstRefreshStepMsg{View: v, Result: &res[i]}
				}
				if err != nil {
					p.done <- FirstRefreshDoneMsg{Err: err, Canceled: ctx.Err() != nil}
					return
				}
			}
			p.done <- FirstRefreshDoneMsg{}
		}()
		return p.wait()()
	}
}

func (im *installModel) refreshStep(msg FirstRefreshStepMsg, now time.Time) {
	for i := range im.refresh {
		if im.refresh[i].view != msg.View {
			continue
		}
		if msg.Result != nil {
			im.refresh[i].result = msg.Result
		} else {
			im.refresh[i].started = &now
		}
	}
}

// busy tells whether the screen shows something that runs (and so wants
// the spinner's tick).
func (im *installModel) busy() bool {
	return im.state == installRunning || im.state == installRefreshing || im.state == installChecking
}

const privilegeAdvice = "Connect as the database owner (on Supabase the postgres role) to install, " +
	"or have it run `meshtop install`; afterwards grant meshtop_reader (and meshtop_refresher to refresh) to this role."

// schema is the schema install creates.
func (im *installModel) schema() string {
	if im.c.opts.Installer == nil {
		return store.DefaultSchema
	}
	return im.c.opts.Installer.Schema()
}

// outside tells an object install adds outside its own schema: what an SRE
// vets before saying yes (an index on MeshHook's runs, triggers on its hot
// tables, roles of the whole cluster).
func (im *installModel) outside(o install.Object) bool {
	return o.Kind != "schema" && !strings.HasPrefix(o.Name, im.schema()+".")
}

// objectLines are the prompt's list: the objects outside the schema first,
// then the schema's own, each wrapped under its name (never cut).
func (im *installModel) objectLines() []string {
	st := im.c.styles
	const kindW = 17 // "materialized view"
	var out []string
	add := func(o install.Object) {
		for i, l := range wrapWords(o.Name, max(10, im.width-kindW-3)) {
			kind := o.Kind
			if i > 0 {
				kind = ""
			}
			out = append(out, fmt.Sprintf("  %-*s %s", kindW, kind, l))
		}
	}
	var in, outside []install.Object
	for _, o := range im.objects {
		if im.outside(o) {
			outside = append(outside, o)
		} else {
			in = append(in, o)
		}
	}
	schema := im.schema()
	out = append(out, st.Bold.Render(fmt.Sprintf("Outside schema %s (%d):", schema, len(outside))))
	for _, o := range outside {
		add(o)
	}
	out = append(out, st.Bold.Render(fmt.Sprintf("In schema %s (%d):", schema, len(in))))
	for _, o := range in {
		add(o)
	}
	return out
}

// promptHead is the prompt's lines above the list.
func (im *installModel) promptHead() []string {
	schema := im.schema()
	text := fmt.Sprintf("Installing applies %s: it creates these %d objects, then refreshes the views once. "+
		"Outside schema %s it adds two indexes on workflow_runs (built CONCURRENTLY), change-capture triggers on "+
		"MeshHook's tables (in the wal capture mode fewer, with two publications and a replication slot) "+
		"and cluster-wide roles:", plural(im.pending, "migration", "migrations"), len(im.objects), schema)
	return wrapWords(text, im.width-2)
}

// listRoom is how many lines of the object list show: the body less the
// title, the text above the list, the position line and the question.
func (im *installModel) listRoom() int {
	return max(1, im.height-2-len(im.promptHead())-1-2)
}

func (im *installModel) clampScroll() {
	if im.state != installPrompt {
		return
	}
	im.scroll = max(0, min(im.scroll, len(im.objectLines())-im.listRoom()))
}

func (im *installModel) View() string {
	c := im.c
	st := c.styles
	now := c.now()
	width := im.width
	wrap := lipgloss.NewStyle().Width(width - 2)
	var out []string
	title := "meshtop's metrics views are not installed in this database"
	switch {
	case im.blocked != nil:
		title = "meshtop cannot be installed in this database"
	case im.state == installRefreshing || im.applied > 0 && im.state != installFailed:
		title = "meshtop is installed: first refresh of the metrics views"
	}
	out = append(out, st.Title.Render(fit(title, width)), "")
	switch im.state {
	case installUnavailable:
		out = append(out, wrap.Render(im.reason))
		if im.blocked != nil && im.blocked.Kind == "privileges" {
			out = append(out, "", wrap.Render(privilegeAdvice))
		}
		out = append(out, "", st.Muted.Render("q quits"))
		return strings.Join(out, "\n")
	case installChecking:
		out = append(out, st.Muted.Render(im.spin.View()+" checking the database (MeshHook tables, version, privileges)…"))
		return strings.Join(out, "\n")
	case installPrompt:
		out = append(out, im.promptHead()...)
		out = append(out, "")
		lines := im.objectLines()
		room := im.listRoom()
		off := max(0, min(im.scroll, len(lines)-room))
		out = append(out, lines[off:min(len(lines), off+room)]...)
		pos := fmt.Sprintf("lines %d–%d of %d · ↑↓ pgup pgdn g G scroll", off+1, min(len(lines), off+room), len(lines))
		if len(lines) <= room {
			pos = ""
		}
		out = append(out, st.Muted.Render(fit(pos, width)))
		out = append(out, st.Bold.Render("Install now?  y/enter installs · n quits"))
		return strings.Join(out, "\n")
	}
	nameW := max(20, min(40, width-28))
	room := im.height - len(out)
	if len(im.refresh) > 0 {
		// The install is done: one line for it, the room for the refresh.
		out = append(out, st.Good.Render(fit(fmt.Sprintf("✓ installed: %s applied to schema %s", plural(im.applied, "migration", "migrations"),
			im.schema()), width)), "")
		out = append(out, im.refreshHeader(width))
		for _, r := range im.refresh {
			out = append(out, firstRefreshLine(st, r, 26, width, now))
		}
		if im.state == installRefreshing {
			hint := "x cancels the first refresh (the overview then waits for a refresh from the console)"
			switch {
			case im.canceling:
				hint = "canceling…"
			case im.confirmCancel:
				hint = "cancel the first refresh? The views stay empty until one is refreshed. y/enter cancels it, n/esc keeps it running"
			}
			out = append(out, "")
			for _, l := range wrapWords(hint, width) {
				out = append(out, st.Muted.Render(l))
			}
		}
		return strings.Join(out, "\n")
	}
	if im.state == installRunning || len(im.steps) > 0 {
		done := 0
		for _, s := range im.steps {
			if s.Done && s.Err == nil {
				done++
			}
		}
		total := max(im.pending, len(im.steps))
		out = append(out, fmt.Sprintf("Installing: %d of %s done", done, plural(total, "migration", "migrations")))
		// The newest steps that fit, below a line for the earlier ones.
		tail := 0
		if im.state == installFailed {
			tail = 5 // the error and the retry hint
		}
		show := im.steps
		if max(1, room-1-tail) < len(show) {
			n := max(1, room-2-tail)
			out = append(out, st.Good.Render(fmt.Sprintf("  ✓ %d earlier steps", len(show)-n)))
			show = show[len(show)-n:]
		}
		for _, s := range show {
			name := fit(s.Name, nameW)
			switch {
			case s.Err != nil:
				out = append(out, st.Bad.Render(fit(fmt.Sprintf("  ✗ %03d %s %s", s.Version, name, oneLine(s.Err.Error())), width)))
			case s.Done:
				out = append(out, st.Good.Render(fit(fmt.Sprintf("  ✓ %03d %s %s", s.Version, name, fmtDur(s.Duration)), width)))
			default:
				out = append(out, st.Warn.Render(fit(fmt.Sprintf("  %s %03d %s %s", im.spin.View(), s.Version, name, fmtDur(now.Sub(im.stepAt))), width)))
			}
		}
	}
	if im.state == installFailed && im.err != nil {
		out = append(out, "")
		out = append(out, st.Error.Render(wrap.Render("install failed: "+oneLine(im.err.Error()))))
		var pe *install.PreconditionError
		if errors.As(im.err, &pe) && pe.Kind == "privileges" {
			out = append(out, "", wrap.Render(privilegeAdvice))
		}
		out = append(out, "", st.Muted.Render("y retries · q quits"))
	}
	return strings.Join(out, "\n")
}

// refreshHeader is "First refresh (1/3 views)" with a bar of the views done.
func (im *installModel) refreshHeader(width int) string {
	st := im.c.styles
	done := 0
	for _, r := range im.refresh {
		if r.result != nil {
			done++
		}
	}
	bar := progress.New(progress.WithSolidFill(string(st.Theme.Accent.Dark)), progress.WithoutPercentage(),
		progress.WithWidth(max(10, min(30, width/4))), progress.WithColorProfile(st.profile))
	return fmt.Sprintf("First refresh (%d/%d views)  %s", done, len(im.refresh), bar.ViewAs(float64(done)/float64(len(im.refresh))))
}

// firstRefreshLine is one view of the first refresh. A first refresh
// builds the rollup from the raw tables: it has no earlier refresh to be
// compared with, so it shows the time it has taken, not a bar.
func firstRefreshLine(st Styles, r firstRefreshStep, nameW, width int, now time.Time) string {
	name := fit(r.view, nameW)
	switch {
	case r.result != nil && r.result.Status == "ok":
		return st.Good.Render(fit(fmt.Sprintf("  ✓ %s %s, %s rows", name, fmtMsVal(r.result.DurationMs), fmtCount(r.result.Rows)), width))
	case r.result != nil && isCancel(r.result.Error):
		return st.Warn.Render(fit(fmt.Sprintf("  ⊘ %s canceled", name), width))
	case r.result != nil:
		return st.Bad.Render(fit(fmt.Sprintf("  ✗ %s %s: %s", name, r.result.Status, r.result.Error.Line()), width))
	case r.started != nil:
		return st.Warn.Render(fit(fmt.Sprintf("  ⟳ %s refreshing %s · a full build from the raw tables", name, fmtDur(now.Sub(*r.started))), width))
	}
	return st.Muted.Render(fit("  · "+name+" waiting", width))
}
