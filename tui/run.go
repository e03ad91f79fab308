package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/meshtop/meshtop/data/store"
)

// runModel is a run's timeline: the run's own start, finish and status, and
// every step — its start (from the run's), duration, attempts, HTTP statuses
// and outcome — with each failed attempt's error whole, wrapped (attempts
// whose errors are the same share one). ↑↓ scroll; y copies the run id.
// An open run is read again at every poll.
type runModel struct {
	c             *common
	width, height int
	active        bool

	id           string
	asked, shown int
	inflight     bool
	data         store.RunTimeline
	loaded       bool
	gen          int // counts the data taken: the drawn lines key on it

	off   int
	drawn runDrawing
}

// runDrawing is the timeline drawn for a width, from data gen, with the
// styles: the fixed lines at the top and the lines that scroll.
type runDrawing struct {
	gen, width int
	styles     styleID
	top, body  []string
}

func newRun(c *common) *runModel { return &runModel{c: c} }

func (r *runModel) SetSize(w, h int) {
	r.width, r.height = w, h
	r.clamp()
}

func (r *runModel) CapturesKeys() bool { return false }
func (r *runModel) TakesText() bool    { return false }

func (r *runModel) ShortHelp() []key.Binding {
	k := r.c.keys
	items := []key.Binding{k.Back}
	if r.scrolls() {
		items = append(items, k.move("scroll"), k.PageDown)
	}
	return append(items, k.CopyRun)
}

func (r *runModel) FullHelp() [][]key.Binding {
	k := r.c.keys
	return [][]key.Binding{{k.Back, k.CopyRun}, {k.Up, k.Down, k.Top, k.Bottom, k.PageUp, k.PageDown}}
}

func (r *runModel) read(force bool) tea.Cmd {
	if r.id == "" || r.inflight && !force {
		return nil
	}
	r.inflight = true
	r.asked = r.c.nextSeq()
	return fetchRun(r.c.ctx, r.c.src, r.id, r.asked)
}

// open: the run has not finished (running or paused), so its steps move.
func (r *runModel) open() bool { return r.loaded && r.data.Run.FinishedAt == nil }

func (r *runModel) Update(msg tea.Msg) (screen, tea.Cmd) {
	cmd := r.update(msg)
	r.clamp()
	return r, cmd
}

func (r *runModel) update(msg tea.Msg) tea.Cmd {
	k := r.c.keys
	switch msg := msg.(type) {
	case openRunMsg:
		if msg.id != r.id {
			r.id, r.loaded, r.off, r.shown = msg.id, false, 0, 0
			r.data = store.RunTimeline{}
		}
		return r.read(true)
	case focusMsg:
		r.active = msg.active
	case pollMsg:
		if r.active && (r.open() || !r.loaded) {
			return r.read(msg.force)
		}
	case RunLoadedMsg:
		if msg.Seq >= r.asked {
			r.inflight = false
		}
		if msg.Err != nil {
			r.c.send(readFailedMsg{what: "reading run " + msg.ID, err: msg.Err})
			return nil
		}
		if msg.ID != r.id || msg.Seq < r.shown {
			return nil
		}
		r.shown = msg.Seq
		r.data, r.loaded = msg.Timeline, true
		r.gen++
		r.c.send(readOKMsg{})
	case tea.KeyMsg:
		page := max(1, r.bodyRows()-1)
		switch {
		case key.Matches(msg, k.Back):
			r.c.send(backMsg{})
		case key.Matches(msg, k.Up):
			r.off--
		case key.Matches(msg, k.Down):
			r.off++
		case key.Matches(msg, k.PageUp):
			r.off -= page
		case key.Matches(msg, k.PageDown):
			r.off += page
		case key.Matches(msg, k.Top):
			r.off = 0
		case key.Matches(msg, k.Bottom):
			r.off = len(r.drawing().body)
		case key.Matches(msg, k.CopyRun):
			if r.id != "" {
				return copyToClipboard(r.c.opts.Output, r.id)
			}
		}
	}
	return nil
}

