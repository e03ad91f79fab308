package reliability

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshtop/meshtop/data/conn"
	"github.com/meshtop/meshtop/data/store"
	meshsql "github.com/meshtop/meshtop/sql"
)

// hostileSchemaNames are schema names a user (or an attacker writing a
// config file) could pass as --schema. They seed FuzzQuoteSchema and are
// executed for real by TestHostileSchemaNamesCreateOneSchema.
var hostileSchemaNames = []string{
	`metrics`,
	`x"; drop table public.projects; --`,
	`x"."y`,
	`"`,
	`""`,
	`a""b`,
	`Metrics`,
	`metrics; create role evil superuser`,
	`m$$ language sql $$`,
	`'; select pg_sleep(10); --`,
	`name with spaces`,
	`\x00null`,
	`ünïcødé`,
	`x" cascade; drop schema public cascade; create schema "y`,
	`public`,
	`PUBLIC`,
	`pg_catalog`,
	`information_schema`,
	strings.Repeat("a", 63),
	strings.Repeat("a", 64),
	`e\'\\`,
	"tab\tnew\nline",
}

// FuzzQuoteSchema: whatever the input, QuoteSchema either refuses it or
// returns exactly one double-quoted identifier whose unquoted text is the
// input — so `create schema <out>` can create nothing but one schema.
func FuzzQuoteSchema(f *testing.F) {
	for _, s := range hostileSchemaNames {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		out, err := meshsql.QuoteSchema(name)
		if err != nil {
			if out != "" {
				t.Fatalf("QuoteSchema(%q) returned %q along with error %v", name, out, err)
			}
			return
		}
		if name == "" || name == "public" || strings.HasPrefix(strings.ToLower(name), "pg_") || len(name) > 63 || strings.ContainsRune(name, 0) {
			t.Fatalf("QuoteSchema(%q) accepted a name it must refuse: %q", name, out)
		}
		if err := singleQuotedIdentifier(out, name); err != "" {
			t.Fatalf("QuoteSchema(%q) = %q: %s", name, out, err)
		}
		// Rendering into a migration keeps it one identifier too.
		rendered := meshsql.Render("create schema @schema@;", out)
		if rendered != "create schema "+out+";" {
			t.Fatalf("Render changed the quoted name: %q", rendered)
		}
	})
}

// singleQuotedIdentifier checks that q is `"` + name with every `"` doubled
// + `"`, i.e. one SQL identifier that PostgreSQL reads back as name.
func singleQuotedIdentifier(q, name string) string {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "not enclosed in double quotes"
	}
	inner := q[1 : len(q)-1]
	var b strings.Builder
	for i := 0; i < len(inner); i++ {
		if inner[i] == '"' {
			if i+1 >= len(inner) || inner[i+1] != '"' {
				return "contains a lone double quote: the identifier would end early"
			}
			i++
		}
		b.WriteByte(inner[i])
	}
	if b.String() != name {
		return "unquotes to " + b.String() + ", not the input"
	}
	return ""
}

// FuzzParseWindow: ParseWindow accepts exactly the four window names and
// returns a window of positive length; everything else is a clear error
// naming the valid choices.
func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"1h", "24h", "7d", "30d", "2d", "", "1H", " 1h", "1h ", "24h\x00", "30d;drop", "-1h", "∞", "7d7d"} {
		f.Add(s)
	}
	valid := map[string]bool{"1h": true, "24h": true, "7d": true, "30d": true}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := store.ParseWindow(s)
		if valid[s] {
			if err != nil || string(w) != s || w.Duration() <= 0 {
				t.Fatalf("ParseWindow(%q) = %q, %v; want the window itself", s, w, err)
			}
			return
		}
		if err == nil {
			t.Fatalf("ParseWindow(%q) accepted %q", s, w)
		}
		msg := err.Error()
		if !strings.Contains(msg, "1h") || !strings.Contains(msg, "30d") || strings.Contains(msg, "\n") {
			t.Fatalf("ParseWindow(%q) error is not one line naming the choices: %q", s, msg)
		}
		if !utf8.ValidString(msg) && utf8.ValidString(s) {
			t.Fatalf("ParseWindow(%q) produced an invalid UTF-8 message", s)
		}
	})
}

// FuzzDSNErrorsHidePassword: whatever surrounds a password in a connection
// string, and whatever the password holds, the error meshtop prints for a
// DSN that does not parse (Explain) never shows any part of it.
func FuzzDSNErrorsHidePassword(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:notaport/db", "[::1/db", "h:5432/db?connect_timeout=x",
		"'unterminated", `h\`, "h port=abc", "h/db?options=-c%20x", "@@@", "h/db#frag", "%zz", "h:99999/db",
		"h/db?target_session_attrs=nope",
	} {
		f.Add(s, "S3cr3tPw-0042")
	}
	for _, typed := range []string{"with space", `quote"d`, `back\slash`, "p@ss/w:rd", "amp&eq=", "'", `\`, "#frag", "%zz"} {
		f.Add("h/db", typed)
	}
	const marker = "Q9zQ" // around the password: any part of it that shows is a leak
	f.Fuzz(func(t *testing.T, s, typed string) {
		if strings.Contains(s, marker) || strings.Contains(typed, marker) {
			return
		}
		// Keys that make pgx read files (a passfile or sslrootcert of
		// /dev/zero would stall the worker) are not about redaction.
		for _, in := range []string{s, typed} {
			l := strings.ToLower(in)
			if strings.Contains(l, "file") || strings.Contains(l, "ssl") || strings.Contains(l, "service") || strings.Contains(l, "/dev") {
				return
			}
		}
		pw := marker + typed + marker // as typed: spaces, quotes, @, / and all
		for _, dsn := range []string{
			"postgres://meshtop:" + pw + "@" + s,
			"postgresql://meshtop:" + pw + "@h/db?" + s,
			"host=" + s + " password=" + pw,
			"password=" + pw + " host=" + s,
			"host=h password='" + pw + "' " + s,
			s + " password=" + pw,
		} {
			if _, err := pgxpool.ParseConfig(dsn); err == nil {
				continue // parses: connecting is another test's business
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := conn.Open(ctx, conn.Options{DSN: dsn})
			cancel()
			if err == nil {
				t.Fatalf("conn.Open accepted a DSN pgx cannot parse: %q", dsn)
			}
			if msg := conn.Explain(err); strings.Contains(msg, marker) {
				t.Fatalf("Explain shows the password for DSN %q: %q", dsn, msg)
			}
			if msg := err.Error(); strings.Contains(msg, marker) {
				t.Fatalf("the error shows the password for DSN %q: %q", dsn, msg)
			}
		}
	})
}
