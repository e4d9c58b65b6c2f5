package secret

import (
	"bytes"
	"math/rand"
	"testing"
)

func TestDecodeVector(t *testing.T) {
	// The vector of the Crypt::Juniper ports.
	got, err := Decode("$9$1HFIyKXxdsgJ-VH.Pfn6lKMXdsZUi5Qnikfz")
	if err != nil || got != "testPassWord" {
		t.Fatalf("got %q %v", got, err)
	}
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 500; i++ {
		p := make([]byte, r.Intn(40))
		for j := range p {
			p[j] = byte(32 + r.Intn(95))
		}
		s, err := Encode(string(p), r)
		if err != nil {
			t.Fatal(err)
		}
		if !Is(s) {
			t.Fatalf("%q not recognised", s)
		}
		d, err := Decode(s)
		if err != nil || d != string(p) {
			t.Fatalf("%q -> %q -> %q %v", p, s, d, err)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, s := range []string{"", "$9$", "plain", "$9$1HFIyKXxdsgJ-VH.Pfn6lKMXdsZUi5Qnikf", "$9$Q!!"} {
		if _, err := Decode(s); err == nil {
			t.Errorf("%q decoded", s)
		}
	}
	if _, err := Encode("x", bytes.NewReader(nil)); err == nil {
		t.Error("encode without randomness")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("$9$1HFIyKXxdsgJ-VH.Pfn6lKMXdsZUi5Qnikfz")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Decode(s)
		if err != nil {
			return
		}
		e, err := Encode(p, rand.New(rand.NewSource(2)))
		if err != nil {
			t.Fatal(err)
		}
		if d, err := Decode(e); err != nil || d != p {
			t.Fatalf("re-encode of %q: %q %v", p, d, err)
		}
	})
}
