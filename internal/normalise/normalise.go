// Package normalise is the one home of what tui's golden tests and
// cmd/meshtop-shots replace in the refresh log and refresh results to get
// byte-stable frames: wall-clock start times, durations, backend pids and
// the pid and time a skipped refresh names. Every other value still comes
// from PostgreSQL.
package normalise

import (
	"strings"
	"time"

	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

// Fixed are the constants a caller puts in place of measured values.
type Fixed struct {
	PID int32
	Ms  float64
	// Start gives an entry's start time from its log id and the newest id
	// of the page.
	Start func(id, newest int64) time.Time
}

// RefreshLog rewrites the entries in place.
func (f Fixed) RefreshLog(es []store.RefreshLogEntry) {
	var newest int64
	for _, e := range es {
		newest = max(newest, e.ID)
	}
	for i := range es {
		e := &es[i]
		e.StartedAt = f.Start(e.ID, newest)
		if e.FinishedAt != nil {
			t := e.StartedAt.Add(time.Duration(f.Ms * float64(time.Millisecond)))
			e.FinishedAt = &t
		}
		if e.DurationMs != nil {
			ms := f.Ms
			e.DurationMs = &ms
		}
		e.PID = f.PID
		e.Error = Error(e.Error)
	}
}

// Results rewrites refresh results in place.
func (f Fixed) Results(rs []store.RefreshResult) {
	for i := range rs {
		rs[i].DurationMs = f.Ms
		rs[i].Error = Error(rs[i].Error)
	}
}

// Error drops the pid and time a skipped refresh names.
func Error(t safetext.Text) safetext.Text {
	s := t.Raw()
	if i := strings.Index(s, "(pid "); i >= 0 {
		return safetext.New(s[:i] + "(pid N since T)")
	}
	return t
}
