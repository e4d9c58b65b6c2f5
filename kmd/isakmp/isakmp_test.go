package isakmp

import (
	"bytes"
	"reflect"
	"testing"
)

func sampleSA() SA {
	return SA{DOI: DOIIPsec, Situation: SituationIdentityOnly, Proposals: []Proposal{{
		Number: 1, Protocol: ProtoISAKMP, Transforms: []Transform{
			{Number: 1, ID: TransformKeyIKE, Attrs: []Attr{Basic(AttrEncryption, EncrAES), Basic(AttrKeyLength, 128), Basic(AttrHash, HashSHA1), Basic(AttrAuthMethod, AuthPSK), Basic(AttrGroup, 14), Basic(AttrLifeType, LifeSeconds), Long(AttrLifeDuration, 86400)}},
			{Number: 2, ID: TransformKeyIKE, Attrs: []Attr{Basic(AttrEncryption, Encr3DES), Basic(AttrHash, HashMD5), Basic(AttrAuthMethod, AuthPSK), Basic(AttrGroup, 2)}},
		}}, {
		Number: 2, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, Transforms: []Transform{
			{Number: 1, ID: ESPAES, Attrs: []Attr{Basic(AttrEncapMode, EncapUDPTunnel), Basic(AttrAuthAlg, AuthHMACSHA)}},
		}}}}
}

func sampleMessage() []byte {
	h := Header{ICookie: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, Version: Version, Exchange: ExchangeMain}
	return Marshal(h, []Payload{
		{PayloadSA, sampleSA().Marshal()},
		{PayloadVendorID, VendorNATT},
		{PayloadID, ID{Type: IDIPv4, Protocol: 17, Port: 500, Data: []byte{192, 0, 2, 1}}.Marshal()},
		{PayloadNotify, Notify{DOI: 1, Protocol: ProtoISAKMP, SPI: make([]byte, 16), Type: NotifyRUThere, Data: []byte{0, 0, 0, 7}}.Marshal()},
		{PayloadDelete, Delete{DOI: 1, Protocol: ProtoESP, SPIs: [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}}}.Marshal()},
	})
}

func TestRoundTrip(t *testing.T) {
	b := sampleMessage()
	h, body, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Exchange != ExchangeMain || h.Next != PayloadSA || int(h.Length) != len(b) {
		t.Fatalf("header %+v", h)
	}
	ps, rest, err := ParsePayloads(h.Next, body)
	if err != nil || len(rest) != 0 {
		t.Fatalf("payloads: %v rest %d", err, len(rest))
	}
	if got := Describe(ps); got != "SA V ID N D" {
		t.Fatalf("payloads %q", got)
	}
	sa, err := ParseSA(ps[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sa, sampleSA()) {
		t.Fatalf("SA round trip:\n%+v\n%+v", sa, sampleSA())
	}
	if !bytes.Equal(sa.Marshal(), ps[0].Body) {
		t.Fatal("SA not byte-identical")
	}
	if a, ok := sa.Proposals[0].Transforms[0].Attr(AttrLifeDuration); !ok || a.TV {
		t.Fatal("life duration should be TLV")
	} else if v, _ := a.Uint(); v != 86400 {
		t.Fatalf("life %d", v)
	}
	id, _ := ParseID(ps[2].Body)
	if id.Type != IDIPv4 || id.Port != 500 || !bytes.Equal(id.Data, []byte{192, 0, 2, 1}) {
		t.Fatalf("id %+v", id)
	}
	n, err := ParseNotify(ps[3].Body)
	if err != nil || n.Type != NotifyRUThere || len(n.SPI) != 16 || !bytes.Equal(n.Data, []byte{0, 0, 0, 7}) {
		t.Fatalf("notify %+v %v", n, err)
	}
	d, err := ParseDelete(ps[4].Body)
	if err != nil || len(d.SPIs) != 2 || d.Protocol != ProtoESP {
		t.Fatalf("delete %+v %v", d, err)
	}
}

// Every truncation of a message fails the header's length check, and
// every truncation of the payload chain or of an SA body fails to parse.
func TestTruncations(t *testing.T) {
	b := sampleMessage()
	for n := 0; n < len(b); n++ {
		if _, _, err := ParseHeader(b[:n]); err == nil {
			t.Fatalf("header accepted %d of %d bytes", n, len(b))
		}
	}
	body := b[HeaderLen:]
	for n := 0; n < len(body); n++ {
		if _, _, err := ParsePayloads(PayloadSA, body[:n]); err == nil {
			t.Fatalf("payloads accepted %d of %d bytes", n, len(body))
		}
	}
	sab := sampleSA().Marshal()
	for n := 0; n < len(sab); n++ {
		if _, err := ParseSA(sab[:n]); err == nil {
			t.Fatalf("SA accepted %d of %d bytes", n, len(sab))
		}
	}
	if _, err := ParseSA(append(sab, 0)); err == nil {
		t.Fatal("SA with a trailing byte accepted")
	}
	if _, err := ParseDelete([]byte{0, 0, 0, 1, 3, 4, 0, 2, 1, 2, 3, 4}); err == nil {
		t.Fatal("delete with a missing SPI accepted")
	}
}

func TestRejects(t *testing.T) {
	b := sampleMessage()
	v2 := append([]byte(nil), b...)
	v2[17] = 0x20
	if _, _, err := ParseHeader(v2); err == nil {
		t.Fatal("IKEv2 version accepted")
	}
	// A proposal payload in the message chain is not an SA.
	if _, _, err := ParsePayloads(PayloadProposal, []byte{0, 0, 0, 4}); err == nil {
		t.Fatal("proposal outside an SA accepted")
	}
	// A zero-length generic payload is malformed (length counts the header).
	if _, _, err := ParsePayloads(PayloadVendorID, []byte{0, 0, 0, 2}); err == nil {
		t.Fatal("length below the header accepted")
	}
	sa := sampleSA()
	sa.DOI = 2
	if _, err := ParseSA(sa.Marshal()); err == nil {
		t.Fatal("DOI 2 accepted")
	}
	// Announcing three transforms but carrying two.
	sab := sampleSA().Marshal()
	sab[8+4+3] = 3
	if _, err := ParseSA(sab); err == nil {
		t.Fatal("wrong transform count accepted")
	}
}
