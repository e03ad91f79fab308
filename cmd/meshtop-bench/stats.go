package main

import (
	"fmt"
	"math"
	"sort"
)

// Pair is one side-by-side measurement: A is the reference, B the
// alternative, taken back to back in alternating order.
type Pair struct{ A, B float64 }

// Ratio summarises the per-pair ratios B/A (or A/B, see Inverted) of a set
// of pairs, with the median absolute values of each side as context.
type Ratio struct {
	N                int
	Median, Min, Max float64
	MedianA, MedianB float64
	Inverted         bool // ratio is A/B instead of B/A
	Skipped          int  // pairs dropped because a side was zero
	Samples          []Pair
}

// Summarise computes the ratio statistics of pairs: ratio = B/A, or A/B when
// inverted. Pairs with a zero denominator are skipped and counted.
func Summarise(pairs []Pair, inverted bool) Ratio {
	r := Ratio{Inverted: inverted, Samples: pairs}
	var ratios, as, bs []float64
	for _, p := range pairs {
		as = append(as, p.A)
		bs = append(bs, p.B)
		num, den := p.B, p.A
		if inverted {
			num, den = p.A, p.B
		}
		if den == 0 || math.IsNaN(num) || math.IsNaN(den) {
			r.Skipped++
			continue
		}
		ratios = append(ratios, num/den)
	}
	r.N = len(ratios)
	r.MedianA, r.MedianB = Median(as), Median(bs)
	if len(ratios) == 0 {
		r.Median, r.Min, r.Max = math.NaN(), math.NaN(), math.NaN()
		return r
	}
	r.Median = Median(ratios)
	r.Min, r.Max = ratios[0], ratios[0]
	for _, x := range ratios {
		r.Min = math.Min(r.Min, x)
		r.Max = math.Max(r.Max, x)
	}
	return r
}

// Median of xs (NaN when empty); xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Percentile returns the p-th percentile (0..100) of xs by the nearest-rank
// method (the smallest value with at least p% of the values at or below it).
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = max(rank, 1)
	rank = min(rank, len(s))
	return s[rank-1]
}

// String formats the ratio as "12.3× (10.1–14.0×, n=5)".
func (r Ratio) String() string {
	if r.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s× (%s–%s×, n=%d)", num(r.Median), num(r.Min), num(r.Max), r.N)
}

// num formats a number with about three significant digits.
func num(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "n/a"
	case x == 0:
		return "0"
	case math.Abs(x) >= 1000:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 100:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 10:
		return fmt.Sprintf("%.1f", x)
	case math.Abs(x) >= 1:
		return fmt.Sprintf("%.2f", x)
	case math.Abs(x) >= 0.01:
		return fmt.Sprintf("%.3f", x)
	default:
		return fmt.Sprintf("%.2g", x)
	}
}
