package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/meshtop/meshtop/data/bench"
	meshsql "github.com/meshtop/meshtop/sql"
)

// stmt is one statement of a screen with its arguments.
type stmt struct {
	sql  string
	args []any
}

// screenCost is what reading one screen cost.
type screenCost struct {
	ServerMs float64 // sum of EXPLAIN (ANALYZE, TIMING OFF) "Execution Time"
	PlanMs   float64 // sum of "Planning Time"
	ClientMs float64 // round trip of the same statements, all rows fetched and decoded
	Rows     int
}

// retrieval measures one screen read from the views (A) vs the same numbers
// computed live from the raw tables (B), alternating which goes first.
func (b *runner) retrieval(ctx context.Context, d *dataset) error {
	logf("retrieval on %s", d.Label)
	views, live, err := b.screens(ctx, d)
	if err != nil {
		return err
	}
	conn, err := d.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring a connection: %w", err)
	}
	defer conn.Release()
	// Warm-up of the views side (plans cached, pages in shared buffers).
	// The live side is not warmed separately: it runs for seconds on the
	// 1M set, the data were just generated and refreshed (so in cache), and
	// the alternation puts it first in every other pair.
	if _, err := readScreen(ctx, conn.Conn(), views); err != nil {
		return err
	}
	var server, client []Pair
	var plan []float64
	var rowsViews, rowsLive int
	for i := 0; i < b.cfg.pairs; i++ {
		var a, l screenCost
		first, second := &a, &l
		fs, ss := views, live
		if i%2 == 1 {
			first, second, fs, ss = &l, &a, live, views
		}
		if *first, err = readScreen(ctx, conn.Conn(), fs); err != nil {
			return err
		}
		if *second, err = readScreen(ctx, conn.Conn(), ss); err != nil {
			return err
		}
		server = append(server, Pair{A: a.ServerMs, B: l.ServerMs})
		client = append(client, Pair{A: a.ClientMs, B: l.ClientMs})
		plan = append(plan, a.PlanMs)
		rowsViews, rowsLive = a.Rows, l.Rows
		logf("  pair %d: views %.2f ms server / %.2f ms client, live %.0f ms server / %.0f ms client",
			i+1, a.ServerMs, a.ClientMs, l.ServerMs, l.ClientMs)
	}
	rs := Summarise(server, false)
	rc := Summarise(client, false)
	ctxNote := fmt.Sprintf("%d rows from the views, %d computed live; the views' planning time (median %.2f ms) is not in the server time", rowsViews, rowsLive, Median(plan))
	b.report.Add(Figure{
		Group: "Retrieval", Name: "Server time, " + d.Label,
		Pair: "live from raw tables / from the views", Unit: "ms", Ratio: rs,
		Goal: "≥ 1000× and views < 2 ms", Met: boolp(rs.Median >= 1000 && rs.MedianA < 2),
		Note: ctxNote,
	})
	b.report.Add(Figure{
		Group: "Retrieval", Name: "Client round trip, " + d.Label,
		Pair: "live from raw tables / from the views", Unit: "ms", Ratio: rc,
		Goal: "≥ 1000×", Met: boolp(rc.Median >= 1000),
	})
	return nil
}

// screens returns the statements of one screen from the views and live.
func (b *runner) screens(ctx context.Context, d *dataset) (views, live []stmt, err error) {
	wf := "'" + strings.ReplaceAll(d.WorkflowID, "'", "''") + "'::uuid"
	views = []stmt{
		{sql: b.render(bench.SQL(bench.ScreenViews))},
		{sql: strings.ReplaceAll(b.render(bench.SQL(bench.ScreenHourly)), "@workflow@", wf)},
	}
	lm, err := meshsql.Queries.ReadFile("queries/live_workflow_metrics.sql")
	if err != nil {
		return nil, nil, fmt.Errorf("reading the live query (VIEWS's sql/queries/live_workflow_metrics.sql): %w", err)
	}
	lh, err := meshsql.Queries.ReadFile("queries/live_workflow_metrics_hourly.sql")
	if err != nil {
		return nil, nil, fmt.Errorf("reading the live query (VIEWS's sql/queries/live_workflow_metrics_hourly.sql): %w", err)
	}
	// The live queries take the clock ($1): the one the views were
	// refreshed at, so both sides compute the same numbers.
	var clock time.Time
	if err := d.Pool.QueryRow(ctx, b.render(`select max(last_updated) from @schema@.mv_workflow_metrics`)).Scan(&clock); err != nil {
		return nil, nil, fmt.Errorf("reading the views' clock: %w", err)
	}
	live = []stmt{
		{sql: b.render(statement(string(lm))), args: []any{clock}},
		{sql: "select * from (" + b.render(statement(string(lh))) + "\n) live where workflow_id = " + wf + " order by hour", args: []any{clock}},
	}
	return views, live, nil
}

