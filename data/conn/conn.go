// Package conn finds out which PostgreSQL to talk to, opens a checked pool,
// keeps passwords out of every string it hands back, and turns connection,
// permission and standby errors into the one line a human needs.
package conn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DSNError is an unparsable connection string, with where it came from.
type DSNError struct {
	Source string // "--dsn", "DATABASE_URL", "the libpq environment (PGHOST, …)"
	Err    error
}

// Error never quotes the connection string: pgx's own message does, and its
// masking stops at a space, so a password typed with an unquoted space in
// key/value form showed its tail (found by FuzzDSNErrorsHidePassword).
func (e *DSNError) Error() string {
	return fmt.Sprintf("parsing the connection string from %s: %s", e.Source, parseReason(e.Err))
}

func (e *DSNError) Unwrap() error { return e.Err }

// Resolve returns the connection string to use: flagDSN when set, else
// $DATABASE_URL, else "" — which pgx completes from the libpq environment
// (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSERVICE, PGSSLMODE, …),
// ~/.pgpass and service files. The string is parsed once here so a syntax
// error is reported before anything else, naming its source.
func Resolve(flagDSN string) (string, error) {
	return ResolveWith(flagDSN, os.Getenv)
}

// ResolveWith is Resolve reading DATABASE_URL through getenv.
func ResolveWith(flagDSN string, getenv func(string) string) (string, error) {
	dsn, source := flagDSN, "--dsn"
	if dsn == "" {
		dsn, source = getenv("DATABASE_URL"), "DATABASE_URL"
	}
	if dsn == "" {
		source = "the libpq environment (PGHOST, PGUSER, …)"
	}
	if _, err := pgconn.ParseConfig(dsn); err != nil {
		return "", &DSNError{Source: source, Err: err}
	}
	return dsn, nil
}

// Options configure Open.
type Options struct {
	DSN string
	// ApplicationName is sent as application_name (shown in
	// pg_stat_activity and meshtop's refresh log); empty keeps the DSN's.
	ApplicationName string
	// ConnectTimeout bounds each connection attempt unless the DSN sets
	// connect_timeout; 0 means 10 s.
	ConnectTimeout time.Duration
	// MaxConns caps the pool; 0 means 4.
	MaxConns int32
}

// Pooling is what Open found between meshtop and PostgreSQL.
type Pooling int

const (
	// Direct: no pooler, or a proxy that hands PostgreSQL's own backend key
	// through (a TCP proxy); every client connection is one server session.
	Direct Pooling = iota
	// SessionPooler: a pooler in session mode (Supabase's pooler on port
	// 5432, pool_mode = session): each client connection keeps one server
	// session for its lifetime, so it behaves like Direct.
	SessionPooler
	// TransactionPooler: a pooler in transaction (or statement) mode
	// (Supabase's port 6543): consecutive transactions of one client
	// connection may run on different server sessions, so nothing that
	// outlives a transaction works (prepared statements, session SET,
	// session advisory locks, LISTEN).
	TransactionPooler
)

func (p Pooling) String() string {
	switch p {
	case SessionPooler:
		return "session pooler"
	case TransactionPooler:
		return "transaction pooler"
	}
	return "direct"
}

// Open creates a pool and checks it with one query, so a wrong password or
// an unreachable host fails now with an error Explain understands. TLS
// settings in the DSN (sslmode, sslrootcert, …) are honoured as pgx parses
// them. It is OpenDetect without the answer.
func Open(ctx context.Context, opts Options) (*pgxpool.Pool, error) {
	pool, _, err := OpenDetect(ctx, opts)
	return pool, err
}

// OpenDetect is Open that also finds out whether a connection pooler sits
// in between (see detect). Through a transaction pooler it reopens the pool
// in pgx's describe-cache mode (unless the DSN chose exec, simple_protocol
// or cache_describe as its default_query_exec_mode): every statement is
// parsed in the same round trip that runs it, so no named prepared
// statement (pgx's stmtcache_…) is left on, or expected from, a pooled
// server session. A direct connection keeps the named-statement cache: it
// saves the server the parse and plan of every poll, which is most of a
// poll's cost (the overview read takes 2–3× as long without it: store's
// BenchmarkOverviewExecMode). A direct connection costs nothing extra (the
// first detection query replaces the ping); behind a pooler the detection
// costs one more client connection and three round trips, and through a
// transaction pooler the pool's first query opens a new client connection
// (the probe's were made for named statements).
func OpenDetect(ctx context.Context, opts Options) (*pgxpool.Pool, Pooling, error) {
	cfg, err := pgxpool.ParseConfig(opts.DSN)
	if err != nil {
		return nil, Direct, &DSNError{Source: "the connection string", Err: err}
	}
	if opts.ApplicationName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = opts.ApplicationName
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
		if cfg.ConnConfig.ConnectTimeout == 0 {
			cfg.ConnConfig.ConnectTimeout = 10 * time.Second
		}
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 4
	}
	cfg.MinConns = 0
	target := TargetOf(cfg.ConnConfig.Config)
	pool, err := pgxpool.NewWithConfig(ctx, cfg.Copy())
	if err != nil {
		return nil, Direct, fmt.Errorf("connecting to %s: %w", target, err)
	}
	pooling, err := detect(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, Direct, fmt.Errorf("connecting to %s: %w", target, err)
	}
	if mode := cfg.ConnConfig.DefaultQueryExecMode; pooling == TransactionPooler &&
		(mode == pgx.QueryExecModeCacheStatement || mode == pgx.QueryExecModeDescribeExec) {
		// Named statements, or an unnamed one described in one round trip
		// and run in the next: both may meet another server session.
		pool.Close()
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
		if pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			return nil, Direct, fmt.Errorf("connecting to %s: %w", target, err)
		}
	}
	return pool, pooling, nil
}

