package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

// Monitoring-plugin exit codes of `meshtop check`.
const (
	CheckOK       = 0
	CheckWarning  = 1
	CheckCritical = 2
	CheckUnknown  = 3
)

var checkStateName = map[int]string{CheckOK: "OK", CheckWarning: "WARNING", CheckCritical: "CRITICAL", CheckUnknown: "UNKNOWN"}

const checkLong = `check prints one line in the monitoring-plugin format (Nagios, Icinga,
Sensu) and exits with its code:

  0 OK        every view refreshed within --max-lag/2 and every workflow
              with at least 10 completed runs in --window succeeds at least
              --min-success-rate of the time
  1 WARNING   a view's lag is over --max-lag/2 (but not over --max-lag), or
              its last refresh failed, or a workflow with at least 10
              completed runs in the window is below --min-success-rate, or
              change capture stops within half its bound (nothing consumed
              its log for over half of capture_max_age), or was off and the
              next refresh will rebuild
  2 CRITICAL  a view's lag is over --max-lag, a view was never refreshed
              (not populated), a view's last two refreshes failed, or
              change capture has stopped
  3 UNKNOWN   meshtop cannot connect, the views are not installed, or the
              command line is invalid

A refresh an operator canceled (x in the dashboard, pg_cancel_backend) is
not counted as failed: only the lag rules judge the view it leaves stale.
Workflows below the success rate are named worst first. The volume floor
of 10 completed runs is the dashboard's too: d (what got worse) compares no
failure rate of fewer runs.

Change capture: MeshHook's writes append to a log that every refresh
consumes. When nothing consumes it for capture_max_age (schema config,
default 24 hours) capture stops, so the log cannot grow without bound; the
next refresh rebuilds the rollup and capture resumes (docs/REFRESH.md).

Lag is measured against the database clock (now, or the clock pinned in the
schema's config) and, with --replica-dsn, includes replication lag.
Performance data follows the "|": max_lag in seconds with its warning and
critical thresholds, the number of workflows below the success rate, and
the capture log's age in seconds (with its thresholds), estimated rows and
bytes on disk.`

type checkFlags struct {
	maxLag  time.Duration
	minRate float64
	window  store.Window
	minRuns int64
}

func (a *app) checkCmd() *cobra.Command {
	f := &checkFlags{minRuns: store.MinCompletedRuns}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Monitoring-plugin check of freshness and success rates (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)",
		Long:  checkLong,
		Args:  cobra.NoArgs,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.applyEnv(cmd); err != nil {
				return a.checkResult(CheckUnknown, Message(err), "")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			code, summary, perf := a.check(cmd.Context(), f)
			return a.checkResult(code, summary, perf)
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return a.checkResult(CheckUnknown, Message(flagError(c, err)), "")
	})
	fl := cmd.Flags()
	fl.Var(newDuration(&f.maxLag, 5*time.Minute), "max-lag", "refresh lag that is CRITICAL (half of it is WARNING)")
	fl.Var(newRate(&f.minRate, 0.9), "min-success-rate", "success rate below which a workflow is WARNING (0.9 or 90%)")
	fl.Var(newWindow(&f.window, store.Window24h), "window", "window of the success rates: 1h, 24h, 7d or 30d")
	_ = cmd.RegisterFlagCompletionFunc("window", fixedCompletions(windowNames()))
	return cmd
}

// checkResult prints the plugin line and returns the quiet exit error (nil
// for OK). The plugin format is line based: whatever a workflow's name or an
// error contains, the output is one sanitized line (names are sanitized
// already; safetext.Line also folds what an error message may hold).
func (a *app) checkResult(code int, summary, perf string) error {
	line := "MESHTOP " + checkStateName[code] + " - " + safetext.Line(summary)
	if perf != "" {
		line += " | " + perf
	}
	fmt.Fprintln(a.stdout(), line)
	if code == CheckOK {
		return nil
	}
	return &exitError{code: code, quiet: true}
}

type problem struct {
	code int
	text string
}

