package install

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/meshtop/meshtop/data/safetext"
)

// Locks on MeshHook's tables (docs/OPERATIONS.md, "Locks on MeshHook's
// tables"). Creating the change-capture triggers takes SHARE ROW EXCLUSIVE
// on public.workflow_runs and public.workflow_events (and each of its
// partitions), dropping them ACCESS EXCLUSIVE. A lock request that waits
// makes every later conflicting request wait behind it: behind a long
// transaction, every MeshHook writer would queue behind the installer. So
// every transaction install and uninstall run sets lock_timeout to
// LockTimeout: a writer arriving while the installer waits waits at most
// that long (plus the milliseconds the step takes once it holds the locks).
// A step that times out is rolled back and tried again after a pause that
// grows to 5 s, until LockWait has passed; then install or uninstall fails
// with one line naming the sessions holding conflicting locks.
const (
	// DefaultLockTimeout is lock_timeout for each try.
	DefaultLockTimeout = 200 * time.Millisecond
	// DefaultLockWait is how long install and uninstall keep trying.
	DefaultLockWait = 5 * time.Minute
)

// lockTimeoutSQL is the statement that opens every transaction's statements.
func (in *Installer) lockTimeoutSQL() string {
	return fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", in.lockTimeout.Milliseconds())
}

// isLockTimeout reports whether err is lock_not_available (lock_timeout).
func isLockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}

// retryLocks runs try until it succeeds, fails with something other than a
// lock timeout, ctx ends, or LockWait has passed since the first try. what
// names the work for the error ("applying repeatable 020_capture").
// readersBlock says whether plain readers' locks (ACCESS SHARE) on MeshHook's
// tables conflict with what is tried (ACCESS EXCLUSIVE: dropping triggers).
func (in *Installer) retryLocks(ctx context.Context, q querier, what string, readersBlock bool, try func() error) error {
	start := time.Now()
	pause := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := try()
		if err == nil || !isLockTimeout(err) {
			return err
		}
		if time.Since(start)+pause > in.lockWait {
			return fmt.Errorf("%s: could not take its locks in %d tries over %s (each waits at most %s, so MeshHook's writers are never held up longer): %s; end that transaction, or try again later",
				what, attempt, time.Since(start).Round(time.Second), in.lockTimeout, lockHolders(ctx, q, in.schema, readersBlock))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting to retry after a lock timeout: %w", what, ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// lockHolders describes, in one line, the other sessions holding locks on
// MeshHook's tables (other than the plain readers' and writers' own
// row-level locks, which conflict only with a DDL that waits) or on
// meshtop's objects: who to ask to finish.
func lockHolders(ctx context.Context, q querier, schema string, readersBlock bool) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rows, err := q.Query(ctx, bookkeeping+`SELECT l.pid, l.mode, l.relation::regclass::text,
  coalesce(a.state, ''), coalesce(pg_catalog.to_char(a.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'), '')
FROM pg_catalog.pg_locks l
JOIN pg_catalog.pg_class c ON c.oid = l.relation
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()
  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
  AND ((c.oid IN ('public.workflow_runs'::regclass, 'public.workflow_events'::regclass)
        OR c.oid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = 'public.workflow_events'::regclass))
       AND ($2 OR l.mode NOT IN ('AccessShareLock', 'RowShareLock'))
       OR c.relnamespace = pg_catalog.to_regnamespace(pg_catalog.quote_ident($1)))
ORDER BY a.xact_start NULLS LAST, l.pid
LIMIT 50`, schema, readersBlock)
	if err != nil {
		return "the sessions holding them could not be listed (" + err.Error() + ")"
	}
	type holder struct {
		pid         *int32
		mode, rel   string
		state, xact string
	}
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (holder, error) {
		var h holder
		err := r.Scan(&h.pid, &h.mode, &h.rel, &h.state, &h.xact)
		return h, err
	})
	if err != nil {
		return "the sessions holding them could not be listed (" + err.Error() + ")"
	}
	seen := map[string]bool{}
	var parts []string
	for _, h := range hs {
		who := "a prepared transaction"
		if h.pid != nil {
			who = fmt.Sprintf("pid %d", *h.pid)
		}
		if seen[who] {
			continue
		}
		seen[who] = true
		desc := fmt.Sprintf("%s (%s on %s", who, h.mode, safetext.Sanitize(h.rel))
		if h.state != "" {
			desc += ", " + h.state
		}
		if h.xact != "" {
			desc += ", in a transaction since " + h.xact
		}
		parts = append(parts, desc+")")
		if len(parts) == 3 {
			break
		}
	}
	if len(parts) == 0 {
		return "no session holds them now"
	}
	return "held by " + strings.Join(parts, ", ")
}
