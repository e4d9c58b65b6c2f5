// Package ah is the IP Authentication Header (RFC 4302) in tunnel mode:
// it builds and checks AH packets whose outer header is IPv4 or IPv6,
// with the ICV computed over the outer header with its mutable fields
// zeroed (RFC 4302 section 3.3.3.1), the AH header with a zero ICV, and
// the inner packet.
//
// Outer headers with IPv4 options or IPv6 extension headers before AH
// are refused: fwdd never builds them, and their mutability rules
// (RFC 4302 appendix A) are not implemented.
package ah

import (
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/sitesec/sitesec/fwdd/esp"
)

// Protocol is AH's IP protocol number (RFC 4302 section 1).
const Protocol = 51

// HeaderLen is the fixed part of the header: next header, payload
// length, reserved, SPI, sequence number (RFC 4302 section 2).
const HeaderLen = 12

// Errors of Open.
var (
	ErrHeader = errors.New("ah: malformed packet")
	ErrAuth   = errors.New("ah: ICV does not verify")
)

// Config is one AH SA.
type Config struct {
	SPI            uint32
	Authentication string // a Junos name: hmac-sha1-96, hmac-sha-256-128, ...
	Key            []byte
	// ESN: the high 32 bits of the sequence number take part in the ICV
	// (RFC 4302 section 3.3.3.2.1) without being sent.
	ESN bool
}

// Auth computes and checks the ICVs of one SA. It is safe for
// concurrent use.
type Auth struct {
	spi    uint32
	esn    bool
	icvLen int
	macs   sync.Pool
}

// New returns the AH transform of c.
func New(c Config) (*Auth, error) {
	h, keyLen, icvLen, ok := esp.Integrity(c.Authentication)
	if !ok {
		return nil, fmt.Errorf("ah: authentication algorithm %q", c.Authentication)
	}
	if len(c.Key) != keyLen {
		return nil, fmt.Errorf("ah: %s needs a %d-byte key, not %d", c.Authentication, keyLen, len(c.Key))
	}
	key := append([]byte(nil), c.Key...)
	a := &Auth{spi: c.SPI, esn: c.ESN, icvLen: icvLen}
	a.macs.New = func() any { return &macState{h: hmac.New(h, key)} }
	return a, nil
}

// SPI is the SA's SPI.
func (a *Auth) SPI() uint32 { return a.spi }

// ICVLen is the length of the truncated ICV.
func (a *Auth) ICVLen() int { return a.icvLen }

// Len is the AH header length with its ICV and the padding that aligns
// it to 32 bits (IPv4) or 64 bits (IPv6), RFC 4302 section 2.6.
func (a *Auth) Len(ipv6 bool) int {
	n := HeaderLen + a.icvLen
	align := 4
	if ipv6 {
		align = 8
	}
	return (n + align - 1) / align * align
}

// Seal builds outer | AH | inner into dst (reusing its storage): outer is
// an IPv4 header without options or a fixed IPv6 header, whose protocol
// (next header), lengths and IPv4 checksum Seal sets; nextHeader is the
// inner packet's protocol (4 or 41).
func (a *Auth) Seal(dst, outer, inner []byte, seq uint64, nextHeader byte) ([]byte, error) {
	v6, err := outerKind(outer)
	if err != nil || (v6 && len(outer) != 40) || (!v6 && len(outer) != 20) {
		return nil, ErrHeader
	}
	n := a.Len(v6)
	total := len(outer) + n + len(inner)
	if total > 0xffff+40 || (!v6 && total > 0xffff) {
		return nil, ErrHeader
	}
	dst = append(dst[:0], outer...)
	ip := dst
	if v6 {
		ip[6] = Protocol
		binary.BigEndian.PutUint16(ip[4:], uint16(n+len(inner)))
	} else {
		ip[9] = Protocol
		binary.BigEndian.PutUint16(ip[2:], uint16(total))
	}
	hdr := len(dst)
	dst = append(dst, nextHeader, byte(n/4-2), 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, a.spi)
	dst = binary.BigEndian.AppendUint32(dst, uint32(seq))
	dst = append(dst, make([]byte, n-HeaderLen)...) // ICV and padding, zero
	dst = append(dst, inner...)
	a.icv(dst[hdr+HeaderLen:hdr+HeaderLen+a.icvLen], dst, len(outer), v6, seq)
	if !v6 {
		ipv4Checksum(dst[:20])
	}
	return dst, nil
}

// SealInPlace fills the AH header of pkt, an outer packet laid out as
// outer header (IPv4 without options or fixed IPv6, protocol 51 and
// lengths already set, as the data plane writes it) | Len bytes for AH |
// payload, with nextHeader, the SA's SPI, seq and the ICV. Nothing is
// copied or allocated: this is the data plane's path.
func (a *Auth) SealInPlace(pkt []byte, seq uint64, nextHeader byte) error {
	v6, err := outerKind(pkt)
	if err != nil {
		return err
	}
	off := 20
	if v6 {
		off = 40
	}
	n := a.Len(v6)
	if len(pkt) < off+n || (v6 && pkt[6] != Protocol) || (!v6 && pkt[9] != Protocol) {
		return ErrHeader
	}
	h := pkt[off : off+n]
	h[0], h[1], h[2], h[3] = nextHeader, byte(n/4-2), 0, 0
	binary.BigEndian.PutUint32(h[4:], a.spi)
	binary.BigEndian.PutUint32(h[8:], uint32(seq))
	clear(h[HeaderLen:])
	a.icv(h[HeaderLen:HeaderLen+a.icvLen], pkt, off, v6, seq)
	return nil
}

