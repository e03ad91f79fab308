package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/store"
)

type refreshFlags struct {
	view          string
	wait          bool
	timeout       time.Duration
	every         time.Duration
	maxRetryDelay time.Duration
	full          bool
}

func (a *app) refreshCmd() *cobra.Command {
	f := &refreshFlags{}
	cmd := &cobra.Command{
		Use:   "refresh",
		Short: "Refresh the metrics views now (or every D with --every)",
		Long: `refresh refreshes every view in dependency order (or only --view) on the
primary and prints one line per view:

  mv_workflow_metrics         ok       812 rows  143 ms  incremental, 12 dirty keys

Each refresh first applies the change log (the (workflow, hour) keys
MeshHook's writes touched since the last refresh) to meshtop's rollup:
"incremental, N dirty keys". --full rebuilds the rollup from the raw tables
instead ("full"); the first refresh after an install or upgrade does that by
itself.

It exits 1 if a view failed, or was skipped because another session is
refreshing it ("already refreshing (pid N since T)"); --wait waits for that
refresh to finish and then refreshes instead of skipping. Through a
transaction pooler (Supabase's port 6543) it refuses before touching
anything and exits 2: the refresh needs a session (port 5432).

With --every D it refreshes every D until SIGTERM or ctrl+c, which cancels a
refresh in progress cleanly (the view keeps its previous contents and the
log records the attempt as failed) and exits 0. While the database is
unreachable it keeps trying with backoff, printing each failed attempt.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.refuseReadOnly("refresh"); err != nil {
				return err
			}
			if f.view != "" {
				if err := store.CheckView(f.view); err != nil {
					return err
				}
			}
			if f.every > 0 {
				if f.full {
					return errors.New("--full rebuilds the rollup once: run it without --every")
				}
				return a.refreshEvery(cmd.Context(), f)
			}
			return a.refreshOnce(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.view, "view", "", "refresh only this view: "+strings.Join(store.ViewNames(), ", "))
	fl.BoolVar(&f.wait, "wait", false, "wait for a refresh in progress elsewhere instead of skipping")
	fl.Var(&durationValue{&f.timeout}, "timeout", "give up (cancelling the refresh cleanly) after this long")
	fl.Var(&durationValue{&f.every}, "every", "keep refreshing at this interval until SIGTERM/ctrl+c")
	fl.BoolVar(&f.full, "full", false, "rebuild the rollup from the raw tables instead of applying the change log")
	f.maxRetryDelay = 30 * time.Second
	_ = cmd.RegisterFlagCompletionFunc("view", fixedCompletions(store.ViewNames()))
	return cmd
}

func (a *app) refreshOnce(ctx context.Context, f *refreshFlags) error {
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	s, err := a.connectWriter(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if f.full {
		if err := s.store.RequestFull(ctx); err != nil {
			return s.wrap(a.whyNotInstalled(ctx, s, err))
		}
	}
	results, err := s.store.Refresh(ctx, f.view, f.wait)
	printResults(a.stdout(), results)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && f.timeout > 0 {
			return fmt.Errorf("refresh did not finish within --timeout %s; it was cancelled and the views keep their previous contents", formatDuration(f.timeout))
		}
		// A database install cannot help (no MeshHook tables, a
		// standby) says so, not "run meshtop install".
		return s.wrap(a.whyNotInstalled(ctx, s, err))
	}
	return resultsError(results)
}

// printResults prints one aligned line per view.
func printResults(w io.Writer, results []store.RefreshResult) {
	for _, r := range results {
		switch r.Status {
		case "ok":
			fmt.Fprintf(w, "%-28s %-8s %8d rows  %6.0f ms%s\n", r.View, r.Status, r.Rows, r.DurationMs, modeText(r.Mode, r.DirtyKeys))
		default:
			fmt.Fprintf(w, "%-28s %-8s %s\n", r.View, r.Status, r.Error.Line())
		}
	}
}

// modeText says how a refresh used the rollup: "  incremental, 12 dirty
// keys" or "  full".
func modeText(mode string, keys int64) string {
	switch mode {
	case "":
		return ""
	case "incremental":
		return fmt.Sprintf("  incremental, %d dirty keys", keys)
	default:
		return "  " + mode
	}
}

// resultsError is the error for failed or skipped views, nil when all ok.
func resultsError(results []store.RefreshResult) error {
	var bad []string
	for _, r := range results {
		if r.Status != "ok" {
			bad = append(bad, r.View+" "+r.Status)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &exitError{code: ExitError, err: fmt.Errorf("%d of %d views not refreshed (%s)", len(bad), len(results), strings.Join(bad, ", "))}
}

// refreshEvery refreshes every f.every until SIGINT/SIGTERM (or ctx ends).
func (a *app) refreshEvery(parent context.Context, f *refreshFlags) error {
	ctx, stop := signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var s *session
	defer func() {
		if s != nil {
			s.Close()
		}
	}()
	fail, delay := 0, time.Second
	for {
		var err error
		if s == nil {
			s, err = a.connectWriter(ctx)
			if errors.Is(err, store.ErrNeedsSession) {
				return err // no retrying: the URL must change
			}
		}
		if err == nil {
			rctx, cancel := ctx, context.CancelFunc(func() {})
			if f.timeout > 0 {
				rctx, cancel = context.WithTimeout(ctx, f.timeout)
			}
			var results []store.RefreshResult
			results, err = s.store.Refresh(rctx, f.view, f.wait)
			cancel()
			stamp := time.Now().Format(time.RFC3339)
			for _, line := range strings.Split(strings.TrimRight(resultsText(results), "\n"), "\n") {
				if line != "" {
					fmt.Fprintf(a.stdout(), "%s %s\n", stamp, line)
				}
			}
			if err != nil {
				err = a.whyNotInstalled(ctx, s, err)
				var pe *install.PreconditionError
				if errors.As(err, &pe) {
					return s.wrap(err) // no retrying: this database cannot take meshtop
				}
				err = s.wrap(err)
			}
		}
		if ctx.Err() != nil {
			fmt.Fprintln(a.stderr(), "meshtop: stopped")
			return nil
		}
		next := f.every
		if err != nil {
			fail++
			next = min(delay, f.every, f.maxRetryDelay)
			delay = min(delay*2, f.maxRetryDelay)
			fmt.Fprintf(a.stderr(), "%s meshtop: attempt %d failed (retrying in %s): %s\n",
				time.Now().Format(time.RFC3339), fail, formatDuration(next.Round(time.Second)), Message(err))
		} else {
			if fail > 0 {
				fmt.Fprintf(a.stderr(), "%s meshtop: database back after %d failed attempt(s)\n", time.Now().Format(time.RFC3339), fail)
			}
			fail, delay = 0, time.Second
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(a.stderr(), "meshtop: stopped")
			return nil
		case <-time.After(next):
		}
	}
}

func resultsText(results []store.RefreshResult) string {
	var b strings.Builder
	printResults(&b, results)
	return b.String()
}
