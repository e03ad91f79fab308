package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/ssh"
	"github.com/charmbracelet/wish"
	"github.com/charmbracelet/wish/activeterm"
	"github.com/charmbracelet/wish/bubbletea"
	"github.com/muesli/termenv"
	gossh "golang.org/x/crypto/ssh"

	"github.com/meshtop/meshtop/data/hub"
	"github.com/meshtop/meshtop/tui"
)

// Roles of an SSH session.
const (
	roleViewer   = "viewer"
	roleOperator = "operator"
)

// sshServer serves one dashboard per SSH session: public-key auth only,
// a pty required, no commands, no forwarding of ports or agents; limits
// before authentication (gate), and revocation of keys removed from the
// files while their sessions are open.
type sshServer struct {
	cfg       Config
	hub       *hub.Hub
	obs       *observer
	log       *slog.Logger
	srv       *ssh.Server
	gate      *gate
	viewers   *keyFile
	operators *keyFile
	active    atomic.Int64
	closeOnce sync.Once
	done      chan struct{} // closed by close: stops the key watcher

	sessMu   sync.Mutex
	sessions map[ssh.Session]*sessState
}

// sessState is one dashboard session. (A session's Context is its
// connection's, shared by every session on it: per-session state lives
// here.)
type sessState struct {
	role string
	idle atomic.Bool // ended by the idle timeout
	prog atomic.Pointer[tea.Program]
	done chan struct{} // closed when the session's handler returns
}

// Defaults of the SSH limits.
const (
	DefaultSSHLoginGrace    = 30 * time.Second
	DefaultSSHMaxStartups   = 10
	DefaultSSHMaxPerSource  = 5
	DefaultSSHAuthFailDelay = time.Second
	DefaultSSHMaxSessions   = 32
	DefaultSSHIdleTimeout   = 30 * time.Minute
	sshMaxAuthTries         = 6               // OpenSSH's MaxAuthTries
	keyCheck                = time.Second     // how often the key files are checked for changes
	revokeWait              = 5 * time.Second // a revoked key's sessions get this long to say why before the connection is cut
)

func newSSHServer(cfg Config, h *hub.Hub, obs *observer) (*sshServer, error) {
	if cfg.SSHAuthorizedKeys == "" {
		return nil, errors.New("--ssh-listen needs --ssh-authorized-keys FILE (public-key logins only)")
	}
	if cfg.SSHMaxSessions <= 0 {
		cfg.SSHMaxSessions = DefaultSSHMaxSessions
	}
	if cfg.SSHIdleTimeout <= 0 {
		cfg.SSHIdleTimeout = DefaultSSHIdleTimeout
	}
	if cfg.SSHLoginGrace <= 0 {
		cfg.SSHLoginGrace = DefaultSSHLoginGrace
	}
	if cfg.SSHMaxStartups <= 0 {
		cfg.SSHMaxStartups = DefaultSSHMaxStartups
	}
	if cfg.SSHMaxPerSource <= 0 {
		cfg.SSHMaxPerSource = DefaultSSHMaxPerSource
	}
	if cfg.SSHAuthFailDelay < 0 {
		cfg.SSHAuthFailDelay = 0
	} else if cfg.SSHAuthFailDelay == 0 {
		cfg.SSHAuthFailDelay = DefaultSSHAuthFailDelay
	}
	s := &sshServer{cfg: cfg, hub: h, obs: obs, log: cfg.Logger, gate: newGate(cfg, obs),
		done: make(chan struct{}), sessions: map[ssh.Session]*sessState{}}
	var err error
	if s.viewers, err = loadKeyFile("--ssh-authorized-keys", cfg.SSHAuthorizedKeys); err != nil {
		return nil, err
	}
	if cfg.SSHOperatorKeys != "" {
		if s.operators, err = loadKeyFile("--ssh-operator-keys", cfg.SSHOperatorKeys); err != nil {
			return nil, err
		}
	}
	if s.cfg.SSHHostKey == "" {
		getenv := cfg.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		if s.cfg.SSHHostKey, err = DefaultHostKeyPath(getenv); err != nil {
			return nil, err
		}
	}
	pem, err := hostKey(s.cfg.SSHHostKey)
	if err != nil {
		return nil, err
	}
	s.srv, err = wish.NewServer(
		wish.WithHostKeyPEM(pem),
		wish.WithPublicKeyAuth(s.authorize),
		ssh.AllocatePty(),
		wish.WithMiddleware(
			bubbletea.MiddlewareWithProgramHandler(s.program, termenv.Ascii), // never force colours on a terminal without them
			activeterm.Middleware(),
			s.guard,
		),
	)
	if err != nil {
		return nil, fmt.Errorf("setting up the SSH server: %w", err)
	}
	s.srv.Version = "meshtop"
	// Only sessions: no direct-tcpip (local forwarding) channel handler, no
	// tcpip-forward request handler (remote forwarding), and an agent
	// forwarding request is answered no.
	s.srv.ChannelHandlers = map[string]ssh.ChannelHandler{
		"session": func(srv *ssh.Server, conn *gossh.ServerConn, ch gossh.NewChannel, ctx ssh.Context) {
			ssh.DefaultSessionHandler(srv, conn, noAgentChannel{ch}, ctx)
		},
	}
	s.srv.RequestHandlers = map[string]ssh.RequestHandler{}
	s.srv.LocalPortForwardingCallback = func(ssh.Context, string, uint32) bool { return false }
	s.srv.ReversePortForwardingCallback = func(ssh.Context, string, uint32) bool { return false }
	s.srv.ConnCallback = s.gate.attach
	s.srv.ServerConfigCallback = s.serverConfig
	s.srv.ConnectionFailedCallback = func(c net.Conn, err error) {
		// A scanner repeats this: throttled.
		s.gate.note(slog.LevelInfo, "handshake", "ssh: connection failed", "remote", c.RemoteAddr().String(), "err", err)
	}
	return s, nil
}

