package tui

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/meshtop/meshtop/data/store"
)

// overviewModel is the workflow table: it reads the overview of the
// window, keeps the filter, sort, selection and scroll, and draws the
// table (table.go) from one layout per frame.
type overviewModel struct {
	c             *common
	width, height int
	active        bool

	// Reads: the number of the newest read asked for and of the data
	// shown. A read is not started twice (inflight) unless something may
	// have changed since it started (force).
	asked, shown int
	inflight     bool
	data         store.Overview
	loaded       bool

	rows     []int // indices into data.Workflows after filter and sort
	sel      int   // index into rows
	off      int   // first visible row
	selID    string
	sortCol  column
	sortDesc bool
	totals   totals // of the filtered rows, computed in apply

	filter    textinput.Model
	filtering bool

	cache tableCache
}

func newOverview(c *common) *overviewModel {
	ti := textinput.New()
	ti.Prompt = "/"
	ti.Placeholder = "filter by name, slug or project"
	ti.CharLimit = 64
	return &overviewModel{c: c, active: true, sortCol: colFailure, sortDesc: true, filter: ti}
}

func (o *overviewModel) SetSize(w, h int) {
	o.width, o.height = w, h
	o.scroll()
}

func (o *overviewModel) CapturesKeys() bool { return o.filtering }
func (o *overviewModel) TakesText() bool    { return o.filtering }

func (o *overviewModel) ShortHelp() []key.Binding {
	k := o.c.keys
	if o.filtering {
		return []key.Binding{
			key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "keep filter")),
			key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear filter")),
			key.NewBinding(key.WithKeys("up", "down"), key.WithHelp("↑↓", "move")),
			key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
		}
	}
	return []key.Binding{k.move("move"), k.Enter, k.NextScreen, k.Filter, k.Sort, k.Worse, k.SortDir, k.Window1To4(), k.Pause}
}

func (o *overviewModel) FullHelp() [][]key.Binding {
	k := o.c.keys
	// The help says d's volume floor (store.MinCompletedRuns).
	worse := key.NewBinding(key.WithKeys("d"), key.WithHelp("d", fmt.Sprintf("what got worse (≥%d runs)", store.MinCompletedRuns)))
	return [][]key.Binding{
		{k.Up, k.Down, k.Top, k.Bottom, k.PageUp, k.PageDown},
		{k.Enter, k.Back, k.Filter, k.Sort, k.SortDir, worse, k.Copy},
	}
}

// read asks for the overview of the session's window.
func (o *overviewModel) read(force bool) tea.Cmd {
	if o.inflight && !force {
		return nil
	}
	o.inflight = true
	o.asked = o.c.nextSeq()
	return fetchOverview(o.c.ctx, o.c.src, o.c.sess.window, o.asked)
}

func (o *overviewModel) Update(msg tea.Msg) (screen, tea.Cmd) {
	cmd := o.update(msg)
	o.scroll()
	return o, cmd
}

func (o *overviewModel) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case pollMsg:
		return o.read(msg.force)
	case windowMsg:
		return o.read(true)
	case refreshEventMsg:
		if msg.ev.Status != "running" {
			return o.read(true) // a read under way may predate the refresh
		}
	case focusMsg:
		o.active = msg.active
	case OverviewLoadedMsg:
		if msg.Seq >= o.asked {
			o.inflight = false
		}
		if msg.Err != nil {
			o.c.send(readFailedMsg{what: "reading the overview", err: msg.Err})
			return nil
		}
		if msg.Window != o.c.sess.window || msg.Seq < o.shown {
			return nil // another window's, or older than what is shown
		}
		o.shown = msg.Seq
		o.setData(msg.Overview)
		o.c.send(readOKMsg{})
		o.c.send(factsMsg{seq: msg.Seq, server: &msg.Overview.Server, views: msg.Overview.Views})
	case tea.KeyMsg:
		return o.key(msg)
	default:
		if o.filtering { // the cursor's blink
			var cmd tea.Cmd
			o.filter, cmd = o.filter.Update(msg)
			return cmd
		}
	}
	return nil
}

