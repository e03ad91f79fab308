package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/NimbleMarkets/ntcharts/linechart"
	tslc "github.com/NimbleMarkets/ntcharts/linechart/timeserieslinechart"
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
	id      string
	window  store.Window
	data    store.WorkflowDetail
	loaded  bool
	stepOff int

	// Charts are drawn when data arrives or the size changes, not per frame.
	charts      [3]string
	chartsWidth int
	chartH      int     // chart height: up to maxChartHeight, less on a short terminal
	p95Unit     string  // the duration axis's unit (ms, s, min)
	succFrom    float64 // where the success axis starts (it zooms)
}

func (d *detailModel) open(id string, w store.Window) {
	if d.id != id {
		*d = detailModel{}
	}
	d.id, d.window = id, w
}

func (d *detailModel) setData(c *common, det store.WorkflowDetail, width int) {
	d.data = det
	d.loaded = true
	d.drawCharts(c, width)
}

func (d *detailModel) drawCharts(c *common, width int) {
	d.chartsWidth = width
	if d.chartH == 0 {
		d.chartH = maxChartHeight
	}
	if !d.loaded {
		return
	}
	from, to := detailRange(c.now(), d.window)
	cw := chartWidth(width)
	var runs, succ, p95 []tslc.TimePoint
	maxRuns, maxP95, minSucc := 1.0, 0.0, 100.0
	for _, p := range d.data.Hourly {
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
	d.p95Unit = unit
	d.succFrom = successFloor(minSucc)
	st := c.styles
	yStep, n := yLabelStep(d.chartH)
	d.charts[0] = drawChart(runs, from, to, 0, countCeil(maxRuns, n), cw, d.chartH, yStep, st.Accent, st, d.window, intLabel)
	d.charts[1] = drawChart(succ, from, to, d.succFrom, 100, cw, d.chartH, yStep, st.Good, st, d.window, numLabel)
	d.charts[2] = drawChart(p95, from, to, 0, countCeil(maxP95/div, n), cw, d.chartH, yStep, st.Warn, st, d.window, numLabel)
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
// the model clock (ntcharts would otherwise use time.Now()).
func drawChart(pts []tslc.TimePoint, from, to time.Time, ymin, ymax float64, w, h, yStep int, line lipgloss.Style, st Styles, win store.Window, ylabel linechart.LabelFormatter) string {
	ch := tslc.New(w, h,
		tslc.WithTimeRange(from, to),
		tslc.WithYRange(ymin, ymax),
		tslc.WithXYSteps(2, yStep),
		tslc.WithXLabelFormatter(timeLabel(win)),
		tslc.WithYLabelFormatter(ylabel),
		tslc.WithAxesStyles(st.Muted, st.Muted),
		tslc.WithStyle(line),
	)
	for _, p := range pts {
		ch.Push(p)
	}
	ch.DrawBraille()
	return ch.View()
}

func timeLabel(w store.Window) linechart.LabelFormatter {
	// Labels sit every few columns, each column being a fraction of an hour
	// (or of a day): rounding to the hour (day) reads better and is off by
	// less than a column.
	layout, unit := "15:04", time.Hour
	if w.Duration() > 24*time.Hour {
		layout, unit = "01/02", 24*time.Hour
	}
	return func(_ int, v float64) string { return time.Unix(int64(v), 0).UTC().Round(unit).Format(layout) }
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

func (d *detailModel) view(c *common, width, height int) string {
	st := c.styles
	if d.id == "" {
		return st.Muted.Render("select a workflow in the overview and press enter")
	}
	if !d.loaded {
		return st.Muted.Render("loading workflow " + d.id + "…")
	}

	w := d.data.Metrics
	now := c.now()
	var out []string
	title := fmt.Sprintf("%s v%d (%s) · %s · %s", w.Name, w.Version, w.Slug, w.ProjectName, w.Status)
	id := "id " + w.WorkflowID
	if ansi.StringWidth(title)+2+len(id) <= width {
		out = append(out, st.Title.Render(title)+"  "+st.Muted.Render(id))
	} else {
		// Narrow: the id gets a line of its own rather than being cut.
		out = append(out, st.Title.Render(fit(title, width)), st.Muted.Render(fit(id, width)))
	}
	// Label–value pairs wrap between pairs, never inside one.
	out = append(out, pairLines(width,
		"window "+string(w.Window), "runs "+fmtCount(w.Runs), fmt.Sprintf("running %d", w.Running),
		fmt.Sprintf("succeeded %d", w.Succeeded), fmt.Sprintf("failed %d", w.Failed), fmt.Sprintf("canceled %d", w.Canceled),
		"success "+fmtPct(w.SuccessRate), "failure "+fmtPct(w.FailureRate))...)
	out = append(out, pairLines(width,
		"duration p50 "+fmtMs(w.P50Ms), "p95 "+fmtMs(w.P95Ms), "p99 "+fmtMs(w.P99Ms), "avg "+fmtMs(w.AvgMs),
		"min "+fmtMs(w.MinMs), "max "+fmtMs(w.MaxMs),
		"run time "+fmtDur(time.Duration(w.ResourceSeconds*float64(time.Second))), "last failure "+fmtAgeAgo(w.LastFailureAt, now))...)
	out = append(out, "")
	// The charts take what is left after the header, their titles, and
	// the step table's header and first rows.
	steps := max(1, min(5, len(d.data.Steps)))
	ch := max(minChartHeight, min(maxChartHeight, height-len(out)-3-steps))
	if d.chartsWidth != width || d.chartH != ch {
		d.chartH = ch
		d.drawCharts(c, width)
	}
	cw := chartWidth(width)
	span := fmtEvery(store.DetailSpan(d.window))
	succ := "success rate %"
	if d.succFrom > 0 {
		succ = fmt.Sprintf("success %% (from %g%%)", d.succFrom)
	}
	titles := []string{"runs / hour · last " + span, succ, "p95 duration (" + d.p95Unit + ")"}
	var heads []string
	for _, t := range titles {
		heads = append(heads, fit(st.Header.Render(t), cw))
	}
	out = append(out, strings.Join(heads, " "))
	out = append(out, lipgloss.JoinHorizontal(lipgloss.Top, d.charts[0], " ", d.charts[1], " ", d.charts[2]))
	out = append(out, "")

	// Step hotspots.
	out = append(out, st.Header.Render(fmt.Sprintf("%-24s %-14s %10s %9s %8s %9s %9s %12s",
		"Step (node)", "Type", "Executions", "Failures", "Fail%", "p50", "p95", "Last fail")))
	used := 0
	for _, s := range out {
		used += lipgloss.Height(s)
	}
	rows := height - used
	if len(d.data.Steps) == 0 {
		out = append(out, st.Muted.Render("no step events in this window"))
	}
	if d.stepOff > max(0, len(d.data.Steps)-rows) {
		d.stepOff = max(0, len(d.data.Steps)-rows)
	}
	for i := d.stepOff; i < len(d.data.Steps) && i < d.stepOff+rows; i++ {
		s := d.data.Steps[i]
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
