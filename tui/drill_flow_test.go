package tui_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/teatest"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
	"github.com/meshtop/meshtop/data/workersim"
	"github.com/meshtop/meshtop/tui"
)

// drillDB is the drill-down scenario (data/workersim: runs written as
// MeshHook's workers write them, one failing with workersim.HostileError),
// meshtop installed, the clock pinned at anchor, every view refreshed.
func drillDB(t *testing.T) (env, workersim.Drill) {
	t.Helper()
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t)
	d, err := workersim.Scenario(ctx, db.Pool, anchor)
	if err != nil {
		t.Fatal(err)
	}
	in := install.New(db.Pool, schema)
	if _, err := in.Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	a := anchor
	if err := in.SetClock(ctx, &a); err != nil {
		t.Fatal(err)
	}
	e := env{db: db, in: in, st: store.New(db.Pool, nil, store.Options{Schema: schema})}
	res, err := e.st.Refresh(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != "ok" {
			t.Fatalf("refreshing %s: %s %s", r.View, r.Status, r.Error)
		}
	}
	return e, d
}

// toRuns opens the overview, filters to the Hubspot workflow, opens its
// detail and presses key (f or l) there; it returns when the list is drawn
// (waiting for want).
func toRuns(t *testing.T, tm *teatest.TestModel, raw *rawStream, key string, want ...string) {
	t.Helper()
	raw.wait(t, tm, "data as of")
	press(tm, "/")
	tm.Type("hubspot")
	press(tm, "enter", "enter")
	raw.wait(t, tm, "Step (node)", "f failed runs")
	press(tm, key)
	raw.wait(t, tm, want...)
}

// TestFlowDrillDown: overview → detail → failed runs → a run's timeline →
// back, at 80×24 and 120×40, on runs whose errors carry terminal control
// sequences, a bidirectional override, a line break and 10 kB of text: the
// list shows each error on one line, cut to its cell; the timeline shows
// it whole, wrapped, every control character a visible escape; nothing
// reaches the terminal as a sequence; esc goes back one screen at a time.
func TestFlowDrillDown(t *testing.T) {
	t.Parallel()
	e, d := drillDB(t)
	src := normalised{e.st}
	for _, sz := range [][2]int{{80, 24}, {120, 40}} {
		w, h := sz[0], sz[1]
		t.Run(fmt.Sprintf("runs_%dx%d", w, h), func(t *testing.T) {
			tm := startSized(t, options(src, nil), w, h)
			var raw rawStream
			toRuns(t, tm, &raw, "f", "Failed runs", "Error: HTTP 504", "2 failed runs")
			press(tm, "j") // fail-2: the hostile error
			raw.wait(t, tm, "characters, whole in the timeline")
			view := quitAndView(t, tm)
			checkNoInjection(t, raw.all)
			if !strings.Contains(view, `Error: HTTP 500 \x1b[2J\x1b[31`) || !strings.Contains(view, `\x1b]52;c;cHduZWQ=\a \u202eevil`) || !strings.Contains(view, "‹Runs›") {
				t.Errorf("the hostile error is not on its row as visible escapes:\n%s", view)
			}
			requireGoldenSized(t, view, w, h)
		})
		t.Run(fmt.Sprintf("timeline_%dx%d", w, h), func(t *testing.T) {
			tm := startSized(t, options(src, nil), w, h)
			var raw rawStream
			toRuns(t, tm, &raw, "f", "Error: HTTP 504")
			press(tm, "j", "enter")
			raw.wait(t, tm, "Run "+d.Runs["fail-2"], "attempts 1–5:")
			view := quitAndView(t, tm)
			checkNoInjection(t, raw.all)
			for _, want := range []string{"‹Run›", "notify", "500 500 500 500 500", "failed", "attempts 1–5:", `Error: HTTP 500 \x1b[2J`, "lines 1–"} {
				if !strings.Contains(view, want) {
					t.Errorf("the timeline lacks %q:\n%s", want, view)
				}
			}
			requireGoldenSized(t, view, w, h)
		})
		t.Run(fmt.Sprintf("timeline_end_%dx%d", w, h), func(t *testing.T) {
			// The end of the 10 kB error, wrapped: its last words and the
			// line after its line break.
			tm := startSized(t, options(src, nil), w, h)
			var raw rawStream
			toRuns(t, tm, &raw, "f", "Error: HTTP 504")
			press(tm, "j", "enter")
			raw.wait(t, tm, "attempts 1–5:")
			press(tm, "G")
			raw.wait(t, tm, "END")
			view := quitAndView(t, tm)
			checkNoInjection(t, raw.all)
			if !strings.Contains(view, "0123456789 END") {
				t.Errorf("the end of the error is not shown:\n%s", view)
			}
			requireGoldenSized(t, view, w, h)
		})
		t.Run(fmt.Sprintf("back_%dx%d", w, h), func(t *testing.T) {
			tm := startSized(t, options(src, nil), w, h)
			var raw rawStream
			toRuns(t, tm, &raw, "f", "Error: HTTP 504")
			press(tm, "enter")
			raw.wait(t, tm, "Run "+d.Runs["fail-1"], "TypeError: fetch failed")
			for _, back := range []string{"‹Runs›", "‹Detail›", "‹Overview›"} {
				press(tm, "esc")
				var again rawStream
				again.wait(t, tm, back)
			}
			view := quitAndView(t, tm)
			tabs := strings.Split(view, "\n")[1]
			if !strings.Contains(tabs, "‹Overview›") || strings.Contains(tabs, "Run") || strings.Contains(tabs, "Detail") {
				t.Errorf("esc from a run did not lead back to the overview one screen at a time:\n%s", view)
			}
		})
	}
	t.Run("slowest_120x40", func(t *testing.T) {
		tm := startSized(t, options(src, nil), 120, 40)
		var raw rawStream
		toRuns(t, tm, &raw, "l", "Slowest runs", "the slowest of 18 finished runs")
		view := quitAndView(t, tm)
		checkNoInjection(t, raw.all)
		requireGoldenSized(t, view, 120, 40)
	})
	t.Run("copy_run_id", func(t *testing.T) {
		out := &strings.Builder{}
		o := options(src, nil)
		o.Output = out
		tm := startSized(t, o, 120, 40)
		var raw rawStream
		toRuns(t, tm, &raw, "f", "Error: HTTP 504")
		press(tm, "y")
		raw.wait(t, tm, "copied "+d.Runs["fail-1"])
		_ = quitAndView(t, tm)
		if !strings.Contains(out.String(), "\x1b]52;c;") {
			t.Errorf("y wrote no OSC 52 sequence: %q", out.String())
		}
	})
}

var _ tui.Source = normalised{}
