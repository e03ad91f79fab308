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
	chartH      int // chart height: up to maxChartHeight, less on a short terminal
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
	now := c.now()
	from, to := sparkRange(now, d.window)
	cw := chartWidth(width)
	var runs, succ, p95 []tslc.TimePoint
	maxRuns, maxP95 := 1.0, 1.0
	for _, p := range d.data.Hourly {
		if p.Hour.Before(from) || !p.Hour.Before(to) {
			continue
		}
		t := p.Hour.Add(30 * time.Minute)
		runs = append(runs, tslc.TimePoint{Time: t, Value: float64(p.Runs)})
		maxRuns = math.Max(maxRuns, float64(p.Runs))
		if done := p.Succeeded + p.Failed + p.Canceled; done > 0 {
			succ = append(succ, tslc.TimePoint{Time: t, Value: 100 * float64(p.Succeeded) / float64(done)})
		}
		if p.P95Ms != nil {
			p95 = append(p95, tslc.TimePoint{Time: t, Value: *p.P95Ms / 1000})
			maxP95 = math.Max(maxP95, *p.P95Ms/1000)
		}
	}
	st := c.styles
	d.charts[0] = drawChart(runs, from, to, 0, niceCeil(maxRuns), cw, d.chartH, st.Accent, st, d.window)
	d.charts[1] = drawChart(succ, from, to, 0, 100, cw, d.chartH, st.Good, st, d.window)
	d.charts[2] = drawChart(p95, from, to, 0, niceCeil(maxP95), cw, d.chartH, st.Warn, st, d.window)
}

func chartWidth(width int) int { return max(20, (width-2)/3) }

// drawChart renders one time-series chart. The X range is always set from
// the model clock (ntcharts would otherwise use time.Now()).
func drawChart(pts []tslc.TimePoint, from, to time.Time, ymin, ymax float64, w, h int, line lipgloss.Style, st Styles, win store.Window) string {
	ch := tslc.New(w, h,
		tslc.WithTimeRange(from, to),
		tslc.WithYRange(ymin, ymax),
		tslc.WithXYSteps(2, 2),
		tslc.WithXLabelFormatter(timeLabel(win)),
		tslc.WithYLabelFormatter(func(_ int, v float64) string { return trimFloat(v) }),
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

// niceCeil rounds a chart maximum up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
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
	titles := []string{"runs / hour", "success rate %", "p95 duration (s)"}
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
		text := fmt.Sprintf("%-24s %-14s %10d %9d %8s %9s %9s %12s",
			fit(s.NodeID.String(), 24), fit(s.NodeType.String(), 14), s.Executions, s.Failures, fmtPct(s.FailureRate),
			fmtMs(s.P50Ms), fmtMs(s.P95Ms), fmtAgeShort(s.LastFailureAt, now))
		style := lipgloss.NewStyle()
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
