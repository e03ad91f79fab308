package serve

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// gate holds what OpenSSH's LoginGraceTime, MaxStartups and
// PerSourceMaxStartups hold: a connection that has not authenticated
// within the grace time is closed, and a new connection is closed at once
// when too many have not authenticated yet, overall or from its source
// address. Authenticated connections are counted apart (for revocation)
// and must hold a session: one without any for the grace time is closed
// too, so a key cannot pile up connections that hold nothing but files.
type gate struct {
	grace        time.Duration
	maxStartups  int
	maxPerSource int
	log          *slog.Logger
	obs          *observer

	mu        sync.Mutex
	unauth    int
	perSource map[string]int
	conns     map[*connState]struct{} // open, authenticated or not

	throttleMu sync.Mutex
	throttled  map[string]*throttle
}

func newGate(cfg Config, obs *observer) *gate {
	return &gate{
		grace: cfg.SSHLoginGrace, maxStartups: cfg.SSHMaxStartups, maxPerSource: cfg.SSHMaxPerSource,
		log: cfg.Logger, obs: obs,
		perSource: map[string]int{}, conns: map[*connState]struct{}{}, throttled: map[string]*throttle{},
	}
}

// connState is one accepted connection.
type connState struct {
	g      *gate
	raw    net.Conn
	source string
	remote string

	mu       sync.Mutex
	authed   bool
	closed   bool // counts returned (the connection is closing)
	expired  bool // the grace timer fired before authentication
	timer    *time.Timer
	timerGen uint64 // stale timer callbacks compare it
	key      gossh.PublicKey
	user     string
	sessions map[*sessState]struct{}
	revoked  string        // why the connection is being ended, "" while it is not
	gone     chan struct{} // closed by release
}

type connKeyT struct{}

var connKey connKeyT

// connOf returns the state of the connection ctx belongs to.
func connOf(ctx ssh.Context) *connState {
	cs, _ := ctx.Value(connKey).(*connState)
	return cs
}

// listener admits connections in the accept loop itself, so one refused
// is closed before the next is accepted: a flood never holds more files
// than the limits allow.
func (g *gate) listener(ln net.Listener) net.Listener { return gatedListener{ln, g} }

type gatedListener struct {
	net.Listener
	g *gate
}

func (l gatedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if gc := l.g.admit(c); gc != nil {
			return gc, nil
		}
		_ = c.Close()
	}
}

// attach is the server's ConnCallback: it hands the connection's state
// to the SSH context (serverConfig, guard and the watcher read it there).
func (g *gate) attach(ctx ssh.Context, c net.Conn) net.Conn {
	if gc, ok := c.(*gatedConn); ok {
		ctx.SetValue(connKey, gc.cs)
	}
	return c
}

// admit counts a new connection as unauthenticated and starts its login
// grace, or returns nil when the limits are reached.
func (g *gate) admit(c net.Conn) *gatedConn {
	remote := c.RemoteAddr().String()
	source := remote
	if host, _, err := net.SplitHostPort(remote); err == nil {
		source = host
	}
	g.mu.Lock()
	reason := ""
	switch {
	case g.unauth >= g.maxStartups:
		reason = "max_startups"
	case g.perSource[source] >= g.maxPerSource:
		reason = "max_per_source"
	}
	if reason != "" {
		unauth, fromSource := g.unauth, g.perSource[source]
		g.mu.Unlock()
		g.obs.refused.WithLabelValues(reason).Inc()
		g.note(slog.LevelWarn, reason, "ssh: connection refused: too many unauthenticated connections",
			"remote", remote, "reason", reason, "unauthenticated", unauth, "from_source", fromSource,
			"max_startups", g.maxStartups, "max_per_source", g.maxPerSource)
		return nil
	}
	g.unauth++
	g.perSource[source]++
	cs := &connState{g: g, raw: c, source: source, remote: remote,
		sessions: map[*sessState]struct{}{}, gone: make(chan struct{})}
	cs.mu.Lock()
	cs.armLocked()
	cs.mu.Unlock()
	g.conns[cs] = struct{}{}
	g.mu.Unlock()
	return &gatedConn{Conn: c, cs: cs}
}

// armLocked (re)starts the connection's timer: the login grace before
// authentication, the no-session grace after (cs.mu held).
func (cs *connState) armLocked() {
	if cs.timer != nil {
		cs.timer.Stop()
	}
	cs.timerGen++
	gen := cs.timerGen
	cs.timer = time.AfterFunc(cs.g.grace, func() { cs.timeUp(gen) })
}

