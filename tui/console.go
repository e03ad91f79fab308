package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/NimbleMarkets/ntcharts/sparkline"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/progress"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

const watchInterval = 500 * time.Millisecond

// consoleModel is the refresh console: the views' status, the schedule, the
// refreshes running (ours and anyone's) and the refresh log. It reads them
// itself, follows a running refresh with a cheap poll, and runs and
// cancels refreshes.
type consoleModel struct {
	c             *common
	width, height int
	active        bool

	// Reads: the console read (views, log, running, schedule) and the
	// watch's cheap poll both say what runs; the newest read that started
	// decides (runShown), so a slow old answer never brings back a
	// finished refresh.
	asked, shown, runShown int
	inflight               bool
	watchSeq               int
	watching               bool

	views   []store.ViewStatus
	log     []store.RefreshLogEntry
	running []store.RunningRefresh
	sched   store.Schedule
	capture *store.CaptureLog // nil when it could not be read
	loaded  bool

	sel    int
	logOff int
	// logSel is the selected refresh-log row ([ and ] move it), logSelID
	// its id (kept across reads); expanded is the id of the row enter
	// opened (0: none).
	logSel   int
	logSelID int64
	expanded int64

	confirmCancel bool
	// ours are refreshes this meshtop started and is waiting for, by view
	// ("" = all views), with when they were asked for.
	ours map[string]time.Time
	// last is the outcome of the last refresh this meshtop started.
	last *refreshOutcome

	sparks map[sparkSeries]string // drawn Recent sparklines by what they show
	styles styleID
}

type refreshOutcome struct {
	view    string
	results []store.RefreshResult
	err     error
}

func newConsole(c *common) *consoleModel { return &consoleModel{c: c, ours: map[string]time.Time{}} }

func (cs *consoleModel) SetSize(w, h int) {
	cs.width, cs.height = w, h
	cs.scrollLog()
}

func (cs *consoleModel) CapturesKeys() bool { return cs.confirmCancel }
func (cs *consoleModel) TakesText() bool    { return false }

func (cs *consoleModel) ShortHelp() []key.Binding {
	k := cs.c.keys
	if cs.confirmCancel {
		return []key.Binding{k.Yes, k.No}
	}
	return []key.Binding{k.move("move"), k.NextScreen, k.Refresh, k.RefreshAll, k.Cancel,
		key.NewBinding(key.WithKeys("[", "]"), key.WithHelp("[ ]", "log")),
		key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "log entry"))}
}

func (cs *consoleModel) FullHelp() [][]key.Binding {
	k := cs.c.keys
	return [][]key.Binding{{k.Up, k.Down, k.Back}, {k.Refresh, k.RefreshAll, k.Cancel, k.LogUp, k.LogDown, k.Enter}}
}

func (cs *consoleModel) read(force bool) tea.Cmd {
	if cs.inflight && !force {
		return nil
	}
	cs.inflight = true
	cs.asked = cs.c.nextSeq()
	return fetchConsole(cs.c.ctx, cs.c.src, cs.asked)
}

// busy reports whether anything is refreshing: ours or anyone's.
func (cs *consoleModel) busy() bool { return len(cs.ours) > 0 || len(cs.running) > 0 }

// watch follows running refreshes with a cheap poll until none runs.
func (cs *consoleModel) watch() tea.Cmd {
	if cs.watching || cs.c.sess.paused {
		return nil
	}
	cs.watching = true
	cs.watchSeq++
	return watchTick(cs.watchSeq)
}

func (cs *consoleModel) Update(msg tea.Msg) (screen, tea.Cmd) {
	cmd := cs.update(msg)
	cs.scrollLog()
	return cs, cmd
}

