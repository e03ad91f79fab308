package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
// a pty required, no commands, no forwarding of ports or agents.
type sshServer struct {
	cfg       Config
	hub       *hub.Hub
	obs       *observer
	log       *slog.Logger
	srv       *ssh.Server
	viewers   *keyFile
	operators *keyFile
	active    atomic.Int64
	closeOnce sync.Once
}

type ctxKey string

const idleKey ctxKey = "meshtop.idle"

func newSSHServer(cfg Config, h *hub.Hub, obs *observer) (*sshServer, error) {
	if cfg.SSHAuthorizedKeys == "" {
		return nil, errors.New("--ssh-listen needs --ssh-authorized-keys FILE (public-key logins only)")
	}
	if cfg.SSHMaxSessions <= 0 {
		cfg.SSHMaxSessions = 32
	}
	if cfg.SSHIdleTimeout <= 0 {
		cfg.SSHIdleTimeout = 30 * time.Minute
	}
	s := &sshServer{cfg: cfg, hub: h, obs: obs, log: cfg.Logger}
	var err error
	if s.viewers, err = loadKeyFile("--ssh-authorized-keys", cfg.SSHAuthorizedKeys); err != nil {
		return nil, err
	}
	if cfg.SSHOperatorKeys != "" {
		if s.operators, err = loadKeyFile("--ssh-operator-keys", cfg.SSHOperatorKeys); err != nil {
			return nil, err
		}
	}
	pem, err := hostKey(cfg.SSHHostKey)
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
	s.srv.ConnectionFailedCallback = func(c net.Conn, err error) {
		s.log.Info("ssh: connection failed", "remote", c.RemoteAddr().String(), "err", err)
	}
	return s, nil
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
		role := s.role(sess)
		g := s.obs.sessions.WithLabelValues(role)
		g.Inc()
		start := time.Now()
		s.log.Info("ssh: session started", append(attrs, "role", role)...)
		defer func() {
			g.Dec()
			s.active.Add(-1)
			reason := "ended"
			if idle, _ := sess.Context().Value(idleKey).(*atomic.Bool); idle != nil && idle.Load() {
				reason = "idle timeout"
				_, _ = io.WriteString(sess, fmt.Sprintf("meshtop: no key pressed for %s; disconnected\r\n", s.cfg.SSHIdleTimeout))
			}
			s.log.Info("ssh: session "+reason, append(attrs, "role", role, "duration", time.Since(start).Round(time.Millisecond).String())...)
		}()
		next(sess)
	}
}

// program builds a session's dashboard: its own model, renderer, window and
// keys, reading through the shared hub. The program reads and writes the
// session's pty (wish's MakeOptions), so Bubble Tea puts it in raw mode.
func (s *sshServer) program(sess ssh.Session) *tea.Program {
	readOnly := s.role(sess) != roleOperator
	idle := &atomic.Bool{}
	sess.Context().SetValue(idleKey, idle)
	act := &activity{}
	m := tui.NewWithContext(sess.Context(), tui.Options{
		Store:     s.hub.Client(readOnly),
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
	act.touch() // the idle clock starts with the program (MakeRenderer may wait for the terminal)
	go s.watchIdle(sess.Context(), p, act, idle)
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
	err := s.srv.Serve(ln)
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// close stops accepting and ends every session (their dashboards quit when
// the connection's context ends).
func (s *sshServer) close() {
	s.closeOnce.Do(func() { _ = s.srv.Close() })
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
