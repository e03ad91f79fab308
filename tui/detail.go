package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/NimbleMarkets/ntcharts/linechart"
	tslc "github.com/NimbleMarkets/ntcharts/linechart/timeserieslinechart"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/meshtop/meshtop/data/store"
)

// Chart heights: the charts give up lines on a short terminal so a few
// step rows still show, down to minChartHeight.
const (
	maxChartHeight = 10
	minChartHeight = 5
)

// detailModel is one workflow's page: the overview row's numbers, three
// time-series charts and the step hotspot table.
type detailModel struct {
	c             *common
	width, height int
	active        bool

	id           string
	asked, shown int
	inflight     bool
	data         store.WorkflowDetail
	window       store.Window // of data
	loaded       bool
	gen          int // counts the data taken: the charts' cache keys on it
	stepOff      int

	charts chartCache
}

func newDetail(c *common) *detailModel { return &detailModel{c: c} }

func (d *detailModel) SetSize(w, h int) {
	d.width, d.height = w, h
	d.clampSteps()
}

func (d *detailModel) CapturesKeys() bool { return false }
func (d *detailModel) TakesText() bool    { return false }

// ShortHelp offers moving only where something moves: the step table, when
// it has more rows than show.
func (d *detailModel) ShortHelp() []key.Binding {
	k := d.c.keys
	items := []key.Binding{k.Back, k.Failed, k.Slowest}
	if d.stepsScroll() {
		items = append(items, k.move("steps"))
	}
	return append(items, k.Window1To4(), k.Copy, k.NextScreen)
}

func (d *detailModel) FullHelp() [][]key.Binding {
	k := d.c.keys
	return [][]key.Binding{{k.Back, k.Failed, k.Slowest, k.Copy}, {k.Up, k.Down, k.Top, k.Bottom}}
}

func (d *detailModel) read(force bool) tea.Cmd {
	if d.id == "" || d.inflight && !force {
		return nil
	}
	d.inflight = true
	d.asked = d.c.nextSeq()
	return fetchWorkflow(d.c.ctx, d.c.src, d.id, d.c.sess.window, d.asked)
}

func (d *detailModel) Update(msg tea.Msg) (screen, tea.Cmd) {
	cmd := d.update(msg)
	d.clampSteps()
	return d, cmd
}

func (d *detailModel) update(msg tea.Msg) tea.Cmd {
	k := d.c.keys
	switch msg := msg.(type) {
	case openWorkflowMsg:
		if msg.id != d.id {
			d.id, d.loaded, d.stepOff, d.shown = msg.id, false, 0, 0
			d.data = store.WorkflowDetail{}
		}
		return d.read(true)
	case focusMsg:
		d.active = msg.active
	case pollMsg:
		if d.active {
			return d.read(msg.force)
		}
	case windowMsg:
		if d.id != "" {
			d.loaded = false // the data shown is another window's
			if d.active {
				return d.read(true)
			}
		}
	case refreshEventMsg:
		if d.active && msg.ev.Status != "running" {
			return d.read(true)
		}
	case WorkflowLoadedMsg:
		if msg.Seq >= d.asked {
			d.inflight = false
		}
		if msg.Err != nil {
			d.c.send(readFailedMsg{what: "reading workflow " + msg.ID, err: msg.Err})
			return nil
		}
		if msg.ID != d.id || msg.Window != d.c.sess.window || msg.Seq < d.shown {
			return nil
		}
		d.shown = msg.Seq
		d.data, d.window, d.loaded = msg.Detail, msg.Window, true
		d.gen++
		d.c.send(readOKMsg{})
	case tea.KeyMsg:
		switch {
		case key.Matches(msg, k.Back):
			d.c.send(backMsg{})
		case key.Matches(msg, k.Up):
			d.stepOff--
		case key.Matches(msg, k.Down):
			d.stepOff++
		case key.Matches(msg, k.Top):
			d.stepOff = 0
		case key.Matches(msg, k.Bottom):
			d.stepOff = len(d.data.Steps)
		case key.Matches(msg, k.Copy):
			if d.id != "" {
				return copyToClipboard(d.c.opts.Output, d.id)
			}
		case key.Matches(msg, k.Failed), key.Matches(msg, k.Slowest):
			// The drill-down: the runs behind the numbers.
			if d.id != "" {
				kind := store.RunsFailed
				if key.Matches(msg, k.Slowest) {
					kind = store.RunsSlowest
				}
				title := d.id
				if d.loaded {
					w := d.data.Metrics
					title = fmt.Sprintf("%s v%d (%s)", w.Name, w.Version, w.Slug)
				}
				d.c.send(navMsg{to: scrRuns, open: openRunsMsg{id: d.id, kind: kind, title: title}})
			}
		}
	}
	return nil
}