// detect tells a direct connection from a pooler, and a session pooler from
// a transaction pooler, with statements that leave nothing behind (simple
// protocol, no prepared statement, no setting, a rolled-back transaction).
//
// A pooler answers the client's startup with its own cancel key, so the
// backend pid PostgreSQL reports differs from the one the connection was
// given: one query (which is also Open's ping) clears a direct connection.
// Behind a pooler, two client connections A and B tell the mode: A reads
// its backend pid and finishes its transaction, B opens a transaction and
// reads its pid, then A reads its pid again while B's transaction is open.
// In session mode A keeps its server session, so B's differs from it and
// A's second read is the first; in transaction mode A's session went back
// to the pool, and either B was handed it or A now runs on another one
// (B's open transaction holds it). A statement pooler refuses B's BEGIN.
// Only A's first query may fail Open; see poolMode for the rest.
func detect(ctx context.Context, pool *pgxpool.Pool) (Pooling, error) {
	a, err := pool.Acquire(ctx)
	if err != nil {
		return Direct, err
	}
	defer a.Release()
	pidA, err := backendPID(ctx, a.Conn())
	if err != nil {
		return Direct, err
	}
	if pidA == a.Conn().PgConn().PID() {
		return Direct, nil
	}
	return poolMode(ctx, pool.Config().ConnConfig, a.Conn(), pidA), nil
}

// probeTimeout bounds poolMode: a session pooler whose server connections
// are all taken makes a new client wait (PgBouncer's query_wait_timeout is
// two minutes).
const probeTimeout = 5 * time.Second

// poolMode is detect's second step behind a pooler, with A's connection and
// backend pid. When it cannot tell (B cannot connect, or an answer does not
// come within probeTimeout) it says TransactionPooler: then meshtop only
// reads, which is safe through either mode, and says why.
func poolMode(ctx context.Context, cfg *pgx.ConnConfig, a *pgx.Conn, pidA uint32) Pooling {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cleanup := func(f func(context.Context)) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		f(cctx)
	}
	b, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return TransactionPooler
	}
	defer cleanup(func(c context.Context) { _ = b.Close(c) })
	tx, err := b.Begin(ctx) // a statement pooler refuses it
	if err != nil {
		return TransactionPooler
	}
	defer cleanup(func(c context.Context) { _ = tx.Rollback(c) })
	pidB, err := backendPID(ctx, b)
	if err != nil {
		return TransactionPooler
	}
	pidA2, err := backendPID(ctx, a)
	if err != nil || pidB == pidA || pidA2 != pidA {
		return TransactionPooler
	}
	return SessionPooler
}

func backendPID(ctx context.Context, c *pgx.Conn) (uint32, error) {
	var pid int32
	err := c.QueryRow(ctx, "select pg_catalog.pg_backend_pid()", pgx.QueryExecModeSimpleProtocol).Scan(&pid)
	return uint32(pid), err
}

// Target describes where pool connects to, without a password:
// "user@host:port/database".
func Target(pool *pgxpool.Pool) string {
	return TargetOf(pool.Config().ConnConfig.Config)
}

// TargetOf describes a connection config without a password.
func TargetOf(cfg pgconn.Config) string {
	host := cfg.Host
	if strings.HasPrefix(host, "/") {
		host = host + "/.s.PGSQL." + strconv.Itoa(int(cfg.Port))
	} else {
		host = net.JoinHostPort(host, strconv.Itoa(int(cfg.Port)))
	}
	s := host + "/" + cfg.Database
	if cfg.User != "" {
		s = cfg.User + "@" + s
	}
	return Redact(s)
}

// errorConfig returns the connection config carried by a pgconn connect
// error, if any.
func errorConfig(err error) *pgconn.Config {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Config != nil {
		return ce.Config
	}
	return nil
}
