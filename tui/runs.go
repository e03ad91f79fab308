package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/meshtop/meshtop/data/store"
)

// runsLimit is how many runs the list reads: a screenful at 120×40. Each
// costs the database an index probe of its events (docs/METRICS.md,
// "Drill-down").
const runsLimit = 30

// runsModel is the drill-down's list: one workflow's newest failed runs or
// its slowest runs in the window, each with the step that explains it (the
// final failure: node, attempts, HTTP status, error on one line). enter
// opens a run's timeline; f and l switch the list; y copies the run id.
type runsModel struct {
	c             *common
	width, height int
	active        bool

	id    string // workflow
	title string // the workflow's name line, from the detail (sanitized)
	kind  store.RunKind

	asked, shown int
	inflight     bool
	data         store.RunList
	loaded       bool

	sel, off int
	selID    string // the selected run, kept across reads
}

func newRuns(c *common) *runsModel { return &runsModel{c: c, kind: store.RunsFailed} }

func (r *runsModel) SetSize(w, h int) {
	r.width, r.height = w, h
	r.scroll()
}

func (r *runsModel) CapturesKeys() bool { return false }
func (r *runsModel) TakesText() bool    { return false }

func (r *runsModel) ShortHelp() []key.Binding {
	k := r.c.keys
	other := k.Slowest
	if r.kind == store.RunsSlowest {
		other = k.Failed
	}
	return []key.Binding{k.Back, k.Timeline, other, k.CopyRun, k.move("runs"), k.Window1To4()}
}

func (r *runsModel) FullHelp() [][]key.Binding {
	k := r.c.keys
	return [][]key.Binding{{k.Back, k.Timeline, k.Failed, k.Slowest, k.CopyRun}, {k.Up, k.Down, k.Top, k.Bottom, k.PageUp, k.PageDown}}
}

func (r *runsModel) read(force bool) tea.Cmd {
	if r.id == "" || r.inflight && !force {
		return nil
	}
	r.inflight = true
	r.asked = r.c.nextSeq()
	return fetchRuns(r.c.ctx, r.c.src, r.id, r.c.sess.window, r.kind, runsLimit, r.asked)
}

func (r *runsModel) Update(msg tea.Msg) (screen, tea.Cmd) {
	cmd := r.update(msg)
	r.scroll()
	return r, cmd
}

func (r *runsModel) update(msg tea.Msg) tea.Cmd {
	k := r.c.keys
	switch msg := msg.(type) {
	case openRunsMsg:
		if msg.id != r.id || msg.kind != r.kind {
			r.id, r.kind, r.loaded, r.sel, r.off, r.selID, r.shown = msg.id, msg.kind, false, 0, 0, "", 0
			r.data = store.RunList{}
		}
		r.title = msg.title
		return r.read(true)
	case focusMsg:
		r.active = msg.active
	case pollMsg:
		if r.active {
			return r.read(msg.force)
		}
	case windowMsg:
		if r.id != "" {
			r.loaded = false // the runs shown are another window's
			if r.active {
				return r.read(true)
			}
		}
	case RunsLoadedMsg:
		if msg.Seq >= r.asked {
			r.inflight = false
		}
		if msg.Err != nil {
			r.c.send(readFailedMsg{what: fmt.Sprintf("reading the %s runs of %s", msg.Kind, msg.WorkflowID), err: msg.Err})
			return nil
		}
		if msg.WorkflowID != r.id || msg.Kind != r.kind || msg.Window != r.c.sess.window || msg.Seq < r.shown {
			return nil
		}
		r.shown = msg.Seq
		r.data, r.loaded = msg.List, true
		r.reselect()
		r.c.send(readOKMsg{})
	case tea.KeyMsg:
		switch {
		case key.Matches(msg, k.Back):
			r.c.send(backMsg{})
		case key.Matches(msg, k.Up):
			r.move(-1)
		case key.Matches(msg, k.Down):
			r.move(1)
		case key.Matches(msg, k.PageUp):
			r.move(-max(1, r.rowsHeight()-1))
		case key.Matches(msg, k.PageDown):
			r.move(max(1, r.rowsHeight()-1))
		case key.Matches(msg, k.Top):
			r.move(-len(r.data.Runs))
		case key.Matches(msg, k.Bottom):
			r.move(len(r.data.Runs))
		case key.Matches(msg, k.Failed), key.Matches(msg, k.Slowest):
			kind := store.RunsFailed
			if key.Matches(msg, k.Slowest) {
				kind = store.RunsSlowest
			}
			if kind != r.kind {
				return r.update(openRunsMsg{id: r.id, kind: kind, title: r.title})
			}
		case key.Matches(msg, k.Timeline):
			if run := r.selected(); run != nil {
				r.c.send(navMsg{to: scrRun, open: openRunMsg{id: run.RunID}})
			}
		case key.Matches(msg, k.CopyRun):
			if run := r.selected(); run != nil {
				return copyToClipboard(r.c.opts.Output, run.RunID)
			}
		}
	}
	return nil
}

