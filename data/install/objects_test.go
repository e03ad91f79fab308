package install_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
)

// TestObjectsListsWhatInstallCreates: the install prompt's list
// (Installer.Objects), which an SRE reads to vet what install adds to
// MeshHook's database, names every relation and sequence install creates in
// its schema, every function another role may execute or that runs with the
// owner's rights (SECURITY DEFINER), every trigger on MeshHook's tables and
// every role — and counts the rest (the refresh engine's internal
// functions) rather than leaving them out silently.
func TestObjectsListsWhatInstallCreates(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := pgtest.NewDatabase(t)
	in := install.New(db.Pool, "metrics")
	mustApply(t, ctx, in)
	var text strings.Builder
	for _, o := range in.Objects() {
		text.WriteString(o.Kind + " " + o.Name + "\n")
	}
	listed := text.String()
	word := func(name string) bool {
		return regexp.MustCompile(`(^|[\s.,(])` + regexp.QuoteMeta(name) + `($|[\s,()])`).MatchString(listed)
	}
	rows, err := db.Pool.Query(ctx, `
		select c.relkind::text, c.relname from pg_class c
		where c.relnamespace = 'metrics'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'S')
		union all
		select 'f', p.proname from pg_proc p
		where p.pronamespace = 'metrics'::regnamespace
		  and (p.prosecdef or exists (
		        select from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
		        where a.grantee <> p.proowner and a.privilege_type = 'EXECUTE'))
		union all
		select 't', t.tgname from pg_trigger t
		where t.tgrelid in ('public.workflow_runs'::regclass, 'public.workflow_events'::regclass) and not t.tgisinternal
		union all
		select 'o', r.rolname from pg_roles r where r.rolname like 'meshtop\_%' and r.rolname not like 'meshtop\_test\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var missing []string
	for rows.Next() {
		var kind, name string
		if err := rows.Scan(&kind, &name); err != nil {
			t.Fatal(err)
		}
		if kind == "t" {
			if !strings.Contains(listed, "trigger") || !strings.Contains(listed, "public.workflow_runs") {
				missing = append(missing, "trigger "+name)
			}
			continue
		}
		if !word(name) {
			missing = append(missing, kind+" "+name)
		}
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(missing) > 0 {
		t.Errorf("install's object list misses %d objects install creates: %s\nlist:\n%s", len(missing), strings.Join(missing, ", "), listed)
	}
	var internal int
	if err := db.Pool.QueryRow(ctx, `select count(*) from pg_proc p where p.pronamespace = 'metrics'::regnamespace`).Scan(&internal); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(listed, "internal functions") {
		t.Errorf("the list does not count the schema's internal functions (%d functions in all):\n%s", internal, listed)
	}
}
