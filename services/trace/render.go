package trace

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// zerolog hands the writer one JSON object per message. The renderer turns
// it into one Junos-like text line:
//
//	Nov 27 21:15:02.123456 kmd[1234]: ike: IKE_SA_INIT received peer=192.0.2.1
//
// Events made by Tracer start with two private fields, the flag and the
// level, which become the "ike: " prefix (and "error: " / "warning: " for
// those levels). The message comes next, then the other fields in the order
// they were added, as key=value. String values are bare when they hold no
// space, quote, '=' or escape, and JSON-quoted otherwise; other values
// (numbers, objects, arrays) are written as compact JSON.

const (
	keyFlag  = "_f"
	keyLevel = "_l"

	// lifecycleLevel marks Lifecycle events in the keyLevel field.
	lifecycleLevel = -1

	timeLayout = "Jan _2 15:04:05.000000"
)

// field is one top-level member of a zerolog JSON object. key and val are
// raw JSON text (strings keep their quotes).
type field struct {
	key, val []byte
}

// header is what the renderer learned from the private fields.
type header struct {
	flag      []byte
	level     int
	lifecycle bool
	ok        bool // the private fields were present
}

// scanObject splits one flat JSON object (as zerolog writes it) into its
// members, appending them to out. Nested objects and arrays are kept as raw
// values. It never panics; ok is false when p is not such an object.
func scanObject(p []byte, out []field) (_ []field, ok bool) {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return out, false
	}
	i = skipSpace(p, i+1)
	if i < len(p) && p[i] == '}' {
		return out, skipSpace(p, i+1) == len(p)
	}
	for {
		if i >= len(p) || p[i] != '"' {
			return out, false
		}
		end, ok := scanString(p, i)
		if !ok {
			return out, false
		}
		key := p[i:end]
		i = skipSpace(p, end)
		if i >= len(p) || p[i] != ':' {
			return out, false
		}
		i = skipSpace(p, i+1)
		if i >= len(p) {
			return out, false
		}
		if p[i] == '"' {
			end, ok = scanString(p, i)
		} else {
			end, ok = scanValue(p, i)
			for ok && end > i && isSpace(p[end-1]) {
				end--
			}
		}
		if !ok || end == i {
			return out, false
		}
		out = append(out, field{key: key, val: p[i:end]})
		i = skipSpace(p, end)
		if i >= len(p) {
			return out, false
		}
		switch p[i] {
		case ',':
			i = skipSpace(p, i+1)
		case '}':
			return out, skipSpace(p, i+1) == len(p)
		default:
			return out, false
		}
	}
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && isSpace(p[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// scanString returns the index just past the JSON string starting at p[i].
func scanString(p []byte, i int) (int, bool) {
	for j := i + 1; j < len(p); j++ {
		switch p[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// scanValue returns the index just past the non-string JSON value starting
// at p[i]: a number, literal, object or array. It tracks nesting and strings
// only, so zerolog's non-JSON NaN and +Inf pass through.
func scanValue(p []byte, i int) (int, bool) {
	depth := 0
	for j := i; j < len(p); j++ {
		switch c := p[j]; c {
		case '"':
			end, ok := scanString(p, j)
			if !ok {
				return 0, false
			}
			j = end - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j, true
			}
			depth--
			if depth == 0 {
				return j + 1, true
			}
		case ',':
			if depth == 0 {
				return j, true
			}
		}
	}
	if depth != 0 {
		return 0, false
	}
	return len(p), true
}

// readHeader looks for the private flag and level fields that Tracer puts
// first in every event.
func readHeader(fs []field) (header, []field) {
	if len(fs) < 2 || string(fs[0].key) != `"`+keyFlag+`"` || string(fs[1].key) != `"`+keyLevel+`"` {
		return header{}, fs
	}
	fv := fs[0].val
	if len(fv) < 2 || fv[0] != '"' {
		return header{}, fs
	}
	n, err := strconv.Atoi(string(fs[1].val))
	if err != nil {
		return header{}, fs
	}
	h := header{flag: fv[1 : len(fv)-1], level: n, lifecycle: n == lifecycleLevel, ok: true}
	return h, fs[2:]
}

// appendLine renders one event as a text line ending in '\n'. fs is scratch
// space for the fields.
func appendLine(dst []byte, now time.Time, daemon string, pid int, p []byte, fs []field) ([]byte, []field, header) {
	dst = now.AppendFormat(dst, timeLayout)
	dst = append(dst, ' ')
	dst = append(dst, daemon...)
	dst = append(dst, '[')
	dst = strconv.AppendInt(dst, int64(pid), 10)
	dst = append(dst, "]: "...)

	fs, ok := scanObject(trimNewline(p), fs[:0])
	if !ok {
		// Not an object we understand: keep the text, on one line.
		dst = appendEscaped(dst, trimNewline(p))
		return append(dst, '\n'), fs, header{}
	}
	h, rest := readHeader(fs)
	if h.ok && !h.lifecycle {
		if len(h.flag) > 0 {
			dst = append(dst, h.flag...)
			dst = append(dst, ": "...)
		}
		if h.level == int(Error) || h.level == int(Warning) {
			dst = append(dst, Level(h.level).String()...)
			dst = append(dst, ": "...)
		}
	}
	// zerolog appends the message last; a field of the same name added by
	// the caller earlier stays an ordinary field.
	sep, mi := false, -1
	for i := len(rest) - 1; i >= 0; i-- {
		if f := rest[i]; isMessage(f) {
			dst = appendUnquoted(dst, f.val)
			sep, mi = true, i
			break
		}
	}
	for i, f := range rest {
		if i == mi {
			continue
		}
		if sep {
			dst = append(dst, ' ')
		}
		sep = true
		dst = appendUnquoted(dst, f.key)
		dst = append(dst, '=')
		dst = appendValue(dst, f.val)
	}
	return append(dst, '\n'), fs, h
}

// isMessage reports whether f is zerolog's message field.
func isMessage(f field) bool {
	k, name := f.key, zerolog.MessageFieldName
	return len(k) == len(name)+2 && string(k[1:len(k)-1]) == name && len(f.val) > 0 && f.val[0] == '"'
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

// appendValue writes a field value: bare text for a plain string, the JSON
// literal for a string that needs quoting, compact JSON for anything else.
func appendValue(dst, v []byte) []byte {
	if len(v) >= 2 && v[0] == '"' {
		inner := v[1 : len(v)-1]
		if len(inner) > 0 && plain(inner) {
			return append(dst, inner...)
		}
		return append(dst, v...)
	}
	return appendCompact(dst, v)
}

// plain reports whether s can be written without quotes in key=value form.
func plain(s []byte) bool {
	for _, c := range s {
		if c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f {
			return false
		}
	}
	return true
}

// appendCompact copies raw JSON, dropping whitespace outside strings and
// escaping control characters so the line stays one line.
func appendCompact(dst, v []byte) []byte {
	in := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case in && c == '\\' && i+1 < len(v):
			dst = append(dst, c, v[i+1])
			i++
			continue
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			continue
		case c < ' ' || c == 0x7f:
			dst = appendControl(dst, c)
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// appendUnquoted decodes the JSON string literal q (quotes included). Quotes,
// backslashes and printable \u escapes are decoded; control characters stay
// escaped so that a message is always one line.
func appendUnquoted(dst, q []byte) []byte {
	if len(q) < 2 {
		return appendEscaped(dst, q)
	}
	s := q[1 : len(q)-1]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			if c < ' ' || c == 0x7f {
				dst = appendControl(dst, c)
			} else {
				dst = append(dst, c)
			}
			continue
		}
		if i+1 >= len(s) {
			return append(dst, '\\')
		}
		i++
		switch e := s[i]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'u':
			r, n := decodeU(s[i+1:])
			if n == 0 {
				dst = append(dst, '\\', 'u')
				continue
			}
			i += n
			if r < ' ' || r == 0x7f {
				dst = appendControl(dst, byte(r))
			} else {
				dst = utf8.AppendRune(dst, r)
			}
		default: // b f n r t and anything unknown stay escaped
			dst = append(dst, '\\', e)
		}
	}
	return dst
}

// decodeU decodes the hex digits after "\u", joining a surrogate pair. n is
// the number of bytes consumed after the 'u', 0 when malformed.
func decodeU(s []byte) (rune, int) {
	r, ok := hex4(s)
	if !ok {
		return 0, 0
	}
	if r >= 0xd800 && r < 0xdc00 && len(s) >= 10 && s[4] == '\\' && s[5] == 'u' {
		if lo, ok := hex4(s[6:]); ok && lo >= 0xdc00 && lo < 0xe000 {
			return (r-0xd800)<<10 + (lo - 0xdc00) + 0x10000, 10
		}
	}
	if r >= 0xd800 && r < 0xe000 {
		return utf8.RuneError, 4
	}
	return r, 4
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		default:
			return 0, false
		}
	}
	return r, true
}

func appendEscaped(dst, s []byte) []byte {
	for _, c := range s {
		if c < ' ' || c == 0x7f {
			dst = appendControl(dst, c)
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

func appendControl(dst []byte, c byte) []byte {
	switch c {
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	const hexDigits = "0123456789abcdef"
	return append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
}
