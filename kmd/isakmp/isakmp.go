// Package isakmp is the IKEv1 wire format: the ISAKMP header and generic
// payloads of RFC 2408 section 3, and the IPsec DOI contents of the SA,
// Identification, Notification and Delete payloads (RFC 2407 section 4).
//
// Payloads are kept as raw bodies (Payload) because IKEv1 hashes them as
// they travelled (SAi_b, IDii_b of RFC 2409 section 5); the typed
// parsers below read a body and fail closed on any truncation, overrun or
// trailing garbage.
package isakmp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// MaxPayloads bounds the payloads of one message (a real main mode
// message has fewer than ten; vendor IDs add a few).
const MaxPayloads = 64

var errShort = errors.New("isakmp: truncated")

// Header is the ISAKMP header (RFC 2408 section 3.1).
type Header struct {
	ICookie, RCookie [8]byte
	Next             PayloadType
	Version          uint8
	Exchange         ExchangeType
	Flags            uint8
	MessageID        uint32
	Length           uint32
}

// ParseHeader reads the header of datagram b and checks that its Length
// covers exactly b (RFC 2408 section 3.1). It returns the bytes after the
// header: payloads, or ciphertext when FlagEncryption is set.
func ParseHeader(b []byte) (Header, []byte, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, nil, errShort
	}
	copy(h.ICookie[:], b[0:8])
	copy(h.RCookie[:], b[8:16])
	h.Next = PayloadType(b[16])
	h.Version = b[17]
	h.Exchange = ExchangeType(b[18])
	h.Flags = b[19]
	h.MessageID = binary.BigEndian.Uint32(b[20:24])
	h.Length = binary.BigEndian.Uint32(b[24:28])
	if h.Version>>4 != 1 {
		return h, nil, fmt.Errorf("isakmp: version %#x", h.Version)
	}
	if int64(h.Length) != int64(len(b)) {
		return h, nil, fmt.Errorf("isakmp: length %d, datagram %d", h.Length, len(b))
	}
	return h, b[HeaderLen:], nil
}

// Append adds the header to b; Length is written as given.
func (h Header) Append(b []byte) []byte {
	b = append(b, h.ICookie[:]...)
	b = append(b, h.RCookie[:]...)
	b = append(b, byte(h.Next), h.Version, byte(h.Exchange), h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}

// Payload is one generic payload (RFC 2408 section 3.2): its type and its
// body without the generic header.
type Payload struct {
	Type PayloadType
	Body []byte
}

// ParsePayloads reads the chain of payloads that starts with type first.
// Bytes after the last payload are returned as rest: they are the
// padding of a decrypted message (RFC 2408 section 3.5 allows it there
// only; callers of plaintext messages require it empty).
func ParsePayloads(first PayloadType, b []byte) (ps []Payload, rest []byte, err error) {
	s := cryptobyte.String(b)
	next := first
	for next != PayloadNone {
		if len(ps) == MaxPayloads {
			return nil, nil, errors.New("isakmp: too many payloads")
		}
		var n, reserved uint8
		var body cryptobyte.String
		if !s.ReadUint8(&n) || !s.ReadUint8(&reserved) || !readLen16(&s, &body) {
			return nil, nil, fmt.Errorf("isakmp: payload %v: %w", next, errShort)
		}
		if next == PayloadProposal || next == PayloadTransform {
			return nil, nil, fmt.Errorf("isakmp: %v payload outside an SA", next)
		}
		ps = append(ps, Payload{Type: next, Body: []byte(body)})
		next = PayloadType(n)
	}
	return ps, []byte(s), nil
}

// readLen16 reads a generic-header length that counts the 4 header bytes
// already half read (Next Payload, Reserved were consumed).
func readLen16(s *cryptobyte.String, body *cryptobyte.String) bool {
	var l uint16
	if !s.ReadUint16(&l) || l < 4 {
		return false
	}
	return s.ReadBytes((*[]byte)(body), int(l)-4)
}

// AppendPayloads adds the chain ps to b, each with its generic header.
func AppendPayloads(b []byte, ps []Payload) []byte {
	for i, p := range ps {
		next := PayloadNone
		if i+1 < len(ps) {
			next = ps[i+1].Type
		}
		b = append(b, byte(next), 0)
		b = binary.BigEndian.AppendUint16(b, uint16(4+len(p.Body)))
		b = append(b, p.Body...)
	}
	return b
}

// Marshal renders a plaintext message: h with Next and Length set from ps.
func Marshal(h Header, ps []Payload) []byte {
	h.Next = PayloadNone
	if len(ps) > 0 {
		h.Next = ps[0].Type
	}
	b := AppendPayloads(h.Append(nil), ps)
	binary.BigEndian.PutUint32(b[24:28], uint32(len(b)))
	return b
}

// Find returns the body of the first payload of type t, or nil.
func Find(ps []Payload, t PayloadType) []byte {
	for _, p := range ps {
		if p.Type == t {
			return p.Body
		}
	}
	return nil
}

// All returns the bodies of every payload of type t.
func All(ps []Payload, t PayloadType) [][]byte {
	var out [][]byte
	for _, p := range ps {
		if p.Type == t {
			out = append(out, p.Body)
		}
	}
	return out
}

// Describe lists payload types as "SA, V, V" for traces.
func Describe(ps []Payload) string {
	var names []string
	for _, p := range ps {
		names = append(names, p.Type.String())
	}
	return strings.Join(names, " ")
}

// Attr is one data attribute (RFC 2408 section 3.3): TV when the value
// fits in 16 bits and the type allows it, TLV otherwise.
type Attr struct {
	Type  uint16
	Value []byte
	TV    bool
}

// Basic is a TV attribute.
func Basic(t, v uint16) Attr {
	return Attr{Type: t, Value: binary.BigEndian.AppendUint16(nil, v), TV: true}
}

// Long is a TLV attribute holding v in 4 octets (life durations).
func Long(t uint16, v uint32) Attr {
	return Attr{Type: t, Value: binary.BigEndian.AppendUint32(nil, v)}
}

// Uint reads the value as a big-endian number; ok is false above 64 bits.
func (a Attr) Uint() (uint64, bool) {
	if len(a.Value) > 8 {
		return 0, false
	}
	var v uint64
	for _, c := range a.Value {
		v = v<<8 | uint64(c)
	}
	return v, true
}

// ParseAttrs reads a list of data attributes (the data of a
// RESPONDER-LIFETIME notify, RFC 2407 section 4.6.3.1).
func ParseAttrs(b []byte) ([]Attr, error) { return parseAttrs(cryptobyte.String(b)) }

// AppendAttrs renders data attributes.
func AppendAttrs(b []byte, as []Attr) []byte { return appendAttrs(b, as) }

func parseAttrs(s cryptobyte.String) ([]Attr, error) {
	var out []Attr
	for !s.Empty() {
		var t uint16
		if !s.ReadUint16(&t) {
			return nil, errShort
		}
		if t&0x8000 != 0 {
			var v []byte
			if !s.ReadBytes(&v, 2) {
				return nil, errShort
			}
			out = append(out, Attr{Type: t &^ 0x8000, Value: v, TV: true})
			continue
		}
		var v cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&v) {
			return nil, errShort
		}
		out = append(out, Attr{Type: t, Value: []byte(v)})
	}
	return out, nil
}