func (cs *consoleModel) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case focusMsg:
		cs.active = msg.active
		if cs.active {
			return cs.read(false)
		}
	case pollMsg:
		if cs.active || cs.busy() || !cs.loaded {
			return cs.read(msg.force)
		}
	case refreshEventMsg:
		cmd := cs.read(true)
		if msg.ev.Status == "running" {
			return tea.Batch(cmd, cs.watch())
		}
		return cmd
	case ConsoleLoadedMsg:
		if msg.Seq >= cs.asked {
			cs.inflight = false
		}
		if msg.Err != nil {
			cs.c.send(readFailedMsg{what: "reading the refresh status", err: msg.Err})
			return nil
		}
		if msg.Seq < cs.shown {
			return nil
		}
		cs.shown = msg.Seq
		if msg.Seq < cs.runShown {
			msg.Running = cs.running // a newer poll already told what runs
		} else {
			cs.runShown = msg.Seq
		}
		cs.setData(msg)
		cs.c.send(factsMsg{seq: msg.Seq, views: msg.Views, running: msg.Running, hasRunning: true})
		if cs.busy() {
			return cs.watch()
		}
	case RunningLoadedMsg:
		if msg.Err != nil {
			cs.c.send(readFailedMsg{what: "reading running refreshes", err: msg.Err})
			return nil
		}
		if msg.Seq < cs.runShown {
			return nil // older than what is shown
		}
		cs.runShown = msg.Seq
		cs.running = msg.Running
		cs.c.send(factsMsg{seq: msg.Seq, running: msg.Running, hasRunning: true})
	case WatchTickMsg:
		if msg.Seq != cs.watchSeq {
			return nil
		}
		if !cs.busy() || cs.c.sess.lost || cs.c.sess.paused {
			cs.watching = false
			return nil
		}
		return tea.Batch(cs.readRunning(), watchTick(cs.watchSeq))
	case RefreshFinishedMsg:
		delete(cs.ours, msg.View)
		cs.last = &refreshOutcome{view: msg.View, results: msg.Results, err: msg.Err}
		cs.c.status(refreshSummary(msg), msg.Err != nil)
		if msg.Err != nil && isConnErr(msg.Err) {
			cs.c.send(readFailedMsg{what: "refreshing", err: msg.Err})
			return nil
		}
		// Every screen reads again: what is shown predates the refresh.
		cs.c.send(dataChangedMsg{})
	case CancelFinishedMsg:
		if msg.Err != nil {
			cs.c.send(readFailedMsg{what: "cancelling the refresh", err: msg.Err})
			return nil
		}
		cs.c.status(fmt.Sprintf("cancel sent to %d refreshing backend(s)", msg.Canceled), false)
		return cs.read(true)
	case tea.KeyMsg:
		return cs.key(msg)
	}
	return nil
}

// readRunning reads the running refreshes, numbered like the other reads.
func (cs *consoleModel) readRunning() tea.Cmd {
	return fetchRunning(cs.c.ctx, cs.c.src, cs.c.nextSeq())
}

func (cs *consoleModel) key(msg tea.KeyMsg) tea.Cmd {
	k := cs.c.keys
	if cs.confirmCancel {
		cs.confirmCancel = false
		if key.Matches(msg, k.Yes) {
			view := ""
			if len(cs.running) == 1 {
				view = cs.running[0].View
			} else if r := cs.runningFor(cs.selectedView()); r != nil {
				view = r.View
			}
			cs.c.status("cancelling the refresh of "+cs.cancelTarget()+"…", false)
			return cancelRefresh(cs.c.ctx, cs.c.src, view)
		}
		cs.c.status("the refresh keeps running", false)
		return nil
	}
	if cs.c.opts.ReadOnly || cs.c.opts.Pooler {
		// The bindings are disabled (and so hidden from the help); say why
		// the keys do nothing.
		switch msg.String() {
		case "r", "R", "x":
			if cs.c.opts.Pooler {
				cs.c.status(poolerLine, true)
			} else {
				cs.c.status("read-only: refreshing and cancelling are disabled", true)
			}
			return nil
		}
	}
	switch {
	case key.Matches(msg, k.Back):
		cs.c.send(backMsg{})
	case key.Matches(msg, k.Up):
		cs.sel = max(0, cs.sel-1)
	case key.Matches(msg, k.Down):
		cs.sel = min(max(0, len(cs.views)-1), cs.sel+1)
	case key.Matches(msg, k.LogUp):
		cs.selectLog(cs.logSel - 1)
	case key.Matches(msg, k.LogDown):
		cs.selectLog(cs.logSel + 1)
	case key.Matches(msg, k.Enter):
		cs.toggleLog()
	case key.Matches(msg, k.Refresh), key.Matches(msg, k.RefreshAll):
		view := ""
		if key.Matches(msg, k.Refresh) {
			view = cs.selectedView()
			if view == "" {
				return nil
			}
		}
		if _, ok := cs.ours[view]; ok {
			cs.c.status("that refresh is already under way", false)
			return nil
		}
		cs.ours[view] = cs.c.now()
		name := view
		if name == "" {
			name = "all views"
		}
		cs.c.status("refreshing "+name+"…", false)
		return tea.Batch(runRefresh(cs.c.ctx, cs.c.src, view), cs.watch(), cs.readRunning())
	case key.Matches(msg, k.Cancel):
		if len(cs.running) == 0 {
			cs.c.status("no refresh is running", false)
			return nil
		}
		cs.confirmCancel = true
	}
	return nil
}

func (cs *consoleModel) setData(msg ConsoleLoadedMsg) {
	cs.views, cs.log, cs.running, cs.sched = msg.Views, msg.Log, msg.Running, msg.Schedule
	cs.capture = msg.Capture
	cs.loaded = true
	if cs.sel >= len(cs.views) {
		cs.sel = max(0, len(cs.views)-1)
	}
	cs.selectLog(cs.logSel)
	for i := range cs.log {
		if cs.log[i].ID == cs.logSelID {
			cs.logSel = i
		}
	}
}

