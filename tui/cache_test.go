package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

// detail is a read of one workflow's page: hourly points over the detail's
// span and a few steps.
func (p *propWorld) detail(id string, w store.Window) store.WorkflowDetail {
	var d store.WorkflowDetail
	for _, wf := range p.byWin[w].Workflows {
		if wf.WorkflowID == id {
			d.Metrics = wf
		}
	}
	from, to := detailRange(p.now, w)
	for h := from; h.Before(to); h = h.Add(time.Hour) {
		if p.r.IntN(5) == 0 {
			continue
		}
		runs := int64(p.r.IntN(300))
		failed := runs * int64(p.r.IntN(20)) / 100
		d.Hourly = append(d.Hourly, store.HourlyPoint{WorkflowID: id, Hour: h, Runs: runs, Succeeded: runs - failed, Failed: failed,
			P95Ms: ptr(float64(100 + p.r.IntN(90_000)))})
	}
	for i := range p.r.IntN(30) {
		d.Steps = append(d.Steps, store.StepMetrics{WorkflowID: id, NodeID: safetext.New(fmt.Sprintf("step%02d", i)),
			NodeType: safetext.New("http_call"), Window: w, Executions: int64(p.r.IntN(5000)), Failures: int64(p.r.IntN(50)),
			FailureRate: ptr(p.r.Float64() * 0.2), P50Ms: ptr(p.r.Float64() * 900), P95Ms: ptr(p.r.Float64() * 9000)})
	}
	return d
}

// console is a read of the refresh console: the views, a log of
// incremental and full refreshes by a few applications, refreshes running
// (waiting for a lock or not), and a schedule.
func (p *propWorld) console() ConsoleLoadedMsg {
	r := p.r
	msg := ConsoleLoadedMsg{Seq: nextTestSeq()}
	lag := time.Duration(r.IntN(3600)) * time.Second
	for i, v := range []string{store.ViewHourly, store.ViewMetrics, store.ViewSteps} {
		vs := store.ViewStatus{Name: v, Populated: r.IntN(6) > 0, Rows: int64(r.IntN(100000)), SizeBytes: int64(r.IntN(1 << 30)),
			LastStatus: []string{"ok", "failed", "running", ""}[r.IntN(4)], LastRefreshID: int64(i + 1),
			MedianDurationMs: ptr(r.Float64() * 30000), LastDurationMs: ptr(r.Float64() * 30000)}
		if vs.Populated {
			at := p.now.Add(-lag)
			vs.LastRefreshAt, vs.Lag = &at, &lag
		}
		for range r.IntN(25) {
			vs.RecentDurationsMs = append(vs.RecentDurationsMs, []float64{15, 18, 25_000, 0.5}[r.IntN(4)]*(1+r.Float64()))
		}
		msg.Views = append(msg.Views, vs)
	}
	apps := []string{"meshtop demo loop", "meshtop dashboard", "", "pg_cron"}
	for i := range r.IntN(60) {
		v := msg.Views[r.IntN(3)].Name
		e := store.RefreshLogEntry{ID: int64(100 - i), View: v, StartedAt: p.now.Add(-time.Duration(i*30) * time.Second),
			Status: []string{"ok", "ok", "ok", "failed", "skipped"}[r.IntN(5)], PID: int32(1000 + i),
			TriggeredBy: safetext.New("postgres"), ApplicationName: safetext.New(apps[r.IntN(len(apps))])}
		if e.Status == "ok" {
			e.Mode = []string{"incremental", "incremental", "full"}[r.IntN(3)]
			e.DirtyKeys = int64(r.IntN(500))
			e.DurationMs = ptr(map[string]float64{"incremental": 15, "full": 25_000}[e.Mode] * (1 + r.Float64()))
			e.Rows = ptr(int64(r.IntN(5000)))
		}
		if e.Status == "failed" {
			e.Error = safetext.New("canceling statement due to lock timeout " + strings.Repeat("detail ", r.IntN(20)))
		}
		msg.Log = append(msg.Log, e)
	}
	for range r.IntN(3) {
		rr := store.RunningRefresh{LogID: 101, View: msg.Views[r.IntN(3)].Name, PID: 4242,
			StartedAt: p.now.Add(-time.Duration(r.IntN(40_000)) * time.Millisecond), WaitingForLock: r.IntN(2) == 0}
		if rr.WaitingForLock {
			rr.BlockedBy = []store.Blocker{{PID: 4343, Query: safetext.New("lock table metrics.rollup_runs_hour in share mode"), Age: 3 * time.Second}}
		}
		msg.Running = append(msg.Running, rr)
	}
	switch r.IntN(4) {
	case 0:
		msg.Schedule = store.Schedule{CronAvailable: true, Scheduled: true, JobID: 3, Schedule: "* * * * *", Every: time.Minute, Active: true,
			NextRun: ptr(p.now.Add(35 * time.Second))}
	case 1:
		msg.Schedule = store.Schedule{CronAvailable: true}
	case 2:
		msg.Schedule = store.Schedule{}
	}
	return msg
}

