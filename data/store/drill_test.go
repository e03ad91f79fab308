package store_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
	"github.com/meshtop/meshtop/data/workersim"
)

// drillEnv is a database with the drill-down scenario (data/workersim:
// runs written as MeshHook's workers write them), meshtop installed and the
// metrics clock pinned at anchor.
type drillEnv struct {
	env
	d workersim.Drill
}

func setupDrill(t testing.TB) drillEnv {
	t.Helper()
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t)
	d, err := workersim.Scenario(ctx, db.Pool, anchor)
	if err != nil {
		t.Fatalf("writing the scenario: %v", err)
	}
	in := install.New(db.Pool, schema)
	if _, err := in.Apply(ctx, nil); err != nil {
		t.Fatalf("installing: %v", err)
	}
	a := anchor
	if err := in.SetClock(ctx, &a); err != nil {
		t.Fatalf("pinning the clock: %v", err)
	}
	return drillEnv{env: env{db: db, in: in, st: store.New(db.Pool, nil, store.Options{Schema: schema})}, d: d}
}

func runNames(d workersim.Drill, rs []store.RunSummary) []string {
	byID := map[string]string{}
	for n, id := range d.Runs {
		byID[id] = n
	}
	var out []string
	for _, r := range rs {
		out = append(out, byID[r.RunID])
	}
	return out
}

