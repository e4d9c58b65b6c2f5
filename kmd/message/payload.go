package message

import (
	"bytes"
	"fmt"
	"net/netip"

	"golang.org/x/crypto/cryptobyte"
)

// Payload is one payload of the chain. Its body excludes the generic payload
// header (RFC 7296 section 3.2), which the chain writes.
type Payload interface {
	Type() PayloadType
	marshalBody(b *cryptobyte.Builder)
}

// errSyntax is a parse failure that the peer learns as INVALID_SYNTAX.
func errSyntax(format string, a ...any) error {
	return &Error{Notify: NotifyInvalidSyntax, Msg: fmt.Sprintf(format, a...)}
}

// Error is a message error that maps onto a notification to the peer.
type Error struct {
	Notify NotifyType
	Msg    string
	// Data is the notification data (the payload type for
	// UNSUPPORTED_CRITICAL_PAYLOAD, RFC 7296 section 3.10.1).
	Data []byte
}

func (e *Error) Error() string { return "message: " + e.Msg }

// ---- SA (RFC 7296 section 3.3) ---------------------------------------------

// SA is the Security Association payload: an ordered list of proposals.
type SA struct {
	Proposals []Proposal
}

// Proposal is one proposal substructure (RFC 7296 section 3.3.1).
type Proposal struct {
	Number     uint8
	Protocol   ProtocolID
	SPI        []byte
	Transforms []Transform
}

// Transform is a transform substructure (RFC 7296 section 3.3.2).
type Transform struct {
	Type       TransformType
	ID         uint16
	Attributes []Attribute
}

// Attribute is a transform attribute (RFC 7296 section 3.3.5). TV
// attributes carry a 16-bit value; TLV ones carry bytes.
type Attribute struct {
	Type  uint16
	TV    bool
	Value uint16
	Bytes []byte
}

// KeyLength returns the Key Length attribute, or 0.
func (t Transform) KeyLength() uint16 {
	for _, a := range t.Attributes {
		if a.TV && a.Type == AttributeKeyLength {
			return a.Value
		}
	}
	return 0
}

// NewTransform returns a transform with a Key Length attribute when
// keyLen is not 0.
func NewTransform(typ TransformType, id uint16, keyLen uint16) Transform {
	t := Transform{Type: typ, ID: id}
	if keyLen != 0 {
		t.Attributes = []Attribute{{Type: AttributeKeyLength, TV: true, Value: keyLen}}
	}
	return t
}

func (*SA) Type() PayloadType { return PayloadSA }

func (p *SA) marshalBody(b *cryptobyte.Builder) {
	for i, pr := range p.Proposals {
		last := uint8(2)
		if i == len(p.Proposals)-1 {
			last = 0
		}
		var pb cryptobyte.Builder
		pb.AddUint8(pr.Number)
		pb.AddUint8(uint8(pr.Protocol))
		pb.AddUint8(uint8(len(pr.SPI)))
		pb.AddUint8(uint8(len(pr.Transforms)))
		pb.AddBytes(pr.SPI)
		for j, t := range pr.Transforms {
			tl := uint8(3)
			if j == len(pr.Transforms)-1 {
				tl = 0
			}
			var tb cryptobyte.Builder
			tb.AddUint8(uint8(t.Type))
			tb.AddUint8(0)
			tb.AddUint16(t.ID)
			for _, a := range t.Attributes {
				if a.TV {
					tb.AddUint16(0x8000 | a.Type)
					tb.AddUint16(a.Value)
				} else {
					tb.AddUint16(a.Type &^ 0x8000)
					tb.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(a.Bytes) })
				}
			}
			addSub(&pb, tl, tb.BytesOrPanic())
		}
		addSub(b, last, pb.BytesOrPanic())
	}
}

// addSub writes a substructure header (last, reserved, length) and body.
func addSub(b *cryptobyte.Builder, last uint8, body []byte) {
	b.AddUint8(last)
	b.AddUint8(0)
	b.AddUint16(uint16(len(body) + 4))
	b.AddBytes(body)
}

// readSub reads one substructure, returning its "last" byte and body.
func readSub(s *cryptobyte.String) (uint8, cryptobyte.String, bool) {
	var last, res uint8
	var l uint16
	var body []byte
	if !s.ReadUint8(&last) || !s.ReadUint8(&res) || !s.ReadUint16(&l) || l < 4 || !s.ReadBytes(&body, int(l)-4) {
		return 0, nil, false
	}
	return last, body, true
}

