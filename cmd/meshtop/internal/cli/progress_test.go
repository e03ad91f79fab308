package cli

import (
	"strings"
	"testing"
	"time"
)

// On a terminal a long start-up step redraws one line in place with a bar
// of the steps done; without one it writes a single final line (issue 14.3).
func TestLiveLine(t *testing.T) {
	var tty syncBuffer
	l := newLiveLine(&tty, true, "meshtop demo: ")
	l.set("seeding: generating runs", 2, 8)
	waitFor(t, "a redraw", 10*time.Second, func() bool { return strings.Count(tty.String(), "\r") >= 2 })
	l.finish("seeded 2,000 runs")
	out := tty.String()
	for _, want := range []string{"\r\x1b[Kmeshtop demo: [#####---------------] 2/8 seeding: generating runs · 0s", "\r\x1b[Kmeshtop demo: seeded 2,000 runs\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q: %q", want, out)
		}
	}

	var pipe syncBuffer
	l = newLiveLine(&pipe, false, "meshtop demo: ")
	l.set("seeding", 1, 2)
	l.finish("seeded")
	if pipe.String() != "meshtop demo: seeded\n" {
		t.Errorf("without a terminal: %q", pipe.String())
	}
}

func TestProgressText(t *testing.T) {
	if got := progressText("x: ", "installing", 0, 0, 1500*time.Millisecond); got != "x: installing · 1s" {
		t.Errorf("no total: %q", got)
	}
	if got := progressText("", "refreshing", 3, 3, 0); got != "[####################] 3/3 refreshing · 0s" {
		t.Errorf("done: %q", got)
	}
}

// A live line never wraps: \r could not return to its start.
func TestLiveLineFitsOneLine(t *testing.T) {
	var tty syncBuffer
	l := newLiveLine(&tty, true, "meshtop demo: ")
	l.set("seeding: "+strings.Repeat("x", 200), 1, 2)
	l.finish("done")
	for _, frame := range strings.Split(tty.String(), "\r\x1b[K") {
		if n := len([]rune(strings.TrimSuffix(frame, "\n"))); n > liveWidth {
			t.Errorf("a %d-cell frame: %q", n, frame)
		}
	}
}
