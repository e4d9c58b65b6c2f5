package message

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// gcmCipher is a minimal RFC 5282 style cipher for codec tests; the real
// ones live in package transform.
type gcmCipher struct {
	aead cipher.AEAD
	ctr  uint64
}

func newGCM(t testing.TB) *gcmCipher {
	b, err := aes.NewCipher(make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := cipher.NewGCM(b)
	return &gcmCipher{aead: a}
}

func (c *gcmCipher) BodyLen(n int) int { return 8 + n + 1 + 16 }
func (c *gcmCipher) Seal(aad, pt []byte) ([]byte, error) {
	c.ctr++
	iv := binary.BigEndian.AppendUint64(nil, c.ctr)
	nonce := append(make([]byte, 4), iv...)
	return c.aead.Seal(iv, nonce, append(bytes.Clone(pt), 0), aad), nil
}
func (c *gcmCipher) Open(aad, body []byte) ([]byte, error) {
	if len(body) < 8+16+1 {
		return nil, errors.New("short")
	}
	nonce := append(make([]byte, 4), body[:8]...)
	pt, err := c.aead.Open(nil, nonce, body[8:], aad)
	if err != nil {
		return nil, err
	}
	pad := int(pt[len(pt)-1])
	if pad+1 > len(pt) {
		return nil, errors.New("pad")
	}
	return pt[:len(pt)-1-pad], nil
}

func randBytes(r *rand.Rand, min, max int) []byte {
	n := min + r.IntN(max-min+1)
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randAddr(r *rand.Rand, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16([16]byte(randBytes(r, 16, 16)))
	}
	return netip.AddrFrom4([4]byte(randBytes(r, 4, 4)))
}

// randPayload returns a random well-formed payload of every known type.
func randPayload(r *rand.Rand) Payload {
	switch r.IntN(15) {
	case 0:
		sa := &SA{}
		for i := range 1 + r.IntN(3) {
			p := Proposal{Number: uint8(i + 1), Protocol: ProtocolID(1 + r.IntN(3)), SPI: randBytes(r, 0, 8)}
			for range 1 + r.IntN(5) {
				t := NewTransform(TransformType(1+r.IntN(5)), uint16(r.IntN(40)), uint16(r.IntN(2)*256))
				if r.IntN(5) == 0 {
					t.Attributes = append(t.Attributes, Attribute{Type: 99, Bytes: randBytes(r, 1, 5)})
				}
				p.Transforms = append(p.Transforms, t)
			}
			sa.Proposals = append(sa.Proposals, p)
		}
		return sa
	case 1:
		return &KE{Group: uint16(r.IntN(32)), Data: randBytes(r, 1, 300)}
	case 2:
		return &ID{Responder: r.IntN(2) == 0, IDType: IDFQDN, Data: randBytes(r, 1, 40)}
	case 3:
		return &ID{IDType: IDIPv4Addr, Data: randBytes(r, 4, 4)}
	case 4:
		return &Cert{Encoding: CertX509Signature, Data: randBytes(r, 0, 100)}
	case 5:
		return &CertReq{Encoding: CertX509Signature, Data: randBytes(r, 0, 60)}
	case 6:
		return &Auth{Method: AuthSharedKeyMIC, Data: randBytes(r, 1, 64)}
	case 7:
		return &Nonce{Data: randBytes(r, 16, 256)}
	case 8:
		return &Notify{Protocol: ProtocolID(r.IntN(4)), SPI: randBytes(r, 0, 8), NotifyType: NotifyType(r.Uint32()), Data: randBytes(r, 0, 40)}
	case 9:
		d := &Delete{Protocol: ProtocolESP, SPISize: 4}
		for range r.IntN(4) {
			d.SPIs = append(d.SPIs, randBytes(r, 4, 4))
		}
		return d
	case 10:
		return &VendorID{Data: randBytes(r, 0, 20)}
	case 11:
		ts := &TS{Responder: r.IntN(2) == 0}
		for range 1 + r.IntN(3) {
			v6 := r.IntN(2) == 0
			ts.Selectors = append(ts.Selectors, Selector{Protocol: uint8(r.IntN(256)), StartPort: uint16(r.Uint32()), EndPort: uint16(r.Uint32()), Start: randAddr(r, v6), End: randAddr(r, v6)})
		}
		return ts
	case 12:
		cp := &CP{CFGType: CFGRequest}
		for range r.IntN(3) {
			cp.Attributes = append(cp.Attributes, CPAttribute{Type: uint16(r.IntN(0x7fff)), Value: randBytes(r, 0, 16)})
		}
		return cp
	case 13:
		return &EAP{Data: randBytes(r, 4, 40)}
	default:
		return &Unknown{PayloadType: PayloadType(100 + r.IntN(100)), Data: randBytes(r, 0, 10)}
	}
}

func randMessage(r *rand.Rand) *Message {
	m := &Message{Header: Header{SPIi: r.Uint64(), SPIr: r.Uint64(), Exchange: ExchangeType(34 + r.IntN(4)), Flags: FlagInitiator, MessageID: r.Uint32()}}
	for range r.IntN(8) {
		m.Payloads = append(m.Payloads, randPayload(r))
	}
	return m
}

func TestRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := newGCM(t)
	for i := range 2000 {
		m := randMessage(r)
		raw, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(raw)
		if err != nil {
			t.Fatalf("%d: parse: %v", i, err)
		}
		if !reflect.DeepEqual(p.Payloads, m.Payloads) && len(m.Payloads) > 0 {
			t.Fatalf("%d: payloads differ:\n%#v\n%#v", i, p.Payloads, m.Payloads)
		}
		if p.SPIi != m.SPIi || p.SPIr != m.SPIr || p.MessageID != m.MessageID || p.Exchange != m.Exchange {
			t.Fatalf("%d: header differs", i)
		}
		// Every truncation is rejected, both as a datagram and as a chain.
		for n := range len(raw) {
			if _, err := Parse(raw[:n]); err == nil {
				t.Fatalf("%d: truncation to %d accepted", i, n)
			}
		}
		chain := raw[HeaderLen:]
		for n := range len(chain) {
			if _, err := ParsePayloads(p.NextPayload, chain[:n]); err == nil {
				t.Fatalf("%d: chain truncated to %d accepted", i, n)
			}
		}
		// The same message sealed in SK.
		sealed, err := m.Seal(c)
		if err != nil {
			t.Fatal(err)
		}
		sp, err := Parse(sealed)
		if err != nil || sp.Encrypted == nil {
			t.Fatalf("%d: parse sealed: %v", i, err)
		}
		got, err := sp.Open(c)
		if err != nil {
			t.Fatalf("%d: open: %v", i, err)
		}
		if len(m.Payloads) > 0 && !reflect.DeepEqual(got.Payloads, m.Payloads) {
			t.Fatalf("%d: sealed payloads differ", i)
		}
		// A flipped bit anywhere fails authentication or parsing.
		bad := bytes.Clone(sealed)
		bad[r.IntN(len(bad)-HeaderLen)+HeaderLen] ^= 1
		if bp, err := Parse(bad); err == nil {
			if _, err := bp.Open(c); err == nil {
				t.Fatalf("%d: tampered message opened", i)
			}
		}
	}
}

