// Package packet reads and writes the IP headers the data plane touches:
// the inner packet's version, addresses, TTL and DF bit, the outer IPv4
// and UDP headers of ESP (RFC 4303) and ESP-in-UDP (RFC 3948), IPv4
// fragmentation before encapsulation, the ICMP errors a tunnel sends
// (RFC 792 fragmentation needed, RFC 1191 next-hop MTU; time exceeded),
// and the header anomaly checks of header-integrity-check.
//
// Everything works on byte slices the caller owns; nothing allocates.
// Every function that reads a packet checks its length first: the bytes
// come from the network or from an inside host and are not trusted.
package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// IP protocol numbers.
const (
	ProtoICMP   = 1
	ProtoIPIP   = 4
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoIPv6   = 41
	ProtoESP    = 50
	ProtoAH     = 51
	ProtoICMPv6 = 58
	ProtoNone   = 59 // RFC 4303 section 2.6: dummy packet
)

// Header lengths.
const (
	IPv4HeaderLen = 20
	IPv6HeaderLen = 40
	UDPHeaderLen  = 8
)

// Errors, each counted by the data plane.
var (
	ErrShort    = errors.New("packet: truncated")
	ErrVersion  = errors.New("packet: not IPv4 or IPv6")
	ErrHeader   = errors.New("packet: bad header length")
	ErrChecksum = errors.New("packet: bad header checksum")
	ErrTTL      = errors.New("packet: TTL expired")
	ErrLand     = errors.New("packet: source equals destination")
	ErrAddress  = errors.New("packet: bad address")
	ErrFragment = errors.New("packet: bad fragment")
	ErrL4       = errors.New("packet: bad transport header")
)

// Info is what the data plane needs from an inner packet.
type Info struct {
	Version  int
	HdrLen   int
	Len      int // total length from the header
	Src, Dst netip.Addr
	Proto    byte
	TTL      byte
	TOS      byte
	DF       bool
	FragOff  int // in bytes
	MoreFrag bool
	SrcPort  uint16 // TCP/UDP, first fragment only
	DstPort  uint16
}

// Parse reads the IP header of p. The packet may be longer than its total
// length (padding is ignored); it may not be shorter.
func Parse(p []byte) (Info, error) {
	var in Info
	if len(p) < 1 {
		return in, ErrShort
	}
	switch p[0] >> 4 {
	case 4:
		if len(p) < IPv4HeaderLen {
			return in, ErrShort
		}
		hl := int(p[0]&0x0f) * 4
		tl := int(binary.BigEndian.Uint16(p[2:]))
		if hl < IPv4HeaderLen || tl < hl {
			return in, ErrHeader
		}
		if tl > len(p) {
			return in, ErrShort
		}
		ff := binary.BigEndian.Uint16(p[6:])
		in = Info{Version: 4, HdrLen: hl, Len: tl, Proto: p[9], TTL: p[8], TOS: p[1],
			DF: ff&0x4000 != 0, MoreFrag: ff&0x2000 != 0, FragOff: int(ff&0x1fff) * 8,
			Src: netip.AddrFrom4([4]byte(p[12:16])), Dst: netip.AddrFrom4([4]byte(p[16:20]))}
	case 6:
		if len(p) < IPv6HeaderLen {
			return in, ErrShort
		}
		tl := IPv6HeaderLen + int(binary.BigEndian.Uint16(p[4:]))
		if tl > len(p) {
			return in, ErrShort
		}
		in = Info{Version: 6, HdrLen: IPv6HeaderLen, Len: tl, Proto: p[6], TTL: p[7],
			TOS: byte(binary.BigEndian.Uint16(p[0:]) >> 4),
			Src: netip.AddrFrom16([16]byte(p[8:24])), Dst: netip.AddrFrom16([16]byte(p[24:40]))}
	default:
		return in, ErrVersion
	}
	if in.FragOff == 0 && (in.Proto == ProtoTCP || in.Proto == ProtoUDP) && in.Len >= in.HdrLen+4 {
		in.SrcPort = binary.BigEndian.Uint16(p[in.HdrLen:])
		in.DstPort = binary.BigEndian.Uint16(p[in.HdrLen+2:])
	}
	return in, nil
}

