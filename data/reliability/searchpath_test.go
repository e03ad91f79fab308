package reliability

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// plantedFunctions are functions (name, argument types, return type, value)
// a hostile caller puts first in its search_path, shadowing pg_catalog's.
var plantedFunctions = []struct{ name, args, ret, value string }{
	{"now", "", "timestamptz", "'1999-01-01'"},
	{"clock_timestamp", "", "timestamptz", "'1999-01-01'"},
	{"statement_timestamp", "", "timestamptz", "'1999-01-01'"},
	{"hashtext", "text", "int", "42"},
	{"pg_advisory_lock", "int, int", "void", "null"},
	{"pg_advisory_xact_lock", "int, int", "void", "null"},
	{"pg_try_advisory_lock", "int, int", "boolean", "true"},
	{"pg_advisory_unlock", "int, int", "boolean", "true"},
	{"set_config", "text, text, boolean", "text", "''"},
	{"current_setting", "text", "text", "'1ms'"},
	{"current_setting", "text, boolean", "text", "'1ms'"},
	{"current_database", "", "name", "'evil'"},
	{"pg_backend_pid", "", "int", "1"},
	{"pg_cancel_backend", "int", "boolean", "true"},
	{"pg_terminate_backend", "int, bigint", "boolean", "true"},
	{"pg_notify", "text, text", "void", "null"},
	{"format", "text, text", "text", "'select 1'"},
	{"format", "text, text, text", "text", "'select 1'"},
	{"to_char", "timestamptz, text", "text", "'evil'"},
	{"date_part", "text, interval", "float8", "-1"},
	{"date_part", "text, timestamptz", "float8", "-1"},
	{"percentile_cont_final", "float8", "float8", "-1"},
	{"user_project_ids", "", "setof uuid", "null"},
	{"uid", "", "uuid", "null"},
	{"lower", "text", "text", "'evil'"},
	{"length", "text", "int", "0"},
	{"nullif", "text, text", "text", "null"},
	{"jsonb_build_object", "text, text", "jsonb", "'{}'"},
	{"json_build_object", "text, text", "json", "'{}'"},
	{"schema_name", "", "text", "'evil'"},
	{"clock", "", "timestamptz", "'1999-01-01'"},
	{"guard_key", "text", "int", "42"},
	{"guard_held", "text, int", "boolean", "true"},
	{"notify", "anyelement", "void", "null"},
	{"view_names", "", "text[]", "array['evil']"},
}

// plantedTables shadow catalog and meshtop relations.
var plantedTables = []string{"refresh_log", "config", "meshtop_migrations", "pg_locks", "pg_class",
	"pg_namespace", "pg_database", "pg_stat_activity", "workflow_runs", "projects", "mv_workflow_metrics"}

// plantEvil creates schema evil with every planted object; each planted
// function records its call in evil.calls.
func plantEvil(ctx context.Context, t *testing.T, q querier) {
	t.Helper()
	stmts := []string{
		"create schema evil",
		"grant usage, create on schema evil to public",
		"create table evil.calls (name text, at timestamptz default pg_catalog.clock_timestamp())",
		"grant all on evil.calls to public",
	}
	for _, tb := range plantedTables {
		stmts = append(stmts, fmt.Sprintf("create table evil.%s (key text, value text, pid int, view_name text, status text, locktype text, granted bool)", tb),
			fmt.Sprintf("insert into evil.%s values ('lock_timeout', '1ms', 1, 'mv_workflow_metrics', 'running', 'advisory', true)", tb),
			fmt.Sprintf("grant all on evil.%s to public", tb))
	}
	for _, f := range plantedFunctions {
		ret := f.ret
		body := fmt.Sprintf("insert into evil.calls (name) values (%s); return %s::%s;", "'"+f.name+"'", f.value, ret)
		if ret == "void" {
			body = fmt.Sprintf("insert into evil.calls (name) values ('%s');", f.name)
		}
		if strings.HasPrefix(ret, "setof ") {
			body = fmt.Sprintf("insert into evil.calls (name) values ('%s'); return;", f.name)
		}
		stmts = append(stmts, fmt.Sprintf("create function evil.%s(%s) returns %s language plpgsql volatile as $f$ begin %s end $f$",
			f.name, f.args, ret, body))
	}
	// Operators: every text and int comparison "true", and recorded.
	stmts = append(stmts,
		`create function evil.texteq(text, text) returns boolean language plpgsql as $f$ begin insert into evil.calls (name) values ('=(text,text)'); return true; end $f$`,
		`create operator evil.= (leftarg = text, rightarg = text, function = evil.texteq)`,
		`create function evil.int4eq(int, int) returns boolean language plpgsql as $f$ begin insert into evil.calls (name) values ('=(int,int)'); return true; end $f$`,
		`create operator evil.= (leftarg = int, rightarg = int, function = evil.int4eq)`,
		`create function evil.bigint_eq(bigint, bigint) returns boolean language plpgsql as $f$ begin insert into evil.calls (name) values ('=(bigint,bigint)'); return true; end $f$`,
		`create operator evil.= (leftarg = bigint, rightarg = bigint, function = evil.bigint_eq)`,
		"grant execute on all functions in schema evil to public",
	)
	for _, s := range stmts {
		if _, err := q.Exec(ctx, s); err != nil {
			t.Fatalf("planting: %s: %v", s, err)
		}
	}
}

