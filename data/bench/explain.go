package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Plan is what EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) said of one
// statement.
type Plan struct {
	// Buffers is the shared buffers the execution touched (hit + read) —
	// the top node's, which includes its children's and its init plans'.
	Buffers int64
	Read    int64 // of which read from outside shared buffers
	ExecMs  float64
	Rows    int64 // the top node's actual rows
	// Nodes are every node of the plan, depth first.
	Nodes []PlanNode
	JSON  string // the whole plan
}

// PlanNode is one node of a plan.
type PlanNode struct {
	Type      string // "Index Scan", "Seq Scan", "Append", …
	Relation  string // for scans
	Index     string // for index scans
	Loops     int64
	Rows      int64 // actual rows per loop
	Removed   int64 // Append: subplans removed by run-time pruning
	Depth     int
	Parent    string // "InitPlan", "Outer", "Inner", "Member", "SubPlan", …
	Condition string // the index condition, for reading the plan
	Buffers   int64  // shared hit + read of the node and its children
	Fetches   int64  // Index Only Scan: heap fetches
}

// String is a plan as indented lines (type, relation, index, loops, rows).
func (p Plan) String() string {
	var b strings.Builder
	for _, n := range p.Nodes {
		fmt.Fprintf(&b, "%s%s", strings.Repeat("  ", n.Depth), n.Type)
		if n.Relation != "" {
			fmt.Fprintf(&b, " on %s", n.Relation)
		}
		if n.Index != "" {
			fmt.Fprintf(&b, " using %s", n.Index)
		}
		if n.Removed > 0 {
			fmt.Fprintf(&b, " (%d subplans removed)", n.Removed)
		}
		fmt.Fprintf(&b, " loops=%d rows=%d buffers=%d", n.Loops, n.Rows, n.Buffers)
		if n.Fetches > 0 {
			fmt.Fprintf(&b, " heap_fetches=%d", n.Fetches)
		}
		if n.Condition != "" {
			fmt.Fprintf(&b, " [%s]", n.Condition)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "buffers %d (read %d), %.3f ms\n", p.Buffers, p.Read, p.ExecMs)
	return b.String()
}

// Explain runs EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of stmt on conn.
func Explain(ctx context.Context, conn *pgx.Conn, stmt string, args ...any) (Plan, error) {
	var doc string
	if err := conn.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+stmt, args...).Scan(&doc); err != nil {
		return Plan{}, fmt.Errorf("explaining %q: %w", firstLine(stmt), err)
	}
	return parsePlan(doc)
}

// ExplainBody explains the body of SQL function fn (schema-qualified and
// quoted, e.g. "metrics".drill_failed_runs) as every call plans it: the
// stored body (pg_proc.prosrc), PREPAREd with the function's argument types
// and executed under a generic plan (a SQL function's statements are
// planned with their parameters unknown). args are SQL literals.
func ExplainBody(ctx context.Context, conn *pgx.Conn, fn string, args ...string) (Plan, error) {
	var body, types string
	if err := conn.QueryRow(ctx, `select p.prosrc, pg_catalog.oidvectortypes(p.proargtypes) from pg_catalog.pg_proc p where p.oid = $1::regproc`, fn).
		Scan(&body, &types); err != nil {
		return Plan{}, fmt.Errorf("reading the body of %s: %w", fn, err)
	}
	if !plainArgs.MatchString(types) {
		return Plan{}, fmt.Errorf("%s: unexpected argument types %q", fn, types)
	}
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		return Plan{}, err
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "RESET plan_cache_mode") }()
	if _, err := conn.Exec(ctx, "PREPARE drill_body("+types+") AS "+body); err != nil {
		return Plan{}, fmt.Errorf("preparing the body of %s: %w", fn, err)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "DEALLOCATE drill_body") }()
	return Explain(ctx, conn, "EXECUTE drill_body("+strings.Join(args, ", ")+")")
}

var plainArgs = regexp.MustCompile(`^[a-z ,]*$`)

// Literal quotes s as an SQL string literal.
func Literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

type jsonNode struct {
	NodeType   string     `json:"Node Type"`
	Relation   string     `json:"Relation Name"`
	Index      string     `json:"Index Name"`
	Parent     string     `json:"Parent Relationship"`
	Loops      int64      `json:"Actual Loops"`
	Rows       int64      `json:"Actual Rows"`
	Removed    int64      `json:"Subplans Removed"`
	Hit        int64      `json:"Shared Hit Blocks"`
	Read       int64      `json:"Shared Read Blocks"`
	IndexCond  string     `json:"Index Cond"`
	Fetches    int64      `json:"Heap Fetches"`
	Plans      []jsonNode `json:"Plans"`
	Strategy   string     `json:"Strategy"`
	JoinType   string     `json:"Join Type"`
	SortMethod string     `json:"Sort Method"`
}

func parsePlan(doc string) (Plan, error) {
	var top []struct {
		Plan      jsonNode `json:"Plan"`
		Execution float64  `json:"Execution Time"`
	}
	if err := json.Unmarshal([]byte(doc), &top); err != nil || len(top) != 1 {
		return Plan{}, fmt.Errorf("decoding the plan: %v", err)
	}
	p := Plan{Buffers: top[0].Plan.Hit + top[0].Plan.Read, Read: top[0].Plan.Read, ExecMs: top[0].Execution,
		Rows: top[0].Plan.Rows, JSON: doc}
	var walk func(n jsonNode, depth int)
	walk = func(n jsonNode, depth int) {
		p.Nodes = append(p.Nodes, PlanNode{Type: n.NodeType, Relation: n.Relation, Index: n.Index, Loops: n.Loops,
			Rows: n.Rows, Removed: n.Removed, Depth: depth, Parent: n.Parent, Condition: n.IndexCond,
			Buffers: n.Hit + n.Read, Fetches: n.Fetches})
		for _, c := range n.Plans {
			walk(c, depth+1)
		}
	}
	walk(top[0].Plan, 0)
	return p, nil
}
