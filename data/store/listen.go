package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// Listen forwards refresh events of this Store's schema (NOTIFY on
// meshtop_refresh, sent by the refresh functions wherever they run: pg_cron,
// another meshtop, psql) to out until ctx is done (then it returns nil) or
// the connection is lost (then it returns the error; callers reconnect with
// backoff). It holds one dedicated connection of the primary pool and gives
// it back with LISTEN undone. Payloads that are not meshtop's JSON are
// skipped.
func (s *Store) Listen(ctx context.Context, out chan<- RefreshEvent) error {
	if s.err != nil {
		return s.err
	}
	if err := s.needSession(); err != nil {
		return err
	}
	actx, cancel := s.timeout(ctx)
	conn, err := s.primary.Acquire(actx)
	cancel()
	if err != nil {
		return wrap(err, "listening for refresh events", RoleReader)
	}
	healthy := false
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.QueryTimeout)
		defer cancel()
		if healthy {
			if _, err := conn.Exec(cctx, "unlisten *"); err != nil {
				healthy = false
			}
		}
		if !healthy {
			_ = conn.Conn().Close(cctx)
		}
		conn.Release()
	}()
	actx, cancel = s.timeout(ctx)
	_, err = conn.Exec(actx, "listen "+NotifyChannel)
	cancel()
	if err != nil {
		return wrap(err, "listening for refresh events", RoleReader)
	}
	healthy = true
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			healthy = false
			return fmt.Errorf("listening for refresh events: %w", err)
		}
		var p struct {
			Schema string `json:"schema"`
			LogID  int64  `json:"log_id"`
			View   string `json:"view"`
			Status string `json:"status"`
			PID    int32  `json:"pid"`
		}
		if json.Unmarshal([]byte(n.Payload), &p) != nil || p.Schema != s.schema {
			continue
		}
		select {
		case out <- RefreshEvent{LogID: p.LogID, View: p.View, Status: p.Status, PID: p.PID}:
		case <-ctx.Done():
			return nil
		}
	}
}
