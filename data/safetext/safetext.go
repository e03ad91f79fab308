// Package safetext makes text from the database safe to put on an
// operator's terminal.
//
// Everything meshtop reads from MeshHook's database is written by someone
// else: tenants name their projects, workflows and workflow nodes, any
// session's SQL shows up in pg_stat_activity, any client picks its
// application_name, error messages quote data. Written to a terminal as it
// is, such text can move the cursor, clear the screen, set the window title
// (OSC 0), write the clipboard (OSC 52), or reorder what the operator reads
// (Unicode bidirectional overrides). Sanitize turns every such character into
// a visible escape; Text carries database text to the presentation layer and
// offers only the sanitized form for display. docs/SECURITY.md has the rule.
//
// The package imports neither Bubble Tea nor pgx: the store, the dashboard
// and the command line all use it.
package safetext

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// Text is a string from the database on its way to a screen. Its String
// method (and so fmt's %s and %v) gives the sanitized form, which is what
// renderers measure, truncate and print; the exact bytes are only available
// through Raw, for machine-readable output and for comparing with other
// exact values. The fields are unexported, so a Text cannot be converted to
// a string by accident: a renderer either calls String or says Raw.
//
// The zero Text is the empty string. Texts are comparable (== compares the
// exact bytes) and usable as map keys. A Text marshals to JSON as its exact
// string, and scans from a database text column (NULL scans as "").
type Text struct {
	raw, safe string
}

// New wraps s. The sanitized form is computed once, here.
func New(s string) Text { return Text{raw: s, safe: Sanitize(s)} }

// String is the sanitized text: no control, bidi or invisible formatting
// character and no invalid UTF-8 (see Sanitize).
func (t Text) String() string { return t.safe }

// Line is the sanitized text on one line: white space runs, line breaks
// included, become one space (see Line). For error messages and query
// texts, where a line break carries no meaning worth an escape.
func (t Text) Line() string { return Line(t.raw) }

// Lines is the sanitized text split at its line breaks (\n, \r\n): each
// line sanitized on its own (see Sanitize), for text shown whole over
// several lines, such as an error in a run's timeline. Trailing empty lines
// are dropped; "" gives no line.
func (t Text) Lines() []string {
	s := strings.TrimRight(t.raw, "\r\n")
	if s == "" {
		return nil
	}
	parts := strings.Split(s, "\n")
	for i, p := range parts {
		parts[i] = Sanitize(strings.TrimSuffix(p, "\r"))
	}
	return parts
}

// Raw is the exact text as stored in the database. Never print it to a
// terminal: it is for JSON, comparisons and queries.
func (t Text) Raw() string { return t.raw }

// IsEmpty reports whether the text is "".
func (t Text) IsEmpty() bool { return t.raw == "" }

// Is reports whether the exact text is s (for fixed values such as a
// status).
func (t Text) Is(s string) bool { return t.raw == s }

// Compare orders two texts by their exact bytes.
func (t Text) Compare(u Text) int { return strings.Compare(t.raw, u.raw) }

// MarshalJSON encodes the exact text: JSON output is data, and
// encoding/json escapes control characters itself (JSONSafe escapes the rest
// for terminals).
func (t Text) MarshalJSON() ([]byte, error) { return json.Marshal(t.raw) }

// UnmarshalJSON decodes a JSON string.
func (t *Text) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*t = New(s)
	return nil
}

// Scan implements database/sql's Scanner (which pgx also honours), so a
// text column scans straight into a Text. NULL scans as "".
func (t *Text) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t = Text{}
	case string:
		*t = New(v)
	case []byte:
		*t = New(string(v))
	default:
		return fmt.Errorf("safetext: cannot scan %T into a Text", src)
	}
	return nil
}

