package tui

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

// propSizes are the terminals the property tests resize among.
var propSizes = [][2]int{{80, 24}, {80, 30}, {100, 30}, {120, 40}, {132, 43}, {160, 45}, {200, 50}}

// propWorld is the data a property test feeds the dashboard: what the
// model was last given is what every frame must show.
type propWorld struct {
	r     *rand.Rand
	now   time.Time
	n     int
	gen   int
	byWin map[store.Window]store.Overview
}

func newPropWorld(seed uint64, n int) *propWorld {
	return &propWorld{r: rand.New(rand.NewPCG(seed, 7)), now: time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC), n: n,
		byWin: map[store.Window]store.Overview{}}
}

// overview is a fresh read of window w: random metrics of every magnitude
// (durations from 0.4 ms to hours, counts up to millions, undefined values),
// random running counts and changes.
func (p *propWorld) overview(w store.Window) store.Overview {
	p.gen++
	ov := syntheticOverview(p.n, p.now)
	ov.Window = w
	r := p.r
	durs := []float64{0.4, 12, 830, 4_200, 29_400, 61_000, 3_700_000}
	for i := range ov.Workflows {
		wf := &ov.Workflows[i]
		wf.Window = w
		wf.Runs = []int64{0, 3, 8, 69, 950, 12_345, 4_100_000}[r.IntN(7)]
		wf.Failed = wf.Runs * int64(r.IntN(40)) / 100
		wf.Succeeded = wf.Runs - wf.Failed
		if wf.Runs == 0 {
			wf.SuccessRate, wf.FailureRate, wf.P50Ms, wf.P95Ms, wf.AvgMs, wf.LastFailureAt = nil, nil, nil, nil, nil, nil
		} else {
			wf.SuccessRate = ptr(float64(wf.Succeeded) / float64(wf.Runs))
			wf.FailureRate = ptr(float64(wf.Failed) / float64(wf.Runs))
			wf.P50Ms = ptr(durs[r.IntN(len(durs))] * (1 + r.Float64()))
			wf.P95Ms = ptr(durs[r.IntN(len(durs))] * (1 + r.Float64()))
			wf.AvgMs = ptr(durs[r.IntN(len(durs))] * (1 + r.Float64()))
			wf.LastFailureAt = ptr(p.now.Add(-time.Duration(r.IntN(40*86400)) * time.Second))
			if wf.Failed == 0 {
				wf.LastFailureAt = nil
			}
		}
		if r.IntN(10) == 0 {
			wf.Status = safetext.New("archived")
		}
		ov.RunningNow[wf.WorkflowID] = int64(r.IntN(3) * r.IntN(200))
	}
	for i := range ov.Views {
		ov.Views[i].LastRefreshID = int64(p.gen)
	}
	ov.Changes = map[string]store.Change{}
	for _, wf := range ov.Workflows {
		if r.IntN(4) == 0 {
			continue
		}
		done, prev := []int64{2, 8, 10, 69, 500}[r.IntN(5)], []int64{0, 5, 10, 69, 500}[r.IntN(5)]
		ov.Changes[wf.WorkflowID] = store.Change{WorkflowID: wf.WorkflowID,
			FailureRate: ptr(r.Float64() * 0.4), PrevFailureRate: ptr(r.Float64() * 0.4), Completed: done, PrevCompleted: prev,
			P95HourMs: ptr(100 + r.Float64()*900), PrevP95HourMs: ptr(100 + r.Float64()*900)}
	}
	p.byWin[w] = ov
	return ov
}

// running changes only the running-now counts of the last read of w.
func (p *propWorld) running(w store.Window) store.Overview {
	ov := p.byWin[w]
	rn := map[string]int64{}
	for id, n := range ov.RunningNow {
		rn[id] = n
	}
	for range 3 {
		rn[ov.Workflows[p.r.IntN(len(ov.Workflows))].WorkflowID] = int64(p.r.IntN(500))
	}
	ov.RunningNow = rn
	p.byWin[w] = ov
	return ov
}

var (
	rowName = regexp.MustCompile(`^(?:▸ |  )workflow (\d+) `)
	// The overview header's titles, in order; a sorted one carries ↑ or ↓.
	leftTitles  = []string{"Workflow", "Ver", "Project"}
	rightTitles = []string{"Runs", "Now", "Succ%", "Fail%", "ΔFail", "p50", "p95", "Δp95", "Avg", "Last fail"}
)

type headerCell struct {
	title      string
	start, end int // rune (= cell) positions, end exclusive, the arrow included
	right      bool
}

