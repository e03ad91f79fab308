package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

type sqlStateErr string

func (e sqlStateErr) Error() string    { return "server error " + string(e) }
func (e sqlStateErr) SQLState() string { return string(e) }

func TestIsConnErr(t *testing.T) {
	conn := []error{
		&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED},
		fmt.Errorf("reading the overview: %w", io.ErrUnexpectedEOF),
		fmt.Errorf("reading: %w", sqlStateErr("57P01")),
		sqlStateErr("08006"),
		errors.New("failed to connect to `user=postgres database=x`: dial error"),
	}
	for _, err := range conn {
		if !isConnErr(err) {
			t.Errorf("isConnErr(%v) = false, want true", err)
		}
	}
	query := []error{
		nil,
		context.Canceled,
		sqlStateErr("42501"),
		fmt.Errorf("reading: %w", sqlStateErr("55P03")),
		errors.New("canceling statement due to lock timeout"),
	}
	for _, err := range query {
		if isConnErr(err) {
			t.Errorf("isConnErr(%v) = true, want false", err)
		}
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		w = min(w, maxBackoff)
		if got := backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

// A tick from an older loop (before an interval change or a pause) is
// dropped, so the poll loop never doubles.
func TestStalePollTickIsDropped(t *testing.T) {
	m := syntheticModel(10)
	m.started = true
	cmd := m.rearmPoll() // loop 1
	if cmd == nil {
		t.Fatal("rearmPoll returned no tick")
	}
	old := m.tickSeq
	m.rearmPoll() // loop 2 replaces loop 1
	nm, cmd := m.Update(PollTickMsg{Seq: old})
	if cmd != nil {
		t.Fatal("a stale tick started reads and another tick")
	}
	m = nm.(Model)
	if m.ov().inflight {
		t.Fatal("a stale tick started a read")
	}
	if _, cmd := m.Update(PollTickMsg{Seq: m.tickSeq}); cmd == nil {
		t.Fatal("the current tick did not poll")
	}
}

func TestDownsample(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	var pts []store.HourlyPoint
	for h := 0; h < 24; h++ {
		p := store.HourlyPoint{Hour: from.Add(time.Duration(h) * time.Hour), Succeeded: 10, P95Ms: ptr(float64(h))}
		if h >= 12 {
			p.Succeeded, p.Failed = 5, 5
		}
		pts = append(pts, p)
	}
	succ, p95 := downsample(pts, from, to, 4)
	if succ[0] != 1 || succ[1] != 1 {
		t.Errorf("first half success = %v, want full bars", succ[:2])
	}
	if succ[2] >= succ[0] || succ[3] >= succ[0] {
		t.Errorf("second half success %v not below the first %v", succ[2:], succ[:2])
	}
	if p95[3] != 23 || p95[0] != 5 {
		t.Errorf("p95 buckets = %v, want the worst hour of each (5 … 23)", p95)
	}
}

func TestLagBadgeThresholds(t *testing.T) {
	m := syntheticModel(3)
	m.c.opts.LagWarn, m.c.opts.LagCrit = time.Minute, 10*time.Minute
	for _, c := range []struct {
		lag  *time.Duration
		want string
	}{
		{ptr(30 * time.Second), "lag <1m ok"},
		{ptr(2*time.Minute + 30*time.Second), "lag 2m warn"},
		{ptr(time.Hour), "lag 1h crit"},
		{nil, "lag: never refreshed"},
	} {
		m.views = []store.ViewStatus{{Name: "mv_workflow_metrics", Populated: c.lag != nil, Lag: c.lag}}
		if got := m.lagBadge(); !strings.Contains(got, c.want) {
			t.Errorf("lag %v: badge %q, want %q", c.lag, got, c.want)
		}
	}
}

// Runes that arrive together (fast typing, a slow SSH link) are separate
// commands; after a '/' they are the filter text.
func TestBatchedRunesAreSeparateKeys(t *testing.T) {
	m := syntheticModel(50)
	nm, _ := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("p3/workflow 4")})
	m = nm.(Model)
	if !m.c.sess.paused || m.c.sess.window != store.Window7d {
		t.Fatalf("paused %v, window %s: want paused and 7d", m.c.sess.paused, m.c.sess.window)
	}
	if !m.ov().filtering || m.ov().filter.Value() != "workflow 4" {
		t.Fatalf("filtering %v with %q, want the rest as filter text", m.ov().filtering, m.ov().filter.Value())
	}
}

