package conn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/store"
)

// Explainer is implemented by errors that already carry the one line a
// human needs (install's precondition errors, store's typed errors);
// Explain uses that line as is, after redaction.
type Explainer interface {
	Explain() string
}

// Explain returns the one line a human needs for err: what went wrong and
// what to do about it. It never contains a password and never spans lines.
func Explain(err error) string {
	if err == nil {
		return ""
	}
	return oneLine(Redact(explain(err)))
}

// AsUser records which role err happened to, so Explain can name it in a
// GRANT suggestion.
func AsUser(err error, user string) error {
	if err == nil {
		return nil
	}
	return &userError{user: user, err: err}
}

type userError struct {
	user string
	err  error
}

func (e *userError) Error() string { return e.err.Error() }
func (e *userError) Unwrap() error { return e.err }

// MeshHookTables are the tables whose absence means "not a MeshHook
// database".
var MeshHookTables = []string{"workflow_runs", "workflow_definitions", "workflow_events", "projects"}

func explain(err error) string {
	var ex Explainer
	if errors.As(err, &ex) {
		return ex.Explain()
	}
	user := ""
	var ue *userError
	if errors.As(err, &ue) {
		user = ue.user
	}
	var pre *install.PreconditionError
	if errors.As(err, &pre) {
		if pre.Kind == "standby" {
			return lowerFirstWord(strings.TrimSuffix(strings.Replace(pre.Msg, "; install on the primary", "; use the primary (or --replica-dsn for reads)", 1), "."))
		}
		return lowerFirstWord(strings.TrimSuffix(pre.Msg, "."))
	}
	var perm *store.PermissionError
	if errors.As(err, &perm) {
		return fmt.Sprintf("permission denied %s: as the database owner, GRANT %s TO %s", perm.Action, perm.Role, roleOr(user))
	}
	for _, sentinel := range []error{store.ErrNeedsSession, store.ErrPreparedStatements, store.ErrNotInstalled, store.ErrNotPopulated, store.ErrCronUnavailable} {
		if errors.Is(err, sentinel) {
			return sentinel.Error()
		}
	}
	var dsnErr *DSNError
	if errors.As(err, &dsnErr) {
		return fmt.Sprintf("the connection string from %s is invalid (%s): use postgres://user@host:5432/dbname or \"host=… port=… dbname=… user=…\"",
			dsnErr.Source, parseReason(dsnErr.Err))
	}
	var pcErr *pgconn.ParseConfigError
	if errors.As(err, &pcErr) {
		return fmt.Sprintf("the connection string is invalid (%s): use postgres://user@host:5432/dbname or \"host=… port=… dbname=… user=…\"", parseReason(pcErr))
	}

	cfg := errorConfig(err)
	where := "the server"
	db := ""
	if cfg != nil {
		where = TargetOf(*cfg)
		user, db = cfg.User, cfg.Database
	}

	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return explainPg(pgErr, where, user, db)
	}

	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Sprintf("cannot resolve host %q (%s): check the host name in the connection string", dnsErr.Name, dnsErr.Err)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("connection refused by %s: is PostgreSQL running there and listening on that port?", where)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("cannot reach %s (no route to host): check the host and your network", where)
	case errors.Is(err, syscall.ENOENT) && cfg != nil && strings.HasPrefix(cfg.Host, "/"):
		return fmt.Sprintf("no PostgreSQL socket at %s: is the server running, or set PGHOST / --dsn to its host", where)
	}
	if isTimeout(err) {
		if cfg != nil {
			return fmt.Sprintf("timed out connecting to %s: is the host reachable and the port open? (connect_timeout in the DSN sets the limit)", where)
		}
		return "timed out waiting for the database: a query took longer than its timeout (raise --statement-timeout, or --timeout for refresh)"
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	msg := err.Error()
	for _, lost := range []string{"conn closed", "unexpected EOF", "connection reset by peer", "broken pipe", "terminating connection"} {
		if strings.Contains(msg, lost) {
			return fmt.Sprintf("lost the connection to %s (%s): is the server restarting? retry when it is back", where, lost)
		}
	}
	if strings.Contains(msg, "stmtcache_") {
		return fmt.Sprintf("prepared statements do not survive the connection pooler at %s (a transaction pooler): add default_query_exec_mode=exec to the connection string, or use the direct or session-pooler URL, port 5432", where)
	}
	if strings.Contains(msg, "server refused TLS connection") {
		return fmt.Sprintf("%s does not accept TLS connections: use sslmode=disable or prefer in the connection string, or enable SSL on the server", where)
	}
	if strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:") {
		return fmt.Sprintf("TLS failed connecting to %s (%s): check sslmode, sslrootcert and the server's certificate", where, lastPart(msg))
	}
	return msg
}

