package tui

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/NimbleMarkets/ntcharts/canvas"
	"github.com/NimbleMarkets/ntcharts/sparkline"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

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
var columnWidths = [...]int{0, 10, 7, 4, 6, 6, 6, 7, 7, 5, 7, 9}

const (
	sparkWidth = 10
	// Health thresholds of a row's failure rate.
	failWarn = 0.02
	failCrit = 0.10
)

// overviewModel is the workflow table.
type overviewModel struct {
	data   store.Overview
	loaded bool

	rows     []int // indices into data.Workflows after filter and sort
	sel      int   // index into rows
	off      int   // first visible row
	selID    string
	sortCol  column
	sortDesc bool

	filter    textinput.Model
	filtering bool

	// Rendered sparklines of visible rows, by workflow id; dropped whenever
	// their input changes (the hourly view was refreshed, the window
	// changed) or the width does. Off-screen rows are never drawn. Polls
	// between two refreshes of the hourly view redraw none: drawing them was
	// most of an idle dashboard's CPU time.
	sparks   map[string][2]string
	sparkKey sparkKey
	totals   totals // of the filtered rows, computed in apply

	// Rendered row text of visible rows, by workflow id, with the inputs
	// it was rendered from (rowKey). Between two refreshes of the metrics
	// view a poll changes at most the running-now count of a few rows, so
	// most rows are served from here. Emptied when the workflow rows
	// change (a refresh, another window).
	rowCache map[string]rowEntry

	// changes compare each workflow with the previous window (the Δ
	// columns), read once per refresh of the hourly view: changesKey says
	// for which window and refresh.
	changes    map[string]store.Change
	changesKey sparkKey
}

// rowKey is everything a rendered table row depends on besides the
// workflow's metrics (the cache is emptied when those change).
type rowKey struct {
	running  int64
	age      string // the coarse last-failure age
	width    int
	selected bool
	dim      bool
}

type rowEntry struct {
	key  rowKey
	text string
}

// maxRowCache bounds the row cache: scrolling through a long table adds
// an entry per row seen; past this the cache starts over.
const maxRowCache = 1024

// sparkKey identifies the input of the drawn sparklines.
type sparkKey struct {
	window   store.Window
	hourlyID int64 // log id of the hourly view's last successful refresh
}

type totals struct {
	runs, running int64
	sr, fr, avg   *float64
	last          *time.Time
}

func newOverview() overviewModel {
	ti := textinput.New()
	ti.Prompt = "/"
	ti.Placeholder = "filter by name, slug or project"
	ti.CharLimit = 64
	return overviewModel{sortCol: colFailure, sortDesc: true, filter: ti, sparks: map[string][2]string{}, rowCache: map[string]rowEntry{}}
}

// setData takes a poll's overview. Between two refreshes of the metrics view
// the workflow rows are the same as last time (the store caches them) and
// only the running-now counts move: then the order and totals are kept and
// only what the counts touch is recomputed.
func (o *overviewModel) setData(ov store.Overview) {
	sameRows := o.loaded && ov.Window == o.data.Window && sameWorkflows(o.data.Workflows, ov.Workflows)
	sameRunning := maps.Equal(o.data.RunningNow, ov.RunningNow)
	if sameRows {
		ov.Workflows = o.data.Workflows // keep the slice the rows index
	}
	o.data = ov
	o.loaded = true
	if o.changesKey.window != ov.Window {
		o.changes = nil // another window's comparison: read anew
	}
	key := sparkKey{window: ov.Window}
	for _, v := range ov.Views {
		if v.Name == store.ViewHourly {
			key.hourlyID = v.LastRefreshID
		}
	}
	if key != o.sparkKey || key.hourlyID == 0 {
		o.sparks = map[string][2]string{}
		o.sparkKey = key
	}
	switch {
	case !sameRows:
		clear(o.rowCache)
		o.apply()
	case sameRunning:
		// Nothing the order or the totals depend on changed.
	case o.sortCol == colRunning:
		o.apply()
	default:
		o.totals.running = o.runningTotal()
	}
}

// sameWorkflows reports whether two reads of the workflow rows hold the
// same metrics, in the same order.
func sameWorkflows(a, b []store.WorkflowMetrics) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameWorkflow(&a[i], &b[i]) {
			return false
		}
	}
	return true
}

