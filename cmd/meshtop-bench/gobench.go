package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// goBenchLine matches one result line of `go test -bench`, e.g.
// "BenchmarkOverviewView10k-2   300   4012345 ns/op   123 B/op   4 allocs/op".
var goBenchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([0-9.]+) ns/op(?:\s+([0-9.]+) B/op)?(?:\s+([0-9.]+) allocs/op)?`)

// goBench is the samples of one benchmark name.
type goBench struct {
	Name          string
	NsOp          []float64
	BytesOp       []float64
	AllocsOp      []float64
	workflowCount int
}

// parseGoBench groups `go test -bench` output by benchmark name.
func parseGoBench(out string) map[string]*goBench {
	res := map[string]*goBench{}
	for _, line := range strings.Split(out, "\n") {
		m := goBenchLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		g := res[m[1]]
		if g == nil {
			g = &goBench{Name: m[1]}
			res[m[1]] = g
		}
		ns, _ := strconv.ParseFloat(m[2], 64)
		g.NsOp = append(g.NsOp, ns)
		if m[3] != "" {
			v, _ := strconv.ParseFloat(m[3], 64)
			g.BytesOp = append(g.BytesOp, v)
		}
		if m[4] != "" {
			v, _ := strconv.ParseFloat(m[4], 64)
			g.AllocsOp = append(g.AllocsOp, v)
		}
	}
	return res
}

var sizeInName = regexp.MustCompile(`(\d+)(k?)\b`)

// workflowsOf guesses the number of workflows a benchmark name renders
// (…1k…, …10k…, …1000…); 0 if none.
func workflowsOf(name string) int {
	ms := sizeInName.FindAllStringSubmatch(name, -1)
	if len(ms) == 0 {
		return 0
	}
	m := ms[len(ms)-1]
	n, _ := strconv.Atoi(m[1])
	if m[2] == "k" {
		n *= 1000
	}
	return n
}

// family is a benchmark name without its size (…/workflows=1000 → …).
func family(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return sizeInName.ReplaceAllString(name, "")
}

// renderBench runs the TUI's overview benchmarks (written by the TUI
// helper) -count times and, for each benchmark family, reports the largest
// size (10k workflows) against the smallest (1k), sample by sample.
func (b *runner) renderBench(ctx context.Context) error {
	logf("running the TUI render benchmarks (go test -bench Overview ./tui/)")
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "Overview", "-benchmem",
		"-benchtime", "300ms", "-count", strconv.Itoa(b.cfg.pairs), "./tui/")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.report.Notes = append(b.report.Notes, fmt.Sprintf("The TUI render benchmarks did not run: %v: %s", err, lastLines(out.String(), 5)))
		logf("  render benchmarks failed: %v", err)
		return nil
	}
	benches := parseGoBench(out.String())
	families := map[string][]*goBench{}
	var names []string
	for _, g := range benches {
		g.workflowCount = workflowsOf(g.Name)
		f := family(g.Name)
		if families[f] == nil {
			names = append(names, f)
		}
		families[f] = append(families[f], g)
	}
	if len(names) == 0 {
		b.report.Notes = append(b.report.Notes, "No BenchmarkOverview* results in ./tui/: "+lastLines(out.String(), 5))
		return nil
	}
	sort.Strings(names)
	for _, f := range names {
		list := families[f]
		sort.Slice(list, func(i, j int) bool { return list[i].workflowCount < list[j].workflowCount })
		for _, g := range list {
			b.report.RenderBench = append(b.report.RenderBench, fmt.Sprintf("%s: median %.3f ms/op, %s B/op, %s allocs/op (n=%d)",
				g.Name, Median(g.NsOp)/1e6, num(Median(g.BytesOp)), num(Median(g.AllocsOp)), len(g.NsOp)))
		}
		small, big := list[0], list[len(list)-1]
		if small == big {
			continue
		}
		var pairs []Pair
		for i := 0; i < min(len(small.NsOp), len(big.NsOp)); i++ {
			pairs = append(pairs, Pair{A: small.NsOp[i] / 1e6, B: big.NsOp[i] / 1e6})
		}
		r := Summarise(pairs, false)
		fig := Figure{
			Group: "Dashboard footprint", Name: "Go benchmark " + f,
			Pair: fmt.Sprintf("%d / %d workflows", big.workflowCount, small.workflowCount), Unit: "ms/op", Ratio: r,
			Goal: "reported",
			Note: "run sequentially by go test -count (not interleaved); the k-th run of each size is paired",
		}
		// The goal is on rendering a frame (View) at 10k workflows.
		if strings.Contains(f, "View") && big.workflowCount >= 10000 {
			fig.Goal, fig.Met = "10k render ≤ 5 ms", boolp(r.MedianB <= 5)
		}
		b.report.Add(fig)
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
