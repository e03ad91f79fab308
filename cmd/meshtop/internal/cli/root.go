// Package cli is meshtop's command line: the cobra command tree, global
// connection flags (each also read from MESHTOP_<NAME>), and the mapping of
// every error to one line on stderr and an exit code.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/meshtop/meshtop/data/conn"
	"github.com/meshtop/meshtop/data/safetext"
	"github.com/meshtop/meshtop/data/store"
)

// BuildInfo is the binary's version and commit (ReadBuild); empty when
// unknown.
type BuildInfo struct {
	Version, Commit string
}

// IO is the process environment a command runs in; tests replace every
// part of it.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// IsTerminal reports whether a stream (Stdin, Stdout) is a terminal.
	IsTerminal func(any) bool
	// Clock is the time `status` reports as generated_at (nil = time.Now).
	Clock func() time.Time
	Build BuildInfo
}

// Exit codes. check uses its own (0–3, the monitoring-plugin convention).
// 2 means "cannot run here": no terminal for the dashboard, or a command
// that needs a server session asked through a transaction pooler.
const (
	ExitOK           = 0
	ExitError        = 1
	ExitNoTTY        = 2
	ExitNeedsSession = 2
	ExitUnknown      = 3
)

// exitError carries an exit code; a quiet one has already said everything.
type exitError struct {
	code  int
	err   error
	quiet bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// replicaError marks an error of the --replica-dsn connection.
type replicaError struct{ err error }

func (e *replicaError) Error() string { return "replica: " + e.err.Error() }
func (e *replicaError) Unwrap() error { return e.err }

// Main runs meshtop with args and returns the exit code. A panic becomes
// one redacted line too (MESHTOP_DEBUG=1 re-panics for the stack trace).
func Main(ctx context.Context, args []string, env IO) (code int) {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.IsTerminal == nil {
		env.IsTerminal = func(any) bool { return false }
	}
	if env.Clock == nil {
		env.Clock = time.Now
	}
	defer func() {
		if env.Getenv("MESHTOP_DEBUG") != "" {
			return
		}
		if p := recover(); p != nil {
			fmt.Fprintln(env.Stderr, "meshtop: internal error: "+conn.Explain(fmt.Errorf("%v", p))+" (please report it; MESHTOP_DEBUG=1 shows where)")
			code = ExitError
		}
	}()
	a := &app{io: env}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code = ExitError
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.quiet {
			return code
		}
	}
	fmt.Fprintln(env.Stderr, "meshtop: "+Message(err))
	return code
}

// Message is the one line printed for err (without the "meshtop: " prefix),
// sanitized: error messages quote the database.
func Message(err error) string {
	var re *replicaError
	if errors.As(err, &re) {
		return "replica: " + safetext.Line(conn.Explain(re.err))
	}
	return safetext.Line(conn.Explain(err))
}

// globals are the connection flags every command shares.
type globals struct {
	dsn, replicaDSN, schema, appName         string
	statementTimeout, refreshTimeout, lockTO time.Duration
	readOnly                                 bool
}

type app struct {
	io IO
	g  globals
	// command names the running command in the default application_name
	// ("dashboard" for the root), so the refresh log tells a dashboard's
	// R from `meshtop refresh` and the demo's loop.
	command string
}

const rootLong = `meshtop shows MeshHook's workflow metrics — runs, success and failure rates,
duration percentiles, step hotspots — from materialized views it installs in
the database, and keeps them fresh.

Without a subcommand it opens the dashboard (a terminal is required; use
` + "`meshtop status`" + ` in scripts).

Connection: --dsn, else $DATABASE_URL, else the libpq environment (PGHOST,
PGPORT, PGUSER, PGDATABASE, PGSSLMODE, PGSERVICE, ~/.pgpass). Prefer
DATABASE_URL or ~/.pgpass to a password in --dsn: command lines are visible
to other users of the machine. Every flag can also be set in the environment
as MESHTOP_<FLAG>, e.g. MESHTOP_SCHEMA=metrics, MESHTOP_READ_ONLY=true.

Through a transaction pooler (Supabase's port 6543) meshtop only reads:
status, check and the dashboard work; refresh, install, uninstall and
schedule changes need a session and exit 2 — use the direct or
session-pooler URL, port 5432.`