func parseSA(body []byte) (*SA, error) {
	s := cryptobyte.String(body)
	p := &SA{}
	for more := true; more; {
		if s.Empty() {
			return nil, errSyntax("SA: proposal chain ends early")
		}
		last, ps, ok := readSub(&s)
		if !ok || (last != 0 && last != 2) {
			return nil, errSyntax("SA: bad proposal header")
		}
		more = last == 2
		var pr Proposal
		var proto, spiSize, nt uint8
		if !ps.ReadUint8(&pr.Number) || !ps.ReadUint8(&proto) || !ps.ReadUint8(&spiSize) || !ps.ReadUint8(&nt) {
			return nil, errSyntax("SA: truncated proposal")
		}
		pr.Protocol = ProtocolID(proto)
		// RFC 7296 section 3.3.1: an offer numbers its proposals from 1
		// up by one; an answer repeats the accepted proposal's number.
		if pr.Number == 0 || (len(p.Proposals) > 0 && pr.Number != p.Proposals[len(p.Proposals)-1].Number+1) {
			return nil, errSyntax("SA: proposal number %d out of sequence", pr.Number)
		}
		if spiSize > 0 {
			var spi []byte
			if !ps.ReadBytes(&spi, int(spiSize)) {
				return nil, errSyntax("SA: truncated SPI")
			}
			pr.SPI = clone(spi)
		}
		for i := 0; i < int(nt); i++ {
			tl, ts, ok := readSub(&ps)
			if !ok || (tl != 0 && tl != 3) || (tl == 0) != (i == int(nt)-1) {
				return nil, errSyntax("SA: bad transform header")
			}
			var t Transform
			var typ, res uint8
			if !ts.ReadUint8(&typ) || !ts.ReadUint8(&res) || !ts.ReadUint16(&t.ID) {
				return nil, errSyntax("SA: truncated transform")
			}
			t.Type = TransformType(typ)
			for !ts.Empty() {
				var at uint16
				if !ts.ReadUint16(&at) {
					return nil, errSyntax("SA: truncated attribute")
				}
				a := Attribute{Type: at &^ 0x8000, TV: at&0x8000 != 0}
				if a.TV {
					if !ts.ReadUint16(&a.Value) {
						return nil, errSyntax("SA: truncated attribute")
					}
				} else {
					var v cryptobyte.String
					if !ts.ReadUint16LengthPrefixed(&v) {
						return nil, errSyntax("SA: truncated attribute")
					}
					a.Bytes = clone(v)
				}
				t.Attributes = append(t.Attributes, a)
			}
			pr.Transforms = append(pr.Transforms, t)
		}
		if !ps.Empty() {
			return nil, errSyntax("SA: trailing bytes in proposal")
		}
		p.Proposals = append(p.Proposals, pr)
	}
	if !s.Empty() {
		return nil, errSyntax("SA: trailing bytes after last proposal")
	}
	return p, nil
}

// ---- KE (section 3.4) ------------------------------------------------------

// KE is the Key Exchange payload.
type KE struct {
	Group uint16
	Data  []byte
}

func (*KE) Type() PayloadType { return PayloadKE }
func (p *KE) marshalBody(b *cryptobyte.Builder) {
	b.AddUint16(p.Group)
	b.AddUint16(0)
	b.AddBytes(p.Data)
}

func parseKE(body []byte) (*KE, error) {
	s := cryptobyte.String(body)
	p := &KE{}
	var res uint16
	if !s.ReadUint16(&p.Group) || !s.ReadUint16(&res) || s.Empty() {
		return nil, errSyntax("KE: truncated")
	}
	p.Data = clone(s)
	return p, nil
}

// ---- IDi / IDr (section 3.5) ----------------------------------------------

// ID is the Identification payload. Its body, from ID Type to the end, is
// what AUTH MACs (RFC 7296 section 2.15, RestOfInitIDPayload), so Reserved
// keeps the received bytes.
type ID struct {
	Responder bool // IDr rather than IDi
	IDType    IDType
	Reserved  [3]byte
	Data      []byte
}

func (p *ID) Type() PayloadType {
	if p.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}

func (p *ID) marshalBody(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.IDType))
	b.AddBytes(p.Reserved[:])
	b.AddBytes(p.Data)
}

// Body returns the payload body as signed by AUTH.
func (p *ID) Body() []byte {
	var b cryptobyte.Builder
	p.marshalBody(&b)
	return b.BytesOrPanic()
}

