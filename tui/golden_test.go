package tui_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

// TestGoldenInstallPrompt: a database with MeshHook's tables but without
// meshtop's views offers to install and lists what it creates.
func TestGoldenInstallPrompt(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	e := setupUninstalled(t, db)
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(t *testing.T) {
			tm := startSized(t, options(normalised{e.st}, e.in), sz[0], sz[1])
			waitText(t, tm, "Install now?")
			requireGoldenSized(t, quitAndView(t, tm), sz[0], sz[1])
		})
	}
}

// TestGoldens renders the screens from one refreshed fixture, at every
// size of sizes.
func TestGoldens(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewDatabase(t), true)
	src := normalised{e.st}

	screens := []struct {
		name string
		keys []string
		wait []string
	}{
		{"overview", nil, nil},
		{"detail", []string{"enter"}, []string{"runs / hour", "Step (node)"}},
		{"console", []string{"tab"}, []string{"schedule:", "By / error"}},
		{"help", []string{"?"}, []string{"any key closes this help"}},
	}
	for _, sc := range screens {
		for _, sz := range sizes {
			t.Run(fmt.Sprintf("%s_%dx%d", sc.name, sz[0], sz[1]), func(t *testing.T) {
				tm := startSized(t, options(src, nil), sz[0], sz[1])
				waitText(t, tm, "data as of")
				press(tm, sc.keys...)
				if len(sc.wait) > 0 {
					waitText(t, tm, sc.wait...)
				}
				requireGoldenSized(t, quitAndView(t, tm), sz[0], sz[1])
			})
		}
	}
	t.Run("overview_filtered_sorted", func(t *testing.T) {
		tm := start(t, options(src, nil))
		waitText(t, tm, "data as of")
		press(tm, "/")
		tm.Type("slack")
		press(tm, "enter", "s", "s", "S") // sort by p50 ascending (after ΔFail)
		waitText(t, tm, "sorted by p50 ascending")
		requireGolden(t, quitAndView(t, tm))
	})
	t.Run("too_small", func(t *testing.T) {
		tm := start(t, options(src, nil))
		waitText(t, tm, "data as of")
		tm.Send(tea.WindowSizeMsg{Width: 70, Height: 16})
		waitText(t, tm, "make it larger")
		view := quitAndView(t, tm)
		if !strings.Contains(view, "at least 80×20") {
			t.Fatalf("too-small message missing:\n%s", view)
		}
		// The message is centred in the 70×16 window.
		if got := strings.Count(view, "\n") + 1; got != 16 {
			t.Fatalf("too-small view has %d lines, want 16", got)
		}
		golden.RequireEqual(t, []byte(view))
	})
}

// TestGoldenInstallPromptEnd: at 80×24 the install prompt scrolls (G) to
// the end of what it creates — the part an SRE must vet was cut at "… and
// 18 more" (issue 24.2).
func TestGoldenInstallPromptEnd(t *testing.T) {
	t.Parallel()
	e := setupUninstalled(t, pgtest.NewDatabase(t))
	tm := startSized(t, options(normalised{e.st}, e.in), 80, 24)
	waitText(t, tm, "Install now?")
	press(tm, "G")
	waitText(t, tm, "procedure         metrics.refresh(text, boolean)")
	view := quitAndView(t, tm)
	for _, want := range []string{"metrics.refresh(text, boolean)", " of 62 "} {
		if !strings.Contains(view, want) {
			t.Errorf("%q not on the prompt scrolled to its end:\n%s", want, view)
		}
	}
	requireGoldenSized(t, view, 80, 24)
}

// gated holds every Refresh until release is closed, so a frame of a
// refresh in progress can be taken; the refresh then runs for real.
type gated struct {
	normalised
	release chan struct{}
}

func (g gated) Refresh(ctx context.Context, view string, wait bool) ([]store.RefreshResult, error) {
	<-g.release // not ctx: quitting must not end the refresh before the frame is taken
	return g.normalised.Refresh(ctx, view, wait)
}

// TestGoldenFirstRefreshInProgress: after installing, the first refresh
// shows at 80×24 — the install collapsed to one line, each view's state
// (issue 24.2: its progress block needed 30+ rows, the screen looked
// frozen) — and x asks before cancelling it (24.13).
func TestGoldenFirstRefreshInProgress(t *testing.T) {
	t.Parallel()
	e := setupUninstalled(t, pgtest.NewDatabase(t))
	g := gated{normalised: normalised{e.st}, release: make(chan struct{})}
	t.Cleanup(func() { close(g.release) })
	tm := startSized(t, options(g, e.in), 80, 24)
	waitText(t, tm, "Install now?")
	press(tm, "y")
	waitText(t, tm, "First refresh (0/3 views)", "mv_workflow_metrics_hourly refreshing 0s")
	press(tm, "x") // asks first
	waitText(t, tm, "cancel the first refresh?")
	press(tm, "n")
	waitText(t, tm, "x cancels the first refresh")
	requireGoldenSized(t, quitAndView(t, tm), 80, 24)
}

// TestGoldenPausedUpdatesWaiting: paused, a refresh elsewhere does not
// reload the table — the header and the status line count what waits —
// and p shows it (issue 24.3: Σ runs moved while "paused").
func TestGoldenPausedUpdatesWaiting(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewDatabase(t), true)
	ctx := ctxT(t)
	pausedRefresh := func(tm *teatest.TestModel) {
		t.Helper()
		waitListening(t, e)
		press(tm, "p")
		waitText(t, tm, "polling paused")
		exec(t, e.db, `insert into public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
			select project_id, workflow_id, 'failed', $1::timestamptz - interval '5 minutes', $1::timestamptz - interval '4 minutes'
			from public.workflow_runs limit 20`, anchor)
		if _, err := e.st.Refresh(ctx, "", false); err != nil {
			t.Fatal(err)
		}
		waitText(t, tm, "paused · 3 waiting", "3 refreshes finished since, not shown")
	}

	// p again shows what waited.
	tm := startSized(t, options(normalised{e.st}, nil), 80, 24)
	waitText(t, tm, "Σ 17/17 workflows                          111")
	pausedRefresh(tm)
	press(tm, "p")
	waitText(t, tm, "Σ 17/17 workflows                          131", "every 1h")
	quitAndView(t, tm)

	tm = startSized(t, options(normalised{e.st}, nil), 80, 24)
	waitText(t, tm, "Σ 17/17 workflows                          131")
	pausedRefresh(tm)
	view := quitAndView(t, tm)
	if !strings.Contains(view, "Σ 17/17 workflows                          131") {
		t.Errorf("the table changed while paused:\n%s", view)
	}
	requireGoldenSized(t, view, 80, 24)
}
