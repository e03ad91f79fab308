package store

import (
	"context"
	"strings"
)

type actorKey struct{}

// WithActor returns ctx carrying who asks for a refresh (a person, not the
// database role): Refresh sets it as application_name on each connection it
// refreshes with, for the length of that refresh, so refresh_begin's log row
// (and pg_stat_activity meanwhile) names them. The value goes through
// ActorName. An empty actor leaves the connection's own name.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, ActorName(actor))
}

func actorFrom(ctx context.Context) string {
	s, _ := ctx.Value(actorKey{}).(string)
	return s
}

// maxAppName is what PostgreSQL keeps of application_name (NAMEDATALEN-1).
const maxAppName = 63

// ActorName is actor as the refresh log will hold it: printable ASCII only
// (PostgreSQL turns other bytes of application_name into '?'; so does
// this, one per character), cut to PostgreSQL's 63 bytes.
func ActorName(actor string) string {
	var b strings.Builder
	for _, r := range actor {
		if b.Len() == maxAppName {
			break
		}
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