func TestFmtAgeIsCoarse(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{-5 * time.Second, "<1m"}, {0, "<1m"}, {59 * time.Second, "<1m"},
		{time.Minute, "1m"}, {3*time.Minute + 5*time.Second, "3m"}, {59*time.Minute + 59*time.Second, "59m"},
		{time.Hour, "1h"}, {6*time.Hour + 57*time.Minute, "6h"}, {47 * time.Hour, "47h"},
		{48 * time.Hour, "2d"}, {30*24*time.Hour + 5*time.Hour, "30d"},
	} {
		if got := fmtAge(c.d); got != c.want {
			t.Errorf("fmtAge(%v) = %q, want %q", c.d, got, c.want)
		}
	}
	if got := fmtReplayLag(12*time.Second + 400*time.Millisecond); got != "12s" {
		t.Errorf("replay lag under a minute = %q, want seconds", got)
	}
	if got := fmtReplayLag(3*time.Minute + 10*time.Second); got != "3m" {
		t.Errorf("replay lag over a minute = %q, want minutes", got)
	}
}

// A poll between two refreshes brings the same rows (a copy from the
// store's cache) and new running-now counts: the order is kept unless it
// is by the running column, the totals and the touched row follow the new
// counts, and new rows (a refresh) are sorted again and rendered afresh.
func TestPollWithUnchangedRowsUpdatesOnlyRunning(t *testing.T) {
	m := syntheticModel(200)
	_ = m.View()
	ov := m.ov().data
	order := slices.Clone(m.ov().rows)
	sel := m.ov().selected()
	runningTotal := func() int64 {
		var n int64
		for _, r := range m.ov().rows {
			n += m.ov().data.RunningNow[m.ov().data.Workflows[r].WorkflowID]
		}
		return n
	}

	next := ov
	next.Workflows = slices.Clone(ov.Workflows)
	next.RunningNow = maps.Clone(ov.RunningNow)
	next.RunningNow[sel.WorkflowID] = 987
	m.ov().setData(next)
	if !slices.Equal(order, m.ov().rows) {
		t.Fatal("the row order changed although only running-now counts did (sorted by fail%)")
	}
	if got, want := m.ov().totals.running, runningTotal(); got != want {
		t.Fatalf("running total %d, want %d", got, want)
	}
	view := m.View()
	if !strings.Contains(view, " 987 ") || !strings.Contains(view, fmt.Sprintf(" %d ", runningTotal())) {
		t.Fatalf("the new running count (987, total %d) is not on screen:\n%s", runningTotal(), view)
	}

	// Sorted by the running column, a new count re-sorts.
	m.ov().sortCol, m.ov().sortDesc = colRunning, true
	m.ov().apply()
	third := next
	third.RunningNow = maps.Clone(next.RunningNow)
	last := m.ov().data.Workflows[m.ov().rows[len(m.ov().rows)-1]].WorkflowID
	third.RunningNow[last] = 5000
	m.ov().setData(third)
	if got := m.ov().data.Workflows[m.ov().rows[0]].WorkflowID; got != last {
		t.Fatalf("sorted by running descending, first row %s, want %s (5000 running)", got, last)
	}

	// A refresh brings new rows: sorted and rendered again.
	m.ov().sortCol, m.ov().sortDesc = colFailure, true
	m.ov().apply()
	fourth := third
	fourth.Workflows = slices.Clone(third.Workflows)
	top := &fourth.Workflows[m.ov().rows[len(m.ov().rows)-1]]
	top.Name, top.FailureRate = safetext.New("freshly failing"), ptr(0.99)
	m.ov().setData(fourth)
	if got := m.ov().data.Workflows[m.ov().rows[0]].Name; !got.Is("freshly failing") {
		t.Fatalf("after new rows the first row is %q, want the one now failing most", got)
	}
	if view := m.View(); !strings.Contains(view, "freshly failing") || !strings.Contains(view, "99.0%") {
		t.Fatalf("the refreshed row is not rendered from its new data:\n%s", view)
	}
}

