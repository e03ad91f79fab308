package reliability

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	meshsql "github.com/meshtop/meshtop/sql"
)

// guardClassID is the first half of meshtop's two-int advisory lock key
// (0x6d657368, "mesh"): pg_locks shows it as classid.
const guardClassID = 0x6d657368

// views are meshtop's materialized views in refresh (dependency) order.
var views = []string{"mv_workflow_metrics_hourly", "mv_workflow_metrics", "mv_step_metrics"}

// querier is what both a pool and a connection offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func qident(s string) string { return pgx.Identifier{s}.Sanitize() }

// ctxT returns a context bounded by d and cancelled at the end of the test.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// checksums returns, for every view, the md5 of its rows' text forms in
// sorted order, or "unpopulated" for a view that has never been refreshed.
func checksums(ctx context.Context, q querier, schema string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range views {
		// The hourly view is a plain view over the hourly rollup (plus the
		// live hours since the last refresh): what its refresh changes, and
		// what an interrupted one must leave alone, is the rollup and the
		// window cells (an hour is built once it has ended, so a change in
		// the hour holding the clock shows in the cells only).
		var populated bool
		err := q.QueryRow(ctx, fmt.Sprintf(`select case when c.relkind = 'v' then (select built from %s.rollup_state) else c.relispopulated end
			from pg_catalog.pg_class c
			join pg_catalog.pg_namespace n on n.oid = c.relnamespace
			where n.nspname = $1 and c.relname = $2`, qident(schema)), schema, v).Scan(&populated)
		if err != nil {
			return nil, fmt.Errorf("reading relispopulated of %s: %w", v, err)
		}
		if !populated {
			out[v] = "unpopulated"
			continue
		}
		rels := []string{v}
		if v == "mv_workflow_metrics_hourly" {
			rels = []string{"rollup_runs_hour", "window_runs"}
		}
		var sums []string
		for _, rel := range rels {
			var sum string
			err = q.QueryRow(ctx, fmt.Sprintf(`select pg_catalog.md5(coalesce(string_agg(t::text, E'\n' order by t::text), ''))
			from %s.%s t`, qident(schema), qident(rel))).Scan(&sum)
			if err != nil {
				return nil, fmt.Errorf("checksumming %s: %w", v, err)
			}
			sums = append(sums, sum)
		}
		out[v] = strings.Join(sums, "+")
	}
	return out, nil
}

// guardLocks counts meshtop's advisory (guard) locks held or awaited in the
// current database.
func guardLocks(ctx context.Context, q querier) (int, error) {
	var n int
	err := q.QueryRow(ctx, `select count(*) from pg_catalog.pg_locks
		where locktype = 'advisory' and classid = $1::oid
		  and database = (select oid from pg_catalog.pg_database where datname = current_database())`,
		int64(guardClassID)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting guard locks: %w", err)
	}
	return n, nil
}