// detailLayout is how the page shares the body: the lines above the
// charts, the charts' height and the step rows that show.
type detailLayout struct {
	top      []string
	chartH   int
	stepRows int
}

func (d *detailModel) layout() detailLayout {
	var l detailLayout
	if !d.loaded {
		return l
	}
	st := d.c.styles
	w := d.data.Metrics
	now := d.c.now()
	title := fmt.Sprintf("%s v%d (%s) · %s · %s", w.Name, w.Version, w.Slug, w.ProjectName, w.Status)
	id := "id " + w.WorkflowID
	if ansi.StringWidth(title)+2+len(id) <= d.width {
		l.top = append(l.top, st.Title.Render(title)+"  "+st.Muted.Render(id))
	} else {
		// Narrow: the id gets a line of its own rather than being cut.
		l.top = append(l.top, st.Title.Render(fit(title, d.width)), st.Muted.Render(fit(id, d.width)))
	}
	// Label–value pairs wrap between pairs, never inside one.
	l.top = append(l.top, pairLines(d.width,
		"window "+string(w.Window), "runs "+fmtCount(w.Runs), fmt.Sprintf("running %d", w.Running),
		fmt.Sprintf("succeeded %d", w.Succeeded), fmt.Sprintf("failed %d", w.Failed), fmt.Sprintf("canceled %d", w.Canceled),
		"success "+fmtPct(w.SuccessRate), "failure "+fmtPct(w.FailureRate))...)
	l.top = append(l.top, pairLines(d.width,
		"duration p50 "+fmtMs(w.P50Ms), "p95 "+fmtMs(w.P95Ms), "p99 "+fmtMs(w.P99Ms), "avg "+fmtMs(w.AvgMs),
		"min "+fmtMs(w.MinMs), "max "+fmtMs(w.MaxMs),
		"run time "+fmtDur(time.Duration(w.ResourceSeconds*float64(time.Second))), "last failure "+fmtAgeAgo(w.LastFailureAt, now))...)
	l.top = append(l.top, "")
	// The charts take what is left after the header, their titles, and
	// the step table's header and first rows.
	steps := max(1, min(5, len(d.data.Steps)))
	l.chartH = max(minChartHeight, min(maxChartHeight, d.height-len(l.top)-3-steps))
	// Titles, charts, a blank line and the steps' header.
	l.stepRows = max(0, d.height-len(l.top)-1-l.chartH-1-1)
	return l
}

// stepsScroll tells whether the step table has more rows than show.
func (d *detailModel) stepsScroll() bool {
	return d.loaded && len(d.data.Steps) > d.layout().stepRows
}

func (d *detailModel) clampSteps() {
	d.stepOff = max(0, min(d.stepOff, len(d.data.Steps)-d.layout().stepRows))
}

// chartCache holds the three drawn charts with everything they are drawn
// from: the data, the size, the time range (the clock's hour) and the
// styles.
type chartCache struct {
	key      chartKey
	charts   [3]string
	p95Unit  string  // the duration axis's unit (ms, s, min)
	succFrom float64 // where the success axis starts (it zooms)
}

