package serve_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meshtop/meshtop/cmd/meshtop/internal/serve"
	"github.com/meshtop/meshtop/data/store"
)

type logRow struct {
	id      int64
	started time.Time
	status  string
	app     string
}

// refreshesOf reads the refresh log of one view since a point in time.
func refreshesOf(t *testing.T, e env, view string, since time.Time) []logRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := e.db.Pool.Query(ctx, `select id, started_at, status, coalesce(application_name, '')
		from metrics.refresh_log where view_name = $1 and started_at >= $2 order by id`, view, since)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []logRow
	for rows.Next() {
		var r logRow
		if err := rows.Scan(&r.id, &r.started, &r.status, &r.app); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// Two instances on one database: exactly one refreshes each interval; when
// the leader's lock backend is terminated, or the leader stops, the other
// takes over within two intervals.
func TestLeaderElection(t *testing.T) {
	e := setup(t)
	const every = 2 * time.Second // a refresh under a loaded machine takes a good part of a second
	since := time.Now()
	a := start(t, e, serve.Config{Instance: "alpha", RefreshEvery: every})
	b := start(t, e, serve.Config{Instance: "beta", RefreshEvery: every})

	leaderOf := func() (leader, other *running, name string) {
		la, _ := a.srv.Scheduler().Leader()
		lb, _ := b.srv.Scheduler().Leader()
		switch {
		case la && lb:
			t.Fatal("both instances are leader")
		case la:
			return a, b, "alpha"
		case lb:
			return b, a, "beta"
		}
		return nil, nil, ""
	}
	waitFor(t, 30*time.Second, "a leader", func() bool { l, _, _ := leaderOf(); return l != nil })

	// Several intervals.
	waitFor(t, 30*time.Second, "six refreshes", func() bool { return len(refreshesOf(t, e, store.ViewMetrics, since)) >= 6 })
	_, _, name := leaderOf()
	rows := refreshesOf(t, e, store.ViewMetrics, since)
	checkCadence(t, rows, every, "steady state")
	for _, r := range rows {
		if !strings.Contains(r.app, name) {
			t.Errorf("refresh %d by %q: want the leader %s", r.id, r.app, name)
		}
	}

	// Terminate the leader's lock backend.
	leader, other, name := leaderOf()
	_, pid := leader.srv.Scheduler().Leader()
	killed := time.Now()
	if _, err := e.db.Pool.Exec(context.Background(), "select pg_terminate_backend($1)", int32(pid)); err != nil {
		t.Fatal(err)
	}
	otherName := map[string]string{"alpha": "beta", "beta": "alpha"}[name]
	waitFor(t, 2*every+5*time.Second, "the other instance to lead", func() bool {
		ok, _ := other.srv.Scheduler().Leader()
		return ok
	})
	waitFor(t, 30*time.Second, "the new leader's refreshes", func() bool {
		rs := refreshesOf(t, e, store.ViewMetrics, killed)
		return len(rs) >= 3 && strings.Contains(rs[len(rs)-1].app, otherName)
	})
	after := refreshesOf(t, e, store.ViewMetrics, since)
	checkCadence(t, after, every, "across a terminated backend")
	first := firstBy(refreshesOf(t, e, store.ViewMetrics, killed), otherName)
	if first.IsZero() || first.Sub(killed) > 2*every {
		t.Errorf("the new leader first refreshed %v after the old one's backend was terminated; want within two intervals (%v)", first.Sub(killed), 2*every)
	}

	// Stop the new leader's process: the first instance takes over again.
	newLeader, survivor := other, leader
	stopped := time.Now()
	newLeader.stop(t)
	waitFor(t, 30*time.Second, "refreshes after the leader stopped", func() bool {
		rs := refreshesOf(t, e, store.ViewMetrics, stopped)
		return len(rs) >= 2 && strings.Contains(rs[len(rs)-1].app, name)
	})
	first = firstBy(refreshesOf(t, e, store.ViewMetrics, stopped), name)
	if first.Sub(stopped) > 2*every {
		t.Errorf("after the leader stopped the other refreshed %v later; want within two intervals", first.Sub(stopped))
	}
	checkCadence(t, refreshesOf(t, e, store.ViewMetrics, since), every, "across a stopped leader")
	if !strings.Contains(survivor.log.String(), "now refreshes the views") {
		t.Errorf("the survivor never logged its leadership:\n%s", survivor.log.String())
	}
	survivor.stop(t)
}

// checkCadence: no attempt skipped (a second refresher would have been
// logged as skipped; the newest may still run, and a stopped leader's last
// one is cancelled: failed) and consecutive starts about one interval
// apart: never two in one interval, never a gap of two.
func checkCadence(t *testing.T, rows []logRow, every time.Duration, when string) {
	t.Helper()
	sort.Slice(rows, func(i, j int) bool { return rows[i].started.Before(rows[j].started) })
	for i, r := range rows {
		if r.status == "skipped" || (r.status == "running" && i != len(rows)-1) {
			t.Errorf("%s: refresh %d by %s: %s", when, r.id, r.app, r.status)
		}
		if i == 0 {
			continue
		}
		gap := r.started.Sub(rows[i-1].started)
		if gap < every/2 || gap > 2*every {
			t.Errorf("%s: refreshes %d (%s) and %d (%s) are %v apart; want about %v", when, rows[i-1].id, rows[i-1].app, r.id, r.app, gap, every)
		}
	}
}

func firstBy(rows []logRow, name string) time.Time {
	for _, r := range rows {
		if strings.Contains(r.app, name) {
			return r.started
		}
	}
	return time.Time{}
}
