package cli

import (
	"context"
	"fmt"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshtop/meshtop/data/demo"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/store"
	"github.com/meshtop/meshtop/tui"
)

type demoFlags struct {
	dataDir                 string
	seed                    int64
	runs, workflows         int
	traffic                 float64
	noAutoInstall           bool
	refreshEvery, statusTic time.Duration
	dash                    dashboardFlags
}

func (a *app) demoCmd() *cobra.Command {
	f := &demoFlags{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run meshtop against a throwaway PostgreSQL with MeshHook-shaped data and live traffic",
		Long: `demo starts a private PostgreSQL cluster (loopback only, in a temporary
directory unless --data-dir), creates a MeshHook database with a 30-day
history and live traffic, installs meshtop's views, refreshes them every
--refresh-every, and opens the dashboard. It prints the DSN so another
terminal can attach. Quitting (q, ctrl+c), SIGTERM or SIGHUP stops the server and
removes the temporary directory.

Without a terminal it runs headless and prints a status line now and then
until SIGTERM or ctrl+c.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runDemo(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "", "keep the cluster in this directory (reused, not removed) instead of a temporary one")
	fl.Int64Var(&f.seed, "seed", demo.DefaultSeed, "seed of the generated history and traffic")
	fl.IntVar(&f.runs, "runs", 0, "runs in the generated history (default about 200,000)")
	fl.IntVar(&f.workflows, "workflows", 0, "workflows in the generated history (default 40)")
	fl.Float64Var(&f.traffic, "traffic", demo.DefaultTrafficRate, "live runs started per second (0 disables live traffic)")
	fl.BoolVar(&f.noAutoInstall, "no-auto-install", false, "do not install the views: the dashboard's first-run screen offers it")
	fl.Var(newDuration(&f.refreshEvery, 30*time.Second), "refresh-every", "refresh the views in the background this often")
	fl.Var(newDuration(&f.statusTic, 10*time.Second), "status-every", "headless mode: print a status line this often")
	f.dash.register(fl)
	_ = fl.MarkHidden("status-every")
	return cmd
}

func (a *app) runDemo(parent context.Context, f *demoFlags) (err error) {
	// SIGHUP: the terminal or SSH session closed; stop cleanly rather than
	// leave the server running and its directory behind.
	ctx, stop := signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	// On a terminal the long steps (seeding, installing, the first refresh)
	// redraw one progress line in place; without one they print a line
	// when they end.
	tty := a.io.IsTerminal(a.io.Stderr)
	var live *liveLine
	say := func(s string) {
		if live != nil {
			live.finish(s)
			live = nil
			return
		}
		fmt.Fprintln(a.stderr(), "meshtop demo: "+s)
	}
	step := func(what string, done, total int) {
		if live == nil {
			live = newLiveLine(a.stderr(), tty, "meshtop demo: ")
		}
		live.set(what, done, total)
	}
	rate := f.traffic
	if rate <= 0 {
		rate = -1
	}
	env, err := demo.Start(ctx, demo.Options{
		DataDir: f.dataDir, Seed: f.seed, Runs: f.runs, Workflows: f.workflows,
		TrafficRate: rate, Progress: say,
		SeedProgress: func(done, total int, what string) {
			// An index rebuild's step is its DDL: name the index only.
			if f := strings.Fields(what); len(f) > 2 && f[0] == "CREATE" && f[1] == "INDEX" {
				what = "index " + f[2]
			}
			step("seeding: "+what+" done", done, total)
		},
	})
	if err != nil {
		return fmt.Errorf("starting the demo: %w", err)
	}
	defer func() {
		say("stopping PostgreSQL")
		if serr := env.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("stopping the demo: %w", serr)
		}
	}()
	where := "(temporary, removed on exit)"
	if f.dataDir != "" {
		where = "(kept)"
	}
	say(fmt.Sprintf("PostgreSQL data in %s %s", env.Root(), where))
	say("DSN " + env.DSN)
	say(fmt.Sprintf("attach from another terminal: meshtop --dsn '%s'", env.DSN))

	a.g.dsn = env.DSN
	s, err := a.connect(ctx, false)
	if err != nil {
		return err
	}
	defer s.Close()
	if !f.noAutoInstall {
		in := install.New(s.primary, a.g.schema)
		pending, err := in.Pending(ctx)
		if err != nil {
			return s.wrap(fmt.Errorf("installing the views: %w", err))
		}
		done := 0
		n, err := in.Apply(ctx, func(e install.StepEvent) {
			if e.Done {
				done++
			}
			step(fmt.Sprintf("installing: %03d %s", e.Version, e.Name), done, len(pending))
		})
		if err != nil {
			if live != nil {
				live.finish("install failed")
				live = nil
			}
			return s.wrap(fmt.Errorf("installing the views: %w", err))
		}
		if n > 0 {
			say(fmt.Sprintf("installed meshtop's views in schema %s", a.g.schema))
		} else if live != nil {
			live.finish("meshtop's views are installed")
			live = nil
		}
		// The two views the overview needs first (fast); the step view
		// (slower) is refreshed in the background so the dashboard opens
		// sooner.
		var results []store.RefreshResult
		first := []string{store.ViewHourly, store.ViewMetrics}
		for i, v := range first {
			step("first refresh: "+v, i, len(first))
			r, err := s.store.Refresh(ctx, v, false)
			if err != nil {
				say("first refresh failed")
				return s.wrap(fmt.Errorf("first refresh: %w", err))
			}
			results = append(results, r...)
		}
		say(fmt.Sprintf("first refresh: %s; %s follows in the background", summarizeResults(results), store.ViewSteps))
	}

	// Background refreshes, as pg_cron would do in production, on their
	// own connections: the refresh log tells them ("meshtop demo loop")
	// from the dashboard's R ("meshtop demo").
	loop, err := a.connectAs(ctx, false, "loop")
	if err != nil {
		return err
	}
	defer loop.Close()
	lctx, cancelLoop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if !f.noAutoInstall {
			_, _ = loop.store.Refresh(lctx, store.ViewSteps, false)
		}
		t := time.NewTicker(f.refreshEvery)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				// Errors (not installed yet, a refresh elsewhere) are
				// visible in the dashboard's refresh console.
				_, _ = loop.store.Refresh(lctx, "", false)
			}
		}
	}()
	defer func() {
		cancelLoop()
		wg.Wait()
	}()

	if a.isTTY() {
		opts := a.tuiOptions(s, &f.dash)
		opts.Target = "demo " + s.target
		return s.wrap(tui.Run(ctx, opts))
	}
	say("no terminal: running headless; SIGTERM or ctrl+c stops")
	return a.demoHeadless(ctx, s, f.statusTic, env.TrafficErr)
}

// demoHeadless prints a status line every tick until ctx ends.
func (a *app) demoHeadless(ctx context.Context, s *session, every time.Duration, trafficErr func() (time.Time, error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		line := ""
		ov, err := s.store.Overview(ctx, store.Window1h)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			line = "status unavailable: " + Message(s.wrap(err))
		default:
			var runs, ok, failed, running int64
			for _, m := range ov.Workflows {
				runs += m.Runs
				ok += m.Succeeded
				failed += m.Failed
			}
			for _, n := range ov.RunningNow {
				running += n
			}
			lag := "never refreshed"
			if ov.DataAsOf != nil {
				for _, v := range ov.Views {
					if v.Lag != nil {
						lag = "lag " + formatDuration(v.Lag.Round(time.Second))
						break
					}
				}
			}
			line = fmt.Sprintf("last 1h: %d runs, %d succeeded, %d failed; %d running now; %s", runs, ok, failed, running, lag)
		}
		if at, terr := trafficErr(); terr != nil && time.Since(at) < 2*every {
			line += "; live traffic restarted after: " + Message(terr)
		}
		fmt.Fprintf(a.stdout(), "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func summarizeResults(results []store.RefreshResult) string {
	if len(results) == 0 {
		return "nothing refreshed"
	}
	out := ""
	for i, r := range results {
		if i > 0 {
			out += ", "
		}
		out += r.View + " " + r.Status
		if r.Status == "ok" {
			out += fmt.Sprintf(" (%d rows, %.0f ms)", r.Rows, r.DurationMs)
		}
	}
	return out
}