func (a *app) check(ctx context.Context, f *checkFlags) (int, string, string) {
	s, err := a.connect(ctx, true)
	if err != nil {
		return CheckUnknown, "cannot connect: " + Message(err), ""
	}
	defer s.Close()
	ov, err := s.store.Overview(ctx, f.window)
	if err != nil {
		err = a.whyNotInstalled(ctx, s, err)
		var pe *install.PreconditionError
		switch {
		case errors.Is(err, store.ErrNotInstalled):
			return CheckUnknown, "metrics views are not installed; run `meshtop install`", ""
		case errors.As(err, &pe):
			return CheckUnknown, pe.Msg, ""
		}
		return CheckUnknown, "cannot read the metrics: " + Message(s.wrap(err)), ""
	}
	log, err := s.store.RefreshLog(ctx, 200)
	if err != nil {
		return CheckUnknown, "cannot read the refresh log: " + Message(s.wrap(err)), ""
	}
	var capture captureInput
	c, err := s.store.CaptureLog(ctx)
	switch {
	case err == nil:
		capture.log = &c
	case errors.Is(err, store.ErrNotInstalled):
		// A schema from before the capture bound (the views work, the
		// function is missing).
		capture.outdated = true
	default:
		return CheckUnknown, "cannot read the change-capture log: " + Message(s.wrap(err)), ""
	}
	return evaluate(f, ov, log, capture)
}

// captureInput is what check knows of the change-capture log: its state,
// or that the installed schema predates the capture bound. The zero value
// judges nothing.
type captureInput struct {
	log      *store.CaptureLog
	outdated bool
}

// evaluate applies check's rules (see checkLong).
func evaluate(f *checkFlags, ov store.Overview, log []store.RefreshLogEntry, capture captureInput) (int, string, string) {
	var probs []problem
	var maxLag time.Duration
	// Last two finished attempts per view, newest first.
	finished := map[string][]string{}
	for _, e := range log {
		if e.Status == "failed" && store.IsCancel(e.Error.String()) {
			// An operator's cancel is a decision, not a failure: it does
			// not warn by itself (a view it leaves stale still trips the
			// lag rules).
			continue
		}
		switch e.Status {
		case "ok", "failed", "interrupted":
			if len(finished[e.View]) < 2 {
				finished[e.View] = append(finished[e.View], e.Status)
			}
		}
	}
	for _, v := range ov.Views {
		last := finished[v.Name]
		switch {
		case !v.Populated || v.LastRefreshAt == nil:
			probs = append(probs, problem{CheckCritical, v.Name + " never refreshed"})
			continue
		case len(last) == 2 && last[0] != "ok" && last[1] != "ok":
			probs = append(probs, problem{CheckCritical, v.Name + " last two refreshes failed"})
		case len(last) >= 1 && last[0] != "ok":
			probs = append(probs, problem{CheckWarning, v.Name + " last refresh " + last[0]})
		}
		if v.Lag == nil {
			continue
		}
		lag := *v.Lag
		maxLag = max(maxLag, lag)
		switch {
		case lag > f.maxLag:
			probs = append(probs, problem{CheckCritical, fmt.Sprintf("%s lag %s > %s", v.Name, formatDuration(lag.Round(time.Second)), formatDuration(f.maxLag))})
		case lag > f.maxLag/2:
			probs = append(probs, problem{CheckWarning, fmt.Sprintf("%s lag %s > %s", v.Name, formatDuration(lag.Round(time.Second)), formatDuration(f.maxLag/2))})
		}
	}
	below, judged := 0, 0
	// Worst first: the lowest success rate is named first.
	wfs := append([]store.WorkflowMetrics(nil), ov.Workflows...)
	sortWorkflows(wfs)
	sort.SliceStable(wfs, func(i, j int) bool {
		a, b := wfs[i].SuccessRate, wfs[j].SuccessRate
		return a != nil && (b == nil || *a < *b)
	})
	for _, m := range wfs {
		completed := m.Succeeded + m.Failed + m.Canceled
		if completed < f.minRuns || m.SuccessRate == nil {
			continue
		}
		judged++
		if *m.SuccessRate < f.minRate {
			below++
			probs = append(probs, problem{CheckWarning, fmt.Sprintf("%s (%s v%d) success %.1f%% < %.1f%% in %s",
				m.Name, m.Slug, m.Version, *m.SuccessRate*100, f.minRate*100, f.window)})
		}
	}
	perf := fmt.Sprintf("max_lag=%.0fs;%.0f;%.0f workflows_below=%d;;;0;%d",
		maxLag.Seconds(), (f.maxLag / 2).Seconds(), f.maxLag.Seconds(), below, judged)
	probs = append(probs, captureProblems(capture)...)
	if c := capture.log; c != nil {
		perf += fmt.Sprintf(" capture_age=%.0fs;%.0f;%.0f capture_rows=%d capture_bytes=%dB",
			max(c.Age, 0).Seconds(), (c.MaxAge / 2).Seconds(), c.MaxAge.Seconds(), c.Rows, c.Bytes)
		if w := c.Capture; w != nil && w.SlotExists {
			perf += fmt.Sprintf(" wal_retained=%dB;%d;%d wal_lag=%.0fs;%.0f;%.0f",
				w.RetainedBytes, w.MaxBytes/2, w.MaxBytes, max(w.Lag, 0).Seconds(), (w.MaxAge / 2).Seconds(), w.MaxAge.Seconds())
		}
	}
	if len(probs) == 0 {
		return CheckOK, fmt.Sprintf("%d views fresh (max lag %s), %d workflows with ≥%d completed runs at ≥%.1f%% success in %s",
			len(ov.Views), formatDuration(maxLag.Round(time.Second)), judged, f.minRuns, f.minRate*100, f.window), perf
	}
	code := CheckOK
	for _, p := range probs {
		code = max(code, p.code)
	}
	// Worst first, at most four named.
	var texts []string
	for _, want := range []int{CheckCritical, CheckWarning} {
		for _, p := range probs {
			if p.code == want {
				texts = append(texts, p.text)
			}
		}
	}
	more := ""
	if len(texts) > 4 {
		more = fmt.Sprintf("; and %d more", len(texts)-4)
		texts = texts[:4]
	}
	return code, strings.Join(texts, "; ") + more, perf
}

