package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/fixture"
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/pgserver"
	"github.com/meshtop/meshtop/data/store"
)

// anchor is the end of the generated history, the pinned metrics clock and
// the model clock: every relative time and chart range is computed from it.
var anchor = time.Date(2026, 3, 10, 12, 30, 0, 0, time.UTC)

const (
	schema = "metrics"
	// target is what the header shows as the database (the real port is
	// random).
	target = "localhost:5432/meshhook"
)

// spec is the data set of every shot: a few tenants, a couple of dozen
// workflows and a month of runs with their step events.
var spec = fixture.Spec{
	Seed: 42, Projects: 4, Workflows: 24, Runs: 30000, Days: 30, Anchor: anchor, Events: true,
}

// lab is the throwaway cluster and its two databases: "meshhook" with
// meshtop installed and refreshed, "fresh" with the same history and no
// meshtop (for the install prompt).
type lab struct {
	srv   *pgserver.Server
	pools []*pgxpool.Pool

	installed *pgxpool.Pool
	fresh     *pgxpool.Pool
}

func startLab(ctx context.Context) (*lab, error) {
	srv, err := pgserver.Start(ctx, pgserver.Options{})
	if err != nil {
		return nil, fmt.Errorf("starting PostgreSQL: %w", err)
	}
	l := &lab{srv: srv}
	ok := false
	defer func() {
		if !ok {
			l.close()
		}
	}()
	if l.installed, err = l.database(ctx, "meshhook"); err != nil {
		return nil, err
	}
	if l.fresh, err = l.database(ctx, "fresh"); err != nil {
		return nil, err
	}
	in := install.New(l.installed, schema)
	if _, err := in.Apply(ctx, nil); err != nil {
		return nil, fmt.Errorf("installing meshtop: %w", err)
	}
	a := anchor
	if err := in.SetClock(ctx, &a); err != nil {
		return nil, fmt.Errorf("pinning the metrics clock: %w", err)
	}
	res, err := l.store(l.installed).Refresh(ctx, "", false)
	if err != nil {
		return nil, fmt.Errorf("refreshing the views: %w", err)
	}
	for _, r := range res {
		if r.Status != "ok" {
			return nil, fmt.Errorf("refreshing %s: %s %s", r.View, r.Status, r.Error)
		}
	}
	ok = true
	return l, nil
}

// database creates a database with the MeshHook schema and the fixed history.
func (l *lab) database(ctx context.Context, name string) (*pgxpool.Pool, error) {
	admin, err := pgx.Connect(ctx, l.srv.DSN("postgres"))
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	_, err = admin.Exec(ctx, "create database "+pgx.Identifier{name}.Sanitize())
	admin.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	conn, err := pgx.Connect(ctx, l.srv.DSN(name))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", name, err)
	}
	err = fixture.ApplySchema(ctx, conn)
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, l.srv.DSN(name))
	if err != nil {
		return nil, fmt.Errorf("opening a pool on %s: %w", name, err)
	}
	l.pools = append(l.pools, pool)
	if _, err := fixture.Generate(ctx, pool, spec); err != nil {
		return nil, fmt.Errorf("generating the history in %s: %w", name, err)
	}
	return pool, nil
}

func (l *lab) store(pool *pgxpool.Pool) *store.Store {
	return store.New(pool, nil, store.Options{Schema: schema})
}

func (l *lab) close() {
	for _, p := range l.pools {
		p.Close()
	}
	if err := l.srv.Stop(); err != nil {
		logf("stopping PostgreSQL: %v", err)
	}
}