// selectLog selects refresh-log row i (clamped).
func (cs *consoleModel) selectLog(i int) {
	cs.logSel = max(0, min(i, len(cs.log)-1))
	cs.logSelID = 0
	if cs.logSel < len(cs.log) {
		cs.logSelID = cs.log[cs.logSel].ID
	}
}

// toggleLog opens or closes the selected log row's details.
func (cs *consoleModel) toggleLog() {
	if cs.expanded == cs.logSelID {
		cs.expanded = 0
	} else {
		cs.expanded = cs.logSelID
	}
}

// selectedView is the name of the selected view, or "" before data arrives.
func (cs *consoleModel) selectedView() string {
	if cs.sel < len(cs.views) {
		return cs.views[cs.sel].Name
	}
	return ""
}

func (cs *consoleModel) runningFor(view string) *store.RunningRefresh {
	for i := range cs.running {
		if cs.running[i].View == view {
			return &cs.running[i]
		}
	}
	return nil
}

func (cs *consoleModel) viewStatus(name string) *store.ViewStatus {
	for i := range cs.views {
		if cs.views[i].Name == name {
			return &cs.views[i]
		}
	}
	return nil
}

func (cs *consoleModel) cancelTarget() string {
	if len(cs.running) == 1 {
		return cs.running[0].View
	}
	if r := cs.runningFor(cs.selectedView()); r != nil {
		return r.View
	}
	return "every view"
}

// consoleLayout is how the body is shared: the lines above the log, the
// log's table and the rows it has room for.
type consoleLayout struct {
	top     []string
	log     logTable
	details []string
	rows    int
}

func (cs *consoleModel) layout() consoleLayout {
	var l consoleLayout
	if !cs.loaded {
		return l
	}
	c := cs.c
	st := c.styles
	now := c.now()
	l.top = append(l.top, cs.viewLines()...)
	l.top = append(l.top, "")
	for _, s := range wrapWords(cs.scheduleLine(now), cs.width) {
		l.top = append(l.top, cs.scheduleStyle().Render(s))
	}
	if line, style := cs.captureLine(); line != "" {
		for _, s := range wrapWords(line, cs.width) {
			l.top = append(l.top, style.Render(s))
		}
	}
	l.top = append(l.top, "")
	l.top = append(l.top, st.Header.Render("Refresh"))
	l.top = append(l.top, cs.watchLines(now)...)
	if cs.confirmCancel {
		for _, s := range wrapWords(fmt.Sprintf("cancel the running refresh of %s? y/enter cancels it, n/esc keeps it running", cs.cancelTarget()), cs.width) {
			l.top = append(l.top, st.Warn.Render(s))
		}
	}
	l.top = append(l.top, "")
	l.log = newLogTable(cs.log, cs.width)
	l.rows = cs.height - len(l.top) - 1 // the log's header
	if cs.expanded != 0 && cs.logSel < len(cs.log) && cs.log[cs.logSel].ID == cs.expanded {
		l.details = logDetails(c, cs.log[cs.logSel], cs.width)
		l.rows -= len(l.details)
	}
	l.rows = max(1, l.rows)
	return l
}

// scrollLog keeps the selected log row in view.
func (cs *consoleModel) scrollLog() { cs.logOff = cs.logWindow(cs.layout().rows) }

// logWindow is the first log row shown in rows lines so that the selected
// one shows, moving logOff as little as possible.
func (cs *consoleModel) logWindow(rows int) int {
	off := cs.logOff
	if cs.logSel < off {
		off = cs.logSel
	}
	if cs.logSel >= off+rows {
		off = cs.logSel - rows + 1
	}
	return max(0, min(off, len(cs.log)-rows))
}

func (cs *consoleModel) View() string {
	st := cs.c.styles
	if !cs.loaded {
		return st.Muted.Render("loading refresh status…")
	}
	l := cs.layout()
	out := l.top
	out = append(out, st.Header.Render(l.log.header()))
	if len(cs.log) == 0 {
		out = append(out, st.Muted.Render("no refresh has been logged yet"))
	}
	off := cs.logWindow(l.rows) // the lines above may have changed since the last Update
	for i := off; i < len(cs.log) && i < off+l.rows; i++ {
		e := cs.log[i]
		state, _ := logState(e)
		style := statusStyle(st, state)
		if i == cs.logSel {
			style = st.Selected.Inherit(style)
		}
		out = append(out, style.Render(l.log.row(e, i == cs.logSel)))
		if i == cs.logSel && l.details != nil {
			out = append(out, l.details...)
		}
	}
	return strings.Join(out, "\n")
}