func sameWorkflow(a, b *store.WorkflowMetrics) bool {
	return a.WorkflowID == b.WorkflowID && a.ProjectID == b.ProjectID && a.ProjectName == b.ProjectName &&
		a.Name == b.Name && a.Slug == b.Slug && a.Version == b.Version && a.Status == b.Status &&
		a.Window == b.Window && a.Runs == b.Runs && a.Succeeded == b.Succeeded && a.Failed == b.Failed &&
		a.Canceled == b.Canceled && a.Running == b.Running &&
		samePtr(a.SuccessRate, b.SuccessRate) && samePtr(a.FailureRate, b.FailureRate) &&
		samePtr(a.AvgMs, b.AvgMs) && samePtr(a.P50Ms, b.P50Ms) && samePtr(a.P95Ms, b.P95Ms) &&
		samePtr(a.P99Ms, b.P99Ms) && samePtr(a.MinMs, b.MinMs) && samePtr(a.MaxMs, b.MaxMs) &&
		a.ResourceSeconds == b.ResourceSeconds && a.LastUpdated.Equal(b.LastUpdated) &&
		((a.LastFailureAt == nil) == (b.LastFailureAt == nil)) &&
		(a.LastFailureAt == nil || a.LastFailureAt.Equal(*b.LastFailureAt))
}

// samePtr compares two optional values (not their addresses).
func samePtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// apply recomputes the visible row order after a change of data, filter or
// sort, keeping the selected workflow selected.
func (o *overviewModel) apply() {
	q := strings.ToLower(strings.TrimSpace(o.filter.Value()))
	ws := o.data.Workflows
	o.rows = o.rows[:0]
	for i := range ws {
		if q == "" || matches(&ws[i], q) {
			o.rows = append(o.rows, i)
		}
	}
	col, desc := o.sortCol, o.sortDesc
	slices.SortFunc(o.rows, // a total order: ties end at the unique id
		func(a, b int) int {
			// Rows without the sorted value (no runs, nothing finished)
			// come last whichever the direction.
			if na, nb := noValue(&ws[a], col, o.changes), noValue(&ws[b], col, o.changes); na != nb {
				if na {
					return 1
				}
				return -1
			}
			c := compareBy(&ws[a], &ws[b], col, o.data.RunningNow, o.changes)
			if desc {
				c = -c
			}
			if c != 0 {
				return c
			}
			return cmp.Or(ws[a].Name.Compare(ws[b].Name), cmp.Compare(ws[a].Version, ws[b].Version), cmp.Compare(ws[a].WorkflowID, ws[b].WorkflowID))
		})
	o.totals = o.computeTotals()
	o.sel = 0
	if o.selID != "" {
		for i, r := range o.rows {
			if ws[r].WorkflowID == o.selID {
				o.sel = i
				break
			}
		}
	}
	o.clampSel()
}

// refreshing tells whether a view the overview reads is being refreshed.
func (o *overviewModel) refreshing() bool {
	for _, v := range o.data.Views {
		if v.Running != nil && (v.Name == store.ViewMetrics || v.Name == store.ViewHourly) {
			return true
		}
	}
	return false
}

// matches filters on the names as they are shown (sanitized).
func matches(w *store.WorkflowMetrics, q string) bool {
	return strings.Contains(strings.ToLower(w.Name.String()), q) ||
		strings.Contains(strings.ToLower(w.Slug.String()), q) ||
		strings.Contains(strings.ToLower(w.ProjectName.String()), q)
}

// noValue tells whether a row has no value to sort by in col: a metric
// that is undefined, or no runs in the window for the run columns.
func noValue(w *store.WorkflowMetrics, col column, changes map[string]store.Change) bool {
	switch col {
	case colDeltaFail:
		return changes[w.WorkflowID].FailureRateDelta() == nil
	case colDeltaP95:
		return changes[w.WorkflowID].P95Ratio() == nil
	case colRuns:
		return w.Runs == 0
	case colSuccess:
		return w.SuccessRate == nil
	case colFailure:
		return w.FailureRate == nil
	case colP50:
		return w.P50Ms == nil
	case colP95:
		return w.P95Ms == nil
	case colAvg:
		return w.AvgMs == nil
	case colLastFailure:
		return w.LastFailureAt == nil
	}
	return false
}

