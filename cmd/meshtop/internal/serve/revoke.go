package serve

import (
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// watchKeys checks the key files every keyCheck until the server closes,
// and ends the connections of keys no longer listed: removing a key from
// the files ends its sessions within seconds, not at their next login.
func (s *sshServer) watchKeys() {
	t := time.NewTicker(keyCheck)
	defer t.Stop()
	vgen, ogen := s.refreshKeys()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		v, o := s.refreshKeys()
		if v == vgen && o == ogen {
			continue
		}
		vgen, ogen = v, o
		s.enforceKeys()
	}
}

// refreshKeys re-reads the changed key files (an unreadable or malformed
// one keeps its last good keys, logged once) and returns their generations.
func (s *sshServer) refreshKeys() (uint64, uint64) {
	v, err := s.viewers.refresh()
	if err != nil {
		s.log.Error("ssh: re-reading the authorized keys failed; keeping the last good ones", "err", err)
	}
	o, err := s.operators.refresh()
	if err != nil {
		s.log.Error("ssh: re-reading the operator keys failed; keeping the last good ones", "err", err)
	}
	return v, o
}

// enforceKeys ends each connection whose key is in neither file any more,
// and each whose operator sessions lost their key from the operator file.
func (s *sshServer) enforceKeys() {
	for _, cs := range s.gate.connections() {
		cs.mu.Lock()
		key := cs.key
		operator := false
		for ss := range cs.sessions {
			operator = operator || ss.role == roleOperator
		}
		cs.mu.Unlock()
		if key == nil {
			continue
		}
		inOperators := s.operators.lists(key)
		switch {
		case !s.viewers.lists(key) && !inOperators:
			s.revoke(cs, "your key was removed from the authorized keys")
		case operator && !inOperators:
			s.revoke(cs, "your key was removed from the operator keys (reconnect for a read-only session)")
		}
	}
}

// revoke ends a connection: its dashboards quit and tell why, then the
// connection is closed (at the latest revokeWait later).
func (s *sshServer) revoke(cs *connState, why string) {
	cs.mu.Lock()
	if cs.revoked != "" || cs.closed {
		cs.mu.Unlock()
		return
	}
	cs.revoked = why
	sessions := make([]*sessState, 0, len(cs.sessions))
	for ss := range cs.sessions {
		sessions = append(sessions, ss)
	}
	cs.mu.Unlock()
	s.log.Warn("ssh: key revoked; ending its connection", "user", cs.user, "remote", cs.remote,
		"key", gossh.FingerprintSHA256(cs.key), "sessions", len(sessions), "reason", why)
	go func() {
		for _, ss := range sessions {
			if p := ss.prog.Load(); p != nil {
				p.Quit()
			}
		}
		deadline := time.NewTimer(revokeWait)
		defer deadline.Stop()
		for _, ss := range sessions {
			select {
			case <-ss.done:
			case <-deadline.C:
				_ = cs.raw.Close()
				return
			}
		}
		// The dashboards said why; a client usually leaves when its last
		// session ends. Cut the connection if it does not.
		select {
		case <-cs.gone:
		case <-deadline.C:
		}
		_ = cs.raw.Close()
	}()
}
