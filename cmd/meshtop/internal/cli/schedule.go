package cli

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

func (a *app) scheduleCmd() *cobra.Command {
	var every time.Duration
	var off, show bool
	cmd := &cobra.Command{
		Use:   "schedule (--every D | --off | --show)",
		Short: "Schedule the refresh with pg_cron, remove the schedule, or show it",
		Long: `schedule registers meshtop's refresh as a pg_cron job in the database
(--every D: a whole number of minutes dividing an hour, or of hours dividing
a day, e.g. 1m, 5m, 15m, 1h), removes it (--off), or shows it and its last
runs (--show, the default). Without pg_cron in the database, keep the views
fresh with ` + "`meshtop refresh --every 1m`" + ` instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			set := 0
			for _, b := range []bool{every > 0, off, show} {
				if b {
					set++
				}
			}
			if set > 1 {
				return errString("use one of --every, --off and --show (see `meshtop schedule --help`)")
			}
			if every > 0 || off {
				if err := a.refuseReadOnly("change the schedule"); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			s, err := a.connect(ctx, false)
			if err != nil {
				return err
			}
			defer s.Close()
			if every > 0 || off {
				if err := s.needSession(); err != nil {
					return err
				}
			}
			out := a.stdout()
			switch {
			case every > 0:
				sc, err := s.store.SetSchedule(ctx, every)
				if err != nil {
					return s.wrap(err)
				}
				fmt.Fprintf(out, "scheduled: pg_cron job %d refreshes the views every %s (%q)\n", sc.JobID, formatDuration(sc.Every), sc.Schedule)
				a.followCapture(cmd, s)
			case off:
				if err := s.store.Unschedule(ctx); err != nil {
					return s.wrap(err)
				}
				fmt.Fprintln(out, "unscheduled: pg_cron no longer refreshes the views")
				a.followCapture(cmd, s)
			default:
				sc, err := s.store.Schedule(ctx)
				if err != nil && !errors.Is(err, store.ErrCronUnavailable) {
					return s.wrap(err)
				}
				writeSchedule(out, sc)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.Var(&durationValue{&every}, "every", "refresh with pg_cron at this interval (1m, 5m, 1h, …)")
	fl.BoolVar(&off, "off", false, "remove meshtop's pg_cron job")
	fl.BoolVar(&show, "show", false, "show the schedule and its last runs (the default)")
	return cmd
}

func writeSchedule(out io.Writer, sc store.Schedule) {
	switch {
	case !sc.CronAvailable:
		fmt.Fprintln(out, "not scheduled: pg_cron is not installed in this database; keep the views fresh with `meshtop refresh --every 1m`")
		return
	case !sc.Unknown.IsEmpty():
		fmt.Fprintln(out, "schedule unknown: "+sc.Unknown.Line())
		return
	case !sc.Scheduled:
		fmt.Fprintln(out, "not scheduled: set one with `meshtop schedule --every 1m`")
		return
	}
	state := "active"
	if !sc.Active {
		state = "inactive"
	}
	fmt.Fprintf(out, "pg_cron job %d: every %s (%q), %s", sc.JobID, formatDuration(sc.Every), sc.Schedule, state)
	if sc.NextRun != nil {
		fmt.Fprintf(out, ", next run %s", sc.NextRun.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(out)
	for _, r := range sc.LastRuns {
		end := "running"
		if r.End != nil {
			end = r.End.Sub(r.Start).Round(time.Millisecond).String()
		}
		msg := ""
		if !r.Message.IsEmpty() {
			msg = "  " + r.Message.Line()
		}
		fmt.Fprintf(out, "  %s  %-10s %s%s\n", r.Start.UTC().Format(time.RFC3339), r.Status, end, msg)
	}
}

// followCapture brings change capture in --capture auto to what the new
// schedule allows (docs/REFRESH.md, "Modes"): WAL capture once meshtop's
// pg_cron job consumes a slot, the triggers again without one (the slot
// exists only while something consumes it on a schedule). Only on an
// up-to-date schema, and only a role that may switch (the installing
// role); otherwise it says what to run. A failure leaves capture as it
// was and is reported, not fatal: the schedule itself is set.
func (a *app) followCapture(cmd *cobra.Command, s *session) {
	ctx := cmd.Context()
	in := install.New(s.primary, a.g.schema)
	if ok, err := in.Installed(ctx); err != nil || !ok {
		return
	}
	p, err := in.CapturePlan(ctx)
	if err != nil || p.Desired != install.CaptureAuto || !p.Switches() {
		return
	}
	if _, err := in.Apply(ctx, nil); err != nil {
		fmt.Fprintf(a.stderr(), "meshtop: note: change capture stays %s (--capture auto would switch to %s: %s); as the installing role, run `meshtop install --capture %s`\n",
			p.Current, p.Target, Message(s.wrap(err)), p.Target)
		return
	}
	fmt.Fprintf(a.stdout(), "change capture: %s (%s)\n", p.Target, safetext.Line(p.Why))
}
