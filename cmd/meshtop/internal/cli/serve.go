package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshtop/meshtop/cmd/meshtop/internal/serve"
	"github.com/meshtop/meshtop/data/conn"
	"github.com/meshtop/meshtop/data/store"
)

type serveFlags struct {
	listen, instance, logFormat, dsnFile  string
	webConfigFile                         string
	metricsWindows                        string
	metricsMaxWorkflows, metricsMaxSteps  int
	metricsCache, refreshEvery            time.Duration
	interval, lagWarn, lagCrit            time.Duration
	window                                store.Window
	sshListen, sshHostKey, sshKeys, sshOp string
	sshIdle                               time.Duration
	sshMax                                int
	sshGrace, sshFailDelay                time.Duration
	sshMaxStartups, sshMaxPerSource       int
	maxConns                              int
}

const serveLong = `serve runs one long-lived process per MeshHook database. Any combination of:

  --listen ADDR          Prometheus metrics on http://ADDR/metrics, plus /healthz
                         (the process is up) and /readyz (the database answers and
                         the views are installed). Nothing on HTTP writes. With
                         --web.config.file FILE (the exporter-toolkit format of
                         node_exporter and postgres_exporter) all three are served
                         over TLS and/or behind basic auth.
  --refresh-every D      refresh every view every D. Any number of serve replicas
                         may run: they elect one leader through a session advisory
                         lock on a dedicated connection, so the views are refreshed
                         once per interval; if the leader dies or loses its
                         connection another takes over within two intervals. Off by
                         default (leave it off when pg_cron holds the schedule).
  --ssh-listen ADDR      the dashboard over SSH: ssh -p PORT HOST shows the same
                         screens and keys as meshtop. Public-key logins only, for
                         the keys in --ssh-authorized-keys (OpenSSH format).
                         Sessions are read-only unless their key is also listed in
                         --ssh-operator-keys (then R refreshes and x cancels, as
                         locally; each is logged with the SSH user and key, and
                         the refresh log names them). Both files are re-read when
                         they change: removing a key ends its sessions. A host key
                         is generated at --ssh-host-key on first start (default:
                         the state directory, never the working directory).
                         Before login: --ssh-login-grace, --ssh-max-startups,
                         --ssh-max-per-source, --ssh-auth-fail-delay, as OpenSSH's
                         LoginGraceTime and MaxStartups. Every session shares one
                         connection pool and one reader: twenty viewers cost the
                         database what one does.

Metrics (names and labels in docs/SERVE.md): per view the last successful
refresh time, lag, duration, rows, populated and refreshes by outcome; per
workflow version and window (--metrics-windows) runs by status, success and
failure ratio, p50/p95/p99 run duration and runs running now; per step of
those (node) executions by outcome, attempts, failed attempts, retried
executions, most attempts, attempts by HTTP status class and p50/p95
latency; plus the exporter's own reads and errors and the Go runtime's
metrics. A scrape reads the database at most once per --metrics-cache
however many servers scrape; at most --metrics-max-workflows workflow
versions are exported per window, the worst failure ratio first, and at
most --metrics-max-steps of their steps, the most failures first.

Logs are structured (log/slog, --log-format text or json) on stderr and
never contain a password. SIGTERM or SIGINT stops cleanly: sessions end,
the leader lock is released, an unfinished refresh is cancelled and keeps
the views' previous contents.

Credentials: use --dsn-file (a systemd credential), DATABASE_URL or the
libpq environment (PGPASSWORD, PGPASSFILE, PGSERVICEFILE), never --dsn:
command lines are visible to every user of the machine. Every flag below
can also be set as MESHTOP_<FLAG> (MESHTOP_REFRESH_EVERY=1m), e.g. from a
systemd EnvironmentFile; deploy/systemd/meshtop-serve.service is a hardened
unit. serve reads and refreshes on the primary (--replica-dsn is not used).
Through a transaction pooler (port 6543) only the metrics work:
--refresh-every and --ssh-listen need a session and are refused (exit 2).
Full reference: docs/SERVE.md.`

