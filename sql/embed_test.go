package sql

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestQuoteSchema(t *testing.T) {
	good := map[string]string{
		"metrics":               `"metrics"`,
		"Metrics":               `"Metrics"`,
		`x"; DROP TABLE t`:      `"x""; DROP TABLE t"`,
		strings.Repeat("a", 63): `"` + strings.Repeat("a", 63) + `"`,
	}
	for in, want := range good {
		got, err := QuoteSchema(in)
		if err != nil || got != want {
			t.Errorf("QuoteSchema(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "public", "pg_catalog", "pg_x", strings.Repeat("a", 64), "a\x00b", "a$$b"} {
		if _, err := QuoteSchema(bad); !errors.Is(err, ErrBadSchema) {
			t.Errorf("QuoteSchema(%q) err = %v; want ErrBadSchema", bad, err)
		}
	}
}

func TestRender(t *testing.T) {
	if got := Render("SELECT @schema@.clock(), @schema@.x", `"m"`); got != `SELECT "m".clock(), "m".x` {
		t.Fatalf("Render = %q", got)
	}
}

func TestEmbedded(t *testing.T) {
	for _, f := range []fs.FS{Migrations, Queries} {
		n := 0
		_ = fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return nil
		})
		if n == 0 {
			t.Fatal("no embedded files")
		}
	}
}