// Checksum is the Internet checksum (RFC 1071) of b.
func Checksum(b []byte, initial uint32) uint16 {
	sum := initial
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// Check runs the active IP checks a non-passive tunnel applies to inner
// packets (SPEC section 3: version, header, checksum, TTL, address,
// land attack). With integrity set (header-integrity-check) it also checks
// the TCP, UDP and ICMP headers.
func Check(p []byte, in Info, integrity bool) error {
	if in.Version == 4 {
		if Checksum(p[:in.HdrLen], 0) != 0 {
			return ErrChecksum
		}
		if in.MoreFrag && (in.Len-in.HdrLen)%8 != 0 {
			return ErrFragment
		}
		if in.FragOff+in.Len-in.HdrLen > 65535 {
			return ErrFragment
		}
	}
	if in.TTL == 0 {
		return ErrTTL
	}
	if in.Src == in.Dst {
		return ErrLand
	}
	if in.Src.IsMulticast() || in.Dst.IsUnspecified() || in.Src.IsLoopback() || in.Dst.IsLoopback() ||
		(in.Version == 4 && in.Src == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return ErrAddress
	}
	if !integrity || in.FragOff != 0 {
		return nil
	}
	l4 := p[in.HdrLen:in.Len]
	switch in.Proto {
	case ProtoTCP:
		if len(l4) < 20 || int(l4[12]>>4)*4 < 20 || int(l4[12]>>4)*4 > len(l4) {
			return ErrL4
		}
		flags := l4[13]
		if flags&0x03 == 0x03 || flags == 0 || (flags&0x01 != 0 && flags&0x10 == 0) {
			// SYN+FIN, no flags (null scan), FIN without ACK.
			return ErrL4
		}
		if in.SrcPort == 0 || in.DstPort == 0 {
			return ErrL4
		}
	case ProtoUDP:
		if len(l4) < UDPHeaderLen {
			return ErrL4
		}
		ul := int(binary.BigEndian.Uint16(l4[4:]))
		if !in.MoreFrag && (ul < UDPHeaderLen || ul > len(l4)) {
			return ErrL4
		}
		if in.DstPort == 0 {
			return ErrL4
		}
	case ProtoICMP, ProtoICMPv6:
		if len(l4) < 8 {
			return ErrL4
		}
	}
	return nil
}

// DecrementTTL lowers the TTL (hop limit) by one, updating the IPv4
// checksum incrementally (RFC 1624). It reports false if the TTL was 1 or
// less: the packet must not be forwarded.
func DecrementTTL(p []byte, in Info) bool {
	if in.TTL <= 1 {
		return false
	}
	if in.Version == 6 {
		p[7]--
		return true
	}
	p[8]--
	// TTL is the high byte of the 16-bit word at offset 8.
	sum := uint32(binary.BigEndian.Uint16(p[10:])) + 0x0100
	sum = sum&0xffff + sum>>16
	binary.BigEndian.PutUint16(p[10:], uint16(sum))
	return true
}

// ClearDF clears the DF bit of an IPv4 packet (clear-dont-fragment-bit).
func ClearDF(p []byte, in Info) {
	if in.Version != 4 || !in.DF {
		return
	}
	p[6] &^= 0x40
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], Checksum(p[:in.HdrLen], 0))
}

// OuterIPv4 writes a 20-byte IPv4 header into h (RFC 791) for a payload of
// n bytes.
func OuterIPv4(h []byte, src, dst netip.Addr, proto, ttl, tos byte, df bool, id uint16, n int) {
	h[0] = 0x45
	h[1] = tos
	binary.BigEndian.PutUint16(h[2:], uint16(IPv4HeaderLen+n))
	binary.BigEndian.PutUint16(h[4:], id)
	var ff uint16
	if df {
		ff = 0x4000
	}
	binary.BigEndian.PutUint16(h[6:], ff)
	h[8] = ttl
	h[9] = proto
	h[10], h[11] = 0, 0
	s, d := src.As4(), dst.As4()
	copy(h[12:16], s[:])
	copy(h[16:20], d[:])
	binary.BigEndian.PutUint16(h[10:], Checksum(h[:IPv4HeaderLen], 0))
}

// UDP writes a UDP header for ESP in UDP (RFC 3948 section 2.1: the
// checksum is sent as zero).
func UDP(h []byte, sport, dport uint16, n int) {
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(UDPHeaderLen+n))
	h[6], h[7] = 0, 0
}

// Fragment splits the IPv4 packet p into fragments whose total length is
// at most mtu (RFC 791 section 3.2), calling emit with each. Each fragment
// is written into scratch (at least mtu bytes) and is valid only during
// the call. It returns the number of fragments.
func Fragment(p []byte, in Info, mtu int, scratch []byte, emit func([]byte)) (int, error) {
	if in.Version != 4 {
		return 0, ErrVersion
	}
	hl := in.HdrLen
	chunk := (mtu - hl) &^ 7
	if chunk <= 0 || len(scratch) < mtu {
		return 0, ErrFragment
	}
	data := p[hl:in.Len]
	n := 0
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		f := scratch[:hl+end-off]
		copy(f, p[:hl])
		copy(f[hl:], data[off:end])
		more := end < len(data) || in.MoreFrag
		fo := (in.FragOff + off) / 8
		ff := uint16(fo)
		if more {
			ff |= 0x2000
		}
		binary.BigEndian.PutUint16(f[6:], ff)
		binary.BigEndian.PutUint16(f[2:], uint16(len(f)))
		f[10], f[11] = 0, 0
		binary.BigEndian.PutUint16(f[10:], Checksum(f[:hl], 0))
		emit(f)
		n++
	}
	return n, nil
}

// ICMP types and codes the tunnel sends.
const (
	icmpDestUnreachable = 3
	icmpFragNeeded      = 4
	icmpTimeExceeded    = 11
)

