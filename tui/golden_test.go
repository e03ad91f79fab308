package tui_test

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/meshtop/meshtop/data/pgtest"
)

// TestGoldenInstallPrompt: a database with MeshHook's tables but without
// meshtop's views offers to install and lists what it creates.
func TestGoldenInstallPrompt(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	e := setupUninstalled(t, db)
	tm := start(t, options(normalised{e.st}, e.in))
	waitText(t, tm, "Install now?")
	requireGolden(t, quitAndView(t, tm))
}

// TestGoldens renders the read-only screens from one refreshed fixture.
func TestGoldens(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewDatabase(t), true)
	src := normalised{e.st}

	t.Run("overview", func(t *testing.T) {
		tm := start(t, options(src, nil))
		waitText(t, tm, "data as of")
		requireGolden(t, quitAndView(t, tm))
	})
	t.Run("overview_filtered_sorted", func(t *testing.T) {
		tm := start(t, options(src, nil))
		waitText(t, tm, "data as of")
		press(tm, "/")
		tm.Type("slack")
		press(tm, "enter", "s", "S") // sort by p50 ascending
		waitText(t, tm, "sorted by p50 ascending")
		requireGolden(t, quitAndView(t, tm))
	})
	t.Run("detail", func(t *testing.T) {
		tm := start(t, options(src, nil))
		waitText(t, tm, "data as of")
		press(tm, "enter")
		waitText(t, tm, "runs / hour", "Step (node)")
		requireGolden(t, quitAndView(t, tm))
	})
	t.Run("help", func(t *testing.T) {
		tm := start(t, options(src, nil))
		waitText(t, tm, "data as of")
		press(tm, "?")
		waitText(t, tm, "any key closes this help")
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