// compareBy orders two rows by a column; undefined values sort as smallest.
func compareBy(a, b *store.WorkflowMetrics, col column, running map[string]int64, changes map[string]store.Change) int {
	switch col {
	case colDeltaFail:
		return cmpPtr(changes[a.WorkflowID].FailureRateDelta(), changes[b.WorkflowID].FailureRateDelta())
	case colDeltaP95:
		return cmpPtr(changes[a.WorkflowID].P95Ratio(), changes[b.WorkflowID].P95Ratio())
	case colName:
		return cmp.Compare(strings.ToLower(a.Name.String()), strings.ToLower(b.Name.String()))
	case colProject:
		return cmp.Compare(strings.ToLower(a.ProjectName.String()), strings.ToLower(b.ProjectName.String()))
	case colRuns:
		return cmp.Compare(a.Runs, b.Runs)
	case colRunning:
		return cmp.Compare(running[a.WorkflowID], running[b.WorkflowID])
	case colSuccess:
		return cmpPtr(a.SuccessRate, b.SuccessRate)
	case colFailure:
		return cmpPtr(a.FailureRate, b.FailureRate)
	case colP50:
		return cmpPtr(a.P50Ms, b.P50Ms)
	case colP95:
		return cmpPtr(a.P95Ms, b.P95Ms)
	case colAvg:
		return cmpPtr(a.AvgMs, b.AvgMs)
	case colLastFailure:
		switch {
		case a.LastFailureAt == nil && b.LastFailureAt == nil:
			return 0
		case a.LastFailureAt == nil:
			return -1
		case b.LastFailureAt == nil:
			return 1
		}
		return a.LastFailureAt.Compare(*b.LastFailureAt)
	}
	return 0
}

func cmpPtr(a, b *float64) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return cmp.Compare(*a, *b)
}

func (o *overviewModel) selected() *store.WorkflowMetrics {
	if o.sel < 0 || o.sel >= len(o.rows) {
		return nil
	}
	return &o.data.Workflows[o.rows[o.sel]]
}

// top selects the first row and scrolls to it: after a sort the cursor
// starts at the top of the new order, like htop's.
func (o *overviewModel) top() {
	o.sel, o.off = 0, 0
	o.clampSel()
}

func (o *overviewModel) move(delta int) {
	o.sel += delta
	o.clampSel()
}

func (o *overviewModel) clampSel() {
	if o.sel >= len(o.rows) {
		o.sel = len(o.rows) - 1
	}
	if o.sel < 0 {
		o.sel = 0
	}
	if w := o.selected(); w != nil {
		o.selID = w.WorkflowID
	}
}

// scrollTo moves the first visible row so the selection is on screen.
func (o *overviewModel) scrollTo(rowsH int) {
	if o.sel < o.off {
		o.off = o.sel
	}
	if o.sel >= o.off+rowsH {
		o.off = o.sel - rowsH + 1
	}
	if o.off > max(0, len(o.rows)-rowsH) {
		o.off = max(0, len(o.rows)-rowsH)
	}
	if o.off < 0 {
		o.off = 0
	}
}

// tableLayout is the column widths for a terminal width; a width of 0
// hides a column.
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

// view renders the table into exactly height lines. Only rows in the
// visible window are formatted, so the cost does not grow with the number of
// workflows.
func (o *overviewModel) view(c *common, width, height int, dim bool) string {
	st := c.styles
	lay := layoutFor(width, o.sortCol)
	var b strings.Builder
	lines := 0
	line := func(s string) {
		if lines >= height {
			return
		}
		if lines > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s)
		lines++
	}

	if o.filtering || o.filter.Value() != "" {
		line(o.filter.View())
	}
	// Header.
	var hb strings.Builder
	var titles [numSortable]string
	for i := column(0); i < numSortable; i++ {
		titles[i] = columnTitles[i]
		if i == o.sortCol {
			if o.sortDesc {
				titles[i] += "↓"
			} else {
				titles[i] += "↑"
			}
		}
	}
	titles[colName] = "  " + titles[colName]
	hb.WriteString(lay.cells(titles, "Ver"))
	if lay.sparks {
		// The sparklines say the span they cover (at least 24h).
		span := fmtEvery(max(24*time.Hour, o.data.Window.Duration()))
		span = strings.Replace(span, "720h", "30d", 1)
		span = strings.Replace(span, "168h", "7d", 1)
		hb.WriteString(" " + fit("Succ "+span, sparkWidth) + " " + fit("p95 "+span, sparkWidth))
	}
	line(st.Header.Render(hb.String()))

	if !o.loaded {
		line(st.Muted.Render("loading workflows…"))
		return b.String()
	}
	if len(o.rows) == 0 {
		switch {
		case len(o.data.Workflows) == 0 && o.data.DataAsOf == nil && o.refreshing():
			line(st.Warn.Render("the first refresh of the metrics views is under way…"))
		case len(o.data.Workflows) == 0 && o.data.DataAsOf == nil:
			hint := "press tab for the refresh console, then R"
			if c.opts.ReadOnly {
				hint = "run `meshtop refresh` or `meshtop schedule --every 1m` (this dashboard is read-only)"
			}
			if c.opts.Pooler {
				hint = "run `meshtop refresh` over a session (the direct or session-pooler URL, port 5432)"
			}
			line(st.Warn.Render("the metrics views have not been refreshed yet: " + hint))
		case len(o.data.Workflows) == 0:
			line(st.Muted.Render("no workflow definitions in this database"))
		default:
			line(st.Muted.Render(fmt.Sprintf("no workflow matches %q", o.filter.Value())))
		}
	}

	// Rows: the table gets what is left after the header, totals and
	// data-as-of lines.
	rowsH := height - lines - 2
	if rowsH < 1 {
		rowsH = 1
	}
	o.scrollTo(rowsH)
	end := min(len(o.rows), o.off+rowsH)
	now := c.now()
	for i := o.off; i < end; i++ {
		w := &o.data.Workflows[o.rows[i]]
		row := o.renderRow(st, w, lay, width, now, i == o.sel, dim)
		if lay.sparks {
			sp := o.sparkFor(c, w)
			row += " " + sp[0] + " " + sp[1]
		}
		line(row)
	}
	for i := end - o.off; i < rowsH; i++ {
		line("")
	}
	line(st.Bold.Render(o.totalsText(lay, now)))
	line(o.asOfLine(c, now, width, rowsH))
	return b.String()
}