// String renders the identity the way show commands print it.
func (p *ID) String() string {
	switch p.IDType {
	case IDIPv4Addr, IDIPv6Addr:
		if a, ok := netip.AddrFromSlice(p.Data); ok {
			return a.String()
		}
	case IDFQDN, IDRFC822:
		return string(p.Data)
	case IDKeyID:
		return fmt.Sprintf("%x", p.Data)
	}
	return fmt.Sprintf("type%d:%x", p.IDType, p.Data)
}

func parseID(responder bool, body []byte) (*ID, error) {
	s := cryptobyte.String(body)
	p := &ID{Responder: responder}
	var t uint8
	var res []byte
	if !s.ReadUint8(&t) || !s.ReadBytes(&res, 3) || s.Empty() {
		return nil, errSyntax("ID: truncated")
	}
	p.IDType = IDType(t)
	copy(p.Reserved[:], res)
	p.Data = clone(s)
	switch p.IDType {
	case IDIPv4Addr:
		if len(p.Data) != 4 {
			return nil, errSyntax("ID: IPv4 address of %d bytes", len(p.Data))
		}
	case IDIPv6Addr:
		if len(p.Data) != 16 {
			return nil, errSyntax("ID: IPv6 address of %d bytes", len(p.Data))
		}
	}
	return p, nil
}

// ---- CERT / CERTREQ (sections 3.6, 3.7) ------------------------------------

// Cert is the Certificate payload.
type Cert struct {
	Encoding CertEncoding
	Data     []byte
}

func (*Cert) Type() PayloadType { return PayloadCERT }
func (p *Cert) marshalBody(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.Encoding))
	b.AddBytes(p.Data)
}

// CertReq is the Certificate Request payload; Data is a list of SHA-1
// hashes of CA public keys.
type CertReq struct {
	Encoding CertEncoding
	Data     []byte
}

func (*CertReq) Type() PayloadType { return PayloadCERTREQ }
func (p *CertReq) marshalBody(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.Encoding))
	b.AddBytes(p.Data)
}

func parseEncoded(body []byte, what string) (CertEncoding, []byte, error) {
	if len(body) < 1 {
		return 0, nil, errSyntax("%s: truncated", what)
	}
	return CertEncoding(body[0]), clone(body[1:]), nil
}

// ---- AUTH (section 3.8) ----------------------------------------------------

// Auth is the Authentication payload.
type Auth struct {
	Method AuthMethod
	Data   []byte
}

func (*Auth) Type() PayloadType { return PayloadAUTH }
func (p *Auth) marshalBody(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.Method))
	b.AddBytes([]byte{0, 0, 0})
	b.AddBytes(p.Data)
}

func parseAuth(body []byte) (*Auth, error) {
	if len(body) < 5 {
		return nil, errSyntax("AUTH: truncated")
	}
	return &Auth{Method: AuthMethod(body[0]), Data: clone(body[4:])}, nil
}

// ---- Nonce (section 3.9) ---------------------------------------------------

// Nonce is the Nonce payload: 16 to 256 octets.
type Nonce struct {
	Data []byte
}

func (*Nonce) Type() PayloadType                   { return PayloadNonce }
func (p *Nonce) marshalBody(b *cryptobyte.Builder) { b.AddBytes(p.Data) }

func parseNonce(body []byte) (*Nonce, error) {
	// RFC 7296 section 3.9: between 16 and 256 octets inclusive.
	if len(body) < 16 || len(body) > 256 {
		return nil, errSyntax("Nonce: %d octets, want 16..256", len(body))
	}
	return &Nonce{Data: clone(body)}, nil
}

// ---- Notify (section 3.10) -------------------------------------------------

// Notify is the Notify payload.
type Notify struct {
	Protocol   ProtocolID
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

func (*Notify) Type() PayloadType { return PayloadNotify }
func (p *Notify) marshalBody(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.Protocol))
	b.AddUint8(uint8(len(p.SPI)))
	b.AddUint16(uint16(p.NotifyType))
	b.AddBytes(p.SPI)
	b.AddBytes(p.Data)
}

func parseNotify(body []byte) (*Notify, error) {
	s := cryptobyte.String(body)
	p := &Notify{}
	var proto, spiSize uint8
	var t uint16
	if !s.ReadUint8(&proto) || !s.ReadUint8(&spiSize) || !s.ReadUint16(&t) {
		return nil, errSyntax("N: truncated")
	}
	p.Protocol, p.NotifyType = ProtocolID(proto), NotifyType(t)
	if spiSize > 0 {
		var spi []byte
		if !s.ReadBytes(&spi, int(spiSize)) {
			return nil, errSyntax("N: truncated SPI")
		}
		p.SPI = clone(spi)
	}
	if !s.Empty() {
		p.Data = clone(s)
	}
	return p, nil
}

