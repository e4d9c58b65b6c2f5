package plane

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/ip4defrag"
	"github.com/gopacket/gopacket/layers"

	"github.com/sitesec/sitesec/proto/pb"
)

// Cross-checks of fwdd's packet building against gopacket's independent
// decoders (issue 15 goal 6): fwdd keeps its own parsing on the hot path;
// these tests decode what it writes with gopacket and re-serialize it with
// gopacket's checksums, so a wrong length, offset or checksum in fwdd's
// builders shows here even where fwdd's own parser would agree with it.

// decodeIPv4 decodes p as IPv4 with gopacket, fails on a decoding error,
// and checks that gopacket's serialization with computed checksums and
// lengths gives back exactly p (IP, and ICMP or UDP checksums).
func decodeIPv4(t *testing.T, p []byte) gopacket.Packet {
	t.Helper()
	pk := gopacket.NewPacket(p, layers.LayerTypeIPv4, gopacket.Default)
	if el := pk.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v\n%x", el.Error(), p)
	}
	ip := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	var ls []gopacket.SerializableLayer
	ls = append(ls, ip)
	if ip.Flags&layers.IPv4MoreFragments == 0 && ip.FragOffset == 0 {
		switch l := pk.Layer(layers.LayerTypeICMPv4).(type) {
		case *layers.ICMPv4:
			ls = append(ls, l)
		}
		if u, ok := pk.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
			_ = u.SetNetworkLayerForChecksum(ip)
			// RFC 3948 section 2.1: the UDP checksum of ESP in UDP is
			// sent as zero; only the IP checksum is recomputed then.
			if u.Checksum != 0 {
				ls = append(ls, u)
			}
		}
	}
	ls = append(ls, gopacket.Payload(ip.Payload))
	if len(ls) > 2 {
		ls = append(ls[:len(ls)-1], gopacket.Payload(ls[len(ls)-2].(gopacket.Layer).LayerPayload()))
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatalf("gopacket serialize: %v", err)
	}
	if !bytes.Equal(buf.Bytes(), p) {
		t.Fatalf("gopacket's checksums or lengths differ from fwdd's:\nfwdd     %x\ngopacket %x", p, buf.Bytes())
	}
	return pk
}

