package tui

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

// hostileTokens are what the fuzz target builds names, errors and query
// texts from: terminal control sequences (CSI, OSC title and clipboard
// writes, hyperlinks, DCS, 8-bit and UTF-8 C1 controls), line breaks,
// Unicode bidi overrides, isolates and marks, invisible format characters,
// wide, combining and joined runes, and invalid UTF-8.
var hostileTokens = []string{
	"a", "Evil", " ", "tail", "\x1b[2J", "\x1b[31m", "\x1b[5m", "\x1b[H", "\x1b]0;pwned-title\x07",
	"\x1b]52;c;cHduZWQ=\x07", "\x1b]8;;http://x/\x1b\\", "\x1bP+q\x1b\\", "\x1b", "\x9b2J", "\u009b31m",
	"\u009d0;t\u009c", "\r\n", "\r", "\n", "\t", "\b", "\a", "\x7f", "\x00", "\u202e", "\u202a", "\u202d",
	"\u2066", "\u2067", "\u2069", "\u200e", "\u200f", "\u061c", "中文", "日本語", "😀", "👨\u200d👩\u200d👧",
	"e\u0301", "\u0301", "\u0489", "\u200b", "\ufeff", "\u00ad", "\U000e0041", "\u2028", "ｗｉｄｅ", "\xff",
	"\xe2\x80", "\\x1b", "می\u200cخواهم",
}

// compose turns fuzz bytes into a hostile string, a token per byte.
func compose(picks []byte) string {
	var b strings.Builder
	for _, p := range picks {
		b.WriteString(hostileTokens[int(p)%len(hostileTokens)])
	}
	return b.String()
}

// hostileWorld is every place the dashboard shows database text, filled
// with the fuzzer's strings.
type hostileWorld struct {
	now                         time.Time
	name, project, slug, status string
	errText, query, node, who   string
}

const hostileID = "00000000-0000-0000-0000-0000000000e1"

func (h hostileWorld) workflow() store.WorkflowMetrics {
	return store.WorkflowMetrics{
		WorkflowID: hostileID, ProjectID: hostileID, ProjectName: safetext.New(h.project), Name: safetext.New(h.name),
		Slug: safetext.New(h.slug), Version: 3, Status: safetext.New(h.status), Window: store.Window24h,
		Runs: 1234, Succeeded: 1100, Failed: 120, Canceled: 14, Running: 2,
		SuccessRate: ptr(1100.0 / 1234), FailureRate: ptr(120.0 / 1234),
		P50Ms: ptr(830.0), P95Ms: ptr(4200.0), AvgMs: ptr(1234.0), P99Ms: ptr(9000.0), MinMs: ptr(12.0), MaxMs: ptr(20000.0),
		LastFailureAt: ptr(h.now.Add(-3 * time.Hour)), LastUpdated: h.now,
	}
}

func (h hostileWorld) overview() store.Overview {
	lag := 30 * time.Second
	w := h.workflow()
	return store.Overview{
		Window: store.Window24h, Server: store.ServerInfo{Host: h.who, Database: h.name, Version: h.status},
		Workflows:  []store.WorkflowMetrics{w},
		Hourly:     map[string][]store.HourlyPoint{hostileID: {{WorkflowID: hostileID, Hour: h.now.Truncate(time.Hour), Runs: 10, Succeeded: 9, Failed: 1, P95Ms: ptr(900.0)}}},
		HourlyStep: time.Hour, RunningNow: map[string]int64{hostileID: 2},
		Views: []store.ViewStatus{
			{Name: store.ViewMetrics, Populated: true, Lag: &lag, LastRefreshID: 2, LastStatus: "failed", LastError: safetext.New(h.errText)},
			{Name: store.ViewHourly, Populated: true, Lag: &lag, LastRefreshID: 1, LastStatus: "ok"},
		},
		DataAsOf: ptr(h.now.Add(-lag)),
	}
}

