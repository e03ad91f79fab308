package hub

import (
	"errors"
	"testing"
	"time"
)

// TestFreshBySlot: a result is fresh until the end of the interval's slot
// its read started in; a failure for 1, 2, 4 and then at most 4 slots as
// its key keeps failing. Times are made up: only the rule is under test.
func TestFreshBySlot(t *testing.T) {
	const interval = 2 * time.Second
	slot := func(n int64, plus time.Duration) time.Time { return time.Unix(0, n*int64(interval)).Add(plus) }
	ok := &entry{at: slot(100, 10*time.Millisecond)}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{slot(100, 1999*time.Millisecond), true},
		{slot(101, 0), false},
		{slot(101, time.Millisecond), false},
	} {
		if got := ok.fresh(interval, c.at); got != c.want {
			t.Errorf("result read at %v, asked at %v: fresh = %v, want %v", ok.at, c.at, got, c.want)
		}
	}
	// Polls one interval apart, whatever their phase, never share a slot.
	for _, phase := range []time.Duration{0, time.Millisecond, 999 * time.Millisecond, 1999 * time.Millisecond} {
		e := &entry{at: slot(50, phase)}
		if e.fresh(interval, e.at.Add(interval)) {
			t.Errorf("a poll one interval after a read at phase %s was served from the cache", phase)
		}
	}
	boom := errors.New("boom")
	for fails, slots := range map[int]int64{1: 1, 2: 2, 3: 4, 4: 4, 10: 4} {
		e := &entry{err: boom, fails: fails, at: slot(100, 1500*time.Millisecond)}
		if !e.fresh(interval, slot(100+slots-1, 1999*time.Millisecond)) {
			t.Errorf("failure %d: not fresh in its %d-th slot", fails, slots)
		}
		if e.fresh(interval, slot(100+slots, 0)) {
			t.Errorf("failure %d: still fresh after %d slots", fails, slots)
		}
	}
}