func evilCalls(ctx context.Context, t *testing.T, q querier) []string {
	t.Helper()
	rows, err := q.Query(ctx, "select distinct name from evil.calls order by 1")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// hotPathCapture are the row-level capture functions that run on every
// MeshHook write (sql/repeatable/020_capture.sql): they carry no SET clause,
// which would save and restore search_path on every call, and are instead
// written so that no search_path can change them (checkSearchPathProof).
var hotPathCapture = map[string]bool{"capture_run_insert": true, "capture_run_update": true, "capture_event_insert": true}

// checkSearchPathProof fails unless the body of fn resolves nothing through
// search_path: no operator, every function call qualified with pg_catalog,
// every table qualified with a schema.
func checkSearchPathProof(t *testing.T, ctx context.Context, pool *pgxpool.Pool, fn string) {
	t.Helper()
	var src string
	if err := pool.QueryRow(ctx, `select prosrc from pg_proc where oid = $1::regprocedure`, fn).Scan(&src); err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile(`'[^']*'`).ReplaceAllString(src, "''") // string literals are data
	if i := strings.IndexAny(code, "=<>!~+-*/%^|&#?@"); i >= 0 {
		t.Errorf("%s has no SET search_path but uses an operator (%q): %s", fn, code[i:min(i+20, len(code))], src)
	}
	calls := regexp.MustCompile(`(?i)insert\s+into\s+\S+\s*\(`).ReplaceAllString(code, "insert into target ") // a column list is no call
	for _, m := range regexp.MustCompile(`([A-Za-z_][A-Za-z_0-9.]*)\s*\(`).FindAllStringSubmatch(calls, -1) {
		if name := strings.ToLower(m[1]); name != "values" && !strings.HasPrefix(name, "pg_catalog.") {
			t.Errorf("%s has no SET search_path but calls %s unqualified", fn, m[1])
		}
	}
	for _, m := range regexp.MustCompile(`(?i)insert\s+into\s+(\S+)`).FindAllStringSubmatch(code, -1) {
		if !strings.Contains(m[1], ".") {
			t.Errorf("%s has no SET search_path but inserts into %s unqualified", fn, m[1])
		}
	}
}

// TestPlantedSearchPathIgnored: the SECURITY DEFINER functions pin their
// search_path, so functions, operators, tables and temp tables a caller
// plants ahead of pg_catalog are never used.
func TestPlantedSearchPathIgnored(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	ctx := e.ctx
	S := qident(e.schema)
	plantEvil(ctx, t, e.db.Pool)

	// Every SECURITY DEFINER function pins search_path, pg_catalog first and
	// pg_temp (if named) last. A schema callers may be able to write to
	// (public, $user) is on no path but that of tenant_project_ids(), the
	// invoker helper through which tenant_workflow_metrics calls MeshHook's
	// user_project_ids() (whose unqualified `projects` needs public); only
	// the owner may execute it (TestTenantAPIWithMeshHookDefinitions plants
	// objects in public against it).
	rows, err := e.db.Pool.Query(ctx, `select p.oid::regprocedure::text, p.proname, p.prosecdef, coalesce(array_to_string(p.proconfig, ';'), ''),
		  exists (select from pg_roles r where r.rolname in ('anon', 'authenticated', 'meshtop_reader', 'meshtop_refresher', 'meshtop_tenant')
		          and has_function_privilege(r.oid, p.oid, 'EXECUTE'))
		from pg_proc p where p.pronamespace = $1::regnamespace and (p.prosecdef or p.proconfig is not null)`, S)
	if err != nil {
		t.Fatal(err)
	}
	definers := 0
	for rows.Next() {
		var fn, name, cfg string
		var definer, callable bool
		if err := rows.Scan(&fn, &name, &definer, &cfg, &callable); err != nil {
			t.Fatal(err)
		}
		if definer {
			definers++
		}
		var path string
		for _, kv := range strings.Split(cfg, ";") {
			if v, ok := strings.CutPrefix(kv, "search_path="); ok {
				path = v
			}
		}
		if path == "" && !strings.Contains(cfg, `search_path=""`) {
			if definer && hotPathCapture[name] {
				checkSearchPathProof(t, ctx, e.db.Pool, fn)
			} else if definer {
				t.Errorf("SECURITY DEFINER %s does not pin search_path (%q)", fn, cfg)
			}
			continue
		}
		if (definer || name == "tenant_project_ids") && path != `""` && !strings.HasPrefix(path, "pg_catalog") {
			t.Errorf("%s searches another schema before pg_catalog: %q", fn, path)
		}
		if strings.Contains(path, "pg_temp") && !strings.HasSuffix(strings.TrimSpace(path), "pg_temp") {
			t.Errorf("%s has pg_temp before other schemas: %q", fn, path)
		}
		if strings.Contains(path, "public") || strings.Contains(path, "$user") {
			if name != "tenant_project_ids" || definer || callable || path != "pg_catalog, public, pg_temp" {
				t.Errorf("%s (definer %v, executable by others %v) searches a schema callers may write to: %q", fn, definer, callable, path)
			}
		}
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if definers < 4 {
		t.Fatalf("only %d SECURITY DEFINER functions found", definers)
	}

	const pw = "S3cr3t-planted-pw-13"
	_, refresherDSN := e.loginPool(t, "rel_planted_refresher", pw, "meshtop_refresher")
	_, tenantDSN := e.loginPool(t, "rel_planted_tenant", pw, "meshtop_tenant")
	hostile := func(dsn string) *pgx.Conn {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["search_path"] = "evil, pg_catalog, public"
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		// Temp tables shadow unqualified relations when pg_temp is searched
		// first (the default for relations).
		for _, tb := range []string{"refresh_log", "config", "meshtop_migrations"} {
			if _, err := c.Exec(ctx, fmt.Sprintf("create temp table %s (key text, value text, pid int, view_name text, status text)", tb)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, fmt.Sprintf("insert into pg_temp.%s values ('lock_timeout', '1ms', 1, 'mv_workflow_metrics', 'running')", tb)); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	ref := hostile(refresherDSN)
	var path string
	if err := ref.QueryRow(ctx, "show search_path").Scan(&path); err != nil || !strings.HasPrefix(path, "evil") {
		t.Fatalf("the hostile session's search_path is %q (%v)", path, err)
	}

	before, err := maxLogID(ctx, e.db.Pool, e.schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		var id int64
		if err := ref.QueryRow(ctx, "select "+S+".refresh_begin($1)", v).Scan(&id); err != nil {
			t.Fatalf("refresh_begin(%s) with a hostile search_path: %v", v, err)
		}
		var status string
		if err := ref.QueryRow(ctx, "select status from "+S+".refresh_run($1)", id).Scan(&status); err != nil || status != "ok" {
			t.Fatalf("refresh_run(%s) with a hostile search_path: %q, %v", v, status, err)
		}
	}
	for _, stmt := range []string{
		"select " + S + ".refresh_cancel()",
		"select " + S + ".refresh_cancel('mv_step_metrics')",
		"select * from " + S + ".running_now()",
		"select " + S + ".clock()",
		"select * from " + S + ".refresh_status",
		"select * from " + S + ".refresh_log_v",
	} {
		if _, err := ref.Exec(ctx, stmt); err != nil {
			t.Errorf("%s with a hostile search_path: %v", stmt, err)
		}
	}
	ten := hostile(tenantDSN)
	var owner string
	if err := e.db.Pool.QueryRow(ctx, "select owner::text from public.projects order by id limit 1").Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if _, err := ten.Exec(ctx, "select pg_catalog.set_config('request.jwt.claim.sub', $1, false)", owner); err != nil {
		t.Fatal(err)
	}
	var tenantRows, want int
	if err := ten.QueryRow(ctx, "select pg_catalog.count(*) from "+S+".tenant_workflow_metrics('24h')").Scan(&tenantRows); err != nil {
		t.Fatalf("tenant function with a hostile search_path: %v", err)
	}
	if err := e.db.Pool.QueryRow(ctx, "select count(*) from "+S+".mv_workflow_metrics m join public.projects p on p.id = m.project_id where m.\"window\" = '24h' and p.owner::text = $1", owner).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if tenantRows != want || want == 0 {
		t.Errorf("tenant function with a hostile search_path: %d rows, want %d", tenantRows, want)
	}

	if calls := evilCalls(ctx, t, e.db.Pool); len(calls) > 0 {
		t.Fatalf("planted objects were used by meshtop's SECURITY DEFINER functions: %v", calls)
	}
	// What the refreshes wrote went to meshtop's own log, at the pinned clock.
	rowsAfter, err := latestLogRows(ctx, e.db.Pool, e.schema, before)
	if err != nil {
		t.Fatal(err)
	}
	if len(rowsAfter) != len(views) {
		t.Errorf("%d log rows written, want %d", len(rowsAfter), len(views))
	}
	for _, r := range rowsAfter {
		if r.Status != "ok" {
			t.Errorf("log row %d: %s %s", r.ID, r.Status, r.Error)
		}
	}
	var lastUpdated time.Time
	if err := e.db.Pool.QueryRow(ctx, "select max(last_updated) from "+S+".mv_workflow_metrics").Scan(&lastUpdated); err != nil {
		t.Fatal(err)
	}
	if !lastUpdated.Equal(anchor) {
		t.Errorf("last_updated is %s, want the pinned clock %s", lastUpdated, anchor)
	}
	var temps int
	if err := ref.QueryRow(ctx, "select pg_catalog.count(*) from pg_temp.refresh_log").Scan(&temps); err != nil || temps != 1 {
		t.Errorf("the caller's temp refresh_log has %d rows (%v), want the 1 planted", temps, err)
	}
	if err := compareTruth(ctx, e.db.Pool, e.schema); err != nil {
		t.Error(err)
	}

	// The invoker procedure (pg_cron's entry point) runs as its caller, so a
	// planted object there could only act with the caller's own rights; it
	// qualifies every name and operator all the same.
	beforeCall, err := maxLogID(ctx, e.db.Pool, e.schema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ref.Exec(ctx, "call "+S+".refresh()"); err != nil {
		t.Errorf("CALL refresh() with a hostile search_path: %v", err)
	}
	callRows, err := latestLogRows(ctx, e.db.Pool, e.schema, beforeCall)
	if err != nil {
		t.Fatal(err)
	}
	if len(callRows) != len(views) {
		t.Errorf("CALL refresh() with a hostile search_path wrote %d log rows, want %d", len(callRows), len(views))
	}
	for _, r := range callRows {
		if r.Status != "ok" {
			t.Errorf("CALL refresh() with a hostile search_path: %s %s %s", r.View, r.Status, r.Error)
		}
	}
	if calls := evilCalls(ctx, t, e.db.Pool); len(calls) > 0 {
		t.Errorf("CALL refresh() (SECURITY INVOKER) used planted objects from the caller's search_path: %v", calls)
	}
	report.add("security.planted_objects", int64(len(plantedFunctions)+len(plantedTables)+3+3))
	t.Logf("%d SECURITY DEFINER functions, %d planted functions, %d planted tables, 3 operators, 3 temp tables: none used",
		definers, len(plantedFunctions), len(plantedTables))
}
