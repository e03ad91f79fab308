package tui_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshtop/meshtop/data/conn"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
	"github.com/meshtop/meshtop/tui"
)

// counted wraps a Source and counts the calls and errors of each read.
type counted struct {
	tui.Source
	mu    sync.Mutex
	calls map[string]int
	errs  []string
}

func (c *counted) note(name string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[name]++
	if err != nil {
		c.errs = append(c.errs, name+": "+err.Error())
	}
}

func (c *counted) snapshot() (map[string]int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls := map[string]int{}
	for k, v := range c.calls {
		calls[k] = v
	}
	return calls, append([]string(nil), c.errs...)
}

func (c *counted) Overview(ctx context.Context, w store.Window) (store.Overview, error) {
	ov, err := c.Source.Overview(ctx, w)
	c.note("Overview", err)
	return ov, err
}

func (c *counted) Workflow(ctx context.Context, id string, w store.Window) (store.WorkflowDetail, error) {
	d, err := c.Source.Workflow(ctx, id, w)
	c.note("Workflow", err)
	return d, err
}

func (c *counted) Views(ctx context.Context) ([]store.ViewStatus, error) {
	v, err := c.Source.Views(ctx)
	c.note("Views", err)
	return v, err
}

func (c *counted) RefreshLog(ctx context.Context, limit int) ([]store.RefreshLogEntry, error) {
	l, err := c.Source.RefreshLog(ctx, limit)
	c.note("RefreshLog", err)
	return l, err
}

func (c *counted) Listen(ctx context.Context, out chan<- store.RefreshEvent) error {
	err := c.Source.Listen(ctx, out)
	c.note("Listen", err)
	return err
}

// TestFlowTransactionPooler runs the dashboard on a store opened through
// PgBouncer in transaction mode: the overview fills and keeps polling (40
// polls at 100 ms, every one successful), detail and console load, the
// badge and the one line say what the pooler means, refresh is refused
// without touching the database, and LISTEN is never tried.
func TestFlowTransactionPooler(t *testing.T) {
	t.Parallel()
	e := setup(t, pgtest.NewDatabase(t), true)
	ctx := ctxT(t)
	pool, pooling, err := conn.OpenDetect(ctx, conn.Options{DSN: pgtest.PgBouncer(t, "transaction").DSN(e.db.Name)})
	if err != nil {
		t.Fatalf("opening through the pooler: %v", err)
	}
	t.Cleanup(pool.Close)
	if pooling != conn.TransactionPooler {
		t.Fatalf("pooling %v, want %v", pooling, conn.TransactionPooler)
	}
	st := store.New(pool, nil, store.Options{Schema: schema, TransactionPooler: true})
	src := &counted{Source: normalised{st}, calls: map[string]int{}}
	o := options(src, e.in)
	o.Pooler = true
	o.Interval = 100 * time.Millisecond
	tm := start(t, o)
	const line = "through a transaction pooler: refresh, cancel, install and LISTEN need a session — use port 5432"
	waitText(t, tm, "data as of", "TRANSACTION POOLER: READS ONLY", line)

	const polls = 40
	deadline := time.Now().Add(2 * time.Minute)
	for {
		calls, errs := src.snapshot()
		if len(errs) > 0 {
			t.Fatalf("a read through the pooler failed: %s", strings.Join(errs, "; "))
		}
		if calls["Overview"] >= polls {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d overview polls in 2 minutes, want %d", calls["Overview"], polls)
		}
		time.Sleep(20 * time.Millisecond)
	}

	press(tm, "enter")
	waitText(t, tm, "Step (node)")
	press(tm, "tab")
	waitText(t, tm, "Recent", "no refresh running · refreshing needs a session: use the direct or session-pooler URL, port 5432")
	press(tm, "R")
	// The refusal shows, and stays while the polls go on (a successful poll
	// clears only a failed read's error: with polls every 100 ms one could
	// land before the refusal was ever drawn).
	waitText(t, tm, "error: "+line)
	before, _ := src.snapshot()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if now, _ := src.snapshot(); now["Overview"] >= before["Overview"]+5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no overview polls after the refusal")
		}
	}
	calls, errs := src.snapshot()
	view := quitAndView(t, tm)
	if !strings.Contains(view, "error: "+line) {
		t.Errorf("the refusal was wiped by the polls after it:\n%s", view)
	}
	if len(errs) > 0 {
		t.Fatalf("a read through the pooler failed: %s", strings.Join(errs, "; "))
	}
	if calls["Workflow"] == 0 || calls["Views"] == 0 || calls["RefreshLog"] == 0 {
		t.Fatalf("detail or console never read: %v", calls)
	}
	if calls["Listen"] != 0 {
		t.Fatalf("the dashboard tried LISTEN through a transaction pooler %d time(s)", calls["Listen"])
	}
	if strings.Contains(view, "refresh all") {
		t.Fatalf("the dashboard still offers refreshing through a transaction pooler:\n%s", view)
	}
	log, err := e.st.RefreshLog(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 3 {
		t.Fatalf("the refresh log has %d entries, want the 3 of setup: R was not refused", len(log))
	}
	if locks := e.db.AdvisoryLocks(t); locks != 0 {
		t.Fatalf("%d advisory lock(s) left on the server", locks)
	}
}

// TestFlowTransactionPoolerNoInstall: on a database without the views,
// reached through a transaction pooler, the dashboard does not offer to
// install (even with an installer) and says where to install from.
func TestFlowTransactionPoolerNoInstall(t *testing.T) {
	t.Parallel()
	e := setupUninstalled(t, pgtest.NewDatabase(t))
	ctx := ctxT(t)
	pool, _, err := conn.OpenDetect(ctx, conn.Options{DSN: pgtest.PgBouncer(t, "transaction").DSN(e.db.Name)})
	if err != nil {
		t.Fatalf("opening through the pooler: %v", err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool, nil, store.Options{Schema: schema, TransactionPooler: true})
	o := options(normalised{st}, e.in)
	o.Pooler = true
	tm := start(t, o)
	waitText(t, tm, "Installing needs a server session", "TRANSACTION POOLER: READS ONLY")
	press(tm, "y", "enter")
	view := quitAndView(t, tm)
	if !strings.Contains(view, "session-pooler URL, port 5432") {
		t.Fatalf("the install screen does not say where to install from:\n%s", view)
	}
	installed, err := e.st.Installed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if installed {
		t.Fatal("the dashboard installed through a transaction pooler")
	}
}
