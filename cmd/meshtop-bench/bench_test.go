package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestSummariseRatiosAndSides(t *testing.T) {
	r := Summarise([]Pair{{A: 1, B: 10}, {A: 2, B: 10}, {A: 4, B: 10}, {A: 0, B: 3}}, false)
	if r.N != 3 || r.Skipped != 1 {
		t.Fatalf("N=%d Skipped=%d, want 3 and 1", r.N, r.Skipped)
	}
	if r.Median != 5 || r.Min != 2.5 || r.Max != 10 {
		t.Fatalf("median %v min %v max %v, want 5, 2.5, 10", r.Median, r.Min, r.Max)
	}
	if r.MedianA != 1.5 || r.MedianB != 10 {
		t.Fatalf("side medians %v %v, want 1.5 and 10", r.MedianA, r.MedianB)
	}
	inv := Summarise([]Pair{{A: 10, B: 5}}, true)
	if inv.Median != 2 {
		t.Fatalf("inverted ratio %v, want 2", inv.Median)
	}
	if empty := Summarise(nil, false); empty.N != 0 || !math.IsNaN(empty.Median) || empty.String() != "n/a" {
		t.Fatalf("empty summary %+v", empty)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var xs []float64
	for i := 100; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	if p := Percentile(xs, 99); p != 99 {
		t.Fatalf("p99 of 1..100 = %v, want 99", p)
	}
	if p := Percentile(xs, 50); p != 50 {
		t.Fatalf("p50 of 1..100 = %v, want 50", p)
	}
	if p := Percentile([]float64{7}, 99); p != 7 {
		t.Fatalf("p99 of one value = %v, want 7", p)
	}
	if xs[0] != 100 {
		t.Fatal("Percentile modified its input")
	}
}

func TestParseProcFiles(t *testing.T) {
	stat := "1234 (meshtop (x) y) S 1 1234 1234 34816 1234 4194560 1500 0 0 0 250 75 0 0 20 0 12 0 100 0 0"
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 3.25 {
		t.Fatalf("parseStatCPU = %v, %v; want 3.25 s (250+75 ticks)", cpu, err)
	}
	if _, err := parseStatCPU("garbage"); err == nil {
		t.Fatal("parseStatCPU accepted garbage")
	}
	if ns, err := parseSchedstat("348407837 566261 69\n"); err != nil || ns != 348407837 {
		t.Fatalf("parseSchedstat = %v, %v; want 348407837 ns", ns, err)
	}
	// This process: the per-thread nanosecond sum agrees with the tick
	// count of /proc/PID/stat to within its sampling error (10 ms ticks).
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skip("no /proc here")
	}
	ticks, err := parseStatCPU(string(b))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cpuSeconds(os.Getpid())
	tasks, _ := filepath.Glob("/proc/self/task/*")
	if err != nil || got <= 0 || got < ticks-math.Max(0.05, 0.1*ticks) || got > ticks+0.01*float64(len(tasks))+0.05 {
		t.Fatalf("cpuSeconds(self) = %v, %v; /proc/self/stat says %v s over %d threads", got, err, ticks, len(tasks))
	}
	rss, err := parseVmHWM("Name:\tmeshtop\nVmPeak:\t  900000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 10000 kB\n")
	if err != nil || rss != 20 {
		t.Fatalf("parseVmHWM = %v, %v; want 20 MiB", rss, err)
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
BenchmarkOverviewView/1k-2         	    2000	    600000 ns/op	   12000 B/op	     300 allocs/op
BenchmarkOverviewView/10k-2        	     500	   2400000 ns/op	   13000 B/op	     310 allocs/op
BenchmarkOverviewView/1k-2         	    2000	    700000 ns/op	   12000 B/op	     300 allocs/op
PASS`
	got := parseGoBench(out)
	small, big := got["BenchmarkOverviewView/1k"], got["BenchmarkOverviewView/10k"]
	if small == nil || big == nil {
		t.Fatalf("parsed %v", got)
	}
	if len(small.NsOp) != 2 || small.NsOp[1] != 700000 || big.BytesOp[0] != 13000 || big.AllocsOp[0] != 310 {
		t.Fatalf("small %+v big %+v", small, big)
	}
	for name, want := range map[string]int{"BenchmarkOverviewView/10k": 10000, "BenchmarkOverviewView1k": 1000, "BenchmarkOverviewView10000": 10000, "BenchmarkX": 0,
		"BenchmarkOverviewView10k/workflows=1000": 1000, "BenchmarkOverviewView10k/workflows=10000": 10000} {
		if n := workflowsOf(name); n != want {
			t.Errorf("workflowsOf(%q) = %d, want %d", name, n, want)
		}
	}
}

func TestBenchmarkFamilies(t *testing.T) {
	for name, want := range map[string]string{
		"BenchmarkOverviewView10k/workflows=1000":  "BenchmarkOverviewView10k",
		"BenchmarkOverviewPoll10k/workflows=10000": "BenchmarkOverviewPoll10k",
		"BenchmarkOverviewView1k":                  "BenchmarkOverviewView",
	} {
		if got := family(name); got != want {
			t.Errorf("family(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestStatementStripsTheTrailingSemicolon(t *testing.T) {
	in := "-- head\nselect 1\nfrom t;\n-- trailing note\n\n"
	if got := statement(in); got != "-- head\nselect 1\nfrom t" {
		t.Fatalf("statement = %q", got)
	}
}
