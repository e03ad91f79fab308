package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/meshtop/meshtop/data/install"
)

// walGroup measures change capture from the WAL (issue #26) on d (1M runs
// in 30 days), each figure a ratio of A/B runs alternated in pairs:
//
//  1. saturated pgbench, MeshHook-shaped (sql/bench/meshhook_tx.pgbench):
//     WAL capture installed and its slot consumed every refresh-every
//     (S.capture_consume(): decoded into the dirty-key logs, on this
//     machine) vs nothing installed; the triggers vs nothing beside it;
//  2. p99 statement latency at a throttled rate (pgbench -R) with WAL
//     capture vs nothing;
//  3. WAL bytes per MeshHook run with workflow_runs' replica identity FULL
//     vs DEFAULT (the alternative to the move trigger, docs/REFRESH.md);
//  4. freshness: runs committed at 4/s, the time until each is counted in
//     mv_workflow_metrics (what status --json shows), and the refreshing
//     backend's CPU, with a refresh every walEvery, for both modes; and a
//     refresh with nothing changed one cadence later.
func (b *runner) walGroup(ctx context.Context, d *dataset) error {
	logf("wal capture on %s: %d pairs of %ds pgbench runs, %d clients", d.Label, b.cfg.pairs, b.cfg.walSeconds, b.cfg.pgbenchClients)
	script, err := filepath.Abs(pgbenchScript)
	if err != nil {
		return err
	}
	var nwf int
	if err := d.Pool.QueryRow(ctx, "select count(*) from meshtop_bench.wf").Scan(&nwf); err != nil {
		return fmt.Errorf("counting benchmark workflows: %w", err)
	}
	dir, err := os.MkdirTemp("", "meshtop-bench-wal-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if _, err := d.Pool.Exec(ctx, "select public.meshhook_ensure_event_partitions(now() - interval '1 day', now() + interval '2 days')"); err != nil {
		return err
	}
	// Each side starts from the same data (what pgbench wrote removed, the
	// tables vacuumed) but not from a refreshed rollup: the pairs measure
	// writes, and a rebuild after every side (the capture triggers dropped
	// on the "nothing" side make the next refresh one) made a pair take ten
	// minutes at 1M runs. The freshness runs below rebuild once first.
	b.noSettle = true
	defer func() { b.periodic, b.rate, b.noSettle = "", 0, false }()

	// 1. Saturated throughput.
	consume := "select * from " + b.schema + ".capture_consume()"
	type side struct {
		mode     string
		periodic string // run every refresh-every during pgbench ("" none)
	}
	pairsOf := func(a, c side, tag string, rate int) ([]Pair, []Pair, []float64, error) {
		var tps, p99 []Pair
		var cpu []float64
		b.rate = rate
		for i := 0; i < b.cfg.pairs; i++ {
			var p, q Pair
			order := []side{a, c}
			if i%2 == 1 {
				order = []side{c, a}
			}
			for _, s := range order {
				if err := b.captureMode(ctx, d, s.mode); err != nil {
					return nil, nil, nil, err
				}
				b.periodic = s.periodic
				r, err := b.pgbenchFromSameData(ctx, d, script, dir, fmt.Sprintf("%s%d_%s", tag, i, s.mode), nwf, b.cfg.walSeconds, s.periodic != "")
				if err != nil {
					return nil, nil, nil, err
				}
				tps := r.SteadyTPS
				if tps == 0 {
					tps = r.TPS
				}
				if s == a {
					p.A, q.A = tps, r.P99Ms
				} else {
					p.B, q.B = tps, r.P99Ms
					if r.RefreshCPU >= 0 {
						cpu = append(cpu, r.RefreshCPU)
					}
				}
			}
			tps, p99 = append(tps, p), append(p99, q)
			logf("  %s pair %d: %s %.0f tps p99 %.1f ms; %s %.0f tps p99 %.1f ms", tag, i+1, a.mode, p.A, q.A, c.mode, p.B, q.B)
		}
		return tps, p99, cpu, nil
	}
	none, wal, trig := side{mode: "none"}, side{mode: "wal", periodic: consume}, side{mode: "triggers"}
	tps, _, cpu, err := pairsOf(none, wal, "w", 0)
	if err != nil {
		return err
	}
	r := Summarise(tps, false)
	note := fmt.Sprintf("pgbench -M prepared -c %d -j 2 -T %d, unthrottled; the slot consumed by S.capture_consume() every %s (decoded into the dirty-key logs on this machine); transactions counted from %s after the start to %s before the end (pgbench's per-transaction logs), where each consume reads %s of writes as in steady state",
		b.cfg.pgbenchClients, b.cfg.walSeconds, b.cfg.refreshEvery, b.cfg.refreshEvery/2, b.cfg.refreshEvery/2, b.cfg.refreshEvery)
	if len(cpu) > 0 {
		note += fmt.Sprintf("; the consuming backend used a median %.2f CPU-seconds per run, %.1f%% of the %d cores", Median(cpu),
			100*Median(cpu)/(float64(b.cfg.walSeconds)*float64(runtime.NumCPU())), runtime.NumCPU())
	}
	b.report.Add(Figure{Group: "WAL capture", Name: "Throughput (transactions/s), WAL capture consumed every " + b.cfg.refreshEvery.String() + ", " + d.Label,
		Pair: "WAL capture / nothing installed", Unit: "tps", Ratio: r, Goal: "≥ 0.97", Met: boolp(r.Median >= 0.97), Note: note})
	tps, _, _, err = pairsOf(none, trig, "t", 0)
	if err != nil {
		return err
	}
	r = Summarise(tps, false)
	b.report.Add(Figure{Group: "WAL capture", Name: "Throughput (transactions/s), capture triggers, " + d.Label,
		Pair: "triggers / nothing installed", Unit: "tps", Ratio: r, Goal: "reported (beside WAL capture)"})

	// 2. p99 latency at a throttled rate.
	_, p99, _, err := pairsOf(none, wal, "r", b.cfg.walRate)
	if err != nil {
		return err
	}
	r = Summarise(p99, false)
	b.report.Add(Figure{Group: "WAL capture", Name: fmt.Sprintf("p99 transaction latency at %d transactions/s (pgbench -R), %s", b.cfg.walRate, d.Label),
		Pair: "WAL capture / nothing installed", Unit: "ms", Ratio: r, Goal: "≤ 1.02×", Met: boolp(r.Median <= 1.02),
		Note: "p99 of every transaction in pgbench's per-transaction logs; one transaction is one MeshHook run (6 statements, each committing)"})
	b.rate, b.periodic = 0, ""

	// 3. WAL per run, replica identity FULL vs DEFAULT.
	var walPairs []Pair
	for i := 0; i < b.cfg.pairs; i++ {
		var p Pair
		for j, ident := range []string{"default", "full"} {
			if i%2 == 1 {
				ident = []string{"full", "default"}[j]
			}
			bytes, err := b.walPerRun(ctx, d, script, nwf, ident)
			if err != nil {
				return err
			}
			if ident == "default" {
				p.A = bytes
			} else {
				p.B = bytes
			}
		}
		walPairs = append(walPairs, p)
		logf("  WAL per run: default %.0f B, full %.0f B", p.A, p.B)
	}
	b.report.Add(Figure{Group: "WAL capture", Name: "WAL bytes per MeshHook run, workflow_runs' replica identity (FULL: the alternative not taken, docs/REFRESH.md)",
		Pair: "FULL / DEFAULT", Unit: "B", Ratio: Summarise(walPairs, false), Goal: "reported",
		Note: "pg_current_wal_lsn() difference over 2,000 runs of the pgbench script, one client; full_page_writes as the server has it; meshtop leaves the identity as it is (DEFAULT here)"})

	// 4. Freshness, both modes.
	for _, mode := range []string{"wal", "triggers"} {
		if err := b.captureMode(ctx, d, mode); err != nil {
			return err
		}
		f, err := b.freshness(ctx, d, b.cfg.walEvery, b.cfg.walFreshFor)
		if err != nil {
			return err
		}
		logf("  freshness (%s): p50 %.2f s, p99 %.2f s, refreshing CPU %.1f%% of a core, %d runs; nothing-changed refresh %.0f ms",
			mode, f.p50, f.p99, 100*f.cpuShare, f.n, f.idleMs)
		b.report.Add(Figure{Group: "WAL capture", Name: fmt.Sprintf("freshness, %s capture, refresh every %s, 4 runs/s, %s", mode, b.cfg.walEvery, d.Label),
			Pair: "commit → counted in mv_workflow_metrics (status --json)", Unit: "s",
			Ratio: Ratio{N: f.n, Median: f.p50, Min: f.p50, Max: f.p99},
			Value: fmt.Sprintf("p50 **%.2f s**, p99 **%.2f s** (n=%d); refreshing CPU **%.1f%%** of a core", f.p50, f.p99, f.n, 100*f.cpuShare),
			Goal:  "p50 ≤ 5 s, p99 ≤ 15 s, CPU ≤ 2% of a core", Met: boolp(f.p50 <= 5 && f.p99 <= 15 && f.cpuShare <= 0.02),
			Note: fmt.Sprintf("median (min column) p50 %.2f s, (max column) p99 %.2f s over %d runs; the refreshing backend used %.1f%% of one core; a refresh of all views with nothing changed, one cadence after the last, took %.0f ms",
				f.p50, f.p99, f.n, 100*f.cpuShare, f.idleMs)})
	}
	return b.captureMode(ctx, d, "triggers")
}

