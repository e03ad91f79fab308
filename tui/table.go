package tui

import (
	"math"
	"strings"
	"time"

	"github.com/NimbleMarkets/ntcharts/canvas"
	"github.com/NimbleMarkets/ntcharts/sparkline"

	"github.com/meshtop/meshtop/data/store"
)

// column is a sortable column of the workflow table.
type column int

const (
	colName column = iota
	colProject
	colRuns
	colRunning
	colSuccess
	colFailure
	colDeltaFail // failure rate against the previous window, in points
	colP50
	colP95
	colDeltaP95 // the typical hour's p95 against the previous window
	colAvg
	colLastFailure
	numSortable
)

var columnTitles = [...]string{"Workflow", "Project", "Runs", "Now", "Succ%", "Fail%", "ΔFail", "p50", "p95", "Δp95", "Avg", "Last fail"}

// Fixed widths of the numeric columns; the name column takes what is left.
// The sorted column is at least its title and arrow wide ("Last fail↓").
var columnWidths = [...]int{0, 10, 7, 4, 6, 6, 6, 7, 7, 5, 7, 9}

// descFirst tells the direction a column is first sorted in: names and
// projects A→Z, numbers largest first, times newest first.
func (c column) descFirst() bool { return c != colName && c != colProject }

const (
	sparkWidth = 10
	// Health thresholds of a row's failure rate.
	failWarn = 0.02
	failCrit = 0.10
)

// tableLayout is the column widths for a terminal width and a sort; a
// width of 0 hides a column. The header, every row and the totals of a
// frame are drawn from one value, and a cached row is keyed by it.
type tableLayout struct {
	name   int
	ver    int // the version column ("v12"), right after the name
	w      [numSortable]int
	sparks bool
}

const (
	verWidth = 4
	// maxNameWidth caps the name column on wide terminals: the rest goes
	// to the project column (up to maxProjectWidth), then to the name again.
	maxNameWidth    = 56
	maxProjectWidth = 28
)

// dropOrder is the order columns give way in on a narrow terminal (colName
// stands for the sparklines); the sorted column never does.
var dropOrder = []column{colAvg, colP50, colName, colDeltaP95, colSuccess, colRunning, colDeltaFail, colLastFailure}

// minReadableName is the name width the layout gives columns up for.
const minReadableName = 24

// layoutFor gives the name column what is left; on narrow terminals the
// columns of dropOrder give way, one by one (never the sorted one), until
// the name is readable. On wide terminals the project column grows too.
func layoutFor(width int, sorted column) tableLayout {
	l := tableLayout{w: columnWidths, sparks: true, ver: verWidth}
	if sorted != colName {
		l.w[sorted] = max(l.w[sorted], len([]rune(columnTitles[sorted]))+1)
	}
	measure := func() {
		n := l.ver + 1
		for _, w := range l.w[1:] {
			if w > 0 {
				n += w + 1
			}
		}
		if l.sparks {
			n += 2 * (sparkWidth + 1)
		}
		l.name = width - n
	}
	measure()
	for _, c := range dropOrder {
		if l.name >= minReadableName {
			break
		}
		switch {
		case c == colName:
			l.sparks = false
		case c != sorted:
			l.w[c] = 0
		}
		measure()
	}
	if extra := l.name - maxNameWidth; extra > 0 {
		grow := min(extra, maxProjectWidth-l.w[colProject])
		l.w[colProject] += grow
		l.name -= grow
	}
	l.name = max(8, l.name)
	return l
}

// cells joins a row's cells by the layout: text per column, left-aligned
// for name and project, right-aligned otherwise.
func (l tableLayout) cells(text [numSortable]string, ver string) string {
	var b strings.Builder
	b.WriteString(fit(text[colName], l.name))
	b.WriteByte(' ')
	b.WriteString(fit(ver, l.ver))
	for c := colProject; c < numSortable; c++ {
		if l.w[c] == 0 {
			continue
		}
		b.WriteByte(' ')
		if c == colProject {
			b.WriteString(fit(text[c], l.w[c]))
		} else {
			b.WriteString(fitRight(text[c], l.w[c]))
		}
	}
	return b.String()
}

// header is the table's header line: the titles, an arrow on the sorted
// one, and the sparklines' titles naming the span they cover.
func (l tableLayout) header(sorted column, desc bool, w store.Window) string {
	var titles [numSortable]string
	for i := column(0); i < numSortable; i++ {
		titles[i] = columnTitles[i]
		if i == sorted {
			if desc {
				titles[i] += "↓"
			} else {
				titles[i] += "↑"
			}
		}
	}
	titles[colName] = "  " + titles[colName]
	h := l.cells(titles, "Ver")
	if l.sparks {
		// The sparklines say the span they cover (at least 24h).
		span := fmtEvery(max(24*time.Hour, w.Duration()))
		span = strings.Replace(span, "720h", "30d", 1)
		span = strings.Replace(span, "168h", "7d", 1)
		h += " " + fit("Succ "+span, sparkWidth) + " " + fit("p95 "+span, sparkWidth)
	}
	return h
}

// health is how a row is coloured.
type health int

const (
	healthOK health = iota
	healthIdle
	healthWarn
	healthBad
)

func healthOf(w *store.WorkflowMetrics) health {
	switch {
	case w.FailureRate != nil && *w.FailureRate >= failCrit:
		return healthBad
	case w.FailureRate != nil && *w.FailureRate >= failWarn:
		return healthWarn
	case w.Runs == 0:
		return healthIdle
	}
	return healthOK
}

