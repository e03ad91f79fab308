package safetext

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The names of issue 16: a workflow and a project that cleared the screen,
// set the window title and wrote the clipboard of an SRE's terminal.
const (
	evilName    = "Evil \x1b[2J\x1b[31mRED\x1b]0;pwned-title\x07 \x1b]52;c;cHduZWQ=\x07 tail"
	evilProject = "proj\x1b[5mblink\r\nnewline"
)

func TestSanitize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain ascii", "plain ascii"},
		{evilName, `Evil \x1b[2J\x1b[31mRED\x1b]0;pwned-title\a \x1b]52;c;cHduZWQ=\a tail`},
		{evilProject, `proj\x1b[5mblink\r\nnewline`},
		{"tab\there\x00nul\x7fdel", `tab\there\x00nul\x7fdel`},
		{"c1 \u009b2J \u009d0;t\u009c \u0085", `c1 \u009b2J \u009d0;t\u009c \u0085`},
		{"invalid \xff\xfe \x9b[2J", `invalid \xff\xfe \x9b[2J`},
		// Trojan Source: an override that reverses what follows on screen.
		{"admin\u202e \u2066x\u2069 \u200e\u200f\u061c", `admin\u202e \u2066x\u2069 \u200e\u200f\u061c`},
		{"a\u200bb\ufeffc\u00add\u2060e", `a\u200bb\ufeffc\u00add\u2060e`},
		{"tag\U000e0041", `tag\U000e0041`},
		{"line\u2028para\u2029", `line\u2028para\u2029`},
		// Kept: letters of any script, wide characters, combining marks,
		// emoji and the joiners they need.
		{"日本語 café e\u0301 👨\u200d👩\u200d👧 می\u200cخواهم", "日本語 café e\u0301 👨\u200d👩\u200d👧 می\u200cخواهم"},
		// A combining mark with no base gets one.
		{"\u0301abc", "◌\u0301abc"},
		{`back\slash`, `back\slash`},
		{"", ""},
	} {
		if got := Sanitize(c.in); got != c.want {
			t.Errorf("Sanitize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLine(t *testing.T) {
	if got, want := Line("ERROR: x\n  DETAIL: \x1b]0;t\x07 y\r\n"), `ERROR: x DETAIL: \x1b]0;t\a y`; got != want {
		t.Errorf("Line = %q, want %q", got, want)
	}
}

// TestWidth pins the widths renderers rely on to align columns.
func TestWidth(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"abc", 3}, {"日本", 4}, {"e\u0301", 1}, {"◌\u0301", 1}, {"a\u200db", 2}, {"😀", 2},
		{Sanitize("\x1b[31m"), len(`\x1b[31m`)}, {"\x1b[31mred\x1b[m", 3},
	} {
		if got := Width(c.in); got != c.want {
			t.Errorf("Width(%q) = %d, want %d", c.in, got, c.want)
		}
	}
	if got := Pad("日本語", 5); got != "日本…" || Width(got) != 5 {
		t.Errorf("Pad(日本語, 5) = %q (width %d)", got, Width(got))
	}
	if got := Pad("日本語x", 6); got != "日本… " || Width(got) != 6 {
		t.Errorf("Pad(日本語x, 6) = %q (width %d)", got, Width(got))
	}
}

func TestText(t *testing.T) {
	x := New(evilProject)
	if x.String() != Sanitize(evilProject) || x.Raw() != evilProject {
		t.Fatalf("String %q Raw %q", x.String(), x.Raw())
	}
	var y Text
	if err := y.Scan(evilProject); err != nil || y != x {
		t.Fatalf("Scan(string) = %v, %#v", err, y)
	}
	if err := y.Scan([]byte("b")); err != nil || !y.Is("b") {
		t.Fatalf("Scan([]byte) = %v, %#v", err, y)
	}
	if err := y.Scan(nil); err != nil || !y.IsEmpty() || y != (Text{}) {
		t.Fatalf("Scan(nil) = %v, %#v", err, y)
	}
	if err := y.Scan(42); err == nil {
		t.Fatal("Scan(42) succeeded")
	}
	b, err := json.Marshal(struct{ N Text }{x})
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ N Text }
	if err := json.Unmarshal(b, &back); err != nil || back.N != x {
		t.Fatalf("JSON round trip of %q: %s → %#v, %v", evilProject, b, back.N, err)
	}
	if New("a").Compare(New("b")) >= 0 {
		t.Fatal("Compare")
	}
}

// TestJSONSafe: the JSON document keeps its values exactly, and no
// terminal control or bidi character is left in its bytes.
func TestJSONSafe(t *testing.T) {
	in := map[string]string{"n": evilName + "\u009b2J\u202e\u2066\x7f\U000e0041 日本 e\u0301 👨\u200d👩"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := JSONSafe(b)
	if Unsafe(string(out)) {
		t.Fatalf("JSONSafe left unsafe characters: %q", out)
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["n"] != in["n"] {
		t.Fatalf("decoded %q, %v; want %q", back["n"], err, in["n"])
	}
	if plain := []byte(`{"a":1}`); &JSONSafe(plain)[0] != &plain[0] {
		t.Error("JSONSafe copied a document with nothing to escape")
	}
}

// FuzzSanitize: whatever the input, the output is valid UTF-8 with no
// control, format or separator character (bar the two joiners), does not
// start with a lone combining mark, is a fixed point, and keeps the input
// when the input was already safe.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{evilName, evilProject, "\xff\u009b\u202e\u0301", "日本 e\u0301", "\U000e0041\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Sanitize(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Sanitize(%q) = %q: invalid UTF-8", s, out)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x2028 || r == 0x2029 ||
				(unicode.Is(unicode.Cf, r) && r != 0x200c && r != 0x200d) {
				t.Fatalf("Sanitize(%q) = %q: contains %U", s, out, r)
			}
		}
		if r, _ := utf8.DecodeRuneInString(out); isCombining(r) {
			t.Fatalf("Sanitize(%q) = %q starts with a combining mark", s, out)
		}
		if again := Sanitize(out); again != out {
			t.Fatalf("not idempotent: %q → %q → %q", s, out, again)
		}
		if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r >= 0x7f }) && out != s {
			t.Fatalf("printable ASCII %q changed to %q", s, out)
		}
		if l := Line(s); strings.ContainsAny(l, "\n\r") {
			t.Fatalf("Line(%q) = %q", s, l)
		}
		b, _ := json.Marshal(s)
		js := JSONSafe(b)
		var back string
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatalf("JSONSafe(%s) = %s: %v", b, js, err)
		}
		var orig string
		_ = json.Unmarshal(b, &orig)
		if back != orig || Unsafe(string(js)) {
			t.Fatalf("JSONSafe(%s) = %s decodes to %q (want %q)", b, js, back, orig)
		}
	})
}