func (r *runsModel) selected() *store.RunSummary {
	if !r.loaded || r.sel < 0 || r.sel >= len(r.data.Runs) {
		return nil
	}
	return &r.data.Runs[r.sel]
}

// reselect keeps the selected run selected after a read.
func (r *runsModel) reselect() {
	r.sel = 0
	for i, run := range r.data.Runs {
		if run.RunID == r.selID {
			r.sel = i
		}
	}
	r.move(0)
}

func (r *runsModel) move(d int) {
	r.sel = max(0, min(r.sel+d, len(r.data.Runs)-1))
	if run := r.selected(); run != nil {
		r.selID = run.RunID
	}
	r.scroll()
}

// Layout: a title, a summary line, the header, the rows, and three lines
// on the selected run (its id and its error, wrapped).
const runsDetailLines = 3

func (r *runsModel) rowsHeight() int { return max(1, r.height-3-runsDetailLines) }

func (r *runsModel) scroll() {
	h := r.rowsHeight()
	if r.sel < r.off {
		r.off = r.sel
	}
	if r.sel >= r.off+h {
		r.off = r.sel - h + 1
	}
	r.off = max(0, min(r.off, len(r.data.Runs)-h))
}

// runsLayout is the columns' widths at a width: the node and the error
// take what the fixed columns leave.
type runsLayout struct {
	status    bool
	node, err int
}

const (
	runStartedW = 14 // 01-02 15:04:05
	runTookW    = 8
	runStatusW  = 9
	runAttW     = 3
	runHTTPW    = 4
)

func runsLayoutFor(width int, kind store.RunKind) runsLayout {
	l := runsLayout{status: kind == store.RunsSlowest}
	fixed := runStartedW + 1 + runTookW + 1 + runAttW + 1 + runHTTPW + 1
	if l.status {
		fixed += runStatusW + 1
	}
	rest := max(20, width-fixed)
	l.node = min(20, max(10, rest/3))
	l.err = max(8, rest-l.node-1)
	return l
}

func (l runsLayout) header() string {
	parts := []string{fit("Started (UTC)", runStartedW), fitRight("Took", runTookW)}
	if l.status {
		parts = append(parts, fit("Status", runStatusW))
	}
	parts = append(parts, fit("Step (node)", l.node), fitRight("Att", runAttW), fitRight("HTTP", runHTTPW), fit("Error", l.err))
	return strings.Join(parts, " ")
}

func (l runsLayout) row(run *store.RunSummary) string {
	took := dash
	if d := run.Duration(); d != nil {
		took = fmtMsVal(float64(*d) / float64(time.Millisecond))
	}
	att, http := dash, dash
	if run.Attempts > 0 {
		att = fmt.Sprint(run.Attempts)
	}
	if run.HTTPStatus != nil {
		http = fmt.Sprint(*run.HTTPStatus)
	}
	node := run.Node.String()
	if node == "" {
		node = dash
	}
	parts := []string{fit(run.StartedAt.UTC().Format("01-02 15:04:05"), runStartedW), fitRight(took, runTookW)}
	if l.status {
		parts = append(parts, fit(run.Status.String(), runStatusW))
	}
	// The error on one line (white space, line breaks included, made one
	// space; every control character a visible escape), cut to its cells.
	parts = append(parts, fit(node, l.node), fitRight(att, runAttW), fitRight(http, runHTTPW), fit(run.Error.Line(), l.err))
	return strings.Join(parts, " ")
}

