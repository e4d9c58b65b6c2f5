package message

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Header is the IKE header (RFC 7296 section 3.1).
type Header struct {
	SPIi, SPIr  uint64
	NextPayload PayloadType
	Version     uint8
	Exchange    ExchangeType
	Flags       uint8
	MessageID   uint32
	Length      uint32
}

// IsResponse reports whether the Response flag is set.
func (h *Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// IsInitiator reports whether the original initiator sent the message.
func (h *Header) IsInitiator() bool { return h.Flags&FlagInitiator != 0 }

func (h *Header) append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, h.SPIi)
	b = binary.BigEndian.AppendUint64(b, h.SPIr)
	b = append(b, byte(h.NextPayload), h.Version, byte(h.Exchange), h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}

// ParseHeader decodes the fixed header of b and checks the length field
// against len(b).
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, errors.New("message: shorter than the IKE header")
	}
	h.SPIi = binary.BigEndian.Uint64(b[0:])
	h.SPIr = binary.BigEndian.Uint64(b[8:])
	h.NextPayload = PayloadType(b[16])
	h.Version = b[17]
	h.Exchange = ExchangeType(b[18])
	h.Flags = b[19]
	h.MessageID = binary.BigEndian.Uint32(b[20:])
	h.Length = binary.BigEndian.Uint32(b[24:])
	// RFC 7296 section 3.1: a major version above 2 is answered with
	// INVALID_MAJOR_VERSION; below it is not IKEv2 at all.
	if h.Version>>4 != 2 {
		return h, &Error{Notify: NotifyInvalidMajorVersion, Msg: fmt.Sprintf("version %#x", h.Version)}
	}
	if int(h.Length) != len(b) {
		return h, fmt.Errorf("message: header length %d, datagram %d", h.Length, len(b))
	}
	return h, nil
}

// Message is an IKE message with its payloads in clear. For every exchange
// but IKE_SA_INIT the payloads travel inside SK.
type Message struct {
	Header
	Payloads []Payload
}

// marshalChain encodes payloads as a chain and returns it with the type of
// the first payload. last is the Next Payload of the final one.
func marshalChain(ps []Payload, last PayloadType) ([]byte, PayloadType) {
	var out []byte
	for i, p := range ps {
		next := last
		if i+1 < len(ps) {
			next = ps[i+1].Type()
		}
		var b cryptobyte.Builder
		p.marshalBody(&b)
		body := b.BytesOrPanic()
		out = append(out, byte(next), 0)
		out = binary.BigEndian.AppendUint16(out, uint16(len(body)+4))
		out = append(out, body...)
	}
	if len(ps) == 0 {
		return out, last
	}
	return out, ps[0].Type()
}

// Marshal encodes m in clear (IKE_SA_INIT, or a test).
func (m *Message) Marshal() ([]byte, error) {
	chain, first := marshalChain(m.Payloads, PayloadNone)
	h := m.Header
	h.NextPayload = first
	if h.Version == 0 {
		h.Version = Version
	}
	h.Length = uint32(HeaderLen + len(chain))
	if len(chain)+HeaderLen > 0xffff {
		return nil, errors.New("message: too large")
	}
	return append(h.append(make([]byte, 0, h.Length)), chain...), nil
}

// Cipher protects the SK payload: RFC 7296 section 3.14 for a cipher with
// an integrity transform, RFC 5282 section 5 for AEAD.
type Cipher interface {
	// BodyLen is the length of IV || ciphertext (with padding and Pad
	// Length) || ICV for n plaintext bytes.
	BodyLen(n int) int
	// Seal returns IV || ciphertext || ICV; aad is the message from the
	// header through the SK (or SKF) payload header, lengths final.
	Seal(aad, plaintext []byte) ([]byte, error)
	// Open verifies and decrypts body and strips the padding.
	Open(aad, body []byte) ([]byte, error)
}

// Seal encodes m with every payload inside an SK payload.
func (m *Message) Seal(c Cipher) ([]byte, error) {
	inner, first := marshalChain(m.Payloads, PayloadNone)
	bodyLen := c.BodyLen(len(inner))
	h := m.Header
	h.NextPayload = PayloadSK
	if h.Version == 0 {
		h.Version = Version
	}
	h.Length = uint32(HeaderLen + 4 + bodyLen)
	if h.Length > 0xffff {
		return nil, errors.New("message: too large")
	}
	aad := h.append(make([]byte, 0, h.Length))
	aad = append(aad, byte(first), 0)
	aad = binary.BigEndian.AppendUint16(aad, uint16(4+bodyLen))
	body, err := c.Seal(aad, inner)
	if err != nil {
		return nil, err
	}
	if len(body) != bodyLen {
		return nil, errors.New("message: cipher body length mismatch")
	}
	return append(aad, body...), nil
}