// Colours resolved once for a profile give exactly the escape sequences
// lipgloss writes for the adaptive colours it converts on every Render.
func TestResolvedColoursRenderLikeAdaptiveOnes(t *testing.T) {
	th := DefaultTheme()
	colours := []lipgloss.AdaptiveColor{th.Text, th.Muted, th.Accent, th.Good, th.Warn, th.Bad, th.SelBg, th.Banner, th.OnColor}
	for _, p := range []termenv.Profile{termenv.TrueColor, termenv.ANSI256, termenv.ANSI, termenv.Ascii} {
		for _, dark := range []bool{true, false} {
			r := lipgloss.NewRenderer(io.Discard)
			r.SetColorProfile(p)
			r.SetHasDarkBackground(dark)
			for _, ac := range colours {
				want := r.NewStyle().Foreground(ac).Background(ac).Render("x")
				rc := resolveColor(ac, p, dark)
				if got := r.NewStyle().Foreground(rc).Background(rc).Render("x"); got != want {
					t.Errorf("profile %v, dark %v, %v: resolved %q, adaptive %q", p, dark, ac, got, want)
				}
			}
		}
	}
	if p := termenv.ANSI256; !strings.Contains(r256(p, DefaultTheme().Accent), "38;5;") {
		t.Errorf("a 256-colour profile should give an indexed colour, got %q", r256(p, DefaultTheme().Accent))
	}
}

func r256(p termenv.Profile, ac lipgloss.AdaptiveColor) string {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(p)
	r.SetHasDarkBackground(true)
	return r.NewStyle().Foreground(resolveColor(ac, p, true)).Render("x")
}

// A colour profile set after the model was built (NO_COLOR, a test) is
// honoured: styles, memoised lines and cached rows are redrawn with it.
func TestViewFollowsColourProfileChange(t *testing.T) {
	lipgloss.SetColorProfile(termenv.ANSI256)
	m := syntheticModel(50)
	coloured := m.View()
	lipgloss.SetColorProfile(termenv.Ascii)
	plain := m.View()
	if !strings.Contains(coloured, "\x1b[") {
		t.Fatal("no escape sequence in the 256-colour frame")
	}
	if strings.Contains(plain, "\x1b[") {
		t.Fatalf("escape sequences left after switching to no colour:\n%q", plain)
	}
}

// The console read and the watch's cheap poll both say what is running, and
// a slow one may answer after a newer one: the running refreshes shown come
// from the read that started last. (A refresh that had finished showed as
// running again when the poll sent before it finished answered last, and
// the dashboard polls again only after the interval.)
func TestStaleRunningReadIsDropped(t *testing.T) {
	m := syntheticModel(3)
	m = upd(m, tea.KeyMsg{Type: tea.KeyTab})
	running := []store.RunningRefresh{{View: "mv_step_metrics", LogID: 4, PID: 42}}
	waiting := []store.RunningRefresh{{View: "mv_step_metrics", LogID: 4, PID: 42, WaitingForLock: true}}
	apply := func(msg tea.Msg) {
		t.Helper()
		nm, _ := m.Update(msg)
		m = nm.(Model)
	}

	// A poll started (seq 1) while the refresh ran, a console read started
	// (seq 2) after it finished; the poll answers last.
	apply(ConsoleLoadedMsg{Seq: 2, Views: []store.ViewStatus{{Name: "mv_step_metrics"}}})
	apply(RunningLoadedMsg{Seq: 1, Running: running})
	if len(m.cs().running) != 0 {
		t.Fatalf("an older poll's answer replaced the newer read's: running %+v", m.cs().running)
	}
	if v := m.View(); strings.Contains(v, "⟳ mv_step_metrics") {
		t.Fatalf("the finished refresh shows as running:\n%s", v)
	}

	// A poll (seq 4) sees the refresh waiting for a lock; an older console
	// read (seq 3), whose running refreshes were read before the wait began,
	// answers last: its log and views are taken, its running refreshes not.
	apply(RunningLoadedMsg{Seq: 4, Running: waiting})
	apply(ConsoleLoadedMsg{Seq: 3, Running: running, Log: []store.RefreshLogEntry{{ID: 4, View: "mv_step_metrics", Status: "running"}},
		Views: []store.ViewStatus{{Name: "mv_step_metrics"}}})
	if len(m.cs().running) != 1 || !m.cs().running[0].WaitingForLock || len(m.cs().log) != 1 {
		t.Fatalf("after the older console read: running %+v, log %+v; want the poll's waiting refresh and the read's log", m.cs().running, m.cs().log)
	}
	// A newer console read (seq 5) is taken whole.
	apply(ConsoleLoadedMsg{Seq: 5, Views: []store.ViewStatus{{Name: "mv_step_metrics"}}})
	if len(m.cs().running) != 0 {
		t.Fatalf("the newest read says nothing runs, the model shows %+v", m.cs().running)
	}
}

