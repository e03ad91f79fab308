package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

// verifyJSON is `verify --json`'s document.
type verifyJSON struct {
	SchemaVersion int           `json:"schema_version"`
	Window        string        `json:"window"`
	Clean         bool          `json:"clean"`
	Drift         []store.Drift `json:"drift"`
}

func (a *app) verifyCmd() *cobra.Command {
	var window store.Window
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the metrics rollup from the raw tables and report drift",
		Long: `verify recomputes the rollup behind the views (per workflow and hour, and per
workflow, node and hour: counts, sums, min/max, last failure, duration
histograms) for the last --window from MeshHook's tables, in one snapshot with
the change log, and reports every field of every bucket that differs from
what the incremental refreshes stored. Buckets whose changes are still
waiting for the next refresh are not compared. Use it after a restore, a
manual fix, or a suspicion; ` + "`meshtop refresh --full`" + ` rebuilds the rollup.

Exit status: 0 clean, 1 drift found, 3 cannot check (not installed, the
rollup not built yet or a full rebuild pending, no permission).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := a.connect(ctx, false)
			if err != nil {
				return &exitError{code: ExitUnknown, err: err}
			}
			defer s.Close()
			drift, err := s.store.Verify(ctx, window.Duration())
			if err != nil {
				// store.ErrCannotVerify, store.ErrNotInstalled, a
				// permission error, or anything else: nothing was checked.
				return &exitError{code: ExitUnknown, err: s.wrap(a.whyNotInstalled(ctx, s, err))}
			}
			if asJSON {
				if drift == nil {
					drift = []store.Drift{}
				}
				enc := json.NewEncoder(a.stdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(verifyJSON{SchemaVersion: 1, Window: string(window), Clean: len(drift) == 0, Drift: drift}); err != nil {
					return err
				}
			} else {
				for _, d := range drift {
					node := ""
					if d.NodeID != "" {
						node = " node " + d.NodeID
					}
					// Node ids and values come from MeshHook's data:
					// sanitized before they reach the terminal.
					fmt.Fprintf(a.stdout(), "%-10s %s%s %s  %-18s stored %s, from the raw tables %s\n",
						d.Kind, d.WorkflowID, safetext.Line(node), d.Bucket.UTC().Format("2006-01-02T15:04Z"), d.Field,
						safetext.Line(d.Stored), safetext.Line(d.Recomputed))
				}
				if len(drift) == 0 {
					fmt.Fprintf(a.stdout(), "rollup of the last %s matches the raw tables\n", window)
				}
			}
			if len(drift) > 0 {
				return &exitError{code: ExitError, err: fmt.Errorf("%d rollup fields differ from the raw tables; `meshtop refresh --full` rebuilds the rollup", len(drift))}
			}
			return nil
		},
	}
	cmd.Flags().Var(newWindow(&window, store.Window30d), "window", "how far back to verify: 1h, 24h, 7d or 30d")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON document (schema_version 1)")
	_ = cmd.RegisterFlagCompletionFunc("window", fixedCompletions(windowNames()))
	return cmd
}
