package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/NimbleMarkets/ntcharts/sparkline"
	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/lipgloss"

	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

const watchInterval = 500 * time.Millisecond

// consoleModel is the refresh console: the views' status, the schedule, the
// refresh being watched and the refresh log.
type consoleModel struct {
	views   []store.ViewStatus
	log     []store.RefreshLogEntry
	running []store.RunningRefresh
	sched   store.Schedule
	loaded  bool

	sel    int
	logOff int
	// logSel is the selected refresh-log row ([ and ] move it), logSelID
	// its id (kept across polls); expanded is the id of the row enter
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
}

type refreshOutcome struct {
	view    string
	results []store.RefreshResult
	err     error
}

func newConsole() consoleModel { return consoleModel{ours: map[string]time.Time{}} }

func (cs *consoleModel) setData(msg ConsoleLoadedMsg) {
	cs.views, cs.log, cs.running, cs.sched = msg.Views, msg.Log, msg.Running, msg.Schedule
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

// busy reports whether anything is refreshing: ours or anyone's.
func (cs *consoleModel) busy() bool { return len(cs.ours) > 0 || len(cs.running) > 0 }

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

func (cs *consoleModel) view(c *common, width, height int) string {
	st := c.styles
	if !cs.loaded {
		return st.Muted.Render("loading refresh status…")
	}
	now := c.now()
	var out []string

	// Views table.
	// Below 110 columns the size, median and sparkline give way.
	wide := width >= 110
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
		sw := max(8, min(16, width-lipgloss.Width(text)-1))
		sp := sparkline.New(sw, 1, sparkline.WithStyle(st.Accent))
		sp.PushAll(v.RecentDurationsMs)
		sp.Draw()
		out = append(out, style.Render(text)+" "+sp.View())
	}
	out = append(out, "")
	// The schedule sentence wraps at words on a narrow terminal.
	out = append(out, strings.Split(lipgloss.NewStyle().Width(width).Render(cs.scheduleLine(c, now)), "\n")...)
	out = append(out, "")

	// Watching.
	out = append(out, st.Header.Render("Refresh"))
	out = append(out, cs.watchLines(c, width, now)...)
	if cs.confirmCancel {
		out = append(out, st.Warn.Render(fmt.Sprintf("cancel the running refresh of %s? y/enter cancels it, n/esc keeps it running", cs.cancelTarget())))
	}
	out = append(out, "")

	// Log: [ and ] move the selection (▸), enter opens the selected row.
	logFmt := "%s%-8d %-27s %-19s %10s %9s %-11s %-8d %s"
	if wide {
		out = append(out, st.Header.Render(fmt.Sprintf("  %-8s %-27s %-19s %10s %9s %-11s %-8s %s",
			"Log id", "View", "Started", "Duration", "Rows", "State", "PID", "By / error")))
	} else {
		// Narrow: no row count, so the source or error keeps some room.
		logFmt = "%s%-5d %-26s %-8s %7s %-8s %s"
		out = append(out, st.Header.Render(fmt.Sprintf("  %-5s %-26s %-8s %7s %-8s %s",
			"Log", "View", "Started", "Took", "State", "By / error")))
	}
	rows := height - len(out)
	var details []string
	if cs.expanded != 0 && cs.logSel < len(cs.log) && cs.log[cs.logSel].ID == cs.expanded {
		details = logDetails(c, cs.log[cs.logSel], width)
		rows = max(1, rows-len(details))
	}
	// Keep the selection in view.
	if cs.logSel < cs.logOff {
		cs.logOff = cs.logSel
	}
	if cs.logSel >= cs.logOff+rows {
		cs.logOff = cs.logSel - rows + 1
	}
	if cs.logOff > max(0, len(cs.log)-rows) {
		cs.logOff = max(0, len(cs.log)-rows)
	}
	if len(cs.log) == 0 {
		out = append(out, st.Muted.Render("no refresh has been logged yet"))
	}
	for i := cs.logOff; i < len(cs.log) && i < cs.logOff+rows; i++ {
		e := cs.log[i]
		rowsTxt := dash
		if e.Rows != nil {
			rowsTxt = fmtCount(*e.Rows)
		}
		state, by := logState(e)
		dur := fmtMs(e.DurationMs)
		if e.Status == "skipped" {
			dur = dash // never ran
		}
		mark := "  "
		if i == cs.logSel {
			mark = "▸ "
		}
		switch e.Mode { // how the refresh used the rollup
		case "incremental":
			by = fmt.Sprintf("incr %d keys · %s", e.DirtyKeys, by)
		case "full":
			by = "full · " + by
		}
		var text string
		if wide {
			text = fmt.Sprintf(logFmt, mark, e.ID, fit(e.View, 27), e.StartedAt.UTC().Format("01-02 15:04:05"),
				dur, rowsTxt, state, e.PID, by)
		} else {
			text = fmt.Sprintf(logFmt, mark, e.ID, fit(e.View, 26), e.StartedAt.UTC().Format("15:04:05"),
				dur, state, by)
		}
		style := statusStyle(st, state)
		if i == cs.logSel {
			style = st.Selected.Inherit(style)
		}
		out = append(out, style.Render(fit(text, width)))
		if i == cs.logSel && details != nil {
			out = append(out, details...)
		}
	}
	return strings.Join(out, "\n")
}