// viewLines is the views' table: below 110 columns the size, median and
// sparkline give way.
func (cs *consoleModel) viewLines() []string {
	st := cs.c.styles
	wide := cs.width >= 110
	var out []string
	if wide {
		out = append(out, st.Header.Render(fmt.Sprintf("  %-26s %-4s %7s %9s %-20s %8s %8s %-11s %s",
			"View", "Pop.", "Rows", "Size", "Last refresh (lag)", "Last", "Median", "Status", "Recent")))
	} else {
		out = append(out, st.Header.Render(fmt.Sprintf("  %-26s %7s %-20s %8s %s",
			"View", "Rows", "Last refresh (lag)", "Last", "Status")))
	}
	for i, v := range cs.views {
		mark := "  "
		if i == cs.sel {
			mark = "▸ "
		}
		pop := "no"
		if v.Populated {
			pop = "yes"
		}
		last := "never"
		if v.LastRefreshAt != nil {
			last = v.LastRefreshAt.UTC().Format("15:04:05")
			if v.Lag != nil {
				last += " (" + fmtAge(*v.Lag) + ")"
			}
		}
		status := v.LastStatus
		if status == "failed" && isCancel(v.LastError) {
			status = "canceled"
		}
		if v.Running != nil || cs.runningFor(v.Name) != nil {
			status = "running"
		}
		if status == "" {
			status = dash
		}
		style := statusStyle(st, status)
		if i == cs.sel {
			style = st.Selected.Inherit(style)
		}
		if !wide {
			if !v.Populated {
				status = "unpopulated"
			}
			out = append(out, style.Render(fmt.Sprintf("%s%-26s %7s %-20s %8s %s",
				mark, fit(v.Name, 26), fmtCount(v.Rows), fit(last, 20), fmtMs(v.LastDurationMs), status)))
			continue
		}
		text := fmt.Sprintf("%s%-26s %-4s %7s %9s %-20s %8s %8s %-11s",
			mark, fit(v.Name, 26), pop, fmtCount(v.Rows), fmtBytes(v.SizeBytes), fit(last, 20),
			fmtMs(v.LastDurationMs), fmtMs(v.MedianDurationMs), fit(status, 11))
		sw := max(8, min(16, cs.width-lipgloss.Width(text)-1))
		out = append(out, style.Render(text)+" "+cs.recentSpark(v.RecentDurationsMs, sw))
	}
	return out
}

// sparkSeries is what a Recent sparkline shows: the durations that fit its
// width, the newest last.
type sparkSeries struct {
	width int
	vals  [16]float64
	n     int
}

// recentSpark draws the newest durations that fit w cells, scaled to the
// largest of those. (All of them were pushed and the sparkline kept the
// largest ever pushed as its top: once a slow refresh had scrolled out of
// the width, the fast ones left were drawn as nothing.)
func (cs *consoleModel) recentSpark(durs []float64, w int) string {
	k := sparkSeries{width: w}
	recent := durs[max(0, len(durs)-min(w, len(k.vals))):]
	k.n = copy(k.vals[:], recent)
	st := cs.c.styles
	if cs.sparks == nil || cs.styles != st.id() || len(cs.sparks) > maxTableCache {
		cs.sparks, cs.styles = map[sparkSeries]string{}, st.id()
	}
	if s, ok := cs.sparks[k]; ok && !cs.c.noCache {
		return s
	}
	sp := sparkline.New(w, 1, sparkline.WithStyle(st.Accent))
	sp.PushAll(recent)
	sp.Draw()
	s := sp.View()
	if !cs.c.noCache {
		cs.sparks[k] = s
	}
	return s
}

// logTable lays out the refresh log: each column as wide as its widest
// value (so no room is left unused), the rest for "By / error".
type logTable struct {
	wide  bool
	w     []int // widths of the columns before "By / error"
	width int
}

func newLogTable(log []store.RefreshLogEntry, width int) logTable {
	t := logTable{wide: width >= 110, width: width}
	heads := t.heads()
	t.w = make([]int, len(heads)-1)
	for i, h := range heads[:len(heads)-1] {
		t.w[i] = ansi.StringWidth(h)
	}
	for _, e := range log {
		for i, v := range t.cells(e)[:len(t.w)] {
			t.w[i] = max(t.w[i], ansi.StringWidth(v))
		}
	}
	return t
}

func (t logTable) heads() []string {
	if t.wide {
		return []string{"Log id", "View", "Started", "Duration", "Rows", "State", "PID", "By / error"}
	}
	return []string{"Log", "View", "Started", "Took", "State", "By / error"}
}