func (o *overviewModel) key(msg tea.KeyMsg) tea.Cmd {
	k := o.c.keys
	if o.filtering {
		switch msg.String() {
		case "esc":
			o.filtering = false
			o.filter.Blur()
			o.filter.SetValue("")
			o.apply()
			return nil
		case "enter":
			o.filtering = false
			o.filter.Blur()
			return nil
		case "up", "down":
			// fall through to navigation
		default:
			var cmd tea.Cmd
			o.filter, cmd = o.filter.Update(msg)
			o.apply()
			return cmd
		}
	}
	switch {
	case key.Matches(msg, k.Up):
		o.move(-1)
	case key.Matches(msg, k.Down):
		o.move(1)
	case key.Matches(msg, k.PageUp):
		o.move(-max(1, o.rowsHeight()-1))
	case key.Matches(msg, k.PageDown):
		o.move(max(1, o.rowsHeight()-1))
	case key.Matches(msg, k.Top):
		o.top()
	case key.Matches(msg, k.Bottom):
		o.sel = len(o.rows) - 1
		o.clampSel()
	case key.Matches(msg, k.Filter):
		o.filtering = true
		return o.filter.Focus()
	case key.Matches(msg, k.Back):
		if o.filter.Value() != "" {
			o.filter.SetValue("")
			o.apply()
		}
	case key.Matches(msg, k.Sort):
		// Each column starts in its natural direction: names A→Z, numbers
		// and times worst or newest first.
		o.sortCol = (o.sortCol + 1) % numSortable
		o.sortDesc = o.sortCol.descFirst()
		o.apply()
		o.top()
	case key.Matches(msg, k.SortDir):
		o.sortDesc = !o.sortDesc
		o.apply()
		o.top()
	case key.Matches(msg, k.Worse):
		// What got worse against the previous window, worst first.
		o.sortCol, o.sortDesc = colDeltaFail, true
		o.apply()
		o.top()
	case key.Matches(msg, k.Copy):
		if w := o.selected(); w != nil {
			return copyToClipboard(o.c.opts.Output, w.WorkflowID)
		}
	case key.Matches(msg, k.Enter):
		if w := o.selected(); w != nil {
			o.c.send(navMsg{to: scrDetail, open: openWorkflowMsg{id: w.WorkflowID}})
		}
	}
	return nil
}