func (r *runModel) bodyRows() int { return max(1, r.height-len(r.drawing().top)-1) }

func (r *runModel) scrolls() bool { return r.loaded && len(r.drawing().body) > r.bodyRows() }

func (r *runModel) clamp() {
	if !r.loaded {
		r.off = 0
		return
	}
	r.off = max(0, min(r.off, len(r.drawing().body)-r.bodyRows()))
}

// drawing returns the timeline's lines for the data, width and styles,
// drawing them when one of those changed.
func (r *runModel) drawing() *runDrawing {
	id := r.c.styles.id()
	if r.drawn.gen == r.gen && r.drawn.width == r.width && r.drawn.styles == id && !r.c.noCache {
		return &r.drawn
	}
	d := runDrawing{gen: r.gen, width: r.width, styles: id}
	d.top, d.body = r.draw()
	if r.c.noCache {
		return &d
	}
	r.drawn = d
	return &r.drawn
}

// Column widths of the steps' table; the node and the HTTP statuses take
// what is left.
const (
	stepTypeW    = 9
	stepStartW   = 8
	stepTookW    = 7
	stepAttW     = 3
	stepOutcomeW = 10
)

type stepLayout struct{ node, http int }

func stepLayoutFor(width int) stepLayout {
	fixed := stepTypeW + 1 + stepStartW + 1 + stepTookW + 1 + stepAttW + 1 + 1 + stepOutcomeW + 1
	rest := max(24, width-fixed)
	node := min(24, max(12, rest/2))
	return stepLayout{node: node, http: max(8, rest-node)}
}

func (l stepLayout) header() string {
	return strings.Join([]string{fit("Step (node)", l.node), fit("Type", stepTypeW), fitRight("Start", stepStartW),
		fitRight("Took", stepTookW), fitRight("Att", stepAttW), fit("HTTP", l.http), fit("Outcome", stepOutcomeW)}, " ")
}

func (r *runModel) draw() (top, body []string) {
	st := r.c.styles
	w := r.width
	run := r.data.Run
	top = append(top, st.Title.Render(fit("Run "+run.RunID, w)))
	wf := fmt.Sprintf("%s v%d (%s) · %s", run.WorkflowName, run.Version, run.Slug, run.ProjectName)
	top = append(top, st.Muted.Render(fit(wf, w)))
	finished, took := "not finished", "running for "+fmtDur(r.c.now().Sub(run.StartedAt))
	if run.FinishedAt != nil {
		layout := "15:04:05.000"
		if run.FinishedAt.UTC().Format("2006-01-02") != run.StartedAt.UTC().Format("2006-01-02") {
			layout = "2006-01-02 15:04:05.000"
		}
		finished = "finished " + run.FinishedAt.UTC().Format(layout)
		took = "took " + fmtMsVal(float64(run.FinishedAt.Sub(run.StartedAt))/float64(time.Millisecond))
	}
	statusStyle := st.Plain()
	switch {
	case run.Status.Is("failed"):
		statusStyle = st.Bad
	case run.Status.Is("succeeded"):
		statusStyle = st.Good
	}
	info := pairLines(w, "status "+run.Status.String(), "started "+run.StartedAt.UTC().Format("2006-01-02 15:04:05.000 UTC"), finished, took)
	info[0] = statusStyle.Render(info[0])
	top = append(top, info...)
	l := stepLayoutFor(w)
	top = append(top, st.Header.Render(fit(l.header(), w)))

	if len(r.data.Steps) == 0 {
		body = append(body, st.Muted.Render(fit("no step events", w)))
	}
	for _, s := range r.data.Steps {
		start, tookS := fmtOffset(s.StartedAt.Sub(run.StartedAt)), dash
		if d := s.Duration(); d != nil {
			tookS = fmtMsVal(float64(*d) / float64(time.Millisecond))
		}
		var codes []string
		for _, c := range s.HTTPStatuses {
			codes = append(codes, fmt.Sprint(c))
		}
		http := strings.Join(codes, " ")
		if http == "" {
			http = dash
		}
		node := s.NodeID.String()
		if s.Span > 1 {
			node += fmt.Sprintf(" (#%d)", s.Span)
		}
		row := strings.Join([]string{fit(node, l.node), fit(s.NodeType.String(), stepTypeW), fitRight(start, stepStartW),
			fitRight(tookS, stepTookW), fitRight(fmt.Sprint(s.Attempts), stepAttW), fit(http, l.http), fit(s.Outcome, stepOutcomeW)}, " ")
		style := st.Plain()
		switch s.Outcome {
		case "failed":
			style = st.Bad
		case "retrying", "unfinished":
			style = st.Warn
		case "running":
			style = st.Accent
		}
		body = append(body, style.Render(fit(row, w)))
		body = append(body, r.errorLines(s)...)
	}
	if r.data.EventsCut {
		body = append(body, st.Warn.Render(fit(fmt.Sprintf("the run has more step events than the %d read: later steps are not shown", store.TimelineEvents), w)))
	}
	return top, body
}