func appendAttrs(b []byte, as []Attr) []byte {
	for _, a := range as {
		if a.TV {
			b = binary.BigEndian.AppendUint16(b, a.Type|0x8000)
			b = append(b, a.Value...)
			continue
		}
		b = binary.BigEndian.AppendUint16(b, a.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Value)))
		b = append(b, a.Value...)
	}
	return b
}

// Transform is a Transform payload (RFC 2408 section 3.6).
type Transform struct {
	Number uint8
	ID     uint8
	Attrs  []Attr
}

// Attr returns the attribute of type t.
func (t Transform) Attr(typ uint16) (Attr, bool) {
	for _, a := range t.Attrs {
		if a.Type == typ {
			return a, true
		}
	}
	return Attr{}, false
}

// Proposal is a Proposal payload (RFC 2408 section 3.5) with its
// transforms, alternatives in the order of preference.
type Proposal struct {
	Number     uint8
	Protocol   uint8
	SPI        []byte
	Transforms []Transform
}

// SA is the body of an SA payload in the IPsec DOI (RFC 2407 section
// 4.6.1). Proposals with the same number are one offer (a bundle, RFC
// 2408 section 4.2); different numbers are alternatives.
type SA struct {
	DOI       uint32
	Situation uint32
	Proposals []Proposal
}

// ParseSA reads an SA payload body.
func ParseSA(b []byte) (SA, error) {
	var sa SA
	s := cryptobyte.String(b)
	if !s.ReadUint32(&sa.DOI) || !s.ReadUint32(&sa.Situation) {
		return sa, errShort
	}
	if sa.DOI != DOIIPsec {
		return sa, fmt.Errorf("isakmp: DOI %d", sa.DOI)
	}
	if sa.Situation != SituationIdentityOnly {
		return sa, fmt.Errorf("isakmp: situation %d", sa.Situation)
	}
	next := uint8(PayloadProposal)
	for next != 0 {
		if next != uint8(PayloadProposal) || len(sa.Proposals) == MaxPayloads {
			return sa, fmt.Errorf("isakmp: payload %d in an SA", next)
		}
		var res, spiSize, nt uint8
		var body cryptobyte.String
		var p Proposal
		if !s.ReadUint8(&next) || !s.ReadUint8(&res) || !readLen16(&s, &body) ||
			!body.ReadUint8(&p.Number) || !body.ReadUint8(&p.Protocol) || !body.ReadUint8(&spiSize) ||
			!body.ReadUint8(&nt) || !body.ReadBytes(&p.SPI, int(spiSize)) {
			return sa, errShort
		}
		if spiSize == 0 {
			p.SPI = nil
		}
		tnext := uint8(PayloadTransform)
		for i := 0; i < int(nt); i++ {
			if tnext != uint8(PayloadTransform) {
				return sa, errors.New("isakmp: fewer transforms than announced")
			}
			var tb cryptobyte.String
			var t Transform
			var res2 uint16
			if !body.ReadUint8(&tnext) || !body.ReadUint8(&res) || !readLen16(&body, &tb) ||
				!tb.ReadUint8(&t.Number) || !tb.ReadUint8(&t.ID) || !tb.ReadUint16(&res2) {
				return sa, errShort
			}
			var err error
			if t.Attrs, err = parseAttrs(tb); err != nil {
				return sa, err
			}
			p.Transforms = append(p.Transforms, t)
		}
		if tnext != 0 || !body.Empty() || nt == 0 {
			return sa, errors.New("isakmp: transform count does not match the proposal")
		}
		sa.Proposals = append(sa.Proposals, p)
	}
	if !s.Empty() {
		return sa, errors.New("isakmp: trailing bytes in SA")
	}
	return sa, nil
}

