package install

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Change capture modes (install --capture; docs/REFRESH.md, "Change capture
// from the WAL").
const (
	// CaptureAuto: WAL capture where the database allows it and a schedule
	// consumes the slot (meshtop's pg_cron job, or a refresh loop), else
	// the triggers.
	CaptureAuto = "auto"
	// CaptureWAL: a logical replication slot read by every refresh; no
	// trigger on MeshHook's hot path.
	CaptureWAL = "wal"
	// CaptureTriggers: row-level triggers log every change in the writer's
	// transaction.
	CaptureTriggers = "triggers"
)

// ParseCapture accepts auto, wal or triggers.
func ParseCapture(s string) (string, error) {
	switch s {
	case CaptureAuto, CaptureWAL, CaptureTriggers:
		return s, nil
	}
	return "", fmt.Errorf("unknown capture mode %q: use auto, wal or triggers", s)
}

// CapturePlan is what Apply does (or did) about change capture.
type CapturePlan struct {
	Desired string // what was asked: auto, wal or triggers
	Current string // the mode before: triggers, arming or wal ("" before the first install)
	Target  string // the mode after: triggers or wal
	Why     string // one line: why Target (what makes WAL capture impossible, what consumes the slot)
}

// Switches reports whether the plan changes the mode.
func (p CapturePlan) Switches() bool { return p.Current != p.Target }

// SetCapture makes Apply bring change capture to mode (auto, wal or
// triggers), whether or not a migration is pending. Without it Apply keeps
// the mode the schema records (auto on a new install).
func (in *Installer) SetCapture(mode string) { in.capture = mode }

// SetCaptureLoop tells the auto mode that a refresh loop (refresh --every,
// serve --refresh-every) consumes the slot: auto then means WAL where the
// database allows it, as with a pg_cron job.
func (in *Installer) SetCaptureLoop(loop bool) { in.captureLoop = loop }

// captureState reads the recorded capture state ("" when the schema
// predates migration 015 or is missing, or when this role may not read it:
// a dry run by a role that is not the owner prints the SQL for the owner,
// without the capture switch it cannot know).
func (in *Installer) captureState(ctx context.Context, q querier) (desired, mode string, err error) {
	quoted, err := in.quoted()
	if err != nil {
		return "", "", err
	}
	var exists bool
	if err := q.QueryRow(ctx, bookkeeping+"SELECT CASE WHEN pg_catalog.to_regclass($1) IS NULL THEN false ELSE pg_catalog.has_table_privilege($1, 'SELECT') END", quoted+".capture_state").Scan(&exists); err != nil {
		return "", "", fmt.Errorf("looking for the capture state: %w", err)
	}
	if !exists {
		return "", "", nil
	}
	if err := q.QueryRow(ctx, bookkeeping+"SELECT desired, mode FROM "+quoted+".capture_state").Scan(&desired, &mode); err != nil {
		return "", "", fmt.Errorf("reading the capture state: %w", err)
	}
	return desired, mode, nil
}

// CapturePlan says what Apply would do about change capture now (after
// the pending migrations, which must be applied for WAL capture to be
// known). A desired mode of wal where WAL capture is impossible is an
// error, a *PreconditionError of Kind "capture" naming why in one line.
func (in *Installer) CapturePlan(ctx context.Context) (CapturePlan, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return in.capturePlan(ctx, in.pool)
}

func (in *Installer) capturePlan(ctx context.Context, q querier) (CapturePlan, error) {
	quoted, err := in.quoted()
	if err != nil {
		return CapturePlan{}, err
	}
	desired, mode, err := in.captureState(ctx, q)
	if err != nil {
		return CapturePlan{}, err
	}
	p := CapturePlan{Desired: in.capture, Current: mode}
	if p.Desired == "" {
		p.Desired = desired
	}
	if p.Desired == "" {
		p.Desired = CaptureAuto
	}
	if mode == "" {
		// Not installed yet (or before 015): the functions below do not
		// exist yet. The migrations start with the triggers; wal is
		// checked and switched to once they are applied, auto is decided
		// then.
		p.Current = CaptureTriggers
		p.Target, p.Why = CaptureTriggers, "decided once the schema is installed"
		switch p.Desired {
		case CaptureTriggers:
			p.Why = "asked for"
		case CaptureWAL:
			p.Target, p.Why = CaptureWAL, "asked for"
		}
		return p, nil
	}
	var why *string
	switch p.Desired {
	case CaptureTriggers:
		p.Target, p.Why = CaptureTriggers, "asked for"
	case CaptureWAL:
		if err := q.QueryRow(ctx, bookkeeping+"SELECT "+quoted+".wal_unavailable()").Scan(&why); err != nil {
			return p, fmt.Errorf("checking whether WAL capture is possible: %w", err)
		}
		if why != nil {
			return p, &PreconditionError{Kind: "capture", Msg: "WAL capture is impossible: " + *why + "."}
		}
		p.Target, p.Why = CaptureWAL, "asked for"
	default:
		var target string
		if err := q.QueryRow(ctx, bookkeeping+"SELECT mode, why FROM "+quoted+".capture_auto($1)", in.captureLoop).Scan(&target, &why); err != nil {
			return p, fmt.Errorf("choosing the capture mode: %w", err)
		}
		p.Target = target
		if why != nil {
			p.Why = *why
		}
	}
	return p, nil
}

// captureSteps are the transactions that bring capture from plan.Current
// to plan.Target, as DryRun shows them and applyCapture runs them.
func (in *Installer) captureSteps(p CapturePlan) ([]step, error) {
	quoted, err := in.quoted()
	if err != nil {
		return nil, err
	}
	desired := fmt.Sprintf("UPDATE %s.capture_state SET desired = %s", quoted, literal(p.Desired))
	mk := func(name string, stmts ...string) step {
		return step{m: Migration{Name: name, Repeatable: true}, stmts: stmts}
	}
	tx := func(lockTimeout string, body ...string) []string {
		return append(append([]string{"BEGIN", lockTimeout}, body...), "COMMIT")
	}
	short := in.lockTimeoutSQL()
	switch {
	case p.Target == CaptureWAL && p.Current != CaptureWAL:
		return []step{
			mk("capture_wal_prepare", tx(short, desired, "SELECT "+quoted+".capture_wal_prepare()")...),
			// Creating a slot waits for the transactions running now to
			// end; it holds no lock a writer waits for.
			// (A top-level statement: created inside a PL/pgSQL function
			// while other transactions run, PostgreSQL 15 fails with
			// "snapshot reference ... is not owned by resource owner".)
			mk("capture_wal_slot", tx("SET LOCAL lock_timeout = '60s'",
				"SELECT pg_catalog.pg_create_logical_replication_slot("+quoted+".wal_slot_name(), 'pgoutput') WHERE NOT EXISTS (SELECT FROM "+quoted+".wal_slot())")...),
			mk("capture_wal_activate", tx(short, "SELECT "+quoted+".capture_wal_activate()", "SELECT "+quoted+".capture_ensure()")...),
		}, nil
	case p.Target == CaptureTriggers && p.Current == CaptureWAL:
		return []step{
			mk("capture_triggers_on", tx(short, desired, "SELECT "+quoted+".capture_triggers_on()")...),
			// Waits for a running refresh's apply (its advisory lock), then
			// consumes the slot past the point where the triggers exist.
			mk("capture_wal_drain", tx("SET LOCAL lock_timeout = '60s'", "SELECT "+quoted+".capture_wal_drain($1)")...),
			mk("capture_wal_teardown", tx(short, "SELECT "+quoted+".capture_wal_teardown()")...),
		}, nil
	case p.Target == CaptureTriggers:
		// Triggers already (or an install that stopped while arming):
		// triggers on, leftovers of WAL capture removed.
		return []step{
			mk("capture_triggers", tx(short, desired, "UPDATE "+quoted+".capture_state SET mode = 'triggers', mode_since = pg_catalog.now() WHERE mode = 'arming'",
				"SELECT "+quoted+".capture_row_triggers(true) WHERE NOT "+quoted+".capture_triggers_exist()",
				"SELECT "+quoted+".capture_wal_teardown()")...),
		}, nil
	}
	return []step{mk("capture_"+p.Target, tx(short, desired)...)}, nil
}

// captureNeeded reports whether the plan has anything to do: a switch, a
// desired mode to record, or (asked for explicitly) the triggers' mode made
// whole again.
func (in *Installer) captureNeeded(ctx context.Context, q querier, p CapturePlan) (bool, error) {
	desired, mode, err := in.captureState(ctx, q)
	if err != nil {
		return false, err
	}
	if mode == "" {
		// Not installed yet (a dry run before the first install): Apply
		// decides after the migrations, and changes capture then only if
		// asked to (the migrations start with the triggers and auto).
		return in.capture != "", nil
	}
	if p.Switches() || p.Current == "arming" {
		return true, nil
	}
	return desired != p.Desired || in.capture != "", nil
}

// applyCapture runs the plan's steps on conn (under the install lock).
func (in *Installer) applyCapture(ctx context.Context, conn *pgxpool.Conn, p CapturePlan, onStep func(StepEvent)) error {
	steps, err := in.captureSteps(p)
	if err != nil {
		return err
	}
	var target string // the drain's target position, from capture_triggers_on
	for _, s := range steps {
		onStep(StepEvent{Name: s.m.Name})
		t0 := time.Now()
		var err error
		switch s.m.Name {
		case "capture_wal_slot":
			err = in.retryBusy(ctx, s.what(), func() error { return in.runStep(ctx, conn, s) })
		case "capture_triggers_on":
			err = in.retryLocks(ctx, conn, s.what(), false, func() error {
				return in.runStepScan(ctx, conn, s, &target)
			})
		case "capture_wal_drain":
			err = in.drain(ctx, conn, s, target)
		default:
			// ALTER TABLE ... REPLICA IDENTITY (teardown, restoring what
			// a meshtop before 2026-12-08 changed) takes ACCESS
			// EXCLUSIVE: readers block it too.
			readers := strings.Contains(s.m.Name, "teardown")
			err = in.retryLocks(ctx, conn, s.what(), readers, func() error {
				return in.retryBusy(ctx, s.what(), func() error { return in.runStep(ctx, conn, s) })
			})
		}
		onStep(StepEvent{Name: s.m.Name, Done: true, Err: err, Duration: time.Since(t0)})
		if err != nil {
			return err
		}
	}
	return nil
}

// runStepScan runs a step whose one SELECT returns a value (scanned into
// out as text).
func (in *Installer) runStepScan(ctx context.Context, conn *pgxpool.Conn, s step, out *string) error {
	inTx := false
	for _, st := range s.stmts {
		var err error
		if strings.HasPrefix(st, "SELECT ") {
			err = conn.QueryRow(ctx, st).Scan(out)
		} else {
			_, err = conn.Exec(ctx, st)
		}
		if err != nil {
			if inTx {
				in.rollback(ctx, conn)
			}
			return fmt.Errorf("%s: %w", s.what(), err)
		}
		switch st {
		case "BEGIN":
			inTx = true
		case "COMMIT":
			inTx = false
		}
	}
	return nil
}

func (in *Installer) rollback(ctx context.Context, conn *pgxpool.Conn) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, rerr := conn.Exec(cctx, "ROLLBACK"); rerr != nil {
		_ = conn.Conn().Close(cctx)
	}
}

