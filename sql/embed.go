// Package sql embeds meshtop's SQL: the install migrations and the named
// queries used by data/store and data/install. The schema meshtop installs
// into is written as the token @schema@ and replaced by Render with a quoted
// identifier produced by QuoteSchema.
package sql

import (
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Migrations holds sql/migrations/NNN_name.sql, applied in version order.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Repeatables holds sql/repeatable/NNN_name.sql: the definitions of views
// and functions, applied in NNN order after the migrations and again
// whenever a file's checksum changes (or a migration ran).
//
//go:embed repeatable/*.sql
var Repeatables embed.FS

// Queries holds sql/queries/*.sql: named queries run by the Go packages.
//
//go:embed queries/*.sql
var Queries embed.FS

// SchemaToken is the placeholder for the quoted schema name in every SQL file.
const SchemaToken = "@schema@"

// ErrBadSchema is wrapped by QuoteSchema's errors.
var ErrBadSchema = errors.New("invalid schema name")

// QuoteSchema validates a schema name and returns it as a quoted SQL
// identifier. It refuses empty names, "public", names starting with "pg_"
// (reserved by PostgreSQL), names longer than 63 bytes (PostgreSQL would
// silently truncate them) and names containing "$" or NUL (a "$" could end a
// dollar-quoted function body in the migrations). Everything else is quoted,
// so a hostile name cannot inject SQL.
func QuoteSchema(name string) (string, error) {
	switch {
	case name == "":
		return "", fmt.Errorf("%w: the schema name is empty", ErrBadSchema)
	case name == "public":
		return "", fmt.Errorf("%w: meshtop does not install into the public schema; choose a dedicated schema such as metrics", ErrBadSchema)
	case strings.HasPrefix(strings.ToLower(name), "pg_"):
		return "", fmt.Errorf("%w: schema names starting with pg_ are reserved by PostgreSQL", ErrBadSchema)
	case len(name) > 63:
		return "", fmt.Errorf("%w: the schema name is %d bytes long; PostgreSQL allows at most 63", ErrBadSchema, len(name))
	case strings.ContainsRune(name, 0):
		return "", fmt.Errorf("%w: the schema name contains a NUL byte", ErrBadSchema)
	case strings.ContainsRune(name, '$'):
		// The migrations hold dollar-quoted function bodies that mention the
		// schema; a "$" in the name could end such a quote early.
		return "", fmt.Errorf("%w: schema names containing $ are not supported", ErrBadSchema)
	}
	return pgx.Identifier{name}.Sanitize(), nil
}

// Render replaces every @schema@ token in text with quotedSchema, which must
// come from QuoteSchema.
func Render(text, quotedSchema string) string {
	return strings.ReplaceAll(text, SchemaToken, quotedSchema)
}