// The lag badge describes the views the screen reads, and says
// "refreshing" for a view whose first refresh is under way (issue 14.4).
func TestLagBadgeFollowsScreen(t *testing.T) {
	m := syntheticModel(3)
	lag := 30 * time.Second
	running := &store.RunningRefresh{View: store.ViewSteps, PID: 1}
	m.views = []store.ViewStatus{
		{Name: store.ViewHourly, Populated: true, Lag: &lag},
		{Name: store.ViewMetrics, Populated: true, Lag: &lag},
		{Name: store.ViewSteps, Running: running},
	}
	for _, c := range []struct {
		screen screenID
		want   string
	}{
		{scrOverview, "lag <1m ok"},      // the step view is not read there
		{scrDetail, "lag: refreshing…"},  // it is read here, and refreshing
		{scrConsole, "lag: refreshing…"}, // every view
	} {
		m.active = c.screen
		if got, _ := m.lagState(); got != c.want {
			t.Errorf("%s: badge %q, want %q", screenInfos[c.screen].title, got, c.want)
		}
	}
	m.views[2].Running = nil
	m.active = scrConsole
	if got, _ := m.lagState(); got != "lag: never refreshed" {
		t.Errorf("console, step view never refreshed and idle: badge %q", got)
	}
}

// x during the first refresh asks first, as the console does; y then
// cancels it, n keeps it running (issues 14.1, 24.13).
func TestFirstRefreshCancelKey(t *testing.T) {
	m := syntheticModel(1)
	m.active = scrInstall
	canceled := false
	im := m.inst()
	im.state, im.refresh, im.cancel = installRefreshing, []firstRefreshStep{{view: store.ViewHourly}}, func() { canceled = true }
	m = upd(m, runeKey("x"))
	if canceled || !strings.Contains(m.View(), "cancel the first refresh?") {
		t.Fatalf("x canceled without asking (canceled %v):\n%s", canceled, m.View())
	}
	m = upd(m, runeKey("n"))
	if canceled || strings.Contains(m.View(), "cancel the first refresh?") {
		t.Fatalf("n did not keep the refresh running (canceled %v)", canceled)
	}
	m = upd(m, runeKey("x"), runeKey("y"))
	if !canceled || !m.inst().canceling {
		t.Fatalf("x y did not cancel the first refresh (canceled %v)", canceled)
	}
	if v := m.View(); !strings.Contains(v, "canceling…") {
		t.Fatalf("the install screen does not say it is canceling:\n%s", v)
	}
}

// 80 columns keep the sorted column, a version column and a readable name;
// 200 columns give the project room (issue 14.6, 14.14).
func TestLayoutNarrowAndWide(t *testing.T) {
	for c := column(0); c < numSortable; c++ {
		l := layoutFor(80, c)
		if c != colName && l.w[c] == 0 {
			t.Errorf("80 columns sorted by %s: the sorted column is hidden", columnTitles[c])
		}
		if l.ver == 0 || l.name < minReadableName-8 {
			t.Errorf("80 columns sorted by %s: name %d, version %d", columnTitles[c], l.name, l.ver)
		}
		if w := ansi.StringWidth(l.cells(columnTitles, "Ver")); w > 80 {
			t.Errorf("80 columns sorted by %s: header is %d wide", columnTitles[c], w)
		}
	}
	if l := layoutFor(120, colFailure); !l.sparks || l.name < minReadableName {
		t.Errorf("120 columns: sparklines %v, name %d", l.sparks, l.name)
	}
	if l := layoutFor(200, colFailure); l.w[colProject] != maxProjectWidth || l.name < maxNameWidth {
		t.Errorf("200 columns: project %d, name %d", l.w[colProject], l.name)
	}
}