// rowKey is everything a rendered row depends on: renderRow is a function
// of it (and of the styles, which the cache is emptied for when they
// change), so a row served from the cache is the row drawn afresh.
type rowKey struct {
	lay      tableLayout
	cells    [numSortable]string
	ver      string
	health   health
	selected bool
	dim      bool
}

func renderRow(st Styles, k rowKey) string {
	style := st.Plain()
	switch k.health {
	case healthBad:
		style = st.Bad
	case healthWarn:
		style = st.Warn
	case healthIdle:
		style = st.Muted
	}
	switch {
	case k.dim:
		style = st.Dim
	case k.selected:
		style = st.Selected.Inherit(style)
	}
	return style.Render(k.lay.cells(k.cells, k.ver))
}

// sparkKey is everything a drawn pair of sparklines depends on: the
// bucketed values (downsample), so the cache holds each distinct drawing
// once whatever the clock, window or refresh it came from.
type sparkKey struct{ succ, p95 [sparkWidth]float64 }

// tableCache holds rendered rows and sparklines by what they are drawn
// from. It is emptied when the styles change and when it grows past its
// bound (scrolling through a long table adds an entry per row seen).
type tableCache struct {
	styles styleID // the styles the entries were drawn with
	rows   map[rowKey]string
	sparks map[sparkKey]string
}

const maxTableCache = 1024

func (t *tableCache) check(st Styles) {
	if t.rows == nil || len(t.rows) > maxTableCache || len(t.sparks) > maxTableCache || t.styles != st.id() {
		t.rows, t.sparks, t.styles = map[rowKey]string{}, map[sparkKey]string{}, st.id()
	}
}

func (t *tableCache) row(c *common, k rowKey) string {
	if c.noCache {
		return renderRow(c.styles, k)
	}
	t.check(c.styles)
	if s, ok := t.rows[k]; ok {
		return s
	}
	s := renderRow(c.styles, k)
	t.rows[k] = s
	return s
}

// spark draws the success-rate and p95 sparklines of a workflow's hourly
// points over [from, to), downsampled to the sparkline width. Drawing them
// was most of an idle dashboard's CPU time: each distinct drawing is kept.
func (t *tableCache) spark(c *common, pts []store.HourlyPoint, from, to time.Time) string {
	var k sparkKey
	succ, p95 := downsample(pts, from, to, sparkWidth)
	copy(k.succ[:], succ)
	copy(k.p95[:], p95)
	if c.noCache {
		return drawSparks(c.styles, k)
	}
	t.check(c.styles)
	if s, ok := t.sparks[k]; ok {
		return s
	}
	s := drawSparks(c.styles, k)
	t.sparks[k] = s
	return s
}

func drawSparks(st Styles, k sparkKey) string {
	// The canvas is drawn unstyled, read cell by cell and styled once as a
	// whole: canvas.View styles every cell, which costs more than the rest
	// of the row.
	a := sparkline.New(sparkWidth, 1, sparkline.WithMaxValue(1), sparkline.WithNoAutoMaxValue())
	a.PushAll(k.succ[:])
	a.DrawColumnsOnly()
	b := sparkline.New(sparkWidth, 1)
	b.PushAll(k.p95[:])
	b.DrawColumnsOnly()
	return st.Good.Render(canvasRow(&a.Canvas)) + " " + st.Accent.Render(canvasRow(&b.Canvas))
}

// sparkRange is the time span the sparklines cover: the window, but at least
// the last 24 hours so short windows still have a shape.
func sparkRange(now time.Time, w store.Window) (time.Time, time.Time) {
	d := w.Duration()
	if d < 24*time.Hour {
		d = 24 * time.Hour
	}
	end := now.Truncate(time.Hour).Add(time.Hour)
	return end.Add(-d), end
}

// downsample buckets hourly points into n columns over [from, to): success
// rate (succeeded/completed, 0 where nothing completed) and the highest p95
// of the bucket's hours.
func downsample(pts []store.HourlyPoint, from, to time.Time, n int) (succ, p95 []float64) {
	succ = make([]float64, n)
	p95 = make([]float64, n)
	var done, ok [64]float64
	if n > len(done) {
		n = len(done)
	}
	span := to.Sub(from)
	if span <= 0 {
		return succ, p95
	}
	for _, p := range pts {
		// Buckets of 7d/30d series are several hours wide and may start
		// a little before the range: they count in the first column.
		if p.Hour.Before(from.Add(-24*time.Hour)) || !p.Hour.Before(to) {
			continue
		}
		i := max(0, int(float64(p.Hour.Sub(from))/float64(span)*float64(n)))
		if i >= n {
			i = n - 1
		}
		done[i] += float64(p.Succeeded + p.Failed + p.Canceled)
		ok[i] += float64(p.Succeeded)
		if p.P95Ms != nil {
			p95[i] = math.Max(p95[i], *p.P95Ms)
		}
	}
	// Success rates are drawn from just below the worst bucket up to 100% so
	// that dips show on a one-line sparkline; empty buckets stay blank.
	lo := 1.0
	for i := 0; i < n; i++ {
		if done[i] > 0 {
			succ[i] = ok[i] / done[i]
			lo = math.Min(lo, succ[i])
		}
	}
	lo = math.Max(0, lo-0.05)
	for i := 0; i < n; i++ {
		if done[i] > 0 {
			succ[i] = (succ[i] - lo) / (1 - lo)
		}
	}
	return succ, p95
}

// canvasRow reads the runes of a one-line canvas.
func canvasRow(c *canvas.Model) string {
	var b strings.Builder
	for x := 0; x < c.Width(); x++ {
		r := c.Cell(canvas.Point{X: x, Y: 0}).Rune
		if r == 0 {
			r = ' '
		}
		b.WriteRune(r)
	}
	return b.String()
}
