package tui_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/tui"
)

// The names of issue 16 as SQL literals, and as the dashboard must show
// them: every control character a visible escape.
const (
	evilNameSQL    = `E'Evil \x1b[2J\x1b[31mRED\x1b]0;pwned-title\x07 \x1b]52;c;cHduZWQ=\x07 tail'`
	evilProjectSQL = `E'proj\x1b[5mblink\r\nnewline'`
	evilNameShown  = `Evil \x1b[2J\x1b[31mRED`
	evilProjShown  = `proj\x1b[5mblink\r\nnewline`
	// A query another session runs while it blocks a refresh: the console
	// shows it as the blocker's query.
	// (firstView is the hourly view, a plain view over the hourly rollup:
	// a SHARE lock on that table holds its refresh; see blockerStmt.)
	evilQuery = "lock table metrics.rollup_runs_hour in share mode /* \x1b]0;pwned-title\x07 \x1b]52;c;cHduZWQ=\x07 \x1b[2J\u202eevil */"
)

// hostileDB is a refreshed fixture whose busiest workflow and its project
// carry the names of issue 16. It returns the workflow's slug.
func hostileDB(t *testing.T) (env, string) {
	t.Helper()
	e := setup(t, pgtest.NewDatabase(t), false)
	ctx := ctxT(t)
	var id, slug string
	if err := e.db.Pool.QueryRow(ctx, `select d.id, d.slug from public.workflow_runs r join public.workflow_definitions d on d.id = r.workflow_id
		where r.started_at > $1::timestamptz - interval '24 hours' group by d.id, d.slug order by count(*) desc, d.id limit 1`, anchor).Scan(&id, &slug); err != nil {
		t.Fatal(err)
	}
	exec(t, e.db, "update public.workflow_definitions set name = "+evilNameSQL+" where id = $1", id)
	exec(t, e.db, "update public.projects set name = "+evilProjectSQL+" where id = (select project_id from public.workflow_definitions where id = $1)", id)
	res, err := e.st.Refresh(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != "ok" {
			t.Fatalf("refreshing %s: %s %s", r.View, r.Status, r.Error)
		}
	}
	return e, slug
}

// rawStream collects everything the program writes to its terminal.
type rawStream struct{ all []byte }