// TestDrillFailedRuns: the newest failed runs of a workflow in the window,
// each with its final failure as MeshHook wrote it: the node whose 5th
// attempt failed, 5 attempts, the last HTTP status, the last error.
func TestDrillFailedRuns(t *testing.T) {
	t.Parallel()
	e := setupDrill(t)
	ctx := ctxT(t)
	l, err := e.st.Runs(ctx, e.d.W1, store.Window24h, store.RunsFailed, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := runNames(e.d, l.Runs); !reflect.DeepEqual(got, []string{"fail-1", "fail-2"}) {
		t.Fatalf("failed runs in 24h = %v, want fail-1, fail-2 (newest first)", got)
	}
	if l.Limit != store.DefaultRuns || l.Kind != store.RunsFailed || l.Window != store.Window24h || l.Capped {
		t.Errorf("list = %+v", l)
	}
	f1 := l.Runs[0]
	if !f1.Status.Is("failed") || f1.FinishedAt == nil || !f1.StartedAt.Equal(anchor.Add(-30*time.Minute)) ||
		!f1.Node.Is("createContact") || !f1.NodeType.Is("http_call") || f1.Attempts != 5 ||
		f1.HTTPStatus == nil || *f1.HTTPStatus != 504 || !f1.Error.Is("Error: HTTP 504") || f1.ErrorChars != len("Error: HTTP 504") {
		t.Errorf("fail-1 = %+v", f1)
	}
	if d := f1.Duration(); d == nil || *d < 7*time.Second { // back-offs 0.5+1+2+4 s
		t.Errorf("fail-1 took %v, want over 7.5 s of back-offs", d)
	}
	f2 := l.Runs[1]
	// The list carries the error's first 500 characters and its length; the
	// exact text is kept (for JSON), its String is sanitized.
	if !f2.Node.Is("notify") || f2.Attempts != 5 || *f2.HTTPStatus != 500 ||
		f2.Error.Raw() != string([]rune(workersim.HostileError)[:store.ListErrorChars]) || f2.ErrorChars != len([]rune(workersim.HostileError)) {
		t.Errorf("fail-2 = node %s attempts %d status %v error %d chars of %d", f2.Node, f2.Attempts, f2.HTTPStatus, len(f2.Error.Raw()), f2.ErrorChars)
	}
	if safetext.Unsafe(f2.Error.String()) || strings.Contains(f2.Error.String(), "\x1b") {
		t.Errorf("the error's String is not sanitized: %q", f2.Error.String()[:80])
	}

	l7, err := e.st.Runs(ctx, e.d.W1, store.Window7d, store.RunsFailed, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := runNames(e.d, l7.Runs); !reflect.DeepEqual(got, []string{"fail-1", "fail-2", "fail-old"}) {
		t.Errorf("failed runs in 7d = %v", got)
	}
	l1, err := e.st.Runs(ctx, e.d.W1, store.Window7d, store.RunsFailed, 1)
	if err != nil || len(l1.Runs) != 1 || l1.Runs[0].RunID != e.d.Runs["fail-1"] {
		t.Errorf("limit 1: %v, %v", l1.Runs, err)
	}
	l2, err := e.st.Runs(ctx, e.d.W2, store.Window24h, store.RunsFailed, 10)
	if err != nil || len(l2.Runs) != 1 || !l2.Runs[0].Node.Is("pushOrder") || *l2.Runs[0].HTTPStatus != 429 {
		t.Errorf("order-sync: %+v, %v", l2.Runs, err)
	}
	if _, err := e.st.Runs(ctx, "not-a-uuid", store.Window24h, store.RunsFailed, 10); err == nil {
		t.Error("a workflow id that is no uuid was read")
	}
	none, err := e.st.Runs(ctx, workersim.ID("nothing"), store.Window24h, store.RunsFailed, 10)
	if err != nil || len(none.Runs) != 0 || none.Runs == nil {
		t.Errorf("unknown workflow: %+v, %v; want an empty list", none, err)
	}
}

// TestDrillSlowestRuns: finished runs of the window, slowest first, each
// with its failing step (failed runs) or its slowest step.
func TestDrillSlowestRuns(t *testing.T) {
	t.Parallel()
	e := setupDrill(t)
	ctx := ctxT(t)
	l, err := e.st.Runs(ctx, e.d.W1, store.Window24h, store.RunsSlowest, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := runNames(e.d, l.Runs); !reflect.DeepEqual(got, []string{"slow-1", "fail-2", "fail-1"}) {
		t.Fatalf("slowest = %v", got)
	}
	// 12 ok-NN, ok-1, retry-1, fail-1, fail-2, cancel-1, slow-1 finished in
	// 24h; running-1 is open.
	if l.Scanned != 18 || l.Capped {
		t.Errorf("scanned %d capped %v, want 18 and false", l.Scanned, l.Capped)
	}
	s := l.Runs[0]
	if !s.Status.Is("succeeded") || !s.Node.Is("createContact") || s.Attempts != 1 || *s.HTTPStatus != 200 || !s.Error.IsEmpty() {
		t.Errorf("slow-1 = %+v", s)
	}
	if !l.Runs[2].Node.Is("createContact") || !l.Runs[2].Error.Is("Error: HTTP 504") || !l.Runs[1].Node.Is("notify") {
		t.Errorf("the failed runs in the slowest list = %+v", l.Runs[1:])
	}
	all, err := e.st.Runs(ctx, e.d.W1, store.Window24h, store.RunsSlowest, 100)
	if err != nil || len(all.Runs) != 18 {
		t.Fatalf("all slowest: %d, %v", len(all.Runs), err)
	}
	for i := 1; i < len(all.Runs); i++ {
		if *all.Runs[i].Duration() > *all.Runs[i-1].Duration() {
			t.Errorf("run %d slower than the one before it", i)
		}
	}
}

// TestDrillRunTimeline: every step of a run as MeshHook wrote it — a retry
// that succeeded, a final failure after 5 attempts, a run still retrying,
// a canceled run — with its attempts, statuses and errors.
func TestDrillRunTimeline(t *testing.T) {
	t.Parallel()
	e := setupDrill(t)
	ctx := ctxT(t)
	type want struct {
		node     string
		outcome  string
		attempts int
		statuses []int
		errors   []string
	}
	check := func(name string, wantStatus string, open bool, steps []want) {
		t.Helper()
		tl, err := e.st.Run(ctx, e.d.Runs[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tl.Run.RunID != e.d.Runs[name] || !tl.Run.Status.Is(wantStatus) || (tl.Run.FinishedAt == nil) != open ||
			!tl.Run.Slug.Is(e.d.W1Slug) || tl.Run.Version != 2 || !tl.Run.ProjectName.Is("acme-crm") || tl.Run.WorkflowID != e.d.W1 {
			t.Errorf("%s: run = %+v", name, tl.Run)
		}
		if len(tl.Steps) != len(steps) {
			t.Fatalf("%s: %d steps, want %d: %+v", name, len(tl.Steps), len(steps), tl.Steps)
		}
		for i, w := range steps {
			s := tl.Steps[i]
			var errs []string
			for _, e := range s.Errors {
				errs = append(errs, e.Error.Raw())
			}
			if !s.NodeID.Is(w.node) || s.Outcome != w.outcome || s.Attempts != w.attempts || s.Span != 1 ||
				!reflect.DeepEqual(s.HTTPStatuses, w.statuses) || !reflect.DeepEqual(errs, w.errors) {
				t.Errorf("%s step %d = %s %s attempts %d statuses %v errors %q; want %+v", name, i, s.NodeID, s.Outcome, s.Attempts, s.HTTPStatuses, errs, w)
			}
			if i > 0 && s.StartedAt.Before(tl.Steps[i-1].StartedAt) {
				t.Errorf("%s: steps out of order", name)
			}
			for j, ae := range s.Errors {
				if ae.Attempt != j+1 {
					t.Errorf("%s step %s: error %d is of attempt %d", name, s.NodeID, j, ae.Attempt)
				}
			}
		}
	}
	check("retry-1", "succeeded", false, []want{
		{"prepare", "succeeded", 1, nil, nil},
		{"createContact", "succeeded", 2, []int{503, 200}, []string{"Error: HTTP 503"}},
		{"notify", "succeeded", 1, []int{200}, nil},
		{"finish", "succeeded", 1, nil, nil},
	})
	check("fail-1", "failed", false, []want{
		{"prepare", "succeeded", 1, nil, nil},
		{"createContact", "failed", 5, []int{503, 503, 502, 504},
			[]string{"Error: HTTP 503", "Error: HTTP 503", "Error: HTTP 502", "TypeError: fetch failed", "Error: HTTP 504"}},
	})
	check("running-1", "running", true, []want{
		{"prepare", "succeeded", 1, nil, nil},
		{"createContact", "retrying", 2, []int{503, 503}, []string{"Error: HTTP 503", "Error: HTTP 503"}},
	})
	check("cancel-1", "canceled", false, []want{{"prepare", "succeeded", 1, nil, nil}})
	hostile := make([]string, 5)
	for i := range hostile {
		hostile[i] = workersim.HostileError // whole: 10 kB is under the timeline's 16384 characters
	}
	check("fail-2", "failed", false, []want{
		{"prepare", "succeeded", 1, nil, nil},
		{"createContact", "succeeded", 1, []int{200}, nil},
		{"notify", "failed", 5, []int{500, 500, 500, 500, 500}, hostile},
	})

	// The back-offs are MeshHook's: 0.5, 1, 2, 4 s between fail-1's attempts.
	tl, err := e.st.Run(ctx, e.d.Runs["fail-1"])
	if err != nil {
		t.Fatal(err)
	}
	if d := tl.Steps[1].Duration(); d == nil || *d < 7500*time.Millisecond || *d > 9*time.Second {
		t.Errorf("createContact of fail-1 took %v", d)
	}
	if _, err := e.st.Run(ctx, workersim.ID("run:none")); !errors.Is(err, store.ErrRunNotFound) {
		t.Errorf("an unknown run: %v, want ErrRunNotFound", err)
	}
	if _, err := e.st.Run(ctx, "x'; drop table x; --"); err == nil {
		t.Error("a run id that is no uuid was read")
	}
}

// TestDrillNeverReturnsPayloads: response bodies and payload fields other
// than the node, status, attempt and error never leave the database, in
// any list or timeline.
func TestDrillNeverReturnsPayloads(t *testing.T) {
	t.Parallel()
	e := setupDrill(t)
	ctx := ctxT(t)
	var got []any
	for _, wf := range []string{e.d.W1, e.d.W2} {
		for _, k := range []store.RunKind{store.RunsFailed, store.RunsSlowest} {
			for _, w := range store.Windows {
				l, err := e.st.Runs(ctx, wf, w, k, store.MaxRuns)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, l)
			}
		}
	}
	for _, id := range e.d.Runs {
		tl, err := e.st.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tl)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{workersim.PersonalData, "response", "output", "email"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("the drill-down returned %q", bad)
		}
	}
}

// TestDrillWorkflowRefs: a slug names its definitions, an id its own.
func TestDrillWorkflowRefs(t *testing.T) {
	t.Parallel()
	e := setupDrill(t)
	ctx := ctxT(t)
	refreshAll(t, e.st)
	for _, q := range []string{e.d.W1Slug, e.d.W1, strings.ToUpper(e.d.W1)} {
		refs, err := e.st.WorkflowRefs(ctx, q)
		if err != nil || len(refs) != 1 || refs[0].WorkflowID != e.d.W1 || !refs[0].Slug.Is(e.d.W1Slug) || refs[0].Version != 2 {
			t.Errorf("WorkflowRefs(%s) = %+v, %v", q, refs, err)
		}
	}
	if refs, err := e.st.WorkflowRefs(ctx, "no-such-slug"); err != nil || len(refs) != 0 {
		t.Errorf("unknown slug: %+v, %v", refs, err)
	}
}
