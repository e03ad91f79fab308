package tui_test

import (
	"fmt"
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
