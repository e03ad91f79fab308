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
	}
	for _, c := range cases {
		got := Explain(c.err)
		if !strings.Contains(got, c.want) {
			t.Errorf("Explain(%v) = %q, want it to contain %q", c.err, got, c.want)
		}
	}
	if Explain(nil) != "" {
		t.Error("Explain(nil) is not empty")
	}
}