// logState is a log row's state and its "By / error" cell: what ran it
// (the application: meshtop dashboard, meshtop refresh, pg_cron, …; for an
// operator of meshtop serve, "ssh USER SHA256:…"; the role when there is
// none — enter shows both), or the error; a deliberate cancel reads
// "canceled", not "failed".
func logState(e store.RefreshLogEntry) (string, string) {
	by := e.TriggeredBy.String()
	if !e.ApplicationName.IsEmpty() {
		by = strings.TrimPrefix(e.ApplicationName.String(), "meshtop serve: ")
	}
	switch {
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
	who := fmt.Sprintf("by role %s · application %q · pid %d · %s · started %s, finished %s · data as of %s",
		e.TriggeredBy.String(), e.ApplicationName.String(), e.PID, kind, e.StartedAt.UTC().Format("2006-01-02 15:04:05"), finished, asOf)
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

func (cs *consoleModel) cancelTarget() string {
	if len(cs.running) == 1 {
		return cs.running[0].View
	}
	if r := cs.runningFor(cs.selectedView()); r != nil {
		return r.View
	}
	return "every view"
}

func (cs *consoleModel) scheduleLine(c *common, now time.Time) string {
	st := c.styles
	s := cs.sched
	switch {
	case !s.CronAvailable:
		return st.Muted.Render("schedule: pg_cron is not installed in this database — use `meshtop refresh --every 1m` to keep the views fresh")
	case !s.Unknown.IsEmpty():
		return st.Muted.Render("schedule: unknown — " + s.Unknown.Line())
	case !s.Scheduled:
		return st.Warn.Render("schedule: not scheduled — `meshtop schedule --every 1m` registers it with pg_cron")
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

// watchLines shows every refresh in progress (elapsed, progress against the
// median of past durations, waiting for a lock or running), or the outcome
// of the last one this meshtop started.
func (cs *consoleModel) watchLines(c *common, width int, now time.Time) []string {
	st := c.styles
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
		pct, of := 0.0, "no past duration to compare"
		if vs := cs.viewStatus(r.View); vs != nil && vs.MedianDurationMs != nil && *vs.MedianDurationMs > 0 {
			med := *vs.MedianDurationMs
			pct = min(1, float64(elapsed.Milliseconds())/med)
			of = fmt.Sprintf("%3.0f%% of median %s", pct*100, fmtMsVal(med))
		}
		state := st.Warn.Render("running")
		if r.WaitingForLock {
			state = st.Bad.Render("waiting for a lock")
		}
		out = append(out, fmt.Sprintf("⟳ %-27s %s  %s  %s %s  pid %d, log %d",
			r.View, state, fmtDur(elapsed), bar.ViewAs(pct), of, r.PID, r.LogID))
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
		return []string{st.Muted.Render("no refresh running · " + hint)}
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
			out = append(out, st.Good.Render(fmt.Sprintf("✓ %-27s done in %s with %d rows (log %d)", r.View, fmtMsVal(r.DurationMs), r.Rows, r.LogID)))
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
		slicesSort(keys)
		for _, k := range keys {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

// oneLine puts text that is not a safetext.Text — an error's message, which
// quotes the database — on one sanitized line.
func oneLine(s string) string { return safetext.Line(s) }