// refreshingBackends lists backends of the current database (other than
// ours) busy in a refresh: running refresh_begin/refresh_run or a REFRESH.
func refreshingBackends(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.Query(ctx, `select pid::text || ' ' || coalesce(state, '') || ': ' || left(query, 120)
		from pg_catalog.pg_stat_activity
		where datname = current_database() and pid <> pg_backend_pid()
		  and coalesce(state, '') not in ('idle', '')
		  and (query ilike '%refresh_run%' or query ilike '%refresh_begin%'
		       or query ilike '%refresh materialized%' or query ilike '%call %refresh%')`)
	if err != nil {
		return nil, fmt.Errorf("listing refreshing backends: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// waitNoRefresh waits (bounded) until no guard lock and no refreshing
// backend remain: a terminated backend takes a moment to exit, longer on a
// loaded machine (the bound is a hang guard, not a timing assertion).
func waitNoRefresh(ctx context.Context, q querier) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n, err := guardLocks(ctx, q)
		if err != nil {
			return err
		}
		b, err := refreshingBackends(ctx, q)
		if err != nil {
			return err
		}
		if n == 0 && len(b) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("left behind after 2 min: %d guard lock(s), refreshing backends %v", n, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveQuery returns the ground-truth query of a view (sql/queries/live_*.sql)
// rendered for schema, without a trailing semicolon.
func liveQuery(view, quotedSchema string) (string, error) {
	name := "queries/live_" + strings.TrimPrefix(view, "mv_") + ".sql"
	b, err := meshsql.Queries.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	text := strings.TrimSpace(meshsql.Render(string(b), quotedSchema))
	return strings.TrimSuffix(text, ";"), nil
}

// normalizedColumns returns the view's columns as a select list in which
// floating-point values are rounded to 6 decimals, so the view and its
// ground truth compare equal despite summation order.
func normalizedColumns(ctx context.Context, q querier, schema, view string) (string, error) {
	rows, err := q.Query(ctx, `select a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
		from pg_catalog.pg_attribute a
		join pg_catalog.pg_class c on c.oid = a.attrelid
		join pg_catalog.pg_namespace n on n.oid = c.relnamespace
		where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped
		order by a.attnum`, schema, view)
	if err != nil {
		return "", fmt.Errorf("reading columns of %s: %w", view, err)
	}
	var cols []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return "", err
		}
		c := qident(name)
		if slices.Contains(approxColumns[view], name) {
			continue // compared within 1% by compareTruth
		}
		switch typ {
		case "double precision", "real", "numeric":
			c = fmt.Sprintf("round(%s::numeric, 6) as %s", c, c)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if len(cols) == 0 {
		return "", fmt.Errorf("view %s.%s has no columns (not installed?)", schema, view)
	}
	return strings.Join(cols, ", "), nil
}

// compareTruth checks every populated view against its ground-truth query with
// EXCEPT ALL both ways, at the view's clock; the metrics clock must be
// pinned (else the views were computed at another now()).
func compareTruth(ctx context.Context, q querier, schema string) error {
	quoted, err := meshsql.QuoteSchema(schema)
	if err != nil {
		return err
	}
	// The live queries take the clock as $1.
	var clock time.Time
	if err := q.QueryRow(ctx, "select "+quoted+".clock()").Scan(&clock); err != nil {
		return fmt.Errorf("reading the metrics clock: %w", err)
	}
	var errs []error
	for _, v := range views {
		var populated bool
		// The hourly view is a plain view over the rollup: populated once
		// the rollup is built.
		if err := q.QueryRow(ctx, "select case when relkind = 'v' then (select built from "+quoted+".rollup_state) else relispopulated end from pg_class where oid = $1::regclass", quoted+"."+qident(v)).Scan(&populated); err != nil {
			return fmt.Errorf("reading relispopulated of %s: %w", v, err)
		}
		if !populated {
			continue // nothing to compare before its first refresh
		}
		live, err := liveQuery(v, quoted)
		if err != nil {
			return err
		}
		cols, err := normalizedColumns(ctx, q, schema, v)
		if err != nil {
			return err
		}
		stmt := fmt.Sprintf(`with v as (select %[1]s from %[2]s.%[3]s),
			l as (select %[1]s from (%[4]s) live)
			select which, t::text from (
			  (select 'view only' as which, d as t from (select * from v except all select * from l) d)
			  union all
			  (select 'truth only', d from (select * from l except all select * from v) d)
			) x order by 2 limit 6`, cols, quoted, qident(v), live)
		rows, err := q.Query(ctx, stmt, clock)
		if err != nil {
			return fmt.Errorf("comparing %s with its ground truth: %w", v, err)
		}
		diffs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			var which, row string
			err := r.Scan(&which, &row)
			return which + ": " + row, err
		})
		if err != nil {
			return fmt.Errorf("comparing %s with its ground truth: %w", v, err)
		}
		if len(diffs) > 0 {
			errs = append(errs, fmt.Errorf("%s differs from its ground truth:\n  %s", v, strings.Join(diffs, "\n  ")))
		}
		if err := comparePercentiles(ctx, q, quoted, v, live, clock); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// approxColumns are the percentile columns of the window views: they come
// from a log-bucket histogram and are within 1% of percentile_cont
// (docs/METRICS.md); every other column is exact.
var approxColumns = map[string][]string{
	"mv_workflow_metrics": {"p50_duration", "p95_duration", "p99_duration"},
	"mv_step_metrics":     {"p50_latency", "p95_latency"},
}

// viewKeys are the unique keys of the window views.
var viewKeys = map[string][]string{
	"mv_workflow_metrics": {"workflow_id", "window"},
	"mv_step_metrics":     {"workflow_id", "node_id", "window"},
}

// comparePercentiles checks view v's approxColumns against the ground truth
// live: within 1% relative, null exactly where the truth is null.
func comparePercentiles(ctx context.Context, q querier, quoted, v, live string, clock time.Time) error {
	pcts := approxColumns[v]
	if len(pcts) == 0 {
		return nil
	}
	var on, bad []string
	for _, k := range viewKeys[v] {
		on = append(on, fmt.Sprintf("v.%[1]s = l.%[1]s", qident(k)))
	}
	for _, c := range pcts {
		bad = append(bad, fmt.Sprintf("(v.%[1]s is null) <> (l.%[1]s is null) or abs(v.%[1]s - l.%[1]s) > 0.01 * abs(l.%[1]s)", qident(c)))
	}
	stmt := fmt.Sprintf(`select row(v.*)::text || ' vs ' || row(l.*)::text
		from %s.%s v join (%s) l on %s where %s limit 6`,
		quoted, qident(v), live, strings.Join(on, " and "), strings.Join(bad, " or "))
	rows, err := q.Query(ctx, stmt, clock)
	if err != nil {
		return fmt.Errorf("comparing the percentiles of %s with its ground truth: %w", v, err)
	}
	diffs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("comparing the percentiles of %s with its ground truth: %w", v, err)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%s: percentiles beyond 1%% of the ground truth:\n  %s", v, strings.Join(diffs, "\n  "))
	}
	return nil
}

// logRow is one row of S.refresh_log_v.
type logRow struct {
	ID     int64
	View   string
	Status string
	State  string
	Error  string
	PID    int32
}

func readLogRow(ctx context.Context, q querier, schema string, id int64) (logRow, error) {
	var r logRow
	err := q.QueryRow(ctx, fmt.Sprintf(`select id, view_name, status, state, coalesce(error, ''), coalesce(pid, 0)
		from %s.refresh_log_v where id = $1`, qident(schema)), id).
		Scan(&r.ID, &r.View, &r.Status, &r.State, &r.Error, &r.PID)
	if err != nil {
		return r, fmt.Errorf("reading refresh log row %d: %w", id, err)
	}
	return r, nil
}

// latestLogRows returns log rows with id > after, oldest first.
func latestLogRows(ctx context.Context, q querier, schema string, after int64) ([]logRow, error) {
	rows, err := q.Query(ctx, fmt.Sprintf(`select id, view_name, status, state, coalesce(error, ''), coalesce(pid, 0)
		from %s.refresh_log_v where id > $1 order by id`, qident(schema)), after)
	if err != nil {
		return nil, fmt.Errorf("reading refresh log: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (logRow, error) {
		var l logRow
		err := r.Scan(&l.ID, &l.View, &l.Status, &l.State, &l.Error, &l.PID)
		return l, err
	})
}

func maxLogID(ctx context.Context, q querier, schema string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, fmt.Sprintf(`select coalesce(max(id), 0) from %s.refresh_log`, qident(schema))).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("reading max refresh log id: %w", err)
	}
	return id, nil
}

// waitFor polls cond every 20 ms until it returns true or the deadline.
func waitFor(ctx context.Context, d time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, d)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sqlState returns the SQLSTATE of err, or "".
func sqlState(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}

// blockViewStmt is a statement that, left open in a transaction, makes a
// refresh of view wait for a lock without blocking readers: COMMENT takes a
// SHARE UPDATE EXCLUSIVE lock on a materialized view (LOCK TABLE refuses
// them); the hourly view is a plain view whose refresh writes the hourly
// rollup, so a SHARE lock on that table holds it.
func blockViewStmt(schema, view string) string {
	if view == "mv_workflow_metrics_hourly" {
		return "lock table " + qident(schema) + ".rollup_runs_hour in share mode"
	}
	return "comment on materialized view " + qident(schema) + "." + qident(view) + " is 'blocker'"
}
