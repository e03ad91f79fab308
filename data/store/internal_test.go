package store

import (
	"testing"
	"time"
)

func TestParseHolder(t *testing.T) {
	pid, since := parseHolder("already refreshing (pid 4242 since 2026-03-10T12:29:58.123456Z)")
	if pid != 4242 || since == nil || !since.Equal(time.Date(2026, 3, 10, 12, 29, 58, 123456000, time.UTC)) {
		t.Errorf("parseHolder = %d, %v", pid, since)
	}
	if pid, since := parseHolder("already refreshing (pid ? since ?)"); pid != 0 || since != nil {
		t.Errorf("unknown holder parsed as %d, %v", pid, since)
	}
}

func TestNextRun(t *testing.T) {
	at := func(h, m, s int) time.Time { return time.Date(2026, 3, 10, h, m, s, 0, time.UTC) }
	cases := []struct {
		expr string
		now  time.Time
		want time.Time
	}{
		{"* * * * *", at(12, 3, 10), at(12, 4, 0)},
		{"* * * * *", at(12, 3, 0), at(12, 4, 0)},
		{"*/5 * * * *", at(12, 3, 10), at(12, 5, 0)},
		{"*/5 * * * *", at(12, 55, 0), at(13, 0, 0)},
		{"0 * * * *", at(12, 3, 10), at(13, 0, 0)},
		{"0 */2 * * *", at(13, 10, 0), at(14, 0, 0)},
		{"0 */6 * * *", at(19, 0, 0), at(0, 0, 0).Add(24 * time.Hour)},
		{"0 0 * * *", at(12, 0, 0), at(0, 0, 0).Add(24 * time.Hour)},
		{"30 seconds", at(12, 0, 10), at(12, 0, 40)},
	}
	for _, c := range cases {
		got := nextRun(c.expr, c.now)
		if got == nil || !got.Equal(c.want) {
			t.Errorf("nextRun(%q, %s) = %v, want %s", c.expr, c.now.Format(time.TimeOnly), got, c.want)
		}
		if every, err := CronExpr(scheduleEvery(c.expr), true); err != nil || every != c.expr {
			t.Errorf("CronExpr(scheduleEvery(%q)) = %q, %v", c.expr, every, err)
		}
	}
	for _, expr := range []string{"5 4 * * *", "*/7 * * * 1", "@daily", ""} {
		if got := nextRun(expr, at(1, 2, 3)); got != nil {
			t.Errorf("nextRun(%q) = %v; want nil for a schedule meshtop did not write", expr, got)
		}
	}
}

func TestBucketsCoverTheWindow(t *testing.T) {
	for _, w := range Windows {
		n := sparkSpan(w) / bucketFor(w)
		if n < 24 || n > 30 || sparkSpan(w)%bucketFor(w) != 0 {
			t.Errorf("window %s: %d buckets of %s", w, n, bucketFor(w))
		}
	}
}