// TestGopacketEncapsulation: the outer packets of raw ESP (RFC 4303), ESP
// in UDP on 4500 (RFC 3948) and on the udp-encapsulate port, decoded by
// gopacket: addresses, protocol, ports, SPI and sequence numbers.
func TestGopacketEncapsulation(t *testing.T) {
	for _, tt := range []struct {
		encap pb.Encapsulation
		port  uint32
	}{
		{pb.Encapsulation_ENCAPSULATION_ESP, 0},
		{pb.Encapsulation_ENCAPSULATION_UDP_NATT, 4500},
		{pb.Encapsulation_ENCAPSULATION_UDP_MULTIPATH, 4565},
	} {
		t.Run(tt.encap.String(), func(t *testing.T) {
			a, b := pair(t,
				dynConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24"),
				dynConfig("192.0.2.2", "192.0.2.1", "10.0.2.0/24", "10.0.1.0/24"))
			key := bytes.Repeat([]byte{7}, 36)
			if err := a.p.DB.Install(dynamicSAs("aes-256-gcm", "", key, nil, "192.0.2.1", "192.0.2.2", 0x1001, 0x2002, tt.encap, tt.port), 0); err != nil {
				t.Fatal(err)
			}
			if err := b.p.DB.Install(dynamicSAs("aes-256-gcm", "", key, nil, "192.0.2.2", "192.0.2.1", 0x2002, 0x1001, tt.encap, tt.port), 0); err != nil {
				t.Fatal(err)
			}
			for i, size := range []int{0, 1, 3, 1300} {
				a.tun.Outbound <- pad(ping(hostB, hostA), size)
				inner := recv(t, b.tun.Inbound)
				// What came out of b's TUN is a valid packet for gopacket.
				if decodeIPv4(t, inner).Layer(layers.LayerTypeICMPv4) == nil {
					t.Fatalf("inner packet has no ICMP layer")
				}
				pk := decodeIPv4(t, lastSent(a))
				ip := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				if ip.SrcIP.String() != "192.0.2.1" || ip.DstIP.String() != "192.0.2.2" || ip.TTL != 64 {
					t.Fatalf("outer IP %v -> %v ttl %d", ip.SrcIP, ip.DstIP, ip.TTL)
				}
				esp := ip.Payload
				switch tt.encap {
				case pb.Encapsulation_ENCAPSULATION_ESP:
					if ip.Protocol != layers.IPProtocolESP {
						t.Fatalf("outer protocol %v", ip.Protocol)
					}
					l, ok := pk.Layer(layers.LayerTypeIPSecESP).(*layers.IPSecESP)
					if !ok {
						t.Fatalf("gopacket finds no ESP layer: %v", pk)
					}
					if l.SPI != 0x2002 || l.Seq != uint32(i+1) {
						t.Fatalf("ESP SPI %#x seq %d, want 0x2002 %d", l.SPI, l.Seq, i+1)
					}
				default:
					u, ok := pk.Layer(layers.LayerTypeUDP).(*layers.UDP)
					if !ok || ip.Protocol != layers.IPProtocolUDP {
						t.Fatalf("no UDP: %v", pk)
					}
					if uint32(u.SrcPort) != tt.port || uint32(u.DstPort) != tt.port || int(u.Length) != len(u.Contents)+len(u.Payload) {
						t.Fatalf("UDP %d -> %d length %d", u.SrcPort, u.DstPort, u.Length)
					}
					esp = u.Payload
				}
				// Through gopacket's ESP decoder in every case: RFC 3948
				// puts the ESP header right after the UDP header (a
				// non-zero SPI is what tells it from an IKE datagram).
				e := gopacket.NewPacket(esp, layers.LayerTypeIPSecESP, gopacket.Default).Layer(layers.LayerTypeIPSecESP)
				if e == nil || e.(*layers.IPSecESP).SPI != 0x2002 || e.(*layers.IPSecESP).Seq != uint32(i+1) {
					t.Fatalf("ESP in the payload: %v", e)
				}
				// GCM: 8-byte IV, payload padded to 4 bytes, 16-byte ICV
				// (RFC 4106 section 3, RFC 4303 section 2.4).
				if body := len(esp) - 8 - 8 - 16; body < len(inner)+2 || body%4 != 0 {
					t.Fatalf("ESP of %d bytes for %d inner bytes", len(esp), len(inner))
				}
			}
		})
	}
}

// TestGopacketFragments: an inner packet over the tunnel MTU without DF is
// fragmented before encapsulation (RFC 791); gopacket's ip4defrag must
// reassemble the fragments b delivers into the original packet.
func TestGopacketFragments(t *testing.T) {
	a, b := tunnel(t, func(s *pb.SA) { s.TunnelMtu = 700 })
	orig := pad(ping(hostB, hostA), 1800)
	a.tun.Outbound <- append([]byte(nil), orig...)
	d := ip4defrag.NewIPv4Defragmenter()
	var whole *layers.IPv4
	for n := 0; whole == nil; n++ {
		if n > 5 {
			t.Fatal("more than 5 fragments and no whole packet")
		}
		f := recv(t, b.tun.Inbound)
		if len(f) > 700 {
			t.Errorf("fragment of %d bytes", len(f))
		}
		ip := decodeIPv4(t, f).Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		var err error
		if whole, err = d.DefragIPv4(ip); err != nil {
			t.Fatalf("ip4defrag: %v", err)
		}
	}
	// The tunnel is a hop: TTL one less, so compare from the protocol on.
	if whole.SrcIP.String() != hostA.String() || whole.DstIP.String() != hostB.String() || whole.TTL != orig[8]-1 ||
		!bytes.Equal(whole.Payload, orig[20:]) {
		t.Fatalf("reassembled %v -> %v ttl %d, %d payload bytes (want %d)", whole.SrcIP, whole.DstIP, whole.TTL, len(whole.Payload), len(orig)-20)
	}
}

