// Package bench holds the database side of `make bench`
// (cmd/meshtop-bench): the SQL that reads one dashboard screen from the
// views, the naive all-time view refreshed for contrast, the helper table
// the pgbench script picks workflows from, and the insert of new runs used
// to measure a refresh after fresh traffic. Every statement is in a
// commented .sql file beside this one; the schema meshtop installs into is
// written @schema@ (see package sql's Render).
package bench

import (
	"embed"
	"fmt"
)

//go:embed *.sql
var files embed.FS

// SQL returns the text of one of this package's .sql files.
func SQL(name string) string {
	b, err := files.ReadFile(name)
	if err != nil {
		// The names are constants in this repository: a missing file is a
		// programming error caught by the package's test.
		panic(fmt.Sprintf("bench: no embedded SQL file %q", name))
	}
	return string(b)
}

// Names of the embedded files.
const (
	ScreenViews     = "screen_views.sql"
	ScreenHourly    = "screen_hourly.sql"
	Setup           = "setup.sql"
	NaiveRefresh    = "naive_refresh.sql"
	InsertRuns      = "insert_runs.sql"
	RemoveWritten   = "remove_written.sql"
	StatementsOfApp = "statements_of_role.sql"
	TopStatements   = "top_statements_of_role.sql"
)