func (h hostileWorld) detail() store.WorkflowDetail {
	return store.WorkflowDetail{
		Metrics: h.workflow(),
		Hourly:  []store.HourlyPoint{{WorkflowID: hostileID, Hour: h.now.Truncate(time.Hour).Add(-time.Hour), Runs: 40, Succeeded: 35, Failed: 5, P95Ms: ptr(1500.0)}},
		Steps: []store.StepMetrics{{WorkflowID: hostileID, NodeID: safetext.New(h.node), NodeType: safetext.New(h.slug), Window: store.Window24h,
			Executions: 4321, Failures: 321, FailureRate: ptr(321.0 / 4321), P50Ms: ptr(20.0), P95Ms: ptr(300.0), LastFailureAt: ptr(h.now.Add(-time.Hour))}},
	}
}

func (h hostileWorld) console() ConsoleLoadedMsg {
	ov := h.overview()
	fin := h.now.Add(-time.Minute)
	return ConsoleLoadedMsg{
		Seq:   nextTestSeq(),
		Views: ov.Views,
		Log: []store.RefreshLogEntry{
			{ID: 7, View: store.ViewMetrics, StartedAt: fin, FinishedAt: &fin, DurationMs: ptr(125.0), Status: "failed", Error: safetext.New(h.errText), PID: 42},
			{ID: 6, View: store.ViewHourly, StartedAt: fin, FinishedAt: &fin, DurationMs: ptr(125.0), Rows: ptr(int64(10)), Status: "ok",
				PID: 42, TriggeredBy: safetext.New(h.who), ApplicationName: safetext.New(h.name)},
		},
		Running: []store.RunningRefresh{{LogID: 8, View: store.ViewMetrics, PID: 43, StartedAt: h.now.Add(-5 * time.Second), WaitingForLock: true,
			BlockedBy: []store.Blocker{{PID: 44, Query: safetext.New(h.query), Age: 3 * time.Second}}}},
		Schedule: store.Schedule{CronAvailable: true, Scheduled: true, JobID: 1, Schedule: "* * * * *", Every: time.Minute, Active: true,
			LastRuns: []store.CronRun{{Start: fin, Status: "failed", Message: safetext.New(h.errText)}}},
	}
}

// hostileFrames renders the overview, detail, console and install screens
// and the status line of a model fed hostileWorld, at one size, in the
// current colour profile.
func hostileFrames(t *testing.T, h hostileWorld, width, height int) map[string]string {
	t.Helper()
	newM := func() Model {
		m := newModel(t0ctx(), Options{Clock: func() time.Time { return h.now }, Target: h.who})
		m = upd(m, tea.WindowSizeMsg{Width: width, Height: height})
		m.started = true
		return m
	}
	frames := map[string]string{}

	m := newM()
	m = upd(m, OverviewLoadedMsg{Seq: nextTestSeq(), Window: store.Window24h, Overview: h.overview()})
	frames["overview"] = m.View()

	m = upd(m, tea.KeyMsg{Type: tea.KeyEnter}) // the one row: its detail
	m = upd(m, WorkflowLoadedMsg{Seq: nextTestSeq(), ID: hostileID, Window: store.Window24h, Detail: h.detail()})
	frames["detail"] = m.View()

	m = upd(m, tea.KeyMsg{Type: tea.KeyTab})
	m = upd(m, h.console())
	frames["console"] = m.View()
	m = upd(m, RefreshFinishedMsg{View: store.ViewMetrics, Err: errors.New("refreshing: " + h.errText),
		Results: []store.RefreshResult{
			{View: store.ViewMetrics, Status: "failed", Error: safetext.New(h.errText)},
			{View: store.ViewHourly, Status: "skipped", Error: safetext.New(h.query)},
		}})
	// Nothing runs any more: the outcome of the refresh shows.
	m = upd(m, RunningLoadedMsg{Seq: nextTestSeq()})
	frames["console_outcome"] = m.View()

	m = newM()
	m.active = scrInstall
	im := m.inst()
	im.state, im.err, im.steps = installFailed, errors.New("install: "+h.errText), []install.StepEvent{
		{Version: 1, Name: "schema", Done: true, Duration: time.Second},
		{Version: 2, Name: "views", Err: fmt.Errorf("creating %s: %s", h.name, h.errText)},
	}
	m = upd(m, CopiedMsg{Err: errors.New(h.errText)})
	frames["install"] = m.View()
	return frames
}

var sgr = regexp.MustCompile(`^\x1b\[[0-9;:]*m`)