// SealFragments encodes m as RFC 7383 fragments no longer than size bytes
// each (the IKE message, without IP and UDP headers). A message that fits
// is still sent as a single SK payload.
func (m *Message) SealFragments(c Cipher, size int) ([][]byte, error) {
	whole, err := m.Seal(c)
	if err != nil {
		return nil, err
	}
	if len(whole) <= size {
		return [][]byte{whole}, nil
	}
	inner, first := marshalChain(m.Payloads, PayloadNone)
	// Find the largest plaintext chunk that fits in size.
	overhead := HeaderLen + 8
	chunk := size - overhead - c.BodyLen(0)
	for chunk > 0 && overhead+c.BodyLen(chunk) > size {
		chunk--
	}
	if chunk <= 0 {
		return nil, fmt.Errorf("message: fragment size %d too small", size)
	}
	total := (len(inner) + chunk - 1) / chunk
	if total > 0xffff {
		return nil, errors.New("message: too many fragments")
	}
	var out [][]byte
	for i := 0; i < total; i++ {
		part := inner[i*chunk : min(len(inner), (i+1)*chunk)]
		bodyLen := c.BodyLen(len(part))
		h := m.Header
		h.NextPayload = PayloadSKF
		if h.Version == 0 {
			h.Version = Version
		}
		h.Length = uint32(overhead + bodyLen)
		next := PayloadNone
		if i == 0 {
			// RFC 7383 section 2.5: only the first fragment names the
			// first inner payload.
			next = first
		}
		aad := h.append(nil)
		aad = append(aad, byte(next), 0)
		aad = binary.BigEndian.AppendUint16(aad, uint16(8+bodyLen))
		aad = binary.BigEndian.AppendUint16(aad, uint16(i+1))
		aad = binary.BigEndian.AppendUint16(aad, uint16(total))
		body, err := c.Seal(aad, part)
		if err != nil {
			return nil, err
		}
		out = append(out, append(aad, body...))
	}
	return out, nil
}

// Encrypted is the SK or SKF payload of a received message, still sealed.
type Encrypted struct {
	Type PayloadType // PayloadSK or PayloadSKF
	// Next is the first inner payload (0 in SKF fragments but the first).
	Next PayloadType
	// FragmentNumber and TotalFragments are set for SKF.
	FragmentNumber, TotalFragments uint16
	// AAD is the message up to and including the SK/SKF header.
	AAD  []byte
	Body []byte
}

// Packet is a received datagram decoded up to its encrypted part.
type Packet struct {
	Header
	// Raw is the whole datagram: IKE_SA_INIT messages are signed as sent
	// (RFC 7296 section 2.15).
	Raw []byte
	// Payloads are the payloads in clear.
	Payloads []Payload
	// Encrypted is the SK or SKF payload, which must be the last one.
	Encrypted *Encrypted
}

// Parse decodes a datagram: the header, the payloads in clear, and the
// envelope of an SK or SKF payload.
func Parse(b []byte) (*Packet, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	p := &Packet{Header: h, Raw: b}
	next := h.NextPayload
	off := HeaderLen
	for next != PayloadNone {
		if len(b)-off < 4 {
			return nil, errSyntax("payload chain truncated")
		}
		this := next
		next = PayloadType(b[off])
		critical := b[off+1]&0x80 != 0
		l := int(binary.BigEndian.Uint16(b[off+2:]))
		if l < 4 || off+l > len(b) {
			return nil, errSyntax("%s: length %d", this, l)
		}
		body := b[off+4 : off+l]
		if this == PayloadSK || this == PayloadSKF {
			// RFC 7296 section 3.14: SK is the last payload.
			if off+l != len(b) {
				return nil, errSyntax("%s is not the last payload", this)
			}
			e := &Encrypted{Type: this, Next: next, AAD: b[:off+4], Body: body}
			if this == PayloadSKF {
				if len(body) < 4 {
					return nil, errSyntax("SKF: truncated")
				}
				e.FragmentNumber = binary.BigEndian.Uint16(body)
				e.TotalFragments = binary.BigEndian.Uint16(body[2:])
				e.AAD, e.Body = b[:off+8], body[4:]
				// RFC 7383 section 2.5: numbers start at 1, at most total.
				if e.FragmentNumber == 0 || e.FragmentNumber > e.TotalFragments {
					return nil, errSyntax("SKF: fragment %d of %d", e.FragmentNumber, e.TotalFragments)
				}
				if e.FragmentNumber != 1 && next != PayloadNone {
					return nil, errSyntax("SKF: next payload in fragment %d", e.FragmentNumber)
				}
			}
			p.Encrypted = e
			return p, nil
		}
		pl, err := parseBody(this, critical, body)
		if err != nil {
			return nil, err
		}
		p.Payloads = append(p.Payloads, pl)
		off += l
	}
	if off != len(b) {
		return nil, errSyntax("%d bytes after the last payload", len(b)-off)
	}
	return p, nil
}

