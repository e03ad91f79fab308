// Package install creates, checks and removes meshtop's objects in a MeshHook
// database: the schema with its materialized views and refresh engine
// (sql/migrations), one index on public.workflow_runs, and three NOLOGIN
// roles. Every migration is applied under a session advisory lock, recorded
// with a checksum, and applied at most once.
package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/safetext"
	meshsql "github.com/meshtop/meshtop/sql"
)

// DefaultSchema is the schema meshtop installs into unless told otherwise.
const DefaultSchema = "metrics"

// IndexName is the started_at index meshtop adds to public.workflow_runs
// (migration 002): the refresh reads the windows' runs through it.
const IndexName = "meshtop_workflow_runs_started_at_idx"

// DrillIndexName is the (workflow_id, status, started_at) index meshtop adds
// to public.workflow_runs (migration 017): the drill-down reads a workflow's
// failed and slowest runs through it.
const DrillIndexName = "meshtop_workflow_runs_drill_idx"

// Indexes are the indexes meshtop adds to MeshHook's tables (all in public,
// each built by a no-transaction migration, CONCURRENTLY), in the order
// their migrations run.
var Indexes = []string{IndexName, DrillIndexName}

// createIndexRE finds the index a no-transaction migration builds.
var createIndexRE = regexp.MustCompile(`(?i)\bCREATE\s+INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\s+([a-z_][a-z0-9_]*)\s+ON\s+public\.`)

// indexOf is the index a no-transaction migration builds; every one builds
// exactly one of Indexes.
func indexOf(m Migration) (string, error) {
	ms := createIndexRE.FindAllStringSubmatch(m.SQL, -1)
	if len(ms) != 1 || !slices.Contains(Indexes, ms[0][1]) {
		return "", fmt.Errorf("migration %s: a no-transaction migration must build exactly one of meshtop's indexes (CREATE INDEX CONCURRENTLY IF NOT EXISTS <name> ON public.…)", m.Name)
	}
	return ms[0][1], nil
}

// noTxMarker on a migration's first line makes it run outside a transaction.
const noTxMarker = "-- meshtop:no-transaction"

// bookkeeping prefixes the installer's own queries (lock, state look-ups), so
// they can be told apart from the migration SQL that DryRun reports.
const bookkeeping = "-- meshtop:bookkeeping\n"

// Roles are the NOLOGIN roles install creates when they are missing.
var Roles = []string{"meshtop_reader", "meshtop_refresher", "meshtop_tenant"}

// Migration is one file of sql/migrations (or of sql/repeatable, with
// Repeatable set), rendered for a schema.
type Migration struct {
	Version       int    // NNN of the file name (for a repeatable: its place in the order)
	Name          string // file name without .sql, e.g. "003_views"
	Repeatable    bool   // re-applied whenever its checksum changes or a migration ran
	NoTransaction bool
	Checksum      string // sha256 of the file as embedded (before rendering)
	SQL           string // rendered for the installer's schema
}

// StepEvent reports progress of Apply: once when a migration starts (Done
// false) and once when it ends (Done true, with Err and Duration).
type StepEvent struct {
	Version  int
	Name     string
	Done     bool
	Err      error
	Duration time.Duration
}

// Object is something install creates, for the install prompt.
type Object struct {
	Kind string // "schema", "table", "materialized view", "view", "function", "procedure", "index", "role"
	Name string
}

// Installer installs meshtop into one schema of the database pool points at.
type Installer struct {
	pool   *pgxpool.Pool
	schema string
	// pause, when set (tests only), is called at named points — before a
	// migration's own SQL runs inside its step ("005_access") and before
	// Uninstall drops roles ("uninstall:roles") — so a test can force an
	// interleaving with another session.
	pause func(at string)
	// lockTimeout is each transaction's lock_timeout, lockWait how long a
	// step that timed out is tried again (locks.go).
	lockTimeout, lockWait time.Duration
	// capture is the change-capture mode Apply brings the schema to ("":
	// the one it records); captureLoop tells auto that a refresh loop
	// consumes the slot; lastCapture is what the last Apply did (capture.go).
	capture     string
	captureLoop bool
	lastCapture CapturePlan
}

// New returns an Installer for schema (validated when used).
func New(pool *pgxpool.Pool, schema string) *Installer {
	return &Installer{pool: pool, schema: schema, lockTimeout: DefaultLockTimeout, lockWait: DefaultLockWait}
}

