package cli

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/store"
)

func TestParseDuration(t *testing.T) {
	ok := map[string]time.Duration{
		"2s": 2 * time.Second, "5m": 5 * time.Minute, "1h30m": 90 * time.Minute,
		"1d": 24 * time.Hour, "1.5d": 36 * time.Hour, " 10m ": 10 * time.Minute, "366d": 366 * 24 * time.Hour,
	}
	for in, want := range ok {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "0s", "-1m", "5", "abc", "1w", "367d", "NaNd", "Infd", "1e400d", "d", "1hd", "9999999h"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseRate(t *testing.T) {
	ok := map[string]float64{"0": 0, "0.9": 0.9, "1": 1, "90%": 0.9, "100 %": 1, " 0.5 ": 0.5}
	for in, want := range ok {
		if got, err := ParseRate(in); err != nil || math.Abs(got-want) > 1e-12 {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-0.1", "1.01", "101%", "NaN", "Inf", "x", "%"} {
		if got, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", in, got)
		}
	}
}

// FuzzParseDuration: never panics; what it accepts is positive, at most a
// year, and survives formatting and parsing again.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"2s", "5m", "1h30m", "1d", "1.5d", "-1m", "0", "1e9d", "9223372036854775807ns", "1d1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid duration ") {
				t.Fatalf("unexpected error text %q", err)
			}
			return
		}
		if d < time.Millisecond || d > maxDuration {
			t.Fatalf("ParseDuration(%q) = %v out of range", s, d)
		}
		again, err := ParseDuration(formatDuration(d))
		if err != nil || again != d {
			t.Fatalf("round trip of %q: %v → %q → %v, %v", s, d, formatDuration(d), again, err)
		}
	})
}

// FuzzParseRate: never panics; what it accepts is a finite rate in [0, 1].
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"0.9", "90%", "1", "0", "-0", "1e-9", "NaN", "+Inf", "0x1p-2", "100%%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if math.IsNaN(r) || r < 0 || r > 1 {
			t.Fatalf("ParseRate(%q) = %v", s, r)
		}
	})
}

// FuzzWindowFlag: the --window flag accepts exactly the four windows.
func FuzzWindowFlag(f *testing.F) {
	for _, s := range []string{"1h", "24h", "7d", "30d", "2d", "", "24H", " 7d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var w store.Window
		v := newWindow(&w, store.Window24h)
		err := v.Set(s)
		valid := false
		for _, name := range windowNames() {
			valid = valid || strings.TrimSpace(s) == name
		}
		if valid != (err == nil) {
			t.Fatalf("Set(%q) error %v, valid %v", s, err, valid)
		}
		if err == nil && string(w) != strings.TrimSpace(s) {
			t.Fatalf("Set(%q) gave %q", s, w)
		}
		if err != nil && (w != store.Window24h || !strings.Contains(err.Error(), "use one of 1h, 24h, 7d, 30d")) {
			t.Fatalf("failed Set(%q) changed the window or said %q", s, err)
		}
	})
}
