package message

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// fuzzPayload checks that parsing any body of type t never panics and that
// whatever parses re-encodes to a body that parses to the same bytes.
func fuzzPayload(f *testing.F, t PayloadType) {
	r := rand.New(rand.NewPCG(uint64(t), 9))
	for range 200 {
		p := randPayload(r)
		if p.Type() == t {
			var b cryptobyte.Builder
			p.marshalBody(&b)
			f.Add(b.BytesOrPanic())
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(tt *testing.T, body []byte) {
		p, err := parseBody(t, true, body)
		if err != nil {
			return
		}
		var b cryptobyte.Builder
		p.marshalBody(&b)
		out := b.BytesOrPanic()
		p2, err := parseBody(t, true, out)
		if err != nil {
			tt.Fatalf("re-encoded %s does not parse: %v", t, err)
		}
		var b2 cryptobyte.Builder
		p2.marshalBody(&b2)
		if !bytes.Equal(out, b2.BytesOrPanic()) {
			tt.Fatalf("%s encoding not stable", t)
		}
	})
}

func FuzzSA(f *testing.F)       { fuzzPayload(f, PayloadSA) }
func FuzzKE(f *testing.F)       { fuzzPayload(f, PayloadKE) }
func FuzzIDi(f *testing.F)      { fuzzPayload(f, PayloadIDi) }
func FuzzIDr(f *testing.F)      { fuzzPayload(f, PayloadIDr) }
func FuzzCERT(f *testing.F)     { fuzzPayload(f, PayloadCERT) }
func FuzzCERTREQ(f *testing.F)  { fuzzPayload(f, PayloadCERTREQ) }
func FuzzAUTH(f *testing.F)     { fuzzPayload(f, PayloadAUTH) }
func FuzzNonce(f *testing.F)    { fuzzPayload(f, PayloadNonce) }
func FuzzNotify(f *testing.F)   { fuzzPayload(f, PayloadNotify) }
func FuzzDelete(f *testing.F)   { fuzzPayload(f, PayloadDelete) }
func FuzzVendorID(f *testing.F) { fuzzPayload(f, PayloadVendorID) }
func FuzzTSi(f *testing.F)      { fuzzPayload(f, PayloadTSi) }
func FuzzTSr(f *testing.F)      { fuzzPayload(f, PayloadTSr) }
func FuzzCP(f *testing.F)       { fuzzPayload(f, PayloadCP) }
func FuzzEAP(f *testing.F)      { fuzzPayload(f, PayloadEAP) }

// FuzzParse feeds whole datagrams, in clear, sealed (SK) and fragmented
// (SKF), through Parse, Open and the reassembler.
func FuzzParse(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	c := newGCM(f)
	for range 20 {
		m := randMessage(r)
		raw, _ := m.Marshal()
		f.Add(raw)
		sealed, _ := m.Seal(c)
		f.Add(sealed)
		frags, _ := m.SealFragments(c, 100)
		f.Add(frags[0])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		if p.Encrypted == nil {
			m := &Message{Header: p.Header, Payloads: p.Payloads}
			_ = Check(m)
			out, err := m.Marshal()
			if err != nil {
				return
			}
			if _, err := Parse(out); err != nil {
				t.Fatalf("re-encoded datagram does not parse: %v", err)
			}
			return
		}
		c := newGCM(t)
		if p.Encrypted.Type == PayloadSK {
			_, _ = p.Open(c)
		} else {
			var re Reassembler
			_, _ = re.Add(p, c)
		}
	})
}
