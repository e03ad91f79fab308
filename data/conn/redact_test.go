package conn

import (
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

const pw = "S3cr3t-pw-xyz"

func TestRedact(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgres://u:" + pw + "@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgresql://u:" + pw + "@h/db?sslmode=require", "postgresql://u:xxxxx@h/db?sslmode=require"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://h/db", "postgres://h/db"},
		{"postgres://u:p@ss:w@rd@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:a/b@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:my pw@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u@h/db?sslmode=disable&password=" + pw + "&x=1", "postgres://u@h/db?sslmode=disable&password=xxxxx&x=1"},
		{"postgres://u@h/db?pass%77ord=" + pw, "postgres://u@h/db?pass%77ord=xxxxx"},
		{"postgres://u@h/db?sslpassword=" + pw, "postgres://u@h/db?sslpassword=xxxxx"},
		{"host=h password=" + pw + " dbname=d", "host=h password=xxxxx dbname=d"},
		{"host=h password = '" + pw + " with \\' quote' dbname=d", "host=h password = xxxxx dbname=d"},
		{"PGPASSWORD=" + pw + " psql", "PGPASSWORD=xxxxx psql"},
		{"cannot parse `postgres://u:" + pw + "@h:x/db`: invalid port", "cannot parse `postgres://u:xxxxx@h:x/db`: invalid port"},
		{"dial a://x:y@z and b://p:q@r", "dial a://x:xxxxx@z and b://p:xxxxx@r"},
		{"no secrets here: user=u host=h", "no secrets here: user=u host=h"},
		{"", ""},
	}
	for _, c := range cases {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.Contains(Redact(c.in), pw) {
			t.Errorf("Redact(%q) leaks the password", c.in)
		}
	}
}

const marker = "Q7Q"

// FuzzRedact builds connection strings around a password that pgx really
// accepts as the password and checks that neither Redact of the string nor
// Explain of pgx's parse error (what meshtop prints) shows it.
func FuzzRedact(f *testing.F) {
	f.Add("u", "secret", "localhost", uint8(0))
	f.Add("u", "p@ss/w:rd", "h", uint8(0))
	f.Add("u", "with space", "h", uint8(1))
	f.Add("u", "quote'back\\slash", "h", uint8(1))
	f.Add("u", "amp&eq=", "h", uint8(2))
	f.Add("postgres", "x", "h:5432,h2:5433", uint8(3))
	f.Fuzz(func(t *testing.T, user, pass, host string, form uint8) {
		if strings.Contains(user, marker) || strings.Contains(host, marker) {
			return
		}
		password := marker + pass + marker
		var dsn string
		switch form % 4 {
		case 0: // URL, password as typed
			dsn = "postgres://" + user + ":" + password + "@" + host + "/db"
		case 1: // key/value, quoted
			q := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
			dsn = "host=" + host + " user=" + user + " password='" + q + "' dbname=db"
		case 2: // URL query parameter
			dsn = "postgres://" + user + "@" + host + "/db?password=" + url.QueryEscape(password) + "&sslmode=disable"
		case 3: // URL, password percent-encoded
			dsn = "postgres://" + url.PathEscape(user) + ":" + url.QueryEscape(password) + "@" + host + "/db"
		}
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			if got := Explain(err); strings.Contains(got, marker) {
				t.Fatalf("Explain(parse error) leaks: %q", got)
			}
			return
		}
		if cfg.Password != password {
			return // pgx did not read our password as the password
		}
		if got := Redact(dsn); strings.Contains(got, marker) {
			t.Fatalf("Redact(%q) = %q leaks the password", dsn, got)
		}
	})
}

// FuzzRedactText feeds arbitrary text: Redact must not panic, and a
// password=value pair appended to any text is masked.
func FuzzRedactText(f *testing.F) {
	f.Add("failed to connect to `user=u database=d`: dial error")
	f.Add("postgres://a:b@c/d?password=e")
	f.Add("x://:@")
	f.Add("password=")
	f.Fuzz(func(t *testing.T, s string) {
		_ = Redact(s)
		got := Redact(s + " password=" + marker + "tail")
		if strings.Contains(got, marker+"tail") {
			t.Fatalf("Redact leaks an appended password: %q", got)
		}
	})
}
