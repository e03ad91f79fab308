package main

import (
	"context"
	"time"

	"github.com/meshtop/meshtop/data/store"
	"github.com/meshtop/meshtop/internal/normalise"
)

// normalised wraps the real store and replaces what depends on the wall
// clock or the machine — backend pids, lock ages, refresh durations, the
// log's wall-clock timestamps, relation sizes, the server's port and minor
// version — with constants, so the pictures are byte-stable. Every metric
// still comes from PostgreSQL. (The same idea as tui's golden tests.)
type normalised struct{ *store.Store }

const (
	fixedPID = 48213
	fixedMs  = 1480.0
)

// sizes are plausible relation sizes per view (the real ones vary with
// page reuse between runs).
var sizes = map[string]int64{
	"mv_workflow_metrics_hourly": 2 << 20,
	"mv_workflow_metrics":        96 << 10,
	"mv_step_metrics":            360 << 10,
}

func (n normalised) Overview(ctx context.Context, w store.Window) (store.Overview, error) {
	ov, err := n.Store.Overview(ctx, w)
	normServer(&ov.Server)
	for i := range ov.Views {
		normView(&ov.Views[i])
	}
	return ov, err
}

func (n normalised) Server(ctx context.Context) (store.ServerInfo, error) {
	s, err := n.Store.Server(ctx)
	normServer(&s)
	return s, err
}

func normServer(s *store.ServerInfo) {
	s.Host, s.Port, s.Version = "localhost", 5432, "15"
}

func normView(v *store.ViewStatus) {
	v.SizeBytes = sizes[v.Name]
	if v.LastDurationMs != nil {
		v.LastDurationMs = ptr(fixedMs)
	}
	if v.MedianDurationMs != nil {
		v.MedianDurationMs = ptr(fixedMs)
	}
	for i := range v.RecentDurationsMs {
		v.RecentDurationsMs[i] = fixedMs * (0.8 + 0.1*float64(i%4))
	}
	if v.Running != nil {
		normRunning(v.Running)
	}
}

func normRunning(r *store.RunningRefresh) {
	r.PID = fixedPID
	r.StartedAt = anchor.Add(-time.Second)
	for i := range r.BlockedBy {
		r.BlockedBy[i].PID = fixedPID - 17 - int32(i)
		r.BlockedBy[i].Age = 38 * time.Second
	}
}

func (n normalised) Views(ctx context.Context) ([]store.ViewStatus, error) {
	vs, err := n.Store.Views(ctx)
	for i := range vs {
		normView(&vs[i])
	}
	return vs, err
}

// fixed is what the pictures show instead of measured values; RefreshLog
// spaces the attempts 20 seconds apart, the newest starting a second
// before the anchor (as the running refresh does).
var fixed = normalise.Fixed{PID: fixedPID, Ms: fixedMs, Start: func(id, newest int64) time.Time {
	return anchor.Add(-time.Second - time.Duration(newest-id)*20*time.Second)
}}

func (n normalised) RefreshLog(ctx context.Context, limit int) ([]store.RefreshLogEntry, error) {
	es, err := n.Store.RefreshLog(ctx, limit)
	fixed.RefreshLog(es)
	return es, err
}

func (n normalised) Running(ctx context.Context) ([]store.RunningRefresh, error) {
	rs, err := n.Store.Running(ctx)
	for i := range rs {
		normRunning(&rs[i])
	}
	return rs, err
}

func (n normalised) Refresh(ctx context.Context, view string, wait bool) ([]store.RefreshResult, error) {
	rs, err := n.Store.Refresh(ctx, view, wait)
	fixed.Results(rs)
	return rs, err
}

func ptr[T any](v T) *T { return &v }