func TestFragments(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	c := newGCM(t)
	m := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: IKEAuth, Flags: FlagInitiator, MessageID: 1}}
	for range 20 {
		m.Payloads = append(m.Payloads, &Cert{Encoding: CertX509Signature, Data: randBytes(r, 200, 200)})
	}
	frags, err := m.SealFragments(c, 576)
	if err != nil {
		t.Fatal(err)
	}
	if len(frags) < 5 {
		t.Fatalf("%d fragments", len(frags))
	}
	var re Reassembler
	// Deliver in reverse order with a duplicate: order must not matter.
	order := []int{}
	for i := len(frags) - 1; i >= 0; i-- {
		order = append(order, i)
	}
	order = append([]int{len(frags) - 1}, order...)
	var got *Message
	for k, i := range order {
		if len(frags[i]) > 576 {
			t.Fatalf("fragment %d is %d bytes", i, len(frags[i]))
		}
		p, err := Parse(frags[i])
		if err != nil {
			t.Fatal(err)
		}
		got, err = re.Add(p, c)
		if err != nil {
			t.Fatal(err)
		}
		if got != nil && k != len(order)-1 {
			t.Fatalf("complete after %d of %d", k+1, len(order))
		}
	}
	if got == nil || !reflect.DeepEqual(got.Payloads, m.Payloads) {
		t.Fatal("reassembled message differs")
	}
	// A tampered fragment is rejected before it is kept.
	bad := bytes.Clone(frags[0])
	bad[len(bad)-1] ^= 1
	p, _ := Parse(bad)
	if _, err := re.Add(p, c); err == nil {
		t.Fatal("tampered fragment accepted")
	}
}

