package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/meshtop/meshtop/data/safetext"
)

// cronRole is what to grant when pg_cron's functions are denied to a role
// scheduling the refresh.
const cronRole = "USAGE on schema cron (and EXECUTE on cron.schedule/cron.unschedule)"

// JobName is the name of meshtop's pg_cron job for this schema.
func (s *Store) JobName() string { return "meshtop-refresh-" + s.schema }

// cronVersion returns pg_cron's extension version as (major, minor), and
// ok=false when the extension is not installed in this database.
func (s *Store) cronVersion(ctx context.Context) (major, minor int, ok bool, err error) {
	var v string
	err = s.primary.QueryRow(ctx, s.query("cron_version")).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	major, minor = parseVersion(v)
	return major, minor, true, nil
}

// parseVersion reads "1.4", "1.6.4" or "1.4-1".
func parseVersion(v string) (int, int) {
	v, _, _ = strings.Cut(v, "-")
	parts := strings.Split(v, ".")
	major, _ := strconv.Atoi(parts[0])
	minor := 0
	if len(parts) > 1 {
		minor, _ = strconv.Atoi(parts[1])
	}
	return major, minor
}

// Schedule reads meshtop's pg_cron job and its last 10 runs, newest first,
// through the schema's definer functions (060_schedule.sql): a login with
// meshtop_reader alone needs no privilege on schema cron. Without pg_cron it
// returns CronAvailable=false and no error. When the job cannot be read —
// the schema's owner is denied on schema cron, or the installed schema
// predates those functions — it returns Unknown with the reason and the
// grant (or upgrade) that would show it, and no error: the schedule is
// informative, everything else works without it.
func (s *Store) Schedule(ctx context.Context) (Schedule, error) {
	if s.err != nil {
		return Schedule{}, s.err
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	_, _, ok, err := s.cronVersion(ctx)
	if err != nil {
		return Schedule{}, wrap(err, "reading the refresh schedule", RoleReader)
	}
	if !ok {
		return Schedule{}, nil
	}
	sc := Schedule{CronAvailable: true}
	var now time.Time
	err = s.primary.QueryRow(ctx, s.query("cron_job")).Scan(&sc.JobID, &sc.Schedule, &sc.Active, &now)
	if errors.Is(err, pgx.ErrNoRows) {
		return sc, nil
	}
	if err != nil {
		return s.scheduleUnknown(sc, err)
	}
	sc.Scheduled = true
	sc.Every = scheduleEvery(sc.Schedule)
	sc.NextRun = nextRun(sc.Schedule, now)
	rows, err := s.primary.Query(ctx, s.query("cron_runs"))
	if err != nil {
		return s.scheduleUnknown(sc, err)
	}
	sc.LastRuns, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (CronRun, error) {
		var c CronRun
		var start *time.Time
		err := r.Scan(&start, &c.End, &c.Status, &c.Message)
		if start != nil {
			c.Start = *start
		}
		return c, err
	})
	if err != nil {
		return s.scheduleUnknown(sc, err)
	}
	return sc, nil
}

// scheduleUnknown turns a denied read of the schedule, or one of an
// installed schema without 060_schedule's functions, into Schedule.Unknown;
// any other error stays an error.
func (s *Store) scheduleUnknown(sc Schedule, err error) (Schedule, error) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "42501": // insufficient_privilege
			// The owner of the schema on pg_cron's schema or tables (the
			// definer's reads); anything else is the caller's own privilege
			// on meshtop's schema or functions: not a reader.
			if pgErr.Message != "permission denied for schema cron" && !strings.HasPrefix(pgErr.Message, "permission denied for table job") {
				break
			}
			sc.Unknown = safetext.New(fmt.Sprintf("pg_cron denies the owner of schema %s (%s): GRANT USAGE ON SCHEMA cron, SELECT ON cron.job, cron.job_run_details TO that role", s.schema, pgErr.Message))
			return sc, nil
		case "42883": // undefined_function: installed by an older meshtop
			sc.Unknown = safetext.New("the installed schema predates reading the schedule as a reader: run `meshtop install` to upgrade it")
			return sc, nil
		}
	}
	return Schedule{}, wrap(err, "reading the refresh schedule", RoleReader)
}

// SetSchedule registers (or changes) the pg_cron job that refreshes every
// view every `every`: whole minutes dividing an hour (1, 2, 3, 4, 5, 6, 10,
// 12, 15, 20, 30, 60) or whole hours dividing a day; 1–59 seconds only with
// pg_cron ≥ 1.5. The job runs `CALL <schema>.refresh()` as the current role
// (pg_cron cannot combine it with SET statement_timeout: see
// sql/queries/store_cron_command.sql). Scheduling again replaces the job.
func (s *Store) SetSchedule(ctx context.Context, every time.Duration) (Schedule, error) {
	if s.err != nil {
		return Schedule{}, s.err
	}
	if err := s.needSession(); err != nil {
		return Schedule{}, err
	}
	qctx, cancel := s.timeout(ctx)
	major, minor, ok, err := s.cronVersion(qctx)
	cancel()
	if err != nil {
		return Schedule{}, wrap(err, "scheduling the refresh", RoleRefresher)
	}
	if !ok {
		return Schedule{}, fmt.Errorf("scheduling the refresh: %w", ErrCronUnavailable)
	}
	expr, err := CronExpr(every, major > 1 || (major == 1 && minor >= 5))
	if err != nil {
		return Schedule{}, fmt.Errorf("scheduling the refresh: %w", err)
	}
	qctx, cancel = s.timeout(ctx)
	_, err = s.primary.Exec(qctx, s.query("cron_schedule"), s.JobName(), expr, s.cronCommand())
	cancel()
	if err != nil {
		return Schedule{}, wrap(err, "scheduling the refresh", cronRole)
	}
	return s.Schedule(ctx)
}

