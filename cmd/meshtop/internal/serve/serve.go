// Package serve is `meshtop serve`: one long-running process per MeshHook
// database that keeps the views fresh (leader-elected refresh schedule),
// exports Prometheus metrics over HTTP, and serves the dashboard over SSH.
// Every part reads through one connection pool and one hub (data/hub), so
// the database sees one poller however many viewers and scrapers there are.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/meshtop/meshtop/data/exporter"
	"github.com/meshtop/meshtop/data/hub"
	"github.com/meshtop/meshtop/data/leader"
	"github.com/meshtop/meshtop/data/store"
)

// Config is everything `meshtop serve` runs with.
type Config struct {
	Pool   *pgxpool.Pool // the primary: refreshes, the leader lock, LISTEN
	Store  *store.Store
	Schema string
	Target string // redacted user@host:port/db for the dashboards' header
	Logger *slog.Logger

	Instance string // names this process in logs and the refresh log

	// HTTP.
	Listen string // host:port of /metrics, /healthz, /readyz; "" = off
	// WebConfigFile is an exporter-toolkit web configuration file (TLS,
	// basic auth, headers, rate limit) for every HTTP endpoint; "" = plain
	// HTTP without authentication. Read again on each request (users) and
	// each TLS connection (certificates).
	WebConfigFile string

	// Metrics.
	MetricsWindows      []store.Window
	MetricsMaxWorkflows int
	MetricsMaxSteps     int
	MetricsCache        time.Duration

	// Refresh schedule; 0 = off.
	RefreshEvery   time.Duration
	RefreshTimeout time.Duration

	// Dashboards.
	Interval         time.Duration // how often the shared data is read
	Window           store.Window
	LagWarn, LagCrit time.Duration
	ReadOnly         bool // every SSH session read-only

	// SSH; SSHListen "" = off. Zero limits take the Default* values.
	SSHListen         string
	SSHHostKey        string // generated there if missing; "" = DefaultHostKeyPath(Getenv)
	SSHAuthorizedKeys string
	SSHOperatorKeys   string
	SSHIdleTimeout    time.Duration
	SSHMaxSessions    int
	SSHLoginGrace     time.Duration // to authenticate, then to open a session
	SSHMaxStartups    int           // unauthenticated connections at once
	SSHMaxPerSource   int           // unauthenticated connections at once from one address
	SSHAuthFailDelay  time.Duration // before answering a failed attempt; negative = none

	Version, Commit string

	// Getenv reads the environment (the default host key's directory);
	// nil = os.Getenv.
	Getenv func(string) string

	// Ready, when set, receives the bound addresses once every listener is
	// up (tests listen on port 0).
	Ready func(Addrs)
}

// Addrs are the addresses the servers listen on.
type Addrs struct{ HTTP, SSH string }

// Server is a running `meshtop serve`.
type Server struct {
	cfg   Config
	log   *slog.Logger
	hub   *hub.Hub
	exp   *exporter.Exporter
	sched *leader.Scheduler
	ssh   *sshServer
	obs   *observer
	http  *http.Server
}

