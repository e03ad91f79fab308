package workersim

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// HostileError is an error text a failing endpoint could make MeshHook
// store: terminal control sequences (clear screen, colour, window title,
// clipboard write), a bidirectional override, a line break, and 10 kB of
// text before its end.
var HostileError = "Error: HTTP 500 \x1b[2J\x1b[31mRED\x1b]0;pwned-title\x07 \x1b]52;c;cHduZWQ=\x07 \u202eevil\u202c\r\nsecond line " +
	strings.Repeat("0123456789", 1024) + " END"

// PersonalData is what the scenario's response bodies and extra failure
// fields carry: it must never be shown, nor returned by meshtop.
const PersonalData = "PII-alice@example.com-123-45-6789"

// Drill is the scenario Scenario writes: two projects (two owners), two
// workflows, and runs of every shape the drill-down shows, by name.
type Drill struct {
	Anchor               time.Time
	Projects             map[string]string // name → id
	Owners               map[string]string // project name → owner uuid
	W1, W2               string            // workflow ids
	W1Slug, W2Slug       string
	Runs                 map[string]string // name → id
	Status               map[string]string // name → final status
	W1Nodes, W2Nodes     []Node
	ProjectOfW1, OfW2    string
	HostileRun, SlowRun  string // names
	FailedW1In24h        []string
	FailedW1In7dNotIn24h []string
}

