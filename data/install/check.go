package install

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meshtop/meshtop/data/safetext"
)

// MeshHookTables are the tables the views read.
var MeshHookTables = []string{"public.projects", "public.workflow_definitions", "public.workflow_runs", "public.workflow_events"}

// PreconditionError says why meshtop cannot be installed, in one sentence.
type PreconditionError struct {
	// Kind is "version", "standby", "tables" or "privileges".
	Kind string
	// Missing lists the missing tables or privileges, when Kind says so.
	Missing []string
	Msg     string
}

func (e *PreconditionError) Error() string { return e.Msg }

// Check verifies the preconditions of Apply and returns a
// *PreconditionError naming what is wrong, or nil.
func (in *Installer) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return in.check(ctx, in.pool)
}

// versionProblem returns the refusal for server_version_num v, or "".
func versionProblem(v int, version string) string {
	if v < 150000 {
		return fmt.Sprintf("PostgreSQL %s is too old: meshtop needs PostgreSQL 15 or newer.", version)
	}
	return ""
}

// versionWarning returns the warning for server_version_num v, or "".
func versionWarning(v int, version string) string {
	if v >= 150000 && v < 150006 {
		return fmt.Sprintf("PostgreSQL %s is affected by CVE-2024-0985 (a REFRESH MATERIALIZED VIEW CONCURRENTLY started by a non-owner can run SQL as the view's owner); upgrade to 15.6 or newer.", version)
	}
	return ""
}

// publicCreatorsWarning returns the warning for the roles (quoted, or
// PUBLIC) that may create objects in schema public, or "".
func publicCreatorsWarning(roles []string) string {
	if len(roles) == 0 {
		return ""
	}
	need := "they need"
	if len(roles) == 1 {
		need = "it needs"
	}
	return fmt.Sprintf("%s may create objects in schema public. tenant_workflow_metrics runs MeshHook's public.user_project_ids() "+
		"with search_path pg_catalog, public, pg_temp (every API request's path has public too), so its current definition cannot be misled, "+
		"but such a role could shadow a name MeshHook adds to it later (docs/SECURITY.md): REVOKE CREATE ON SCHEMA public FROM %s unless %s it.",
		joinAnd(roles), strings.Join(roles, ", "), need)
}

// Warnings returns advice that does not block installing: an unpatched
// server version, and roles other than public's owner, its members, the
// superusers and the installing role that hold CREATE on schema public.
func (in *Installer) Warnings(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var num int
	var version string
	var creators []string
	if err := in.pool.QueryRow(ctx, bookkeeping+`SELECT current_setting('server_version_num')::int, current_setting('server_version'),
  ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END
        FROM pg_catalog.pg_namespace n
        CROSS JOIN LATERAL pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
        LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
        WHERE n.nspname = 'public' AND a.privilege_type = 'CREATE'
          AND (a.grantee = 0 OR NOT (r.rolsuper OR r.rolname = current_user
                                     OR pg_catalog.pg_has_role(r.oid, n.nspowner, 'MEMBER')))
        ORDER BY a.grantee <> 0, r.rolname)`).Scan(&num, &version, &creators); err != nil {
		return nil, fmt.Errorf("reading the server version and who may create in schema public: %w", err)
	}
	var out []string
	if w := versionWarning(num, version); w != "" {
		out = append(out, w)
	}
	if w := publicCreatorsWarning(creators); w != "" {
		out = append(out, w)
	}
	return out, nil
}

