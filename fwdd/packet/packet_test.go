package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/net/ipv4"
)

var (
	a1 = netip.MustParseAddr("10.0.1.1")
	a2 = netip.MustParseAddr("10.0.2.2")
)

// udp4 builds an IPv4/UDP packet with n payload bytes.
func udp4(n int, ttl byte, df bool) []byte {
	p := make([]byte, IPv4HeaderLen+UDPHeaderLen+n)
	OuterIPv4(p, a1, a2, ProtoUDP, ttl, 0x10, df, 77, UDPHeaderLen+n)
	UDP(p[IPv4HeaderLen:], 1234, 53, n)
	for i := 0; i < n; i++ {
		p[IPv4HeaderLen+UDPHeaderLen+i] = byte(i)
	}
	return p
}

func TestParse(t *testing.T) {
	v6 := make([]byte, 48)
	v6[0] = 0x60
	binary.BigEndian.PutUint16(v6[4:], 8)
	v6[6], v6[7] = ProtoUDP, 9
	v6[23], v6[39] = 1, 2
	tests := []struct {
		name string
		p    []byte
		want error
	}{
		{"udp4", udp4(10, 64, true), nil},
		{"v6", v6, nil},
		{"empty", nil, ErrShort},
		{"v4 short", udp4(10, 64, false)[:19], ErrShort},
		{"v4 truncated", udp4(10, 64, false)[:30], ErrShort},
		{"v6 short", v6[:39], ErrShort},
		{"v5", []byte{0x50, 0, 0, 0}, ErrVersion},
		{"ihl 4", append([]byte{0x44}, udp4(10, 64, false)[1:]...), ErrHeader},
	}
	for _, tt := range tests {
		in, err := Parse(tt.p)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
			continue
		}
		if err == nil && tt.name == "udp4" {
			if in.Src != a1 || in.Dst != a2 || in.Proto != ProtoUDP || !in.DF || in.TTL != 64 || in.DstPort != 53 || in.Len != 38 || in.TOS != 0x10 {
				t.Errorf("udp4 info %+v", in)
			}
			// Cross-check with x/net/ipv4.
			h, err := ipv4.ParseHeader(tt.p)
			if err != nil || h.TotalLen != 38 || h.TTL != 64 || h.Flags != ipv4.DontFragment || !h.Dst.Equal(a2.AsSlice()) {
				t.Errorf("x/net/ipv4 disagrees: %+v %v", h, err)
			}
		}
		if err == nil && tt.name == "v6" && (in.Version != 6 || in.Len != 48 || in.TTL != 9 || in.Proto != ProtoUDP) {
			t.Errorf("v6 info %+v", in)
		}
	}
}

func TestDecrementTTL(t *testing.T) {
	p := udp4(3, 2, false)
	in, _ := Parse(p)
	if !DecrementTTL(p, in) || p[8] != 1 || Checksum(p[:20], 0) != 0 {
		t.Fatalf("ttl %d checksum %x", p[8], Checksum(p[:20], 0))
	}
	in, _ = Parse(p)
	if DecrementTTL(p, in) {
		t.Fatal("TTL 1 forwarded")
	}
	// Borrow across the checksum: many TTL values.
	for ttl := 2; ttl < 256; ttl++ {
		p := udp4(ttl, byte(ttl), ttl%2 == 0)
		in, _ := Parse(p)
		DecrementTTL(p, in)
		if Checksum(p[:20], 0) != 0 {
			t.Fatalf("ttl %d: checksum wrong", ttl)
		}
	}
}

func TestClearDF(t *testing.T) {
	p := udp4(3, 64, true)
	in, _ := Parse(p)
	ClearDF(p, in)
	in, _ = Parse(p)
	if in.DF || Checksum(p[:20], 0) != 0 {
		t.Fatal("DF still set or checksum broken")
	}
}

