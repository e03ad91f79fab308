package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// RefreshOutcome is one refresh attempt's view and derived state.
type RefreshOutcome struct {
	ID     int64
	View   string
	Status string // running, ok, failed, skipped, interrupted
}

// RefreshOutcomes reads up to limit refresh attempts with an id above
// afterID, oldest first, from the primary (the derived 'interrupted' state
// needs the primary's advisory locks).
func (s *Store) RefreshOutcomes(ctx context.Context, afterID int64, limit int) ([]RefreshOutcome, error) {
	if s.err != nil {
		return nil, s.err
	}
	if limit <= 0 {
		limit = 1000
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.primary.Query(ctx, s.query("refresh_outcomes"), afterID, limit)
	if err != nil {
		return nil, wrap(err, "reading refresh outcomes", RoleReader)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RefreshOutcome, error) {
		var o RefreshOutcome
		err := r.Scan(&o.ID, &o.View, &o.Status)
		return o, err
	})
	if err != nil {
		return nil, wrap(err, "reading refresh outcomes", RoleReader)
	}
	return out, nil
}