// renderRow is a styled table row (without sparklines), from the row cache
// when nothing it shows has changed.
func (o *overviewModel) renderRow(st Styles, w *store.WorkflowMetrics, lay tableLayout, width int, now time.Time, selected, dim bool) string {
	key := rowKey{running: o.data.RunningNow[w.WorkflowID], age: fmtAgeShort(w.LastFailureAt, now),
		width: width, selected: selected, dim: dim}
	if e, ok := o.rowCache[w.WorkflowID]; ok && e.key == key {
		return e.text
	}
	var style lipgloss.Style
	switch {
	case dim:
		style = st.Dim
	case selected:
		style = st.Selected.Inherit(healthStyle(st, w))
	default:
		style = healthStyle(st, w)
	}
	text := style.Render(o.rowText(w, lay, key.age, selected))
	switch {
	case o.rowCache == nil:
		o.rowCache = map[string]rowEntry{}
	case len(o.rowCache) >= maxRowCache:
		clear(o.rowCache) // View works on a copy of the model: keep the map
	}
	o.rowCache[w.WorkflowID] = rowEntry{key: key, text: text}
	return text
}

func healthStyle(st Styles, w *store.WorkflowMetrics) lipgloss.Style {
	switch {
	case w.FailureRate != nil && *w.FailureRate >= failCrit:
		return st.Bad
	case w.FailureRate != nil && *w.FailureRate >= failWarn:
		return st.Warn
	case w.Runs == 0:
		return st.Muted
	}
	return st.Plain()
}

func (o *overviewModel) rowText(w *store.WorkflowMetrics, lay tableLayout, age string, selected bool) string {
	mark := "  "
	if selected {
		mark = "▸ "
	}
	// The version has its own column: a long name is cut, the version
	// (what tells two rows of one workflow apart) never is.
	name := fmt.Sprintf("%s%s · %s", mark, w.Name, w.Slug)
	ver := fmt.Sprintf("v%d", w.Version)
	if w.Status.Is("archived") {
		name += " [archived]"
	}
	ch := o.changes[w.WorkflowID]
	return lay.cells([numSortable]string{
		name, w.ProjectName.String(), fmtCount(w.Runs), fmt.Sprint(o.data.RunningNow[w.WorkflowID]),
		fmtPct(w.SuccessRate), fmtPct(w.FailureRate), fmtPoints(ch.FailureRateDelta()),
		fmtMs(w.P50Ms), fmtMs(w.P95Ms), fmtRatio(ch.P95Ratio()), fmtMs(w.AvgMs),
		age,
	}, ver)
}

func (o *overviewModel) computeTotals() totals {
	var runs, succ, fail, canc int64
	var durSum, durN float64
	var last *time.Time
	for _, r := range o.rows {
		w := &o.data.Workflows[r]
		runs += w.Runs
		succ += w.Succeeded
		fail += w.Failed
		canc += w.Canceled
		if w.AvgMs != nil {
			n := float64(w.Succeeded + w.Failed + w.Canceled)
			durSum += *w.AvgMs * n
			durN += n
		}
		if w.LastFailureAt != nil && (last == nil || w.LastFailureAt.After(*last)) {
			last = w.LastFailureAt
		}
	}
	var sr, fr, avg *float64
	if done := succ + fail + canc; done > 0 {
		sr = ptr(float64(succ) / float64(done))
		fr = ptr(float64(fail) / float64(done))
	}
	if durN > 0 {
		avg = ptr(durSum / durN)
	}
	return totals{runs: runs, running: o.runningTotal(), sr: sr, fr: fr, avg: avg, last: last}
}