// ParsePayloads decodes a payload chain starting with a payload of type
// first (the plaintext of SK).
func ParsePayloads(first PayloadType, b []byte) ([]Payload, error) {
	var out []Payload
	next := first
	s := cryptobyte.String(b)
	for next != PayloadNone {
		var n, flags uint8
		var l uint16
		var body []byte
		if !s.ReadUint8(&n) || !s.ReadUint8(&flags) || !s.ReadUint16(&l) || l < 4 || !s.ReadBytes(&body, int(l)-4) {
			return nil, errSyntax("%s: truncated", next)
		}
		pl, err := parseBody(next, flags&0x80 != 0, body)
		if err != nil {
			return nil, err
		}
		out = append(out, pl)
		next = PayloadType(n)
	}
	if !s.Empty() {
		return nil, errSyntax("%d bytes after the last payload", len(s))
	}
	return out, nil
}

// Open decrypts a packet with a single SK payload and returns the message.
func (p *Packet) Open(c Cipher) (*Message, error) {
	if p.Encrypted == nil {
		return &Message{Header: p.Header, Payloads: p.Payloads}, nil
	}
	if p.Encrypted.Type != PayloadSK {
		return nil, errors.New("message: Open on a fragment")
	}
	plain, err := c.Open(p.Encrypted.AAD, p.Encrypted.Body)
	if err != nil {
		return nil, err
	}
	inner, err := ParsePayloads(p.Encrypted.Next, plain)
	if err != nil {
		return nil, err
	}
	return &Message{Header: p.Header, Payloads: append(p.Payloads, inner...)}, nil
}

// MaxFragments bounds the fragments of one message held for reassembly,
// MaxReassembly their decrypted bytes: an IKE message is at most 64 KiB
// (its length field), and a peer that has only done IKE_SA_INIT (not
// yet authenticated) must not make an SA hold more.
const (
	MaxFragments  = 64
	MaxReassembly = 0xffff
)

// Reassembler collects RFC 7383 fragments of one message (one message ID
// and direction). Its zero value is ready to use.
type Reassembler struct {
	messageID uint32
	total     uint16
	next      PayloadType
	parts     map[uint16][]byte
	size      int
}

// Add verifies and decrypts one fragment. When the message is complete it
// returns it; until then it returns nil.
func (r *Reassembler) Add(p *Packet, c Cipher) (*Message, error) {
	e := p.Encrypted
	if e == nil || e.Type != PayloadSKF {
		return nil, errors.New("message: not a fragment")
	}
	if e.TotalFragments > MaxFragments {
		return nil, fmt.Errorf("message: %d fragments", e.TotalFragments)
	}
	// RFC 7383 section 2.6.1: authenticate before keeping anything.
	plain, err := c.Open(e.AAD, e.Body)
	if err != nil {
		return nil, err
	}
	if r.parts == nil || r.messageID != p.MessageID {
		*r = Reassembler{messageID: p.MessageID, total: e.TotalFragments, parts: map[uint16][]byte{}}
	}
	switch {
	case e.TotalFragments > r.total:
		// A retransmission with smaller fragments: start over.
		*r = Reassembler{messageID: p.MessageID, total: e.TotalFragments, parts: map[uint16][]byte{}}
	case e.TotalFragments < r.total:
		return nil, nil
	}
	if _, dup := r.parts[e.FragmentNumber]; dup {
		return nil, nil
	}
	r.parts[e.FragmentNumber] = plain
	r.size += len(plain)
	if r.size > MaxReassembly {
		*r = Reassembler{}
		return nil, errors.New("message: reassembly too large")
	}
	if e.FragmentNumber == 1 {
		r.next = e.Next
	}
	if len(r.parts) < int(r.total) {
		return nil, nil
	}
	var all []byte
	for i := uint16(1); i <= r.total; i++ {
		all = append(all, r.parts[i]...)
	}
	next := r.next
	*r = Reassembler{}
	inner, err := ParsePayloads(next, all)
	if err != nil {
		return nil, err
	}
	h := p.Header
	h.NextPayload = PayloadSK
	return &Message{Header: h, Payloads: inner}, nil
}

// Find returns the first payload of type t, or nil.
func (m *Message) Find(t PayloadType) Payload {
	for _, p := range m.Payloads {
		if p.Type() == t {
			return p
		}
	}
	return nil
}

// Notify returns the first notification of type t, or nil.
func (m *Message) Notify(t NotifyType) *Notify {
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok && n.NotifyType == t {
			return n
		}
	}
	return nil
}

// Notifies returns every notification of type t.
func (m *Message) Notifies(t NotifyType) []*Notify {
	var out []*Notify
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok && n.NotifyType == t {
			out = append(out, n)
		}
	}
	return out
}

// ErrorNotify returns the first error notification of m, or nil.
func (m *Message) ErrorNotify() *Notify {
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok && n.NotifyType.IsError() {
			return n
		}
	}
	return nil
}

// String summarises m the way traces show it: "IKE_AUTH request 1 [ IDi
// AUTH SA TSi TSr ]". No payload contents are printed.
func (m *Message) String() string {
	kind := "request"
	if m.IsResponse() {
		kind = "response"
	}
	s := fmt.Sprintf("%s %s %d [", m.Exchange, kind, m.MessageID)
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok {
			s += fmt.Sprintf(" N(%d)", n.NotifyType)
			continue
		}
		s += " " + p.Type().String()
	}
	return s + " ]"
}
