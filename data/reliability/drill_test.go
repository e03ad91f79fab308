package reliability

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
	"github.com/meshtop/meshtop/data/workersim"
)

// TestTenantDrillDown: the tenant API's drill-down, granted to Supabase's
// authenticated as docs/SECURITY.md says, answers an API caller for the
// workflows and runs of its own projects only — the same rows as the
// readers' functions there, none elsewhere, none without a subject — with
// MeshHook's own user_project_ids() and the qualified one, and with objects
// the caller planted in every schema it can create in; anon is denied, and
// the readers' functions are not the API roles'. Re-applying the
// repeatable files keeps the operator's grants.
func TestTenantDrillDown(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t, 4*time.Minute)
	d, err := workersim.Scenario(ctx, db.Pool, anchor)
	if err != nil {
		t.Fatal(err)
	}
	in := install.New(db.Pool, "metrics")
	if _, err := in.Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	a := anchor
	if err := in.SetClock(ctx, &a); err != nil {
		t.Fatal(err)
	}
	// A third project (plantForTenant wants every project to claim), owned
	// by nobody who calls.
	if err := workersim.Project(ctx, db.Pool, workersim.ID("project:third"), workersim.ID("owner:third"), "third"); err != nil {
		t.Fatal(err)
	}
	S := "metrics"
	c, err := pgx.Connect(ctx, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	tenantFns := []string{"tenant_failed_runs(uuid, text, integer)", "tenant_slowest_runs(uuid, text, integer)", "tenant_run(uuid)", "tenant_run_steps(uuid)"}
	grant := "grant usage on schema " + S + " to authenticated"
	for _, f := range tenantFns {
		grant += "; grant execute on function " + S + "." + f + " to authenticated"
	}
	if _, err := c.Exec(ctx, grant); err != nil {
		t.Fatal(err)
	}

	acme, beta := d.Owners["acme-crm"], d.Owners["beta-shop"]
	// What each query gives the owner (through the readers' functions).
	queries := []struct{ tenant, reader string }{
		{"select t::text from " + S + ".tenant_failed_runs('" + d.W1 + "', '24h') t", "select t::text from " + S + ".drill_failed_runs('" + d.W1 + "', '24h', 20) t"},
		{"select t::text from " + S + ".tenant_slowest_runs('" + d.W1 + "', '7d', 50) t", "select t::text from " + S + ".drill_slowest_runs('" + d.W1 + "', '7d', 50) t"},
		{"select t::text from " + S + ".tenant_failed_runs('" + d.W2 + "', '24h') t", "select t::text from " + S + ".drill_failed_runs('" + d.W2 + "', '24h', 20) t"},
		{"select t::text from " + S + ".tenant_run('" + d.Runs["fail-1"] + "') t", "select t::text from " + S + ".drill_run('" + d.Runs["fail-1"] + "') t"},
		{"select t::text from " + S + ".tenant_run_steps('" + d.Runs["fail-2"] + "') t", "select t::text from " + S + ".drill_run_steps('" + d.Runs["fail-2"] + "') t"},
		{"select t::text from " + S + ".tenant_run('" + d.Runs["w2-fail"] + "') t", "select t::text from " + S + ".drill_run('" + d.Runs["w2-fail"] + "') t"},
		{"select t::text from " + S + ".tenant_run_steps('" + d.Runs["w2-fail"] + "') t", "select t::text from " + S + ".drill_run_steps('" + d.Runs["w2-fail"] + "') t"},
	}
	ownerOf := []string{acme, acme, beta, acme, acme, beta, beta}
	full := make([][]string, len(queries))
	for i, q := range queries {
		rows, err := c.Query(ctx, q.reader)
		if err != nil {
			t.Fatal(err)
		}
		full[i], err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(full[i])
		if len(full[i]) == 0 {
			t.Fatalf("%s: no rows; the scenario is not what the test expects", q.reader)
		}
	}

	check := func(t *testing.T, hostile bool) {
		for i, q := range queries {
			for _, who := range []struct{ name, sub string }{{"acme", acme}, {"beta", beta}, {"no subject", ""}, {"unknown", workersim.ID("owner:nobody")}} {
				got, err := tenantRequest(ctx, c, "authenticated", who.sub, q.tenant, hostile, acme)
				if err != nil {
					t.Errorf("%s as %s: %v", q.tenant, who.name, err)
					continue
				}
				var want []string
				if who.sub == ownerOf[i] {
					want = full[i]
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s as %s: %d rows, want %d", q.tenant, who.name, len(got), len(want))
				}
			}
			if _, err := tenantRequest(ctx, c, "anon", acme, q.tenant, false, acme); sqlState(err) != "42501" {
				t.Errorf("anon: %s: %v; want permission denied", q.tenant, err)
			}
			if _, err := tenantRequest(ctx, c, "authenticated", acme, q.reader, false, acme); sqlState(err) != "42501" {
				t.Errorf("authenticated ran the readers' %s: %v; want permission denied", q.reader, err)
			}
		}
	}
	plantForTenant(ctx, t, c, acme)
	for _, hostile := range []bool{false, true} {
		for _, def := range userProjectIDs {
			if _, err := c.Exec(ctx, def.ddl); err != nil {
				t.Fatalf("%s: %v", def.name, err)
			}
			t.Run(fmt.Sprintf("%s/hostile=%v", def.name, hostile), func(t *testing.T) { check(t, hostile) })
		}
	}
	var calls []string
	rows, err := c.Query(ctx, "select distinct name from caller.calls order by 1")
	if err == nil {
		calls, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || len(calls) > 0 {
		t.Errorf("planted objects ran inside the tenant functions: %v %v", calls, err)
	}

	// The repeatable files applied again (a new meshtop's upgrade): the
	// operator's grants on the tenant functions stay, the API roles get
	// nothing else.
	reps, err := in.Repeatables()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if r.Name == "070_drill" || r.Name == "090_access" {
			if _, err := c.Exec(ctx, r.SQL); err != nil {
				t.Fatalf("%s: %v", r.Name, err)
			}
		}
	}
	for _, f := range tenantFns {
		var ok bool
		if err := c.QueryRow(ctx, "select has_function_privilege('authenticated', $1, 'EXECUTE')", S+"."+f).Scan(&ok); err != nil || !ok {
			t.Errorf("the grant of %s to authenticated after the repeatables ran again: %v, %v", f, ok, err)
		}
	}
	rows, err = c.Query(ctx, `select p.oid::regprocedure::text from pg_proc p
		where p.pronamespace = 'metrics'::regnamespace and p.proname like 'drill\_%'
		  and (has_function_privilege('authenticated', p.oid, 'EXECUTE') or has_function_privilege('anon', p.oid, 'EXECUTE')
		       or has_function_privilege('meshtop_tenant', p.oid, 'EXECUTE'))`)
	if err != nil {
		t.Fatal(err)
	}
	open, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(open) > 0 {
		t.Errorf("readers' drill-down functions executable by API or tenant roles: %v %v", open, err)
	}
}

