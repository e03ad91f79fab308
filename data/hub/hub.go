// Package hub shares one store among many dashboards: `meshtop serve`
// gives every SSH session its own dashboard model, and all of them read
// through one Hub, so twenty viewers cost the database what one does.
//
// A Hub is a read-through cache in front of the store. Each read (the
// overview of a window, a workflow's detail, the views' status, the refresh
// log, …) is fetched at most once per interval whoever asks: a request
// finding a fresh result gets it, a request finding the same read under way
// waits for it, and only a request finding neither reads the database. One
// LISTEN connection serves every session: a refresh event first marks every
// cached result stale, then goes to every subscriber, so the reads the event
// prompts see the refreshed views.
//
// Sessions hold Clients: a read-only Client refuses Refresh and
// CancelRefresh with ErrReadOnly whatever its dashboard does.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/meshtop/meshtop/data/store"
)

// Store is what a dashboard reads and drives: the methods of *store.Store
// it calls. The hub needs the same list from the store it wraps, and
// tui.Source is this interface.
type Store interface {
	Overview(ctx context.Context, w store.Window) (store.Overview, error)
	Changes(ctx context.Context, w store.Window) (map[string]store.Change, error)
	Workflow(ctx context.Context, workflowID string, w store.Window) (store.WorkflowDetail, error)
	Runs(ctx context.Context, workflowID string, w store.Window, kind store.RunKind, limit int) (store.RunList, error)
	Run(ctx context.Context, runID string) (store.RunTimeline, error)
	Installed(ctx context.Context) (bool, error)
	Server(ctx context.Context) (store.ServerInfo, error)
	Views(ctx context.Context) ([]store.ViewStatus, error)
	RefreshLog(ctx context.Context, limit int) ([]store.RefreshLogEntry, error)
	Running(ctx context.Context) ([]store.RunningRefresh, error)
	Refresh(ctx context.Context, view string, wait bool) ([]store.RefreshResult, error)
	CancelRefresh(ctx context.Context, view string) (int, error)
	Schedule(ctx context.Context) (store.Schedule, error)
	CaptureLog(ctx context.Context) (store.CaptureLog, error)
	Listen(ctx context.Context, out chan<- store.RefreshEvent) error
	ViewNames() []string
}

var _ Store = (*store.Store)(nil)

// ErrReadOnly is what a read-only Client answers to Refresh and
// CancelRefresh.
var ErrReadOnly = errors.New("read-only session: refreshing and cancelling are disabled")

// Hub is safe for concurrent use. Close it (or cancel the context given to
// New) to stop its LISTEN connection.
type Hub struct {
	st       Store
	interval time.Duration
	log      *slog.Logger
	ctx      context.Context
	cancel   context.CancelFunc

	mu      sync.Mutex
	gen     uint64 // bumped by every refresh event: older results are stale
	entries map[string]*entry
	reads   map[string]int64 // database reads by kind (Stats)
	subs    map[int]chan<- store.RefreshEvent
	nextSub int
	listen  bool // the LISTEN goroutine runs
	closed  bool
	wg      sync.WaitGroup
}

type entry struct {
	gen   uint64
	at    time.Time
	done  chan struct{} // closed when val/err are set
	val   any
	err   error
	fails int // consecutive failed reads of this key, this one included
}

// maxBackoff bounds how long a failed read is served from the cache, in
// intervals: 1, 2, 4, then 4 intervals between reads of a key that keeps
// failing (8 s at the default 2 s): twenty sessions retrying a denied or
// broken read every poll cost the database one attempt per back-off, and a
// database that comes back is seen within a few intervals.
const maxBackoff = 4

// fresh reports whether a finished entry may still be served at now.
// Freshness is counted in slots of the interval on the wall clock, shared
// by every session: a result is fresh until the end of the slot its read
// started in, a failure for its back-off's slots. Reads of a kind are thus
// at most one per slot whatever the number of sessions, and a dashboard
// polling once per interval (or less often) lands in a new slot at every
// poll and reads every time — as it would alone. (A result fresh for one
// interval from its read's start made the one-session case depend on
// jitter: a poll a millisecond early found the last result fresh and was
// served from the cache, so one session read some kinds only two polls in
// three while twenty read them every interval.)
func (e *entry) fresh(interval time.Duration, now time.Time) bool {
	slots := int64(1)
	if e.err != nil {
		slots = int64(min(1<<(e.fails-1), maxBackoff))
	}
	return now.UnixNano()/int64(interval) < e.at.UnixNano()/int64(interval)+slots
}

// New returns a hub reading st at most once per interval for each kind of
// read (default 2s). ctx bounds its background work.
func New(ctx context.Context, st Store, interval time.Duration, log *slog.Logger) *Hub {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	return &Hub{st: st, interval: interval, log: log, ctx: ctx, cancel: cancel,
		entries: map[string]*entry{}, reads: map[string]int64{}, subs: map[int]chan<- store.RefreshEvent{}}
}