// serverConfig is each connection's SSH configuration, before the
// library adds the host key and the public-key callback (authorize): at
// most sshMaxAuthTries attempts, each failed one answered only after
// SSHAuthFailDelay, and the connection counted as authenticated once the
// client proved it holds an accepted key.
func (s *sshServer) serverConfig(ctx ssh.Context) *gossh.ServerConfig {
	cs := connOf(ctx)
	return &gossh.ServerConfig{
		MaxAuthTries: sshMaxAuthTries,
		AuthLogCallback: func(_ gossh.ConnMetadata, method string, err error) {
			// "none" is every client's first probe for the methods on offer.
			if err != nil && method != "none" && s.cfg.SSHAuthFailDelay > 0 {
				time.Sleep(s.cfg.SSHAuthFailDelay)
			}
		},
		VerifiedPublicKeyCallback: func(m gossh.ConnMetadata, key gossh.PublicKey, p *gossh.Permissions, _ string) (*gossh.Permissions, error) {
			if cs != nil && !s.gate.authenticated(cs, key, m.User()) {
				return nil, errors.New("login grace time exceeded")
			}
			return p, nil
		},
	}
}

// authorize admits a key listed in either file. The role is decided again
// from the session's authenticated key (ssh.Session.PublicKey), never from
// a key the client only offered.
func (s *sshServer) authorize(ctx ssh.Context, key ssh.PublicKey) bool {
	ok, err := s.viewers.has(key)
	if err != nil {
		s.log.Error("ssh: re-reading the authorized keys failed; keeping the last good ones", "err", err)
	}
	if !ok {
		var oerr error
		ok, oerr = s.operators.has(key)
		if oerr != nil {
			s.log.Error("ssh: re-reading the operator keys failed; keeping the last good ones", "err", oerr)
		}
	}
	if !ok {
		s.log.Info("ssh: key refused", "user", ctx.User(), "remote", ctx.RemoteAddr().String(), "key", gossh.FingerprintSHA256(key))
	}
	return ok
}

func (s *sshServer) role(sess ssh.Session) string {
	if s.cfg.ReadOnly || sess.PublicKey() == nil {
		return roleViewer
	}
	if ok, _ := s.operators.has(sess.PublicKey()); ok {
		return roleOperator
	}
	return roleViewer
}

func (s *sshServer) session(sess ssh.Session) *sessState {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	return s.sessions[sess]
}

// guard runs first for every session: it refuses commands and sessions over
// the limit, counts and logs the rest.
func (s *sshServer) guard(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		attrs := []any{"user", sess.User(), "remote", sess.RemoteAddr().String()}
		if k := sess.PublicKey(); k != nil {
			attrs = append(attrs, "key", gossh.FingerprintSHA256(k))
		}
		if len(sess.Command()) > 0 || sess.Subsystem() != "" {
			s.obs.refused.WithLabelValues("command").Inc()
			s.log.Info("ssh: command refused", attrs...)
			wish.Fatalln(sess, "meshtop: this server only shows the dashboard; connect without a command (ssh -t)")
			return
		}
		if _, _, ok := sess.Pty(); !ok {
			s.obs.refused.WithLabelValues("no_pty").Inc()
		}
		if n := s.active.Add(1); n > int64(s.cfg.SSHMaxSessions) {
			s.active.Add(-1)
			s.obs.refused.WithLabelValues("max_sessions").Inc()
			s.log.Warn("ssh: session refused: too many sessions", append(attrs, "max_sessions", s.cfg.SSHMaxSessions)...)
			wish.Fatalf(sess, "meshtop: %d sessions are open, the most this server allows; try again later\r\n", s.cfg.SSHMaxSessions)
			return
		}
		ss := &sessState{role: s.role(sess), done: make(chan struct{})}
		cs := connOf(sess.Context())
		if cs != nil && !cs.sessionStarted(ss) {
			s.active.Add(-1)
			wish.Fatalf(sess, "meshtop: %s; disconnected\r\n", cs.revokedReason())
			return
		}
		s.sessMu.Lock()
		s.sessions[sess] = ss
		s.sessMu.Unlock()
		role := ss.role
		g := s.obs.sessions.WithLabelValues(role)
		g.Inc()
		start := time.Now()
		s.log.Info("ssh: session started", append(attrs, "role", role)...)
		defer func() {
			g.Dec()
			s.active.Add(-1)
			s.sessMu.Lock()
			delete(s.sessions, sess)
			s.sessMu.Unlock()
			reason := "ended"
			if ss.idle.Load() {
				reason = "idle timeout"
				_, _ = io.WriteString(sess, fmt.Sprintf("meshtop: no key pressed for %s; disconnected\r\n", s.cfg.SSHIdleTimeout))
			} else if why := cs.revokedReason(); why != "" {
				reason = "ended: " + why
				_, _ = io.WriteString(sess, "meshtop: "+why+"; disconnected\r\n")
			}
			s.log.Info("ssh: session "+reason, append(attrs, "role", role, "duration", time.Since(start).Round(time.Millisecond).String())...)
			if cs != nil {
				cs.sessionEnded(ss)
			}
			close(ss.done)
		}()
		next(sess)
	}
}