// cells are a log row's texts, column by column.
func (t logTable) cells(e store.RefreshLogEntry) []string {
	state, by := logState(e)
	dur := fmtMs(e.DurationMs)
	if e.Status == "skipped" {
		dur = dash // never ran
	}
	switch e.Mode { // how the refresh used the rollup (enter says more)
	case "incremental":
		by += fmt.Sprintf(" · %d keys", e.DirtyKeys)
	case "full":
		by += " · full"
	}
	if t.wide {
		rows := dash
		if e.Rows != nil {
			rows = fmtCount(*e.Rows)
		}
		return []string{fmt.Sprint(e.ID), e.View, e.StartedAt.UTC().Format("01-02 15:04:05"), dur, rows, state, fmt.Sprint(e.PID), by}
	}
	// Narrow: the views' common "mv_" prefix goes, for who ran it.
	return []string{fmt.Sprint(e.ID), strings.TrimPrefix(e.View, "mv_"), e.StartedAt.UTC().Format("15:04:05"), dur, state, by}
}

// right tells the right-aligned (numeric) columns.
func (t logTable) right(i int) bool {
	if t.wide {
		return i == 3 || i == 4
	}
	return i == 3
}

func (t logTable) line(cells []string, mark string) string {
	var b strings.Builder
	b.WriteString(mark)
	for i, w := range t.w {
		if t.right(i) {
			b.WriteString(fitRight(cells[i], w))
		} else {
			b.WriteString(fit(cells[i], w))
		}
		b.WriteByte(' ')
	}
	rest := t.width - ansi.StringWidth(b.String())
	b.WriteString(fit(cells[len(cells)-1], rest))
	return b.String()
}

func (t logTable) header() string { return t.line(t.heads(), "  ") }

func (t logTable) row(e store.RefreshLogEntry, selected bool) string {
	mark := "  "
	if selected {
		mark = "▸ "
	}
	return t.line(t.cells(e), mark)
}

// logState is a log row's state and its "By / error" cell: who asked (the
// actor a caller named: for an operator of meshtop serve, "ssh USER
// SHA256:…"), else what ran it (the application: meshtop dashboard, meshtop
// refresh, pg_cron, …; the role when there is none — enter shows all), or
// the error; a deliberate cancel reads "canceled" and names who cancelled
// when the log knows, not "failed".
func logState(e store.RefreshLogEntry) (string, string) {
	by := e.TriggeredBy.String()
	switch {
	case !e.Actor.IsEmpty():
		by = strings.TrimPrefix(e.Actor.String(), "meshtop serve: ")
	case !e.ApplicationName.IsEmpty():
		by = strings.TrimPrefix(e.ApplicationName.String(), "meshtop serve: ")
	}
	switch {
	case e.Status == "failed" && isCancel(e.Error) && !e.CanceledBy.IsEmpty():
		return "canceled", "canceled by " + strings.TrimPrefix(e.CanceledBy.String(), "meshtop serve: ")
	case e.Status == "failed" && isCancel(e.Error):
		return "canceled", "canceled: " + by
	case !e.Error.IsEmpty():
		return e.Status, e.Error.Line()
	}
	return e.Status, by
}

// logDetails are the lines under an opened log row: the whole error,
// wrapped, and who triggered the refresh from where.
func logDetails(c *common, e store.RefreshLogEntry, width int) []string {
	st := c.styles
	wrap := lipgloss.NewStyle().Width(max(20, width-4)).PaddingLeft(4)
	var out []string
	if !e.Error.IsEmpty() {
		out = append(out, strings.Split(st.Bad.Render(wrap.Render("error: "+e.Error.Line())), "\n")...)
	}
	finished := dash
	if e.FinishedAt != nil {
		finished = e.FinishedAt.UTC().Format("15:04:05")
	}
	asOf := dash
	if e.DataAsOf != nil {
		asOf = fmtTime(*e.DataAsOf)
	}
	kind := "plain"
	if e.Concurrently {
		kind = "concurrently"
	}
	mode := ""
	switch e.Mode {
	case "incremental":
		mode = fmt.Sprintf(" · incremental, %d changed keys", e.DirtyKeys)
	case "full":
		mode = " · full rebuild"
	}
	actor := ""
	if !e.Actor.IsEmpty() {
		actor = fmt.Sprintf(" · asked by %s", e.Actor.String())
	}
	if !e.CanceledBy.IsEmpty() {
		actor += fmt.Sprintf(" · canceled by %s", e.CanceledBy.String())
	}
	who := fmt.Sprintf("by role %s · application %q%s · pid %d · %s%s · started %s, finished %s · data as of %s",
		e.TriggeredBy.String(), e.ApplicationName.String(), actor, e.PID, kind, mode, e.StartedAt.UTC().Format("2006-01-02 15:04:05"), finished, asOf)
	out = append(out, strings.Split(st.Muted.Render(wrap.Render(who)), "\n")...)
	return out
}

func statusStyle(st Styles, status string) lipgloss.Style {
	switch status {
	case "ok":
		return st.Good
	case "failed", "interrupted":
		return st.Bad
	case "running", "skipped", "canceled":
		return st.Warn
	}
	return st.Plain()
}