func (r *runsModel) View() string {
	st := r.c.styles
	if r.id == "" {
		return st.Muted.Render("open a workflow's detail and press f (failed runs) or l (slowest runs)")
	}
	what := "Failed runs"
	if r.kind == store.RunsSlowest {
		what = "Slowest runs"
	}
	out := []string{st.Title.Render(fit(what+" · "+r.title, r.width))}
	if !r.loaded {
		out = append(out, st.Muted.Render("loading runs…"))
		return strings.Join(out, "\n")
	}
	runs := r.data.Runs
	win := string(r.data.Window)
	var summary string
	switch {
	case r.kind == store.RunsFailed:
		summary = fmt.Sprintf("%s started in the last %s, newest first (at most %d)", plural(len(runs), "failed run", "failed runs"), win, r.data.Limit)
	case r.data.Capped:
		summary = fmt.Sprintf("the slowest of the newest %d finished runs of the last %s (%d per outcome at most)", r.data.Scanned, win, store.SlowestScan)
	default:
		summary = fmt.Sprintf("the slowest of %s started in the last %s", plural(int(r.data.Scanned), "finished run", "finished runs"), win)
	}
	if n := len(runs); n > r.rowsHeight() {
		summary += fmt.Sprintf(" · %d–%d of %d", r.off+1, min(n, r.off+r.rowsHeight()), n)
	}
	out = append(out, st.Muted.Render(fit(summary, r.width)))
	l := runsLayoutFor(r.width, r.kind)
	out = append(out, st.Header.Render(fit(l.header(), r.width)))
	if len(runs) == 0 {
		empty := fmt.Sprintf("no failed run of this workflow started in the last %s", win)
		if r.kind == store.RunsSlowest {
			empty = fmt.Sprintf("no finished run of this workflow started in the last %s", win)
		}
		out = append(out, st.Muted.Render(fit(empty, r.width)))
	}
	for i := r.off; i < len(runs) && i < r.off+r.rowsHeight(); i++ {
		style := st.Plain()
		if r.kind == store.RunsSlowest && runs[i].Status.Is("failed") {
			style = st.Bad
		}
		if i == r.sel {
			style = st.Selected.Inherit(style)
		}
		out = append(out, style.Render(fit(l.row(&runs[i]), r.width)))
	}
	// The selected run below the rows, at the bottom of the body.
	if run := r.selected(); run != nil {
		for len(out) < r.height-runsDetailLines {
			out = append(out, "")
		}
		out = append(out, r.detailLines(run)...)
	}
	return strings.Join(out, "\n")
}

// detailLines are the selected run's id and the start of its error,
// wrapped over the lines left (runsDetailLines).
func (r *runsModel) detailLines(run *store.RunSummary) []string {
	st := r.c.styles
	head := "run " + run.RunID + " · enter: timeline · y: copy the id"
	lines := []string{st.Muted.Render(fit(head, r.width))}
	if run.Error.IsEmpty() {
		return lines
	}
	label := "error: "
	if run.ErrorChars > store.ListErrorChars {
		label = fmt.Sprintf("error (%d characters, whole in the timeline): ", run.ErrorChars)
	}
	wrapped := strings.Split(ansi.Wrap(label+run.Error.Line(), max(10, r.width), ""), "\n")
	room := runsDetailLines - 1
	for i := 0; i < len(wrapped) && i < room; i++ {
		w := wrapped[i]
		if i == room-1 && len(wrapped) > room {
			w = ansi.Truncate(w, r.width-1, "") + "…"
		}
		lines = append(lines, fit(w, r.width))
	}
	return lines
}