// runningTotal is the running-now count of the filtered rows.
func (o *overviewModel) runningTotal() int64 {
	var n int64
	if len(o.data.RunningNow) == 0 {
		return 0
	}
	for _, r := range o.rows {
		n += o.data.RunningNow[o.data.Workflows[r].WorkflowID]
	}
	return n
}

func (o *overviewModel) totalsText(lay tableLayout, now time.Time) string {
	t := o.totals
	label := fmt.Sprintf("  Σ %d/%d workflows", len(o.rows), len(o.data.Workflows))
	return lay.cells([numSortable]string{
		label, "", fmtCount(t.runs), fmt.Sprint(t.running), fmtPct(t.sr), fmtPct(t.fr), "",
		dash, dash, "", fmtMs(t.avg), fmtAgeShort(t.last, now),
	}, "")
}

// asOfLine is the line under the table: which rows show when they do not
// all fit, how old the data is, the window and the sort. On a narrow
// terminal the date, then the window (the header shows it) give way, so
// the line is never cut.
func (o *overviewModel) asOfLine(c *common, now time.Time, width, rowsH int) string {
	st := c.styles
	var pos string
	if n := len(o.rows); n > rowsH {
		pos = fmt.Sprintf("rows %d–%d of %d", o.off+1, min(n, o.off+rowsH), n)
	}
	if o.data.DataAsOf == nil {
		return st.Warn.Render(fit(joinDot(pos, "data as of: never refreshed — refresh from the console (tab, R) or schedule it"), width))
	}
	age := fmtAgeAgo(o.data.DataAsOf, now)
	long := joinDot(pos, fmt.Sprintf("data as of %s (%s)", fmtTime(*o.data.DataAsOf), age), "window "+string(o.data.Window), o.sortLabel())
	short := joinDot(pos, fmt.Sprintf("data as of %s UTC (%s)", o.data.DataAsOf.UTC().Format("15:04"), age), o.sortLabel())
	for _, l := range []string{long, short} {
		if ansi.StringWidth(l) <= width {
			return st.Muted.Render(l)
		}
	}
	return st.Muted.Render(fit(short, width))
}

// joinDot joins the non-empty parts with " · ".
func joinDot(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " · ")
}

// setChanges takes the comparison with the previous window; the rows
// show it, and a sort on a Δ column reorders.
func (o *overviewModel) setChanges(key sparkKey, ch map[string]store.Change) {
	o.changes, o.changesKey = ch, key
	clear(o.rowCache)
	o.apply()
}

func (o *overviewModel) sortLabel() string {
	dir := "ascending"
	if o.sortDesc {
		dir = "descending"
	}
	// Lower case, but Δ stays Δ (its lower case is δ).
	return fmt.Sprintf("sorted by %s %s", strings.ReplaceAll(strings.ToLower(columnTitles[o.sortCol]), "δ", "Δ"), dir)
}

// sparkFor draws (once per data load) the success-rate and p95 sparklines of
// one workflow from its hourly series, downsampled to the sparkline width.
func (o *overviewModel) sparkFor(c *common, w *store.WorkflowMetrics) [2]string {
	if s, ok := o.sparks[w.WorkflowID]; ok {
		return s
	}
	from, to := sparkRange(c.now(), o.data.Window)
	succ, p95 := downsample(o.data.Hourly[w.WorkflowID], from, to, sparkWidth)
	st := c.styles
	// The canvas is drawn unstyled, read cell by cell and styled once as a
	// whole: canvas.View styles every cell, which costs more than the rest of
	// the row.
	a := sparkline.New(sparkWidth, 1, sparkline.WithMaxValue(1), sparkline.WithNoAutoMaxValue())
	a.PushAll(succ)
	a.DrawColumnsOnly()
	b := sparkline.New(sparkWidth, 1)
	b.PushAll(p95)
	b.DrawColumnsOnly()
	s := [2]string{st.Good.Render(canvasRow(&a.Canvas)), st.Accent.Render(canvasRow(&b.Canvas))}
	o.sparks[w.WorkflowID] = s
	return s
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