// TestGopacketICMPErrors: fragmentation needed (RFC 1191) and time
// exceeded (RFC 792) as gopacket decodes them: type, code, MTU, checksum,
// and the quoted header of the packet that caused them.
func TestGopacketICMPErrors(t *testing.T) {
	check := func(t *testing.T, p []byte, typ, code uint8, cause []byte) *layers.ICMPv4 {
		t.Helper()
		pk := decodeIPv4(t, p)
		ip := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		ic, ok := pk.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if !ok || ic.TypeCode.Type() != typ || ic.TypeCode.Code() != code {
			t.Fatalf("ICMP %v, want %d/%d", pk, typ, code)
		}
		if ip.DstIP.String() != hostA.String() {
			t.Fatalf("ICMP error to %v", ip.DstIP)
		}
		// RFC 792: the quoted IP header and the first 8 bytes after it.
		q := gopacket.NewPacket(ic.Payload, layers.LayerTypeIPv4, gopacket.Default).Layer(layers.LayerTypeIPv4)
		if q == nil {
			t.Fatalf("quoted header does not decode: %x", ic.Payload)
		}
		qi := q.(*layers.IPv4)
		if qi.SrcIP.String() != hostA.String() || qi.DstIP.String() != hostB.String() || !bytes.Equal(ic.Payload[20:28], cause[20:28]) {
			t.Fatalf("quoted %v -> %v %x", qi.SrcIP, qi.DstIP, ic.Payload)
		}
		return ic
	}
	t.Run("fragmentation needed", func(t *testing.T) {
		a, _ := tunnel(t, func(s *pb.SA) { s.TunnelMtu = 1000 })
		p := withIP(pad(ping(hostB, hostA), 1400), 64, 0, true)
		a.tun.Outbound <- append([]byte(nil), p...)
		ic := check(t, recv(t, a.tun.Inbound), 3, 4, p)
		// The next-hop MTU is the low 16 bits of gopacket's Seq field.
		if mtu := ic.Seq; mtu == 0 || mtu > 1000-20-8-8-2-16 {
			t.Fatalf("next-hop MTU %d", mtu)
		}
	})
	t.Run("time exceeded", func(t *testing.T) {
		a, _ := tunnel(t, nil)
		p := withIP(ping(hostB, hostA), 1, 0, false)
		a.tun.Outbound <- append([]byte(nil), p...)
		check(t, recv(t, a.tun.Inbound), 11, 0, p)
	})
}

// TestDropDecode: drop reports (flag packet) carry the start of the packet
// and describe it with gopacket: the inner headers of an IP packet, the
// SPI and sequence number of an ESP packet with an unknown SPI (RFC 4303
// section 3.4.2), never its ciphertext.
func TestDropDecode(t *testing.T) {
	p := pad(ping(hostB, hostA), 500)
	if got, want := (Drop{Packet: p}).Decode(), "IPv4 10.0.1.1>10.0.2.1 ttl 64 len 532 | ICMPv4 EchoRequest id 0 seq 0"; got != want {
		t.Errorf("ping: %q, want %q", got, want)
	}
	if got := (Drop{Packet: []byte{0x45, 0, 0}}).Decode(); !strings.HasPrefix(got, "undecodable: ") {
		t.Errorf("3 bytes: %q", got)
	}
	_, b := tunnel(t, nil)
	var drops []Drop
	b.p.OnDrop = func(d Drop) { drops = append(drops, d) }
	esp := []byte{0, 0, 0x99, 0x99, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}
	b.p.NewReceiver().Receive([]Datagram{{Data: esp, Local: netip.MustParseAddrPort("192.0.2.2:0"), Remote: netip.MustParseAddrPort("192.0.2.1:0"), Kind: KindESP}})
	if len(drops) != 1 || drops[0].Reason != "invalid SPI" {
		t.Fatalf("drops %+v", drops)
	}
	esp[2] = 0 // the report holds its own copy
	if got, want := drops[0].Decode(), "ESP spi 0x9999 seq 7"; got != want {
		t.Errorf("ESP: %q, want %q", got, want)
	}
	if len(drops[0].Packet) != len(esp) {
		t.Errorf("report keeps %d bytes of %d", len(drops[0].Packet), len(esp))
	}
	long := pad(ping(hostB, hostA), 1000)
	b.p.report(Drop{Reason: "x", Packet: long})
	if n := len(drops[1].Packet); n != DropSnap {
		t.Errorf("report keeps %d bytes of a %d-byte packet, want %d", n, len(long), DropSnap)
	}
	if got := drops[1].Decode(); !strings.HasPrefix(got, "IPv4 10.0.1.1>10.0.2.1 ttl 64 len 1032 | ICMPv4 EchoRequest") {
		t.Errorf("snapped ping: %q", got)
	}
}