var trailingSemicolon = regexp.MustCompile(`;\s*$`)

// statement strips a trailing semicolon (and the comments and blanks after
// it) so the text can be wrapped in EXPLAIN or a subquery.
func statement(s string) string {
	s = strings.TrimSpace(stripTrailingComments(s))
	return trailingSemicolon.ReplaceAllString(s, "")
}

// stripTrailingComments drops whole-line -- comments at the end of s.
func stripTrailingComments(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n\t "), "\n")
	for len(lines) > 0 && strings.HasPrefix(strings.TrimSpace(lines[len(lines)-1]), "--") {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n")
}

// readScreen runs each statement once under EXPLAIN (ANALYZE, TIMING OFF)
// for the server time and once as a plain query for the round trip.
func readScreen(ctx context.Context, conn *pgx.Conn, stmts []stmt) (screenCost, error) {
	var c screenCost
	for _, st := range stmts {
		s := st.sql
		ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		var plan []byte
		err := conn.QueryRow(ctx, "explain (analyze, timing off, format json) "+s, st.args...).Scan(&plan)
		if err != nil {
			cancel()
			return c, fmt.Errorf("explaining %q: %w", firstLine(s), err)
		}
		var parsed []struct {
			Planning  float64 `json:"Planning Time"`
			Execution float64 `json:"Execution Time"`
		}
		if err := json.Unmarshal(plan, &parsed); err != nil || len(parsed) != 1 {
			cancel()
			return c, fmt.Errorf("reading the plan of %q: %v", firstLine(s), err)
		}
		c.ServerMs += parsed[0].Execution
		c.PlanMs += parsed[0].Planning

		t := time.Now()
		rows, err := conn.Query(ctx, s, st.args...)
		if err != nil {
			cancel()
			return c, fmt.Errorf("running %q: %w", firstLine(s), err)
		}
		dest := scanTargets(rows.FieldDescriptions())
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				cancel()
				return c, fmt.Errorf("reading rows of %q: %w", firstLine(s), err)
			}
			c.Rows++
		}
		rows.Close()
		c.ClientMs += float64(time.Since(t).Microseconds()) / 1000
		cancel()
		if err := rows.Err(); err != nil {
			return c, fmt.Errorf("running %q: %w", firstLine(s), err)
		}
	}
	return c, nil
}

// scanTargets returns one typed destination per column, chosen by the
// column's type as the dashboard's store does (it scans into uuid, text,
// integer, float8 and timestamptz fields, never into interface values):
// both sides of the round trip decode every value of every row this way.
// A type not listed decodes into an interface value.
func scanTargets(fields []pgconn.FieldDescription) []any {
	dest := make([]any, len(fields))
	for i, f := range fields {
		switch f.DataTypeOID {
		case pgtype.UUIDOID:
			dest[i] = new(pgtype.UUID)
		case pgtype.TextOID, pgtype.VarcharOID:
			dest[i] = new(pgtype.Text)
		case pgtype.Int8OID:
			dest[i] = new(pgtype.Int8)
		case pgtype.Int4OID:
			dest[i] = new(pgtype.Int4)
		case pgtype.Float8OID:
			dest[i] = new(pgtype.Float8)
		case pgtype.TimestamptzOID:
			dest[i] = new(pgtype.Timestamptz)
		default:
			dest[i] = new(any)
		}
	}
	return dest
}

func boolp(b bool) *bool { return &b }