// TestDrillDownReaderOnly: a login granted meshtop_reader alone reads the
// drill-down through the store (lists and timelines, as the dashboard and
// `meshtop runs` do), but neither MeshHook's tables nor the internal step
// function, and what it gets carries no payload field but the node, the
// HTTP status, the attempt and the error.
func TestDrillDownReaderOnly(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t, 4*time.Minute)
	d, err := workersim.Scenario(ctx, db.Pool, anchor)
	if err != nil {
		t.Fatal(err)
	}
	in := install.New(db.Pool, "metrics")
	if _, err := in.Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	e := &secEnv{db: db, ctx: ctx, schema: "metrics", inst: in, roleSuffix: db.Name}
	pool, _ := e.loginPool(t, "drill_reader", "pw-"+db.Name, "meshtop_reader")
	st := store.New(pool, nil, store.Options{Schema: "metrics"})
	l, err := st.Runs(ctx, d.W1, store.Window30d, store.RunsFailed, 50)
	if err != nil || len(l.Runs) != 3 {
		t.Fatalf("Runs as a reader: %d runs, %v", len(l.Runs), err)
	}
	tl, err := st.Run(ctx, d.Runs["retry-1"])
	if err != nil || len(tl.Steps) != 4 {
		t.Fatalf("Run as a reader: %+v, %v", tl, err)
	}
	for _, q := range []string{"select 1 from public.workflow_events limit 1", "select 1 from public.workflow_runs limit 1",
		"select 1 from public.projects limit 1", "select * from metrics.drill_steps(gen_random_uuid(), now(), now(), false, 1)",
		"select * from metrics.tenant_failed_runs(gen_random_uuid(), '24h')"} {
		if _, err := pool.Exec(ctx, q); sqlState(err) != "42501" {
			t.Errorf("a reader ran %q: %v; want permission denied", q, err)
		}
	}
	// Every column of every drill-down function's result, as the reader
	// sees it: no payload beyond the four fields.
	for _, q := range []string{
		"select t::text from metrics.drill_failed_runs('" + d.W1 + "', '30d', 200) t",
		"select t::text from metrics.drill_slowest_runs('" + d.W1 + "', '30d', 200) t",
	} {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range texts {
			if strings.Contains(x, workersim.PersonalData) || strings.Contains(x, "response") {
				t.Errorf("%s returned a payload: %.200s", q, x)
			}
		}
	}
	for name, id := range d.Runs {
		rows, err := pool.Query(ctx, "select t::text from metrics.drill_run_steps($1) t", id)
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range texts {
			if strings.Contains(x, workersim.PersonalData) || strings.Contains(x, "response") || strings.Contains(x, "output") {
				t.Errorf("%s's steps returned a payload: %.200s", name, x)
			}
		}
	}
}