// Scenario writes the drill-down's scenario with the metrics anchor a
// (runs in the hours and days before it):
//
//	acme-crm / "Hubspot Contact Upsert" (hubspot-contact-upsert v2):
//	  prepare (transform) → createContact (http_call) → notify (http_call) → finish (transform)
//	  ok-N      12 runs, one an hour from a−13h, every attempt succeeds
//	  ok-1      a−50m, succeeds at the first attempts
//	  retry-1   a−40m, createContact 503 then 200: succeeded after a retry
//	  fail-1    a−30m, createContact 503, 503, 502, no response, 504: failed after 5 attempts
//	  fail-2    a−2h,  notify 500 ×5 with HostileError: failed
//	  running-1 a−2m,  createContact 503, 503 and the run still open (retrying)
//	  cancel-1  a−3h,  canceled after prepare
//	  slow-1    a−5h,  createContact takes 45 s: succeeded, the slowest
//	  fail-old  a−3d,  createContact 500 ×5: failed, outside 24h, inside 7d
//	beta-shop / "Order Sync" (order-sync v1): load (transform) → pushOrder (http_call)
//	  w2-fail   a−1h,  pushOrder 429 ×5: failed
//	  w2-ok     a−90m, succeeds
//
// Response bodies and an extra field of fail-1's failures carry
// PersonalData.
func Scenario(ctx context.Context, db Execer, a time.Time) (Drill, error) {
	d := Drill{Anchor: a, Projects: map[string]string{}, Owners: map[string]string{}, Runs: map[string]string{}, Status: map[string]string{},
		W1Slug: "hubspot-contact-upsert", W2Slug: "order-sync", HostileRun: "fail-2", SlowRun: "slow-1"}
	if err := Partitions(ctx, db, a.Add(-40*24*time.Hour), a.Add(40*24*time.Hour)); err != nil {
		return d, err
	}
	for _, p := range []string{"acme-crm", "beta-shop"} {
		d.Projects[p], d.Owners[p] = ID("project:"+p), ID("owner:"+p)
		if err := Project(ctx, db, d.Projects[p], d.Owners[p], p); err != nil {
			return d, err
		}
	}
	d.ProjectOfW1, d.OfW2 = d.Projects["acme-crm"], d.Projects["beta-shop"]
	d.W1, d.W2 = ID("workflow:"+d.W1Slug), ID("workflow:"+d.W2Slug)
	d.W1Nodes = []Node{{"prepare", "transform"}, {"createContact", "http_call"}, {"notify", "http_call"}, {"finish", "transform"}}
	d.W2Nodes = []Node{{"load", "transform"}, {"pushOrder", "http_call"}}
	if err := Workflow(ctx, db, d.W1, d.ProjectOfW1, d.W1Slug, "Hubspot Contact Upsert", 2, d.W1Nodes); err != nil {
		return d, err
	}
	if err := Workflow(ctx, db, d.W2, d.OfW2, d.W2Slug, "Order Sync", 1, d.W2Nodes); err != nil {
		return d, err
	}
	resp := map[string]any{"contact": map[string]any{"email": PersonalData}}
	ok := func(n Node) Step { return Step{Node: n, Attempts: []Attempt{{Status: 200}}, Response: resp} }
	step := func(n Node) Step { return Step{Node: n} }
	w1 := func(create, notify Step) []Step {
		return []Step{step(d.W1Nodes[0]), create, notify, step(d.W1Nodes[3])}
	}
	fails := func(n Node, errText string, statuses ...int) Step {
		s := Step{Node: n, Response: resp}
		for _, st := range statuses {
			s.Attempts = append(s.Attempts, Attempt{Status: st, Error: errText})
		}
		return s
	}
	type run struct {
		name     string
		wf, proj string
		at       time.Duration // before a
		steps    []Step
		end      string
	}
	runs := []run{}
	for i := 13; i >= 2; i-- {
		runs = append(runs, run{fmt.Sprintf("ok-%02d", i), d.W1, d.ProjectOfW1, time.Duration(i) * time.Hour,
			w1(ok(d.W1Nodes[1]), ok(d.W1Nodes[2])), ""})
	}
	fail1 := fails(d.W1Nodes[1], "", 503, 503, 502, 0, 504)
	fail1.FailureExtra = map[string]any{"response": map[string]any{"body": PersonalData}}
	slow := ok(d.W1Nodes[1])
	slow.Attempts[0].Took = 45 * time.Second
	runs = append(runs,
		run{"ok-1", d.W1, d.ProjectOfW1, 50 * time.Minute, w1(ok(d.W1Nodes[1]), ok(d.W1Nodes[2])), ""},
		run{"retry-1", d.W1, d.ProjectOfW1, 40 * time.Minute,
			w1(Step{Node: d.W1Nodes[1], Attempts: []Attempt{{Status: 503}, {Status: 200}}, Response: resp}, ok(d.W1Nodes[2])), ""},
		run{"fail-1", d.W1, d.ProjectOfW1, 30 * time.Minute, w1(fail1, Step{}), ""},
		run{"fail-2", d.W1, d.ProjectOfW1, 2 * time.Hour, w1(ok(d.W1Nodes[1]), fails(d.W1Nodes[2], HostileError, 500, 500, 500, 500, 500)), ""},
		run{"running-1", d.W1, d.ProjectOfW1, 2 * time.Minute, w1(fails(d.W1Nodes[1], "", 503, 503), Step{}), "running"},
		run{"cancel-1", d.W1, d.ProjectOfW1, 3 * time.Hour, []Step{step(d.W1Nodes[0])}, "canceled"},
		run{"slow-1", d.W1, d.ProjectOfW1, 5 * time.Hour, w1(slow, ok(d.W1Nodes[2])), ""},
		run{"fail-old", d.W1, d.ProjectOfW1, 72 * time.Hour, w1(fails(d.W1Nodes[1], "", 500, 500, 500, 500, 500), Step{}), ""},
		run{"w2-fail", d.W2, d.OfW2, time.Hour, []Step{step(d.W2Nodes[0]), fails(d.W2Nodes[1], "", 429, 429, 429, 429, 429)}, ""},
		run{"w2-ok", d.W2, d.OfW2, 90 * time.Minute, []Step{step(d.W2Nodes[0]), ok(d.W2Nodes[1])}, ""},
	)
	for _, r := range runs {
		var steps []Step
		for _, s := range r.steps {
			if s.Node.ID != "" {
				steps = append(steps, s)
			}
		}
		id := ID("run:" + r.name)
		st, _, err := Write(ctx, db, Run{ID: id, Project: r.proj, Workflow: r.wf, StartedAt: a.Add(-r.at), Steps: steps, End: r.end})
		if err != nil {
			return d, err
		}
		d.Runs[r.name], d.Status[r.name] = id, st
	}
	d.FailedW1In24h = []string{"fail-1", "fail-2"}
	d.FailedW1In7dNotIn24h = []string{"fail-old"}
	return d, nil
}