// program builds a session's dashboard: its own model, renderer, window and
// keys, reading through the shared hub. The program reads and writes the
// session's pty (wish's MakeOptions), so Bubble Tea puts it in raw mode.
func (s *sshServer) program(sess ssh.Session) *tea.Program {
	ss := s.session(sess)
	if ss == nil { // not through guard: cannot happen, but never an operator
		ss = &sessState{role: roleViewer, done: make(chan struct{})}
	}
	readOnly := ss.role != roleOperator
	act := &activity{}
	m := tui.NewWithContext(sess.Context(), tui.Options{
		Store:     s.source(sess, readOnly),
		ReadOnly:  readOnly,
		NoInstall: true,
		Interval:  s.cfg.Interval,
		Window:    s.cfg.Window,
		LagWarn:   s.cfg.LagWarn,
		LagCrit:   s.cfg.LagCrit,
		Target:    s.cfg.Target,
		Output:    sess,
		Renderer:  bubbletea.MakeRenderer(sess),
	})
	opts := append(bubbletea.MakeOptions(sess), tea.WithAltScreen(), tea.WithFPS(tui.RenderFPS),
		tea.WithoutSignalHandler(), tea.WithFilter(act.filter))
	p := tea.NewProgram(m, opts...)
	ss.prog.Store(p)
	if cs := connOf(sess.Context()); cs != nil && cs.revokedReason() != "" {
		p.Quit() // revoked while the dashboard was being built
	}
	act.touch() // the idle clock starts with the program (MakeRenderer may wait for the terminal)
	go s.watchIdle(sess.Context(), p, act, &ss.idle)
	return p
}

// watchIdle ends a session whose user pressed no key for the idle timeout
// (the dashboard's own output does not count as activity).
func (s *sshServer) watchIdle(ctx context.Context, p *tea.Program, act *activity, idle *atomic.Bool) {
	limit := s.cfg.SSHIdleTimeout
	check := min(max(limit/10, 10*time.Millisecond), time.Second)
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if act.idleFor() >= limit {
				idle.Store(true)
				p.Quit()
				return
			}
		}
	}
}

// activity remembers when the user last pressed a key or used the mouse.
type activity struct{ last atomic.Int64 }

// filter sees every message before the model (tea.WithFilter).
func (a *activity) filter(_ tea.Model, msg tea.Msg) tea.Msg {
	switch msg.(type) {
	case tea.KeyMsg, tea.MouseMsg:
		a.touch()
	}
	return msg
}

func (a *activity) touch() { a.last.Store(time.Now().UnixNano()) }
func (a *activity) idleFor() time.Duration {
	return time.Since(time.Unix(0, a.last.Load()))
}

func (s *sshServer) serve(ln net.Listener) error {
	go s.watchKeys()
	err := s.srv.Serve(s.gate.listener(ln))
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// close stops accepting and ends every session (their dashboards quit when
// the connection's context ends).
func (s *sshServer) close() {
	s.closeOnce.Do(func() {
		close(s.done)
		_ = s.srv.Close()
		s.gate.closeAll()
	})
}

// noAgentChannel answers every agent-forwarding request on a session with
// no (the ssh library would say yes and remember it).
type noAgentChannel struct{ gossh.NewChannel }

func (c noAgentChannel) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := c.NewChannel.Accept()
	if err != nil {
		return ch, reqs, err
	}
	out := make(chan *gossh.Request)
	go func() {
		defer close(out)
		for r := range reqs {
			if r.Type == "auth-agent-req@openssh.com" {
				if r.WantReply {
					_ = r.Reply(false, nil)
				}
				continue
			}
			out <- r
		}
	}()
	return ch, out, nil
}