func (in *Installer) check(ctx context.Context, q querier) error {
	quoted, err := in.quoted()
	if err != nil {
		return err
	}
	var (
		num               int
		version, user, db string
		standby           bool
		super, createrole bool
		bypassrls         bool
		schemaExists      bool
		createOnDB        bool
		missingRoles      []string
		missingIndexes    []string
		createOnPublic    bool
	)
	err = q.QueryRow(ctx, bookkeeping+`SELECT current_setting('server_version_num')::int, current_setting('server_version'),
  pg_catalog.pg_is_in_recovery(), current_user, current_database(),
  r.rolsuper, r.rolcreaterole, r.rolbypassrls,
  pg_catalog.to_regnamespace($1) IS NOT NULL,
  pg_catalog.has_database_privilege(current_database(), 'CREATE'),
  ARRAY(SELECT u FROM unnest($2::text[]) u WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles x WHERE x.rolname = u)),
  ARRAY(SELECT n FROM unnest($3::text[]) WITH ORDINALITY AS x(n, o)
        WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
                          WHERE c.relname = x.n AND c.relnamespace = 'public'::regnamespace AND i.indisvalid)
        ORDER BY x.o),
  pg_catalog.has_schema_privilege('public', 'CREATE')
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`, quoted, Roles, Indexes).Scan(
		&num, &version, &standby, &user, &db, &super, &createrole, &bypassrls,
		&schemaExists, &createOnDB, &missingRoles, &missingIndexes, &createOnPublic)
	if err != nil {
		return fmt.Errorf("checking install preconditions: %w", err)
	}
	if msg := versionProblem(num, version); msg != "" {
		return &PreconditionError{Kind: "version", Msg: msg}
	}
	if standby {
		return &PreconditionError{Kind: "standby", Msg: fmt.Sprintf("The server of database %s is a read-only standby; install on the primary.", db)}
	}

	type tableInfo struct {
		name               string
		exists, owner, sel bool
		rls, forced        bool
		trigger            bool
	}
	var tables []tableInfo
	rows, err := q.Query(ctx, bookkeeping+`SELECT t.name, c.oid IS NOT NULL,
  coalesce(pg_catalog.pg_has_role(c.relowner, 'USAGE'), false),
  coalesce(pg_catalog.has_table_privilege(c.oid, 'SELECT'), false),
  coalesce(c.relrowsecurity, false), coalesce(c.relforcerowsecurity, false),
  coalesce(pg_catalog.has_table_privilege(c.oid, 'TRIGGER'), false)
FROM unnest($1::text[]) WITH ORDINALITY AS t(name, ord)
LEFT JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(t.name)
ORDER BY t.ord`, MeshHookTables)
	if err != nil {
		return fmt.Errorf("checking the MeshHook tables: %w", err)
	}
	for rows.Next() {
		var t tableInfo
		if err := rows.Scan(&t.name, &t.exists, &t.owner, &t.sel, &t.rls, &t.forced, &t.trigger); err != nil {
			rows.Close()
			return fmt.Errorf("checking the MeshHook tables: %w", err)
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("checking the MeshHook tables: %w", err)
	}
	var missingTables []string
	for _, t := range tables {
		if !t.exists {
			missingTables = append(missingTables, t.name)
		}
	}
	if len(missingTables) > 0 {
		return &PreconditionError{Kind: "tables", Missing: missingTables, Msg: fmt.Sprintf(
			"Database %s has no MeshHook tables (%s %s missing); connect to the MeshHook database.",
			db, joinAnd(missingTables), isAre(len(missingTables)))}
	}

	var missing []string
	if !schemaExists && !createOnDB && !super {
		missing = append(missing, fmt.Sprintf("CREATE on database %s (to create schema %s)", db, quoted))
	}
	if len(missingRoles) > 0 && !createrole && !super {
		missing = append(missing, fmt.Sprintf("CREATEROLE (to create role%s %s)", plural(len(missingRoles)), joinAnd(missingRoles)))
	}
	for _, t := range tables {
		if t.name == "public.workflow_runs" && len(missingIndexes) > 0 && !t.owner && !super {
			missing = append(missing, "ownership of public.workflow_runs (CREATE INDEX on it needs it)")
		}
	}
	var noTrigger []string
	for _, t := range tables {
		if (t.name == "public.workflow_runs" || t.name == "public.workflow_events") && !t.trigger && !super {
			noTrigger = append(noTrigger, t.name)
		}
	}
	if len(noTrigger) > 0 {
		missing = append(missing, "TRIGGER on "+joinAnd(noTrigger)+" (for the change-capture triggers)")
	}
	if !super && !slices.Contains(noTrigger, "public.workflow_events") {
		// A row-level trigger on the partitioned table is cloned onto every
		// partition, which needs TRIGGER on each.
		var parts []string
		if err := q.QueryRow(ctx, bookkeeping+`SELECT coalesce(array_agg(c.oid::regclass::text ORDER BY c.relname), '{}')
FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'public.workflow_events'::regclass
  AND NOT pg_catalog.has_table_privilege(c.oid, 'TRIGGER')`).Scan(&parts); err != nil {
			return fmt.Errorf("checking the partitions of public.workflow_events: %w", err)
		}
		if len(parts) > 0 {
			missing = append(missing, fmt.Sprintf("TRIGGER on %d partition%s of public.workflow_events (%s; the change-capture trigger is cloned onto each)",
				len(parts), plural(len(parts)), joinAnd(safeNames(parts, 3))))
		}
	}
	if len(missingIndexes) > 0 && !createOnPublic && !super {
		missing = append(missing, fmt.Sprintf("CREATE on schema public (to create index%s %s there)", pluralES(len(missingIndexes)), joinAnd(missingIndexes)))
	}
	var noSelect, hidden []string
	for _, t := range tables {
		if !t.sel && !super {
			noSelect = append(noSelect, t.name)
		}
		// The views run as their owner (this role): row-level security
		// would hide other tenants' rows from them.
		if t.rls && !super && !bypassrls && (!t.owner || t.forced) {
			hidden = append(hidden, t.name)
		}
	}
	if len(noSelect) > 0 {
		missing = append(missing, "SELECT on "+joinAnd(noSelect))
	}
	if len(hidden) > 0 {
		missing = append(missing, fmt.Sprintf("BYPASSRLS (row-level security on %s would hide other projects' rows from the views)", joinAnd(hidden)))
	}
	if len(missing) > 0 {
		return &PreconditionError{Kind: "privileges", Missing: missing, Msg: fmt.Sprintf(
			"Role %s lacks %s.", user, joinSemi(missing))}
	}
	return nil
}

// safeNames returns at most n of names, sanitized for a terminal (they come
// from the database), and "…" for the rest.
func safeNames(names []string, n int) []string {
	out := make([]string, 0, min(len(names), n)+1)
	for i, s := range names {
		if i == n {
			out = append(out, "…")
			break
		}
		out = append(out, safetext.Sanitize(s))
	}
	return out
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// joinSemi joins items that may themselves contain commas.
func joinSemi(s []string) string {
	if len(s) <= 2 {
		return strings.Join(s, " and ")
	}
	return strings.Join(s[:len(s)-1], "; ") + "; and " + s[len(s)-1]
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// pluralES is "es" for n other than 1 ("index", "indexes").
func pluralES(n int) string {
	if n == 1 {
		return ""
	}
	return "es"
}