// Close stops the hub's LISTEN connection and waits for it to be returned.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}

// Interval is how long a result stays fresh.
func (h *Hub) Interval() time.Duration { return h.interval }

// Stats returns how many times each kind of read went to the database.
func (h *Hub) Stats() map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int64, len(h.reads))
	for k, v := range h.reads {
		out[k] = v
	}
	return out
}

// Subscribers is the number of sessions listening for refresh events.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Invalidate marks every cached result stale.
func (h *Hub) Invalidate() {
	h.mu.Lock()
	h.gen++
	h.mu.Unlock()
}

// get returns the cached result of key when it is fresh, waits for a read
// of it under way, or reads it with fetch. The read runs on the hub's
// context, not the caller's: one session quitting must not fail the read
// the others wait for. A failure is cached like a result, for a back-off
// that grows while the key keeps failing (entry.fresh), and shared by every
// session; a refresh event (Invalidate) ends it like any cached result.
func get[T any](ctx context.Context, h *Hub, kind, key string, fetch func(context.Context) (T, error)) (T, error) {
	var zero T
	h.mu.Lock()
	e := h.entries[key]
	fails := 0
	if e != nil && e.gen == h.gen {
		select {
		case <-e.done:
			if e.fresh(h.interval, time.Now()) {
				h.mu.Unlock()
				if e.err != nil {
					return zero, e.err
				}
				return e.val.(T), nil
			}
			if e.err != nil {
				fails = e.fails
			}
			e = nil // stale: read again
		default: // under way: wait for it
		}
	} else {
		e = nil
	}
	if e == nil {
		e = &entry{gen: h.gen, done: make(chan struct{})}
		if len(h.entries) >= maxEntries {
			h.prune()
		}
		h.entries[key] = e
		h.reads[kind]++
		h.mu.Unlock()
		// A result is as old as its read's start (entry.fresh). (Counting
		// from the read's end let a dashboard polling exactly once per
		// interval find its previous result still fresh, so a single viewer
		// was served every other poll from the cache.)
		started := time.Now()
		v, err := fetch(h.ctx)
		h.mu.Lock()
		e.val, e.err, e.at = v, err, started
		if err != nil {
			e.fails = fails + 1
		}
		close(e.done)
		h.mu.Unlock()
		return v, err
	}
	h.mu.Unlock()
	select {
	case <-e.done:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	if e.err != nil {
		return zero, e.err
	}
	return e.val.(T), nil
}

// maxEntries bounds the cache: workflow details are keyed by workflow and
// window, and a long-running server sees many.
const maxEntries = 512

// prune drops finished results older than the interval (h.mu held).
func (h *Hub) prune() {
	for k, e := range h.entries {
		select {
		case <-e.done:
			if !e.fresh(h.interval, time.Now()) || e.gen != h.gen {
				delete(h.entries, k)
			}
		default:
		}
	}
}

// Overview reads the overview of a window (shared).
func (h *Hub) Overview(ctx context.Context, w store.Window) (store.Overview, error) {
	return get(ctx, h, "overview", "ov\x00"+string(w), func(c context.Context) (store.Overview, error) { return h.st.Overview(c, w) })
}

// Changes reads each workflow's change against the previous window (shared).
func (h *Hub) Changes(ctx context.Context, w store.Window) (map[string]store.Change, error) {
	return get(ctx, h, "changes", "ch\x00"+string(w), func(c context.Context) (map[string]store.Change, error) { return h.st.Changes(c, w) })
}

// Workflow reads one workflow's detail (shared).
func (h *Hub) Workflow(ctx context.Context, id string, w store.Window) (store.WorkflowDetail, error) {
	return get(ctx, h, "workflow", "wf\x00"+id+"\x00"+string(w), func(c context.Context) (store.WorkflowDetail, error) { return h.st.Workflow(c, id, w) })
}

// Runs reads a workflow's drill-down list (shared per workflow, window,
// list and limit): sessions on the same list cost the database one read
// per interval.
func (h *Hub) Runs(ctx context.Context, id string, w store.Window, kind store.RunKind, limit int) (store.RunList, error) {
	key := "runs\x00" + id + "\x00" + string(w) + "\x00" + string(kind) + "\x00" + strconv.Itoa(limit)
	return get(ctx, h, "runs", key, func(c context.Context) (store.RunList, error) { return h.st.Runs(c, id, w, kind, limit) })
}

// Run reads one run's timeline (shared per run).
func (h *Hub) Run(ctx context.Context, id string) (store.RunTimeline, error) {
	return get(ctx, h, "run", "run\x00"+id, func(c context.Context) (store.RunTimeline, error) { return h.st.Run(c, id) })
}

// Installed reports whether meshtop is installed (shared).
func (h *Hub) Installed(ctx context.Context) (bool, error) {
	return get(ctx, h, "installed", "installed", h.st.Installed)
}

// Views reads the views' status (shared).
func (h *Hub) Views(ctx context.Context) ([]store.ViewStatus, error) {
	return get(ctx, h, "views", "views", h.st.Views)
}

// RefreshLog reads the newest limit attempts (shared per limit).
func (h *Hub) RefreshLog(ctx context.Context, limit int) ([]store.RefreshLogEntry, error) {
	return get(ctx, h, "refresh_log", "log\x00"+strconv.Itoa(limit), func(c context.Context) ([]store.RefreshLogEntry, error) { return h.st.RefreshLog(c, limit) })
}

// Running lists refreshes in progress (shared).
func (h *Hub) Running(ctx context.Context) ([]store.RunningRefresh, error) {
	return get(ctx, h, "running", "running", h.st.Running)
}

// CaptureLog reads change capture's state: the log's size and age, the
// mode, the slot (shared).
func (h *Hub) CaptureLog(ctx context.Context) (store.CaptureLog, error) {
	return get(ctx, h, "capture", "capture", h.st.CaptureLog)
}

// Schedule reads the pg_cron schedule (shared).
func (h *Hub) Schedule(ctx context.Context) (store.Schedule, error) {
	return get(ctx, h, "schedule", "schedule", h.st.Schedule)
}

// Server is not cached: dashboards call it to find out whether the database
// is back after an outage, and a cached answer would say yes too early.
func (h *Hub) Server(ctx context.Context) (store.ServerInfo, error) {
	h.count("server")
	return h.st.Server(ctx)
}

// ViewNames lists meshtop's views.
func (h *Hub) ViewNames() []string { return h.st.ViewNames() }

// Refresh refreshes (the caller's context bounds it, as in a local
// dashboard) and marks every cached result stale.
func (h *Hub) Refresh(ctx context.Context, view string, wait bool) ([]store.RefreshResult, error) {
	defer h.Invalidate()
	return h.st.Refresh(ctx, view, wait)
}

// CancelRefresh cancels refreshes in progress.
func (h *Hub) CancelRefresh(ctx context.Context, view string) (int, error) {
	defer h.Invalidate()
	return h.st.CancelRefresh(ctx, view)
}

func (h *Hub) count(kind string) {
	h.mu.Lock()
	h.reads[kind]++
	h.mu.Unlock()
}

// Listen subscribes out to refresh events until ctx is done (then it
// returns nil). Every subscriber shares the hub's one LISTEN connection; an
// event is dropped for a subscriber whose channel is full (its dashboard
// polls anyway).
func (h *Hub) Listen(ctx context.Context, out chan<- store.RefreshEvent) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errors.New("hub closed")
	}
	id := h.nextSub
	h.nextSub++
	h.subs[id] = out
	if !h.listen {
		h.listen = true
		h.wg.Add(1)
		go h.listenLoop()
	}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.subs, id)
		h.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return nil
	case <-h.ctx.Done():
		return fmt.Errorf("listening for refresh events: %w", h.ctx.Err())
	}
}

