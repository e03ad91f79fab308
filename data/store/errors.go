package store

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotInstalled means meshtop's schema or one of its objects is missing:
// run `meshtop install`.
var ErrNotInstalled = errors.New("metrics views are not installed; run `meshtop install`")

// ErrNotPopulated means a view exists but has never been refreshed.
var ErrNotPopulated = errors.New("metrics views have not been refreshed yet; run `meshtop refresh`")

// ErrLocked means a read gave up waiting (Options.LockTimeout) for a lock
// another session holds on meshtop's objects: a first, non-concurrent
// refresh, an install, or someone's LOCK TABLE.
var ErrLocked = errors.New("metrics views are locked by another session (a first refresh or an install in progress); try again shortly")

// ErrNotFound means the workflow asked for has no row in the metrics.
var ErrNotFound = errors.New("workflow not found in the metrics")

// ErrCronUnavailable means the pg_cron extension is not installed in this
// database.
var ErrCronUnavailable = errors.New("pg_cron is not installed in this database; keep the metrics fresh with `meshtop refresh --every 1m` instead")

// Roles an operator grants for each kind of access.
const (
	RoleReader    = "meshtop_reader"
	RoleRefresher = "meshtop_refresher"
)

// PermissionError is a permission-denied error (SQLSTATE 42501) with the
// role that grants what was missing.
type PermissionError struct {
	Action string // what was being done, e.g. "reading the overview"
	Role   string // the meshtop role to grant, e.g. meshtop_reader
	Err    error  // the server's error
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("%s: permission denied (grant %s to this user): %v", e.Action, e.Role, e.Err)
}

func (e *PermissionError) Unwrap() error { return e.Err }

// wrap adds the action to err and classifies server errors: missing schema,
// relation or function → ErrNotInstalled; permission denied →
// *PermissionError naming role; an unpopulated view → ErrNotPopulated; a
// prepared statement lost to a pooler → ErrPreparedStatements.
func wrap(err error, action, role string) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "3F000", "42P01", "42883": // invalid_schema_name, undefined_table, undefined_function
			return fmt.Errorf("%s: %w (%s)", action, ErrNotInstalled, pgErr.Message)
		case "42501": // insufficient_privilege
			return &PermissionError{Action: action, Role: role, Err: err}
		case "25006": // read_only_sql_transaction: a hot standby
			return fmt.Errorf("%s: the server is a read-only standby; refreshes, schedules and installs must go to the primary: %w", action, err)
		case "55P03": // lock_not_available
			return fmt.Errorf("%s: %w (%s)", action, ErrLocked, pgErr.Message)
		case "42P05", "26000": // duplicate_prepared_statement, invalid_sql_statement_name
			return fmt.Errorf("%s: %w", action, ErrPreparedStatements)
		case "55000": // object_not_in_prerequisite_state
			if isNotPopulated(pgErr) {
				return fmt.Errorf("%s: %w", action, ErrNotPopulated)
			}
		}
	}
	return fmt.Errorf("%s: %w", action, err)
}

func isNotPopulated(pgErr *pgconn.PgError) bool {
	return pgErr.Code == "55000" && strings.Contains(pgErr.Message, "has not been populated")
}

// isNotPopulatedErr reports whether err is PostgreSQL's "materialized view
// ... has not been populated".
func isNotPopulatedErr(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && isNotPopulated(pgErr)
}