func (cs *consoleModel) scheduleStyle() lipgloss.Style {
	st := cs.c.styles
	if cs.sched.CronAvailable && cs.sched.Unknown.IsEmpty() && !cs.sched.Scheduled && cs.refresher(cs.c.now()) == "" {
		return st.Warn
	}
	return st.Muted
}

// captureLine says how MeshHook's changes reach the refresh and how close
// capture is to its bound (docs/REFRESH.md): in the triggers mode the log's
// size and age against capture_max_age (capture stops past it and the next
// refresh rebuilds); in the wal mode the WAL the slot retains and the time
// since a refresh consumed it, against capture_wal_max_bytes/max_age
// (meshtop drops the slot past either and falls back to the triggers).
// Warned from half the bound; bad once stopped, lost or fallen back within
// a day. "" when capture's state could not be read.
func (cs *consoleModel) captureLine() (string, lipgloss.Style) {
	st := cs.c.styles
	c := cs.capture
	if c == nil {
		return "", st.Muted
	}
	w := c.Capture
	if w != nil && w.Mode == "wal" {
		line := fmt.Sprintf("capture: wal · slot retains %s of %s · consumed %s ago (bound %s)",
			fmtBytes(w.RetainedBytes), fmtBytes(w.MaxBytes), fmtDur(w.Lag), fmtDur(w.MaxAge))
		switch {
		case w.WALStatus == "lost":
			return line + " · slot LOST: the next refresh falls back to the triggers", st.Bad
		case w.MaxBytes > 0 && w.RetainedBytes*2 > w.MaxBytes, w.MaxAge > 0 && w.Lag*2 > w.MaxAge:
			return line, st.Warn
		}
		return line, st.Muted
	}
	mode := "triggers"
	if w != nil && w.Mode != "" {
		mode = w.Mode
	}
	line := fmt.Sprintf("capture: %s · log ~%s rows, %s, consumed %s ago (bound %s)",
		mode, fmtCount(c.Rows), fmtBytes(c.Bytes), fmtDur(c.Age), fmtDur(c.MaxAge))
	style := st.Muted
	switch {
	case c.MaxAge > 0 && c.Age*2 > c.MaxAge:
		style = st.Warn
	}
	switch {
	case c.Stopped:
		line += " · STOPPED: the next refresh rebuilds"
		style = st.Bad
	case c.RebuildPending:
		line += " · was off: the next refresh rebuilds"
		style = st.Warn
	}
	if w != nil && w.FallbackAt != nil && cs.c.now().Sub(*w.FallbackAt) < 24*time.Hour {
		line += fmt.Sprintf(" · fell back from wal at %s: %s — `meshtop install --capture wal` switches back",
			w.FallbackAt.UTC().Format("15:04"), w.FallbackReason.Line())
		style = st.Bad
	}
	return line, style
}

// scheduleLine says how the views are kept fresh: meshtop's pg_cron job,
// or — without one — who the log says refreshes them (a `meshtop refresh
// --every`, `meshtop serve`, the demo's own loop), and what to run when
// nobody does.
func (cs *consoleModel) scheduleLine(now time.Time) string {
	s := cs.sched
	who := cs.refresher(now)
	switch {
	case !s.CronAvailable && who != "":
		return "schedule: no pg_cron in this database · " + who
	case !s.CronAvailable:
		return "schedule: pg_cron is not installed in this database — use `meshtop refresh --every 1m` to keep the views fresh"
	case !s.Unknown.IsEmpty():
		return "schedule: unknown — " + s.Unknown.Line()
	case !s.Scheduled && who != "":
		return "schedule: no pg_cron job · " + who
	case !s.Scheduled:
		return "schedule: not scheduled — `meshtop schedule --every 1m` registers it with pg_cron"
	}
	every := s.Schedule
	if s.Every > 0 {
		every = "every " + fmtEvery(s.Every)
	}
	line := fmt.Sprintf("schedule: pg_cron job %d, %s (%s)", s.JobID, every, s.Schedule)
	if !s.Active {
		line += ", inactive"
	}
	if s.NextRun != nil {
		line += fmt.Sprintf(" · next run %s (%s)", s.NextRun.UTC().Format("15:04:05"), fmtAgo(s.NextRun, now))
	}
	if len(s.LastRuns) > 0 {
		r := s.LastRuns[0]
		line += fmt.Sprintf(" · last cron run %s at %s", r.Status, r.Start.UTC().Format("15:04:05"))
		if r.Status != "succeeded" && !r.Message.IsEmpty() {
			line += ": " + r.Message.Line()
		}
	}
	return line
}

