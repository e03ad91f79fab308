package tui

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

// syntheticOverview builds an overview of n workflows with a 24h hourly
// series each, for render benchmarks and layout checks (the goldens use the
// real fixture).
func syntheticOverview(n int, now time.Time) store.Overview {
	r := rand.New(rand.NewPCG(1, 2))
	ov := store.Overview{Window: store.Window24h, Hourly: map[string][]store.HourlyPoint{}, RunningNow: map[string]int64{}}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
		runs := int64(r.IntN(5000))
		failed := runs * int64(r.IntN(15)) / 100
		w := store.WorkflowMetrics{
			WorkflowID: id, ProjectName: safetext.New(fmt.Sprintf("project-%d", i%7)), Name: safetext.New(fmt.Sprintf("workflow %d", i)),
			Slug: safetext.New(fmt.Sprintf("wf-%d", i)), Version: 1 + i%3, Status: safetext.New("published"), Window: store.Window24h,
			Runs: runs, Succeeded: runs - failed, Failed: failed,
		}
		if runs > 0 {
			w.SuccessRate = ptr(float64(runs-failed) / float64(runs))
			w.FailureRate = ptr(float64(failed) / float64(runs))
			w.P50Ms, w.P95Ms, w.AvgMs = ptr(100+r.Float64()*900), ptr(1000+r.Float64()*9000), ptr(300+r.Float64()*900)
			w.LastFailureAt = ptr(now.Add(-time.Duration(r.IntN(86400)) * time.Second))
		}
		ov.Workflows = append(ov.Workflows, w)
		ov.RunningNow[id] = int64(r.IntN(3))
		for h := 0; h < 24; h++ {
			ov.Hourly[id] = append(ov.Hourly[id], store.HourlyPoint{WorkflowID: id, Hour: now.Truncate(time.Hour).Add(-time.Duration(23-h) * time.Hour),
				Runs: 100, Succeeded: int64(90 + r.IntN(10)), Failed: 5, P95Ms: ptr(1000 + r.Float64()*1000)})
		}
	}
	lag := 30 * time.Second
	ov.Views = []store.ViewStatus{
		{Name: store.ViewHourly, Populated: true, Lag: &lag, LastRefreshID: 1},
		{Name: store.ViewMetrics, Populated: true, Lag: &lag, LastRefreshID: 2},
	}
	ov.DataAsOf = ptr(now.Add(-lag))
	return ov
}

func syntheticModel(n int) Model {
	now := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	m := newModel(t0ctx(), Options{Clock: func() time.Time { return now }, Target: "127.0.0.1:5432/meshhook"})
	m = upd(m, tea.WindowSizeMsg{Width: 120, Height: 40})
	m.started = true
	return upd(m, OverviewLoadedMsg{Seq: nextTestSeq(), Window: store.Window24h, Overview: syntheticOverview(n, now)})
}

func TestSyntheticOverviewRendersOnlyVisibleRows(t *testing.T) {
	m := syntheticModel(1000)
	out := m.View()
	lines := strings.Split(out, "\n")
	if len(lines) != 40 {
		t.Fatalf("view has %d lines, want 40", len(lines))
	}
	if n := len(m.ov().cache.sparks); n == 0 || n > 40 {
		t.Fatalf("%d sparklines drawn for 1000 rows: off-screen rows must not be drawn", n)
	}
	if !strings.Contains(out, "Σ 1000/1000 workflows") {
		t.Fatalf("totals row missing:\n%s", out)
	}
	if testing.Verbose() {
		t.Log("\n" + out)
	}
}

func BenchmarkOverviewView10k(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("workflows=%d", n), func(b *testing.B) {
			m := syntheticModel(n)
			var tm tea.Model = m
			tm.View() // first frame draws the visible sparklines
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Move the selection so each frame differs, as when scrolling.
				tm, _ = tm.Update(runeKey("j"))
				_ = tm.View()
			}
		})
	}
}

// BenchmarkOverviewPoll10k is the frame after a poll that follows a refresh
// of the metrics view: the new rows are filtered, sorted and totalled, and
// the visible rows are rendered afresh (the sparklines are kept: the hourly
// view was not refreshed).
func BenchmarkOverviewPoll10k(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("workflows=%d", n), func(b *testing.B) {
			m := syntheticModel(n)
			// Two reads that differ in every row, as after a refresh.
			ovs := [2]store.Overview{m.ov().data, m.ov().data}
			_ = ovs
			ovs[1].Workflows = slices.Clone(ovs[0].Workflows)
			for i := range ovs[1].Workflows {
				ovs[1].Workflows[i].LastUpdated = ovs[1].Workflows[i].LastUpdated.Add(time.Minute)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m = upd(m, OverviewLoadedMsg{Seq: nextTestSeq(), Window: store.Window24h, Overview: ovs[i%2]})
				_ = m.View()
			}
		})
	}
}

// BenchmarkOverviewPollUnchanged10k is the frame after a poll between two
// refreshes: the same rows (the store's cached copy) and one workflow's
// running-now count changed, so the order is kept and only that row is
// rendered again.
func BenchmarkOverviewPollUnchanged10k(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("workflows=%d", n), func(b *testing.B) {
			m := syntheticModel(n)
			_ = m.View()
			ovs := [2]store.Overview{m.ov().data, m.ov().data}
			ovs[1].Workflows = slices.Clone(ovs[0].Workflows)
			ovs[1].RunningNow = maps.Clone(ovs[0].RunningNow)
			ovs[1].RunningNow[m.ov().selected().WorkflowID]++
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m = upd(m, OverviewLoadedMsg{Seq: nextTestSeq(), Window: store.Window24h, Overview: ovs[i%2]})
				_ = m.View()
			}
		})
	}
}

// BenchmarkOverviewFrame50 is the frame time of a 50-workflow overview at
// 120×40, through the caches and with them bypassed (noCache): a frame
// after a message that changed nothing on the table (most messages: a
// tick, a console read), and a frame after the selection moved.
func BenchmarkOverviewFrame50(b *testing.B) {
	for _, cached := range []bool{true, false} {
		for _, moving := range []bool{false, true} {
			name := fmt.Sprintf("cache=%v/moving=%v", cached, moving)
			b.Run(name, func(b *testing.B) {
				m := syntheticModel(50)
				m.c.noCache = !cached
				var tm tea.Model = m
				tm.View()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if moving {
						tm, _ = tm.Update(runeKey([]string{"j", "k"}[i/30%2]))
					}
					_ = tm.View()
				}
			})
		}
	}
}
