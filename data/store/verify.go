package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrCannotVerify means there is nothing to verify against yet: the rollup
// has never been built, or a full rebuild is pending (run a refresh first).
var ErrCannotVerify = errors.New("the rollup cannot be verified now")

// Drift is one field of one rollup bucket that differs from what the raw
// tables give.
type Drift struct {
	Kind       string    `json:"kind"` // runs_hour, runs_day, steps_hour, steps_day, runs_window, steps_window
	WorkflowID string    `json:"workflow_id"`
	NodeID     string    `json:"node_id,omitempty"`
	Bucket     time.Time `json:"bucket"` // the hour or UTC day; for a window cell, the clock it was computed at
	Field      string    `json:"field"`
	Stored     string    `json:"stored"`     // JSON text of the stored value
	Recomputed string    `json:"recomputed"` // JSON text of the value from the raw tables
}

// RequestFull makes the next refresh rebuild the rollup from the raw tables
// instead of applying the dirty-key log.
func (s *Store) RequestFull(ctx context.Context) error {
	if s.err != nil {
		return s.err
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	if _, err := s.primary.Exec(ctx, s.query("refresh_full")); err != nil {
		return wrap(err, "requesting a full rebuild", RoleRefresher)
	}
	return nil
}

// Verify recomputes the rollup of the last window hours (at most the 30-day
// window) from the raw tables, in one REPEATABLE READ snapshot with the
// dirty-key log, and returns every field that differs from the stored
// rollup. Buckets with changes still waiting in the log are not compared.
// The rollup holds exact values (the views' percentiles come from its
// histograms), so any difference is drift. It reads a month of runs and
// step events: bounded by RefreshTimeout, not QueryTimeout.
func (s *Store) Verify(ctx context.Context, window time.Duration) ([]Drift, error) {
	if s.err != nil {
		return nil, s.err
	}
	hours := int((window + time.Hour - 1) / time.Hour)
	ctx, cancel := context.WithTimeout(ctx, s.opts.RefreshTimeout)
	defer cancel()
	tx, err := s.primary.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadWrite})
	if err != nil {
		return nil, wrap(err, "verifying the rollup", RoleRefresher)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, s.query("verify"), hours)
	if err != nil {
		return nil, verifyErr(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Drift, error) {
		var d Drift
		err := r.Scan(&d.Kind, &d.WorkflowID, &d.NodeID, &d.Bucket, &d.Field, &d.Stored, &d.Recomputed)
		return d, err
	})
	if err != nil {
		return nil, verifyErr(err)
	}
	return out, nil
}

func verifyErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55000" {
		return fmt.Errorf("%w: %s", ErrCannotVerify, pgErr.Message)
	}
	return wrap(err, "verifying the rollup", RoleRefresher)
}
