package store

import (
	"context"
	"strings"
)

type actorKey struct{}

// WithActor returns ctx carrying who asks for a refresh or a cancel (a
// person, not the database role). Refresh sets it, for the length of each
// view's refresh, as the session's meshtop.actor, which refresh_begin's log
// row records whole (RefreshLogEntry.Actor), and as its application_name,
// cut by ActorName (PostgreSQL keeps 63 bytes), so pg_stat_activity names
// them meanwhile; CancelRefresh sets meshtop.actor for refresh_cancel,
// which records the canceller (RefreshLogEntry.CanceledBy). Control
// characters become '?'. An empty actor changes nothing.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, printable(actor))
}

// printable replaces every character outside printable ASCII with '?'.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
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
	actor = printable(actor)
	if len(actor) > maxAppName {
		actor = actor[:maxAppName]
	}
	return actor
}