// errorLines are a step's failed attempts' errors, whole, wrapped under it
// with a hanging indent; consecutive attempts with the same error share
// one ("attempts 1–5").
func (r *runModel) errorLines(s store.RunStep) []string {
	st := r.c.styles
	var out []string
	const indent = 4
	for i := 0; i < len(s.Errors); {
		j := i + 1
		for j < len(s.Errors) && s.Errors[j].Error == s.Errors[i].Error && s.Errors[j].Chars == s.Errors[i].Chars {
			j++
		}
		e := s.Errors[i]
		label := fmt.Sprintf("attempt %d", e.Attempt)
		switch {
		case e.Attempt <= 0 && j-i > 1:
			label = fmt.Sprintf("%d failed attempts", j-i) // step_failed without an attempt number
		case e.Attempt <= 0:
			label = "failed attempt"
		case j-i > 1:
			label = fmt.Sprintf("attempts %d–%d", e.Attempt, s.Errors[j-1].Attempt)
		}
		text := e.Error.Lines()
		if len(text) == 0 {
			text = []string{"(no error text)"}
		}
		if e.Chars > store.TimelineErrorChars {
			text = append(text, fmt.Sprintf("(the first %d of %d characters)", store.TimelineErrorChars, e.Chars))
		}
		head := strings.Repeat(" ", indent) + label + ": "
		out = append(out, st.Muted.Render(fit(head, r.width)))
		for _, line := range text {
			for _, wl := range strings.Split(ansi.Wrap(line, max(10, r.width-indent-2), ""), "\n") {
				out = append(out, fit(strings.Repeat(" ", indent+2)+wl, r.width))
			}
		}
		i = j
	}
	return out
}

// fmtOffset is a time after the run's start: +5ms, +1.20s, +3m05s.
func fmtOffset(d time.Duration) string {
	if d < 0 {
		return "−" + fmtMsVal(float64(-d)/float64(time.Millisecond))
	}
	return "+" + fmtMsVal(float64(d)/float64(time.Millisecond))
}

func (r *runModel) View() string {
	st := r.c.styles
	if r.id == "" {
		return st.Muted.Render("open a run from a workflow's failed or slowest runs (enter)")
	}
	if !r.loaded {
		return st.Muted.Render("loading run " + r.id + "…")
	}
	d := r.drawing()
	out := slices.Clone(d.top)
	rows := r.bodyRows()
	end := min(len(d.body), r.off+rows)
	out = append(out, d.body[r.off:end]...)
	if len(d.body) > rows {
		for len(out) < len(d.top)+rows {
			out = append(out, "")
		}
		out = append(out, st.Muted.Render(fit(fmt.Sprintf("lines %d–%d of %d (↑↓ pgup pgdn g G)", r.off+1, end, len(d.body)), r.width)))
	}
	return strings.Join(out, "\n")
}
