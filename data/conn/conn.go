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

// Open creates a pool and pings it once, so a wrong password or an
// unreachable host fails now with an error Explain understands. TLS settings
// in the DSN (sslmode, sslrootcert, …) are honoured as pgx parses them.
func Open(ctx context.Context, opts Options) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(opts.DSN)
	if err != nil {
		return nil, &DSNError{Source: "the connection string", Err: err}
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
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", TargetOf(cfg.ConnConfig.Config), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to %s: %w", TargetOf(cfg.ConnConfig.Config), err)
	}
	return pool, nil
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