// checkFrame applies the rules of issue 16 to one frame.
func checkFrame(t *testing.T, name, frame string, width, height int, colour bool) {
	t.Helper()
	lines := strings.Split(frame, "\n")
	if len(lines) != height {
		t.Errorf("%s: %d lines, want %d:\n%s", name, len(lines), height, frame)
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > width {
			t.Errorf("%s: line %d is %d cells wide, the terminal %d: %q", name, i, w, width, l)
		}
	}
	if !utf8.ValidString(frame) {
		t.Errorf("%s: invalid UTF-8 in the frame: %q", name, frame)
	}
	for i := 0; i < len(frame); i++ {
		b := frame[i]
		switch {
		case b == '\n':
		case b == 0x1b && !colour:
			t.Fatalf("%s: ESC in an ASCII-profile frame at byte %d: %q", name, i, around(frame, i))
		case b == 0x1b:
			if m := sgr.FindString(frame[i:]); m == "" {
				t.Fatalf("%s: an escape that is not SGR at byte %d: %q", name, i, around(frame, i))
			} else {
				i += len(m) - 1
			}
		case b < 0x20 || b == 0x7f:
			t.Fatalf("%s: control byte %#x at %d: %q", name, b, i, around(frame, i))
		}
	}
	for i, r := range frame {
		if (r >= 0x80 && r <= 0x9f) || r == 0x2028 || r == 0x2029 || (unicode.Is(unicode.Cf, r) && r != 0x200c && r != 0x200d) {
			t.Fatalf("%s: %U in the frame at byte %d: %q", name, r, i, around(frame, i))
		}
	}
}

func around(s string, i int) string { return s[max(0, i-40):min(len(s), i+40)] }

// checkOverviewColumns: the cells of the hostile workflow's row sit exactly
// under the header's columns, and hold the row's numbers.
func checkOverviewColumns(t *testing.T, frame string, width int, w store.WorkflowMetrics) {
	t.Helper()
	lines := strings.Split(ansi.Strip(frame), "\n")
	header, row := lines[2], lines[3]   // frame header, tabs, then the table
	lay := layoutFor(width, colFailure) // the default sort
	if hw, rw := ansi.StringWidth(header), ansi.StringWidth(row); hw != rw {
		t.Fatalf("row is %d cells wide, header %d:\n%s\n%s", rw, hw, header, row)
	}
	want := map[column]string{colRuns: fmtCount(w.Runs), colRunning: "2", colSuccess: fmtPct(w.SuccessRate),
		colFailure: fmtPct(w.FailureRate), colP50: fmtMs(w.P50Ms), colP95: fmtMs(w.P95Ms), colAvg: fmtMs(w.AvgMs), colLastFailure: "3h"}
	// The version column follows the name.
	x := lay.name + 1 + lay.ver
	if got := strings.TrimSpace(ansi.Cut(row, lay.name+1, x)); got != fmt.Sprintf("v%d", w.Version) {
		t.Fatalf("version cell %q, want v%d:\n%s", got, w.Version, row)
	}
	for c := colProject; c < numSortable; c++ {
		if lay.w[c] == 0 {
			continue
		}
		sep := func(s string) string { return ansi.Cut(s, x, x+1) }
		if sep(header) != " " || sep(row) != " " {
			t.Fatalf("column %s: no separator at cell %d (header %q, row %q):\n%s\n%s", columnTitles[c], x, sep(header), sep(row), header, row)
		}
		cell := func(s string) string { return strings.TrimSpace(ansi.Cut(s, x+1, x+1+lay.w[c])) }
		if got := cell(header); !strings.HasPrefix(got, columnTitles[c]) {
			t.Fatalf("header cell %d = %q, want %s:\n%s", c, got, columnTitles[c], header)
		}
		if exp, ok := want[c]; ok && cell(row) != exp {
			t.Fatalf("column %s of the row holds %q, want %q: the row is out of line:\n%s\n%s", columnTitles[c], cell(row), exp, header, row)
		}
		x += 1 + lay.w[c]
	}
}

