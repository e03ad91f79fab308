package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// liveLine is one line of start-up progress (seeding, installing, the
// first refresh) redrawn in place on a terminal: what runs, a bar of the
// steps done, and the elapsed time, ticking so a long step visibly lives.
// Without a terminal it writes nothing until done, which prints one line
// (logs and pipes get no carriage returns).
type liveLine struct {
	w      io.Writer
	tty    bool
	prefix string
	start  time.Time
	now    func() time.Time

	mu          sync.Mutex
	what        string
	done, total int
	stop        chan struct{}
	stopped     chan struct{}
}

// liveWidth is the most cells a live line takes: an 80-column terminal
// keeps it on one line.
const liveWidth = 79

// cutCells cuts s to n runes, ending in "…" when cut (the text is ASCII
// and box-drawing characters, one cell each).
func cutCells(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// liveEvery is how often a live line redraws itself on its own.
const liveEvery = 200 * time.Millisecond

func newLiveLine(w io.Writer, tty bool, prefix string) *liveLine {
	l := &liveLine{w: w, tty: tty, prefix: prefix, start: time.Now(), now: time.Now,
		stop: make(chan struct{}), stopped: make(chan struct{})}
	if !tty {
		close(l.stopped)
		return l
	}
	go func() {
		defer close(l.stopped)
		t := time.NewTicker(liveEvery)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				l.draw()
			}
		}
	}()
	return l
}

// set records the step under way (what) and the steps done of total
// (total 0: no bar, only the elapsed time).
func (l *liveLine) set(what string, done, total int) {
	l.mu.Lock()
	l.what, l.done, l.total = what, done, total
	l.mu.Unlock()
	l.draw()
}

func (l *liveLine) draw() {
	if !l.tty {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// One line that never wraps (\r cannot go back up a wrapped line): cut
	// to a width any terminal has.
	fmt.Fprint(l.w, "\r\x1b[K"+progressText(l.prefix, l.what, l.done, l.total, l.now().Sub(l.start)))
}

// finish stops the redraws and ends the line with final.
func (l *liveLine) finish(final string) {
	if l.tty {
		close(l.stop)
	}
	<-l.stopped
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tty {
		fmt.Fprint(l.w, "\r\x1b[K")
	}
	fmt.Fprintln(l.w, l.prefix+final)
}

// progressText is "seeding 200,000 runs [######------] 5/11 generating runs · 8s",
// at most liveWidth cells: the step's text gives way, the bar and the
// elapsed time never do.
func progressText(prefix, what string, done, total int, elapsed time.Duration) string {
	head := prefix
	if total > 0 {
		const w = 20
		n := min(w, w*done/total)
		head += fmt.Sprintf("[%s%s] %d/%d ", strings.Repeat("#", n), strings.Repeat("-", w-n), done, total)
	}
	tail := fmt.Sprintf(" · %ds", int(elapsed.Seconds()))
	room := liveWidth - len([]rune(head)) - len([]rune(tail))
	return head + cutCells(what, max(2, room)) + tail
}