// Sanitize returns s with every character that could act on a terminal, or
// hide or reorder text, replaced by a visible escape in Go's notation:
//
//   - C0 controls and DEL: \a \b \t \n \v \f \r, else \x1b-style;
//   - C1 controls (U+0080–U+009F): \u009b-style;
//   - Unicode format characters (category Cf) — bidirectional embeddings,
//     overrides and isolates (U+202A–U+202E, U+2066–U+2069), marks (U+200E,
//     U+200F, U+061C), zero-width space, word joiner, soft hyphen, BOM, tag
//     characters — except the zero-width (non-)joiners U+200C and U+200D,
//     which scripts and emoji need: \u202e-style (\U000e0041 above U+FFFF);
//   - the line and paragraph separators U+2028 and U+2029;
//   - each byte of invalid UTF-8: \xff-style.
//
// A combining mark at the start (nothing to combine with) gets U+25CC ◌ as
// its base, so it cannot attach to whatever precedes the text on screen.
// Everything else — letters of any script, wide characters, combining marks,
// emoji — is kept and measured by Width. Backslashes are kept as they are:
// the result is for eyes, not for parsing back. Sanitize is idempotent, and
// returns s itself when there is nothing to do.
func Sanitize(s string) string {
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f {
		i++
	}
	if i == len(s) {
		return s // printable ASCII: the usual case, no allocation
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case i == 0 && isCombining(r):
			b.WriteRune('◌')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteString(escapeC0(r))
		case unsafeRune(r):
			if r > 0xffff {
				fmt.Fprintf(&b, `\U%08x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func escapeC0(r rune) string {
	switch r {
	case '\a':
		return `\a`
	case '\b':
		return `\b`
	case '\t':
		return `\t`
	case '\n':
		return `\n`
	case '\v':
		return `\v`
	case '\f':
		return `\f`
	case '\r':
		return `\r`
	}
	return fmt.Sprintf(`\x%02x`, r)
}

// unsafeRune reports whether a (valid, non-ASCII) rune must be escaped.
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1 controls
		return true
	case r == 0x200c || r == 0x200d: // ZWNJ, ZWJ: needed by Persian, Indic scripts and emoji
		return false
	case r == 0x2028 || r == 0x2029: // line and paragraph separators
		return true
	}
	return r >= 0x80 && unicode.Is(unicode.Cf, r)
}

func isCombining(r rune) bool {
	return r >= 0x300 && (unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r))
}

// Unsafe reports whether s contains anything Sanitize would change.
func Unsafe(s string) bool { return Sanitize(s) != s }

// Line is Sanitize for text that must stay on one line however it was
// written, such as an error message: runs of white space (line breaks
// included) become one space first, then the rest is sanitized.
func Line(s string) string { return Sanitize(strings.Join(strings.Fields(s), " ")) }

// Width is the number of terminal cells s takes, measured as lipgloss and
// Bubble Tea measure (grapheme clusters, East Asian wide characters,
// zero-width combining marks); ANSI escape sequences take none.
func Width(s string) int { return ansi.StringWidth(s) }

// Truncate cuts s to at most w cells, ending in tail ("…") when cut, without
// splitting a grapheme cluster or a wide character.
func Truncate(s string, w int, tail string) string {
	if Width(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, tail)
}

// Pad truncates or pads s with spaces to exactly w cells.
func Pad(s string, w int) string {
	s = Truncate(s, w, "…")
	return s + strings.Repeat(" ", max(0, w-Width(s)))
}

// JSONSafe rewrites encoded JSON so that it can be printed on a terminal:
// DEL, C1 controls, format characters and line separators inside strings
// (the only place a non-ASCII character can be) become \uXXXX escapes.
// The document decodes to exactly the same values: only the encoding
// changes. encoding/json already escapes C0 controls, U+2028 and U+2029.
func JSONSafe(doc []byte) []byte {
	i := 0
	for i < len(doc) && doc[i] < 0x7f {
		i++
	}
	if i == len(doc) {
		return doc
	}
	out := make([]byte, 0, len(doc)+16)
	out = append(out, doc[:i]...)
	for i < len(doc) {
		r, size := utf8.DecodeRune(doc[i:])
		switch {
		case r == 0x7f || (r != utf8.RuneError || size > 1) && r >= 0x80 && unsafeRune(r):
			if r > 0xffff {
				hi, lo := utf16.EncodeRune(r)
				out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		default:
			out = append(out, doc[i:i+size]...)
		}
		i += size
	}
	return out
}
