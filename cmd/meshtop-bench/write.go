package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshtop/meshtop/data/bench"
)

// pgbenchScript is the MeshHook-shaped transaction, read by path (make bench
// runs from the repository root).
const pgbenchScript = "sql/bench/meshhook_tx.pgbench"

// pgbenchResult is one pgbench run.
type pgbenchResult struct {
	TPS   float64
	P99Ms float64
	P50Ms float64
	Txns  int
	// SteadyTPS counts the transactions that ended between half a
	// refresh-every after pgbench started and half a refresh-every before
	// it ended: a window in which a periodic refresh or consume ran once per
	// refresh-every and each read refresh-every of writes, as it does in
	// steady state (over the whole run the first one finds nothing yet and
	// the writes after the last one are never read). 0 when the run is not
	// longer than refresh-every.
	SteadyTPS float64
	Refreshes int       // refreshes started during the run
	RefreshMs []float64 // durations of those that finished before pgbench did
	// RefreshCPU is the CPU time (user+system, seconds) the refreshing
	// backend used while pgbench ran, from /proc/PID/task/*/schedstat (the cluster runs
	// on this machine); -1 when it could not be read.
	RefreshCPU float64
}

// writeImpact runs pgbench with the MeshHook-shaped script without (A) and
// with (B) a CALL S.refresh() every refreshEvery, alternating which goes
// first.
func (b *runner) writeImpact(ctx context.Context, d *dataset) error {
	logf("write impact on %s: %d pairs of %ds pgbench runs, %d clients", d.Label, b.cfg.pairs, b.cfg.pgbenchSeconds, b.cfg.pgbenchClients)
	script, err := filepath.Abs(pgbenchScript)
	if err != nil {
		return err
	}
	if _, err := os.Stat(script); err != nil {
		return fmt.Errorf("the pgbench script %s (run make bench from the repository root): %w", pgbenchScript, err)
	}
	var nwf int
	if err := d.Pool.QueryRow(ctx, "select count(*) from meshtop_bench.wf").Scan(&nwf); err != nil {
		return fmt.Errorf("counting benchmark workflows: %w", err)
	}
	dir, err := os.MkdirTemp("", "meshtop-bench-pgbench-")
	if err != nil {
		return fmt.Errorf("creating a directory for pgbench logs: %w", err)
	}
	defer os.RemoveAll(dir)

	// A short warm-up run (not reported).
	if _, err := b.pgbenchFromSameData(ctx, d, script, dir, "warmup", nwf, 5, false); err != nil {
		return err
	}
	var tps, p99, p50 []Pair
	var refreshes []float64
	var refreshMs []float64
	var refreshCPU []float64 // CPU seconds of the refreshing backend per run
	for i := 0; i < b.cfg.pairs; i++ {
		var without, with pgbenchResult
		order := []bool{false, true}
		if i%2 == 1 {
			order = []bool{true, false}
		}
		for _, withRefresh := range order {
			r, err := b.pgbenchFromSameData(ctx, d, script, dir, fmt.Sprintf("p%d_%t", i, withRefresh), nwf, b.cfg.pgbenchSeconds, withRefresh)
			if err != nil {
				return err
			}
			if withRefresh {
				with = r
			} else {
				without = r
			}
		}
		tps = append(tps, Pair{A: without.TPS, B: with.TPS})
		p99 = append(p99, Pair{A: without.P99Ms, B: with.P99Ms})
		p50 = append(p50, Pair{A: without.P50Ms, B: with.P50Ms})
		refreshes = append(refreshes, float64(with.Refreshes))
		refreshMs = append(refreshMs, with.RefreshMs...)
		if with.RefreshCPU >= 0 {
			refreshCPU = append(refreshCPU, with.RefreshCPU)
		}
		logf("  pair %d: without %.0f tps p99 %.1f ms; with %.0f tps p99 %.1f ms (%d refreshes)",
			i+1, without.TPS, without.P99Ms, with.TPS, with.P99Ms, with.Refreshes)
	}
	rt := Summarise(tps, false)
	note := fmt.Sprintf("pgbench -M prepared -c %d -j 2 -T %d, unthrottled (saturates the machine); %s refreshes started per run (median), those that finished within the run took a median %.0f ms",
		b.cfg.pgbenchClients, b.cfg.pgbenchSeconds, num(Median(refreshes)), Median(refreshMs))
	if len(refreshCPU) > 0 {
		// What the refreshes cost the writers: the CPU the refreshing
		// backend took, as a share of the CPU the machine had in the run.
		cpus := float64(runtime.NumCPU())
		share := Median(refreshCPU) / (float64(b.cfg.pgbenchSeconds) * cpus)
		note += fmt.Sprintf("; the refreshing backend used a median %.1f CPU-seconds per run (its schedstat), %.1f%% of the %.0f cores' %d s, "+
			"which is the throughput an unthrottled, CPU-bound pgbench can be expected to lose", Median(refreshCPU), 100*share, cpus, b.cfg.pgbenchSeconds)
	}
	b.report.Add(Figure{
		Group: "Write impact", Name: "Throughput (transactions/s), " + d.Label,
		Pair: fmt.Sprintf("with refresh every %s / without", b.cfg.refreshEvery), Unit: "tps", Ratio: rt,
		Goal: "≥ 0.97", Met: boolp(rt.Median >= 0.97), Note: note,
	})
	b.report.Add(Figure{
		Group: "Write impact", Name: "p99 transaction latency",
		Pair: "with refresh / without", Unit: "ms", Ratio: Summarise(p99, false),
		Goal: "reported", Note: "p99 of every transaction in pgbench's per-transaction logs (--log)",
	})
	b.report.Add(Figure{
		Group: "Write impact", Name: "p50 transaction latency",
		Pair: "with refresh / without", Unit: "ms", Ratio: Summarise(p50, false),
		Goal: "reported",
	})

	// Change capture alone: the triggers installed vs dropped, no refresh.
	var capture []Pair
	for i := 0; i < b.cfg.pairs; i++ {
		var p Pair
		order := []bool{false, true}
		if i%2 == 1 {
			order = []bool{true, false}
		}
		for _, on := range order {
			if err := b.setCapture(ctx, d, on); err != nil {
				return err
			}
			r, err := b.pgbenchFromSameData(ctx, d, script, dir, fmt.Sprintf("c%d_%t", i, on), nwf, b.cfg.pgbenchSeconds, false)
			if err != nil {
				return err
			}
			if on {
				p.B = r.TPS
			} else {
				p.A = r.TPS
			}
		}
		capture = append(capture, p)
		logf("  capture pair %d: without triggers %.0f tps, with %.0f tps", i+1, p.A, p.B)
	}
	if err := b.setCapture(ctx, d, true); err != nil {
		return err
	}
	rc := Summarise(capture, false)
	b.report.Add(Figure{
		Group: "Write impact", Name: "Throughput (transactions/s) with change capture installed, no refresh, " + d.Label,
		Pair: "capture triggers installed / not installed", Unit: "tps", Ratio: rc,
		Goal: "≥ 0.98", Met: boolp(rc.Median >= 0.98),
		Note: "the capture triggers on workflow_runs and workflow_events (sql/repeatable/020_capture.sql: row-level on run insert/update and step-event insert, statement-level on deletes, event updates and TRUNCATE) dropped and re-created between runs; every pgbench statement fires a row-level one",
	})
	return nil
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbenchFromSameData runs one pgbench (see pgbench) and then puts the data
// set back as it was before the run: it deletes the runs and events the run
// wrote (data/bench/remove_written.sql), vacuums and analyzes the two tables
// (as autovacuum would have), and refreshes the views. Every run of every
// pair therefore starts from the same data and the same views; without this
// each pgbench run added ~50k runs to the 30-day window, so each later run's
// refreshes read more rows than the one before.
func (b *runner) pgbenchFromSameData(ctx context.Context, d *dataset, script, dir, tag string, nwf, seconds int, withRefresh bool) (pgbenchResult, error) {
	var mark time.Time
	if err := d.Pool.QueryRow(ctx, "select clock_timestamp()").Scan(&mark); err != nil {
		return pgbenchResult{}, fmt.Errorf("reading the clock before pgbench: %w", err)
	}
	res, err := b.pgbench(ctx, d, script, dir, tag, nwf, seconds, withRefresh)
	if err != nil {
		return res, err
	}
	if _, err := d.Pool.Exec(ctx, bench.SQL(bench.RemoveWritten), mark); err != nil {
		return res, fmt.Errorf("removing what pgbench wrote: %w", err)
	}
	if _, err := d.Pool.Exec(ctx, "vacuum (analyze) public.workflow_runs, public.workflow_events"); err != nil {
		return res, fmt.Errorf("vacuuming after pgbench: %w", err)
	}
	if b.noSettle {
		return res, nil
	}
	if _, err := d.Pool.Exec(ctx, "call "+b.schema+".refresh(null, true)"); err != nil {
		return res, fmt.Errorf("refreshing after pgbench: %w", err)
	}
	return res, nil
}

// pgbench runs one pgbench and, when withRefresh, a goroutine that calls
// S.refresh() at the start and every refreshEvery until pgbench exits.
func (b *runner) pgbench(ctx context.Context, d *dataset, script, dir, tag string, nwf, seconds int, withRefresh bool) (pgbenchResult, error) {
	var res pgbenchResult
	prefix := filepath.Join(dir, tag)
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(b.cfg.pgbenchClients), "-j", "2",
		"-T", strconv.Itoa(seconds), "-D", "nwf=" + strconv.Itoa(nwf), "-f", script,
		"--log", "--log-prefix=" + prefix,
		"-h", "127.0.0.1", "-p", strconv.Itoa(b.srv.Port), "-U", "postgres"}
	if b.rate > 0 {
		args = append(args, "-R", strconv.Itoa(b.rate))
	}
	args = append(args, d.DB)
	periodic := "call " + b.schema + ".refresh()"
	if b.periodic != "" {
		periodic = b.periodic
	}
	cmd := exec.CommandContext(ctx, filepath.Join(b.srv.BinDir, "pgbench"), args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out

	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var refreshErr error
	res.RefreshCPU = -1
	var backend int       // the refreshing backend's pid
	var cpuBefore float64 // its CPU time before the first refresh
	if withRefresh {
		// One connection makes every refresh of the run, so that its
		// backend's CPU time is the refreshes' CPU time.
		conn, err := d.Pool.Acquire(ctx)
		if err != nil {
			stop()
			return res, fmt.Errorf("acquiring the refresh connection: %w", err)
		}
		defer conn.Release()
		backend = int(conn.Conn().PgConn().PID())
		if cpuBefore, err = cpuSeconds(backend); err != nil {
			backend = 0 // not readable here: the note leaves the CPU out
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(b.cfg.refreshEvery)
			defer tick.Stop()
			end := time.Now().Add(time.Duration(seconds) * time.Second)
			for {
				t := time.Now()
				if !t.Before(end.Add(-time.Second)) {
					// The tick that coincides with pgbench's end would
					// start a refresh only to cancel it: at a cadence
					// equal to the run's length, one refresh per run.
					return
				}
				mu.Lock()
				res.Refreshes++
				mu.Unlock()
				_, err := conn.Exec(rctx, periodic)
				if rctx.Err() != nil {
					return // pgbench ended during this refresh
				}
				mu.Lock()
				if err != nil && refreshErr == nil {
					refreshErr = fmt.Errorf("refreshing during pgbench: %w", err)
				}
				res.RefreshMs = append(res.RefreshMs, float64(time.Since(t).Microseconds())/1000)
				mu.Unlock()
				select {
				case <-rctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	started := time.Now()
	err := cmd.Run()
	if backend != 0 {
		// Read before stopping the refresh loop: the CPU the refreshes
		// took while pgbench ran.
		if after, cerr := cpuSeconds(backend); cerr == nil {
			res.RefreshCPU = after - cpuBefore
		}
	}
	stop()
	wg.Wait()
	if err != nil {
		return res, fmt.Errorf("pgbench %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	if refreshErr != nil {
		return res, refreshErr
	}
	m := tpsLine.FindStringSubmatch(out.String())
	if m == nil {
		return res, fmt.Errorf("no tps line in pgbench's output:\n%s", out.String())
	}
	res.TPS, _ = strconv.ParseFloat(m[1], 64)
	lat, ends, err := readPgbenchLogs(prefix)
	if err != nil {
		return res, err
	}
	if half := b.cfg.refreshEvery / 2; time.Duration(seconds)*time.Second > 2*half {
		from, to := started.Add(half), started.Add(time.Duration(seconds)*time.Second-half)
		n := 0
		for _, e := range ends {
			if !e.Before(from) && e.Before(to) {
				n++
			}
		}
		res.SteadyTPS = float64(n) / to.Sub(from).Seconds()
	}
	res.Txns = len(lat)
	res.P99Ms = Percentile(lat, 99)
	res.P50Ms = Percentile(lat, 50)
	return res, nil
}

// readPgbenchLogs reads every per-transaction log file of one run
// (prefix.PID and prefix.PID.N, one per thread) and returns the latencies
// in ms and when each transaction ended. Line format: client_id
// transaction_no time_us script_no epoch us.
func readPgbenchLogs(prefix string) ([]float64, []time.Time, error) {
	files, err := filepath.Glob(prefix + ".*")
	if err != nil || len(files) == 0 {
		return nil, nil, fmt.Errorf("no pgbench log files %s.*", prefix)
	}
	var lat []float64
	var ends []time.Time
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, nil, fmt.Errorf("reading pgbench log: %w", err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			us, err := strconv.ParseFloat(fields[2], 64)
			if err != nil {
				continue
			}
			lat = append(lat, us/1000)
			if len(fields) >= 6 {
				sec, err1 := strconv.ParseInt(fields[4], 10, 64)
				usec, err2 := strconv.ParseInt(fields[5], 10, 64)
				if err1 == nil && err2 == nil {
					ends = append(ends, time.Unix(sec, usec*1000))
				}
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, nil, fmt.Errorf("reading pgbench log %s: %w", f, err)
		}
	}
	return lat, ends, nil
}