type chartKey struct {
	gen, width, h int
	window        store.Window
	from, to      time.Time
	styles        styleID
}

// drawnCharts returns the charts for the data, size and clock, drawing
// them when one of those changed.
func (d *detailModel) drawnCharts(h int) *chartCache {
	from, to := detailRange(d.c.now(), d.window)
	k := chartKey{gen: d.gen, width: d.width, h: h, window: d.window, from: from, to: to, styles: d.c.styles.id()}
	if d.charts.key == k && !d.c.noCache {
		return &d.charts
	}
	cc := drawCharts(d.c, d.data, d.window, from, to, d.width, h)
	cc.key = k
	if d.c.noCache {
		return &cc
	}
	d.charts = cc
	return &d.charts
}

func drawCharts(c *common, data store.WorkflowDetail, win store.Window, from, to time.Time, width, h int) chartCache {
	cw := chartWidth(width)
	var runs, succ, p95 []tslc.TimePoint
	maxRuns, maxP95, minSucc := 1.0, 0.0, 100.0
	for _, p := range data.Hourly {
		if p.Hour.Before(from) || !p.Hour.Before(to) {
			continue
		}
		t := p.Hour.Add(30 * time.Minute)
		runs = append(runs, tslc.TimePoint{Time: t, Value: float64(p.Runs)})
		maxRuns = math.Max(maxRuns, float64(p.Runs))
		if done := p.Succeeded + p.Failed + p.Canceled; done > 0 {
			v := 100 * float64(p.Succeeded) / float64(done)
			succ = append(succ, tslc.TimePoint{Time: t, Value: v})
			minSucc = math.Min(minSucc, v)
		}
		if p.P95Ms != nil {
			p95 = append(p95, tslc.TimePoint{Time: t, Value: *p.P95Ms})
			maxP95 = math.Max(maxP95, *p.P95Ms)
		}
	}
	// Durations in the unit that fits the largest value.
	unit, div := durationUnit(maxP95)
	for i := range p95 {
		p95[i].Value /= div
	}
	var cc chartCache
	cc.p95Unit = unit
	cc.succFrom = successFloor(minSucc)
	st := c.styles
	yStep, n := yLabelStep(h)
	cc.charts[0] = drawChart(runs, from, to, 0, countCeil(maxRuns, n), cw, h, yStep, st.Accent, st, win, intLabel)
	cc.charts[1] = drawChart(succ, from, to, cc.succFrom, 100, cw, h, yStep, st.Good, st, win, numLabel)
	cc.charts[2] = drawChart(p95, from, to, 0, countCeil(maxP95/div, n), cw, h, yStep, st.Warn, st, win, numLabel)
	return cc
}

// yLabelStep is how many rows apart the y labels of an h-line chart sit,
// and how many label intervals that makes: the step divides the plot's
// rows, so a top value divisible by the intervals labels whole numbers.
func yLabelStep(h int) (step, intervals int) {
	rows := max(1, h-2) // the x axis and its labels take two lines
	for _, d := range []int{3, 4, 2, 5} {
		if rows%d == 0 {
			return d, rows / d
		}
	}
	return rows, 1
}

// detailRange is the charts' time span: DetailSpan of the window, ending
// with the current hour.
func detailRange(now time.Time, w store.Window) (time.Time, time.Time) {
	end := now.Truncate(time.Hour).Add(time.Hour)
	return end.Add(-store.DetailSpan(w)), end
}

// durationUnit picks the unit of the duration axis for a largest value in
// milliseconds: ms below a second, s below a minute, min above.
func durationUnit(maxMs float64) (string, float64) {
	switch {
	case maxMs < 1000:
		return "ms", 1
	case maxMs < 60_000:
		return "s", 1000
	}
	return "min", 60_000
}

// successFloor is where the success-rate axis starts: just below the
// worst hour, on a round number, so 99.6% and 100% do not look alike.
func successFloor(worst float64) float64 {
	for _, f := range []float64{99, 98, 95, 90, 80, 50} {
		if worst >= f+0.1*(100-f) {
			return f
		}
	}
	return 0
}