// The key help line keeps whole items, and help and quit, at 80 columns;
// while the filter takes keys it does not offer q (issue 14.15).
func TestFooterFits(t *testing.T) {
	m := syntheticModel(3)
	m = upd(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	for _, s := range []screenID{scrOverview, scrDetail, scrConsole} {
		m.active = s
		f := m.footer()
		if ansi.StringWidth(f) > 80 || strings.Contains(f, "…") || !strings.Contains(f, "? help") || !strings.Contains(f, "q quit") {
			t.Errorf("%s footer: %q", screenInfos[s].title, f)
		}
	}
	m.active = scrOverview
	if f := m.footer(); !strings.Contains(f, "↑↓/jk move") {
		t.Errorf("overview footer offers no down key: %q", f)
	}
	m = upd(m, runeKey("/"))
	if f := m.footer(); strings.Contains(f, "q quit") || !strings.Contains(f, "esc clear filter") {
		t.Errorf("footer while filtering: %q", f)
	}
}

func runeKey(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }

// After a sort the cursor is on the first row, and the line under the
// table says which rows show (issue 14.5).
func TestSortPutsCursorOnTopAndShowsPosition(t *testing.T) {
	m := syntheticModel(57)
	m = upd(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	var tm tea.Model = m
	for range 30 {
		tm, _ = tm.Update(runeKey("j"))
	}
	if v := tm.View(); !strings.Contains(v, "of 57") || strings.Contains(v, "rows 1–") {
		t.Fatalf("scrolled down 30 rows, no position shown:\n%s", v)
	}
	tm, _ = tm.Update(runeKey("s"))
	mm := tm.(Model)
	if mm.ov().sel != 0 || mm.ov().off != 0 {
		t.Fatalf("after s: selection %d, first visible row %d; want 0, 0", mm.ov().sel, mm.ov().off)
	}
	if v := tm.View(); !strings.Contains(v, "rows 1–") || !strings.Contains(v, "of 57") {
		t.Fatalf("after s, no 'rows 1–… of 57':\n%s", v)
	}
	tm, _ = tm.Update(runeKey("G"))
	if v := tm.View(); !strings.Contains(v, "–57 of 57") {
		t.Fatalf("at the bottom, no '…–57 of 57':\n%s", v)
	}
}

// Rows without a value in the sorted column come last in both directions
// (issue 14.8).
func TestRowsWithoutDataSortLast(t *testing.T) {
	m := syntheticModel(40)
	for i := range m.ov().data.Workflows {
		if i%4 == 0 {
			w := &m.ov().data.Workflows[i]
			w.Runs, w.Succeeded, w.Failed = 0, 0, 0
			w.SuccessRate, w.FailureRate, w.P50Ms, w.P95Ms, w.AvgMs, w.LastFailureAt = nil, nil, nil, nil, nil, nil
		}
	}
	for c := colRuns; c < numSortable; c++ {
		if c == colRunning || c == colDeltaFail || c == colDeltaP95 { // no runs or no Δ data here
			continue
		}
		for _, desc := range []bool{false, true} {
			m.ov().sortCol, m.ov().sortDesc = c, desc
			m.ov().apply()
			seenEmpty := false
			for _, r := range m.ov().rows {
				empty := m.ov().data.Workflows[r].Runs == 0
				if seenEmpty && !empty {
					t.Fatalf("sorted by %s (desc %v): a row with data after one without", columnTitles[c], desc)
				}
				seenEmpty = seenEmpty || empty
			}
		}
	}
}

// + polls less often, - more often: pg_activity's meaning, which the help
// and the README say too (issue 14.7).
func TestPlusMinusInterval(t *testing.T) {
	m := syntheticModel(3)
	m.interval = 2 * time.Second
	tm, _ := m.Update(runeKey("+"))
	if got := tm.(Model).interval; got != 4*time.Second {
		t.Fatalf("+ from 2s: %s, want 4s", got)
	}
	tm, _ = tm.Update(runeKey("-"))
	tm, _ = tm.Update(runeKey("-"))
	if got := tm.(Model).interval; got != time.Second {
		t.Fatalf("- - from 4s: %s, want 1s", got)
	}
	k := newKeyMap(false)
	if k.Slower.Help().Key != "+" || !strings.Contains(k.Slower.Help().Desc, "less often") {
		t.Fatalf("help for +: %+v", k.Slower.Help())
	}
}

// tab cycles the overview and the refresh console only, as the README
// says: never to a detail opened earlier (issue 14.11).
func TestTabCyclesOverviewAndConsole(t *testing.T) {
	m := syntheticModel(5)
	var tm tea.Model = m
	tm, _ = tm.Update(tea.KeyMsg{Type: tea.KeyEnter})
	tm, _ = tm.Update(tea.KeyMsg{Type: tea.KeyEsc})
	tm, _ = tm.Update(runeKey("j"))
	want := []screenID{scrConsole, scrOverview, scrConsole}
	for i, w := range want {
		tm, _ = tm.Update(tea.KeyMsg{Type: tea.KeyTab})
		if got := tm.(Model).active; got != w {
			t.Fatalf("tab %d: %s, want %s", i+1, screenInfos[got].title, screenInfos[w].title)
		}
	}
}

// An informational status clears by itself; an error stays (issue 14.15).
func TestStatusClears(t *testing.T) {
	m := syntheticModel(3)
	now := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	m.c.clock = func() time.Time { return now }
	m.setStatus("copied 123 (OSC 52)", false)
	if v := m.statusView(); !strings.Contains(v, "copied") {
		t.Fatalf("status not shown: %q", v)
	}
	now = now.Add(statusTTL + time.Second)
	if v := m.statusView(); v != "" {
		t.Fatalf("status still shown after %s: %q", statusTTL, v)
	}
	m.setStatus("reading the overview: boom", true)
	now = now.Add(time.Hour)
	if v := m.statusView(); !strings.Contains(v, "boom") {
		t.Fatalf("an error cleared itself: %q", v)
	}
}

// Detail charts (issue 14.10): whole-number ticks for counts, a duration
// axis in the unit of the data, a success axis that zooms, one time axis
// for the three charts, and a 1h window spanning more than one point.
func TestDetailCharts(t *testing.T) {
	if u, div := durationUnit(174); u != "ms" || div != 1 {
		t.Errorf("174 ms: unit %s/%g", u, div)
	}
	if u, _ := durationUnit(13_900); u != "s" {
		t.Errorf("13.9 s: unit %s", u)
	}
	if f := successFloor(99.6); f != 99 {
		t.Errorf("worst hour 99.6%%: axis from %g", f)
	}
	if f := successFloor(73); f != 50 {
		t.Errorf("worst hour 73%%: axis from %g", f)
	}
	if f := successFloor(20); f != 0 {
		t.Errorf("worst hour 20%%: axis from %g", f)
	}
	now := time.Date(2026, 1, 15, 12, 30, 0, 0, time.UTC)
	from, to := detailRange(now, store.Window1h)
	if to.Sub(from) != 6*time.Hour {
		t.Errorf("1h window spans %s", to.Sub(from))
	}
	m := syntheticModel(1)
	id := m.ov().data.Workflows[0].WorkflowID
	var hourly []store.HourlyPoint
	for h := 0; h < 6; h++ {
		hourly = append(hourly, store.HourlyPoint{WorkflowID: id, Hour: from.Add(time.Duration(h) * time.Hour),
			Runs: int64(3 + h%2), Succeeded: int64(3 + h%2), P95Ms: ptr(150 + float64(h))})
	}
	m.c.clock = func() time.Time { return now }
	for _, h := range []int{24, 40} {
		cc := drawCharts(m.c, store.WorkflowDetail{Metrics: m.ov().data.Workflows[0], Hourly: hourly}, store.Window1h, from, to, 120, h/2-2)
		last := func(s string) string { ls := strings.Split(s, "\n"); return ls[len(ls)-1] }
		if a, b, c := last(cc.charts[0]), last(cc.charts[1]), last(cc.charts[2]); a != b || b != c {
			t.Errorf("height %d: x axes differ:\n%q\n%q\n%q", h, a, b, c)
		}
		for _, l := range strings.Split(cc.charts[0], "\n") {
			if lbl := strings.TrimSpace(strings.SplitN(l, "│", 2)[0]); lbl != "" && strings.ContainsAny(lbl, ".") {
				t.Errorf("height %d: a fractional count tick %q", h, lbl)
			}
		}
		if cc.p95Unit != "ms" || cc.succFrom != 99 {
			t.Errorf("p95 unit %q, success axis from %g", cc.p95Unit, cc.succFrom)
		}
	}
}

// d sorts by what got worse: the largest rise of the failure rate against
// the previous window first, rows without a comparison last; the Δ cells
// show the change (issue 14.9).
func TestWhatGotWorse(t *testing.T) {
	m := syntheticModel(5)
	ids := make([]string, 5)
	for i, w := range m.ov().data.Workflows {
		ids[i] = w.WorkflowID
	}
	ov := m.ov().data
	ov.Changes = map[string]store.Change{
		ids[0]: {FailureRate: ptr(0.10), PrevFailureRate: ptr(0.10), Completed: 50, PrevCompleted: 50, P95HourMs: ptr(100.0), PrevP95HourMs: ptr(100.0)},
		ids[1]: {FailureRate: ptr(0.30), PrevFailureRate: ptr(0.05), Completed: 50, PrevCompleted: 50, P95HourMs: ptr(150.0), PrevP95HourMs: ptr(100.0)},
		ids[2]: {FailureRate: ptr(0.01), PrevFailureRate: ptr(0.04), Completed: 50, PrevCompleted: 50},
		ids[3]: {FailureRate: ptr(0.20), Completed: 50}, // no previous window
	}
	m = upd(m, OverviewLoadedMsg{Seq: nextTestSeq(), Window: ov.Window, Overview: ov})
	tm, _ := m.Update(runeKey("d"))
	mm := tm.(Model)
	var got []string
	for _, r := range mm.ov().rows {
		got = append(got, mm.ov().data.Workflows[r].WorkflowID)
	}
	if got[0] != ids[1] || got[1] != ids[0] || got[2] != ids[2] {
		t.Fatalf("d: order %v, want %s, %s, %s first", got, ids[1], ids[0], ids[2])
	}
	if mm.ov().sortCol != colDeltaFail || !mm.ov().sortDesc || mm.ov().sel != 0 {
		t.Fatalf("d: sort %s desc %v, selection %d", columnTitles[mm.ov().sortCol], mm.ov().sortDesc, mm.ov().sel)
	}
	v := tm.View()
	if !strings.Contains(v, "+25.0") || !strings.Contains(v, "+50%") || !strings.Contains(v, "sorted by Δfail descending") {
		t.Fatalf("Δ cells or sort label missing:\n%s", v)
	}
}

// The sparkline headers say the span they cover (issue 14.15).
func TestSparklineSpanInHeader(t *testing.T) {
	m := syntheticModel(3)
	if v := m.View(); !strings.Contains(v, "Succ 24h") || !strings.Contains(v, "p95 24h") {
		t.Fatalf("24h sparklines unlabelled:\n%s", v)
	}
	m = upd(m, runeKey("3"))
	ov := m.ov().data
	ov.Window = store.Window7d
	m = upd(m, OverviewLoadedMsg{Seq: nextTestSeq(), Window: ov.Window, Overview: ov})
	if v := m.View(); !strings.Contains(v, "Succ 7d") {
		t.Fatalf("7d sparklines unlabelled:\n%s", v)
	}
}

// A cut just before a wide character still fills the cell: fit and fitRight
// always return exactly w cells (FuzzHostileText found a row one cell short
// when a project name was cut there).
func TestFitCutBeforeWideCharacter(t *testing.T) {
	for _, s := range []string{`\r\x1b[H中文中文`, "ab中", "中中中", "a😀b"} {
		for w := 1; w <= 8; w++ {
			for name, f := range map[string]func(string, int) string{"fit": fit, "fitRight": fitRight} {
				if got := ansi.StringWidth(f(s, w)); got != w {
					t.Errorf("%s(%q, %d) is %d cells: %q", name, s, w, got, f(s, w))
				}
			}
		}
	}
}