// drain consumes the slot past target (capture_wal_drain), trying again
// while a transaction before it is not yet visible or a refresh applies.
func (in *Installer) drain(ctx context.Context, conn *pgxpool.Conn, s step, target string) error {
	start := time.Now()
	for {
		var done bool
		err := func() error {
			for _, st := range s.stmts {
				var err error
				if strings.HasPrefix(st, "SELECT ") {
					err = conn.QueryRow(ctx, st, target).Scan(&done)
				} else {
					_, err = conn.Exec(ctx, st)
				}
				if err != nil {
					in.rollback(ctx, conn)
					return fmt.Errorf("%s: %w", s.what(), err)
				}
			}
			return nil
		}()
		if err != nil && !isLockTimeout(err) {
			return err
		}
		if err == nil && done {
			return nil
		}
		if time.Since(start) > in.lockWait {
			if err != nil {
				return err
			}
			return fmt.Errorf("%s: the slot could not be consumed past %s within %s", s.what(), target, in.lockWait.Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", s.what(), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// retryBusy retries try while the slot is in use by another session (a
// refresh reading it: object_in_use) or its creation timed out waiting
// for running transactions, up to lockWait.
func (in *Installer) retryBusy(ctx context.Context, what string, try func() error) error {
	start := time.Now()
	for {
		err := try()
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || (pgErr.Code != "55006" && !(strings.Contains(what, "capture_wal_slot") && pgErr.Code == "55P03")) {
			return err
		}
		if time.Since(start) > in.lockWait {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
