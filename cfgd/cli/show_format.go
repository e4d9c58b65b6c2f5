package cli

// Helpers shared by the show_*.go renderers.
//
// Conventions every renderer follows, so the outputs read alike:
//   - SA lifetimes are relative, as Junos prints them: "Expires in N
//     seconds" (the owning daemon sends the seconds left).
//   - Absolute times (PKI validity, CRL dates) are UTC in the Junos PKI
//     form "11-27-2026 21:15 UTC" (month-day-year).
//   - An address with a port is host:port; an IPv6 host is bracketed
//     ("[2001:db8::1]:500") so the port cannot be mistaken for a group.
//   - A string field the daemon left empty is printed "-"; counters are
//     always printed, 0 included; optional lines with nothing to say are
//     left out.

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// showLines collects output lines.
type showLines []string

func (l *showLines) add(format string, a ...any) {
	*l = append(*l, fmt.Sprintf(format, a...))
}

func (l *showLines) blank() { *l = append(*l, "") }

// dash stands in for a field the daemon did not fill.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func enabledWord(b bool) string {
	if b {
		return "Enabled"
	}
	return "Disabled"
}

// capitalized prints a state the way Junos shows it ("matured" ->
// "Matured"); the XML value stays lower case in the proto.
func capitalized(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// hostPort joins an address and a port; port 0 prints the address alone.
func hostPort(addr string, port uint32) string {
	if addr == "" {
		return "-"
	}
	if port == 0 {
		return addr
	}
	return net.JoinHostPort(addr, strconv.FormatUint(uint64(port), 10))
}

// expires is the Junos wording of a lifetime in seconds left.
func expires(seconds int64) string {
	if seconds < 0 {
		return "Expired"
	}
	return fmt.Sprintf("Expires in %d seconds", seconds)
}

// junosDate prints a Unix time as Junos PKI output does, in UTC:
// "11-27-2026 21:15 UTC". Zero is unknown and prints "-".
func junosDate(unix int64) string {
	if unix == 0 {
		return "-"
	}
	return time.Unix(unix, 0).UTC().Format("01-02-2006 15:04 MST")
}

// columns pads each cell to its column's width plus two spaces, the
// Junos table look; the last cell is not padded.
func columns(widths []int, cells ...string) string {
	var b strings.Builder
	for i, c := range cells {
		if i == len(cells)-1 || i >= len(widths) {
			b.WriteString(c)
			continue
		}
		b.WriteString(c)
		if pad := widths[i] + 2 - len(c); pad > 0 {
			b.WriteString(strings.Repeat(" ", pad))
		} else {
			b.WriteByte(' ')
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// widen grows widths[i] to fit cell i of a row.
func widen(widths []int, cells ...string) {
	for i, c := range cells {
		if i < len(widths) && len(c) > widths[i] {
			widths[i] = len(c)
		}
	}
}
