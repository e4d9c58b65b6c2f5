package isakmp

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParse feeds untrusted datagrams through every parser: none may
// panic, and what parses must render back to the same bytes.
func FuzzParse(f *testing.F) {
	f.Add(sampleMessage())
	f.Add(sampleSA().Marshal())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, body, err := ParseHeader(b); err == nil {
			if ps, rest, err := ParsePayloads(h.Next, body); err == nil && len(rest) == 0 {
				// Reserved octets are ignored on input (RFC 2408 section
				// 3.2), so compare what a second parse reads.
				out := Marshal(h, ps)
				h2, body2, err := ParseHeader(out)
				ps2, _, err2 := ParsePayloads(h2.Next, body2)
				if err != nil || err2 != nil || !reflect.DeepEqual(ps, ps2) {
					t.Fatalf("payload chain does not round-trip: %v %v", err, err2)
				}
				for _, p := range ps {
					parseBody(t, p)
				}
			}
		}
		parseBody(t, Payload{PayloadSA, b})
		parseBody(t, Payload{PayloadNotify, b})
		parseBody(t, Payload{PayloadDelete, b})
		parseBody(t, Payload{PayloadID, b})
	})
}

func parseBody(t *testing.T, p Payload) {
	switch p.Type {
	case PayloadSA:
		if sa, err := ParseSA(p.Body); err == nil {
			if sa2, err := ParseSA(sa.Marshal()); err != nil || !reflect.DeepEqual(sa, sa2) {
				t.Fatalf("SA does not round-trip: %v", err)
			}
		}
	case PayloadNotify:
		if n, err := ParseNotify(p.Body); err == nil && !bytes.Equal(n.Marshal(), p.Body) {
			t.Fatalf("notify does not round-trip")
		}
	case PayloadDelete:
		if d, err := ParseDelete(p.Body); err == nil && !bytes.Equal(d.Marshal(), p.Body) {
			t.Fatalf("delete does not round-trip")
		}
	case PayloadID:
		if id, err := ParseID(p.Body); err == nil && !bytes.Equal(id.Marshal(), p.Body) {
			t.Fatalf("ID does not round-trip")
		}
	}
}