func explainPg(e *pgconn.PgError, where, user, db string) string {
	switch e.Code {
	case "28P01": // invalid_password
		if user == "" {
			user = "?"
		}
		return fmt.Sprintf("password authentication failed for user %q at %s: check the user name and password (PostgreSQL answers the same for an unknown role; prefer DATABASE_URL or ~/.pgpass to a password in --dsn)", user, where)
	case "3D000": // invalid_catalog_name
		return fmt.Sprintf("%s at %s: check the database name in the connection string", e.Message, where)
	case "28000": // invalid_authorization_specification: unknown role, pg_hba
		if strings.Contains(e.Message, "pg_hba.conf") {
			return fmt.Sprintf("the server at %s does not allow this connection (%s): ask its administrator to add a pg_hba.conf entry, or try sslmode=require", where, e.Message)
		}
		return fmt.Sprintf("%s at %s: check the user name in the connection string", e.Message, where)
	case "42501": // insufficient_privilege
		return fmt.Sprintf("%s: as the database owner, GRANT meshtop_reader TO %s (to read metrics) or meshtop_refresher (to refresh)", e.Message, roleOr(user))
	case "25006": // read_only_sql_transaction
		return fmt.Sprintf("%s is a read-only standby; use the primary (or --replica-dsn for reads)", where)
	case "3F000", "42P01", "42883": // schema, relation, function missing
		for _, t := range MeshHookTables {
			if strings.Contains(e.Message, `"`+t+`"`) || strings.Contains(e.Message, "public."+t) {
				return fmt.Sprintf("this database has no MeshHook tables (%s): point --dsn at MeshHook's database", e.Message)
			}
		}
		return fmt.Sprintf("the metrics views are not installed (%s): run `meshtop install`", e.Message)
	case "57014": // query_canceled
		if strings.Contains(e.Message, "statement timeout") {
			return "a query hit the statement timeout: raise --statement-timeout (reads) or --refresh-timeout (refreshes)"
		}
		return "the query was canceled (" + e.Message + ")"
	case "55P03": // lock_not_available
		return fmt.Sprintf("could not get a lock in time (%s): another session holds a conflicting lock; retry, or raise --lock-timeout", e.Message)
	case "53300": // too_many_connections
		return fmt.Sprintf("%s at %s: close idle sessions or raise max_connections", e.Message, where)
	case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
		return fmt.Sprintf("%s (%s): the server is restarting or shutting down; retry shortly", where, e.Message)
	case "42P05", "26000": // duplicate_prepared_statement, invalid_sql_statement_name
		// pgx's own statements (stmtcache_…) meeting a transaction pooler
		// that OpenDetect did not recognise: never show pgx's names.
		return fmt.Sprintf("prepared statements do not survive the connection pooler at %s (a transaction pooler): add default_query_exec_mode=exec to the connection string, or use the direct or session-pooler URL, port 5432", where)
	}
	if pooler := poolerMessage(e.Message); pooler {
		return fmt.Sprintf("the connection pooler at %s refused: %s (a PgBouncer message: check the pooler's settings, or use the direct URL, port 5432)", where, e.Message)
	}
	return fmt.Sprintf("%s (SQLSTATE %s)", e.Message, e.Code)
}

// poolerMessage reports whether msg is one of PgBouncer's own errors (it
// answers with SQLSTATE 08P01 and these texts, not PostgreSQL's).
func poolerMessage(msg string) bool {
	for _, frag := range []string{
		"pgbouncer", "pooling mode", "max_client_conn", "query_wait_timeout",
		"server login has been failing", "no such database", "client_idle_timeout",
		"idle transaction timeout", "server conn crashed", "unsupported startup parameter",
	} {
		if strings.Contains(strings.ToLower(msg), frag) {
			return true
		}
	}
	return false
}

func roleOr(user string) string {
	if user == "" {
		return "<your role>"
	}
	return user
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// parseReason says why pgx could not parse a connection string without
// quoting the string: pgx's message (from a fixed set) plus its cause with
// every quoted fragment longer than one character elided.
func parseReason(err error) string {
	var pc *pgconn.ParseConfigError
	if !errors.As(err, &pc) {
		return "syntax error"
	}
	reason := "syntax error"
	msg := err.Error()
	for _, known := range []string{
		"failed to parse as URL", "failed to parse as keyword/value", "invalid port",
		"invalid connect_timeout", "failed to read service", "failed to configure TLS",
		"invalid sslcertmode", "invalid require_auth", "min_protocol_version cannot be greater than max_protocol_version",
	} {
		if strings.Contains(msg, "`: "+known) {
			reason = known
			break
		}
	}
	if inner := pc.Unwrap(); inner != nil {
		reason += ": " + elideQuoted(inner.Error())
	}
	return reason
}

// elideQuoted replaces everything from the first quote character to the
// last one with "…" (unless that span is at most one character quoted).
// Quoted fragments of a DSN can hold the password, and they are not always
// %q-escaped: "pw@ \" (a raw backslash before the closing quote) fooled a
// per-fragment pattern, so the whole span goes.
func elideQuoted(s string) string {
	first := strings.IndexAny(s, "\"`")
	last := strings.LastIndexAny(s, "\"`")
	if first < 0 || last-first+1 <= 3 {
		return s
	}
	return s[:first] + `"…"` + s[last+1:]
}

// lastPart returns the text after the last ": " of an error chain.
func lastPart(msg string) string {
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// oneLine folds white space runs that contain line breaks into "; ".
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	parts := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// lowerFirstWord lower-cases a sentence's first word when it is an ordinary
// word ("Role x lacks …" → "role x lacks …"), since the line follows
// "meshtop: ".
func lowerFirstWord(s string) string {
	for _, w := range []string{"Role ", "Database ", "The "} {
		if strings.HasPrefix(s, w) {
			return strings.ToLower(w[:1]) + s[1:]
		}
	}
	return s
}
