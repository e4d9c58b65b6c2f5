package ah

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func key(n int) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = byte(i*7 + 1)
	}
	return k
}

// outer4 is an outer IPv4 header (no options) 192.0.2.1 -> 198.51.100.1
// with TOS 0x28, DF and TTL 64; outer6 a fixed IPv6 header 2001:db8::1 ->
// 2001:db8::2, traffic class 0x28, flow label 0x12345, hop limit 64.
func outer4() []byte {
	return []byte{0x45, 0x28, 0, 0, 0x12, 0x34, 0x40, 0, 64, 0, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1}
}

func outer6() []byte {
	h := []byte{0x62, 0x81, 0x23, 0x45, 0, 0, 0, 64}
	h = append(h, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)
	return append(h, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2)
}

// inner4 is an inner IPv4 ICMP echo 10.0.0.1 -> 10.1.0.1.
func inner4() []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 63, Protocol: layers.IPProtocolICMPv4, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{10, 1, 0, 1}}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 7, Seq: 1}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, icmp, gopacket.Payload("sitesec AH")); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// TestKnownAnswer builds the expected IPv4 AH packet and its ICV by hand
// from RFC 4302 (section 2 layout, section 3.3.3.1.1.1 mutable fields, RFC
// 2404 HMAC-SHA1-96), independently of Seal, and checks Seal and Open
// against it.
func TestKnownAnswer(t *testing.T) {
	k := key(20)
	a, err := New(Config{SPI: 0x01020304, Authentication: "hmac-sha1-96", Key: k})
	if err != nil {
		t.Fatal(err)
	}
	in := inner4()
	got, err := a.Seal(nil, outer4(), in, 5, 4)
	if err != nil {
		t.Fatal(err)
	}
	total := 20 + 24 + len(in)
	want := outer4()
	want[9] = 51
	binary.BigEndian.PutUint16(want[2:], uint16(total))
	ahh := []byte{4, 4, 0, 0, 1, 2, 3, 4, 0, 0, 0, 5} // next header 4, length (24/4)-2
	// ICV input: the header with TOS, flags/offset, TTL and checksum
	// zeroed, AH with a zero ICV, the inner packet.
	zeroed := append([]byte(nil), want...)
	zeroed[1], zeroed[6], zeroed[7], zeroed[8], zeroed[10], zeroed[11] = 0, 0, 0, 0, 0, 0
	m := hmac.New(sha1.New, k)
	m.Write(zeroed)
	m.Write(ahh)
	m.Write(make([]byte, 12))
	m.Write(in)
	icv := m.Sum(nil)[:12]
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(want[i])<<8 | uint32(want[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(want[10:], ^uint16(sum))
	want = append(append(append(want, ahh...), icv...), in...)
	if !bytes.Equal(got, want) {
		t.Fatalf("Seal:\n got %x\nwant %x", got, want)
	}
	p, nh, err := a.Open(want, 5)
	if err != nil || nh != 4 || !bytes.Equal(p, in) {
		t.Fatalf("Open: %v %d", err, nh)
	}
}

// TestRoundTrip: every algorithm, IPv4 and IPv6 outer headers, with and
// without ESN; the ICV field is aligned to 32 or 64 bits (RFC 4302
// section 2.6).
func TestRoundTrip(t *testing.T) {
	algs := map[string]int{"hmac-md5-96": 16, "hmac-sha1-96": 20, "hmac-sha-256-128": 32, "hmac-sha-384-192": 48, "hmac-sha-512-256": 64}
	for name, kl := range algs {
		for _, v6 := range []bool{false, true} {
			for _, esn := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s v6=%v esn=%v", name, v6, esn), func(t *testing.T) {
					a, err := New(Config{SPI: 0xc0ffee, Authentication: name, Key: key(kl), ESN: esn})
					if err != nil {
						t.Fatal(err)
					}
					o := outer4()
					if v6 {
						o = outer6()
					}
					seq := uint64(1)<<32 | 9
					pkt, err := a.Seal(nil, o, inner4(), seq, 4)
					if err != nil {
						t.Fatal(err)
					}
					off, h, err := Outer(pkt)
					if err != nil || h.Len%4 != 0 || (v6 && (off+h.Len)%8 != 0) || h.Len != a.Len(v6) {
						t.Fatalf("header %+v at %d: %v", h, off, err)
					}
					inner, nh, err := a.Open(pkt, seq)
					if err != nil || nh != 4 || !bytes.Equal(inner, inner4()) {
						t.Fatalf("Open: %v", err)
					}
					if _, _, err := a.Open(pkt, seq+1<<32); esn != errors.Is(err, ErrAuth) {
						t.Fatalf("other high sequence bits with esn=%v: %v", esn, err)
					}
				})
			}
		}
	}
}