// parseHeader splits the table header into its titles. Every non-space run
// of the header must be a known title: a cut title ("Last fai…") fails.
func parseHeader(t *testing.T, header string) []headerCell {
	t.Helper()
	rs := []rune(header)
	var cells []headerCell
	titles := append(append([]string{}, leftTitles...), rightTitles...)
	for i := 0; i < len(rs); {
		if rs[i] == ' ' {
			i++
			continue
		}
		rest := string(rs[i:])
		best := ""
		for _, tt := range titles {
			if strings.HasPrefix(rest, tt) && len(tt) > len(best) {
				best = tt
			}
		}
		for _, tt := range []string{"Succ ", "p95 "} { // a sparkline's title names its span
			if strings.HasPrefix(rest, tt) && len(rest) > len(tt) && rest[len(tt)] >= '0' && rest[len(tt)] <= '9' {
				best = tt
			}
		}
		if best == "" {
			t.Fatalf("unknown header cell at %d: %q\n%s", i, rest, header)
		}
		n := len([]rune(best))
		right := true
		for _, l := range leftTitles {
			right = right && l != best
		}
		if best == "Succ " || best == "p95 " { // the sparklines: "Succ 24h"
			for i+n < len(rs) && rs[i+n] != ' ' {
				n++
			}
			right = false
		}
		if i+n < len(rs) && (rs[i+n] == '↑' || rs[i+n] == '↓') {
			n++
		}
		title := strings.TrimSpace(best)
		if best == "Succ " || best == "p95 " {
			title = "sparkline " + title
		}
		cells = append(cells, headerCell{title: title, start: i, end: i + n, right: right})
		i += n
	}
	return cells
}

// tableFrame is the overview's table found in a frame: its header and rows
// (lines that name a workflow), ANSI stripped.
func tableFrame(frame string) (header string, rows []string) {
	lines := strings.Split(ansi.Strip(frame), "\n")
	for i, l := range lines {
		if strings.Contains(l, "Workflow") && strings.Contains(l, "Ver") {
			header = l
			for _, r := range lines[i+1:] {
				if rowName.MatchString(r) {
					rows = append(rows, r)
				}
			}
			return header, rows
		}
	}
	return "", nil
}

// expectedCells is what each column must hold for a workflow, formatted
// as the dashboard formats it.
func expectedCells(w *store.WorkflowMetrics, ov store.Overview, now time.Time) map[string]string {
	ch := ov.Changes[w.WorkflowID]
	dfail := ch.FailureRateDelta()
	if ch.Completed < store.MinCompletedRuns || ch.PrevCompleted < store.MinCompletedRuns {
		dfail = nil // under the volume floor: no comparison
	}
	name := fmt.Sprintf("%s · %s", w.Name, w.Slug)
	if w.Status.Is("archived") {
		name += " [archived]"
	}
	return map[string]string{
		"Workflow": name, "Ver": fmt.Sprintf("v%d", w.Version), "Project": w.ProjectName.String(),
		"Runs": fmtCount(w.Runs), "Now": fmt.Sprint(ov.RunningNow[w.WorkflowID]),
		"Succ%": fmtPct(w.SuccessRate), "Fail%": fmtPct(w.FailureRate), "ΔFail": fmtPoints(dfail),
		"p50": fmtMs(w.P50Ms), "p95": fmtMs(w.P95Ms), "Δp95": fmtRatio(ch.P95Ratio()), "Avg": fmtMs(w.AvgMs),
		"Last fail": fmtAgeShort(w.LastFailureAt, now),
	}
}