// ---- Delete (section 3.11) -------------------------------------------------

// Delete is the Delete payload. For IKE the SPI list is empty.
type Delete struct {
	Protocol ProtocolID
	SPISize  uint8
	SPIs     [][]byte
}

func (*Delete) Type() PayloadType { return PayloadDelete }
func (p *Delete) marshalBody(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.Protocol))
	b.AddUint8(p.SPISize)
	b.AddUint16(uint16(len(p.SPIs)))
	for _, s := range p.SPIs {
		b.AddBytes(s)
	}
}

func parseDelete(body []byte) (*Delete, error) {
	s := cryptobyte.String(body)
	p := &Delete{}
	var proto uint8
	var n uint16
	if !s.ReadUint8(&proto) || !s.ReadUint8(&p.SPISize) || !s.ReadUint16(&n) {
		return nil, errSyntax("D: truncated")
	}
	p.Protocol = ProtocolID(proto)
	if n > 0 && p.SPISize == 0 {
		return nil, errSyntax("D: %d SPIs of size 0", n)
	}
	if len(s) != int(n)*int(p.SPISize) {
		return nil, errSyntax("D: %d bytes for %d SPIs of %d", len(s), n, p.SPISize)
	}
	for i := 0; i < int(n); i++ {
		var spi []byte
		s.ReadBytes(&spi, int(p.SPISize))
		p.SPIs = append(p.SPIs, clone(spi))
	}
	return p, nil
}

// ---- Vendor ID (section 3.12) ----------------------------------------------

// VendorID is the Vendor ID payload.
type VendorID struct {
	Data []byte
}

func (*VendorID) Type() PayloadType                   { return PayloadVendorID }
func (p *VendorID) marshalBody(b *cryptobyte.Builder) { b.AddBytes(p.Data) }

// ---- TSi / TSr (section 3.13) ----------------------------------------------

// TS is the Traffic Selector payload.
type TS struct {
	Responder bool // TSr rather than TSi
	Selectors []Selector
}

// Selector is one traffic selector (RFC 7296 section 3.13.1).
type Selector struct {
	Protocol  uint8
	StartPort uint16
	EndPort   uint16
	Start     netip.Addr
	End       netip.Addr
}

// TSType returns the selector type from its address family.
func (s Selector) TSType() TSType {
	if s.Start.Is6() && !s.Start.Is4In6() {
		return TSIPv6AddrRange
	}
	return TSIPv4AddrRange
}

func (s Selector) String() string {
	return fmt.Sprintf("%s-%s/%d/%d-%d", s.Start, s.End, s.Protocol, s.StartPort, s.EndPort)
}

func (p *TS) Type() PayloadType {
	if p.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

func (p *TS) marshalBody(b *cryptobyte.Builder) {
	b.AddUint8(uint8(len(p.Selectors)))
	b.AddBytes([]byte{0, 0, 0})
	for _, s := range p.Selectors {
		st, en := s.Start.AsSlice(), s.End.AsSlice()
		b.AddUint8(uint8(s.TSType()))
		b.AddUint8(s.Protocol)
		b.AddUint16(uint16(8 + len(st) + len(en)))
		b.AddUint16(s.StartPort)
		b.AddUint16(s.EndPort)
		b.AddBytes(st)
		b.AddBytes(en)
	}
}

func parseTS(responder bool, body []byte) (*TS, error) {
	s := cryptobyte.String(body)
	p := &TS{Responder: responder}
	var n uint8
	var res []byte
	if !s.ReadUint8(&n) || !s.ReadBytes(&res, 3) || n == 0 {
		return nil, errSyntax("TS: truncated or empty")
	}
	for i := 0; i < int(n); i++ {
		var typ uint8
		var l uint16
		var sel Selector
		if !s.ReadUint8(&typ) || !s.ReadUint8(&sel.Protocol) || !s.ReadUint16(&l) ||
			!s.ReadUint16(&sel.StartPort) || !s.ReadUint16(&sel.EndPort) {
			return nil, errSyntax("TS: truncated selector")
		}
		alen := 0
		switch TSType(typ) {
		case TSIPv4AddrRange:
			alen = 4
		case TSIPv6AddrRange:
			alen = 16
		default:
			return nil, errSyntax("TS: unknown selector type %d", typ)
		}
		if int(l) != 8+2*alen {
			return nil, errSyntax("TS: selector length %d", l)
		}
		var st, en []byte
		if !s.ReadBytes(&st, alen) || !s.ReadBytes(&en, alen) {
			return nil, errSyntax("TS: truncated selector")
		}
		sel.Start, _ = netip.AddrFromSlice(st)
		sel.End, _ = netip.AddrFromSlice(en)
		p.Selectors = append(p.Selectors, sel)
	}
	if !s.Empty() {
		return nil, errSyntax("TS: trailing bytes")
	}
	return p, nil
}

// ---- CP (section 3.15) -----------------------------------------------------

// CP is the Configuration payload.
type CP struct {
	CFGType    ConfigType
	Attributes []CPAttribute
}

// CPAttribute is one configuration attribute (RFC 7296 section 3.15.1).
type CPAttribute struct {
	Type  uint16
	Value []byte
}

func (*CP) Type() PayloadType { return PayloadCP }
func (p *CP) marshalBody(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.CFGType))
	b.AddBytes([]byte{0, 0, 0})
	for _, a := range p.Attributes {
		b.AddUint16(a.Type & 0x7fff)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(a.Value) })
	}
}