// listenLoop holds the one LISTEN connection while the hub lives,
// reconnecting with backoff (1 s doubling to 30 s) when it is lost.
func (h *Hub) listenLoop() {
	defer h.wg.Done()
	events := make(chan store.RefreshEvent, 64)
	done := make(chan error, 1)
	delay := time.Second
	for h.ctx.Err() == nil {
		go func() { done <- h.st.Listen(h.ctx, events) }()
		start := time.Now()
		var err error
	loop:
		for {
			select {
			case ev := <-events:
				h.fanOut(ev)
			case err = <-done:
				break loop
			}
		}
		if h.ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			delay = time.Second
		}
		h.log.Warn("refresh events: LISTEN connection lost, reconnecting", "err", err, "retry_in", delay.String())
		h.Invalidate()
		select {
		case <-h.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

func (h *Hub) fanOut(ev store.RefreshEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	for _, out := range h.subs {
		select {
		case out <- ev:
		default:
		}
	}
}

// Client is one session's view of the hub.
type Client struct {
	*Hub
	readOnly bool
}

// Client returns a session's handle; a read-only one refuses Refresh and
// CancelRefresh.
func (h *Hub) Client(readOnly bool) *Client { return &Client{Hub: h, readOnly: readOnly} }

// ReadOnly reports whether the client refuses writes.
func (c *Client) ReadOnly() bool { return c.readOnly }

// Refresh refuses on a read-only client.
func (c *Client) Refresh(ctx context.Context, view string, wait bool) ([]store.RefreshResult, error) {
	if c.readOnly {
		return nil, ErrReadOnly
	}
	return c.Hub.Refresh(ctx, view, wait)
}

// CancelRefresh refuses on a read-only client.
func (c *Client) CancelRefresh(ctx context.Context, view string) (int, error) {
	if c.readOnly {
		return 0, ErrReadOnly
	}
	return c.Hub.CancelRefresh(ctx, view)
}