// countCeil is the top of an axis: at least v, and a whole number the
// label intervals divide into whole numbers.
func countCeil(v float64, intervals int) float64 {
	intervals = max(1, intervals)
	return math.Ceil(math.Max(v, 1)/float64(intervals)) * float64(intervals)
}

func chartWidth(width int) int { return max(20, (width-2)/3) }

// yLabelWidth is the width every chart's y labels are padded to, so the
// three plots start in the same column and share one time axis.
const yLabelWidth = 5

// intLabel labels a count axis with whole numbers only.
func intLabel(_ int, v float64) string {
	if math.Abs(v-math.Round(v)) > 1e-6 {
		return strings.Repeat(" ", yLabelWidth)
	}
	return fmt.Sprintf("%*d", yLabelWidth, int64(math.Round(v)))
}

func numLabel(_ int, v float64) string { return fmt.Sprintf("%*s", yLabelWidth, trimFloat(v)) }

// drawChart renders one time-series chart. The X range is always set from
// the model clock (ntcharts would otherwise use time.Now()). The time
// labels are the chart's own (timeAxis): ntcharts writes a label at every
// few columns from the left and none where it would run past the right
// edge, so the newest hours went unlabelled and the rounding made the
// gaps uneven.
func drawChart(pts []tslc.TimePoint, from, to time.Time, ymin, ymax float64, w, h, yStep int, line lipgloss.Style, st Styles, win store.Window, ylabel linechart.LabelFormatter) string {
	ch := tslc.New(w, h,
		tslc.WithTimeRange(from, to),
		tslc.WithYRange(ymin, ymax),
		tslc.WithXYSteps(2, yStep),
		tslc.WithXLabelFormatter(func(int, float64) string { return "" }),
		tslc.WithYLabelFormatter(ylabel),
		tslc.WithAxesStyles(st.Muted, st.Muted),
		tslc.WithStyle(line),
	)
	for _, p := range pts {
		ch.Push(p)
	}
	ch.DrawBraille()
	lines := strings.Split(ch.View(), "\n")
	if len(lines) < 2 {
		return ch.View()
	}
	// The plot starts right of the y axis, drawn after the y labels.
	lines[len(lines)-1] = st.Muted.Render(timeAxis(from, to, yLabelWidth+1, w, win))
	return strings.Join(lines, "\n")
}

// labelSteps are the spacings time labels may take, finest first.
var labelSteps = []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour, 6 * time.Hour, 8 * time.Hour,
	12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 72 * time.Hour, 7 * 24 * time.Hour, 10 * 24 * time.Hour, 15 * 24 * time.Hour}

