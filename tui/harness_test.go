package tui_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
	"github.com/meshtop/meshtop/internal/normalise"
	"github.com/meshtop/meshtop/tui"
)

func TestMain(m *testing.M) {
	// Stable bytes: no colour, whatever the terminal running the tests.
	lipgloss.SetColorProfile(termenv.Ascii)
	lipgloss.SetHasDarkBackground(true)
	pgtest.Main(m)
}

// anchor is the end of the generated history, the pinned metrics clock and
// the model clock: every relative time and chart range is computed from it.
var anchor = time.Date(2026, 3, 10, 12, 30, 0, 0, time.UTC)

const (
	schema = "metrics"
	width  = 120
	height = 40
	target = "localhost:5432/meshhook"
)

type env struct {
	db *pgtest.DB
	st *store.Store
	in *install.Installer
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// generate fills db with a small deterministic MeshHook history.
func generate(t *testing.T, db *pgtest.DB) {
	t.Helper()
	if _, err := fixture.Generate(ctxT(t), db.Pool, fixture.Spec{
		Seed: 42, Projects: 3, Workflows: 10, Runs: 3000, Days: 30, Anchor: anchor, Events: true,
	}); err != nil {
		t.Fatalf("generating the history: %v", err)
	}
}

// setupUninstalled gives a database with the history and no meshtop.
func setupUninstalled(t *testing.T, db *pgtest.DB) env {
	t.Helper()
	generate(t, db)
	return env{db: db, in: install.New(db.Pool, schema), st: store.New(db.Pool, nil, store.Options{Schema: schema})}
}

// setup gives a database with the history, meshtop installed and the
// metrics clock pinned at anchor. refresh also refreshes every view.
func setup(t *testing.T, db *pgtest.DB, refresh bool) env {
	t.Helper()
	generate(t, db)
	ctx := ctxT(t)
	in := install.New(db.Pool, schema)
	if _, err := in.Apply(ctx, nil); err != nil {
		t.Fatalf("installing: %v", err)
	}
	a := anchor
	if err := in.SetClock(ctx, &a); err != nil {
		t.Fatalf("pinning the metrics clock: %v", err)
	}
	e := env{db: db, in: in, st: store.New(db.Pool, nil, store.Options{Schema: schema})}
	if refresh {
		res, err := e.st.Refresh(ctx, "", false)
		if err != nil {
			t.Fatalf("refreshing: %v", err)
		}
		for _, r := range res {
			if r.Status != "ok" {
				t.Fatalf("refreshing %s: %s %s", r.View, r.Status, r.Error)
			}
		}
	}
	return e
}

func exec(t *testing.T, db *pgtest.DB, sql string, args ...any) {
	t.Helper()
	if _, err := db.Pool.Exec(ctxT(t), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// normalised wraps the real store and replaces what depends on the wall
// clock or the machine — backend pids, lock ages, refresh durations, the
// log's wall-clock timestamps, relation sizes, the server's minor version —
// with constants, so goldens are byte-stable. Every metric still comes
// from PostgreSQL.
type normalised struct{ *store.Store }

const (
	fixedPID = 4242
	fixedMs  = 125.0
)

func (n normalised) Overview(ctx context.Context, w store.Window) (store.Overview, error) {
	ov, err := n.Store.Overview(ctx, w)
	ov.Server.Version = "15"
	for i := range ov.Views {
		normView(&ov.Views[i])
	}
	return ov, err
}

func (n normalised) Server(ctx context.Context) (store.ServerInfo, error) {
	s, err := n.Store.Server(ctx)
	s.Version = "15"
	return s, err
}

func normView(v *store.ViewStatus) {
	v.SizeBytes = 1 << 20
	if v.LastDurationMs != nil {
		v.LastDurationMs = ptr(fixedMs)
	}
	if v.MedianDurationMs != nil {
		v.MedianDurationMs = ptr(fixedMs * 2)
	}
	for i := range v.RecentDurationsMs {
		v.RecentDurationsMs[i] = fixedMs * float64(1+i%3)
	}
	if v.Running != nil {
		normRunning(v.Running)
	}
}

func normRunning(r *store.RunningRefresh) {
	r.PID = fixedPID
	r.StartedAt = anchor
	for i := range r.BlockedBy {
		r.BlockedBy[i].PID = fixedPID + 1 + int32(i)
		r.BlockedBy[i].Age = 3 * time.Second
	}
}

// CaptureLog keeps what the database decides (mode, bound, stopped) and
// fixes what the statistics, the disk and the wall clock decide.
func (n normalised) CaptureLog(ctx context.Context) (store.CaptureLog, error) {
	c, err := n.Store.CaptureLog(ctx)
	if err != nil {
		return c, err
	}
	c.Rows, c.Bytes = 0, 16384
	c.Age, c.Since = 2*time.Minute, anchor.Add(-2*time.Minute)
	c.StopsAt, c.Left = c.Since.Add(c.MaxAge), c.MaxAge-c.Age
	if w := c.Capture; w != nil {
		w.ModeSince = anchor
		w.RetainedBytes, w.RestartBytes, w.Lag = 8192, 16384, 3*time.Second
		w.ConsumedLSN, w.Transactions, w.Changes = "0/0", 0, 0
		if w.ConsumedAt != nil {
			at := anchor.Add(-3 * time.Second)
			w.ConsumedAt = &at
		}
	}
	return c, nil
}

func (n normalised) Views(ctx context.Context) ([]store.ViewStatus, error) {
	vs, err := n.Store.Views(ctx)
	for i := range vs {
		normView(&vs[i])
	}
	return vs, err
}

// fixed spaces the log a minute apart per id before the anchor.
var fixed = normalise.Fixed{PID: fixedPID, Ms: fixedMs, Start: func(id, _ int64) time.Time {
	return anchor.Add(-time.Duration(id) * time.Minute)
}}

func (n normalised) RefreshLog(ctx context.Context, limit int) ([]store.RefreshLogEntry, error) {
	es, err := n.Store.RefreshLog(ctx, limit)
	fixed.RefreshLog(es)
	return es, err
}

func (n normalised) Running(ctx context.Context) ([]store.RunningRefresh, error) {
	rs, err := n.Store.Running(ctx)
	for i := range rs {
		normRunning(&rs[i])
	}
	return rs, err
}

func (n normalised) Refresh(ctx context.Context, view string, wait bool) ([]store.RefreshResult, error) {
	rs, err := n.Store.Refresh(ctx, view, wait)
	fixed.Results(rs)
	return rs, err
}

func ptr[T any](v T) *T { return &v }

// options are the dashboard's options in tests: fixed clock and size, a long
// poll interval (tests drive reads with keys and NOTIFY, not the clock).
func options(src tui.Source, in *install.Installer) tui.Options {
	o := tui.Options{
		Store: src, Interval: time.Hour, Window: store.Window24h, Target: target,
		Clock: func() time.Time { return anchor }, Output: &bytes.Buffer{},
	}
	if in != nil {
		o.Installer = in
	}
	return o
}

func start(t *testing.T, o tui.Options) *teatest.TestModel {
	t.Helper()
	return startSized(t, o, width, height)
}

// sizes are the terminals every screen has a golden for: a default SSH
// terminal, the size the screenshots use, and a wide one.
var sizes = [][2]int{{80, 24}, {120, 40}, {200, 50}}

// startSized is start in a w×h terminal.
func startSized(t *testing.T, o tui.Options, w, h int) *teatest.TestModel {
	t.Helper()
	// Cancelling the root context on cleanup ends the model's LISTEN and
	// queries before pgtest closes the pool, also when a test fails early.
	ctx, cancel := context.WithCancel(context.Background())
	tm := teatest.NewTestModel(t, tui.NewWithContext(ctx, o), teatest.WithInitialTermSize(w, h))
	t.Cleanup(func() {
		cancel()
		_ = tm.Quit()
	})
	return tm
}

// waitText waits until the program has drawn every given text.
func waitText(t *testing.T, tm *teatest.TestModel, texts ...string) {
	t.Helper()
	var seen []byte
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		seen = append(seen, b...)
		for _, s := range texts {
			if !bytes.Contains(seen, []byte(s)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(90*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
}

func key(s string) tea.KeyMsg {
	switch s {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "shift+tab":
		return tea.KeyMsg{Type: tea.KeyShiftTab}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

func press(tm *teatest.TestModel, keys ...string) {
	for _, k := range keys {
		tm.Send(key(k))
	}
}

// quitAndView quits and returns the last frame the model would draw.
func quitAndView(t *testing.T, tm *teatest.TestModel) string {
	t.Helper()
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(30*time.Second))
	return fm.View()
}

func requireGolden(t *testing.T, view string) {
	t.Helper()
	requireGoldenSized(t, view, width, height)
}

// requireGoldenSized checks the frame is exactly w×h cells — no line
// wider than the terminal, none missing — and compares it with the golden.
func requireGoldenSized(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) != h {
		t.Errorf("view has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("line %d is %d cells wide, the terminal %d: %q", i+1, n, w, l)
		}
	}
	golden.RequireEqual(t, []byte(view))
}