func TestParseErrors(t *testing.T) {
	good, _ := (&Message{Header: Header{Exchange: IKESAInit}, Payloads: []Payload{&Nonce{Data: make([]byte, 16)}}}).Marshal()
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		notify NotifyType
	}{
		{"major version 3", func(b []byte) []byte { b[17] = 0x30; return b }, NotifyInvalidMajorVersion},
		{"short nonce", func(b []byte) []byte {
			b = b[:len(b)-1]
			binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
			binary.BigEndian.PutUint16(b[HeaderLen+2:], 19)
			return b
		}, NotifyInvalidSyntax},
		{"unknown critical", func(b []byte) []byte { b[16] = 200; b[HeaderLen+1] = 0x80; return b }, NotifyUnsupportedCriticalPayload},
		{"SK not last", func(b []byte) []byte {
			b[16] = byte(PayloadSK)
			b[HeaderLen] = byte(PayloadNonce)
			binary.BigEndian.PutUint16(b[HeaderLen+2:], 4)
			return b
		}, NotifyInvalidSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.mutate(bytes.Clone(good)))
			var me *Error
			if !errors.As(err, &me) || me.Notify != tc.notify {
				t.Fatalf("err = %v, want notify %d", err, tc.notify)
			}
		})
	}
	// An unknown payload without the critical bit is skipped (kept raw).
	b := bytes.Clone(good)
	b[16] = 200
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := p.Payloads[0].(*Unknown); !ok || u.PayloadType != 200 {
		t.Fatalf("got %#v", p.Payloads[0])
	}
}

func TestCheck(t *testing.T) {
	n := &Nonce{Data: make([]byte, 16)}
	tests := []struct {
		name string
		m    Message
		ok   bool
	}{
		{"init ok", Message{Header: Header{Exchange: IKESAInit}, Payloads: []Payload{&SA{}, &KE{}, n, &Notify{}, &Notify{}}}, true},
		{"init duplicate nonce", Message{Header: Header{Exchange: IKESAInit}, Payloads: []Payload{&SA{}, n, n}}, false},
		{"init with AUTH", Message{Header: Header{Exchange: IKESAInit}, Payloads: []Payload{&Auth{}}}, false},
		{"auth response with IDi", Message{Header: Header{Exchange: IKEAuth, Flags: FlagResponse}, Payloads: []Payload{&ID{}}}, false},
		{"auth request", Message{Header: Header{Exchange: IKEAuth}, Payloads: []Payload{&ID{}, &Auth{}, &SA{}, &TS{}, &TS{Responder: true}}}, true},
		{"informational delete", Message{Header: Header{Exchange: Informational}, Payloads: []Payload{&Delete{}, &Delete{}}}, true},
		{"informational SA", Message{Header: Header{Exchange: Informational}, Payloads: []Payload{&SA{}}}, false},
		{"unknown exchange", Message{Header: Header{Exchange: 99}}, false},
		{"unknown payload skipped", Message{Header: Header{Exchange: Informational}, Payloads: []Payload{&Unknown{PayloadType: 99}}}, true},
	}
	for _, tc := range tests {
		if err := Check(&tc.m); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

func BenchmarkParseSealed(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	c := newGCM(b)
	m := &Message{Header: Header{Exchange: CreateChildSA}, Payloads: []Payload{randPayload(r), &Nonce{Data: make([]byte, 32)}, &KE{Group: 19, Data: make([]byte, 64)}}}
	raw, _ := m.Seal(c)
	b.ReportAllocs()
	for b.Loop() {
		p, err := Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Open(c); err != nil {
			b.Fatal(err)
		}
	}
}

// Issue 14 item 4: a peer that only did IKE_SA_INIT (it has the keys,
// it is not authenticated) cannot make an SA hold more than
// MaxReassembly bytes of fragments: 20 authentic fragments of 4000 bytes
// each announce an 80000-byte message.
func TestReassemblyBound(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	c := newGCM(t)
	const total, chunk = 20, 4000
	var re Reassembler
	var last error
	for i := 1; i <= total; i++ {
		h := Header{SPIi: 1, SPIr: 2, Exchange: IKEAuth, Flags: FlagInitiator, MessageID: 1, NextPayload: PayloadSKF, Version: Version}
		bodyLen := c.BodyLen(chunk)
		h.Length = uint32(HeaderLen + 8 + bodyLen)
		next := PayloadNone
		if i == 1 {
			next = PayloadCERT
		}
		aad := h.append(nil)
		aad = append(aad, byte(next), 0)
		aad = binary.BigEndian.AppendUint16(aad, uint16(8+bodyLen))
		aad = binary.BigEndian.AppendUint16(aad, uint16(i))
		aad = binary.BigEndian.AppendUint16(aad, total)
		body, err := c.Seal(aad, randBytes(r, chunk, chunk))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(append(aad, body...))
		if err != nil {
			t.Fatal(err)
		}
		got, err := re.Add(p, c)
		if got != nil {
			t.Fatalf("fragment %d completed a message", i)
		}
		if err != nil {
			last = err
			if re.size != 0 || re.parts != nil {
				t.Fatalf("fragment %d: %v, but %d bytes kept", i, err, re.size)
			}
		}
		if re.size > MaxReassembly {
			t.Fatalf("%d bytes held after fragment %d", re.size, i)
		}
	}
	if last == nil || !strings.Contains(last.Error(), "too large") {
		t.Fatalf("err = %v", last)
	}
}
