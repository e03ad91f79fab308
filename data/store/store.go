package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	meshsql "github.com/meshtop/meshtop/sql"
)

// Options configure a Store. Zero values take the defaults below.
type Options struct {
	// Schema meshtop is installed in; default "metrics".
	Schema string
	// QueryTimeout bounds every read and every short command; default 5s.
	QueryTimeout time.Duration
	// RefreshTimeout is the statement_timeout of one view's refresh (and of
	// waiting for the guard with wait=true); default 10 minutes.
	RefreshTimeout time.Duration
	// LockTimeout bounds how long Overview and Workflow wait for a lock on
	// a view (a first, plain refresh holds ACCESS EXCLUSIVE on it): the
	// batch starts with set_config('lock_timeout', ..., true), and giving up
	// returns ErrLocked. Default 2s, negative disables. Caveat: on a
	// connection that has not run the batch before, pgx first prepares its
	// statements, and that step (which locks the views too) is bounded only
	// by QueryTimeout. The refresh itself uses lock_timeout from the
	// schema's config table.
	LockTimeout time.Duration
	// TransactionPooler says the primary is reached through a pooler in
	// transaction mode (conn.OpenDetect finds out): Refresh, CancelRefresh,
	// SetSchedule, Unschedule and Listen then return ErrNeedsSession
	// without touching the database, and reads carry no session state.
	TransactionPooler bool
}

// Defaults.
const (
	DefaultSchema         = "metrics"
	DefaultQueryTimeout   = 5 * time.Second
	DefaultRefreshTimeout = 10 * time.Minute
	DefaultLockTimeout    = 2 * time.Second
)

// The views meshtop maintains, in refresh (dependency) order.
const (
	ViewHourly  = "mv_workflow_metrics_hourly"
	ViewMetrics = "mv_workflow_metrics"
	ViewSteps   = "mv_step_metrics"
)

// NotifyChannel is the LISTEN/NOTIFY channel refreshes announce themselves on.
const NotifyChannel = "meshtop_refresh"

// Store reads meshtop's views and drives refreshes. It is safe for
// concurrent use.
//
// Routing: metrics, status and log reads (Overview, Workflow) go to the
// replica when one is given; everything about refreshes in progress and
// everything that writes goes to the primary: Refresh, CancelRefresh,
// Schedule*, Listen (NOTIFY is not delivered on standbys), Running (a
// standby's pg_stat_activity does not show the primary's backends), Views and
// RefreshLog (the derived 'interrupted' state looks at the guard's advisory
// locks, which exist only on the primary). Overview reads running_now() from
// the same server as the metrics, so one poll is one round trip.
type Store struct {
	primary *pgxpool.Pool
	replica *pgxpool.Pool
	opts    Options
	schema  string // raw name
	quoted  string // quoted identifier
	q       map[string]string
	err     error // configuration error, returned by every method

	// beforeRun, when set (tests only), is called between refresh_begin and
	// refresh_run with the context of the refresh, so a test can force an
	// interleaving there.
	beforeRun func(ctx context.Context)

	mu    sync.Mutex
	spark map[Window]sparkCache    // overview sparklines by window
	wf    map[Window]workflowCache // overview workflow rows by window
}

// workflowCache holds the overview's workflow rows of one window, sorted,
// as read after the successful refresh logID of mv_workflow_metrics (-1:
// read again), and the comparison with the previous window read with them
// (anchored on their clock).
type workflowCache struct {
	logID   int64
	rows    []WorkflowMetrics
	changes map[string]Change
}

// sparkCache holds the overview's sparkline points of one window as computed
// from the hourly view's refresh logID.
type sparkCache struct {
	logID  int64
	hourly map[string][]HourlyPoint
}

// New returns a Store. replica may be nil. A bad schema name or a missing
// query file is reported by every method call.
func New(primary, replica *pgxpool.Pool, opts Options) *Store {
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = DefaultQueryTimeout
	}
	if opts.RefreshTimeout <= 0 {
		opts.RefreshTimeout = DefaultRefreshTimeout
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	s := &Store{primary: primary, replica: replica, opts: opts, schema: opts.Schema, spark: map[Window]sparkCache{}, wf: map[Window]workflowCache{}}
	s.quoted, s.err = meshsql.QuoteSchema(opts.Schema)
	if s.err == nil {
		s.q, s.err = loadQueries(s.quoted)
	}
	if s.err == nil && primary == nil {
		s.err = errors.New("store: no primary connection pool")
	}
	return s
}

// loadQueries reads every sql/queries/store_*.sql file and renders the schema.
func loadQueries(quoted string) (map[string]string, error) {
	files, err := fs.Glob(meshsql.Queries, "queries/store_*.sql")
	if err != nil {
		return nil, fmt.Errorf("listing store queries: %w", err)
	}
	q := make(map[string]string, len(files))
	for _, f := range files {
		b, err := fs.ReadFile(meshsql.Queries, f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(f, "queries/store_"), ".sql")
		q[name] = meshsql.Render(string(b), quoted)
	}
	return q, nil
}

// query returns the named query text; an unknown name is a programming error
// caught by the tests.
func (s *Store) query(name string) string {
	text, ok := s.q[name]
	if !ok {
		panic("store: no query file sql/queries/store_" + name + ".sql")
	}
	return text
}

// Schema is the schema this Store reads.
func (s *Store) Schema() string { return s.schema }

// Options returns the effective options (defaults filled in).
func (s *Store) Options() Options { return s.opts }

// HasReplica reports whether reads go to a separate replica pool.
func (s *Store) HasReplica() bool { return s.replica != nil }

// reader is the pool metrics reads use.
func (s *Store) reader() *pgxpool.Pool {
	if s.replica != nil {
		return s.replica
	}
	return s.primary
}

// ViewNames lists meshtop's views in refresh (dependency) order.
func (s *Store) ViewNames() []string { return ViewNames() }

// ViewNames lists meshtop's views in refresh (dependency) order.
func ViewNames() []string { return []string{ViewHourly, ViewMetrics, ViewSteps} }

// CheckView returns an error listing the valid names when view is not one of
// meshtop's views.
func CheckView(view string) error {
	for _, v := range ViewNames() {
		if v == view {
			return nil
		}
	}
	return fmt.Errorf("unknown view %q: use one of %s", view, strings.Join(ViewNames(), ", "))
}

func (s *Store) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.QueryTimeout)
}

// lockTimeoutArg is LockTimeout as a setting value.
func (s *Store) lockTimeoutArg() string {
	return fmt.Sprintf("%dms", s.opts.LockTimeout.Milliseconds())
}
