package ikesa

import (
	"net/netip"

	"github.com/sitesec/sitesec/kmd/message"
)

// PrefixSelector is the selector of an address prefix, any protocol and
// port.
func PrefixSelector(p netip.Prefix) message.Selector {
	p = p.Masked()
	start := p.Addr()
	end := start
	b := end.AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	end, _ = netip.AddrFromSlice(b)
	return message.Selector{StartPort: 0, EndPort: 65535, Start: start, End: end}
}

// intersect narrows a to b (RFC 7296 section 2.9): the overlap of the
// address ranges, port ranges and protocols, if any.
func intersect(a, b message.Selector) (message.Selector, bool) {
	if a.Start.Is4() != b.Start.Is4() {
		return message.Selector{}, false
	}
	var out message.Selector
	switch {
	case a.Protocol == b.Protocol || b.Protocol == 0:
		out.Protocol = a.Protocol
	case a.Protocol == 0:
		out.Protocol = b.Protocol
	default:
		return out, false
	}
	out.StartPort, out.EndPort = max(a.StartPort, b.StartPort), min(a.EndPort, b.EndPort)
	if out.StartPort > out.EndPort {
		return out, false
	}
	out.Start, out.End = a.Start, a.End
	if b.Start.Compare(out.Start) > 0 {
		out.Start = b.Start
	}
	if b.End.Compare(out.End) < 0 {
		out.End = b.End
	}
	if out.Start.Compare(out.End) > 0 {
		return out, false
	}
	return out, true
}

// narrow intersects every proposed selector with every configured one.
func narrow(proposed, configured []message.Selector) []message.Selector {
	var out []message.Selector
	for _, p := range proposed {
		for _, c := range configured {
			if s, ok := intersect(p, c); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// within reports whether every selector of got lies inside one of
// offered: a responder may only narrow.
func within(got, offered []message.Selector) bool {
	for _, g := range got {
		ok := false
		for _, o := range offered {
			if s, yes := intersect(g, o); yes && s == g {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return len(got) > 0
}
