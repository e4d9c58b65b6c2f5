package plane

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/sitesec/sitesec/fwdd/packet"
	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/proto/pb"
)

// ahSAs are dynamic AH (or bundle) SAs for router a (inbound spiIn,
// outbound spiOut; bundle ESP SPIs are those plus 1).
func ahSAs(proto pb.IPsecProtocol, auth, enc string, local, remote string, spiIn, spiOut uint32) []*pb.SA {
	sas := dynamicSAs(enc, auth, nil, nil, local, remote, spiIn, spiOut, pb.Encapsulation_ENCAPSULATION_ESP, 0)
	for _, sa := range sas {
		sa.Protocol = proto
		sa.AuthenticationKey = bytes.Repeat([]byte{9}, authKeyLen(auth))
		if proto == pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE {
			sa.AuxiliarySpi = sa.Spi + 1
			sa.EncryptionKey = bytes.Repeat([]byte{7}, map[string]int{"aes-128-cbc": 16, "3des-cbc": 24, "aes-256-cbc": 32}[enc])
		}
	}
	return sas
}

func authKeyLen(a string) int {
	return map[string]int{"hmac-md5-96": 16, "hmac-sha1-96": 20, "hmac-sha-256-128": 32, "hmac-sha-512-256": 64}[a]
}

