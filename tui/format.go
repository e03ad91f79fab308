package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

const dash = "—"

// fmtMs formats a duration in milliseconds compactly: 850ms, 1.2s, 3m05s.
func fmtMs(ms *float64) string {
	if ms == nil {
		return dash
	}
	return fmtMsVal(*ms)
}

func fmtMsVal(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.2fms", v)
	case v < 1000:
		return fmt.Sprintf("%.0fms", v)
	case v < 10_000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v < 60_000:
		return fmt.Sprintf("%.1fs", v/1000)
	case v < 3_600_000:
		m := int(v / 60_000)
		s := int(math.Mod(v, 60_000) / 1000)
		return fmt.Sprintf("%dm%02ds", m, s)
	default:
		h := int(v / 3_600_000)
		m := int(math.Mod(v, 3_600_000) / 60_000)
		return fmt.Sprintf("%dh%02dm", h, m)
	}
}

// fmtDur formats a time.Duration like an age: 12s, 4m10s, 3h05m, 2d04h.
func fmtDur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

// fmtAge formats an age coarsely: "<1m", then whole minutes "12m", hours
// "3h" (up to 48h) and days "2d". Ages on the dashboard (last failure, data
// as of, refresh lag) tick every second, and seconds tell an SRE nothing
// there; a text that changes once a minute keeps the terminal from
// redrawing every row every second. Times in the future (a clock ahead of
// ours) read "<1m".
func fmtAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "<1m"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	default:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
}

// fmtAgeAgo is fmtAge for a time: "3m ago", "<1m ago", or a dash for nil.
func fmtAgeAgo(t *time.Time, now time.Time) string {
	if t == nil {
		return dash
	}
	return fmtAge(now.Sub(*t)) + " ago"
}

// fmtAgeShort is fmtAge for a time without " ago", for narrow columns.
func fmtAgeShort(t *time.Time, now time.Time) string {
	if t == nil {
		return dash
	}
	return fmtAge(now.Sub(*t))
}

// fmtAgo is a relative time at seconds precision ("3m10s ago", "in 35s")
// against the model clock, for countdowns and elapsed times that matter.
func fmtAgo(t *time.Time, now time.Time) string {
	if t == nil {
		return dash
	}
	d := now.Sub(*t)
	if d >= 0 && d < time.Second {
		return "just now"
	}
	if d < 0 {
		return "in " + fmtDur(-d)
	}
	return fmtDur(d) + " ago"
}

func fmtPct(p *float64) string {
	if p == nil {
		return dash
	}
	return fmt.Sprintf("%.1f%%", *p*100)
}

// fmtCount abbreviates large counts: 950, 12.3k, 4.1M.
func fmtCount(n int64) string {
	switch {
	case n < 10_000:
		return fmt.Sprintf("%d", n)
	case n < 1_000_000:
		return fmt.Sprintf("%.1fk", float64(n)/1000)
	default:
		return fmt.Sprintf("%.1fM", float64(n)/1_000_000)
	}
}

func fmtBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// fit pads or truncates s (which may hold ANSI styling) to exactly w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	sw := ansi.StringWidth(s)
	if sw > w {
		// A wide character that does not fit is dropped whole, which can
		// leave the cut one cell short: pad what is left.
		s = ansi.Truncate(s, w, "…")
		sw = ansi.StringWidth(s)
	}
	return s + strings.Repeat(" ", max(0, w-sw))
}

// fitRight right-aligns s in w cells.
func fitRight(s string, w int) string {
	if w <= 0 {
		return ""
	}
	sw := ansi.StringWidth(s)
	if sw > w {
		s = ansi.Truncate(s, w, "…") // may be a cell short (see fit)
		sw = ansi.StringWidth(s)
	}
	return strings.Repeat(" ", max(0, w-sw)) + s
}

func ptr[T any](v T) *T { return &v }

// fmtReplayLag is a replica's replay lag: seconds under a minute, where a
// few seconds against tens of seconds is what tells a healthy replica from a
// falling-behind one, coarse (fmtAge) above.
func fmtReplayLag(d time.Duration) string {
	if d < time.Minute {
		return fmtDur(d.Truncate(time.Second))
	}
	return fmtAge(d)
}

// isCancel tells an operator's cancel from a failure (see store.IsCancel).
func isCancel(errText safetext.Text) bool { return store.IsCancel(errText.String()) }

// fmtEvery is an interval as people write it: 250ms, 2s, 1m, 1m30s, 2h.
func fmtEvery(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", int(d.Hours()))
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < time.Minute:
		return fmt.Sprintf("%gs", d.Seconds())
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// fmtPoints is a change of a rate in percentage points: +3.2, −0.4, 0.0.
func fmtPoints(d *float64) string {
	if d == nil {
		return dash
	}
	v := *d * 100
	if math.Abs(v) < 0.05 {
		return "0.0"
	}
	return fmt.Sprintf("%+.1f", v)
}

// fmtRatio is a relative change: +12%, −40%, 0%.
func fmtRatio(r *float64) string {
	if r == nil {
		return dash
	}
	v := math.Round(*r * 100)
	if v == 0 {
		return "0%"
	}
	return fmt.Sprintf("%+.0f%%", v)
}
