package tui

import (
	"github.com/meshtop/meshtop/data/hub"
	"github.com/meshtop/meshtop/data/store"
)

// Source is what the dashboard reads and drives: the methods of
// *store.Store it calls (one list, hub.Store, shared with the hub that
// serves many dashboards from one store under `meshtop serve`). Keeping it
// an interface keeps tui/ free of SQL and lets a caller wrap the store
// (tests wrap the real one to normalise pids; serve gives each SSH session
// a hub.Client).
type Source interface {
	hub.Store
}

var (
	_ Source = (*store.Store)(nil)
	_ Source = (*hub.Client)(nil)
)