// cronCommand is what pg_cron runs: see store_cron_command.sql.
func (s *Store) cronCommand() string {
	return strings.TrimSpace(stripComments(s.query("cron_command")))
}

// stripComments drops whole-line "--" comments.
func stripComments(text string) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// Unschedule removes meshtop's pg_cron job; no error when there is none.
func (s *Store) Unschedule(ctx context.Context) error {
	if s.err != nil {
		return s.err
	}
	if err := s.needSession(); err != nil {
		return err
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	_, _, ok, err := s.cronVersion(ctx)
	if err != nil {
		return wrap(err, "removing the refresh schedule", RoleRefresher)
	}
	if !ok {
		return fmt.Errorf("removing the refresh schedule: %w", ErrCronUnavailable)
	}
	if _, err := s.primary.Exec(ctx, s.query("cron_unschedule"), s.JobName()); err != nil {
		return wrap(err, "removing the refresh schedule", cronRole)
	}
	return nil
}

// CronExpr turns an interval into the pg_cron schedule meshtop uses.
// seconds allows pg_cron ≥ 1.5's "N seconds" form for intervals under a
// minute.
func CronExpr(every time.Duration, seconds bool) (string, error) {
	const allowed = "use whole minutes dividing an hour (1m, 2m, 3m, 4m, 5m, 6m, 10m, 12m, 15m, 20m, 30m, 60m) or whole hours dividing a day (1h, 2h, 3h, 4h, 6h, 8h, 12h, 24h)"
	switch {
	case every <= 0:
		return "", fmt.Errorf("the refresh interval must be positive; %s", allowed)
	case every < time.Minute:
		if every%time.Second != 0 {
			return "", fmt.Errorf("the refresh interval %s is not a whole number of seconds", every)
		}
		if !seconds {
			return "", fmt.Errorf("the refresh interval %s needs pg_cron 1.5 or later for second schedules (this database has an older pg_cron, which schedules whole minutes); %s", every, allowed)
		}
		return fmt.Sprintf("%d seconds", every/time.Second), nil
	case every%time.Minute == 0 && every <= time.Hour:
		m := int(every / time.Minute)
		if 60%m != 0 {
			break
		}
		switch m {
		case 1:
			return "* * * * *", nil
		case 60:
			return "0 * * * *", nil
		}
		return fmt.Sprintf("*/%d * * * *", m), nil
	case every%time.Hour == 0 && every <= 24*time.Hour:
		h := int(every / time.Hour)
		if 24%h != 0 {
			break
		}
		if h == 24 {
			return "0 0 * * *", nil
		}
		return fmt.Sprintf("0 */%d * * *", h), nil
	}
	return "", fmt.Errorf("cannot schedule a refresh every %s with pg_cron; %s", every, allowed)
}

// scheduleEvery inverts CronExpr; 0 for schedules meshtop did not write.
func scheduleEvery(expr string) time.Duration {
	f := strings.Fields(expr)
	if len(f) == 2 && f[1] == "seconds" {
		if n, err := strconv.Atoi(f[0]); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
		return 0
	}
	if len(f) != 5 || f[2] != "*" || f[3] != "*" || f[4] != "*" {
		return 0
	}
	step := func(field string) int {
		if field == "*" {
			return 1
		}
		if n, ok := strings.CutPrefix(field, "*/"); ok {
			if v, err := strconv.Atoi(n); err == nil && v > 0 {
				return v
			}
		}
		return 0
	}
	switch {
	case f[0] == "0" && f[1] == "*": // hourly
		return time.Hour
	case f[1] == "*": // every N minutes
		if n := step(f[0]); n > 0 {
			return time.Duration(n) * time.Minute
		}
	case f[0] == "0" && f[1] == "0":
		return 24 * time.Hour
	case f[0] == "0":
		if n := step(f[1]); n > 0 {
			return time.Duration(n) * time.Hour
		}
	}
	return 0
}

// nextRun computes the next firing after now of a schedule written by
// CronExpr; pg_cron evaluates schedules in UTC (GMT). nil for other forms.
func nextRun(expr string, now time.Time) *time.Time {
	every := scheduleEvery(expr)
	if every <= 0 {
		return nil
	}
	now = now.UTC()
	var next time.Time
	if every < time.Minute {
		// pg_cron runs second schedules every N seconds from when it
		// started: only approximately predictable.
		next = now.Truncate(time.Second).Add(every)
	} else {
		// Steps are aligned to the hour (minutes) or the day (hours).
		base := now.Truncate(time.Hour)
		if every >= time.Hour {
			base = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		}
		next = base.Add((now.Sub(base)/every + 1) * every)
	}
	return &next
}
