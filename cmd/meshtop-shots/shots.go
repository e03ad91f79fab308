package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/store"
	"github.com/meshtop/meshtop/tui"
)

// shot is one screenshot: capture drives a fresh dashboard to the screen
// and returns its final frame.
type shot struct {
	name    string
	capture func(ctx context.Context, l *lab) (string, error)
}

// shots in the order they are taken. The console comes last: it leaves a
// refresh behind that it cancels on the way out.
var shots = []shot{
	{"overview", overviewShot},
	{"detail", detailShot},
	{"help", helpShot},
	{"install", installShot},
	{"run", runShot},
	{"console", consoleShot},
}

func knownShot(name string) bool { return slices.Contains(shotNames(), name) }

func shotNames() []string {
	var ns []string
	for _, s := range shots {
		ns = append(ns, s.name)
	}
	return ns
}

// options are the dashboard's options for a shot: fixed clock, the CLI's
// default poll interval (polls re-read the same normalised data, so frames
// stay identical), the clipboard sequence discarded.
func options(src tui.Source, in tui.Installer) tui.Options {
	return tui.Options{
		Store: src, Installer: in, Interval: 2 * time.Second, Window: store.Window24h, Target: target,
		Clock: func() time.Time { return anchor }, Output: io.Discard,
	}
}

// dashboard starts the real model on the installed database.
func dashboard(ctx context.Context, l *lab) (*session, error) {
	s := startSession(ctx, tui.NewWithContext(ctx, options(normalised{l.store(l.installed)}, nil)))
	return s, s.wait(ctx, "data as of")
}

func overviewShot(ctx context.Context, l *lab) (string, error) {
	s, err := dashboard(ctx, l)
	if err != nil {
		return "", err
	}
	return s.quit()
}

func detailShot(ctx context.Context, l *lab) (string, error) {
	s, err := dashboard(ctx, l)
	if err != nil {
		return "", err
	}
	s.keys("enter")
	if err := s.wait(ctx, "runs / hour", "Step (node)"); err != nil {
		return "", err
	}
	return s.quit()
}

func helpShot(ctx context.Context, l *lab) (string, error) {
	s, err := dashboard(ctx, l)
	if err != nil {
		return "", err
	}
	s.keys("?")
	if err := s.wait(ctx, "any key closes this help"); err != nil {
		return "", err
	}
	return s.quit()
}

// runShot: the drill-down's run timeline — the workflow failing most (the
// overview's first row), its failed runs (f), the newest one's steps
// (enter).
func runShot(ctx context.Context, l *lab) (string, error) {
	s, err := dashboard(ctx, l)
	if err != nil {
		return "", err
	}
	s.keys("enter")
	if err := s.wait(ctx, "runs / hour", "Step (node)"); err != nil {
		return "", err
	}
	s.keys("f")
	if err := s.wait(ctx, "Failed runs", "newest first"); err != nil {
		return "", err
	}
	s.keys("enter")
	if err := s.wait(ctx, "‹Run›", "Outcome", "failed"); err != nil {
		return "", err
	}
	return s.quit()
}

// installShot: a database with MeshHook's tables and no meshtop offers to
// install and lists what it would create.
func installShot(ctx context.Context, l *lab) (string, error) {
	in := install.New(l.fresh, schema)
	s := startSession(ctx, tui.NewWithContext(ctx, options(normalised{l.store(l.fresh)}, in)))
	if err := s.wait(ctx, "Install now?"); err != nil {
		return "", err
	}
	return s.quit()
}

// consoleView is the view the console selects first.
const consoleView = "mv_workflow_metrics_hourly"

// consoleShot: the refresh console with a refresh running — started with r
// and waiting for a lock another session holds (an ANALYZE in a
// transaction left open, as a DBA might), which the console names.
func consoleShot(ctx context.Context, l *lab) (string, error) {
	if _, err := l.installed.Exec(ctx, "update metrics.config set value = '5min' where key = 'lock_timeout'"); err != nil {
		return "", fmt.Errorf("raising lock_timeout: %w", err)
	}
	release, err := lockView(ctx, l.installed, consoleView)
	if err != nil {
		return "", err
	}
	defer release()
	s, err := dashboard(ctx, l)
	if err != nil {
		return "", err
	}
	s.keys("tab")
	if err := s.wait(ctx, "Recent", "schedule:"); err != nil {
		return "", err
	}
	s.keys("r")
	if err := s.wait(ctx, "waiting for a lock", "blocked by pid"); err != nil {
		return "", err
	}
	frame, err := s.quit()
	if err == nil && !strings.Contains(frame, blockerStmt(consoleView)) {
		err = fmt.Errorf("the blocker's query is not shown:\n%s", frame)
	}
	return frame, err
}

// blockerStmt is what lockView runs for view: ANALYZE takes a SHARE UPDATE
// EXCLUSIVE lock on a materialized view; the hourly view is a plain view
// over the hourly rollup, which its refresh writes, so a SHARE lock on that
// table holds the refresh (readers go on either way).
func blockerStmt(view string) string {
	if view == "mv_workflow_metrics_hourly" {
		return "lock table " + schema + ".rollup_runs_hour in share mode"
	}
	return "analyze " + schema + "." + view
}

// lockView holds a lock on its own connection that makes a refresh of view
// wait while reads go on (blockerStmt). release ends it.
func lockView(ctx context.Context, pool *pgxpool.Pool, view string) (release func(), err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Release()
		return nil, fmt.Errorf("beginning a transaction: %w", err)
	}
	release = func() {
		_ = tx.Rollback(context.Background())
		conn.Release()
	}
	// Fixed names from this file, no user input.
	if _, err := tx.Exec(ctx, blockerStmt(view)); err != nil {
		release()
		return nil, fmt.Errorf("locking %s: %w", view, err)
	}
	return release, nil
}