// timeAxis is the label line under a chart whose plot spans cells [x0, w)
// for times [from, to]: labels at to, to − step, to − 2·step, … (the right
// edge always labelled, the gaps even), with the finest step whose labels
// do not touch. A label is centred on its time, kept inside the plot at
// the edges; two cells at least between two labels. Hours read 15:04,
// days (7d, 30d) 01/02.
func timeAxis(from, to time.Time, x0, w int, win store.Window) string {
	layout := "15:04"
	if win.Duration() > 24*time.Hour {
		layout = "01/02"
	}
	span := to.Sub(from)
	plot := w - x0 // cells of the plot
	if span <= 0 || plot < 5 {
		return strings.Repeat(" ", max(0, w))
	}
	col := func(t time.Time) int {
		return x0 + int(math.Round(float64(t.Sub(from))/float64(span)*float64(plot-1)))
	}
	place := func(step time.Duration) ([]int, []string, bool) {
		var starts []int
		var labels []string
		end := w + 2 // the start of the label to the right (none yet)
		for t := to; !t.Before(from); t = t.Add(-step) {
			s := t.UTC().Format(layout)
			n := len(s)
			x := max(x0, min(col(t)-n/2, w-n))
			if x+n+2 > end { // too close to the label on its right
				return nil, nil, false
			}
			starts, labels, end = append(starts, x), append(labels, s), x
		}
		return starts, labels, true
	}
	buf := []rune(strings.Repeat(" ", w))
	for _, step := range labelSteps {
		if step < span/time.Duration(plot) || (layout == "01/02" && step < 24*time.Hour) {
			continue
		}
		if starts, labels, ok := place(step); ok {
			for i, x := range starts {
				copy(buf[x:], []rune(labels[i]))
			}
			return string(buf)
		}
	}
	// Not even the coarsest step fits: the right edge alone.
	s := to.UTC().Format(layout)
	copy(buf[max(0, w-len(s)):], []rune(s))
	return string(buf)
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// pairLines joins label–value pairs with two spaces into as few lines of
// at most width cells as they need, breaking only between pairs.
func pairLines(width int, pairs ...string) []string {
	var out []string
	line := ""
	for _, p := range pairs {
		switch {
		case line == "":
			line = p
		case ansi.StringWidth(line)+2+ansi.StringWidth(p) <= width:
			line += "  " + p
		default:
			out = append(out, line)
			line = p
		}
	}
	return append(out, fit(line, width))
}

func (d *detailModel) View() string {
	st := d.c.styles
	if d.id == "" {
		return st.Muted.Render("select a workflow in the overview and press enter")
	}
	if !d.loaded {
		return st.Muted.Render("loading workflow " + d.id + "…")
	}
	now := d.c.now()
	l := d.layout()
	out := append([]string(nil), l.top...)
	cc := d.drawnCharts(l.chartH)
	cw := chartWidth(d.width)
	span := fmtEvery(store.DetailSpan(d.window))
	succ := "success rate %"
	if cc.succFrom > 0 {
		succ = fmt.Sprintf("success %% (from %g%%)", cc.succFrom)
	}
	titles := []string{"runs / hour · last " + span, succ, "p95 duration (" + cc.p95Unit + ")"}
	var heads []string
	for _, t := range titles {
		heads = append(heads, fit(st.Header.Render(t), cw))
	}
	out = append(out, strings.Join(heads, " "))
	out = append(out, lipgloss.JoinHorizontal(lipgloss.Top, cc.charts[0], " ", cc.charts[1], " ", cc.charts[2]))

	// Step hotspots.
	steps := d.data.Steps
	pos := ""
	if len(steps) > l.stepRows && l.stepRows > 0 {
		pos = fmt.Sprintf("steps %d–%d of %d (↑↓)", d.stepOff+1, min(len(steps), d.stepOff+l.stepRows), len(steps))
	}
	out = append(out, st.Muted.Render(fit(pos, d.width)))
	out = append(out, st.Header.Render(fmt.Sprintf("%-24s %-14s %10s %9s %8s %9s %9s %12s",
		"Step (node)", "Type", "Executions", "Failures", "Fail%", "p50", "p95", "Last fail")))
	if len(steps) == 0 {
		out = append(out, st.Muted.Render("no step events in this window"))
	}
	for i := d.stepOff; i < len(steps) && i < d.stepOff+l.stepRows; i++ {
		s := steps[i]
		// fit gives the names exactly their cells; fmt's %-24s would pad by
		// runes and push the row right after a wide character.
		text := fmt.Sprintf("%s %s %10d %9d %8s %9s %9s %12s",
			fit(s.NodeID.String(), 24), fit(s.NodeType.String(), 14), s.Executions, s.Failures, fmtPct(s.FailureRate),
			fmtMs(s.P50Ms), fmtMs(s.P95Ms), fmtAgeShort(s.LastFailureAt, now))
		style := st.Plain()
		switch {
		case s.FailureRate != nil && *s.FailureRate >= failCrit:
			style = st.Bad
		case s.FailureRate != nil && *s.FailureRate >= failWarn:
			style = st.Warn
		}
		out = append(out, style.Render(text))
	}
	return strings.Join(out, "\n")
}