// setData takes a read's overview. Between two refreshes of the metrics
// view the workflow rows are the same as last time (the store caches them)
// and only the running-now counts move: then the order and totals are kept
// and only what the counts touch is recomputed.
func (o *overviewModel) setData(ov store.Overview) {
	sameRows := o.loaded && ov.Window == o.data.Window && sameWorkflows(o.data.Workflows, ov.Workflows) &&
		sameChanges(o.data.Changes, ov.Changes)
	sameRunning := maps.Equal(o.data.RunningNow, ov.RunningNow)
	if sameRows {
		ov.Workflows = o.data.Workflows // keep the slice the rows index
	}
	o.data = ov
	o.loaded = true
	switch {
	case !sameRows:
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
	if len(a) == 0 || &a[0] == &b[0] {
		return true // the store's shared rows: unchanged since (store.Overview)
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

// sameChanges reports whether two reads' comparisons are equal; the
// store's shared map (store.Overview) is equal to itself without a look
// at its entries.
func sameChanges(a, b map[string]store.Change) bool {
	if len(a) == len(b) && len(a) > 0 && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer() {
		return true
	}
	return maps.EqualFunc(a, b, func(x, y store.Change) bool { return sameChange(&x, &y) })
}

func sameChange(a, b *store.Change) bool {
	return a.WorkflowID == b.WorkflowID && a.Completed == b.Completed && a.PrevCompleted == b.PrevCompleted &&
		samePtr(a.FailureRate, b.FailureRate) && samePtr(a.PrevFailureRate, b.PrevFailureRate) &&
		samePtr(a.P95HourMs, b.P95HourMs) && samePtr(a.PrevP95HourMs, b.PrevP95HourMs)
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
			// Rows without the sorted value (no runs, nothing finished,
			// too few runs to compare) come last whichever the direction.
			if na, nb := o.noValue(&ws[a], col), o.noValue(&ws[b], col); na != nb {
				if na {
					return 1
				}
				return -1
			}
			c := o.compareBy(&ws[a], &ws[b], col)
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

// deltaFail is a workflow's ΔFail: the change of its failure rate against
// the previous window, in the Δ comparison read with the rows; nil when
// either window has fewer completed runs than store.MinCompletedRuns (the
// floor `check` uses): a rate of 1 failure in 8 runs is noise, and d must
// not put it above 26% of 69.
func (o *overviewModel) deltaFail(w *store.WorkflowMetrics) *float64 {
	ch := o.data.Changes[w.WorkflowID]
	if ch.Completed < store.MinCompletedRuns || ch.PrevCompleted < store.MinCompletedRuns {
		return nil
	}
	return ch.FailureRateDelta()
}

func (o *overviewModel) deltaP95(w *store.WorkflowMetrics) *float64 {
	return o.data.Changes[w.WorkflowID].P95Ratio()
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
func (o *overviewModel) noValue(w *store.WorkflowMetrics, col column) bool {
	switch col {
	case colDeltaFail:
		return o.deltaFail(w) == nil
	case colDeltaP95:
		return o.deltaP95(w) == nil
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
func (o *overviewModel) compareBy(a, b *store.WorkflowMetrics, col column) int {
	switch col {
	case colDeltaFail:
		return cmpPtr(o.deltaFail(a), o.deltaFail(b))
	case colDeltaP95:
		return cmpPtr(o.deltaP95(a), o.deltaP95(b))
	case colName:
		return cmp.Compare(strings.ToLower(a.Name.String()), strings.ToLower(b.Name.String()))
	case colProject:
		return cmp.Compare(strings.ToLower(a.ProjectName.String()), strings.ToLower(b.ProjectName.String()))
	case colRuns:
		return cmp.Compare(a.Runs, b.Runs)
	case colRunning:
		return cmp.Compare(o.data.RunningNow[a.WorkflowID], o.data.RunningNow[b.WorkflowID])
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
	o.sel = max(0, min(o.sel, len(o.rows)-1))
	if w := o.selected(); w != nil {
		o.selID = w.WorkflowID
	}
}

// rowsHeight is how many table rows fit: the body less the filter line,
// the header, the message when nothing shows, the totals and the line under
// the table.
func (o *overviewModel) rowsHeight() int {
	h := o.height - 3
	if o.filtering || o.filter.Value() != "" {
		h--
	}
	if o.loaded && len(o.rows) == 0 {
		h--
	}
	return max(1, h)
}

// scroll moves the first visible row so the selection is on screen; it
// runs after every change (View draws and changes nothing).
func (o *overviewModel) scroll() {
	rowsH := o.rowsHeight()
	if o.sel < o.off {
		o.off = o.sel
	}
	if o.sel >= o.off+rowsH {
		o.off = o.sel - rowsH + 1
	}
	o.off = max(0, min(o.off, len(o.rows)-rowsH))
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

type totals struct {
	runs, running int64
	sr, fr, avg   *float64
	last          *time.Time
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

// View draws the table into exactly the body's height. Only rows in the
// visible window are formatted, so the cost does not grow with the number
// of workflows; the header, the rows and the totals are laid out by one
// layout value.
func (o *overviewModel) View() string {
	c := o.c
	st := c.styles
	lay := layoutFor(o.width, o.sortCol)
	var b strings.Builder
	lines := 0
	line := func(s string) {
		if lines >= o.height {
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
	line(st.Header.Render(lay.header(o.sortCol, o.sortDesc, o.data.Window)))
	if !o.loaded {
		line(st.Muted.Render("loading workflows…"))
		return b.String()
	}
	if len(o.rows) == 0 {
		line(o.emptyLine())
	}
	rowsH := o.rowsHeight()
	end := min(len(o.rows), o.off+rowsH)
	now := c.now()
	var from, to time.Time
	if lay.sparks {
		from, to = sparkRange(now, o.data.Window)
	}
	for i := o.off; i < end; i++ {
		w := &o.data.Workflows[o.rows[i]]
		row := o.cache.row(c, o.rowKey(w, lay, now, i == o.sel))
		if lay.sparks {
			row += " " + o.cache.spark(c, o.data.Hourly[w.WorkflowID], from, to)
		}
		line(row)
	}
	for i := end - o.off; i < rowsH; i++ {
		line("")
	}
	line(st.Bold.Render(o.totalsText(lay, now)))
	line(o.asOfLine(now, rowsH))
	return b.String()
}

// emptyLine says why no row shows.
func (o *overviewModel) emptyLine() string {
	st := o.c.styles
	switch {
	case len(o.data.Workflows) == 0 && o.data.DataAsOf == nil && o.refreshing():
		return st.Warn.Render(fit("the first refresh of the metrics views is under way…", o.width))
	case len(o.data.Workflows) == 0 && o.data.DataAsOf == nil:
		hint := "press tab for the refresh console, then R"
		if o.c.opts.ReadOnly {
			hint = "run `meshtop refresh` or `meshtop schedule --every 1m` (this dashboard is read-only)"
		}
		if o.c.opts.Pooler {
			hint = "run `meshtop refresh` over a session (the direct or session-pooler URL, port 5432)"
		}
		return st.Warn.Render(fit("the metrics views have not been refreshed yet: "+hint, o.width))
	case len(o.data.Workflows) == 0:
		return st.Muted.Render("no workflow definitions in this database")
	}
	return st.Muted.Render(fit(fmt.Sprintf("no workflow matches %q", o.filter.Value()), o.width))
}

// rowKey is everything a row's text depends on, derived here and only
// here: the layout, the cells' texts, the style and the selection.
func (o *overviewModel) rowKey(w *store.WorkflowMetrics, lay tableLayout, now time.Time, selected bool) rowKey {
	mark := "  "
	if selected {
		mark = "▸ "
	}
	// The version has its own column: a long name is cut, the version
	// (what tells two rows of one workflow apart) never is.
	name := fmt.Sprintf("%s%s · %s", mark, w.Name, w.Slug)
	if w.Status.Is("archived") {
		name += " [archived]"
	}
	return rowKey{
		lay: lay,
		cells: [numSortable]string{
			name, w.ProjectName.String(), fmtCount(w.Runs), fmt.Sprint(o.data.RunningNow[w.WorkflowID]),
			fmtPct(w.SuccessRate), fmtPct(w.FailureRate), fmtPoints(o.deltaFail(w)),
			fmtMs(w.P50Ms), fmtMs(w.P95Ms), fmtRatio(o.deltaP95(w)), fmtMs(w.AvgMs),
			fmtAgeShort(w.LastFailureAt, now),
		},
		ver:      fmt.Sprintf("v%d", w.Version),
		health:   healthOf(w),
		selected: selected,
		dim:      o.c.sess.lost,
	}
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
func (o *overviewModel) asOfLine(now time.Time, rowsH int) string {
	st := o.c.styles
	var pos string
	if n := len(o.rows); n > rowsH {
		pos = fmt.Sprintf("rows %d–%d of %d", o.off+1, min(n, o.off+rowsH), n)
	}
	loading := ""
	if o.data.Window != o.c.sess.window {
		loading = "loading " + string(o.c.sess.window) + "…"
	}
	if o.data.DataAsOf == nil {
		return st.Warn.Render(fit(joinDot(pos, "data as of: never refreshed — refresh from the console (tab, R) or schedule it"), o.width))
	}
	age := fmtAgeAgo(o.data.DataAsOf, now)
	long := joinDot(pos, fmt.Sprintf("data as of %s (%s)", fmtTime(*o.data.DataAsOf), age), "window "+string(o.data.Window), loading, o.sortLabel())
	short := joinDot(pos, fmt.Sprintf("data as of %s UTC (%s)", o.data.DataAsOf.UTC().Format("15:04"), age), loading, o.sortLabel())
	for _, l := range []string{long, short} {
		if ansi.StringWidth(l) <= o.width {
			return st.Muted.Render(l)
		}
	}
	return st.Muted.Render(fit(short, o.width))
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

func (o *overviewModel) sortLabel() string {
	dir := "ascending"
	if o.sortDesc {
		dir = "descending"
	}
	// Lower case, but Δ stays Δ (its lower case is δ).
	return fmt.Sprintf("sorted by %s %s", strings.ReplaceAll(strings.ToLower(columnTitles[o.sortCol]), "δ", "Δ"), dir)
}