// refresher says who keeps the views fresh when no pg_cron job does, from
// the log: the application (or role) of the newest refresh, when it
// refreshed the same view at a steady pace (three times at least, the
// newest within three of its intervals) — a `meshtop refresh --every`, a
// `meshtop serve`, the demo's own loop. "" when nobody does.
func (cs *consoleModel) refresher(now time.Time) string {
	if len(cs.log) == 0 {
		return ""
	}
	e := cs.log[0]
	who := func(e store.RefreshLogEntry) string {
		if !e.ApplicationName.IsEmpty() {
			return e.ApplicationName.String()
		}
		return "role " + e.TriggeredBy.String()
	}
	name := who(e)
	var starts []time.Time
	for _, x := range cs.log {
		if x.View == e.View && who(x) == name {
			starts = append(starts, x.StartedAt)
		}
	}
	var gaps []float64
	for i := 1; i < len(starts); i++ {
		gaps = append(gaps, starts[i-1].Sub(starts[i]).Seconds())
	}
	if len(gaps) < 2 {
		return ""
	}
	every := time.Duration(median(gaps) * float64(time.Second)).Round(time.Second)
	if every <= 0 || now.Sub(e.StartedAt) > 3*every {
		return ""
	}
	return fmt.Sprintf("refreshed by %s about every %s, last %s", name, fmtEvery(every), fmtAgeAgo(&e.StartedAt, now))
}

// median of a non-empty slice (sorted copy).
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// modeDurations are the durations of a view's successful refreshes in the
// log, newest first, by how they used the rollup.
func (cs *consoleModel) modeDurations(view string) (incr, full []float64) {
	for _, e := range cs.log {
		if e.View != view || e.Status != "ok" || e.DurationMs == nil {
			continue
		}
		switch e.Mode {
		case "incremental":
			incr = append(incr, *e.DurationMs)
		case "full":
			full = append(full, *e.DurationMs)
		}
	}
	return incr[:min(len(incr), 20)], full[:min(len(full), 20)]
}

// progress compares a running refresh with past refreshes of its kind. A
// refresh's mode (incremental, or a full rebuild of the rollup) is logged
// only when it ends, so: a view never refreshed is rebuilt; otherwise a
// refresh no longer than the slowest incremental one is measured against
// the incremental median, and one that has run past every incremental
// refresh against the full rebuilds' median. Without past refreshes of the
// kind there is no bar (ok false), only the elapsed time and why. text
// follows the percentage ("of the incremental median 15ms").
func (cs *consoleModel) progress(view string, elapsed time.Duration) (pct float64, text string, ok bool) {
	incr, full := cs.modeDurations(view)
	ms := float64(elapsed.Milliseconds())
	of := func(kind string, ds []float64, why string) (float64, string, bool) {
		med := median(ds)
		if med <= 0 {
			return 0, "", false
		}
		return min(1, ms/med), fmt.Sprintf("of %s median %s%s", kind, fmtMsVal(med), why), true
	}
	vs := cs.viewStatus(view)
	switch {
	case vs != nil && !vs.Populated && len(full) > 0:
		return of("full-rebuild", full, " (a first refresh rebuilds)")
	case vs != nil && !vs.Populated:
		return 0, "first refresh: a full build, nothing to compare with", false
	case len(incr) > 0 && ms <= slices.Max(incr):
		return of("incremental", incr, "")
	case len(incr) > 0 && len(full) > 0:
		return of("full-rebuild", full, fmt.Sprintf(": it has run longer than any incremental refresh (≤ %s)", fmtMsVal(slices.Max(incr))))
	case len(incr) > 0:
		return 0, fmt.Sprintf("longer than any incremental refresh (≤ %s): a full rebuild?", fmtMsVal(slices.Max(incr))), false
	case len(full) > 0:
		return of("full-rebuild", full, "")
	}
	return 0, "no past refresh to compare with", false
}

