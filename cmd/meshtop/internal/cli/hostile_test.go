package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// The names of issue 16, and a slug with a Trojan Source override.
const (
	evilName    = "Evil \x1b[2J\x1b[31mRED\x1b]0;pwned-title\x07 \x1b]52;c;cHduZWQ=\x07 tail"
	evilProject = "proj\x1b[5mblink\r\nnewline"
	evilSlugEnd = "\u202eevil"
)

// noTerminalControl fails when out holds anything a terminal would act on.
func noTerminalControl(t *testing.T, what, out string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\r", "\x07", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u009b", "\u009d"} {
		if i := strings.Index(out, bad); i >= 0 {
			t.Errorf("%s printed %q: %q", what, bad, out[max(0, i-60):min(len(out), i+60)])
		}
	}
}

// TestHostileNamesInTextOutput: with a workflow and its project named to
// attack a terminal, status, check and refresh print them as visible
// escapes (no ESC, CR or bidi override reaches stdout), the status table
// stays aligned, check stays one line, and status --json keeps the exact
// names.
func TestHostileNamesInTextOutput(t *testing.T) {
	t.Parallel()
	db := refreshed(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The workflow with the lowest success rate among those check judges:
	// check names it when the threshold is just above its rate.
	var id string
	var rate float64
	if err := db.Pool.QueryRow(ctx, `select workflow_id::text, success_rate from metrics.mv_workflow_metrics
		where "window" = '24h' and succeeded + failed + canceled >= 10 order by success_rate, workflow_id limit 1`).Scan(&id, &rate); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`update public.workflow_definitions set name = $2, slug = slug || $3 where id = $1`,
		`update public.projects set name = $2 where id = (select project_id from public.workflow_definitions where id = $1)`,
	} {
		args := []any{id, evilName, evilSlugEnd}
		if strings.Contains(q, "projects") {
			args = []any{id, evilProject}
		}
		if _, err := db.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	ref := run(t, runOpts{}, "refresh", "--dsn", db.DSN).must(t, 0)
	noTerminalControl(t, "refresh", ref.stdout+ref.stderr)

	st := run(t, runOpts{}, "status", "--dsn", db.DSN).must(t, 0)
	noTerminalControl(t, "status", st.stdout+st.stderr)
	lines := strings.Split(st.stdout, "\n")
	var header, row string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "WORKFLOW"):
			header = l
		case strings.HasPrefix(l, `Evil \x1b[2J\x1b[31mRED`):
			row = l
		}
	}
	if header == "" || row == "" || !strings.Contains(row, `proj\x1b[5mbl`) || !strings.Contains(row, `\u202eevil`) {
		t.Fatalf("status does not show the renamed workflow with visible escapes:\n%s", st.stdout)
	}
	// Columns are left-aligned: each header title starts a cell of the row.
	for _, title := range []string{"SLUG", "VER", "PROJECT", "RUNS", "OK", "FAILED", "SUCCESS", "LAST FAILURE"} {
		i := strings.Index(header, " "+title+" ") + 1
		if title == "LAST FAILURE" {
			i = strings.Index(header, title)
		}
		col := ansi.StringWidth(header[:i])
		if ansi.Cut(row, col-1, col) != " " || ansi.Cut(row, col, col+1) == " " {
			t.Errorf("column %s (cell %d) is out of line:\n%s\n%s", title, col, header, row)
		}
	}

	min := fmt.Sprintf("%.6f", rate+1e-6)
	ck := run(t, runOpts{}, "check", "--dsn", db.DSN, "--window", "24h", "--min-success-rate", min).must(t, CheckWarning)
	noTerminalControl(t, "check", ck.stdout+ck.stderr)
	if strings.Count(ck.stdout, "\n") != 1 || !strings.HasSuffix(ck.stdout, "\n") {
		t.Errorf("check printed %d lines, want one: %q", strings.Count(ck.stdout, "\n"), ck.stdout)
	}
	if !strings.Contains(ck.stdout, `Evil \x1b[2J\x1b[31mRED\x1b]0;pwned-title\a`) || !strings.Contains(ck.stdout, `\u202eevil v`) {
		t.Errorf("check does not name the workflow with visible escapes: %q", ck.stdout)
	}

	js := run(t, runOpts{}, "status", "--json", "--dsn", db.DSN).must(t, 0)
	noTerminalControl(t, "status --json", js.stdout)
	var doc StatusJSON
	if err := json.Unmarshal([]byte(js.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range doc.Workflows {
		if w.WorkflowID == id {
			found = true
			if !w.Name.Is(evilName) || !strings.HasSuffix(w.Slug.Raw(), evilSlugEnd) {
				t.Errorf("status --json changed the data: name %q slug %q", w.Name.Raw(), w.Slug.Raw())
			}
		}
	}
	if !found {
		t.Errorf("workflow %s missing from status --json", id)
	}
}