func (a *app) rootCmd() *cobra.Command {
	d := &dashboardFlags{}
	root := &cobra.Command{
		Use:           "meshtop",
		Short:         "Workflow metrics for MeshHook's PostgreSQL, live in the terminal",
		Long:          rootLong,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.command = cmd.Name()
			if cmd == cmd.Root() {
				a.command = "dashboard"
			}
			return a.applyEnv(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runDashboard(cmd, d) },
	}
	root.SetFlagErrorFunc(flagError)
	pf := root.PersistentFlags()
	pf.StringVar(&a.g.dsn, "dsn", "", "PostgreSQL connection string (default $DATABASE_URL, then the libpq environment)")
	pf.StringVar(&a.g.replicaDSN, "replica-dsn", "", "read metrics from this hot standby; refresh, install and schedule still use the primary")
	pf.StringVar(&a.g.schema, "schema", store.DefaultSchema, "schema meshtop's views live in")
	pf.Var(newDuration(&a.g.statementTimeout, 30*time.Second), "statement-timeout", "timeout of each read query")
	pf.Var(newDuration(&a.g.refreshTimeout, 10*time.Minute), "refresh-timeout", "statement_timeout of each view's refresh")
	pf.Var(newDuration(&a.g.lockTO, 5*time.Second), "lock-timeout", "how long reads wait for a lock on a view")
	pf.StringVar(&a.g.appName, "application-name", "", "application_name of meshtop's connections, shown in pg_stat_activity and the refresh log (default \"meshtop <command>\": meshtop dashboard, meshtop refresh, meshtop demo …)")
	pf.BoolVar(&a.g.readOnly, "read-only", false, "refuse everything that writes: install, uninstall, refresh, schedule changes")
	d.register(root.Flags())
	_ = root.RegisterFlagCompletionFunc("window", fixedCompletions(windowNames()))

	root.AddCommand(
		a.demoCmd(),
		a.installCmd(),
		a.uninstallCmd(),
		a.refreshCmd(),
		a.verifyCmd(),
		a.statusCmd(),
		a.runsCmd(),
		a.runCmd(),
		a.checkCmd(),
		a.scheduleCmd(),
		a.serveCmd(),
		a.versionCmd(),
	)
	return root
}

func fixedCompletions(vals []string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return vals, cobra.ShellCompDirectiveNoFileComp
	}
}

// flagError turns a flag parsing error into a usage error that points at
// the command's help.
func flagError(cmd *cobra.Command, err error) error {
	return fmt.Errorf("%w (see `%s --help`)", err, cmd.CommandPath())
}

// envName is the environment variable of a flag: --read-only →
// MESHTOP_READ_ONLY, --web.config.file → MESHTOP_WEB_CONFIG_FILE.
func envName(flag string) string {
	return "MESHTOP_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flag))
}

// applyEnv sets every global flag (and the dashboard's flags) the command
// line left alone from MESHTOP_<NAME>.
func (a *app) applyEnv(cmd *cobra.Command) error {
	var errs []error
	apply := a.envApplier(&errs)
	cmd.Root().PersistentFlags().VisitAll(apply)
	if cmd == cmd.Root() {
		cmd.LocalNonPersistentFlags().VisitAll(apply)
	}
	return errors.Join(errs...)
}

// envApplier returns a visitor setting a flag the command line left alone
// from MESHTOP_<NAME>, collecting invalid values in errs.
func (a *app) envApplier(errs *[]error) func(*pflag.Flag) {
	return func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := envName(f.Name)
		v := a.io.Getenv(name)
		if v == "" {
			return
		}
		if err := f.Value.Set(v); err != nil {
			*errs = append(*errs, fmt.Errorf("invalid %s: %w", name, err))
			return
		}
		f.Changed = true
	}
}