func (a *app) serveCmd() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Keep the views fresh, export Prometheus metrics, serve the dashboard over SSH",
		Long:  serveLong,
		Example: `  DATABASE_URL=... meshtop serve --listen 127.0.0.1:9188
  meshtop serve --listen :9188 --refresh-every 1m --instance "$(hostname)"
  meshtop serve --ssh-listen :2222 --ssh-authorized-keys /etc/meshtop/viewers \
      --ssh-operator-keys /etc/meshtop/operators --ssh-host-key /var/lib/meshtop/host_ed25519`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runServe(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:9188", "address of the HTTP endpoints (/metrics, /healthz, /readyz); empty turns them off")
	fl.StringVar(&f.webConfigFile, "web.config.file", "", "exporter-toolkit web configuration file enabling TLS and basic auth on the HTTP endpoints (docs/SERVE.md); empty: plain HTTP, no authentication")
	fl.StringVar(&f.instance, "instance", "", "name of this instance in logs, metrics and the refresh log's application_name (default HOSTNAME-PID)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&f.metricsWindows, "metrics-windows", "24h", "comma-separated windows of the workflow metrics: 1h, 24h, 7d, 30d")
	fl.IntVar(&f.metricsMaxWorkflows, "metrics-max-workflows", 200, "most workflow versions exported per window, worst failure ratio first (bounds the series count)")
	fl.IntVar(&f.metricsMaxSteps, "metrics-max-steps", 100, "most steps (nodes of the exported workflow versions) exported per window, most failures first (bounds the series count)")
	fl.Var(newDuration(&f.metricsCache, 15*time.Second), "metrics-cache", "a scrape reads the database at most once per this interval")
	fl.Var(&durationValue{&f.refreshEvery}, "refresh-every", "refresh every view at this interval, on one leader among all serve replicas; 0 (the default) leaves refreshing to pg_cron or others")
	fl.Var(newDuration(&f.interval, 2*time.Second), "interval", "how often the SSH dashboards' shared data is read")
	fl.Var(newWindow(&f.window, store.Window24h), "window", "window an SSH dashboard shows first")
	fl.Var(newDuration(&f.lagWarn, 2*time.Minute), "lag-warn", "refresh lag that turns the dashboards' badge yellow")
	fl.Var(newDuration(&f.lagCrit, 10*time.Minute), "lag-crit", "refresh lag that turns the dashboards' badge red")
	fl.StringVar(&f.sshListen, "ssh-listen", "", "address of the SSH dashboard, e.g. :2222; empty (default) turns it off")
	fl.StringVar(&f.sshHostKey, "ssh-host-key", "", "the SSH host key, generated on first start (default $STATE_DIRECTORY/ssh_host_ed25519_key under systemd, else $XDG_STATE_HOME/meshtop/ or ~/.local/state/meshtop/)")
	fl.StringVar(&f.sshKeys, "ssh-authorized-keys", "", "authorized_keys file of the keys that may log in (read-only sessions); re-read when it changes")
	fl.StringVar(&f.sshOp, "ssh-operator-keys", "", "authorized_keys file of operator keys: they may log in and refresh or cancel (R, r, x)")
	fl.Var(newDuration(&f.sshIdle, 30*time.Minute), "ssh-idle-timeout", "end an SSH session after this long without a key press")
	fl.IntVar(&f.sshMax, "ssh-max-sessions", serve.DefaultSSHMaxSessions, "most SSH sessions open at once")
	fl.Var(newDuration(&f.sshGrace, serve.DefaultSSHLoginGrace), "ssh-login-grace", "close an SSH connection that has not authenticated within this time (then: has not opened a session)")
	fl.IntVar(&f.sshMaxStartups, "ssh-max-startups", serve.DefaultSSHMaxStartups, "most unauthenticated SSH connections at once; more are closed on arrival")
	fl.IntVar(&f.sshMaxPerSource, "ssh-max-per-source", serve.DefaultSSHMaxPerSource, "most unauthenticated SSH connections at once from one address")
	fl.Var(newZeroDuration(&f.sshFailDelay, serve.DefaultSSHAuthFailDelay), "ssh-auth-fail-delay", "answer each failed SSH authentication attempt only after this delay (0: at once)")
	fl.IntVar(&f.maxConns, "max-conns", 8, "size of the shared connection pool")
	fl.StringVar(&f.dsnFile, "dsn-file", "", "read the connection string from this file (e.g. a systemd credential, $CREDENTIALS_DIRECTORY/database-url) when --dsn is not set")
	_ = cmd.RegisterFlagCompletionFunc("log-format", fixedCompletions([]string{"text", "json"}))
	return cmd
}

func (a *app) runServe(cmd *cobra.Command, f *serveFlags) error {
	// serve's own flags come from MESHTOP_<FLAG> too (an EnvironmentFile).
	var envErrs []error
	cmd.LocalNonPersistentFlags().VisitAll(a.envApplier(&envErrs))
	if err := errors.Join(envErrs...); err != nil {
		return err
	}
	windows, err := parseWindows(f.metricsWindows)
	if err != nil {
		return fmt.Errorf("--metrics-windows: %w", err)
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		return fmt.Errorf("--log-format %q: use text or json", f.logFormat)
	}
	if f.metricsMaxWorkflows < 1 {
		return fmt.Errorf("--metrics-max-workflows %d: must be at least 1", f.metricsMaxWorkflows)
	}
	if f.metricsMaxSteps < 1 {
		return fmt.Errorf("--metrics-max-steps %d: must be at least 1", f.metricsMaxSteps)
	}
	if f.sshMax < 1 {
		return fmt.Errorf("--ssh-max-sessions %d: must be at least 1", f.sshMax)
	}
	if f.sshMaxStartups < 1 {
		return fmt.Errorf("--ssh-max-startups %d: must be at least 1", f.sshMaxStartups)
	}
	if f.sshMaxPerSource < 1 {
		return fmt.Errorf("--ssh-max-per-source %d: must be at least 1", f.sshMaxPerSource)
	}

	if f.maxConns < 3 {
		return fmt.Errorf("--max-conns %d: must be at least 3 (a read, a refresh and LISTEN)", f.maxConns)
	}
	if f.sshListen != "" && f.sshKeys == "" {
		return fmt.Errorf("--ssh-listen needs --ssh-authorized-keys FILE: the SSH dashboard admits public keys only")
	}
	failDelay := f.sshFailDelay
	if failDelay == 0 {
		failDelay = -1 // serve.Config: zero is the default, negative none
	}
	if f.refreshEvery > 0 {
		if err := a.refuseReadOnly("schedule refreshes (--refresh-every)"); err != nil {
			return err
		}
	}
	instance := f.instance
	if instance == "" {
		host, _ := os.Hostname()
		instance = host + "-" + strconv.Itoa(os.Getpid())
	}
	appName := a.g.appName
	if appName == "" { // the default: name the instance
		appName = "meshtop serve " + instance
	}
	if len(appName) > 63 {
		appName = appName[:63] // PostgreSQL truncates application_name to 63 bytes
	}
	logger := serve.NewLogger(a.stderr(), f.logFormat, slog.LevelInfo)

	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	flagDSN := a.g.dsn
	if flagDSN == "" && f.dsnFile != "" {
		b, err := os.ReadFile(f.dsnFile)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fmt.Errorf("--dsn-file %s: %w", f.dsnFile, err)
		}
		flagDSN = strings.TrimSpace(string(b))
		if flagDSN == "" {
			return fmt.Errorf("--dsn-file %s: the file is empty", f.dsnFile)
		}
	}
	dsn, err := conn.ResolveWith(flagDSN, a.io.Getenv)
	if err != nil {
		return err
	}
	pool, pooling, err := conn.OpenDetect(ctx, conn.Options{DSN: dsn, ApplicationName: appName, ConnectTimeout: 10 * time.Second, MaxConns: int32(f.maxConns)})
	if err != nil {
		return err
	}
	defer pool.Close()
	// Through a transaction pooler only the metrics work: the leader lock
	// and the dashboards' LISTEN need a server session.
	if pooling == conn.TransactionPooler && (f.refreshEvery > 0 || f.sshListen != "") {
		return errNeedsSession
	}
	so := a.storeOptions()
	so.TransactionPooler = pooling == conn.TransactionPooler
	st := store.New(pool, nil, so)
	target := conn.Target(pool)
	build := a.io.Build.orUnknown()
	srv, err := serve.New(ctx, serve.Config{
		Pool: pool, Store: st, Schema: a.g.schema, Target: target, Logger: logger, Instance: instance,
		Listen: f.listen, WebConfigFile: f.webConfigFile, MetricsWindows: windows, MetricsMaxWorkflows: f.metricsMaxWorkflows, MetricsMaxSteps: f.metricsMaxSteps, MetricsCache: f.metricsCache,
		RefreshEvery: f.refreshEvery, RefreshTimeout: a.g.refreshTimeout,
		Interval: f.interval, Window: f.window, LagWarn: f.lagWarn, LagCrit: f.lagCrit, ReadOnly: a.g.readOnly,
		SSHListen: f.sshListen, SSHHostKey: f.sshHostKey, SSHAuthorizedKeys: f.sshKeys, SSHOperatorKeys: f.sshOp,
		SSHIdleTimeout: f.sshIdle, SSHMaxSessions: f.sshMax,
		SSHLoginGrace: f.sshGrace, SSHMaxStartups: f.sshMaxStartups, SSHMaxPerSource: f.sshMaxPerSource, SSHAuthFailDelay: failDelay,
		Version: build.Version, Commit: build.Commit, Getenv: a.io.Getenv,
	})
	if err != nil {
		return err
	}
	// Configuration errors above are one line on stderr; from here on the
	// log speaks.
	logger.Info("meshtop serve starting", "instance", instance, "database", target, "schema", a.g.schema,
		"version", build.Version, "commit", build.Commit, "application_name", appName)
	if f.refreshEvery > 0 {
		if sc, err := st.Schedule(ctx); err == nil && sc.Scheduled && sc.Active {
			logger.Warn("pg_cron also refreshes the views; --refresh-every adds a second schedule (meshtop schedule --off removes pg_cron's)", "cron", sc.Schedule)
		}
	}
	err = srv.Run(ctx)
	logger.Info("meshtop serve stopped")
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// parseWindows reads a comma-separated list of windows, without duplicates.
func parseWindows(s string) ([]store.Window, error) {
	var out []store.Window
	seen := map[store.Window]bool{}
	for _, part := range strings.Split(s, ",") {
		w, err := store.ParseWindow(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out, nil
}