// checkStepColumns: the hostile step's numbers sit under the step table's
// header (when the terminal is tall enough to show it).
func checkStepColumns(t *testing.T, frame string, s store.StepMetrics) {
	t.Helper()
	lines := strings.Split(ansi.Strip(frame), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "Step (node)") || i+1 >= len(lines)-2 { // status and key help end the frame
			continue
		}
		row := lines[i+1]
		for _, c := range []struct {
			from, to int
			want     string
		}{{40, 50, fmt.Sprint(s.Executions)}, {51, 60, fmt.Sprint(s.Failures)}} {
			if got := strings.TrimSpace(ansi.Cut(row, c.from, c.to)); got != c.want {
				t.Fatalf("step row cells %d–%d hold %q, want %q:\n%s\n%s", c.from, c.to, got, c.want, l, row)
			}
			if got := strings.TrimSpace(ansi.Cut(l, c.from, c.to)); got != map[int]string{40: "Executions", 51: "Failures"}[c.from] {
				t.Fatalf("step header cells %d–%d hold %q", c.from, c.to, got)
			}
		}
		return
	}
	if len(lines) >= 40 {
		t.Fatalf("no step table in a detail frame of %d lines:\n%s", len(lines), frame)
	}
}

// FuzzHostileText renders every screen with names, slugs, statuses, node
// ids, errors, role and application names and a blocker's query text built
// from terminal control sequences, bidi characters and wide, combining and
// invisible runes, in the ASCII profile and in colour, at sizes from 80×20
// up, and checks: no ESC and no control byte but the frame's newlines in
// ASCII; in colour every ESC starts an SGR sequence (no OSC, no other CSI);
// no C1, bidi or format character; no line wider than the terminal; exactly
// the terminal's height; and the hostile row's columns line up with the
// header in the overview and the step table.
func FuzzHostileText(f *testing.F) {
	seed := func(s string) []byte {
		var out []byte
		for len(s) > 0 {
			best := -1
			for i, tok := range hostileTokens {
				if strings.HasPrefix(s, tok) && (best < 0 || len(tok) > len(hostileTokens[best])) {
					best = i
				}
			}
			if best < 0 {
				best = 0
				s = s[1:]
			} else {
				s = s[len(hostileTokens[best]):]
			}
			out = append(out, byte(best))
		}
		return out
	}
	evil := "Evil \x1b[2J\x1b[31mRED\x1b]0;pwned-title\x07 \x1b]52;c;cHduZWQ=\x07 tail"
	proj := "proj\x1b[5mblink\r\nnewline"
	f.Add(seed(evil), seed(proj), seed("\u202eadmin\u2066x\u2069"), seed("e\u0301中文😀\u200b"), "", byte(40), byte(20))
	f.Add(seed("\u0301日本語👨\u200d👩\u200d👧"), seed("\x9b2J\u009d0;t\u009c"), seed("\r\n\t\b"), seed(evil), "\x1b]0;raw\x07\xff", byte(0), byte(0))
	f.Add([]byte{}, []byte{}, []byte{}, []byte{}, evil+proj, byte(7), byte(3))
	prev := lipgloss.ColorProfile()
	f.Cleanup(func() { lipgloss.SetColorProfile(prev) })
	f.Fuzz(func(t *testing.T, a, b, c, d []byte, raw string, wb, hb byte) {
		h := hostileWorld{
			now:  time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC),
			name: compose(a) + raw, project: compose(b), slug: compose(c) + "-" + raw, status: compose(c),
			errText: compose(d) + raw, query: "select * from t where name = '" + compose(a) + compose(d) + "'",
			node: compose(b) + raw, who: compose(d),
		}
		width, height := MinWidth+int(wb)%80, MinHeight+int(hb)%25
		for _, colour := range []bool{false, true} {
			if colour {
				lipgloss.SetColorProfile(termenv.TrueColor)
			} else {
				lipgloss.SetColorProfile(termenv.Ascii)
			}
			frames := hostileFrames(t, h, width, height)
			for name, fr := range frames {
				checkFrame(t, name, fr, width, height, colour)
			}
			checkOverviewColumns(t, frames["overview"], width, h.workflow())
			checkStepColumns(t, frames["detail"], h.detail().Steps[0])
		}
		lipgloss.SetColorProfile(prev)
	})
}