// Marshal renders the SA payload body.
func (sa SA) Marshal() []byte {
	b := binary.BigEndian.AppendUint32(nil, sa.DOI)
	b = binary.BigEndian.AppendUint32(b, sa.Situation)
	for i, p := range sa.Proposals {
		next := byte(0)
		if i+1 < len(sa.Proposals) {
			next = byte(PayloadProposal)
		}
		var pb []byte
		pb = append(pb, p.Number, p.Protocol, byte(len(p.SPI)), byte(len(p.Transforms)))
		pb = append(pb, p.SPI...)
		for j, t := range p.Transforms {
			tn := byte(0)
			if j+1 < len(p.Transforms) {
				tn = byte(PayloadTransform)
			}
			tb := appendAttrs([]byte{t.Number, t.ID, 0, 0}, t.Attrs)
			pb = append(pb, tn, 0)
			pb = binary.BigEndian.AppendUint16(pb, uint16(4+len(tb)))
			pb = append(pb, tb...)
		}
		b = append(b, next, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(4+len(pb)))
		b = append(b, pb...)
	}
	return b
}

// ID is an Identification payload body in the IPsec DOI (RFC 2407
// section 4.6.2).
type ID struct {
	Type     uint8
	Protocol uint8
	Port     uint16
	Data     []byte
}

// ParseID reads an ID payload body.
func ParseID(b []byte) (ID, error) {
	if len(b) < 4 {
		return ID{}, errShort
	}
	return ID{Type: b[0], Protocol: b[1], Port: binary.BigEndian.Uint16(b[2:4]), Data: b[4:]}, nil
}

// Marshal renders the ID payload body (the IDii_b of RFC 2409 section 5).
func (id ID) Marshal() []byte {
	b := []byte{id.Type, id.Protocol}
	b = binary.BigEndian.AppendUint16(b, id.Port)
	return append(b, id.Data...)
}

// Notify is a Notification payload body (RFC 2408 section 3.14).
type Notify struct {
	DOI      uint32
	Protocol uint8
	SPI      []byte
	Type     uint16
	Data     []byte
}

// ParseNotify reads a Notification payload body.
func ParseNotify(b []byte) (Notify, error) {
	var n Notify
	var spiSize uint8
	s := cryptobyte.String(b)
	if !s.ReadUint32(&n.DOI) || !s.ReadUint8(&n.Protocol) || !s.ReadUint8(&spiSize) ||
		!s.ReadUint16(&n.Type) || !s.ReadBytes(&n.SPI, int(spiSize)) {
		return n, errShort
	}
	n.Data = []byte(s)
	return n, nil
}

// Marshal renders the Notification payload body.
func (n Notify) Marshal() []byte {
	b := binary.BigEndian.AppendUint32(nil, n.DOI)
	b = append(b, n.Protocol, byte(len(n.SPI)))
	b = binary.BigEndian.AppendUint16(b, n.Type)
	b = append(b, n.SPI...)
	return append(b, n.Data...)
}

// Delete is a Delete payload body (RFC 2408 section 3.15).
type Delete struct {
	DOI      uint32
	Protocol uint8
	SPIs     [][]byte
}

// ParseDelete reads a Delete payload body; every SPI has the same size.
func ParseDelete(b []byte) (Delete, error) {
	var d Delete
	var size uint8
	var n uint16
	s := cryptobyte.String(b)
	if !s.ReadUint32(&d.DOI) || !s.ReadUint8(&d.Protocol) || !s.ReadUint8(&size) || !s.ReadUint16(&n) {
		return d, errShort
	}
	if size == 0 || n == 0 || int(n)*int(size) != len(s) {
		return d, errors.New("isakmp: delete SPIs do not fill the payload")
	}
	for i := 0; i < int(n); i++ {
		var spi []byte
		s.ReadBytes(&spi, int(size))
		d.SPIs = append(d.SPIs, spi)
	}
	return d, nil
}

// Marshal renders the Delete payload body.
func (d Delete) Marshal() []byte {
	size := 0
	if len(d.SPIs) > 0 {
		size = len(d.SPIs[0])
	}
	b := binary.BigEndian.AppendUint32(nil, d.DOI)
	b = append(b, d.Protocol, byte(size))
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.SPIs)))
	for _, s := range d.SPIs {
		b = append(b, s...)
	}
	return b
}
