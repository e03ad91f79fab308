package serve

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/meshtop/meshtop/data/hub"
	"github.com/meshtop/meshtop/data/store"
)

// auditedSource is an SSH session's data source: its hub client, with
// every refresh and cancel logged in one line naming the SSH user and key,
// and each refresh named after them in the refresh log (application_name,
// through store.WithActor).
type auditedSource struct {
	*hub.Client
	log   *slog.Logger
	attrs []any
	actor string
}

// source returns sess's data source.
func (s *sshServer) source(sess ssh.Session, readOnly bool) *auditedSource {
	a := &auditedSource{Client: s.hub.Client(readOnly), log: s.log,
		attrs: []any{"user", sess.User(), "remote", sess.RemoteAddr().String()}}
	fp := ""
	if k := sess.PublicKey(); k != nil {
		fp = gossh.FingerprintSHA256(k)
		a.attrs = append(a.attrs, "key", fp)
	}
	a.attrs = append(a.attrs, "read_only", readOnly)
	a.actor = actorName(sess.User(), fp)
	return a
}

// actorName is how an SSH session is named in the refresh log:
// "meshtop serve: ssh USER SHA256:…" — the user cut to 12 characters
// (the whole fingerprint is kept: the log row's actor holds all of it; its
// application_name, cut to PostgreSQL's 63 bytes, keeps at least the first
// 24 characters of the fingerprint).
func actorName(user, fingerprint string) string {
	var u strings.Builder
	for _, r := range user {
		if u.Len() == 12 {
			break
		}
		if r <= ' ' || r > '~' {
			r = '?'
		}
		u.WriteRune(r)
	}
	if u.Len() == 0 {
		u.WriteString("-")
	}
	return "meshtop serve: ssh " + u.String() + " " + fingerprint
}

// Refresh refreshes as the session's key and logs it.
func (a *auditedSource) Refresh(ctx context.Context, view string, wait bool) ([]store.RefreshResult, error) {
	start := time.Now()
	res, err := a.Client.Refresh(store.WithActor(ctx, a.actor), view, wait)
	ids := make([]string, 0, len(res))
	outcomes := make([]string, 0, len(res))
	for _, r := range res {
		ids = append(ids, strconv.FormatInt(r.LogID, 10))
		outcomes = append(outcomes, r.View+"="+r.Status)
	}
	attrs := append(a.attrs[:len(a.attrs):len(a.attrs)], "action", "refresh", "view", orAll(view),
		"application_name", a.actor, "log_ids", strings.Join(ids, ","), "outcomes", strings.Join(outcomes, " "),
		"duration", time.Since(start).Round(time.Millisecond).String())
	a.logAction(err, attrs)
	return res, err
}

// CancelRefresh cancels as the session's key and logs it.
func (a *auditedSource) CancelRefresh(ctx context.Context, view string) (int, error) {
	n, err := a.Client.CancelRefresh(store.WithActor(ctx, a.actor), view)
	attrs := append(a.attrs[:len(a.attrs):len(a.attrs)], "action", "cancel", "view", orAll(view), "cancelled", n)
	a.logAction(err, attrs)
	return n, err
}

func (a *auditedSource) logAction(err error, attrs []any) {
	if err != nil {
		a.log.Warn("ssh: operator action failed", append(attrs, "err", err)...)
		return
	}
	a.log.Info("ssh: operator action", attrs...)
}

func orAll(view string) string {
	if view == "" {
		return "all"
	}
	return view
}
