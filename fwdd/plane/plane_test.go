package plane

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sitesec/sitesec/fwdd/packet"
	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/proto/pb"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// memWire connects two planes in memory: what one writes, the other
// receives, as the Linux sockets would hand it over.
type memWire struct {
	mu   sync.Mutex
	peer *Receiver
	drop func([]byte) bool // optional loss or tampering
	sent [][]byte          // outer packets, copied
	ike  []*pb.IKEDatagram
}

func (w *memWire) WriteOuter(pkts [][]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ds []Datagram
	for _, o := range pkts {
		o = append(make([]byte, 0, len(o)+64), o...)
		w.sent = append(w.sent, o)
		if w.drop != nil && w.drop(o) {
			continue
		}
		info, err := packet.Parse(o)
		if err != nil {
			panic(err)
		}
		d := Datagram{Local: netip.AddrPortFrom(info.Dst, 0), Remote: netip.AddrPortFrom(info.Src, 0)}
		switch info.Proto {
		case packet.ProtoESP:
			d.Data = o[info.HdrLen:info.Len]
			d.Kind = KindESP
		case packet.ProtoAH:
			d.Data = o[:info.Len]
			d.Kind = KindAH
		case packet.ProtoUDP:
			d.Data = o[info.HdrLen+8 : info.Len]
			d.Local = netip.AddrPortFrom(info.Dst, info.DstPort)
			d.Remote = netip.AddrPortFrom(info.Src, info.SrcPort)
			d.Kind = KindUDPEncap
			if info.DstPort == 4500 {
				d.Kind = KindNATT
			}
		}
		ds = append(ds, d)
	}
	if w.peer != nil {
		w.peer.Receive(ds)
	}
	return nil
}

func (w *memWire) SendUDP(local, remote netip.AddrPort, b []byte) error { return nil }

type router struct {
	p    *Plane
	tun  *tuntest.ChannelTUN
	wire *memWire
}

func u32(v uint32) *uint32 { return &v }

// manualConfig is one router's configuration: a next-hop service set
// with a bidirectional manual SA to the other router.
func manualConfig(local, remote, src, dst string) *pb.Config {
	return &pb.Config{
		ServiceSets: []*pb.ServiceSet{{
			Name:            "ss1",
			Style:           &pb.ServiceSet_NextHopService{NextHopService: &pb.NextHopService{InsideServiceInterface: "ms-1/2/0.1", OutsideServiceInterface: "ms-1/2/0.2"}},
			IpsecVpnRules:   []string{"r1"},
			IpsecVpnOptions: &pb.IPsecVPNOptions{LocalGateway: &pb.LocalGateway{Address: local}},
		}},
		IpsecVpn: &pb.IPsecVPN{Rules: []*pb.Rule{{Name: "r1", MatchDirection: pb.MatchDirection_MATCH_DIRECTION_INPUT, Terms: []*pb.Term{{
			Name: "t1",
			From: &pb.TermFrom{SourceAddress: []string{src}, DestinationAddress: []string{dst}},
			Then: &pb.TermThen{RemoteGateway: remote, Sa: &pb.TermThen_Manual{Manual: &pb.ManualSA{Directions: []*pb.ManualSADirection{{
				Direction: pb.ManualDirection_MANUAL_DIRECTION_BIDIRECTIONAL, Protocol: pb.IPsecProtocol_IPSEC_PROTOCOL_ESP, Spi: 1000,
				AuthenticationAlgorithm: "hmac-sha1-96", AuthenticationKey: &pb.Key{Value: []byte("01234567890123456789")},
				EncryptionAlgorithm: "aes-128-cbc", EncryptionKey: &pb.Key{Value: []byte("0123456789abcdef")},
			}}}}},
		}}}}},
	}
}

