package store_test

import (
	"strings"
	"testing"

	"github.com/meshtop/meshtop/data/conn"
	"github.com/meshtop/meshtop/data/store"
)

// A refresh with an actor logs it as application_name (and nothing else
// changes); the pooled connections go back to their own name after.
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
	for i, r := range log {
		if got := r.ApplicationName.String(); got != want[i] {
			t.Errorf("log row %d: application_name %q, want %q", r.ID, got, want[i])
		}
	}
	for range 2 { // every pooled connection, held at once
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		var name string
		if err := c.QueryRow(ctx, "select current_setting('application_name')").Scan(&name); err != nil || name != "meshtop serve A" {
			t.Errorf("a pooled connection is named %q (%v), want its own name back", name, err)
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