// captureProblems judges the change-capture log (see checkLong): CRITICAL
// once capture has stopped, WARNING when it stops within half its bound or
// was off since the last refresh, or when the schema predates the bound.
func captureProblems(in captureInput) []problem {
	c := in.log
	switch {
	case in.outdated:
		return []problem{{CheckWarning, "change capture has no bound in this schema; run `meshtop install` to upgrade it"}}
	case c == nil:
		return nil
	case c.Stopped:
		return []problem{{CheckCritical, fmt.Sprintf("change capture stopped: its log was not consumed for %s (capture_max_age %s); the next refresh rebuilds the rollup",
			formatDuration(c.Age.Round(time.Second)), formatDuration(c.MaxAge.Round(time.Second)))}}
	case c.RebuildPending:
		return []problem{{CheckWarning, "change capture was off; the next refresh rebuilds the rollup"}}
	case c.Left < c.MaxAge/2:
		return []problem{{CheckWarning, fmt.Sprintf("change capture stops in %s: its log (~%d rows, %s) was not consumed for %s",
			formatDuration(max(c.Left, 0).Round(time.Second)), c.Rows, formatBytes(c.Bytes), formatDuration(c.Age.Round(time.Second)))}}
	}
	return walProblems(c.Capture)
}

// walRecentFallback is how long a fallback from WAL capture to the
// triggers stays a WARNING.
const walRecentFallback = 24 * time.Hour

// walProblems judges WAL capture (docs/OPERATIONS.md, "The replication
// slot"): CRITICAL when the slot holds back more than its bound or the
// server invalidated it (meshtop drops it at its next look), WARNING past
// half the bound in bytes or age, and for a day after a fallback to the
// triggers.
func walProblems(w *store.Capture) []problem {
	if w == nil {
		return nil
	}
	var out []problem
	if w.Mode == "wal" && w.SlotExists {
		switch {
		case w.WALStatus == "lost":
			out = append(out, problem{CheckCritical, "the server invalidated meshtop's replication slot (max_slot_wal_keep_size); the next refresh falls back to triggers and rebuilds"})
		case w.RetainedBytes > w.MaxBytes:
			out = append(out, problem{CheckCritical, fmt.Sprintf("meshtop's replication slot holds back %s of WAL, over capture_wal_max_bytes %s", formatBytes(w.RetainedBytes), formatBytes(w.MaxBytes))})
		case w.RetainedBytes > w.MaxBytes/2:
			out = append(out, problem{CheckWarning, fmt.Sprintf("meshtop's replication slot holds back %s of WAL, over half of capture_wal_max_bytes %s", formatBytes(w.RetainedBytes), formatBytes(w.MaxBytes))})
		}
		if w.ConsumedAt != nil && w.Lag > w.MaxAge/2 {
			out = append(out, problem{CheckWarning, fmt.Sprintf("meshtop's replication slot was not consumed for %s (capture_wal_max_age %s): is the refresh schedule running?",
				formatDuration(w.Lag.Round(time.Second)), formatDuration(w.MaxAge))})
		}
	}
	if w.FallbackAt != nil && time.Since(*w.FallbackAt) < walRecentFallback {
		out = append(out, problem{CheckWarning, fmt.Sprintf("WAL capture fell back to triggers at %s: %s; `meshtop install --capture wal` switches back",
			w.FallbackAt.UTC().Format(time.RFC3339), w.FallbackReason.Line())})
	}
	return out
}

// formatBytes prints b in binary units with one decimal: "29.3 MiB".
func formatBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