func newRouter(t *testing.T, cfg *pb.Config, dir string) *router {
	t.Helper()
	db, err := sad.Open(sad.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p := New(db)
	r := &router{p: p, tun: tuntest.NewChannelTUN(), wire: &memWire{}}
	p.SetWire(r.wire)
	if err := p.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	p.AddInside(&Inside{Junos: "ms-1/2/0.1", Linux: "ms-1-2-0u1", Dev: r.tun.TUN()})
	t.Cleanup(p.Close)
	return r
}

func pair(t *testing.T, a, b *pb.Config) (*router, *router) {
	ra := newRouter(t, a, "")
	rb := newRouter(t, b, "")
	ra.wire.peer = rb.p.NewReceiver()
	rb.wire.peer = ra.p.NewReceiver()
	return ra, rb
}

func recv(t *testing.T, c chan []byte) []byte {
	t.Helper()
	select {
	case p := <-c:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no packet")
		return nil
	}
}

func noPacket(t *testing.T, c chan []byte) {
	t.Helper()
	select {
	case p := <-c:
		t.Fatalf("unexpected packet %x", p)
	case <-time.After(50 * time.Millisecond):
	}
}

var (
	hostA = netip.MustParseAddr("10.0.1.1")
	hostB = netip.MustParseAddr("10.0.2.1")
)

// TestPingManual: two routers with static keys forward a ping both ways.
func TestPingManual(t *testing.T) {
	a, b := pair(t,
		manualConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24"),
		manualConfig("192.0.2.2", "192.0.2.1", "10.0.2.0/24", "10.0.1.0/24"))
	for i := 0; i < 3; i++ {
		p := ping(hostB, hostA)
		a.tun.Outbound <- p
		got := recv(t, b.tun.Inbound)
		want := append([]byte(nil), p...)
		in, _ := packet.Parse(want)
		packet.DecrementTTL(want, in)
		if !bytes.Equal(got, want) {
			t.Fatalf("got %x\nwant %x", got, want)
		}
		pong := ping(hostA, hostB)
		b.tun.Outbound <- pong
		if got := recv(t, a.tun.Inbound); len(got) != len(pong) {
			t.Fatalf("pong %x", got)
		}
	}
	// The outer packets are raw ESP from 192.0.2.1 with SPI 1000.
	o := a.wire.sent[0]
	oi, _ := packet.Parse(o)
	if oi.Proto != packet.ProtoESP || oi.Src.String() != "192.0.2.1" || oi.TTL != 64 || o[20+3] != 0xe8 {
		t.Fatalf("outer %+v %x", oi, o[:28])
	}
	tot := a.p.DB.ServiceSetTotals("ss1")
	if tot.Get(sad.EncryptedPackets) != 3 || tot.Get(sad.DecryptedPackets) != 3 {
		t.Fatalf("counters %v", tot.Proto())
	}
	// A replayed ESP packet is dropped and counted.
	a.wire.mu.Lock()
	first := append([]byte(nil), a.wire.sent[0]...)
	a.wire.mu.Unlock()
	b.p.NewReceiver().Receive([]Datagram{{Data: first[20:], Local: netip.MustParseAddrPort("192.0.2.2:0"), Kind: KindESP}})
	noPacket(t, b.tun.Inbound)
	if n := b.p.DB.ServiceSetTotals("ss1").Get(sad.ReplayBeforeWindow) + b.p.DB.ServiceSetTotals("ss1").Get(sad.Replayed); n != 1 {
		t.Fatalf("replay counters %d", n)
	}
}

// dynamicSAs are the SAs kmd would install on router a (outbound
// spiOut, inbound spiIn) for one transform.
func dynamicSAs(enc, auth string, encKey, authKey []byte, local, remote string, spiIn, spiOut uint32, encap pb.Encapsulation, port uint32) []*pb.SA {
	mk := func(spi uint32, dir pb.Direction) *pb.SA {
		return &pb.SA{Spi: spi, Direction: dir, Type: pb.SAType_SA_TYPE_DYNAMIC, ServiceSet: "ss1", Rule: "r1", Term: "t1",
			Local: &pb.Endpoint{Address: netip.MustParseAddr(local).AsSlice(), Port: port}, Remote: &pb.Endpoint{Address: netip.MustParseAddr(remote).AsSlice(), Port: port},
			Encapsulation: encap, EncryptionAlgorithm: enc, AuthenticationAlgorithm: auth,
			EncryptionKey: encKey, AuthenticationKey: authKey, ExtendedSequenceNumbers: true,
			ReplayWindow: 128, TunnelMtu: 1500, Ttl: 64, InsideInterface: "ms-1/2/0.1", InitialSequence: 1}
	}
	return []*pb.SA{mk(spiIn, pb.Direction_DIRECTION_INBOUND), mk(spiOut, pb.Direction_DIRECTION_OUTBOUND)}
}

func dynConfig(local, remote, src, dst string) *pb.Config {
	c := manualConfig(local, remote, src, dst)
	c.IpsecVpn.Rules[0].Terms[0].Then.Sa = &pb.TermThen_Dynamic{Dynamic: &pb.DynamicSA{IkePolicy: "ike", IpsecPolicy: "ipsec"}}
	withPolicies(c, "ike", "ipsec")
	return c
}

// withPolicies defines the IKE and IPsec policies a dynamic term names
// (the plan resolves them).
func withPolicies(c *pb.Config, ike, ipsec string) {
	c.IpsecVpn.Ike = &pb.IKE{Policies: []*pb.IKEPolicy{{Name: ike, Version: 2, PreSharedKey: &pb.Key{Value: []byte("k")}}}}
	c.IpsecVpn.Ipsec = &pb.IPsec{Policies: []*pb.IPsecPolicy{{Name: ipsec}}}
}

func TestPingDynamicTransforms(t *testing.T) {
	tests := []struct {
		enc, auth string
		ek, ak    int
		encap     pb.Encapsulation
		port      uint32
	}{
		{"aes-128-gcm", "", 20, 0, pb.Encapsulation_ENCAPSULATION_ESP, 0},
		{"aes-256-gcm", "", 36, 0, pb.Encapsulation_ENCAPSULATION_UDP_NATT, 4500},
		{"chacha20-poly1305", "", 36, 0, pb.Encapsulation_ENCAPSULATION_UDP_MULTIPATH, 4565},
		{"aes-256-cbc", "hmac-sha-256-128", 32, 32, pb.Encapsulation_ENCAPSULATION_ESP, 0},
		{"", "hmac-sha1-96", 0, 20, pb.Encapsulation_ENCAPSULATION_ESP, 0},
	}
	for _, tt := range tests {
		t.Run(tt.enc+"/"+tt.auth+"/"+tt.encap.String(), func(t *testing.T) {
			a, b := pair(t,
				dynConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24"),
				dynConfig("192.0.2.2", "192.0.2.1", "10.0.2.0/24", "10.0.1.0/24"))
			ek := bytes.Repeat([]byte{7}, tt.ek)
			ak := bytes.Repeat([]byte{9}, tt.ak)
			if err := a.p.DB.Install(dynamicSAs(tt.enc, tt.auth, ek, ak, "192.0.2.1", "192.0.2.2", 0x1001, 0x2002, tt.encap, tt.port), 0); err != nil {
				t.Fatal(err)
			}
			if err := b.p.DB.Install(dynamicSAs(tt.enc, tt.auth, ek, ak, "192.0.2.2", "192.0.2.1", 0x2002, 0x1001, tt.encap, tt.port), 0); err != nil {
				t.Fatal(err)
			}
			for _, size := range []int{0, 100, 1300} {
				p := ping(hostB, hostA)
				p = pad(p, size)
				a.tun.Outbound <- p
				got := recv(t, b.tun.Inbound)
				if len(got) != len(p) || !bytes.Equal(got[20:], p[20:]) {
					t.Fatalf("size %d: got %d bytes", size, len(got))
				}
			}
			b.tun.Outbound <- ping(hostA, hostB)
			recv(t, a.tun.Inbound)
		})
	}
}

// ping builds an ICMP echo request (tuntest.Ping's IPv4 checksum is wrong).
func ping(dst, src netip.Addr) []byte {
	q := make([]byte, 20+8+4)
	packet.OuterIPv4(q, src, dst, packet.ProtoICMP, 64, 0, false, 1, len(q)-20)
	q[20] = 8
	copy(q[28:], "ping")
	c := packet.Checksum(q[20:], 0)
	q[22], q[23] = byte(c>>8), byte(c)
	return q
}

// pad grows an ICMP echo to n more payload bytes, fixing the headers.
func pad(p []byte, n int) []byte {
	q := make([]byte, len(p)+n)
	copy(q, p)
	in, _ := packet.Parse(p)
	packet.OuterIPv4(q, in.Src, in.Dst, packet.ProtoICMP, in.TTL, 0, false, 1, len(q)-20)
	q[22], q[23] = 0, 0
	c := packet.Checksum(q[20:], 0)
	q[22], q[23] = byte(c>>8), byte(c)
	return q
}

func newChanTUN() tun.Device { return tuntest.NewChannelTUN().TUN() }

// kmd rekeys a CHILD SA by its own timer and says when (rekey_seconds):
// show ipsec security-associations prints that as the soft lifetime, as
// Junos does, and the identities kmd sends (the proxy IDs).
func TestShowSoftLifetimeFromRekey(t *testing.T) {
	a, _ := pair(t,
		dynConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24"),
		dynConfig("192.0.2.2", "192.0.2.1", "10.0.2.0/24", "10.0.1.0/24"))
	sas := dynamicSAs("aes-128-gcm", "", bytes.Repeat([]byte{7}, 20), nil, "192.0.2.1", "192.0.2.2", 0x1001, 0x2002, pb.Encapsulation_ENCAPSULATION_ESP, 0)
	for _, s := range sas {
		s.Lifetime = &pb.Lifetime{HardSeconds: 3600, RekeySeconds: 3240}
		s.LocalIdentity, s.RemoteIdentity = "ipv4_subnet(any:0,[0..7]=10.0.1.0/24)", "ipv4_subnet(any:0,[0..7]=10.0.2.0/24)"
	}
	if err := a.p.DB.Install(sas, 0); err != nil {
		t.Fatal(err)
	}
	got := a.p.SecurityAssociations("detail", false, "")
	tun := got.GetServiceSets()[0].GetTunnels()[0]
	if tun.GetLocalIdentity() != "ipv4_subnet(any:0,[0..7]=10.0.1.0/24)" || tun.GetRemoteIdentity() != "ipv4_subnet(any:0,[0..7]=10.0.2.0/24)" {
		t.Errorf("identities %q %q", tun.GetLocalIdentity(), tun.GetRemoteIdentity())
	}
	for _, s := range tun.GetSas() {
		if soft, hard := s.GetSoftLifetimeSeconds(), s.GetHardLifetimeSeconds(); soft < 3230 || soft > 3240 || hard < 3590 || hard > 3600 {
			t.Errorf("%s: soft %d hard %d", s.GetDirection(), soft, hard)
		}
	}
}
