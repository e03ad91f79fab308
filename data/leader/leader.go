// Package leader runs the refresh schedule of `meshtop serve` on exactly
// one of any number of replicas. Each replica holds a dedicated connection
// and tries a session-level advisory lock on it; the one that holds it is
// the leader and refreshes every interval. The lock lives as long as the
// leader's session: when its process dies or its backend is terminated,
// PostgreSQL releases it and the next replica to try takes it over.
//
// The schedule follows the refresh log, not the leader's own clock: the
// next refresh is due one interval after the last one of any replica
// started, so a new leader neither refreshes again at once nor leaves a gap.
// Replicas try the lock every half interval, so a takeover happens within
// two intervals of the old leader's end.
package leader

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshtop/meshtop/data/store"
)

// Refresher refreshes the views and says when the last refresh started.
type Refresher interface {
	Refresh(ctx context.Context, view string, wait bool) ([]store.RefreshResult, error)
	RefreshLog(ctx context.Context, limit int) ([]store.RefreshLogEntry, error)
}

// Options configure a Scheduler.
type Options struct {
	// ConnConfig is the dedicated lock connection's configuration (a copy
	// of the pool's, with application_name naming the instance).
	ConnConfig *pgx.ConnConfig
	// Schema names the lock: replicas of one schema elect one leader.
	Schema string
	// Every is the refresh interval.
	Every time.Duration
	// Timeout bounds one refresh of all views (default: Every, at least 1m).
	Timeout time.Duration
	Logger  *slog.Logger
	// OnRefresh, when set, is called after each refresh with its results.
	OnRefresh func(results []store.RefreshResult, err error)
}

// Scheduler elects a leader and refreshes while it is one.
type Scheduler struct {
	r    Refresher
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	leader bool
	pid    uint32 // backend pid of the lock connection while leader
}

// New returns a scheduler; Run starts it.
func New(r Refresher, opts Options) *Scheduler {
	if opts.Timeout <= 0 {
		opts.Timeout = max(opts.Every, time.Minute)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{r: r, opts: opts, log: log}
}

// LockKey is the advisory lock key of a schema's leader: a bigint key, so
// it never meets the refresh guard's (int, int) keys.
func LockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("meshtop serve leader\x00" + schema))
	return int64(h.Sum64())
}

// Leader reports whether this scheduler holds the lock, and the backend pid
// of its lock connection.
func (s *Scheduler) Leader() (bool, uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leader, s.pid
}

func (s *Scheduler) setLeader(v bool, pid uint32) {
	s.mu.Lock()
	changed := s.leader != v
	s.leader, s.pid = v, pid
	s.mu.Unlock()
	if changed && v {
		s.log.Info("leader: this instance now refreshes the views", "lock_backend_pid", pid, "every", s.opts.Every.String())
	} else if changed {
		s.log.Warn("leader: lost the leader lock; another instance takes over")
	}
}

// Run campaigns and refreshes until ctx ends, then releases the lock.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.opts.Every <= 0 {
		return errors.New("leader: no refresh interval")
	}
	try := max(s.opts.Every/2, 50*time.Millisecond)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = conn.Close(cctx) // closing the session releases the lock
			cancel()
		}
		s.setLeader(false, 0)
	}()
	key := LockKey(s.opts.Schema)
	var next time.Time
	for ctx.Err() == nil {
		var err error
		if conn == nil {
			conn, err = s.connect(ctx)
		}
		if err == nil {
			leader, _ := s.Leader()
			if !leader {
				var got bool
				got, err = s.tryLock(ctx, conn, key)
				if err == nil && got {
					s.setLeader(true, conn.PgConn().PID())
					next = s.due(ctx)
				}
			} else {
				err = s.ping(ctx, conn)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.log.Warn("leader: lock connection failed", "err", err)
			if conn != nil {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				_ = conn.Close(cctx)
				cancel()
				conn = nil
			}
			s.setLeader(false, 0)
		}
		if leader, _ := s.Leader(); leader && !time.Now().Before(next) {
			// The cadence counts from each refresh's start, so a refresh's
			// own duration does not stretch the interval.
			started := time.Now()
			s.refresh(ctx)
			next = started.Add(s.opts.Every)
		}
		wait := try
		if leader, _ := s.Leader(); leader {
			wait = min(try, time.Until(next))
		}
		select {
		case <-ctx.Done():
		case <-time.After(max(wait, time.Millisecond)):
		}
	}
	return nil
}

func (s *Scheduler) connect(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, s.opts.ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("opening the leader lock connection: %w", err)
	}
	return conn, nil
}

func (s *Scheduler) tryLock(ctx context.Context, conn *pgx.Conn, key int64) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var got bool
	if err := conn.QueryRow(cctx, "select pg_catalog.pg_try_advisory_lock($1)", key).Scan(&got); err != nil {
		return false, fmt.Errorf("trying the leader lock: %w", err)
	}
	return got, nil
}

// ping checks the lock's session is alive: a terminated backend took the
// lock with it.
func (s *Scheduler) ping(ctx context.Context, conn *pgx.Conn) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := conn.Ping(cctx); err != nil {
		return fmt.Errorf("checking the leader lock connection: %w", err)
	}
	return nil
}

// due is when the next refresh should start: one interval after the
// newest refresh in the log began (now when there is none or it is older).
func (s *Scheduler) due(ctx context.Context) time.Time {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	log, err := s.r.RefreshLog(cctx, 1)
	if err != nil || len(log) == 0 {
		return time.Now()
	}
	return log[0].StartedAt.Add(s.opts.Every)
}

func (s *Scheduler) refresh(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	start := time.Now()
	res, err := s.r.Refresh(rctx, "", false)
	if ctx.Err() != nil {
		return
	}
	attrs := []any{"took", time.Since(start).Round(time.Millisecond).String()}
	for _, r := range res {
		attrs = append(attrs, r.View, r.Status)
	}
	if err != nil {
		s.log.Error("refresh failed", append(attrs, "err", err)...)
	} else {
		s.log.Info("refreshed", attrs...)
	}
	if s.opts.OnRefresh != nil {
		s.opts.OnRefresh(res, err)
	}
}
