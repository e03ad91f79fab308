package store

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/meshtop/meshtop/data/safetext"
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
	// Capture is how changes are captured (nil when the schema predates
	// WAL capture, migration 015).
	Capture *Capture
}

// Capture is how MeshHook's changes reach the refresh (docs/REFRESH.md,
// "Change capture from the WAL"). What the console should show: Mode (and
// Desired when they differ), the slot's RetainedBytes against MaxBytes and
// Lag against MaxAge while in WAL mode, and a FallbackAt/FallbackReason
// banner when meshtop fell back to the triggers.
type Capture struct {
	// Desired is what install --capture asked for: auto, wal or triggers.
	Desired string
	// Mode is what captures now: "wal" (a logical replication slot; no
	// trigger on MeshHook's hot path), "triggers" (row-level triggers), or
	// "arming" (the triggers, while a slot is set up beside them).
	Mode      string
	ModeSince time.Time
	// Slot is meshtop's replication slot; SlotExists whether it exists,
	// SlotActive whether a session reads it right now, WALStatus the
	// server's wal_status (reserved, extended, unreserved, lost).
	Slot       string
	SlotExists bool
	SlotActive bool
	WALStatus  string
	// RetainedBytes is pg_current_wal_lsn() minus the slot's confirmed
	// position: the WAL not yet consumed. RestartBytes is minus its
	// restart position: what the server keeps on disk for it. 0 without
	// a slot.
	RetainedBytes int64
	RestartBytes  int64
	// ConsumedLSN and ConsumedAt: how far and when a refresh last consumed
	// the slot; Lag is now − ConsumedAt (0 when never).
	ConsumedLSN string
	ConsumedAt  *time.Time
	Lag         time.Duration
	// Transactions and Changes decoded since the slot was created.
	Transactions, Changes int64
	// MaxBytes and MaxAge are the slot's bound (config
	// capture_wal_max_bytes, capture_wal_max_age): past either, meshtop
	// drops the slot and falls back to the triggers.
	MaxBytes int64
	MaxAge   time.Duration
	// FallbackAt and FallbackReason: the last fallback to the triggers
	// (nil and empty if none).
	FallbackAt     *time.Time
	FallbackReason safetext.Text
	// ReplicaIdentity of public.workflow_runs: default, full, nothing or
	// index (WAL capture sets full).
	ReplicaIdentity string
	// Unavailable says in one line why WAL capture is impossible for the
	// installing role ("" when it is possible).
	Unavailable safetext.Text
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
	if w, err := s.capture(ctx); err == nil {
		c.Capture = w
	} else if !errors.Is(err, ErrNotInstalled) {
		return CaptureLog{}, err
	}
	return c, nil
}

// capture enforces the WAL slot's bound (capture_guard) and reads how
// changes are captured. ErrNotInstalled when the schema predates WAL
// capture.
func (s *Store) capture(ctx context.Context) (*Capture, error) {
	var guard string
	if err := s.primary.QueryRow(ctx, s.query("capture_guard")).Scan(&guard); err != nil {
		return nil, wrap(err, "enforcing the replication slot's bound", RoleReader)
	}
	var c Capture
	var retained, restart, lag, maxAge *float64
	var reason, unavailable string
	err := s.primary.QueryRow(ctx, s.query("capture_wal")).Scan(&c.Desired, &c.Mode, &c.ModeSince, &c.Slot,
		&c.SlotExists, &c.SlotActive, &c.WALStatus, &retained, &restart, &c.ConsumedLSN, &c.ConsumedAt, &lag,
		&c.Transactions, &c.Changes, &c.MaxBytes, &maxAge, &c.FallbackAt, &reason, &c.ReplicaIdentity, &unavailable)
	if err != nil {
		return nil, wrap(err, "reading how changes are captured", RoleReader)
	}
	if retained != nil {
		c.RetainedBytes = int64(*retained)
	}
	if restart != nil {
		c.RestartBytes = int64(*restart)
	}
	if lag != nil {
		c.Lag = clampSeconds(*lag)
	}
	if maxAge != nil {
		c.MaxAge = clampSeconds(*maxAge)
	}
	c.FallbackReason, c.Unavailable = safetext.New(reason), safetext.New(unavailable)
	return &c, nil
}

// ensureCapture runs capture_ensure() after refreshes (the row-level
// triggers back after a fallback, the slot's bound, leftovers removed), in
// a short transaction of its own; what it did is returned ("" for nothing).
func (s *Store) ensureCapture(ctx context.Context) (string, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var did string
	if err := s.primary.QueryRow(ctx, s.query("capture_ensure")).Scan(&did); err != nil {
		return "", wrap(err, "bringing change capture to its mode", RoleRefresher)
	}
	return did, nil
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
