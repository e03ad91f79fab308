package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

// TestShotsAreStable takes the read-only shots twice from one data set and
// requires identical frames, checks each shot shows what it is for, and —
// when freeze is already in the module cache (no network in tests) —
// renders one frame twice and requires identical PNG bytes.
func TestShotsAreStable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	lipgloss.SetColorProfile(termenv.TrueColor)
	lipgloss.SetHasDarkBackground(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := startLab(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()

	want := map[string][]string{
		"overview": {"data as of 2026-03-10 12:30:00 UTC", "Σ "},
		"detail":   {"runs / hour", "Step (node)"},
		"help":     {"any key closes this help"},
		"install":  {"Install now?", "materialized view"},
		"run":      {"‹Run›", "Step (node)", "Outcome", "failed"},
		"console":  {"waiting for a lock", "blocked by pid", "lock table metrics.rollup_runs_hour in share mode"},
	}
	frames := map[string]string{}
	for _, s := range shots { // the console last: it leaves a log row behind
		f, err := s.capture(ctx, l)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if n := strings.Count(f, "\n") + 1; n != height {
			t.Errorf("%s: %d lines, want %d", s.name, n, height)
		}
		if !strings.Contains(f, "\x1b[38;2;") {
			t.Errorf("%s: no true-colour escape in the frame", s.name)
		}
		for _, w := range want[s.name] {
			if !strings.Contains(ansi.Strip(f), w) {
				t.Errorf("%s: %q not on screen:\n%s", s.name, w, f)
			}
		}
		frames[s.name] = f
	}
	for _, s := range []shot{{"overview", overviewShot}, {"detail", detailShot}, {"help", helpShot}, {"install", installShot}, {"run", runShot}} {
		again, err := s.capture(ctx, l)
		if err != nil {
			t.Fatalf("%s again: %v", s.name, err)
		}
		if again != frames[s.name] {
			t.Errorf("%s: the second frame differs from the first", s.name)
		}
	}

	// Rendering: only from the module cache, which serves as a proxy.
	t.Setenv("GOPROXY", "file://"+filepath.Join(goEnv(t, "GOMODCACHE"), "cache", "download"))
	work := t.TempDir()
	r, err := newRenderer(ctx, defaultFreeze, work)
	if err != nil {
		t.Skipf("freeze is not available offline (run `make screenshots` once): %v", err)
	}
	var pngs [][]byte
	for i := range 2 {
		out := filepath.Join(work, "help"+string(rune('a'+i))+".png")
		if err := r.render(ctx, "help", frames["help"], out); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("render %d is not a PNG", i)
		}
		pngs = append(pngs, b)
	}
	if !bytes.Equal(pngs[0], pngs[1]) {
		t.Fatal("two renders of one frame differ")
	}
}

func goEnv(t *testing.T, name string) string {
	out, err := exec.Command(goTool(), "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}
