package hub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/hub"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func setup(t *testing.T) *store.Store {
	t.Helper()
	db := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	anchor := time.Now().UTC().Truncate(time.Hour)
	if _, err := fixture.Generate(ctx, db.Pool, fixture.Spec{Seed: 3, Projects: 2, Workflows: 6, Runs: 1500, Days: 10, Anchor: anchor, Events: true}); err != nil {
		t.Fatalf("generating: %v", err)
	}
	if _, err := install.New(db.Pool, "metrics").Apply(ctx, nil); err != nil {
		t.Fatalf("installing: %v", err)
	}
	st := store.New(db.Pool, nil, store.Options{})
	if _, err := st.Refresh(ctx, "", false); err != nil {
		t.Fatalf("refreshing: %v", err)
	}
	return st
}

// Twenty sessions asking at once cost one read; a fresh result is served
// from the cache until the interval passes; a refresh event reaches every
// subscriber and makes the next read go to the database.
func TestSharedReadsAndEvents(t *testing.T) {
	st := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := hub.New(ctx, st, time.Hour, nil) // nothing expires during the test by itself
	defer h.Close()

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ov, err := h.Client(true).Overview(ctx, store.Window24h)
			if err == nil && len(ov.Workflows) == 0 {
				err = context.DeadlineExceeded
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("overview: %v", err)
		}
	}
	if n := h.Stats()["overview"]; n != 1 {
		t.Fatalf("20 concurrent overviews made %d database reads, want 1", n)
	}

	// Subscribe twenty sessions, then refresh from elsewhere.
	chans := make([]chan store.RefreshEvent, 20)
	lctx, lcancel := context.WithCancel(ctx)
	var lwg sync.WaitGroup
	for i := range chans {
		chans[i] = make(chan store.RefreshEvent, 64)
		lwg.Add(1)
		go func() { defer lwg.Done(); _ = h.Client(true).Listen(lctx, chans[i]) }()
	}
	waitFor(t, func() bool { return h.Subscribers() == 20 }, "20 subscribers")
	// The hub's LISTEN must be established before the refresh: wait until a
	// probe refresh's event arrives.
	ro := h.Client(true)
	if _, err := ro.Refresh(ctx, "", false); err != hub.ErrReadOnly {
		t.Fatalf("read-only client refresh: %v, want ErrReadOnly", err)
	}
	if _, err := ro.CancelRefresh(ctx, ""); err != hub.ErrReadOnly {
		t.Fatalf("read-only client cancel: %v, want ErrReadOnly", err)
	}
	deadline := time.Now().Add(time.Minute)
	got := make([]bool, len(chans))
	for !all(got) && time.Now().Before(deadline) {
		if _, err := st.Refresh(ctx, store.ViewMetrics, false); err != nil {
			t.Fatalf("refresh: %v", err)
		}
		for i, c := range chans {
		drain:
			for {
				select {
				case ev := <-c:
					if ev.View == store.ViewMetrics && ev.Status == "ok" {
						got[i] = true
					}
				case <-time.After(200 * time.Millisecond):
					break drain
				}
			}
		}
	}
	if !all(got) {
		t.Fatalf("refresh event reached %v of the subscribers", got)
	}
	if _, err := h.Overview(ctx, store.Window24h); err != nil {
		t.Fatal(err)
	}
	if n := h.Stats()["overview"]; n != 2 {
		t.Fatalf("after a refresh event the overview was read %d times in all, want 2", n)
	}
	lcancel()
	lwg.Wait()
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers left after every session ended", n)
	}
}

// A result is fresh for the interval's slot, then read again.
func TestInterval(t *testing.T) {
	st := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// An hour's slot: five reads in a row are in it, unless they straddle
	// the hour (then the slot rule reads twice).
	hh := hub.New(ctx, st, time.Hour, nil)
	defer hh.Close()
	hourOf := func(t time.Time) int64 { return t.UnixNano() / int64(time.Hour) }
	from := time.Now()
	for range 5 {
		if _, err := hh.Views(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := int64(1 + hourOf(time.Now()) - hourOf(from))
	if n := hh.Stats()["views"]; n != want {
		t.Fatalf("views read %d times within the interval, want %d", n, want)
	}
	h := hub.New(ctx, st, 300*time.Millisecond, nil)
	defer h.Close()
	if _, err := h.Views(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, _ = h.Views(ctx)
		return h.Stats()["views"] == 2
	}, "a second read after the interval")

	// A dashboard polling once per interval reads every time: freshness
	// counts from a read's start, so its own previous result is never
	// mistaken for fresh (one viewer must cost what it would alone).
	before := h.Stats()["running"]
	for range 4 {
		if _, err := h.Running(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(h.Interval()) // the poll period under test
	}
	if n := h.Stats()["running"] - before; n != 4 {
		t.Fatalf("4 polls one interval apart made %d reads, want 4", n)
	}
}

func all(b []bool) bool {
	for _, v := range b {
		if !v {
			return false
		}
	}
	return true
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A failed read is cached and shared like a result (issue 23.1: a read
// denied to a reader-only login was retried by every session on every
// poll): twenty sessions asking at once, and asking again, cost one
// database read until a refresh event; the back-off grows while the key
// keeps failing (TestBackoffGrows).
func TestFailedReadsShared(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Every read of a schema that is not there fails.
	db := pgtest.NewDatabase(t)
	denied := store.New(db.Pool, nil, store.Options{Schema: "no_such_schema"})
	h := hub.New(ctx, denied, time.Hour, nil)
	defer h.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 2 {
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := h.Client(true).Views(ctx)
				errs <- err
			}()
		}
		wg.Wait()
	}
	close(errs)
	for err := range errs {
		if err == nil {
			t.Fatal("a read of a schema that does not exist succeeded")
		}
	}
	if n := h.Stats()["views"]; n != 1 {
		t.Fatalf("40 failing reads went to the database %d times, want 1", n)
	}
	h.Invalidate()
	if _, err := h.Views(ctx); err == nil {
		t.Fatal("the read after an event succeeded")
	}
	if n := h.Stats()["views"]; n != 2 {
		t.Fatalf("after an event: %d reads, want 2", n)
	}
}
