package normalise

import (
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

func TestFixed(t *testing.T) {
	at := time.Date(2026, 3, 10, 12, 30, 0, 0, time.UTC)
	f := Fixed{PID: 7, Ms: 125, Start: func(id, newest int64) time.Time { return at.Add(-time.Duration(newest-id) * time.Minute) }}
	d := 3.0
	now := time.Now()
	es := []store.RefreshLogEntry{
		{ID: 2, StartedAt: now, FinishedAt: &now, DurationMs: &d, PID: 99, Error: safetext.New("already refreshing (pid 123 since 12:00:01)")},
		{ID: 1, StartedAt: now, PID: 98},
	}
	f.RefreshLog(es)
	if es[0].StartedAt != at || *es[0].FinishedAt != at.Add(125*time.Millisecond) || *es[0].DurationMs != 125 || es[0].PID != 7 ||
		!es[0].Error.Is("already refreshing (pid N since T)") {
		t.Errorf("entry 2: %+v", es[0])
	}
	if es[1].StartedAt != at.Add(-time.Minute) || es[1].FinishedAt != nil || es[1].DurationMs != nil {
		t.Errorf("entry 1: %+v", es[1])
	}
}
