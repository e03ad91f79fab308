package store

import "context"

// SetBeforeRun makes s call f between refresh_begin and refresh_run.
func SetBeforeRun(s *Store, f func(ctx context.Context)) { s.beforeRun = f }
