package install

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// CronJobName is the pg_cron job name data/store uses for this schema.
func CronJobName(schema string) string { return "meshtop-refresh-" + schema }

// Uninstall removes what Apply created: the schema (CASCADE), the pg_cron job
// meshtop scheduled for it, the indexes on public.workflow_runs (Indexes:
// concurrently; kept while another meshtop schema in this database still
// uses them), and the roles
// meshtop created (those whose comment says "created by meshtop"), once no
// object in any database depends on them. It touches nothing else.
func (in *Installer) Uninstall(ctx context.Context) error {
	quoted, err := in.quoted()
	if err != nil {
		return err
	}
	return in.withLock(ctx, func(conn *pgxpool.Conn) error {
		var cron bool
		if err := conn.QueryRow(ctx, bookkeeping+`SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron')`).Scan(&cron); err != nil {
			return fmt.Errorf("looking for pg_cron: %w", err)
		}
		if cron {
			if _, err := conn.Exec(ctx, `SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = $1 AND database = current_database()`, CronJobName(in.schema)); err != nil {
				return fmt.Errorf("removing the refresh schedule: %w", err)
			}
		}
		// Only a schema meshtop created (it holds meshtop_migrations) is
		// dropped: `uninstall --schema auth` must not take Supabase's auth
		// schema, or a user's own, with it.
		var exists, ours bool
		if err := conn.QueryRow(ctx, bookkeeping+`SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = $1),
  pg_catalog.to_regclass($2) IS NOT NULL`, in.schema, quoted+".meshtop_migrations").Scan(&exists, &ours); err != nil {
			return fmt.Errorf("looking for schema %s: %w", in.schema, err)
		}
		if exists && !ours {
			return fmt.Errorf("schema %s was not created by meshtop (it has no meshtop_migrations table); refusing to drop it", in.schema)
		}
		// WAL capture's slot and publications live outside the schema (and
		// a meshtop before 2026-12-08 set workflow_runs' replica identity):
		// undo them first (mode 'triggers', then what capture_wal_teardown
		// removes). The slot may be in use by a refresh for a moment:
		// tried again.
		var walState bool
		if err := conn.QueryRow(ctx, bookkeeping+`SELECT pg_catalog.to_regprocedure($1) IS NOT NULL`,
			quoted+".capture_wal_teardown()").Scan(&walState); err != nil {
			return fmt.Errorf("looking for WAL capture: %w", err)
		}
		if walState {
			if err := in.retryLocks(ctx, conn, "removing WAL capture's slot and publications", true, func() error {
				return in.retryBusy(ctx, "removing WAL capture's slot", func() error {
					return in.inTx(ctx, conn, func() error {
						_, err := conn.Exec(ctx, "UPDATE "+quoted+".capture_state SET mode = 'triggers'; SELECT "+quoted+".capture_wal_teardown()")
						return err
					})
				})
			}); err != nil {
				return err
			}
		}
		// The change-capture triggers live on MeshHook's tables: drop them
		// by name (those whose function is in this schema; other meshtop
		// schemas keep theirs) rather than leave it to the CASCADE. DROP
		// TRIGGER takes ACCESS EXCLUSIVE on the table: one transaction
		// under lock_timeout, tried again until it gets its locks (locks.go).
		if err := in.retryLocks(ctx, conn, "dropping the change-capture triggers", true, func() error {
			return in.inTx(ctx, conn, func() error { return dropCaptureTriggers(ctx, conn, in.schema) })
		}); err != nil {
			return err
		}
		if err := in.retryLocks(ctx, conn, "dropping schema "+in.schema, true, func() error {
			return in.inTx(ctx, conn, func() error {
				if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+quoted+" CASCADE"); err != nil {
					return fmt.Errorf("dropping schema %s: %w", in.schema, err)
				}
				return nil
			})
		}); err != nil {
			return err
		}
		var others bool
		if err := conn.QueryRow(ctx, bookkeeping+`SELECT EXISTS (
  SELECT FROM pg_catalog.pg_class c WHERE c.relname = 'meshtop_migrations' AND c.relkind = 'r')`).Scan(&others); err != nil {
			return fmt.Errorf("looking for other meshtop schemas: %w", err)
		}
		if !others {
			for _, ix := range Indexes {
				if _, err := conn.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS public."+ix); err != nil {
					return fmt.Errorf("dropping index %s: %w", ix, err)
				}
			}
		}
		rows, err := conn.Query(ctx, bookkeeping+`SELECT r.rolname FROM pg_catalog.pg_roles r
WHERE r.rolname = ANY ($1)
  AND pg_catalog.shobj_description(r.oid, 'pg_authid') = 'created by meshtop'
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_shdepend d
                  WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid)
ORDER BY r.rolname DESC`, Roles)
		if err != nil {
			return fmt.Errorf("finding roles meshtop created: %w", err)
		}
		var drop []string
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				rows.Close()
				return fmt.Errorf("finding roles meshtop created: %w", err)
			}
			drop = append(drop, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("finding roles meshtop created: %w", err)
		}
		if in.pause != nil {
			in.pause("uninstall:roles")
		}
		var errs []error
		for _, r := range drop {
			_, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
			if isInUse(err) {
				// An install in another database of the cluster granted to
				// the role since we looked: it is in use again, so it stays.
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("dropping role %s: %w", r, err))
			}
		}
		return errors.Join(errs...)
	})
}

// isInUse reports whether err is dependent_objects_still_exist (DROP ROLE of
// a role that objects depend on).
func isInUse(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "2BP01"
}

// dropCaptureTriggers drops the triggers whose function lives in schema.
func dropCaptureTriggers(ctx context.Context, conn *pgxpool.Conn, schema string) error {
	rows, err := conn.Query(ctx, bookkeeping+`SELECT pg_catalog.format('DROP TRIGGER %I ON %s', t.tgname, t.tgrelid::regclass)
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = $1 AND NOT t.tgisinternal AND t.tgparentid = 0 -- clones on partitions go with their parent trigger
ORDER BY 1`, schema)
	if err != nil {
		return fmt.Errorf("finding the change-capture triggers of schema %s: %w", schema, err)
	}
	stmts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("finding the change-capture triggers of schema %s: %w", schema, err)
	}
	for _, st := range stmts {
		if _, err := conn.Exec(ctx, st); err != nil {
			return fmt.Errorf("dropping a change-capture trigger (%s): %w", st, err)
		}
	}
	return nil
}

// inTx runs f in a transaction on conn that starts with the installer's
// lock_timeout, and commits; on error it rolls back (or drops the
// connection if that fails too).
func (in *Installer) inTx(ctx context.Context, conn *pgxpool.Conn, f func() error) error {
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		return err
	}
	err := func() error {
		if _, err := conn.Exec(ctx, in.lockTimeoutSQL()); err != nil {
			return err
		}
		if err := f(); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, "COMMIT")
		return err
	}()
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, rerr := conn.Exec(cctx, "ROLLBACK"); rerr != nil {
			_ = conn.Conn().Close(cctx)
		}
	}
	return err
}