func TestFragment(t *testing.T) {
	for _, n := range []int{1, 100, 1472, 1473, 3000, 8000} {
		p := udp4(n, 64, false)
		in, _ := Parse(p)
		scratch := make([]byte, 1500)
		var got []byte
		count, err := Fragment(p, in, 576, scratch, func(f []byte) {
			fi, err := Parse(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(f) > 576 || Checksum(f[:20], 0) != 0 {
				t.Fatalf("fragment of %d bytes, checksum %x", len(f), Checksum(f[:20], 0))
			}
			if fi.FragOff != len(got) {
				t.Fatalf("offset %d, have %d", fi.FragOff, len(got))
			}
			got = append(got, f[20:]...)
			last := len(got) == len(p)-20
			if fi.MoreFrag == last {
				t.Fatalf("more fragments %v on the last=%v fragment", fi.MoreFrag, last)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, p[20:]) {
			t.Fatalf("n=%d: reassembly differs", n)
		}
		if want := (len(p) - 20 + 551) / 552; count != want {
			t.Fatalf("n=%d: %d fragments, want %d", n, count, want)
		}
	}
	p := udp4(100, 64, false)
	in, _ := Parse(p)
	if _, err := Fragment(p, in, 20, make([]byte, 100), func([]byte) {}); err == nil {
		t.Fatal("mtu 20 accepted")
	}
}

func TestFragNeeded(t *testing.T) {
	p := udp4(1400, 64, true)
	in, _ := Parse(p)
	gw := netip.MustParseAddr("192.0.2.1")
	buf := make([]byte, 128)
	e := FragNeeded(buf, p, in, gw, 1400)
	if e == nil {
		t.Fatal("no ICMP")
	}
	ei, err := Parse(e)
	if err != nil || ei.Dst != a1 || ei.Src != gw || ei.Proto != ProtoICMP {
		t.Fatalf("%+v %v", ei, err)
	}
	ic := e[20:]
	if ic[0] != 3 || ic[1] != 4 || binary.BigEndian.Uint16(ic[6:]) != 1400 || Checksum(ic, 0) != 0 {
		t.Fatalf("icmp %x", ic[:8])
	}
	if !bytes.Equal(ic[8:], p[:28]) {
		t.Fatal("quote")
	}
	// No error about an ICMP error.
	if FragNeeded(buf, e, ei, gw, 1400) != nil {
		t.Fatal("ICMP error about an ICMP error")
	}
	if te := TimeExceeded(buf, p, in, gw); te == nil || te[20] != 11 {
		t.Fatal("time exceeded")
	}
}

func TestCheck(t *testing.T) {
	good := udp4(20, 64, false)
	tcp := make([]byte, 40)
	OuterIPv4(tcp, a1, a2, ProtoTCP, 64, 0, false, 1, 20)
	binary.BigEndian.PutUint16(tcp[20:], 1000)
	binary.BigEndian.PutUint16(tcp[22:], 80)
	tcp[32] = 5 << 4
	tcp[33] = 0x02 // SYN
	synfin := append([]byte(nil), tcp...)
	synfin[33] = 0x03
	land := make([]byte, 28)
	OuterIPv4(land, a1, a1, ProtoUDP, 64, 0, false, 1, 8)
	UDP(land[20:], 1, 2, 0)
	ttl0 := udp4(4, 0, false)
	badsum := udp4(4, 64, false)
	badsum[10] ^= 0xff
	udplen := udp4(4, 64, false)
	binary.BigEndian.PutUint16(udplen[24:], 99)
	tests := []struct {
		name      string
		p         []byte
		integrity bool
		want      error
	}{
		{"good", good, true, nil},
		{"tcp syn", tcp, true, nil},
		{"syn fin", synfin, true, ErrL4},
		{"syn fin unchecked", synfin, false, nil},
		{"land", land, false, ErrLand},
		{"ttl 0", ttl0, false, ErrTTL},
		{"checksum", badsum, false, ErrChecksum},
		{"udp length", udplen, true, ErrL4},
	}
	for _, tt := range tests {
		in, err := Parse(tt.p)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if err := Check(tt.p, in, tt.integrity); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

func FuzzPacket(f *testing.F) {
	f.Add(udp4(10, 64, true), uint16(576))
	f.Add([]byte{0x60, 0, 0, 0, 0, 0, 17, 1}, uint16(1280))
	f.Fuzz(func(t *testing.T, p []byte, mtu uint16) {
		in, err := Parse(p)
		if err != nil {
			return
		}
		_ = Check(p, in, true)
		buf := make([]byte, 2048)
		_ = FragNeeded(buf, p, in, netip.MustParseAddr("192.0.2.1"), int(mtu))
		_ = PacketTooBig(buf, p, in, netip.MustParseAddr("2001:db8::1"), int(mtu))
		if in.Version == 4 && mtu >= 68 && in.HdrLen <= 60 {
			total := 0
			_, err := Fragment(p, in, int(mtu), make([]byte, int(mtu)), func(f []byte) { total += len(f) - in.HdrLen })
			if err == nil && total != in.Len-in.HdrLen {
				t.Fatalf("fragments carry %d of %d bytes", total, in.Len-in.HdrLen)
			}
		}
		q := append([]byte(nil), p...)
		DecrementTTL(q, in)
	})
}

func BenchmarkParseCheck(b *testing.B) {
	p := udp4(1372, 64, true)
	b.ReportAllocs()
	for b.Loop() {
		in, _ := Parse(p)
		if Check(p, in, true) != nil {
			b.Fatal("check")
		}
	}
}

func TestOuterIPv6(t *testing.T) {
	src, dst := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	p := make([]byte, 40+8+4)
	OuterIPv6(p, src, dst, ProtoUDP, 64, 0x20, 12)
	UDP(p[40:], 4500, 4500, 4)
	copy(p[48:], "abcd")
	UDP6Checksum(p[40:], src, dst)
	in, err := Parse(p)
	if err != nil || in.Version != 6 || in.Src != src || in.Dst != dst || in.TTL != 64 || in.TOS != 0x20 || in.Len != len(p) || in.DstPort != 4500 {
		t.Fatalf("%+v %v", in, err)
	}
	// The checksum verifies: the sum over pseudo-header and datagram is 0.
	var sum uint32
	s, d := src.As16(), dst.As16()
	for i := 0; i < 16; i += 2 {
		sum += uint32(s[i])<<8 | uint32(s[i+1])
		sum += uint32(d[i])<<8 | uint32(d[i+1])
	}
	sum += uint32(12) + ProtoUDP
	if Checksum(p[40:], sum) != 0 {
		t.Fatal("UDP checksum does not verify")
	}
}

func TestPacketTooBig(t *testing.T) {
	src, dst := netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("2001:db8:2::1")
	p := make([]byte, 40+1400)
	OuterIPv6(p, src, dst, ProtoUDP, 64, 0, 1400)
	in, _ := Parse(p)
	buf := make([]byte, 1500)
	e := PacketTooBig(buf, p, in, dst, 1300)
	ei, err := Parse(e)
	if err != nil || ei.Proto != ProtoICMPv6 || ei.Dst != src || ei.Src != dst || len(e) != 1280 {
		t.Fatalf("%+v %v len %d", ei, err, len(e))
	}
	if e[40] != 2 || binary.BigEndian.Uint32(e[44:]) != 1300 {
		t.Fatalf("icmpv6 %x", e[40:48])
	}
	var sum uint32
	s, d := dst.As16(), src.As16()
	for i := 0; i < 16; i += 2 {
		sum += uint32(s[i])<<8 | uint32(s[i+1])
		sum += uint32(d[i])<<8 | uint32(d[i+1])
	}
	sum += uint32(len(e)-40) + ProtoICMPv6
	if Checksum(e[40:], sum) != 0 {
		t.Fatal("ICMPv6 checksum does not verify")
	}
	if PacketTooBig(buf, e, ei, src, 1300) != nil {
		t.Fatal("error about an error")
	}
}
