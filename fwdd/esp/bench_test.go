package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"testing"
)

// BenchmarkAnchorAESGCMSeal is the anchor every data-plane benchmark is
// reported against: Go's AES-128-GCM seal of a 1400-byte packet.
func BenchmarkAnchorAESGCMSeal(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 16))
	aead, _ := cipher.NewGCM(block)
	buf := make([]byte, 1400, 1400+16)
	var nonce [12]byte
	var aad [8]byte
	b.SetBytes(1400)
	b.ReportAllocs()
	for b.Loop() {
		aead.Seal(buf[:0], nonce[:], buf, aad[:])
	}
}

var benchTransforms = []transform{
	{"aes-128-gcm", ""}, {"aes-256-gcm", ""}, {"chacha20-poly1305", ""},
	{"aes-128-cbc", "hmac-sha1-96"}, {"aes-256-cbc", "hmac-sha-256-128"},
}

func BenchmarkSeal(b *testing.B) {
	for _, tr := range benchTransforms {
		b.Run(tr.enc+"+"+tr.auth, func(b *testing.B) {
			c, _ := newPair(b, tr, true)
			buf, start, end := buffer(make([]byte, 1400))
			b.SetBytes(1400)
			b.ReportAllocs()
			seq := uint64(0)
			for b.Loop() {
				seq++
				if _, err := c.Seal(buf, start, end, seq, 4); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, tr := range benchTransforms {
		b.Run(tr.enc+"+"+tr.auth, func(b *testing.B) {
			enc, dec := newPair(b, tr, true)
			buf, start, end := buffer(make([]byte, 1400))
			pkt, err := enc.Seal(buf, start, end, 1, 4)
			if err != nil {
				b.Fatal(err)
			}
			orig := append([]byte(nil), pkt...)
			b.SetBytes(1400)
			b.ReportAllocs()
			for b.Loop() {
				copy(pkt, orig)
				if _, _, err := dec.Open(pkt, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
