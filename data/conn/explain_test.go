package conn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/store"
)

// TestExplainCases covers the server errors that are awkward to provoke
// from here (they are provoked for real in the CLI's tests).
func TestExplainCases(t *testing.T) {
	pg := func(code, msg string) error {
		return fmt.Errorf("doing something: %w", &pgconn.PgError{Code: code, Message: msg})
	}
	cases := []struct {
		err  error
		want string
	}{
		{pg("25006", "cannot execute INSERT in a read-only transaction"), "the server is a read-only standby; use the primary (or --replica-dsn for reads)"},
		{AsUser(pg("42501", "permission denied for schema metrics"), "alice"), "permission denied for schema metrics: as the database owner, GRANT meshtop_reader TO alice (to read metrics) or meshtop_refresher (to refresh)"},
		{AsUser(&store.PermissionError{Action: "refreshing mv_x", Role: store.RoleRefresher, Err: errors.New("denied")}, "bob"), "permission denied refreshing mv_x: as the database owner, GRANT meshtop_refresher TO bob"},
		{pg("42P01", `relation "public.workflow_runs" does not exist`), "this database has no MeshHook tables"},
		{pg("3F000", `schema "metrics" does not exist`), "the metrics views are not installed"},
		{fmt.Errorf("reading: %w", store.ErrNotInstalled), "metrics views are not installed; run `meshtop install`"},
		{&install.PreconditionError{Kind: "standby", Msg: "The server of database d is a read-only standby; install on the primary."}, "the server of database d is a read-only standby; use the primary (or --replica-dsn for reads)"},
		{pg("57014", "canceling statement due to statement timeout"), "raise --statement-timeout"},
		{pg("55P03", "canceling statement due to lock timeout"), "another session holds a conflicting lock"},
		{pg("57P01", "terminating connection due to administrator command"), "the server is restarting or shutting down"},
		{fmt.Errorf("reading the overview: %w", context.DeadlineExceeded), "timed out waiting for the database"},
		{errors.New("reading: failed to deallocate cached statement(s): conn closed"), "lost the connection to the server (conn closed)"},
		{errors.New("line one\nline two password=hunter2"), "line one; line two password=xxxxx"},
		{fmt.Errorf("refreshing: %w", store.ErrNeedsSession), "through a transaction pooler: reading works; refresh, cancel, install and LISTEN need a session — use the direct or session-pooler URL, port 5432"},
		{fmt.Errorf("reading the overview: %w", store.ErrPreparedStatements), "prepared statements do not survive this connection's pooler (a transaction pooler): add default_query_exec_mode=exec"},
		{pg("42P05", `prepared statement "stmtcache_63384ec0" already exists`), "prepared statements do not survive the connection pooler at the server (a transaction pooler)"},
		{pg("26000", `prepared statement "stmtcache_0922" does not exist`), "use the direct or session-pooler URL, port 5432"},
		{errors.New(`failed to deallocate cached statement(s): stmtcache_ab12`), "prepared statements do not survive the connection pooler"},
		{pg("08P01", "transaction blocks not allowed in statement pooling mode"), "the connection pooler at the server refused: transaction blocks not allowed in statement pooling mode"},
	}
	for _, c := range cases {
		got := Explain(c.err)
		if !strings.Contains(got, c.want) {
			t.Errorf("Explain(%v) = %q, want it to contain %q", c.err, got, c.want)
		}
	}
	for _, c := range cases {
		for _, leak := range []string{"stmtcache_", "SQLSTATE 42P05", "SQLSTATE 26000"} {
			if got := Explain(c.err); strings.Contains(got, leak) {
				t.Errorf("Explain(%v) = %q shows pgx's internals (%s)", c.err, got, leak)
			}
		}
	}
	if Explain(nil) != "" {
		t.Error("Explain(nil) is not empty")
	}
}