func parseCP(body []byte) (*CP, error) {
	s := cryptobyte.String(body)
	p := &CP{}
	var t uint8
	var res []byte
	if !s.ReadUint8(&t) || !s.ReadBytes(&res, 3) {
		return nil, errSyntax("CP: truncated")
	}
	p.CFGType = ConfigType(t)
	for !s.Empty() {
		var a CPAttribute
		var v cryptobyte.String
		if !s.ReadUint16(&a.Type) || !s.ReadUint16LengthPrefixed(&v) {
			return nil, errSyntax("CP: truncated attribute")
		}
		a.Type &= 0x7fff
		if len(v) > 0 {
			a.Value = clone(v)
		}
		p.Attributes = append(p.Attributes, a)
	}
	return p, nil
}

// ---- EAP and unknown payloads ----------------------------------------------

// EAP is the EAP payload, kept raw (RFC 7296 section 3.16).
type EAP struct {
	Data []byte
}

func (*EAP) Type() PayloadType                   { return PayloadEAP }
func (p *EAP) marshalBody(b *cryptobyte.Builder) { b.AddBytes(p.Data) }

// Unknown is a payload type this codec does not know, without the critical
// bit: RFC 7296 section 2.5 says to skip it.
type Unknown struct {
	PayloadType PayloadType
	Data        []byte
}

func (p *Unknown) Type() PayloadType                 { return p.PayloadType }
func (p *Unknown) marshalBody(b *cryptobyte.Builder) { b.AddBytes(p.Data) }

// parseBody decodes one payload body of type t.
func parseBody(t PayloadType, critical bool, body []byte) (Payload, error) {
	switch t {
	case PayloadSA:
		return parseSA(body)
	case PayloadKE:
		return parseKE(body)
	case PayloadIDi, PayloadIDr:
		return parseID(t == PayloadIDr, body)
	case PayloadCERT:
		e, d, err := parseEncoded(body, "CERT")
		if err != nil {
			return nil, err
		}
		return &Cert{Encoding: e, Data: d}, nil
	case PayloadCERTREQ:
		e, d, err := parseEncoded(body, "CERTREQ")
		if err != nil {
			return nil, err
		}
		return &CertReq{Encoding: e, Data: d}, nil
	case PayloadAUTH:
		return parseAuth(body)
	case PayloadNonce:
		return parseNonce(body)
	case PayloadNotify:
		return parseNotify(body)
	case PayloadDelete:
		return parseDelete(body)
	case PayloadVendorID:
		return &VendorID{Data: clone(body)}, nil
	case PayloadTSi, PayloadTSr:
		return parseTS(t == PayloadTSr, body)
	case PayloadCP:
		return parseCP(body)
	case PayloadEAP:
		if len(body) < 4 {
			return nil, errSyntax("EAP: truncated")
		}
		return &EAP{Data: clone(body)}, nil
	case PayloadSK, PayloadSKF:
		return nil, errSyntax("%s inside a payload chain", t)
	}
	// RFC 7296 section 2.5: an unknown payload with the critical bit set
	// rejects the whole message with UNSUPPORTED_CRITICAL_PAYLOAD.
	if critical {
		return nil, &Error{Notify: NotifyUnsupportedCriticalPayload, Msg: fmt.Sprintf("unsupported critical payload %d", t), Data: []byte{byte(t)}}
	}
	return &Unknown{PayloadType: t, Data: clone(body)}, nil
}

// clone copies b, returning nil for an empty slice so that parsed and
// constructed payloads compare equal.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}