// New checks the configuration and prepares the servers (reading the SSH
// host key and key files, so a bad file fails here, in one line).
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Listen == "" && cfg.SSHListen == "" && cfg.RefreshEvery <= 0 {
		return nil, errors.New("nothing to serve: set --listen, --ssh-listen or --refresh-every")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Listen != "" && cfg.WebConfigFile != "" {
		if err := web.Validate(cfg.WebConfigFile); err != nil {
			return nil, fmt.Errorf("--web.config.file %s: %w", cfg.WebConfigFile, err)
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	s.hub = hub.New(ctx, cfg.Store, cfg.Interval, cfg.Logger)
	s.exp = exporter.New(storeReader{hub: s.hub, st: cfg.Store}, exporter.Options{
		Windows: cfg.MetricsWindows, MaxWorkflows: cfg.MetricsMaxWorkflows, MaxSteps: cfg.MetricsMaxSteps,
		Cache: cfg.MetricsCache, Logger: cfg.Logger,
	})
	if cfg.Listen != "" {
		// Refreshes finishing from here on count, scraped or not yet.
		if err := s.exp.Start(ctx); err != nil {
			s.log.Warn("metrics: reading the refresh log at start failed; meshtop_view_refreshes_total counts from the first successful scrape", "err", err)
		}
	}
	s.obs = newObserver(cfg)
	if cfg.RefreshEvery > 0 {
		cc := cfg.Pool.Config().ConnConfig.Copy()
		s.sched = leader.New(cfg.Store, leader.Options{
			ConnConfig: cc, Schema: cfg.Schema, Every: cfg.RefreshEvery, Timeout: cfg.RefreshTimeout,
			Logger: cfg.Logger, OnRefresh: s.obs.refreshed,
		})
	}
	if cfg.SSHListen != "" {
		var err error
		s.ssh, err = newSSHServer(cfg, s.hub, s.obs)
		if err != nil {
			s.hub.Close()
			return nil, err
		}
	}
	return s, nil
}

// storeReader is the exporter's source: overviews and change capture's
// state through the hub (shared with the dashboards), steps and refresh
// outcomes from the store.
type storeReader struct {
	hub *hub.Hub
	st  *store.Store
}

func (r storeReader) Overview(ctx context.Context, w store.Window) (store.Overview, error) {
	return r.hub.Overview(ctx, w)
}
func (r storeReader) CaptureLog(ctx context.Context) (store.CaptureLog, error) {
	return r.hub.CaptureLog(ctx)
}
func (r storeReader) Steps(ctx context.Context, w store.Window) ([]store.StepMetrics, error) {
	return r.st.Steps(ctx, w)
}
func (r storeReader) RefreshOutcomes(ctx context.Context, after int64, limit int) ([]store.RefreshOutcome, error) {
	return r.st.RefreshOutcomes(ctx, after, limit)
}

// Hub is the shared reader (tests and the benchmark read its statistics).
func (s *Server) Hub() *hub.Hub { return s.hub }

// Scheduler is the refresh scheduler, nil without --refresh-every.
func (s *Server) Scheduler() *leader.Scheduler { return s.sched }

// Sessions is the number of open SSH sessions.
func (s *Server) Sessions() int {
	if s.ssh == nil {
		return 0
	}
	return int(s.ssh.active.Load())
}

// Run serves until ctx ends, then stops every part and returns. An error
// starting a listener ends it at once.
func (s *Server) Run(ctx context.Context) error {
	defer s.hub.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var addrs Addrs
	var httpLn, sshLn net.Listener
	var err error
	if s.cfg.Listen != "" {
		if httpLn, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return fmt.Errorf("--listen %s: %w", s.cfg.Listen, err)
		}
		addrs.HTTP = httpLn.Addr().String()
	}
	if s.ssh != nil {
		if sshLn, err = net.Listen("tcp", s.cfg.SSHListen); err != nil {
			if httpLn != nil {
				httpLn.Close()
			}
			return fmt.Errorf("--ssh-listen %s: %w", s.cfg.SSHListen, err)
		}
		addrs.SSH = sshLn.Addr().String()
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	if httpLn != nil {
		h := s.httpServer()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.log.Info("http: serving /metrics, /healthz, /readyz", "addr", addrs.HTTP, "web_config_file", s.cfg.WebConfigFile)
			// The exporter-toolkit adds TLS and basic auth from the web
			// configuration file, if any, in front of every endpoint.
			flags := &web.FlagConfig{WebConfigFile: &s.cfg.WebConfigFile}
			if err := web.Serve(httpLn, h, flags, s.log); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("http: %w", err)
			}
		}()
	}
	if sshLn != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.ssh.cfg
			s.log.Info("ssh: serving the dashboard", "addr", addrs.SSH, "max_sessions", c.SSHMaxSessions, "idle_timeout", c.SSHIdleTimeout.String(),
				"login_grace", c.SSHLoginGrace.String(), "max_startups", c.SSHMaxStartups, "max_per_source", c.SSHMaxPerSource,
				"auth_fail_delay", c.SSHAuthFailDelay.String(), "host_key", c.SSHHostKey)
			if err := s.ssh.serve(sshLn); err != nil {
				errs <- fmt.Errorf("ssh: %w", err)
			}
		}()
		defer s.ssh.close()
	}
	if s.sched != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.log.Info("refresh schedule: campaigning for the leader lock", "every", s.cfg.RefreshEvery.String())
			if err := s.sched.Run(ctx); err != nil {
				errs <- err
			}
		}()
	}
	if s.cfg.Ready != nil {
		s.cfg.Ready(addrs)
	}
	var runErr error
	select {
	case <-ctx.Done():
		s.log.Info("stopping")
	case runErr = <-errs:
		s.log.Error("stopping after an error", "err", runErr)
	}
	cancel()
	if s.ssh != nil {
		s.ssh.close()
	}
	if httpLn != nil {
		sctx, c := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = s.http.Shutdown(sctx)
		c()
	}
	wg.Wait()
	return runErr
}
