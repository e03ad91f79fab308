package store

import (
	"context"
	"math"
	"time"
)

// CaptureLog is the state of the change-capture log (the dirty_keys and
// dirty_runs tables MeshHook's writes append to and every refresh consumes).
// The log is bounded by age: capture stops when no refresh has consumed it
// for MaxAge (config capture_max_age, default 24 hours), and the next
// refresh rebuilds the rollup and resumes it (docs/REFRESH.md, "The capture
// log's bound").
type CaptureLog struct {
	// Rows is an estimate of the rows waiting in the log (the statistics'
	// live tuples; about 7 per MeshHook run).
	Rows int64
	// Bytes is the log tables' size on disk. Space a refresh consumed is
	// reused, not returned, so this stays at its high-water mark.
	Bytes int64
	// Since is when the log was last consumed (the last successful refresh,
	// or the install): its oldest entry is about Age old.
	Since time.Time
	// Age is now − Since, by the server's clock.
	Age time.Duration
	// StopsAt is when capture stops unless a refresh consumes the log; Left
	// is StopsAt − now by the server's clock (negative once stopped).
	StopsAt time.Time
	Left    time.Duration
	// MaxAge is the bound (config capture_max_age).
	MaxAge time.Duration
	// Stopped: capture is off now; MeshHook's changes are not being logged.
	Stopped bool
	// RebuildPending: capture was off since the last successful refresh, so
	// the rollup misses changes until the next refresh rebuilds it.
	RebuildPending bool
}

// CaptureLog reads the change-capture log's size, age and state, from the
// primary (a standby's statistics describe the standby).
func (s *Store) CaptureLog(ctx context.Context) (CaptureLog, error) {
	var c CaptureLog
	if s.err != nil {
		return c, s.err
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var maxAge, age, left float64
	err := s.primary.QueryRow(ctx, s.query("capture_log")).Scan(&c.Rows, &c.Bytes, &c.Since, &c.StopsAt,
		&maxAge, &age, &left, &c.Stopped, &c.RebuildPending)
	if err != nil {
		return CaptureLog{}, wrap(err, "reading the change-capture log's state", RoleReader)
	}
	c.MaxAge, c.Age, c.Left = clampSeconds(maxAge), clampSeconds(age), clampSeconds(left)
	return c, nil
}

// clampSeconds converts seconds to a Duration, saturating outside its range
// (an operator may set capture_max_age to centuries).
func clampSeconds(s float64) time.Duration {
	d := s * float64(time.Second)
	switch {
	case d >= math.MaxInt64:
		return time.Duration(math.MaxInt64)
	case d <= math.MinInt64:
		return time.Duration(math.MinInt64)
	}
	return seconds(s)
}
