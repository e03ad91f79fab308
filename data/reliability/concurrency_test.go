package reliability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgtest"
	"github.com/meshtop/meshtop/data/store"
)

const (
	concurrentCallers  = 10
	concurrentDuration = 30 * time.Second
	// minSamples is how many samples of the server the checks need at least.
	minSamples = 100
	// trafficLockBound is meshtop's default lock_timeout: MeshHook's writes
	// must never wait longer than that for a lock.
	trafficLockBound = 5 * time.Second
)

type callRecord struct {
	view string
	wait bool
	res  []store.RefreshResult
	err  error
}

// TestConcurrentRefreshes runs 10 refresh callers (all views or one, with
// and without wait) against live MeshHook traffic for 30 s, sampling the
// server every 50 ms.
func TestConcurrentRefreshes(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t)
	ctx := ctxT(t, 10*time.Minute) // a hang guard, not a timing assertion
	if _, err := fixture.Generate(ctx, db.Pool, fixture.Spec{Seed: 3, Projects: 3, Workflows: 15, Runs: 4000, Days: 30, Events: true}); err != nil {
		t.Fatal(err)
	}
	const schema = "metrics"
	if _, err := install.New(db.Pool, schema).Apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	st := store.New(db.Pool, nil, store.Options{Schema: schema, QueryTimeout: 30 * time.Second})
	if _, err := st.Refresh(ctx, "", false); err != nil {
		t.Fatal(err)
	}
	startID, err := maxLogID(ctx, db.Pool, schema)
	if err != nil {
		t.Fatal(err)
	}

	// Live traffic on its own pool, recognisable in pg_stat_activity; a
	// statement of it blocked longer than the lock bound fails the run.
	tcfg, err := pgxpool.ParseConfig(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	tcfg.ConnConfig.RuntimeParams["application_name"] = "reliability_traffic"
	tpool, err := pgxpool.NewWithConfig(ctx, tcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tpool.Close()
	traffic := fixture.NewTraffic(tpool, fixture.TrafficSpec{
		RatePerSec: 20, Seed: 5, MaxDuration: 5 * time.Second, StatementTimeout: trafficLockBound,
	})
	// The run lasts concurrentDuration, and longer if the sampler has not yet
	// seen enough by then (it samples every 50 ms, but each sample is two
	// queries, slow on a loaded machine): the checks below need the samples.
	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var sampled, sawRunning atomic.Int64
	go func() {
		t0 := time.Now()
		for time.Since(t0) < concurrentDuration || sampled.Load() < minSamples || sawRunning.Load() == 0 {
			select {
			case <-runCtx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		stopAll()
	}()
	trafficErr := make(chan error, 1)
	go func() { trafficErr <- traffic.Run(runCtx) }()

	// Sampler: per view, how many backends are inside refresh_run for it,
	// and how many hold its refresh lock; and how long traffic waits on locks.
	type sample struct {
		running, lockers map[string]int
		trafficWait      time.Duration
	}
	var samples []sample
	samplerDone := make(chan error, 1)
	go func() {
		conn, err := pgx.Connect(ctx, db.DSN)
		if err != nil {
			samplerDone <- err
			return
		}
		defer conn.Close(context.Background())
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-runCtx.Done():
				samplerDone <- nil
				return
			case <-tick.C:
			}
			s := sample{running: map[string]int{}, lockers: map[string]int{}}
			rows, err := conn.Query(ctx, fmt.Sprintf(`
				select 'run', l.view_name, count(distinct a.pid)
				from pg_stat_activity a join %[1]s.refresh_log l on l.pid = a.pid and l.status = 'running'
				where a.datname = current_database() and a.state = 'active' and a.query ilike '%%refresh_run%%'
				group by l.view_name
				union all
				select 'lock', c.relname, count(distinct k.pid)
				from pg_locks k join pg_class c on c.oid = k.relation
				where k.granted and k.mode in ('ExclusiveLock', 'AccessExclusiveLock')
				  and c.relnamespace = %[2]s::regnamespace and c.relkind = 'm'
				group by c.relname`, qident(schema), "'"+schema+"'"))
			if err != nil {
				if runCtx.Err() != nil {
					samplerDone <- nil
					return
				}
				samplerDone <- err
				return
			}
			for rows.Next() {
				var kind, view string
				var n int
				if err := rows.Scan(&kind, &view, &n); err != nil {
					samplerDone <- err
					return
				}
				if kind == "run" {
					s.running[view] = n
				} else {
					s.lockers[view] = n
				}
			}
			if err := rows.Err(); err != nil && runCtx.Err() == nil {
				samplerDone <- err
				return
			}
			var wait float64
			if err := conn.QueryRow(ctx, `select coalesce(extract(epoch from max(now() - query_start)), 0)
				from pg_stat_activity where application_name = 'reliability_traffic' and wait_event_type = 'Lock'`).Scan(&wait); err != nil && runCtx.Err() == nil {
				samplerDone <- err
				return
			}
			s.trafficWait = time.Duration(wait * float64(time.Second))
			samples = append(samples, s)
			sampled.Add(1)
			if len(s.running) > 0 {
				sawRunning.Add(1)
			}
		}
	}()

	// The callers.
	choices := append([]string{""}, views...)
	var mu sync.Mutex
	var calls []callRecord
	var wg sync.WaitGroup
	for i := range concurrentCallers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			for runCtx.Err() == nil {
				c := callRecord{view: choices[rng.IntN(len(choices))], wait: rng.IntN(3) == 0}
				// Each call runs to its end (a cancelled caller is another
				// test); only the loop stops at the deadline.
				c.res, c.err = st.Refresh(ctx, c.view, c.wait)
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
				time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if err := <-samplerDone; err != nil {
		t.Fatalf("sampler: %v", err)
	}
	if err := <-trafficErr; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("MeshHook traffic failed (a statement blocked longer than %s?): %v", trafficLockBound, err)
	}

	// Never two refreshes of one view at once.
	maxRunning, maxLockers := 0, 0
	sawRefresh := 0
	var maxTrafficWait time.Duration
	for _, s := range samples {
		for v, n := range s.running {
			maxRunning = max(maxRunning, n)
			if n > 1 {
				t.Errorf("%d backends refreshing %s at once", n, v)
			}
			sawRefresh++
		}
		for v, n := range s.lockers {
			maxLockers = max(maxLockers, n)
			if n > 1 {
				t.Errorf("%d backends holding the refresh lock of %s at once", n, v)
			}
		}
		maxTrafficWait = max(maxTrafficWait, s.trafficWait)
	}
	if len(samples) < minSamples || sawRefresh == 0 {
		t.Fatalf("the sampler saw too little: %d samples, %d with a refresh running", len(samples), sawRefresh)
	}
	if maxTrafficWait >= trafficLockBound {
		t.Errorf("MeshHook traffic waited %s on a lock (bound %s)", maxTrafficWait, trafficLockBound)
	}

	// No deadlock, no error, no lost log row.
	ids := map[int64]bool{}
	statuses := map[string]int{}
	unknownHolder := 0
	for _, c := range calls {
		if c.err != nil {
			if sqlState(c.err) == "40P01" || strings.Contains(c.err.Error(), "deadlock") {
				t.Errorf("deadlock: %v", c.err)
			} else {
				t.Errorf("refresh(%q, wait=%v): %v", c.view, c.wait, c.err)
			}
		}
		want := 1
		if c.view == "" {
			want = len(views)
		}
		if c.err == nil && len(c.res) != want {
			t.Errorf("refresh(%q) returned %d results, want %d", c.view, len(c.res), want)
		}
		for _, r := range c.res {
			if r.LogID == 0 || ids[r.LogID] {
				t.Errorf("refresh(%q) returned log id %d (zero or duplicate)", c.view, r.LogID)
			}
			ids[r.LogID] = true
			statuses[r.Status]++
			if c.wait && r.Status == "skipped" {
				t.Errorf("refresh(%q, wait) was skipped", c.view)
			}
			if r.Status == "skipped" {
				if !strings.Contains(r.Error.Raw(), "already refreshing") {
					t.Errorf("skipped without saying why: %+v", r)
				}
				if r.HolderPID == 0 {
					// The holder let go between the failed try-lock and the
					// look-up of who held it: "(pid ? since ?)".
					unknownHolder++
				}
			}
			if r.Status == "failed" {
				t.Errorf("refresh of %s failed: %s", r.View, r.Error)
			}
		}
	}
	rows, err := latestLogRows(ctx, db.Pool, schema, startID)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	seen := map[int64]bool{}
	for _, r := range rows {
		seen[r.ID] = true
		if r.State != "ok" && r.State != "skipped" && r.State != "failed" {
			t.Errorf("log row %d of %s is %s after every caller returned", r.ID, r.View, r.State)
		}
		if strings.Contains(r.Error, "deadlock") {
			t.Errorf("log row %d: %s", r.ID, r.Error)
		}
		if !ids[r.ID] {
			t.Errorf("log row %d (%s %s) was returned to no caller", r.ID, r.View, r.State)
		}
	}
	for id := range ids {
		if !seen[id] {
			lost++
			t.Errorf("log id %d returned to a caller is missing from the log", id)
		}
	}

	// The 'ok' refreshes of a view never overlap in time.
	var overlaps int
	if err := db.Pool.QueryRow(ctx, fmt.Sprintf(`select count(*) from (
		select started_at, lag(finished_at) over (partition by view_name order by started_at, id) as prev_end
		from %s.refresh_log where status = 'ok' and id > $1) x
		where started_at < prev_end`, qident(schema)), startID).Scan(&overlaps); err != nil {
		t.Fatal(err)
	}
	if overlaps > 0 {
		t.Errorf("%d 'ok' refreshes started before the previous one of the same view finished", overlaps)
	}
	if err := waitNoRefresh(ctx, db.Pool); err != nil {
		t.Error(err)
	}
	if statuses["ok"] == 0 || statuses["skipped"] == 0 {
		t.Errorf("expected both ok and skipped refreshes, got %v", statuses)
	}
	if traffic.Inserted() == 0 || traffic.Finished() == 0 {
		t.Errorf("traffic inserted %d and finished %d runs; want some of each", traffic.Inserted(), traffic.Finished())
	}
	t.Logf("%d callers for %s: %d calls, log rows %v, %d samples (max %d refreshing / %d lock holders per view), traffic %d runs inserted, %d finished, max lock wait %s, lost %d, skips naming no holder %d",
		concurrentCallers, concurrentDuration, len(calls), statuses, len(samples), maxRunning, maxLockers,
		traffic.Inserted(), traffic.Finished(), maxTrafficWait, lost, unknownHolder)
	report.add("concurrency.callers", concurrentCallers)
	report.add("concurrency.seconds", int64(concurrentDuration/time.Second))
	report.add("concurrency.calls", int64(len(calls)))
	report.add("concurrency.log_rows", int64(len(rows)))
	report.add("concurrency.ok", int64(statuses["ok"]))
	report.add("concurrency.skipped", int64(statuses["skipped"]))
	report.add("concurrency.samples", int64(len(samples)))
	report.add("concurrency.max_refreshing_per_view", int64(maxRunning))
	report.add("concurrency.traffic_runs", traffic.Inserted())
	report.add("concurrency.traffic_max_lock_wait_ms", maxTrafficWait.Milliseconds())
	report.add("rows_lost", int64(lost))
	report.add("concurrency.skips_naming_no_holder", int64(unknownHolder))
}