// FragNeeded writes into dst an ICMP destination unreachable, fragmentation
// needed (RFC 792; next-hop MTU per RFC 1191) from src back to the sender
// of the IPv4 packet p, quoting its header and first 8 data bytes. It
// returns the packet, or nil if p does not deserve an error (RFC 1122
// section 3.2.2: never about an ICMP error, a non-first fragment, or a
// broadcast or multicast).
func FragNeeded(dst, p []byte, in Info, src netip.Addr, mtu int) []byte {
	return icmpError(dst, p, in, src, icmpDestUnreachable, icmpFragNeeded, uint16(mtu))
}

// TimeExceeded writes an ICMP time exceeded in transit for p.
func TimeExceeded(dst, p []byte, in Info, src netip.Addr) []byte {
	return icmpError(dst, p, in, src, icmpTimeExceeded, 0, 0)
}

func icmpError(dst, p []byte, in Info, src netip.Addr, typ, code byte, mtu uint16) []byte {
	if in.Version != 4 || !src.Is4() || in.FragOff != 0 || in.Dst.IsMulticast() || in.Src.IsMulticast() ||
		in.Src.IsUnspecified() || in.Dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return nil
	}
	if in.Proto == ProtoICMP && in.Len > in.HdrLen {
		if t := p[in.HdrLen]; t == icmpDestUnreachable || t == icmpTimeExceeded || t == 5 || t == 12 || t == 4 {
			return nil
		}
	}
	quote := min(in.Len, in.HdrLen+8)
	n := 8 + quote
	if len(dst) < IPv4HeaderLen+n {
		return nil
	}
	out := dst[:IPv4HeaderLen+n]
	OuterIPv4(out, src, in.Src, ProtoICMP, 64, 0, false, 0, n)
	ic := out[IPv4HeaderLen:]
	ic[0], ic[1] = typ, code
	ic[2], ic[3] = 0, 0
	ic[4], ic[5] = 0, 0
	binary.BigEndian.PutUint16(ic[6:], mtu)
	copy(ic[8:], p[:quote])
	binary.BigEndian.PutUint16(ic[2:], Checksum(ic, 0))
	return out
}

// OuterIPv6 writes a 40-byte IPv6 header into h (RFC 8200) for a payload
// of n bytes; tc is the traffic class, hop the hop limit.
func OuterIPv6(h []byte, src, dst netip.Addr, next, hop, tc byte, n int) {
	binary.BigEndian.PutUint32(h[0:], 6<<28|uint32(tc)<<20)
	binary.BigEndian.PutUint16(h[4:], uint16(n))
	h[6] = next
	h[7] = hop
	s, d := src.As16(), dst.As16()
	copy(h[8:24], s[:])
	copy(h[24:40], d[:])
}

// UDP6Checksum fills in the checksum of the UDP datagram u (header and
// payload) sent from src to dst over IPv6, which IPv6 requires (RFC 8200
// section 8.1).
func UDP6Checksum(u []byte, src, dst netip.Addr) {
	s, d := src.As16(), dst.As16()
	var sum uint32
	for i := 0; i < 16; i += 2 {
		sum += uint32(s[i])<<8 | uint32(s[i+1])
		sum += uint32(d[i])<<8 | uint32(d[i+1])
	}
	sum += uint32(len(u)) + ProtoUDP
	u[6], u[7] = 0, 0
	c := Checksum(u, sum)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
}

// PacketTooBig writes into dst an ICMPv6 Packet Too Big (RFC 4443 section
// 3.2) from src back to the sender of the IPv6 packet p, quoting as much
// of p as fits in the minimum IPv6 MTU. It returns nil for a packet that
// must not get one (multicast or unspecified source, an ICMPv6 error).
func PacketTooBig(dst, p []byte, in Info, src netip.Addr, mtu int) []byte {
	if in.Version != 6 || !src.Is6() || in.Src.IsMulticast() || in.Src.IsUnspecified() {
		return nil
	}
	if in.Proto == ProtoICMPv6 && in.Len > in.HdrLen && p[in.HdrLen] < 128 {
		return nil // never about an ICMPv6 error
	}
	quote := min(in.Len, 1280-IPv6HeaderLen-8)
	n := 8 + quote
	if len(dst) < IPv6HeaderLen+n {
		return nil
	}
	out := dst[:IPv6HeaderLen+n]
	OuterIPv6(out, src, in.Src, ProtoICMPv6, 64, 0, n)
	ic := out[IPv6HeaderLen:]
	ic[0], ic[1] = 2, 0
	ic[2], ic[3] = 0, 0
	binary.BigEndian.PutUint32(ic[4:], uint32(mtu))
	copy(ic[8:], p[:quote])
	s, d := src.As16(), in.Src.As16()
	var sum uint32
	for i := 0; i < 16; i += 2 {
		sum += uint32(s[i])<<8 | uint32(s[i+1])
		sum += uint32(d[i])<<8 | uint32(d[i+1])
	}
	sum += uint32(n) + ProtoICMPv6
	binary.BigEndian.PutUint16(ic[2:], Checksum(ic, sum))
	return out
}