// checkTableFrame: every row of the frame's table is as wide as its
// header, and every cell under a title holds that column's value for the
// row's workflow — right-aligned cells end where their title ends,
// left-aligned ones start where it starts (a cut text ends in "…").
func checkTableFrame(t *testing.T, step string, frame string, ov store.Overview, now time.Time) {
	t.Helper()
	header, rows := tableFrame(frame)
	if header == "" {
		t.Fatalf("%s: no table header in the frame:\n%s", step, frame)
	}
	hcells := parseHeader(t, header)
	byID := map[int]*store.WorkflowMetrics{}
	for i := range ov.Workflows {
		var n int
		fmt.Sscanf(ov.Workflows[i].Name.String(), "workflow %d", &n)
		byID[n] = &ov.Workflows[i]
	}
	hw := len([]rune(header))
	for _, row := range rows {
		rs := []rune(row)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%s: %s\n%s\n%s\nframe:\n%s", step, fmt.Sprintf(format, args...), header, row, frame)
		}
		if ansi.StringWidth(row) != len(rs) {
			fail("a row with a wide character: the parse assumes one cell per rune")
		}
		if len(rs) != hw {
			fail("the row is %d cells wide, its header %d", len(rs), hw)
		}
		id, _ := strconv.Atoi(rowName.FindStringSubmatch(row)[1])
		w := byID[id]
		if w == nil {
			fail("row of workflow %d, which the data does not hold", id)
		}
		want := expectedCells(w, ov, now)
		for k, hc := range hcells {
			exp, ok := want[hc.title]
			if !ok { // a sparkline: only its place is checked (the width above)
				continue
			}
			if !hc.right {
				start, end := hc.start, len(rs)
				if hc.title == "Workflow" {
					start = 2 // after the selection mark
				}
				if k+1 < len(hcells) {
					end = hcells[k+1].start - 1
					if hcells[k+1].right {
						end = len(rs) // bounded by the next cell's own check
					}
				}
				if start > 0 && rs[start-1] != ' ' {
					fail("column %s does not start after a gap", hc.title)
				}
				got := strings.TrimRight(string(rs[start:min(end, len(rs))]), " ")
				if i := strings.Index(got, "  "); i >= 0 && hc.title != "Workflow" {
					got = got[:i]
				}
				if got != exp && !(strings.HasSuffix(got, "…") && strings.HasPrefix(exp, strings.TrimSuffix(got, "…"))) &&
					!strings.HasPrefix(got, exp+" ") {
					fail("column %s holds %q, want %q", hc.title, got, exp)
				}
				continue
			}
			e := []rune(exp)
			from := hc.end - len(e)
			if from < 1 || string(rs[from:hc.end]) != exp || rs[from-1] != ' ' || (hc.end < len(rs) && rs[hc.end] != ' ') {
				fail("column %s (cells %d–%d) does not hold %q right-aligned under its title: %q",
					hc.title, hc.start, hc.end, exp, string(rs[max(0, from-1):min(len(rs), hc.end+1)]))
			}
		}
	}
}

// TestTablePropertyCellsUnderTheirHeader drives the overview with random
// key sequences — sort, sort direction, d, filter, window, moves, resizes
// among 80×24 … 200×50, new reads and running-count updates between
// frames — and checks on every frame that every visible cell holds the
// value of the column whose title stands above it (issue #24.1: rows kept
// the layout of the previous sort).
func TestTablePropertyCellsUnderTheirHeader(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			p := newPropWorld(seed, 50)
			r := p.r
			now := p.now
			m := newModel(t0ctx(), Options{Clock: func() time.Time { return now }, Target: "127.0.0.1:5432/meshhook"})
			m.started = true
			var tm tea.Model = m
			send := func(msg tea.Msg) {
				tm, _ = tm.Update(msg)
			}
			sz := propSizes[r.IntN(len(propSizes))]
			send(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
			win := store.Window24h
			feedPropOverview(send, p.overview(win))
			var steps []string
			for i := range 60 {
				var step string
				switch k := r.IntN(16); {
				case k < 4:
					step = "s"
				case k < 5:
					step = "S"
				case k < 6:
					step = "d"
				case k < 8:
					step = []string{"j", "k", "G", "g"}[r.IntN(4)]
				case k < 9:
					step = "resize"
					sz = propSizes[r.IntN(len(propSizes))]
					send(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
				case k < 10:
					step = "window"
					nw := store.Windows[r.IntN(len(store.Windows))]
					send(runeKey(string(rune('1' + windowIndex(nw)))))
					if nw != win {
						win = nw
						feedPropOverview(send, p.overview(win))
					}
				case k < 11:
					step = "read"
					feedPropOverview(send, p.overview(win))
				case k < 13:
					step = "running"
					feedPropOverview(send, p.running(win))
				case k < 14:
					step = "filter"
					send(runeKey("/"))
					send(runeKey(fmt.Sprint(r.IntN(10))))
					send(tea.KeyMsg{Type: tea.KeyEnter})
				case k < 15:
					step = "esc"
					send(tea.KeyMsg{Type: tea.KeyEsc})
				default:
					step = "clock"
					now = now.Add(time.Duration(r.IntN(90)) * time.Minute)
				}
				if len(step) == 1 {
					send(runeKey(step))
				}
				steps = append(steps, step)
				checkTableFrame(t, fmt.Sprintf("step %d (%s) at %dx%d after %v", i, step, sz[0], sz[1], steps), tm.View(), p.byWin[win], now)
			}
		})
	}
}

func windowIndex(w store.Window) int {
	for i, x := range store.Windows {
		if x == w {
			return i
		}
	}
	return 0
}

func feedPropOverview(send func(tea.Msg), ov store.Overview) {
	propSeq++
	send(OverviewLoadedMsg{Seq: propSeq, Window: ov.Window, Overview: ov})
}

var propSeq = 1 << 20