func (cs *connState) timeUp(gen uint64) {
	cs.mu.Lock()
	if gen != cs.timerGen || cs.closed {
		cs.mu.Unlock()
		return
	}
	authed, idle := cs.authed, len(cs.sessions) == 0
	if !authed {
		cs.expired = true
	}
	cs.mu.Unlock()
	switch {
	case !authed:
		cs.g.obs.refused.WithLabelValues("login_grace").Inc()
		cs.g.note(slog.LevelWarn, "login_grace", "ssh: connection closed: not authenticated within the login grace time",
			"remote", cs.remote, "login_grace", cs.g.grace.String())
	case idle:
		cs.g.obs.refused.WithLabelValues("no_session").Inc()
		cs.g.log.Info("ssh: connection closed: no session opened within the login grace time",
			"user", cs.user, "remote", cs.remote, "key", gossh.FingerprintSHA256(cs.key), "login_grace", cs.g.grace.String())
	default:
		return
	}
	_ = cs.raw.Close()
}

// authenticated is called once the client proved it holds key (the
// signature verified): the connection leaves the unauthenticated counts.
// It reports false when the grace time already ran out.
func (g *gate) authenticated(cs *connState, key gossh.PublicKey, user string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed || cs.expired || cs.authed {
		return !cs.closed && !cs.expired
	}
	cs.authed, cs.key, cs.user = true, key, user
	g.unauth--
	g.dropSourceLocked(cs.source)
	cs.armLocked() // now: a session within the grace time
	return true
}

func (g *gate) dropSourceLocked(source string) {
	if g.perSource[source]--; g.perSource[source] <= 0 {
		delete(g.perSource, source)
	}
}

// release returns the connection's counts (once, when it closes).
func (cs *connState) release() {
	g := cs.g
	g.mu.Lock()
	defer g.mu.Unlock()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return
	}
	cs.closed = true
	close(cs.gone)
	cs.timer.Stop()
	delete(g.conns, cs)
	if !cs.authed {
		g.unauth--
		g.dropSourceLocked(cs.source)
	}
}

// connections lists the authenticated connections.
func (g *gate) connections() []*connState {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*connState, 0, len(g.conns))
	for cs := range g.conns {
		cs.mu.Lock()
		if cs.authed {
			out = append(out, cs)
		}
		cs.mu.Unlock()
	}
	return out
}

// closeAll closes every connection (the server stops; it closes the
// authenticated ones itself, not those still in their handshake).
func (g *gate) closeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for cs := range g.conns {
		_ = cs.raw.Close()
	}
}

// sessionStarted adds ss to the connection; false when the connection is
// being ended (its key was revoked).
func (cs *connState) sessionStarted(ss *sessState) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.revoked != "" {
		return false
	}
	cs.sessions[ss] = struct{}{}
	cs.timer.Stop()
	cs.timerGen++
	return true
}

func (cs *connState) sessionEnded(ss *sessState) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.sessions, ss)
	if len(cs.sessions) == 0 && !cs.closed && cs.revoked == "" {
		cs.armLocked()
	}
}

// revokedReason is why the connection is being ended ("" if it is not).
func (cs *connState) revokedReason() string {
	if cs == nil {
		return ""
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.revoked
}

// gatedConn returns its connection's counts when the server closes it.
type gatedConn struct {
	net.Conn
	cs *connState
}

func (c *gatedConn) Close() error {
	c.cs.release()
	return c.Conn.Close()
}

// throttle bounds a kind of log line a flood would repeat: the first is
// logged, then at most one per throttleEvery, saying how many were not.
type throttle struct {
	last       time.Time
	suppressed int
}

const throttleEvery = 10 * time.Second

func (g *gate) note(level slog.Level, kind, msg string, attrs ...any) {
	g.throttleMu.Lock()
	t := g.throttled[kind]
	if t == nil {
		t = &throttle{}
		g.throttled[kind] = t
	}
	if !t.last.IsZero() && time.Since(t.last) < throttleEvery {
		t.suppressed++
		g.throttleMu.Unlock()
		return
	}
	n := t.suppressed
	t.last, t.suppressed = time.Now(), 0
	g.throttleMu.Unlock()
	if n > 0 {
		attrs = append(attrs, "suppressed_since_last", n)
	}
	g.log.Log(context.Background(), level, msg, attrs...)
}