// wait waits until the stream holds every text.
func (s *rawStream) wait(t *testing.T, tm *teatest.TestModel, texts ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		s.all = append(s.all, b...)
		for _, x := range texts {
			if !bytes.Contains(s.all, []byte(x)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(90*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
}

// checkNoInjection: nothing the data carried reached the terminal as a
// control sequence. The terminal's title (OSC 0) and clipboard (OSC 52) are
// untouched: no OSC at all in the stream; the data's SGR and erase
// sequences are absent; its line break did not break a line; what it tried
// shows as text.
func checkNoInjection(t *testing.T, raw []byte) {
	t.Helper()
	for _, bad := range []string{"\x1b]", "\x07", "\x1b[31mRED", "\x1b[5mblink", "\r\nnewline", "\u202e", "\x1b[2J\x1b[31m"} {
		if i := bytes.Index(raw, []byte(bad)); i >= 0 {
			t.Errorf("the terminal received %q from the data: %q", bad, raw[max(0, i-60):min(len(raw), i+60)])
		}
	}
	for _, s := range []string{"pwned-title", "cHduZWQ="} {
		for i := 0; ; {
			j := bytes.Index(raw[i:], []byte(s))
			if j < 0 {
				break
			}
			i += j
			if !bytes.HasSuffix(raw[:i], []byte(`\x1b]0;`)) && !bytes.HasSuffix(raw[:i], []byte(`\x1b]52;c;`)) {
				t.Errorf("%s reached the terminal without its visible escape: %q", s, raw[max(0, i-60):i+len(s)])
			}
			i += len(s)
		}
	}
}

// columnEdges gives, for each title of the overview's header, the cell
// where it starts and the cell after it ends (a sort arrow included).
func columnEdges(header string, titles []string) map[string][2]int {
	out := map[string][2]int{}
	for _, title := range titles {
		i := strings.Index(header, title)
		if i < 0 {
			continue
		}
		end := i + len(title)
		if rest := header[end:]; strings.HasPrefix(rest, "↓") || strings.HasPrefix(rest, "↑") {
			end += len("↓")
		}
		out[title] = [2]int{ansi.StringWidth(header[:i]), ansi.StringWidth(header[:end])}
	}
	return out
}

// TestFlowHostileNames: on a real database whose workflow and project names
// carry terminal control sequences, the overview shows them as visible
// escapes in one table row whose cells line up with the header, the detail
// page keeps its header on one line, and the refresh console shows a
// blocker's hostile query text inert; the raw output stream never carries
// an OSC (title, clipboard) or the data's own escapes.
func TestFlowHostileNames(t *testing.T) {
	t.Parallel()
	e, slug := hostileDB(t)

	// Overview.
	tm := start(t, options(normalised{e.st}, nil))
	var overview rawStream
	overview.wait(t, tm, "Evil") // the renamed row is on screen (however it is shown)
	view := quitAndView(t, tm)
	checkNoInjection(t, overview.all)
	lines := strings.Split(view, "\n")
	if len(lines) != height {
		t.Fatalf("overview has %d lines, want %d:\n%s", len(lines), height, view)
	}
	var header, row string
	rows := 0
	for _, l := range lines {
		if w := ansi.StringWidth(l); w > width {
			t.Errorf("line %d cells wide: %q", w, l)
		}
		switch {
		case strings.Contains(l, "Workflow") && strings.Contains(l, "Project"):
			header = l
		case strings.Contains(l, evilNameShown[:12]):
			row = l
			rows++
		}
	}
	if header == "" || rows != 1 {
		t.Fatalf("want the header and exactly one row of the renamed workflow, got %d rows:\n%s", rows, view)
	}
	// Every column the layout shows at this width (issue 14's 80×24 work
	// lets Avg give way to the sparklines at 120 columns).
	var shown []string
	lay := tui.LayoutColumns(width)
	for _, title := range []string{"Project", "Runs", "Now", "Succ%", "Fail%", "ΔFail", "p50", "p95", "Δp95", "Avg", "Last fail"} {
		if slices.Contains(lay, title) {
			shown = append(shown, title)
		}
	}
	edges := columnEdges(header, shown)
	if len(edges) != len(shown) || len(shown) < 9 {
		t.Fatalf("header columns %v:\n%s", edges, header)
	}
	cell := func(x int) string { return ansi.Cut(row, x, x+1) }
	if p := edges["Project"][0]; cell(p-1) != " " || !strings.HasPrefix(ansi.Cut(row, p, p+10), "proj") {
		t.Errorf("the project cell does not start under Project (cell %d):\n%s\n%s", p, header, row)
	}
	for title, e := range edges {
		if title == "Project" {
			continue
		}
		// Numbers are right-aligned: the last cell under the title is
		// filled and the one after it is the column gap.
		if end := e[1]; cell(end-1) == " " || (end < ansi.StringWidth(row) && cell(end) != " ") {
			t.Errorf("column %s is out of line (cells %d–%d):\n%s\n%s", title, e[0], end, header, row)
		}
	}
	if hw, rw := ansi.StringWidth(header), ansi.StringWidth(row); hw != rw {
		t.Errorf("the row is %d cells wide, the header %d:\n%s\n%s", rw, hw, header, row)
	}

	// Detail: the header stays one line, the numbers follow it.
	tm = start(t, options(normalised{e.st}, nil))
	var detail rawStream
	detail.wait(t, tm, "data as of")
	press(tm, "/")
	tm.Type(slug)
	press(tm, "enter", "enter")
	detail.wait(t, tm, "runs / hour", "Step (node)")
	view = quitAndView(t, tm)
	checkNoInjection(t, detail.all)
	lines = strings.Split(view, "\n")
	next := 3
	if len(lines) > next && strings.HasPrefix(lines[next], "id ") {
		next++ // a title too long for the id beside it puts the id on a line of its own
	}
	if len(lines) != height || !strings.HasPrefix(lines[2], evilNameShown) || !strings.Contains(lines[2], evilProjShown[:14]) ||
		!strings.HasPrefix(lines[next], "window 24h") {
		t.Errorf("the detail header is not one line naming the workflow and its project:\n%s", view)
	}

	// The console, with a refresh blocked by a session whose query text is
	// hostile.
	exec(t, e.db, "update metrics.config set value = '60s' where key = 'lock_timeout'")
	release := lockWith(t, e, evilQuery)
	tm = start(t, options(normalised{e.st}, nil))
	var console rawStream
	console.wait(t, tm, "data as of")
	press(tm, "tab")
	console.wait(t, tm, "Recent", "schedule:")
	press(tm, "r")
	console.wait(t, tm, "blocked by pid", `/* \x1b]0;pwned-title\a`)
	release()
	console.wait(t, tm, "done in")
	view = quitAndView(t, tm)
	checkNoInjection(t, console.all)
	if n := strings.Count(view, "\n") + 1; n != height {
		t.Errorf("console has %d lines, want %d:\n%s", n, height, view)
	}
}

// lockWith holds a lock on firstView from another session whose
// pg_stat_activity query is sql, until the returned function is called.
func lockWith(t *testing.T, e env, sql string) func() {
	t.Helper()
	ctx := ctxT(t)
	conn, err := e.db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := false
	release := func() {
		if !done {
			done = true
			_ = tx.Rollback(ctx)
			conn.Release()
		}
	}
	t.Cleanup(release)
	if _, err := tx.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
	return release
}