// Header is the fixed part of an AH header.
type Header struct {
	NextHeader byte
	Len        int // whole header, ICV and padding included, in bytes
	SPI        uint32
	Seq        uint32
}

// ParseHeader reads the AH header at the start of b (RFC 4302 section
// 2): the payload length counts 32-bit words minus 2, and the header
// must fit in b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, ErrHeader
	}
	h := Header{NextHeader: b[0], Len: (int(b[1]) + 2) * 4, SPI: binary.BigEndian.Uint32(b[4:]), Seq: binary.BigEndian.Uint32(b[8:])}
	if h.Len < HeaderLen || h.Len > len(b) {
		return Header{}, ErrHeader
	}
	return h, nil
}

// Outer locates AH in an outer IPv4 (without options) or IPv6 (AH right
// after the fixed header) packet and returns its offset and header.
func Outer(pkt []byte) (off int, h Header, err error) {
	v6, err := outerKind(pkt)
	if err != nil {
		return 0, Header{}, err
	}
	if v6 {
		if pkt[6] != Protocol || 40+int(binary.BigEndian.Uint16(pkt[4:])) != len(pkt) {
			return 0, Header{}, ErrHeader
		}
		off = 40
	} else {
		if pkt[9] != Protocol || int(binary.BigEndian.Uint16(pkt[2:])) != len(pkt) || binary.BigEndian.Uint16(pkt[6:])&0x3fff != 0 {
			return 0, Header{}, ErrHeader // a fragment is reassembled first (RFC 4302 section 3.4.1)
		}
		off = 20
	}
	h, err = ParseHeader(pkt[off:])
	return off, h, err
}

// Open checks the ICV of a whole outer packet (seq: the full sequence
// number the replay window inferred from the header's low 32 bits) and
// returns the inner packet and its protocol. pkt is not modified.
func (a *Auth) Open(pkt []byte, seq uint64) (inner []byte, nextHeader byte, err error) {
	off, h, err := Outer(pkt)
	if err != nil {
		return nil, 0, err
	}
	if h.SPI != a.spi || h.Len < HeaderLen+a.icvLen || h.Len != a.Len(off == 40) {
		return nil, 0, ErrHeader
	}
	var icv [64]byte
	a.icv(icv[:a.icvLen], pkt, off, off == 40, seq)
	if !hmac.Equal(icv[:a.icvLen], pkt[off+HeaderLen:off+HeaderLen+a.icvLen]) {
		return nil, 0, ErrAuth
	}
	return pkt[off+h.Len:], h.NextHeader, nil
}

// macState is one pooled HMAC with the scratch its ICV computation
// needs, so that the data plane's Seal and Open allocate nothing.
type macState struct {
	h    hash.Hash
	hdr  [40]byte
	zero [64]byte
	hi   [4]byte
	sum  [64]byte
}

// icv writes into out the ICV (truncated to len(out)) of pkt: the HMAC
// with the outer header's mutable fields and the ICV field (and padding)
// read as zero (RFC 4302 section 3.3.3.1), then the high sequence bits
// with ESN (section 3.3.3.2.1).
func (a *Auth) icv(out, pkt []byte, ahOff int, v6 bool, seq uint64) {
	st := a.macs.Get().(*macState)
	defer a.macs.Put(st)
	m := st.h
	m.Reset()
	hdr := st.hdr[:ahOff]
	copy(hdr, pkt[:ahOff])
	if v6 {
		// Version stays; traffic class, flow label and hop limit are
		// mutable (section 3.3.3.1.2.1).
		hdr[0] &= 0xf0
		hdr[1], hdr[2], hdr[3] = 0, 0, 0
		hdr[7] = 0
	} else {
		// TOS, flags and fragment offset, TTL, checksum (section
		// 3.3.3.1.1.1).
		hdr[1] = 0
		hdr[6], hdr[7] = 0, 0
		hdr[8] = 0
		hdr[10], hdr[11] = 0, 0
	}
	m.Write(hdr)
	h := pkt[ahOff:]
	n := (int(h[1]) + 2) * 4
	m.Write(h[:HeaderLen])
	for z := n - HeaderLen; z > 0; z -= min(z, len(st.zero)) {
		m.Write(st.zero[:min(z, len(st.zero))])
	}
	m.Write(h[n:])
	if a.esn {
		binary.BigEndian.PutUint32(st.hi[:], uint32(seq>>32))
		m.Write(st.hi[:])
	}
	copy(out, m.Sum(st.sum[:0]))
}

// outerKind checks that b starts with an outer header Seal and Open
// handle and reports whether it is IPv6.
func outerKind(b []byte) (v6 bool, err error) {
	if len(b) < 20 {
		return false, ErrHeader
	}
	switch b[0] >> 4 {
	case 4:
		if b[0]&0x0f != 5 {
			return false, ErrHeader // options: see the package comment
		}
		return false, nil
	case 6:
		if len(b) < 40 {
			return false, ErrHeader
		}
		return true, nil
	}
	return false, ErrHeader
}

func ipv4Checksum(h []byte) {
	h[10], h[11] = 0, 0
	var s uint32
	for i := 0; i < len(h); i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	binary.BigEndian.PutUint16(h[10:], ^uint16(s))
}