// ahPair is two routers with AH or bundle SAs between gateways ga, gb.
func ahPair(t *testing.T, proto pb.IPsecProtocol, auth, enc, ga, gb string) (*router, *router) {
	t.Helper()
	a, b := pair(t,
		dynConfig(ga, gb, "10.0.1.0/24", "10.0.2.0/24"),
		dynConfig(gb, ga, "10.0.2.0/24", "10.0.1.0/24"))
	if err := a.p.DB.Install(ahSAs(proto, auth, enc, ga, gb, 0x1000, 0x2000), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.p.DB.Install(ahSAs(proto, auth, enc, gb, ga, 0x2000, 0x1000), 0); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// TestPingAH: AH and bundle SAs over IPv4 and IPv6 gateways carry pings
// both ways; the outer packets are protocol 51 as gopacket decodes them
// (AH with the SA's SPI, then the inner packet in the clear, or ESP for a
// bundle); statistics count AH (and ESP for a bundle).
func TestPingAH(t *testing.T) {
	for _, tt := range []struct {
		proto     pb.IPsecProtocol
		auth, enc string
		ga, gb    string
	}{
		{pb.IPsecProtocol_IPSEC_PROTOCOL_AH, "hmac-sha1-96", "", "192.0.2.1", "192.0.2.2"},
		{pb.IPsecProtocol_IPSEC_PROTOCOL_AH, "hmac-sha-256-128", "", "2001:db8::1", "2001:db8::2"},
		{pb.IPsecProtocol_IPSEC_PROTOCOL_AH, "hmac-md5-96", "", "192.0.2.1", "192.0.2.2"},
		{pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE, "hmac-sha1-96", "3des-cbc", "192.0.2.1", "192.0.2.2"},
		{pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE, "hmac-sha-512-256", "aes-256-cbc", "2001:db8::1", "2001:db8::2"},
	} {
		t.Run(tt.proto.String()+"/"+tt.auth+"/"+tt.ga, func(t *testing.T) {
			a, b := ahPair(t, tt.proto, tt.auth, tt.enc, tt.ga, tt.gb)
			for _, size := range []int{0, 100, 1300} {
				p := pad(ping(hostB, hostA), size)
				a.tun.Outbound <- p
				got := recv(t, b.tun.Inbound)
				if len(got) != len(p) || !bytes.Equal(got[20:], p[20:]) {
					t.Fatalf("size %d: got %d bytes", size, len(got))
				}
			}
			b.tun.Outbound <- ping(hostA, hostB)
			recv(t, a.tun.Inbound)

			a.wire.mu.Lock()
			o := append([]byte(nil), a.wire.sent[0]...)
			a.wire.mu.Unlock()
			first := layers.LayerTypeIPv4
			if o[0]>>4 == 6 {
				first = layers.LayerTypeIPv6
			}
			pk := gopacket.NewPacket(o, first, gopacket.Default)
			al, ok := pk.Layer(layers.LayerTypeIPSecAH).(*layers.IPSecAH)
			if !ok || al.SPI != 0x2000 || al.Seq != 1 {
				t.Fatalf("no AH spi 0x2000 seq 1: %v", pk)
			}
			bundle := tt.proto == pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE
			if bundle {
				el, ok := pk.Layer(layers.LayerTypeIPSecESP).(*layers.IPSecESP)
				if al.NextHeader != layers.IPProtocolESP || !ok || el.SPI != 0x2001 {
					t.Fatalf("bundle: AH next header %v, ESP %v", al.NextHeader, pk)
				}
			} else if al.NextHeader != layers.IPProtocolIPv4 || !bytes.Contains(o, []byte("ping")) {
				t.Fatalf("AH next header %v", al.NextHeader)
			}
			ta, tb := a.p.DB.ServiceSetTotals("ss1"), b.p.DB.ServiceSetTotals("ss1")
			if ta.Get(sad.AHOutputPackets) != 3 || tb.Get(sad.AHInputPackets) != 3 || ta.Get(sad.AHInputPackets) != 1 || tb.Get(sad.AHOutputPackets) != 1 {
				t.Fatalf("AH counters a %v b %v", ta.Proto(), tb.Proto())
			}
			wantESP := uint64(0)
			if bundle {
				wantESP = 3
			}
			if ta.Get(sad.EncryptedPackets) != wantESP || tb.Get(sad.DecryptedPackets) != wantESP {
				t.Fatalf("ESP counters a %v b %v", ta.Proto(), tb.Proto())
			}
			if ta.Get(sad.AHOutputBytes) == 0 || tb.Get(sad.AHInputBytes) != ta.Get(sad.AHOutputBytes) {
				t.Fatalf("AH bytes a %v b %v", ta.Proto(), tb.Proto())
			}
		})
	}
}

// TestAHInboundErrors: a replayed AH packet is a replay error; a flipped
// bit in the inner packet, the AH sequence number or an immutable outer
// field (the source address) is an AH authentication failure; a flipped
// bit in a mutable outer field (TTL) still verifies; an unknown SPI is
// counted; nothing bad reaches the inside.
func TestAHInboundErrors(t *testing.T) {
	a, b := ahPair(t, pb.IPsecProtocol_IPSEC_PROTOCOL_AH, "hmac-sha1-96", "", "192.0.2.1", "192.0.2.2")
	a.tun.Outbound <- ping(hostB, hostA)
	recv(t, b.tun.Inbound)
	a.wire.mu.Lock()
	good := append([]byte(nil), a.wire.sent[0]...)
	a.wire.peer = nil // the test hands b the packets
	a.wire.mu.Unlock()
	seal := func() []byte {
		a.wire.mu.Lock()
		n := len(a.wire.sent)
		a.wire.mu.Unlock()
		a.tun.Outbound <- ping(hostB, hostA)
		for i := 0; i < 500; i++ {
			a.wire.mu.Lock()
			if len(a.wire.sent) > n {
				o := append([]byte(nil), a.wire.sent[n]...)
				a.wire.mu.Unlock()
				return o
			}
			a.wire.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("a sent nothing")
		return nil
	}
	local := netip.MustParseAddrPort("192.0.2.2:0")
	// give hands b one packet; the TUN device writes synchronously, so
	// a packet b delivers is read here (and is a failure unless wanted).
	give := func(o []byte, want ...bool) {
		t.Helper()
		done := make(chan struct{})
		go func() {
			b.p.NewReceiver().Receive([]Datagram{{Data: o, Local: local, Remote: netip.MustParseAddrPort("192.0.2.1:0"), Kind: KindAH}})
			close(done)
		}()
		got := false
		for {
			select {
			case <-done:
				if len(want) > 0 && !got {
					t.Fatal("not delivered")
				}
				return
			case p := <-b.tun.Inbound:
				if len(want) == 0 {
					t.Fatalf("delivered %x", p)
				}
				got = true
			case <-time.After(5 * time.Second):
				t.Fatal("Receive did not return")
			}
		}
	}
	tot := func() *sad.Counters { return b.p.DB.ServiceSetTotals("ss1") }

	give(good) // replayed
	noPacket(t, b.tun.Inbound)
	if n := tot().Get(sad.Replayed) + tot().Get(sad.ReplayBeforeWindow); n != 1 {
		t.Fatalf("replay %v", tot().Proto())
	}
	for i, flip := range []int{len(good) - 1, 20 + 8, 12} { // inner payload, AH sequence, source address
		o := seal()
		o[flip] ^= 0x01
		give(o)
		noPacket(t, b.tun.Inbound)
		if n := tot().Get(sad.AHAuthFailures); n != uint64(i+1) {
			t.Fatalf("flip %d: AH authentication failures %d", flip, n)
		}
	}
	// TTL is mutable: zero in the ICV.
	o := seal()
	o[8]--
	packet.OuterIPv4(o[:20], netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), packet.ProtoAH, o[8], o[1], o[6]&0x40 != 0, uint16(o[4])<<8|uint16(o[5]), len(o)-20)
	give(o, true)
	// Unknown SPI, truncated AH.
	o = seal()
	o[20+4] ^= 0xff
	give(o)
	give(good[:30])
	noPacket(t, b.tun.Inbound)
	if tb := b.p.DB.SetCounters(""); tb.Get(sad.InvalidSPI) != 1 || tb.Get(sad.BadHeaders) != 1 {
		t.Fatalf("set-less counters %v", tb.Proto())
	}
	// An ESP packet naming the AH SA's SPI is not taken for AH.
	b.p.NewReceiver().Receive([]Datagram{{Data: good[20:], Local: local, Kind: KindESP}})
	if tb := b.p.DB.SetCounters(""); tb.Get(sad.InvalidSPI) != 2 {
		t.Fatalf("ESP with an AH SPI: %v", tb.Proto())
	}
	// The show command names the protocol and the AH statistics.
	rep := b.p.SecurityAssociations("", false, "")
	if s := rep.String(); !strings.Contains(s, `"AH"`) {
		t.Fatalf("show: %s", s)
	}
}