// SetLockWait sets how long Apply and Uninstall keep retrying a step whose
// locks they could not take within each try's lock_timeout (default
// DefaultLockWait); d <= 0 means one try.
func (in *Installer) SetLockWait(d time.Duration) { in.lockWait = max(d, 0) }

// Schema is the schema name the installer works on.
func (in *Installer) Schema() string { return in.schema }

func (in *Installer) quoted() (string, error) {
	return meshsql.QuoteSchema(in.schema)
}

// Migrations returns every embedded migration rendered for the schema, in
// version order.
func (in *Installer) Migrations() ([]Migration, error) {
	q, err := in.quoted()
	if err != nil {
		return nil, err
	}
	return loadMigrations(meshsql.Migrations, "migrations", q)
}

// Repeatables returns every embedded repeatable file (sql/repeatable: the
// definitions of views and functions) rendered for the schema, in the order
// they are applied.
func (in *Installer) Repeatables() ([]Migration, error) {
	q, err := in.quoted()
	if err != nil {
		return nil, err
	}
	out, err := loadMigrations(meshsql.Repeatables, "repeatable", q)
	for i := range out {
		out[i].Repeatable = true
	}
	return out, err
}

func loadMigrations(fsys fs.FS, dir, quoted string) ([]Migration, error) {
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	seen := map[int]string{}
	var out []Migration
	for _, p := range names {
		base := strings.TrimSuffix(path.Base(p), ".sql")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("file %s: name must be NNN_name.sql", p)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("%s number %d defined twice (%s and %s)", dir, v, prev, base)
		}
		seen[v] = base
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		text := string(b)
		sum := sha256.Sum256(b)
		firstLine, _, _ := strings.Cut(text, "\n")
		out = append(out, Migration{
			Version:       v,
			Name:          base,
			NoTransaction: strings.TrimSpace(firstLine) == noTxMarker,
			Checksum:      hex.EncodeToString(sum[:]),
			SQL:           strings.TrimSpace(meshsql.Render(text, quoted)),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// querier is what both a pool and a single connection offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// applied returns version → checksum of the migrations recorded in the
// schema (empty when the schema or its table does not exist).
func (in *Installer) applied(ctx context.Context, q querier) (map[int]string, error) {
	quoted, err := in.quoted()
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := q.QueryRow(ctx, bookkeeping+"SELECT pg_catalog.to_regclass($1) IS NOT NULL",
		quoted+".meshtop_migrations").Scan(&exists); err != nil {
		return nil, fmt.Errorf("looking for the migrations table: %w", err)
	}
	out := map[int]string{}
	if !exists {
		return out, nil
	}
	rows, err := q.Query(ctx, bookkeeping+"SELECT version, checksum FROM "+quoted+".meshtop_migrations")
	if err != nil {
		return nil, fmt.Errorf("reading applied migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("reading applied migrations: %w", err)
		}
		out[v] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading applied migrations: %w", err)
	}
	return out, nil
}

// appliedRepeatables returns name → checksum of the repeatable files
// recorded in the schema (empty before migration 007 created the table).
func (in *Installer) appliedRepeatables(ctx context.Context, q querier) (map[string]string, error) {
	quoted, err := in.quoted()
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := q.QueryRow(ctx, bookkeeping+"SELECT pg_catalog.to_regclass($1) IS NOT NULL",
		quoted+".meshtop_repeatables").Scan(&exists); err != nil {
		return nil, fmt.Errorf("looking for the repeatables table: %w", err)
	}
	out := map[string]string{}
	if !exists {
		return out, nil
	}
	rows, err := q.Query(ctx, bookkeeping+"SELECT name, checksum FROM "+quoted+".meshtop_repeatables")
	if err != nil {
		return nil, fmt.Errorf("reading applied repeatables: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, sum string
		if err := rows.Scan(&name, &sum); err != nil {
			return nil, fmt.Errorf("reading applied repeatables: %w", err)
		}
		out[name] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading applied repeatables: %w", err)
	}
	return out, nil
}

// pending returns the migrations not yet applied, then the repeatable files
// to (re-)apply: all of them when a migration is pending (a migration may
// drop what they define), otherwise those whose checksum changed.
func (in *Installer) pending(ctx context.Context, q querier) ([]Migration, error) {
	all, err := in.Migrations()
	if err != nil {
		return nil, err
	}
	done, err := in.applied(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, m := range all {
		sum, ok := done[m.Version]
		switch {
		case !ok:
			out = append(out, m)
		case sum != m.Checksum:
			return nil, fmt.Errorf("migration %s was applied with checksum %.12s but this meshtop has %.12s; the installed schema %s is from a different meshtop build",
				m.Name, sum, m.Checksum, in.schema)
		}
	}
	reps, err := in.Repeatables()
	if err != nil {
		return nil, err
	}
	repDone, err := in.appliedRepeatables(ctx, q)
	if err != nil {
		return nil, err
	}
	migrating := len(out) > 0
	for _, r := range reps {
		if migrating || repDone[r.Name] != r.Checksum {
			out = append(out, r)
		}
	}
	return out, nil
}

// Pending returns the migrations not yet applied.
func (in *Installer) Pending(ctx context.Context) ([]Migration, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return in.pending(ctx, in.pool)
}

// Installed reports whether every migration has been applied.
func (in *Installer) Installed(ctx context.Context) (bool, error) {
	p, err := in.Pending(ctx)
	if err != nil {
		return false, err
	}
	return len(p) == 0, nil
}

// step is one migration as the exact statements Apply sends.
type step struct {
	m     Migration
	stmts []string
}

// what names the step for errors: "applying repeatable 020_capture".
func (s step) what() string {
	if s.m.Version == 0 && strings.HasPrefix(s.m.Name, "capture_") {
		return "changing change capture (" + s.m.Name + ")"
	}
	if s.m.Repeatable {
		return "applying repeatable " + s.m.Name
	}
	return "applying migration " + s.m.Name
}

// plan turns pending migrations into statements. For a no-transaction
// migration it first drops an INVALID index left by an interrupted build.
func (in *Installer) plan(ctx context.Context, q querier, pending []Migration) ([]step, error) {
	quoted, err := in.quoted()
	if err != nil {
		return nil, err
	}
	var out []step
	for _, m := range pending {
		record := fmt.Sprintf("INSERT INTO %s.meshtop_migrations (version, name, checksum) VALUES (%d, %s, %s)",
			quoted, m.Version, literal(m.Name), literal(m.Checksum))
		if m.Repeatable {
			record = fmt.Sprintf("INSERT INTO %s.meshtop_repeatables (name, checksum) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()",
				quoted, literal(m.Name), literal(m.Checksum))
		}
		if !m.NoTransaction {
			stmts := []string{"BEGIN", in.lockTimeoutSQL()}
			if usesRoles(m.SQL) {
				stmts = append(stmts, ensureRolesSQL)
			}
			out = append(out, step{m: m, stmts: append(stmts, m.SQL, record, "COMMIT")})
			continue
		}
		// A no-transaction migration builds one of meshtop's indexes on
		// MeshHook's tables. A valid one (another meshtop schema in this
		// database built it) is reused without touching public: creating an
		// index needs CREATE on the schema even with IF NOT EXISTS.
		name, err := indexOf(m)
		if err != nil {
			return nil, err
		}
		var stmts []string
		state, err := indexState(ctx, q, name)
		if err != nil {
			return nil, err
		}
		if state == "invalid" {
			stmts = append(stmts, "DROP INDEX CONCURRENTLY IF EXISTS public."+name)
		}
		if state != "valid" {
			stmts = append(stmts, m.SQL)
		}
		stmts = append(stmts, record)
		out = append(out, step{m: m, stmts: stmts})
	}
	return out, nil
}

// indexState reports whether meshtop's index name is "missing", "valid" or
// "invalid" (left by an interrupted CREATE INDEX CONCURRENTLY).
func indexState(ctx context.Context, q querier, name string) (string, error) {
	var state string
	err := q.QueryRow(ctx, bookkeeping+`SELECT coalesce((
  SELECT CASE WHEN i.indisvalid THEN 'valid' ELSE 'invalid' END
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
  WHERE c.relname = $1 AND c.relnamespace = 'public'::regnamespace), 'missing')`, name).Scan(&state)
	if err != nil {
		return "", fmt.Errorf("checking for %s: %w", name, err)
	}
	return state, nil
}

// ensureRolesSQL creates meshtop's roles where missing; it opens every
// migration transaction that grants to them (see the file's comment).
var ensureRolesSQL = func() string {
	b, err := fs.ReadFile(meshsql.Queries, "queries/install_ensure_roles.sql")
	if err != nil {
		panic("embedded install_ensure_roles.sql: " + err.Error())
	}
	return strings.TrimSpace(string(b))
}()

// usesRoles reports whether migration SQL names one of meshtop's roles.
func usesRoles(sql string) bool {
	for _, r := range Roles {
		if strings.Contains(sql, r) {
			return true
		}
	}
	return false
}

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// script renders steps the way DryRun shows them: a header comment per
// migration, then each statement followed by a line holding ";".
func script(steps []step) string {
	var b strings.Builder
	for _, s := range steps {
		kind := "migration"
		if s.m.Repeatable {
			kind = "repeatable"
		}
		fmt.Fprintf(&b, "-- meshtop %s %s\n", kind, s.m.Name)
		for _, st := range s.stmts {
			b.WriteString(st)
			b.WriteString("\n;\n")
		}
	}
	return b.String()
}

// DryRun returns exactly the SQL Apply would run now, statement by statement
// (each followed by a line holding ";"), with a comment line before each
// migration. It is empty when nothing is pending.
func (in *Installer) DryRun(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	q := in.pool
	pending, err := in.pending(ctx, q)
	if err != nil {
		return "", err
	}
	steps, err := in.plan(ctx, q, pending)
	if err != nil {
		return "", err
	}
	p, err := in.capturePlan(ctx, q)
	if err != nil {
		return "", err
	}
	if need, err := in.captureNeeded(ctx, q, p); err != nil {
		return "", err
	} else if need {
		cs, err := in.captureSteps(p)
		if err != nil {
			return "", err
		}
		head := fmt.Sprintf("-- meshtop capture: %s -> %s (asked: %s; %s)\n", p.Current, p.Target, p.Desired, safetext.Line(p.Why))
		return script(steps) + head + script(cs), nil
	}
	return script(steps), nil
}

// lockKey is the advisory lock serialising installs of one schema.
func (in *Installer) lockKey() int64 {
	return int64(crc32.ChecksumIEEE([]byte("meshtop:install:" + in.schema)))
}

// withLock runs f on one dedicated connection holding the install lock.
func (in *Installer) withLock(ctx context.Context, f func(conn *pgxpool.Conn) error) (err error) {
	if _, err := in.quoted(); err != nil {
		return err
	}
	conn, err := in.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to install: %w", err)
	}
	// Poll with pg_try_advisory_lock rather than wait in pg_advisory_lock:
	// a session blocked in a statement would make the other installer's
	// CREATE INDEX CONCURRENTLY wait for it, a deadlock.
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		var got bool
		if err := conn.QueryRow(ctx, bookkeeping+"SELECT pg_catalog.pg_try_advisory_lock($1)", in.lockKey()).Scan(&got); err != nil {
			conn.Release()
			return fmt.Errorf("taking the install lock of schema %s: %w", in.schema, err)
		}
		if got {
			break
		}
		select {
		case <-ctx.Done():
			conn.Release()
			return fmt.Errorf("waiting for the install lock of schema %s: %w", in.schema, ctx.Err())
		case <-time.After(wait):
		}
	}
	defer func() {
		// Cleanup outlives cancellation: never leave the lock held.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(cctx, bookkeeping+"SELECT pg_catalog.pg_advisory_unlock($1)", in.lockKey()); uerr != nil {
			// Closing the session releases the lock too.
			_ = conn.Conn().Close(cctx)
			err = errors.Join(err, fmt.Errorf("releasing the install lock: %w", uerr))
		}
		conn.Release()
	}()
	return f(conn)
}

// Apply checks the preconditions and applies the pending migrations under
// the install lock; a concurrent installer waits, then finds nothing to do.
// It returns how many migrations it applied. onStep may be nil.
func (in *Installer) Apply(ctx context.Context, onStep func(StepEvent)) (applied int, err error) {
	if onStep == nil {
		onStep = func(StepEvent) {}
	}
	err = in.withLock(ctx, func(conn *pgxpool.Conn) error {
		q := conn
		pending, err := in.pending(ctx, q)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			return in.captureAfter(ctx, conn, onStep)
		}
		if err := in.check(ctx, q); err != nil {
			return err
		}
		steps, err := in.plan(ctx, q, pending)
		if err != nil {
			return err
		}
		for _, s := range steps {
			onStep(StepEvent{Version: s.m.Version, Name: s.m.Name})
			t0 := time.Now()
			try := func() error {
				err := in.runStep(ctx, conn, s)
				// A meshtop role this migration grants to was dropped by an
				// uninstall in another database of the cluster after the
				// step made sure it exists: the step rolled back; run it
				// again (it creates the role anew).
				for try := 1; err != nil && !s.m.NoTransaction && isRoleGone(err) && try < 5; try++ {
					err = in.runStep(ctx, conn, s)
				}
				return err
			}
			var err error
			if s.m.NoTransaction {
				// CREATE INDEX CONCURRENTLY: never blocks writers, runs
				// without lock_timeout, and a failed build is planned
				// again below, not retried as it was.
				err = try()
			} else {
				err = in.retryLocks(ctx, conn, s.what(), false, try)
			}
			for try := 1; err != nil && s.m.NoTransaction && isDeadlock(err) && try < 3; try++ {
				// DDL on workflow_runs running at the same moment (say,
				// MeshHook's monthly partition maintenance, whose foreign
				// key locks workflow_runs) made our CREATE INDEX
				// CONCURRENTLY the deadlock victim. The build left an
				// invalid index: plan the step again (drop, rebuild).
				var again []step
				if again, err = in.plan(ctx, q, []Migration{s.m}); err == nil {
					err = in.runStep(ctx, conn, again[0])
				}
			}
			onStep(StepEvent{Version: s.m.Version, Name: s.m.Name, Done: true, Err: err, Duration: time.Since(t0)})
			if err != nil {
				return err
			}
			applied++
		}
		return in.captureAfter(ctx, conn, onStep)
	})
	return applied, err
}

// captureAfter brings change capture to the mode asked for, once the
// migrations are applied (capture.go).
func (in *Installer) captureAfter(ctx context.Context, conn *pgxpool.Conn, onStep func(StepEvent)) error {
	if in.capture == "" {
		// Nothing asked: keep what auto implies, where this role may see
		// it (a reader's install of an up-to-date schema, or one on a
		// standby, changes nothing, as before).
		quoted, err := in.quoted()
		if err != nil {
			return err
		}
		var ok bool
		if err := conn.QueryRow(ctx, bookkeeping+`SELECT NOT pg_catalog.pg_is_in_recovery()
  AND CASE WHEN pg_catalog.to_regclass($1) IS NULL THEN false ELSE pg_catalog.has_table_privilege($1, 'UPDATE') END`, quoted+".capture_state").Scan(&ok); err != nil || !ok {
			return err
		}
	}
	p, err := in.capturePlan(ctx, conn)
	if err != nil {
		return err
	}
	in.lastCapture = p
	need, err := in.captureNeeded(ctx, conn, p)
	if err != nil || !need {
		return err
	}
	return in.applyCapture(ctx, conn, p, onStep)
}

// LastCapture is what the last Apply did about change capture.
func (in *Installer) LastCapture() CapturePlan { return in.lastCapture }

func (in *Installer) runStep(ctx context.Context, conn *pgxpool.Conn, s step) error {
	inTx := false
	for _, st := range s.stmts {
		if in.pause != nil && st == s.m.SQL {
			in.pause(s.m.Name)
		}
		if _, err := conn.Exec(ctx, st); err != nil {
			if inTx {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				if _, rerr := conn.Exec(cctx, "ROLLBACK"); rerr != nil {
					_ = conn.Conn().Close(cctx)
				}
				cancel()
			}
			return fmt.Errorf("%s: %w", s.what(), err)
		}
		switch st {
		case "BEGIN":
			inTx = true
		case "COMMIT":
			inTx = false
		}
	}
	return nil
}

// SetClock pins the metrics clock (S.clock()) to t, or unpins it (nil) so
// the views follow now() again. Takes effect at the next refresh.
func (in *Installer) SetClock(ctx context.Context, t *time.Time) error {
	quoted, err := in.quoted()
	if err != nil {
		return err
	}
	v := ""
	if t != nil {
		v = t.UTC().Format(time.RFC3339Nano)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tag, err := in.pool.Exec(ctx, "UPDATE "+quoted+".config SET value = $1 WHERE key = 'clock'", v)
	if err != nil {
		return fmt.Errorf("setting the metrics clock: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("setting the metrics clock: %s.config has no clock row; is meshtop installed?", in.schema)
	}
	return nil
}

// Objects lists what install creates.
func (in *Installer) Objects() []Object {
	s := in.schema
	out := []Object{
		{"schema", s},
		{"table", s + ".meshtop_migrations"},
		{"table", s + ".config"},
		{"table", s + ".refresh_log (and its sequence refresh_log_id_seq), refresh_cancels"},
		{"table", s + ".meshtop_repeatables"},
		{"table", s + ".dirty_keys, dirty_runs (change-capture logs), capture_state (the capture mode)"},
		{"sequence", s + ".capture_until, capture_lapses (the capture log's bound)"},
		{"table", s + ".rollup_runs_hour, rollup_runs_day, rollup_steps_hour, rollup_steps_day, rollup_state"},
		{"table", s + ".window_runs, window_steps, window_days_runs, window_days_steps, cells_pending (window cells)"},
		{"materialized view", s + ".mv_workflow_metrics"},
		{"view", s + ".mv_workflow_metrics_hourly"},
		{"materialized view", s + ".mv_step_metrics"},
		{"view", s + ".refresh_log_v"},
		{"view", s + ".refresh_status"},
		{"function", s + ".clock(), schema_name(), view_names(), guard_key(text), guard_held(text, int), rollup_horizon(timestamptz) (helpers the readers' views call)"},
		{"function", s + ".refresh_begin(text, boolean)"},
		{"function", s + ".refresh_run(bigint)"},
		{"function", s + ".refresh_cancel(text)"},
		{"function", s + ".refresh_abort(bigint, text)"},
		{"function", s + ".guard_release(text)"},
		{"function", s + ".refresh_request_full()"},
		{"function", s + ".verify(int)"},
		{"function", s + ".running_now()"},
		{"function", s + ".capture_status(), capture_wal_status(), capture_guard(), capture_ensure(), capture_consume() (the capture's state and bound, for readers and refreshers)"},
		{"function", s + ".cron_job(), cron_runs(int) (meshtop's own pg_cron job, for readers)"},
		{"function", s + ".tenant_workflow_metrics(text)"},
		{"function", s + ".tenant_project_ids()"},
		{"function", s + ".capture_run_insert(), capture_run_update(), capture_event_insert(), capture_runs_bulk(), capture_events_bulk() (the capture triggers' functions, run as the owner)"},
		{"function", s + ".… and the refresh engine's internal functions (rollup, window cells, sketches), executable by the owner only"},
		{"procedure", s + ".refresh(text, boolean)"},
		{"function", s + ".drill_failed_runs(uuid, text, int), drill_slowest_runs(uuid, text, int), drill_run(uuid), drill_run_steps(uuid) (the drill-down, for readers)"},
		{"function", s + ".tenant_failed_runs(uuid, text, int), tenant_slowest_runs(uuid, text, int), tenant_run(uuid), tenant_run_steps(uuid) (the drill-down of the caller's own projects)"},
		{"index", "public." + IndexName + " on public.workflow_runs (started_at), built concurrently"},
		{"index", "public." + DrillIndexName + " on public.workflow_runs (workflow_id, status, started_at) INCLUDE (finished_at, id), built concurrently"},
		{"trigger", "change capture on public.workflow_runs and public.workflow_events (into " + s + ".dirty_keys, dirty_runs; in the wal capture mode only those for moved runs, deletes, event updates and TRUNCATE)"},
		{"publication", "two, on public.workflow_runs (inserts, updates) and public.workflow_events (run_id, step events only) — only in the wal capture mode (--capture wal, or auto where possible)"},
		{"replication slot", "one logical slot (pgoutput) that every refresh reads — only in the wal capture mode; dropped past capture_wal_max_bytes/capture_wal_max_age"},
	}
	for _, r := range Roles {
		out = append(out, Object{"role", r + " (NOLOGIN, if missing)"})
	}
	return out
}

// isRoleGone reports whether err is undefined_object about a role: "role
// \"meshtop_reader\" does not exist" (dropped before the statement looked it
// up) or "role 16384 was concurrently dropped" (while it waited to record a
// dependency on it).
func isRoleGone(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42704" && strings.HasPrefix(pgErr.Message, "role ")
}

// isDeadlock reports whether err is PostgreSQL's deadlock_detected.
func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01"
}