// TestFramesSameThroughCachesAndFromScratch drives every screen with
// random keys, reads, resizes, clock moves and a lost connection, and
// renders each frame twice: through the caches (rows, sparklines, charts,
// the header, tabs and key help lines, lines known to fit) and with every
// cache bypassed. The frames must be identical: a cache keyed by less
// than its text depends on shows here.
func TestFramesSameThroughCachesAndFromScratch(t *testing.T) {
	keys := []string{"s", "s", "S", "d", "j", "k", "G", "g", "pgdown", "enter", "esc", "tab", "shift+tab", "1", "2", "3", "4",
		"[", "]", "x", "n", "r", "y", "?", "p", "/", "3", "esc", "enter", "down", "up"}
	for seed := uint64(1); seed <= 30; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			p := newPropWorld(seed, 50)
			r := p.r
			m := newModel(t0ctx(), Options{Clock: func() time.Time { return p.now }, Target: "127.0.0.1:5432/meshhook"})
			m.started = true
			sz := propSizes[r.IntN(len(propSizes))]
			m = upd(m, tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
			m = upd(m, OverviewLoadedMsg{Seq: nextTestSeq(), Window: store.Window24h, Overview: p.overview(store.Window24h)})
			var steps []string
			for i := range 80 {
				var step string
				switch k := r.IntN(10); {
				case k < 5:
					step = keys[r.IntN(len(keys))]
					m = upd(m, keyMsg(step))
				case k < 6:
					step = "resize"
					sz = propSizes[r.IntN(len(propSizes))]
					m = upd(m, tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
				case k < 8:
					step = "reads"
					w := m.c.sess.window
					m = upd(m, OverviewLoadedMsg{Seq: nextTestSeq(), Window: w, Overview: p.overview(w)})
					if id := m.dt().id; id != "" {
						m = upd(m, WorkflowLoadedMsg{Seq: nextTestSeq(), ID: id, Window: w, Detail: p.detail(id, w)})
					}
					m = upd(m, p.console())
				case k < 9:
					step = "clock"
					p.now = p.now.Add(time.Duration(r.IntN(5400)) * time.Second)
				default:
					step = "connection"
					if m.conn.lost {
						m = upd(m, ReconnectedMsg{Attempt: m.conn.attempt, Server: store.ServerInfo{Version: "15"}})
					} else {
						m.handleErr("reading", fmt.Errorf("reading: %w", errConnRefused))
					}
				}
				steps = append(steps, step)
				cached := m.View()
				m.c.noCache = true
				fresh := m.View()
				m.c.noCache = false
				if cached != fresh {
					t.Fatalf("step %d (%s) after %v: the frame through the caches differs from the frame drawn afresh:\n%s\n---- afresh:\n%s",
						i, step, steps, cached, fresh)
				}
			}
		})
	}
}

// TestInstallFramesSameThroughCachesAndFromScratch: the install screen's
// states, each rendered through the caches and afresh, at every size.
func TestInstallFramesSameThroughCachesAndFromScratch(t *testing.T) {
	now := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	in := install.New(nil, "metrics")
	m := newModel(t0ctx(), Options{Clock: func() time.Time { return now }, Installer: in, Target: "127.0.0.1:5432/meshhook"})
	m = upd(m, InstalledCheckedMsg{}, InstallCheckedMsg{Pending: 19})
	for _, sz := range propSizes {
		m = upd(m, tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		for _, k := range []string{"down", "pgdown", "G", "up", "g"} {
			m = upd(m, keyMsg(k))
			cached := m.View()
			m.c.noCache = true
			fresh := m.View()
			m.c.noCache = false
			if cached != fresh {
				t.Fatalf("%v after %s: cached and fresh frames differ:\n%s\n----\n%s", sz, k, cached, fresh)
			}
		}
	}
}

var errConnRefused = fmt.Errorf("dial tcp 127.0.0.1:5432: connect: connection refused")

// keyMsg is the key message a terminal sends for a key's name.
func keyMsg(s string) tea.KeyMsg {
	switch s {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "shift+tab":
		return tea.KeyMsg{Type: tea.KeyShiftTab}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "pgdown":
		return tea.KeyMsg{Type: tea.KeyPgDown}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}
