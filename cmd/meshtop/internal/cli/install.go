package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/safetext"
)

func (a *app) installCmd() *cobra.Command {
	var dryRun bool
	var capture string
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Create meshtop's schema, views, refresh functions and roles (idempotent)",
		Long: `install applies meshtop's pending migrations to the primary: the schema
(--schema, default metrics), the materialized views, the refresh log and
functions, and the roles meshtop_reader, meshtop_refresher and meshtop_tenant.
Re-running it is a no-op. It checks first that the database has MeshHook's
tables, is not a standby, and that the role may create what is needed.

--capture chooses how MeshHook's changes reach the refresh (docs/REFRESH.md):
  triggers  row-level triggers log each change in the writer's transaction
  wal       a logical replication slot every refresh reads; no trigger
            runs on MeshHook's hot path (needs wal_level = logical and a
            role with REPLICATION; install says in one line why not)
  auto      wal where possible and a schedule consumes the slot (meshtop's
            pg_cron job; refresh --every and serve --refresh-every ask for
            it themselves), else triggers
Without the flag the mode recorded stays (auto on a first install). The
switch happens in place, without losing a change, in both directions.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !dryRun {
				if err := a.refuseReadOnly("install"); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			s, err := a.connect(ctx, false)
			if err != nil {
				return err
			}
			defer s.Close()
			if dryRun {
				a.poolerNote(s) // reading the plan works; applying it needs a session
			} else if err := s.needSession(); err != nil {
				return err
			}
			in := install.New(s.primary, a.g.schema)
			if cmd.Flags().Changed("capture") {
				mode, err := install.ParseCapture(capture)
				if err != nil {
					return errString(safetext.Line(err.Error()))
				}
				in.SetCapture(mode)
			}
			out := a.stdout()
			if dryRun {
				// The plan of a database install would refuse is refused
				// too (no MeshHook tables, a standby, a server too old):
				// exit 1 as install does. A role that merely lacks the
				// privileges gets the SQL, for its owner to run.
				if err := in.Check(ctx); err != nil {
					var pe *install.PreconditionError
					if !errors.As(err, &pe) || pe.Kind != "privileges" {
						return s.wrap(err)
					}
					fmt.Fprintln(a.stderr(), "meshtop: note: "+pe.Msg+"; the SQL below is for a role that may run it")
				}
				sql, err := in.DryRun(ctx)
				if err != nil {
					return s.wrap(err)
				}
				if strings.TrimSpace(sql) == "" {
					fmt.Fprintf(out, "-- schema %s is up to date: nothing to do\n", a.g.schema)
					if p, err := in.CapturePlan(ctx); err == nil && p.Target != "" {
						fmt.Fprintf(out, "-- change capture: %s (asked: %s; %s)\n", p.Current, p.Desired, safetext.Line(p.Why))
					}
					return nil
				}
				fmt.Fprint(out, sql)
				if !strings.HasSuffix(sql, "\n") {
					fmt.Fprintln(out)
				}
				return nil
			}
			if err := in.Check(ctx); err != nil {
				pending, perr := in.Pending(ctx)
				if perr != nil || len(pending) > 0 {
					return s.wrap(err)
				}
			}
			if warns, err := in.Warnings(ctx); err == nil {
				for _, w := range warns {
					fmt.Fprintln(a.stderr(), "meshtop: warning: "+w)
				}
			}
			applied, err := in.Apply(ctx, func(e install.StepEvent) {
				if !e.Done {
					return
				}
				mark := "ok"
				if e.Err != nil {
					mark = "FAILED"
				}
				fmt.Fprintf(out, "  %-6s %s  (%s)\n", mark, e.Name, e.Duration.Round(1e6))
			})
			if err != nil {
				return s.wrap(err)
			}
			if p := in.LastCapture(); p.Target != "" {
				fmt.Fprintf(out, "change capture: %s (%s)\n", p.Target, safetext.Line(p.Why))
			}
			if applied == 0 {
				fmt.Fprintf(out, "schema %s is up to date: nothing to do\n", a.g.schema)
				return nil
			}
			fmt.Fprintf(out, "installed into schema %s: %d migration(s) applied; next: `meshtop refresh`, then `meshtop schedule --every 1m` (pg_cron) or `meshtop refresh --every 1m`\n", a.g.schema, applied)
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the SQL install would run, and change nothing")
	cmd.Flags().StringVar(&capture, "capture", install.CaptureAuto, "how changes are captured: auto, wal (a logical replication slot) or triggers")
	_ = cmd.RegisterFlagCompletionFunc("capture", fixedCompletions([]string{install.CaptureAuto, install.CaptureWAL, install.CaptureTriggers}))
	return cmd
}

func (a *app) uninstallCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove everything meshtop created (schema, views, index, its roles, its pg_cron job)",
		Long: `uninstall drops meshtop's schema with its views, log and functions, the
started_at index it added to public.workflow_runs, the pg_cron job it
scheduled, and the roles it created. It touches nothing else. It asks for
confirmation on a terminal; elsewhere pass --yes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.refuseReadOnly("uninstall"); err != nil {
				return err
			}
			if !yes && !a.io.IsTerminal(a.io.Stdin) {
				return errString("refusing to uninstall without confirmation: stdin is not a terminal; pass --yes")
			}
			ctx := cmd.Context()
			// Through a transaction pooler this refuses before asking.
			s, err := a.connectWriter(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			if !yes {
				fmt.Fprintf(a.stderr(), "Remove schema %s and everything meshtop created in this database? [y/N] ", a.g.schema)
				line, _ := bufio.NewReader(a.io.Stdin).ReadString('\n')
				if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
					fmt.Fprintln(a.stderr(), "not uninstalled")
					return &exitError{code: ExitError, quiet: true}
				}
			}
			in := install.New(s.primary, a.g.schema)
			installed, err := anyApplied(ctx, in)
			if err != nil {
				return s.wrap(err)
			}
			// Uninstall runs either way: it refuses a schema meshtop did not
			// create (--schema auth), and removes what an earlier install
			// left behind, unused.
			if err := in.Uninstall(ctx); err != nil {
				return s.wrap(err)
			}
			if !installed {
				// Say so rather than report objects gone that never were.
				fmt.Fprintf(a.stdout(), "nothing to uninstall: meshtop is not installed in schema %s of this database"+
					" (unused leftovers of an earlier install, its roles or index, are removed if there were any)\n", a.g.schema)
				return nil
			}
			fmt.Fprintf(a.stdout(), "uninstalled: schema %s and the objects and roles meshtop created are gone\n", a.g.schema)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// anyApplied tells whether any of meshtop's migrations was applied to the
// installer's schema (none: the schema holds no meshtop).
func anyApplied(ctx context.Context, in *install.Installer) (bool, error) {
	all, err := in.Migrations()
	if err != nil {
		return false, err
	}
	pending, err := in.Pending(ctx)
	if err != nil {
		return false, err
	}
	versioned := 0
	for _, m := range pending {
		if !m.Repeatable {
			versioned++
		}
	}
	return versioned < len(all), nil
}
