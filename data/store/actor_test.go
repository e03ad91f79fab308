package store_test

import (
	"strings"
	"testing"

	"github.com/meshtop/meshtop/data/conn"
	"github.com/meshtop/meshtop/data/store"
)

// A refresh with an actor logs it whole as the row's actor and, cut, as its
// application_name (and nothing else changes); the pooled connections go
// back to their own name after.
func TestRefreshActor(t *testing.T) {
	e := setup(t)
	ctx := ctxT(t)
	pool, err := conn.Open(ctx, conn.Options{DSN: e.db.DSN, ApplicationName: "meshtop serve A", MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st := store.New(pool, nil, store.Options{Schema: schema})
	actor := "meshtop serve: ssh alice SHA256:" + strings.Repeat("x", 43)
	res, err := st.Refresh(store.WithActor(ctx, actor), "", false)
	if err != nil || len(res) != 3 {
		t.Fatalf("refresh: %v %+v", err, res)
	}
	// Without one: the pool's name.
	if _, err := st.Refresh(ctx, store.ViewHourly, false); err != nil {
		t.Fatal(err)
	}
	log, err := st.RefreshLog(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"meshtop serve A", actor[:63], actor[:63], actor[:63]}
	wantActor := []string{"", actor, actor, actor}
	for i, r := range log {
		if got := r.ApplicationName.String(); got != want[i] {
			t.Errorf("log row %d: application_name %q, want %q", r.ID, got, want[i])
		}
		if got := r.Actor.Raw(); got != wantActor[i] {
			t.Errorf("log row %d: actor %q, want %q", r.ID, got, wantActor[i])
		}
	}
	for range 2 { // every pooled connection, held at once
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		var name, who string
		if err := c.QueryRow(ctx, "select current_setting('application_name'), coalesce(current_setting('meshtop.actor', true), '')").Scan(&name, &who); err != nil || name != "meshtop serve A" || who != "" {
			t.Errorf("a pooled connection is named %q with actor %q (%v), want its own name back and no actor", name, who, err)
		}
	}
	var named int
	if err := e.db.Pool.QueryRow(ctx, "select count(*) from pg_stat_activity where application_name like 'meshtop serve: ssh%'").Scan(&named); err != nil || named != 0 {
		t.Errorf("%d backends still named after the actor (%v)", named, err)
	}
}

func TestActorName(t *testing.T) {
	for in, want := range map[string]string{
		"ssh bob":               "ssh bob",
		"ssh é\x1b[31m":         "ssh ??[31m",
		strings.Repeat("a", 80): strings.Repeat("a", 63),
	} {
		if got := store.ActorName(in); got != want {
			t.Errorf("ActorName(%q) = %q, want %q", in, got, want)
		}
	}
}

// A cancel with an actor records who cancelled in the cancelled refresh's
// log row (CanceledBy); one without names the role and application.
func TestCancelActor(t *testing.T) {
	e := setup(t)
	ctx := ctxT(t)
	if _, err := e.db.Pool.Exec(ctx, "update metrics.config set value = '60s' where key = 'lock_timeout'"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ actor, want string }{
		{"ssh bob SHA256:" + strings.Repeat("y", 43), "ssh bob SHA256:" + strings.Repeat("y", 43)},
		{"", "postgres (canceller)"},
	} {
		// A refresh of the steps view waits for a lock held here.
		hold, err := e.db.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hold.Exec(ctx, "comment on materialized view metrics.mv_step_metrics is 'held'"); err != nil {
			t.Fatal(err)
		}
		done := make(chan []store.RefreshResult, 1)
		go func() {
			res, _ := e.st.Refresh(ctx, store.ViewSteps, false)
			done <- res
		}()
		waitFor(t, "the refresh to wait for the lock", func() bool {
			var n int
			_ = e.db.Pool.QueryRow(ctx, "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query like '%refresh_run%'").Scan(&n)
			return n == 1
		})
		pool, err := conn.Open(ctx, conn.Options{DSN: e.db.DSN, ApplicationName: "canceller", MaxConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		cctx := ctx
		if c.actor != "" {
			cctx = store.WithActor(ctx, c.actor)
		}
		if n, err := store.New(pool, nil, store.Options{Schema: schema}).CancelRefresh(cctx, store.ViewSteps); err != nil || n != 1 {
			t.Fatalf("CancelRefresh: %d, %v", n, err)
		}
		pool.Close()
		res := <-done
		_ = hold.Rollback(ctx)
		if len(res) != 1 {
			t.Fatalf("refresh results: %+v", res)
		}
		log, err := e.st.RefreshLog(ctx, 1)
		if err != nil || len(log) != 1 {
			t.Fatal(err)
		}
		if log[0].ID != res[0].LogID || log[0].CanceledBy.Raw() != c.want {
			t.Errorf("cancelled row %d (refresh %d): canceled_by %q, want %q", log[0].ID, res[0].LogID, log[0].CanceledBy.Raw(), c.want)
		}
	}
}