// refuseReadOnly is the error of a writing command under --read-only.
func (a *app) refuseReadOnly(verb string) error {
	if a.g.readOnly {
		return fmt.Errorf("refusing to %s: --read-only is set", verb)
	}
	return nil
}

// session is an open connection to the primary (and replica).
type session struct {
	primary, replica *pgxpool.Pool
	store            *store.Store
	user             string
	target           string
	pooling          conn.Pooling // of the primary
}

// errNeedsSession is how refresh, install, uninstall and schedule changes
// refuse through a transaction pooler: one line, exit 2, nothing touched.
var errNeedsSession = &exitError{code: ExitNeedsSession, err: store.ErrNeedsSession}

// needSession refuses through a transaction pooler (see store.ErrNeedsSession).
func (s *session) needSession() error {
	if s.pooling == conn.TransactionPooler {
		return errNeedsSession
	}
	return nil
}

// connectWriter connects to the primary for a command that needs a server
// session, and refuses (closing it again) through a transaction pooler.
func (a *app) connectWriter(ctx context.Context) (*session, error) {
	s, err := a.connect(ctx, false)
	if err != nil {
		return nil, err
	}
	if err := s.needSession(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// poolerNote prints, once, what a transaction pooler means for this run
// (commands that only read say it on stderr and go on).
func (a *app) poolerNote(s *session) {
	if s.pooling == conn.TransactionPooler {
		fmt.Fprintln(a.stderr(), "meshtop: note: "+safetext.Line(store.ErrNeedsSession.Error()))
	}
}

func (s *session) Close() {
	if s.replica != nil {
		s.replica.Close()
	}
	if s.primary != nil {
		s.primary.Close()
	}
}

// wrap names the connected role in err for GRANT hints.
func (s *session) wrap(err error) error { return conn.AsUser(err, s.user) }

// connect opens the primary and, when --replica-dsn is set and reads are
// wanted, the replica.
func (a *app) connect(ctx context.Context, withReplica bool) (*session, error) {
	return a.connectAs(ctx, withReplica, "")
}

// appName is the application_name of the connections: --application-name
// when given, else "meshtop <command>"; suffix names a second source
// within one command (the demo's refresh loop).
func (a *app) appName(suffix string) string {
	name := a.g.appName
	if name == "" {
		name = strings.TrimSpace("meshtop " + a.command)
	}
	if suffix != "" {
		name += " " + suffix
	}
	return name
}

// connectAs is connect with a suffix to the application_name.
func (a *app) connectAs(ctx context.Context, withReplica bool, suffix string) (*session, error) {
	dsn, err := conn.ResolveWith(a.g.dsn, a.io.Getenv)
	if err != nil {
		return nil, err
	}
	opts := conn.Options{DSN: dsn, ApplicationName: a.appName(suffix), ConnectTimeout: 10 * time.Second}
	primary, pooling, err := conn.OpenDetect(ctx, opts)
	if err != nil {
		return nil, err
	}
	s := &session{primary: primary, user: primary.Config().ConnConfig.User, target: conn.Target(primary), pooling: pooling}
	if withReplica && a.g.replicaDSN != "" {
		opts.DSN = a.g.replicaDSN
		s.replica, err = conn.Open(ctx, opts)
		if err != nil {
			primary.Close()
			return nil, &replicaError{err}
		}
		s.target += " (reads from " + conn.Target(s.replica) + ")"
	}
	so := a.storeOptions()
	so.TransactionPooler = pooling == conn.TransactionPooler
	s.store = store.New(s.primary, s.replica, so)
	return s, nil
}

func (a *app) storeOptions() store.Options {
	return store.Options{
		Schema:         a.g.schema,
		QueryTimeout:   a.g.statementTimeout,
		RefreshTimeout: a.g.refreshTimeout,
		LockTimeout:    a.g.lockTO,
	}
}

// isTTY reports whether both stdin and stdout are terminals.
func (a *app) isTTY() bool {
	return a.io.IsTerminal(a.io.Stdin) && a.io.IsTerminal(a.io.Stdout)
}

func (a *app) stdout() io.Writer { return a.io.Stdout }
func (a *app) stderr() io.Writer { return a.io.Stderr }