// captureMode puts d's change capture in mode: "wal", "triggers", or
// "none" (no trigger, no slot: meshtop's capture not installed).
func (b *runner) captureMode(ctx context.Context, d *dataset, mode string) error {
	in := install.New(d.Pool, b.cfg.schema)
	in.SetCapture(install.CaptureTriggers)
	if mode == "wal" {
		in.SetCapture(install.CaptureWAL)
	}
	if _, err := in.Apply(ctx, nil); err != nil {
		return fmt.Errorf("capture %s: %w", mode, err)
	}
	// 020_capture again: the statement-level triggers (and the row-level
	// ones outside WAL capture), which "none" drops.
	if err := b.setCapture(ctx, d, true); err != nil {
		return err
	}
	switch mode {
	case "none":
		return b.setCapture(ctx, d, false)
	case "wal":
		// The disabled row-level triggers dropped (nothing runs now).
		for i := 0; i < 50; i++ {
			var did string
			if err := d.Pool.QueryRow(ctx, "select coalesce("+b.schema+".capture_ensure(), '')").Scan(&did); err != nil {
				return err
			}
			if did != "retry" {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// walPerRun is the WAL written per run of the pgbench script (one client,
// 2,000 runs) with workflow_runs' replica identity ident.
func (b *runner) walPerRun(ctx context.Context, d *dataset, script string, nwf int, ident string) (float64, error) {
	if _, err := d.Pool.Exec(ctx, "alter table public.workflow_runs replica identity "+ident); err != nil {
		return 0, err
	}
	defer func() { _, _ = d.Pool.Exec(ctx, "alter table public.workflow_runs replica identity default") }()
	var before string
	if err := d.Pool.QueryRow(ctx, "select pg_current_wal_lsn()::text").Scan(&before); err != nil {
		return 0, err
	}
	const runs = 2000
	cmd := exec.CommandContext(ctx, filepath.Join(b.srv.BinDir, "pgbench"), "-n", "-M", "prepared", "-c", "1", "-t", strconv.Itoa(runs),
		"-D", "nwf="+strconv.Itoa(nwf), "-f", script, "-h", "127.0.0.1", "-p", strconv.Itoa(b.srv.Port), "-U", "postgres", d.DB)
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	var bytes float64
	if err := d.Pool.QueryRow(ctx, "select (pg_current_wal_lsn() - $1::pg_lsn)::float8", before).Scan(&bytes); err != nil {
		return 0, err
	}
	return bytes / runs, nil
}

type freshnessResult struct {
	p50, p99 float64 // seconds from commit to counted in the view
	n        int
	cpuShare float64 // the refreshing backend's CPU, share of one core
	idleMs   float64 // a refresh with nothing changed, one cadence later
}

// freshness writes one finished run every 250 ms (4 runs/s) into one
// workflow for dur, refreshes every `every` on one connection, and polls
// the workflow's 1h run count in mv_workflow_metrics every 100 ms.
func (b *runner) freshness(ctx context.Context, d *dataset, every, dur time.Duration) (freshnessResult, error) {
	var res freshnessResult
	var wf, project string
	if err := d.Pool.QueryRow(ctx, "select id::text, project_id::text from meshtop_bench.wf where n = 1").Scan(&wf, &project); err != nil {
		return res, err
	}
	count := func() (int64, error) {
		var n int64
		err := d.Pool.QueryRow(ctx, `select coalesce(sum(execution_count), 0)::bigint from `+b.schema+`.mv_workflow_metrics where workflow_id = $1 and "window" = '1h'`, wf).Scan(&n)
		return n, err
	}
	if _, err := d.Pool.Exec(ctx, "call "+b.schema+".refresh(null, true)"); err != nil {
		return res, err
	}
	base, err := count()
	if err != nil {
		return res, err
	}
	conn, err := d.Pool.Acquire(ctx)
	if err != nil {
		return res, err
	}
	defer conn.Release()
	pid := int(conn.Conn().PgConn().PID())
	cpu0, cpuErr := cpuSeconds(pid)

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	var committed []time.Time
	var refreshErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the refresher
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if _, err := conn.Exec(rctx, "call "+b.schema+".refresh()"); err != nil && rctx.Err() == nil {
				mu.Lock()
				refreshErr = err
				mu.Unlock()
				return
			}
			select {
			case <-rctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	wctx, stopWriter := context.WithTimeout(rctx, dur)
	defer stopWriter()
	go func() { // the writer
		defer wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for wctx.Err() == nil {
			_, err := d.Pool.Exec(wctx, `insert into public.workflow_runs (project_id, workflow_id, status, started_at, finished_at)
values ($1, $2, 'succeeded', now() - interval '2 seconds', now())`, project, wf)
			if err == nil {
				mu.Lock()
				committed = append(committed, time.Now())
				mu.Unlock()
			}
			select {
			case <-wctx.Done():
			case <-tick.C:
			}
		}
	}()
	var lat []float64
	seen := 0
	deadline := time.Now().Add(dur + 60*time.Second)
	for time.Now().Before(deadline) {
		n, err := count()
		if err != nil {
			return res, err
		}
		now := time.Now()
		mu.Lock()
		for seen < len(committed) && int64(seen) < n-base {
			lat = append(lat, now.Sub(committed[seen]).Seconds())
			seen++
		}
		done := wctx.Err() != nil && seen == len(committed)
		mu.Unlock()
		if done {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(deadline.Add(-dur - 60*time.Second))
	stop()
	wg.Wait()
	if refreshErr != nil {
		return res, refreshErr
	}
	if cpuErr == nil {
		if cpu1, err := cpuSeconds(pid); err == nil {
			res.cpuShare = (cpu1 - cpu0) / elapsed.Seconds()
		}
	}
	sort.Float64s(lat)
	res.n = len(lat)
	res.p50, res.p99 = Percentile(lat, 50), Percentile(lat, 99)
	// Nothing changed, one cadence later.
	time.Sleep(every)
	t0 := time.Now()
	if _, err := d.Pool.Exec(ctx, "call "+b.schema+".refresh(null, true)"); err != nil {
		return res, err
	}
	res.idleMs = float64(time.Since(t0).Microseconds()) / 1000
	return res, nil
}
