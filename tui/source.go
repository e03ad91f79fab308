package tui

import (
	"context"

	"github.com/meshtop/meshtop/data/store"
)

// Source is what the dashboard reads and drives: the methods of
// *store.Store it calls. Keeping it an interface keeps tui/ free of SQL and
// lets a caller wrap the store (tests wrap the real one to normalise pids).
type Source interface {
	Overview(ctx context.Context, w store.Window) (store.Overview, error)
	Changes(ctx context.Context, w store.Window) (map[string]store.Change, error)
	Workflow(ctx context.Context, workflowID string, w store.Window) (store.WorkflowDetail, error)
	Installed(ctx context.Context) (bool, error)
	Server(ctx context.Context) (store.ServerInfo, error)
	Views(ctx context.Context) ([]store.ViewStatus, error)
	RefreshLog(ctx context.Context, limit int) ([]store.RefreshLogEntry, error)
	Running(ctx context.Context) ([]store.RunningRefresh, error)
	Refresh(ctx context.Context, view string, wait bool) ([]store.RefreshResult, error)
	CancelRefresh(ctx context.Context, view string) (int, error)
	Schedule(ctx context.Context) (store.Schedule, error)
	Listen(ctx context.Context, out chan<- store.RefreshEvent) error
	ViewNames() []string
}

var _ Source = (*store.Store)(nil)
