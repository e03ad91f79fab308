package reliability

import (
	"strings"
	"testing"
	"unicode/utf8"

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
