package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/meshtop/meshtop/data/store"
)

// maxDuration caps every duration flag: nothing meshtop waits for or
// compares against is longer than a year.
const maxDuration = 366 * 24 * time.Hour

// ParseDuration reads a duration of at least 1ms: Go syntax (90s, 5m, 1h30m) or a
// whole or decimal number of days (1d, 1.5d). Zero, negative, and anything
// over a year are refused.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	var d time.Duration
	if num, ok := strings.CutSuffix(t, "d"); ok && num != "" && !strings.ContainsAny(num, "hmsuµn") {
		days, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsNaN(days) || math.IsInf(days, 0) {
			return 0, fmt.Errorf("invalid duration %q: use a number with a unit, e.g. 30s, 5m, 2h or 1d", s)
		}
		if days <= 0 || days > float64(maxDuration/(24*time.Hour)) {
			return 0, fmt.Errorf("invalid duration %q: must be at least 1ms and at most 366d", s)
		}
		d = time.Duration(days * float64(24*time.Hour))
	} else {
		var err error
		d, err = time.ParseDuration(t)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: use a number with a unit, e.g. 30s, 5m, 2h or 1d", s)
		}
	}
	if d < time.Millisecond || d > maxDuration {
		return 0, fmt.Errorf("invalid duration %q: must be at least 1ms and at most 366d", s)
	}
	return d, nil
}

// ParseRate reads a rate between 0 and 1, as a fraction (0.9) or a
// percentage (90%).
func ParseRate(s string) (float64, error) {
	t := strings.TrimSpace(s)
	scale := 1.0
	if num, ok := strings.CutSuffix(t, "%"); ok {
		t, scale = strings.TrimSpace(num), 100
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("invalid rate %q: use a fraction between 0 and 1 (0.9) or a percentage (90%%)", s)
	}
	v /= scale
	if v < 0 || v > 1 {
		return 0, fmt.Errorf("invalid rate %q: must be between 0 and 1 (or 0%% and 100%%)", s)
	}
	return v, nil
}

// durationValue is a pflag.Value using ParseDuration.
type durationValue struct{ d *time.Duration }

func newDuration(p *time.Duration, def time.Duration) *durationValue {
	*p = def
	return &durationValue{p}
}

func (v *durationValue) Set(s string) error {
	d, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}
func (v *durationValue) Type() string { return "duration" }
func (v *durationValue) String() string {
	if v.d == nil {
		return ""
	}
	return formatDuration(*v.d)
}

// zeroDurationValue is a durationValue that also takes 0 ("off").
type zeroDurationValue struct{ durationValue }

func newZeroDuration(p *time.Duration, def time.Duration) *zeroDurationValue {
	return &zeroDurationValue{*newDuration(p, def)}
}

func (v *zeroDurationValue) Set(s string) error {
	if d, err := time.ParseDuration(strings.TrimSpace(s)); err == nil && d == 0 {
		*v.d = 0
		return nil
	}
	return v.durationValue.Set(s)
}

// rateValue is a pflag.Value using ParseRate.
type rateValue struct{ r *float64 }

func newRate(p *float64, def float64) *rateValue {
	*p = def
	return &rateValue{p}
}

func (v *rateValue) Set(s string) error {
	r, err := ParseRate(s)
	if err != nil {
		return err
	}
	*v.r = r
	return nil
}
func (v *rateValue) Type() string { return "rate" }
func (v *rateValue) String() string {
	if v.r == nil {
		return ""
	}
	return strconv.FormatFloat(*v.r, 'g', -1, 64)
}

// windowValue is a pflag.Value accepting one of the metrics windows.
type windowValue struct{ w *store.Window }

func newWindow(p *store.Window, def store.Window) *windowValue {
	*p = def
	return &windowValue{p}
}

func (v *windowValue) Set(s string) error {
	w, err := store.ParseWindow(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	*v.w = w
	return nil
}
func (v *windowValue) Type() string { return "window" }
func (v *windowValue) String() string {
	if v.w == nil {
		return ""
	}
	return string(*v.w)
}

// windowNames are the completions of --window.
func windowNames() []string {
	out := make([]string, len(store.Windows))
	for i, w := range store.Windows {
		out[i] = string(w)
	}
	return out
}

// formatDuration prints d compactly: 2s, 5m, 1h30m, 1d, 36h.
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