// watchLines shows every refresh in progress (elapsed, progress against
// past refreshes of its kind, waiting for a lock or running), or the
// outcome of the last one this meshtop started.
func (cs *consoleModel) watchLines(now time.Time) []string {
	c := cs.c
	st := c.styles
	width := cs.width
	var out []string
	seen := map[string]bool{}
	barW := max(10, min(20, width/6))
	bar := progress.New(progress.WithSolidFill(string(st.Theme.Accent.Dark)), progress.WithoutPercentage(),
		progress.WithWidth(barW), progress.WithColorProfile(st.profile))
	if st.dark {
		bar.FullColor = st.Theme.Accent.Dark
	} else {
		bar.FullColor = st.Theme.Accent.Light
	}
	for _, r := range cs.running {
		seen[r.View] = true
		elapsed := now.Sub(r.StartedAt)
		state := st.Warn.Render("running")
		if r.WaitingForLock {
			state = st.Bad.Render("waiting for a lock")
		}
		pct, cmp, ok := cs.progress(r.View, elapsed)
		line := fmt.Sprintf("⟳ %s %s %s", fit(r.View, 26), state, fmtDur(elapsed))
		sep := " · "
		if ok {
			line += fmt.Sprintf("  %s %3.0f%%", bar.ViewAs(pct), pct*100)
			sep = " "
		}
		// The comparison follows on the line when it fits, else below it.
		if ansi.StringWidth(line+sep+cmp) <= width {
			line += sep + cmp
			cmp = ""
		}
		if tail := fmt.Sprintf("  pid %d, log %d", r.PID, r.LogID); ansi.StringWidth(line+tail) <= width {
			line += tail
		}
		out = append(out, fit(line, width))
		if cmp != "" {
			for _, l := range wrapWords(cmp, width-4) {
				out = append(out, "    "+st.Muted.Render(l))
			}
		}
		for _, b := range r.BlockedBy {
			out = append(out, st.Bad.Render(fit(fmt.Sprintf("    blocked by pid %d (for %s): %s", b.PID, fmtDur(b.Age), b.Query.Line()), width)))
		}
	}
	for view, at := range sortedOurs(cs.ours) {
		if view != "" && seen[view] {
			continue
		}
		name := view
		if name == "" {
			name = "all views"
		}
		if len(cs.running) == 0 {
			out = append(out, fmt.Sprintf("⟳ %-27s %s  %s", name, st.Warn.Render("starting"), fmtDur(now.Sub(at))))
		}
	}
	if len(out) > 0 {
		return out
	}
	if cs.last == nil {
		hint := "r refreshes the selected view, R all views"
		switch {
		case c.opts.Pooler:
			hint = "refreshing needs a session: use the direct or session-pooler URL, port 5432"
		case c.opts.ReadOnly:
			hint = "read-only: refreshing is disabled"
		}
		return []string{st.Muted.Render(fit("no refresh running · "+hint, width))}
	}
	if cs.last.err != nil && len(cs.last.results) == 0 {
		return []string{st.Bad.Render(fit("✗ refresh failed: "+oneLine(cs.last.err.Error()), width))}
	}
	for _, r := range cs.last.results {
		status := r.Status
		if status == "failed" && isCancel(r.Error) {
			status = "canceled"
		}
		switch status {
		case "ok":
			out = append(out, st.Good.Render(fit(fmt.Sprintf("✓ %-27s done in %s with %d rows (log %d)", r.View, fmtMsVal(r.DurationMs), r.Rows, r.LogID), width)))
		case "skipped":
			msg := fmt.Sprintf("– %-27s skipped: %s", r.View, r.Error.Line())
			out = append(out, st.Warn.Render(fit(msg, width)))
		case "canceled":
			out = append(out, st.Warn.Render(fit(fmt.Sprintf("⊘ %-27s canceled after %s (by an operator: x or pg_cancel_backend)", r.View, fmtMsVal(r.DurationMs)), width)))
		default:
			out = append(out, st.Bad.Render(fit(fmt.Sprintf("✗ %-27s failed after %s: %s", r.View, fmtMsVal(r.DurationMs), r.Error.Line()), width)))
		}
	}
	if cs.last.err != nil {
		out = append(out, st.Bad.Render(fit("✗ "+oneLine(cs.last.err.Error()), width)))
	}
	return out
}

// sortedOurs iterates refreshes we started in a stable order.
func sortedOurs(m map[string]time.Time) func(func(string, time.Time) bool) {
	return func(yield func(string, time.Time) bool) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

// wrapWords wraps text at spaces into lines of at most w cells, keeping a
// `quoted command` whole (a command cut after "meshtop schedule" reads as
// another command); a word longer than a line is cut.
func wrapWords(s string, w int) []string {
	var words []string
	for len(s) > 0 {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			break
		}
		end := strings.IndexByte(s, ' ')
		if s[0] == '`' {
			if j := strings.IndexByte(s[1:], '`'); j >= 0 {
				end = j + 2
				if k := strings.IndexByte(s[end:], ' '); k >= 0 {
					end += k
				} else {
					end = len(s)
				}
			}
		}
		if end < 0 {
			end = len(s)
		}
		words, s = append(words, s[:end]), s[end:]
	}
	var out []string
	line := ""
	for _, wd := range words {
		switch {
		case line == "":
			line = wd
		case ansi.StringWidth(line)+1+ansi.StringWidth(wd) <= w:
			line += " " + wd
		default:
			out = append(out, fit(line, min(w, ansi.StringWidth(line))))
			line = wd
		}
	}
	if line != "" {
		out = append(out, fit(line, min(w, ansi.StringWidth(line))))
	}
	return out
}

// oneLine puts text that is not a safetext.Text — an error's message, which
// quotes the database — on one sanitized line.
func oneLine(s string) string { return safetext.Line(s) }
