package conn

import (
	"net/url"
	"strings"
)

// Mask replaces every password Redact removes.
const Mask = "xxxxx"

// Redact removes passwords from s, which may be a connection string or any
// text that might contain one (an error message, a log line):
//
//   - the userinfo password of a URL: scheme://user:PASSWORD@host
//     (everything from the first ':' of the userinfo to the last '@' of the
//     authority, so an unencoded '@' or ':' in the password is covered too);
//   - URL query parameters whose decoded name ends in "password"
//     (?password=…, &sslpassword=…, pass%77ord=…);
//   - key/value settings whose name ends in "password" (password=…,
//     password = '…', PGPASSWORD=…), quoted or bare.
//
// Redaction errs on the side of masking too much.
func Redact(s string) string {
	if s == "" {
		return s
	}
	s = redactURLUserinfo(s)
	s = redactKeyValues(s)
	return s
}

// redactURLUserinfo masks the password of every scheme://user:pw@host in s.
// The userinfo is taken as generously as any URL parser might take it: up to
// the last '@' before the first '/' (pgx stops at the first '@', net/url at
// the last), or, when the part before the first '/' holds a ':' but no '@',
// up to the last '@' of the whitespace-delimited token (a password holding an
// unencoded '/').
func redactURLUserinfo(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		rest := s[i+3:]
		seg := rest
		if j := strings.IndexByte(seg, '/'); j >= 0 {
			seg = seg[:j]
		}
		at := strings.LastIndexByte(seg, '@')
		if at < 0 && strings.IndexByte(seg, ':') >= 0 {
			tok := rest
			if j := strings.IndexAny(tok, " \t\n\r\v\f"); j >= 0 {
				tok = tok[:j]
			}
			at = strings.LastIndexByte(tok, '@')
		}
		if at < 0 {
			s = rest
			continue
		}
		userinfo := rest[:at]
		if user, _, hasPw := strings.Cut(userinfo, ":"); hasPw {
			b.WriteString(user)
			b.WriteString(":" + Mask)
		} else {
			b.WriteString(userinfo)
		}
		b.WriteByte('@')
		s = rest[at+1:]
	}
}

// isSpace reports ASCII white space.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// isKeyByte reports bytes that can be part of a setting's name, including
// percent-encoding.
func isKeyByte(c byte) bool {
	return c == '_' || c == '%' || c == '-' || c == '.' ||
		('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// redactKeyValues masks the value of every key=value pair whose (percent
// decoded, lower-cased) key ends in "password".
func redactKeyValues(s string) string {
	var b strings.Builder
	last := 0 // s[:last] is already written
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			continue
		}
		// The key: key bytes immediately before '=', allowing spaces between.
		k := i
		for k > 0 && isSpace(s[k-1]) {
			k--
		}
		kend := k
		for k > 0 && isKeyByte(s[k-1]) {
			k--
		}
		if k == kend || k < last {
			continue
		}
		key := s[k:kend]
		if dec, err := url.QueryUnescape(key); err == nil {
			key = dec
		}
		if !strings.HasSuffix(strings.ToLower(key), "password") {
			continue
		}
		inQuery := k > 0 && (s[k-1] == '?' || s[k-1] == '&')
		// The value.
		v := i + 1
		for v < len(s) && isSpace(s[v]) && !inQuery {
			v++
		}
		end := v
		switch {
		case inQuery:
			for end < len(s) && s[end] != '&' && s[end] != '#' && !isSpace(s[end]) {
				end++
			}
		case end < len(s) && (s[end] == '\'' || s[end] == '"'):
			q := s[end]
			end++
			for end < len(s) && s[end] != q {
				if s[end] == '\\' && end+1 < len(s) {
					end++
				}
				end++
			}
			if end < len(s) {
				end++ // the closing quote
			}
		default:
			for end < len(s) && !isSpace(s[end]) {
				if s[end] == '\\' && end+1 < len(s) {
					end++
				}
				end++
			}
		}
		b.WriteString(s[last:v])
		b.WriteString(Mask)
		last = end
		i = end - 1
	}
	b.WriteString(s[last:])
	return b.String()
}