// TestMutable: the mutable outer fields may change in transit; anything
// else, including the addresses and the AH header, breaks the ICV.
func TestMutable(t *testing.T) {
	a, _ := New(Config{SPI: 77, Authentication: "hmac-sha-256-128", Key: key(32)})
	for _, v6 := range []bool{false, true} {
		o := outer4()
		// (byte 6 flips DF: a changed fragment offset is a fragment,
		// reassembled before AH is checked.)
		mutable, immutable := []int{1, 6, 8, 10, 11}, []int{4, 5, 12, 15, 16, 19}
		if v6 {
			o = outer6()
			mutable, immutable = []int{1, 2, 3, 7}, []int{8, 23, 24, 39}
		}
		pkt, _ := a.Seal(nil, o, inner4(), 3, 4)
		off := len(o)
		immutable = append(immutable, off, off+4, off+8, off+12, len(pkt)-1)
		for _, i := range mutable {
			p := append([]byte(nil), pkt...)
			p[i] ^= 0x40
			if _, _, err := a.Open(p, 3); err != nil {
				t.Errorf("v6=%v: mutable byte %d changed: %v", v6, i, err)
			}
		}
		for _, i := range immutable {
			p := append([]byte(nil), pkt...)
			p[i] ^= 0x01
			if _, _, err := a.Open(p, 3); err == nil {
				t.Errorf("v6=%v: immutable byte %d changed and the packet verified", v6, i)
			}
		}
	}
}

// TestGopacket decodes Seal's output with gopacket's independent IPv4,
// IPv6 and IPSecAH decoders.
func TestGopacket(t *testing.T) {
	a, _ := New(Config{SPI: 0xabcdef01, Authentication: "hmac-sha-256-128", Key: key(32)})
	for _, v6 := range []bool{false, true} {
		o, first := outer4(), layers.LayerTypeIPv4
		if v6 {
			o, first = outer6(), layers.LayerTypeIPv6
		}
		pkt, err := a.Seal(nil, o, inner4(), 42, 4)
		if err != nil {
			t.Fatal(err)
		}
		pk := gopacket.NewPacket(pkt, first, gopacket.Default)
		if el := pk.ErrorLayer(); el != nil {
			t.Fatalf("gopacket: %v", el.Error())
		}
		if !v6 {
			ip := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			c := *ip
			buf := gopacket.NewSerializeBuffer()
			c.Checksum = 0
			if err := c.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil || c.Checksum != ip.Checksum || int(ip.Length) != len(pkt) {
				t.Fatalf("IPv4 checksum %04x, gopacket %04x, length %d", ip.Checksum, c.Checksum, ip.Length)
			}
		} else if ip := pk.Layer(layers.LayerTypeIPv6).(*layers.IPv6); int(ip.Length)+40 != len(pkt) || ip.NextHeader != layers.IPProtocolAH {
			t.Fatalf("IPv6 %+v", ip)
		}
		ah, ok := pk.Layer(layers.LayerTypeIPSecAH).(*layers.IPSecAH)
		if !ok {
			t.Fatalf("v6=%v: no AH layer", v6)
		}
		if ah.SPI != 0xabcdef01 || ah.Seq != 42 || ah.NextHeader != layers.IPProtocolIPv4 || len(ah.AuthenticationData) != a.Len(v6)-HeaderLen {
			t.Fatalf("v6=%v: AH %+v", v6, ah)
		}
		inner, ok := pk.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if !ok || inner.Id != 7 || string(inner.Payload) != "sitesec AH" {
			t.Fatalf("v6=%v: inner ICMP not decoded after AH", v6)
		}
	}
}

// TestBad: what Open and Seal refuse.
func TestBad(t *testing.T) {
	a, _ := New(Config{SPI: 1, Authentication: "hmac-sha1-96", Key: key(20)})
	pkt, _ := a.Seal(nil, outer4(), inner4(), 1, 4)
	for name, p := range map[string][]byte{
		"empty":     nil,
		"truncated": pkt[:30],
		"other SPI": func() []byte {
			o, _ := New(Config{SPI: 2, Authentication: "hmac-sha1-96", Key: key(20)})
			b, _ := o.Seal(nil, outer4(), inner4(), 1, 4)
			return b
		}(),
		"fragment":   func() []byte { b := append([]byte(nil), pkt...); b[7] = 1; return b }(),
		"options":    func() []byte { b := append([]byte(nil), pkt...); b[0] = 0x46; return b }(),
		"not AH":     func() []byte { b := append([]byte(nil), pkt...); b[9] = 50; return b }(),
		"bad length": func() []byte { b := append([]byte(nil), pkt...); b[21] = 200; return b }(),
	} {
		if _, _, err := a.Open(p, 1); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{Authentication: "hmac-sha1-96", Key: key(16)}); err == nil {
		t.Error("short key accepted")
	}
	if _, err := New(Config{Authentication: "", Key: nil}); err == nil {
		t.Error("no algorithm accepted")
	}
	if _, err := a.Seal(nil, outer4()[:19], inner4(), 1, 4); err == nil {
		t.Error("short outer header accepted")
	}
}

// FuzzOpen: bytes from the network never panic Open.
func FuzzOpen(f *testing.F) {
	a, _ := New(Config{SPI: 1, Authentication: "hmac-sha1-96", Key: key(20)})
	b, _ := New(Config{SPI: 1, Authentication: "hmac-sha-512-256", Key: key(64), ESN: true})
	p4, _ := a.Seal(nil, outer4(), inner4(), 1, 4)
	p6, _ := b.Seal(nil, outer6(), inner4(), 1, 4)
	f.Add(p4)
	f.Add(p6)
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, x := range []*Auth{a, b} {
			if inner, _, err := x.Open(p, 1); err == nil && len(inner) > len(p) {
				t.Fatal("inner longer than the packet")
			}
		}
		if h, err := ParseHeader(p); err == nil && h.Len > len(p) {
			t.Fatal("header longer than the packet")
		}
	})
}
