package plane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sitesec/sitesec/fwdd/packet"
	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/fwdd/spd"
	"github.com/sitesec/sitesec/proto/pb"
)

// tunnel sets up a and b with one GCM SA pair whose outbound options
// (on a) mod changes.
func tunnel(t *testing.T, mod func(out *pb.SA)) (*router, *router) {
	t.Helper()
	a, b := pair(t,
		dynConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24"),
		dynConfig("192.0.2.2", "192.0.2.1", "10.0.2.0/24", "10.0.1.0/24"))
	key := make([]byte, 20)
	sa := dynamicSAs("aes-128-gcm", "", key, nil, "192.0.2.1", "192.0.2.2", 0x1001, 0x2002, pb.Encapsulation_ENCAPSULATION_ESP, 0)
	if mod != nil {
		mod(sa[1])
	}
	if err := a.p.DB.Install(sa, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.p.DB.Install(dynamicSAs("aes-128-gcm", "", key, nil, "192.0.2.2", "192.0.2.1", 0x2002, 0x1001, pb.Encapsulation_ENCAPSULATION_ESP, 0), 0); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// withIP sets TTL, TOS and DF of an IPv4 packet.
func withIP(p []byte, ttl, tos byte, df bool) []byte {
	in, _ := packet.Parse(p)
	packet.OuterIPv4(p, in.Src, in.Dst, in.Proto, ttl, tos, df, 1, len(p)-20)
	return p
}

func lastOuter(t *testing.T, r *router) packet.Info {
	t.Helper()
	r.wire.mu.Lock()
	defer r.wire.mu.Unlock()
	if len(r.wire.sent) == 0 {
		t.Fatal("nothing sent")
	}
	in, err := packet.Parse(r.wire.sent[len(r.wire.sent)-1])
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestOuterHeader(t *testing.T) {
	tests := []struct {
		name            string
		mod             func(*pb.SA)
		ttl, tos        byte
		innerDF         bool
		wantTTL         byte
		wantTOS         byte
		wantDF, innerOK bool // outer DF; inner DF after the tunnel
		wantInnerTTL    byte
	}{
		{"defaults", nil, 30, 0x28, true, 64, 0, false, true, 29},
		{"copy ttl and tos", func(s *pb.SA) { s.CopyTtl, s.CopyTos = true, true }, 30, 0x28, false, 29, 0x28, false, false, 29},
		{"ttl and tos values", func(s *pb.SA) { s.Ttl, s.Tos = 200, 0x10 }, 30, 0, false, 200, 0x10, false, false, 29},
		{"df copy", func(s *pb.SA) { s.DontFragment = pb.DFBit_DF_BIT_COPY }, 30, 0, true, 64, 0, true, true, 29},
		{"df set", func(s *pb.SA) { s.DontFragment = pb.DFBit_DF_BIT_SET }, 30, 0, false, 64, 0, true, false, 29},
		{"df clear", func(s *pb.SA) { s.DontFragment = pb.DFBit_DF_BIT_CLEAR }, 30, 0, true, 64, 0, false, false, 29},
		{"passive: no TTL decrement", func(s *pb.SA) { s.PassiveModeTunneling = true }, 30, 0, false, 64, 0, false, false, 30},
		{"no-ipsec-tunnel-in-traceroute", func(s *pb.SA) { s.NoIpsecTunnelInTraceroute = true }, 30, 0, false, 64, 0, false, false, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tunnel(t, tt.mod)
			a.tun.Outbound <- withIP(ping(hostB, hostA), tt.ttl, tt.tos, tt.innerDF)
			got := recv(t, b.tun.Inbound)
			o := lastOuter(t, a)
			if o.TTL != tt.wantTTL || o.TOS != tt.wantTOS || o.DF != tt.wantDF || o.Proto != packet.ProtoESP {
				t.Fatalf("outer TTL %d TOS %#x DF %v, want %d %#x %v", o.TTL, o.TOS, o.DF, tt.wantTTL, tt.wantTOS, tt.wantDF)
			}
			in, err := packet.Parse(got)
			if err != nil || in.DF != tt.innerOK || in.TTL != tt.wantInnerTTL || packet.Checksum(got[:20], 0) != 0 {
				t.Fatalf("inner %+v %v", in, err)
			}
		})
	}
}

func TestTunnelMTU(t *testing.T) {
	big := func() []byte { return pad(ping(hostB, hostA), 1400) } // 1432 bytes
	t.Run("fragment before encapsulation", func(t *testing.T) {
		a, b := tunnel(t, func(s *pb.SA) { s.TunnelMtu = 1000 })
		a.tun.Outbound <- big()
		f1, f2 := recv(t, b.tun.Inbound), recv(t, b.tun.Inbound)
		i1, _ := packet.Parse(f1)
		i2, _ := packet.Parse(f2)
		if !i1.MoreFrag || i2.MoreFrag || i2.FragOff != len(f1)-20 || len(f1)+len(f2)-40 != 1412 {
			t.Fatalf("fragments %+v %+v", i1, i2)
		}
		a.wire.mu.Lock()
		for _, o := range a.wire.sent {
			if len(o) > 1000 {
				t.Errorf("outer packet of %d bytes over tunnel-mtu 1000", len(o))
			}
		}
		a.wire.mu.Unlock()
		if c := a.p.DB.ServiceSetTotals("ss1"); c.Get(sad.ExceedsTunnelMTU) != 1 {
			t.Fatalf("exceeds tunnel MTU %d", c.Get(sad.ExceedsTunnelMTU))
		}
	})
	t.Run("DF: ICMP fragmentation needed", func(t *testing.T) {
		a, b := tunnel(t, func(s *pb.SA) { s.TunnelMtu = 1000 })
		a.tun.Outbound <- withIP(big(), 64, 0, true)
		icmp := recv(t, a.tun.Inbound)
		in, _ := packet.Parse(icmp)
		if in.Proto != packet.ProtoICMP || in.Dst != hostA || icmp[20] != 3 || icmp[21] != 4 {
			t.Fatalf("reply %+v %x", in, icmp[20:28])
		}
		if mtu := binary.BigEndian.Uint16(icmp[26:]); mtu == 0 || mtu > 1000-20-8-8-2 {
			t.Fatalf("next-hop MTU %d", mtu)
		}
		noPacket(t, b.tun.Inbound)
	})
	t.Run("passive: tunneled anyway, no ICMP", func(t *testing.T) {
		a, b := tunnel(t, func(s *pb.SA) { s.TunnelMtu = 1000; s.PassiveModeTunneling = true })
		a.tun.Outbound <- withIP(big(), 64, 0, true)
		if got := recv(t, b.tun.Inbound); len(got) != 1432 {
			t.Fatalf("got %d bytes", len(got))
		}
		noPacket(t, a.tun.Inbound)
	})
}

func TestTTLExpiry(t *testing.T) {
	a, b := tunnel(t, nil)
	a.tun.Outbound <- withIP(ping(hostB, hostA), 1, 0, false)
	te := recv(t, a.tun.Inbound)
	if te[20] != 11 {
		t.Fatalf("not time exceeded: %x", te[20:28])
	}
	noPacket(t, b.tun.Inbound)
	// Passive mode forwards it with TTL 1 untouched.
	a2, b2 := tunnel(t, func(s *pb.SA) { s.PassiveModeTunneling = true })
	a2.tun.Outbound <- withIP(ping(hostB, hostA), 1, 0, false)
	if got := recv(t, b2.tun.Inbound); got[8] != 1 {
		t.Fatalf("ttl %d", got[8])
	}
}

func TestAcquireOnce(t *testing.T) {
	a, _ := pair(t,
		dynConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24"),
		dynConfig("192.0.2.2", "192.0.2.1", "10.0.2.0/24", "10.0.1.0/24"))
	for i := 0; i < 5; i++ {
		a.tun.Outbound <- ping(hostB, hostA)
	}
	// In a next-hop set traffic no term's from matches still belongs to
	// the first term: no SA either, and no second acquire.
	a.tun.Outbound <- ping(netip.MustParseAddr("10.0.9.9"), hostA)
	deadline := time.Now().Add(5 * time.Second)
	for a.p.DB.ServiceSetTotals("ss1").Get(sad.NoSA) < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("counters %v", a.p.DB.ServiceSetTotals("ss1").Proto())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var acq []*pb.SAEvent
	for {
		select {
		case ev := <-a.p.DB.Events():
			acq = append(acq, ev)
			continue
		default:
		}
		break
	}
	if len(acq) != 1 || acq[0].Kind != pb.SAEventKind_SA_EVENT_KIND_ACQUIRE || acq[0].Term != "t1" ||
		netip.AddrFrom4([4]byte(acq[0].Packet.EndAddress)) != hostB {
		t.Fatalf("acquire events %v", acq)
	}
}

func TestInboundErrors(t *testing.T) {
	a, b := tunnel(t, nil)
	var keep [][]byte
	a.wire.drop = func(o []byte) bool { keep = append(keep, append([]byte(nil), o...)); return true }
	a.tun.Outbound <- ping(hostB, hostA)
	a.tun.Outbound <- ping(netip.MustParseAddr("10.0.2.77"), hostA)
	for len(lastSent(a)) == 0 || countSent(a) < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	var dmu sync.Mutex
	var drops []Drop
	b.p.OnDrop = func(d Drop) { dmu.Lock(); drops = append(drops, d); dmu.Unlock() }
	r := b.p.NewReceiver()
	local := netip.MustParseAddrPort("192.0.2.2:0")
	esp := func(i int) []byte { return append([]byte(nil), keep[i][20:]...) }
	tampered := esp(0)
	tampered[len(tampered)-1] ^= 1
	unknown := esp(0)
	unknown[3] ^= 0x55
	go r.Receive([]Datagram{
		{Data: tampered, Local: local, Kind: KindESP},
		{Data: unknown, Local: local, Kind: KindESP},
		{Data: []byte{1, 2}, Local: local, Kind: KindESP},
		{Data: esp(1), Local: local, Kind: KindESP},
		{Data: esp(1), Local: local, Kind: KindESP}, // the same twice in a batch
	})
	got := recv(t, b.tun.Inbound)
	if in, _ := packet.Parse(got); in.Dst.String() != "10.0.2.77" {
		t.Fatalf("delivered %+v", in)
	}
	noPacket(t, b.tun.Inbound)
	c := b.p.DB.ServiceSetTotals("ss1")
	g := b.p.DB.ServiceSetTotals("")
	if c.Get(sad.AuthFailures) != 1 || c.Get(sad.Replayed) != 1 || g.Get(sad.InvalidSPI) != 1 || g.Get(sad.BadHeaders) != 1 {
		t.Fatalf("set %v\nglobal %v", c.Proto(), g.Proto())
	}
	dmu.Lock()
	defer dmu.Unlock()
	reasons := map[string]bool{}
	for _, d := range drops {
		reasons[d.Reason] = true
	}
	if !reasons["invalid SPI"] || !reasons["esp: authentication failed"] || !reasons["replay: sequence number already received"] {
		t.Fatalf("drop reports %v", drops)
	}
}

func countSent(r *router) int {
	r.wire.mu.Lock()
	defer r.wire.mu.Unlock()
	return len(r.wire.sent)
}

func lastSent(r *router) []byte {
	r.wire.mu.Lock()
	defer r.wire.mu.Unlock()
	if len(r.wire.sent) == 0 {
		return nil
	}
	return r.wire.sent[len(r.wire.sent)-1]
}

// TestRestartKeepsPeerHappy: a router that restarts (a new plane on the
// same state directory, as after kill -9) continues its manual SA's
// sequence numbers past what it used, so the peer's anti-replay window
// accepts its packets; without the marks it would start again at 1 and
// be dropped as replays.
func TestRestartKeepsPeerHappy(t *testing.T) {
	dir := t.TempDir()
	ca := manualConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24")
	cb := manualConfig("192.0.2.2", "192.0.2.1", "10.0.2.0/24", "10.0.1.0/24")
	a := newRouter(t, ca, dir)
	b := newRouter(t, cb, "")
	a.wire.peer = b.p.NewReceiver()
	for i := 0; i < 5; i++ {
		a.tun.Outbound <- ping(hostB, hostA)
		recv(t, b.tun.Inbound)
	}
	a.p.DB.Close() // only waits for background mark writes; nothing else is saved
	a2 := newRouter(t, ca, dir)
	a2.wire.peer = b.p.NewReceiver()
	a2.tun.Outbound <- ping(hostB, hostA)
	recv(t, b.tun.Inbound)
	if c := b.p.DB.ServiceSetTotals("ss1"); c.Get(sad.Replayed)+c.Get(sad.ReplayBeforeWindow) != 0 {
		t.Fatalf("peer saw replays: %v", c.Proto())
	}
	// The same with no state directory: the peer drops the restarted
	// router's packets (the failure the marks prevent).
	a3 := newRouter(t, ca, "")
	a3.wire.peer = b.p.NewReceiver()
	a3.tun.Outbound <- ping(hostB, hostA)
	noPacket(t, b.tun.Inbound)
}

func TestOp(t *testing.T) {
	a, b := tunnel(t, nil)
	a.tun.Outbound <- ping(hostB, hostA)
	recv(t, b.tun.Inbound)
	tests := []struct {
		words string
		want  []string
		err   string
	}{
		{"show services ipsec-vpn ipsec security-associations", []string{`"service_set":"ss1"`, `"direction":"inbound","spi":4097`, `"direction":"outbound","spi":8194`}, ""},
		{"show services ipsec-vpn ipsec security-associations detail hex", []string{`"hex":true`, `"anti_replay":true,"replay_window":128`, `"ttl":64`}, ""},
		{"show services ipsec-vpn ipsec security-associations extensive service-set ss1", []string{`"primary_gateway":"192.0.2.2"`}, ""},
		{"show services ipsec-vpn ipsec statistics", []string{`"pic":"ms-1/2/0","service_set":"ss1"`, `"esp_encrypted_packets":"1"`}, ""},
		{"show services ipsec-vpn ipsec statistics detail remote-gw 192.0.2.2", []string{`"remote_gateway":"192.0.2.2"`}, ""},
		{"show services ipsec-vpn ipsec security-associations service-set", nil, "syntax error"},
		{"show services ipsec-vpn ipsec statistics bogus", nil, "syntax error at 'bogus'"},
		{"show services ipsec-vpn interfaces", []string{`"junos_name":"ms-1/2/0.1","linux_name":"ms-1-2-0u1"`}, ""},
		{"show services service-sets summary", []string{`"interface_name":"ms-1/2/0","service_sets_configured":1`, `"service_sets":["ss1"]`}, ""},
		{"show services service-sets summary interface ms-1/2/0", []string{`"interface_name":"ms-1/2/0"`}, ""},
		{"show services service-sets summary interface", nil, "syntax error"},
	}
	for _, tt := range tests {
		rep := a.p.Op(strings.Fields(tt.words))
		if tt.err != "" {
			if !strings.Contains(rep.Error, tt.err) {
				t.Errorf("%s: error %q", tt.words, rep.Error)
			}
			continue
		}
		// The body is what the cli renders (cfgd/cli/show_ipsec.go).
		b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(rep)
		text := strings.ReplaceAll(string(b), " ", "")
		for _, w := range tt.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: missing %q in\n%s", tt.words, w, text)
			}
		}
	}
	// The summary's numbers: the set's plan size, a heap, no other PIC.
	sum := a.p.ServiceSetSummary("").GetEntries()
	if len(sum) != 1 || sum[0].GetPolicyBytesUsed() == 0 || sum[0].GetBytesUsed() == 0 || sum[0].GetCpuUtilization() < 0 {
		t.Errorf("summary %v", sum)
	}
	if other := a.p.ServiceSetSummary("ms-9/9/9").GetEntries(); len(other) != 0 {
		t.Errorf("summary of another interface: %v", other)
	}
	a.p.Op(strings.Fields("clear services ipsec-vpn ipsec statistics"))
	if c := a.p.DB.ServiceSetTotals("ss1"); c.Get(sad.EncryptedPackets) != 0 {
		t.Fatal("clear statistics")
	}
}

func TestLinuxName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ms-1/2/0.1", "ms-1-2-0u1"},
		{"sp-1/2/0.10", "sp-1-2-0u10"},
		{"ms-10/20/300.1000", "ms-10-20-3~"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		got := LinuxName(tt.in)
		if !strings.HasPrefix(got, tt.want) || len(got) > 15 || seen[got] {
			t.Errorf("LinuxName(%q) = %q", tt.in, got)
		}
		seen[got] = true
	}
	if LinuxName("ms-10/20/300.1000") == LinuxName("ms-10/20/300.1001") {
		t.Error("long names collide")
	}
}

// TestNoGoroutineLeak: closing planes stops every goroutine they started.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		db, _ := sad.Open(sad.Options{})
		for i := 0; i < 3; i++ {
			r := &router{p: New(db)}
			r.p.AddInside(&Inside{Junos: "ms-1/2/0.1", Dev: newChanTUN()})
			r.p.Close()
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FuzzReceive feeds arbitrary outside datagrams of every kind to a plane
// with SAs installed: nothing may panic, and what is not a valid ESP
// packet of an SA must not reach the inside.
func FuzzReceive(f *testing.F) {
	db, _ := sad.Open(sad.Options{})
	p := New(db)
	if err := p.Configure(dynConfig("192.0.2.2", "192.0.2.1", "10.0.2.0/24", "10.0.1.0/24")); err != nil {
		f.Fatal(err)
	}
	for _, tr := range []struct {
		enc, auth string
		ek, ak    int
		spi       uint32
	}{{"aes-128-gcm", "", 20, 0, 0x1001}, {"aes-128-cbc", "hmac-sha1-96", 16, 20, 0x1002}, {"", "hmac-sha1-96", 0, 20, 0x1003}} {
		sas := dynamicSAs(tr.enc, tr.auth, make([]byte, tr.ek), make([]byte, tr.ak), "192.0.2.2", "192.0.2.1", tr.spi, tr.spi+0x100, pb.Encapsulation_ENCAPSULATION_ESP, 0)
		if err := db.Install(sas[:1], 0); err != nil {
			f.Fatal(err)
		}
	}
	dev := &discardTUN{}
	m := map[string]*Inside{"ms-1/2/0.1": {Junos: "ms-1/2/0.1", Dev: dev}}
	p.insides.Store(&m)
	p.Punt = func(*pb.IKEDatagram) {}
	r := p.NewReceiver()
	f.Add([]byte{0, 0, 0x10, 0x01, 0, 0, 0, 1}, uint8(0))
	f.Add([]byte{0, 0, 0, 0, 1, 2, 3}, uint8(1))
	f.Add([]byte{0xff}, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, kind uint8) {
		d := Datagram{Data: append([]byte(nil), data...), Local: netip.MustParseAddrPort("192.0.2.2:4500"),
			Remote: netip.MustParseAddrPort("192.0.2.1:4500"), Kind: Kind(kind % 4)}
		before := dev.n
		r.Receive([]Datagram{d})
		if dev.n != before {
			t.Fatalf("random bytes reached the inside: %x", data)
		}
	})
}

func TestReverseRoutes(t *testing.T) {
	c := dynConfig("192.0.2.1", "0.0.0.0", "10.0.1.0/24", "10.0.2.0/24")
	c.ServiceSets[0].IpsecVpnOptions.IkeAccessProfile = "dep"
	c.AccessProfiles = []*pb.AccessProfile{{Name: "dep", ClientIke: &pb.AccessClientIKE{PreSharedKey: &pb.Key{Value: []byte("k")}}}}
	tbl, _ := spdBuild(c)
	db, _ := sad.Open(sad.Options{})
	mk := func(spi uint32, remote, sel string) {
		sas := dynamicSAs("aes-128-gcm", "", make([]byte, 20), nil, "192.0.2.1", remote, spi, spi+1, pb.Encapsulation_ENCAPSULATION_ESP, 0)
		p := netip.MustParsePrefix(sel)
		end := p.Addr().As4()
		end[3] |= byte(0xff >> (p.Bits() - 24))
		sas[1].RemoteSelectors = []*pb.TrafficSelector{{StartAddress: p.Addr().AsSlice(), EndAddress: end[:]}}
		if err := db.Install(sas, 0); err != nil {
			t.Fatal(err)
		}
	}
	mk(0x100, "198.51.100.1", "10.7.0.0/24")
	mk(0x200, "198.51.100.2", "10.8.0.128/25")
	got := reverseRoutes(tbl, db.RemoteSpans())
	want := map[string]bool{"10.7.0.0/24 ms-1-2-0u1": true, "10.8.0.128/25 ms-1-2-0u1": true}
	if len(got) != len(want) {
		t.Fatalf("routes %v", got)
	}
	for _, r := range got {
		if !want[r.Prefix.String()+" "+r.Linux] {
			t.Fatalf("unexpected route %v", r)
		}
	}
	// A deleted tunnel's range goes; one shared by two tunnels stays
	// while one of them does.
	mk(0x300, "198.51.100.3", "10.7.0.0/24")
	db.Delete(sad.Filter{Keys: []*pb.SAKey{{Spi: 0x201}, {Spi: 0x101}}}, "test")
	if got := reverseRoutes(tbl, db.RemoteSpans()); len(got) != 1 || got[0].Prefix.String() != "10.7.0.0/24" {
		t.Fatalf("routes after deleting 10.8.0.128/25's tunnel and one of 10.7.0.0/24's two: %v", got)
	}
	db.Delete(sad.Filter{Keys: []*pb.SAKey{{Spi: 0x301}}}, "test")
	if got := reverseRoutes(tbl, db.RemoteSpans()); len(got) != 0 {
		t.Fatalf("routes after deleting every tunnel: %v", got)
	}
	mk(0x100, "198.51.100.1", "10.7.0.0/24")
	// Not a DEP set: no reverse routes.
	tbl2, _ := spdBuild(dynConfig("192.0.2.1", "0.0.0.0", "10.0.1.0/24", "10.0.2.0/24"))
	if r := reverseRoutes(tbl2, db.RemoteSpans()); len(r) != 0 {
		t.Fatalf("routes for a static set: %v", r)
	}
}

var spdBuild = spd.Build

// TestConfigureKeepsManualSAs: committing the same manual SA again keeps
// the installed SA (and its sequence numbers); a changed key replaces it;
// a removed term deletes it.
func TestConfigureKeepsManualSAs(t *testing.T) {
	db, _ := sad.Open(sad.Options{})
	p := New(db)
	defer p.Workers.Close()
	cfg := manualConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24")
	if err := p.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	out := func() *sad.SA {
		for _, sa := range db.All() {
			if !sa.Inbound() {
				return sa
			}
		}
		return nil
	}
	first := out()
	first.NextSeq()
	first.NextSeq()
	if err := p.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	if out() != first || out().Sequence() != 2 {
		t.Fatal("unchanged manual SA was replaced")
	}
	cfg.IpsecVpn.Rules[0].Terms[0].Then.GetManual().Directions[0].EncryptionKey.Value = []byte("fedcba9876543210")
	if err := p.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	if out() == first || len(db.All()) != 2 {
		t.Fatalf("changed key not applied: %d SAs", len(db.All()))
	}
	cfg.IpsecVpn.Rules[0].Terms = nil
	if err := p.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	if len(db.All()) != 0 {
		t.Fatalf("%d SAs left after the term went", len(db.All()))
	}
	// A bad manual key is an error with its place, and nothing else breaks.
	cfg = manualConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24")
	cfg.IpsecVpn.Rules[0].Terms[0].Then.GetManual().Directions[0].EncryptionKey.Value = []byte("short")
	err := p.Configure(cfg)
	if err == nil || !strings.Contains(err.Error(), "rule r1 term t1") || !strings.Contains(err.Error(), "16-byte key") {
		t.Fatalf("error %v", err)
	}
}

// TestInnerIPv6 carries an IPv6 packet through an IPv4 tunnel (next
// header 41) of a next-hop set.
func TestInnerIPv6(t *testing.T) {
	a, b := pair(t,
		manualConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24"),
		manualConfig("192.0.2.2", "192.0.2.1", "10.0.2.0/24", "10.0.1.0/24"))
	p := make([]byte, 40+8+5)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], 13)
	p[6], p[7] = packet.ProtoUDP, 64
	src, dst := netip.MustParseAddr("2001:db8:1::1").As16(), netip.MustParseAddr("2001:db8:2::1").As16()
	copy(p[8:], src[:])
	copy(p[24:], dst[:])
	binary.BigEndian.PutUint16(p[40:], 1111)
	binary.BigEndian.PutUint16(p[42:], 2222)
	binary.BigEndian.PutUint16(p[44:], 13)
	copy(p[48:], "hello")
	a.tun.Outbound <- append([]byte(nil), p...)
	got := recv(t, b.tun.Inbound)
	if len(got) != len(p) || got[7] != 63 || string(got[48:]) != "hello" {
		t.Fatalf("got %x", got)
	}
}

// TestFillOptions: fwdd owns the data-plane options (issue 11): an SA kmd
// installs gets its term's from the plan, whatever it carried.
func TestFillOptions(t *testing.T) {
	db, _ := sad.Open(sad.Options{})
	a := &App{p: New(db)}
	defer a.p.Workers.Close()
	cfg := dynConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24")
	then := cfg.IpsecVpn.Rules[0].Terms[0].Then
	then.TunnelMtu = u32(1300)
	then.CopyTosFromInnerIpHeader = true
	then.AntiReplayWindowSize = u32(512)
	if err := a.p.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	bare := dynamicSAs("aes-128-gcm", "", make([]byte, 20), nil, "192.0.2.1", "192.0.2.2", 0x10, 0x20, pb.Encapsulation_ENCAPSULATION_ESP, 0)
	for _, s := range bare {
		s.TunnelMtu, s.ReplayWindow, s.InsideInterface = 0, 0, ""
	}
	other := dynamicSAs("aes-128-gcm", "", make([]byte, 20), nil, "192.0.2.1", "192.0.2.2", 0x30, 0x40, pb.Encapsulation_ENCAPSULATION_ESP, 0)
	other[0].ReplayWindow, other[1].TunnelMtu = 64, 1500
	kept := other
	a.fillOptions(append(bare, kept...))
	if bare[1].TunnelMtu != 1300 || !bare[1].CopyTos || bare[0].ReplayWindow != 512 || bare[0].InsideInterface != "ms-1/2/0.1" {
		t.Fatalf("filled %v\n%v", bare[0], bare[1])
	}
	if kept[1].TunnelMtu != 1300 || !kept[1].CopyTos || kept[0].ReplayWindow != 512 {
		t.Fatalf("kmd's options kept %v", kept)
	}
}

// TestOuterIPv6 runs a tunnel between IPv6 gateways, raw ESP and NAT-T.
func TestOuterIPv6(t *testing.T) {
	for _, tt := range []struct {
		encap pb.Encapsulation
		port  uint32
	}{{pb.Encapsulation_ENCAPSULATION_ESP, 0}, {pb.Encapsulation_ENCAPSULATION_UDP_NATT, 4500}} {
		a, b := pair(t,
			dynConfig("2001:db8::1", "2001:db8::2", "10.0.1.0/24", "10.0.2.0/24"),
			dynConfig("2001:db8::2", "2001:db8::1", "10.0.2.0/24", "10.0.1.0/24"))
		key := make([]byte, 36)
		if err := a.p.DB.Install(dynamicSAs("chacha20-poly1305", "", key, nil, "2001:db8::1", "2001:db8::2", 0x610, 0x620, tt.encap, tt.port), 0); err != nil {
			t.Fatal(err)
		}
		if err := b.p.DB.Install(dynamicSAs("chacha20-poly1305", "", key, nil, "2001:db8::2", "2001:db8::1", 0x620, 0x610, tt.encap, tt.port), 0); err != nil {
			t.Fatal(err)
		}
		p := pad(ping(hostB, hostA), 1000)
		a.tun.Outbound <- p
		if got := recv(t, b.tun.Inbound); len(got) != len(p) {
			t.Fatalf("%v: got %d bytes", tt.encap, len(got))
		}
		o := lastOuter(t, a)
		want := byte(packet.ProtoESP)
		if tt.port != 0 {
			want = packet.ProtoUDP
		}
		if o.Version != 6 || o.Proto != want || o.Src.String() != "2001:db8::1" || o.TTL != 64 {
			t.Fatalf("outer %+v", o)
		}
	}
}

func TestDropReportsLimited(t *testing.T) {
	db, _ := sad.Open(sad.Options{})
	p := New(db)
	defer p.Workers.Close()
	now := time.Unix(100, 0)
	p.Now = func() time.Time { return now }
	n := 0
	p.OnDrop = func(Drop) { n++ }
	for i := 0; i < 100; i++ {
		p.report(Drop{Reason: "x"})
	}
	if n != DropReportsPerSecond {
		t.Fatalf("%d reports in one second", n)
	}
	now = now.Add(time.Second)
	p.report(Drop{Reason: "x"})
	if n != DropReportsPerSecond+1 {
		t.Fatal("no report in the next second")
	}
}

func TestTransmitRetryWaitsForSocket(t *testing.T) {
	// Each signal is a channel closed when "sockets were opened": the
	// retry sends again at once, not after a poll interval.
	var mu sync.Mutex
	var next chan struct{}
	signal := func() <-chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		if next == nil {
			next = make(chan struct{})
		}
		return next
	}
	open := func() {
		mu.Lock()
		defer mu.Unlock()
		if next != nil {
			close(next)
			next = nil
		}
	}
	calls := 0
	done := make(chan error, 1)
	first := signal()
	go func() {
		done <- retry(func() error {
			calls++
			if calls < 3 {
				return fmt.Errorf("wire: %w on 192.0.2.1:500", ErrNoSocket)
			}
			return nil
		}, first, signal, time.Minute)
	}()
	deadline := time.After(10 * time.Second)
wait:
	for {
		select {
		case err := <-done:
			if err != nil || calls != 3 {
				t.Fatalf("err %v after %d calls", err, calls)
			}
			break wait
		case <-time.After(10 * time.Millisecond):
			open()
		case <-deadline:
			t.Fatal("retry did not send again when sockets were opened")
		}
	}
	other := errors.New("wire: network unreachable")
	calls = 0
	closed := make(chan struct{})
	close(closed)
	always := func() <-chan struct{} { return closed }
	if err := retry(func() error { calls++; return other }, closed, always, time.Minute); err != other || calls != 1 {
		t.Fatalf("another error must end the retries: %v after %d", err, calls)
	}
	if err := retry(func() error { return ErrNoSocket }, make(chan struct{}), signal, time.Millisecond); !errors.Is(err, ErrNoSocket) {
		t.Fatalf("gives up with %v", err)
	}
}

// TestDynamicEndpointClients: a service set whose only IPsec statement is
// an ike-access-profile is a set of the SPD, and each client's outbound
// SA carries what its selectors cover, side by side.
func TestDynamicEndpointClients(t *testing.T) {
	cfg := &pb.Config{
		ServiceSets: []*pb.ServiceSet{{
			Name:  "ss1",
			Style: &pb.ServiceSet_NextHopService{NextHopService: &pb.NextHopService{InsideServiceInterface: "ms-1/2/0.1", OutsideServiceInterface: "ms-1/2/0.2"}},
			IpsecVpnOptions: &pb.IPsecVPNOptions{
				LocalGateway: &pb.LocalGateway{Address: "192.0.2.1"}, IkeAccessProfile: "prof"},
		}},
		AccessProfiles: []*pb.AccessProfile{{Name: "prof", ClientIke: &pb.AccessClientIKE{PreSharedKey: &pb.Key{Value: []byte("k")}}}},
	}
	a := newRouter(t, cfg, "")
	if set := a.p.SPD().Set("ss1"); set == nil || !set.DEP || set.LocalGateway.String() != "192.0.2.1" {
		t.Fatalf("dynamic-endpoint set %+v", set)
	}
	sel := func(p string) []*pb.TrafficSelector {
		pp := netip.MustParsePrefix(p)
		return []*pb.TrafficSelector{{StartAddress: pp.Addr().AsSlice(), EndAddress: netip.MustParseAddr(strings.TrimSuffix(p, ".0/24") + ".255").AsSlice()}}
	}
	key := make([]byte, 20)
	for i, c := range []struct{ addr, lan string }{{"192.0.2.2", "10.0.2.0/24"}, {"192.0.2.3", "10.0.3.0/24"}} {
		sas := dynamicSAs("aes-128-gcm", "", key, nil, "192.0.2.1", c.addr, uint32(0x100+i), uint32(0x200+i), pb.Encapsulation_ENCAPSULATION_ESP, 0)
		for _, sa := range sas {
			sa.Rule, sa.Term, sa.InsideInterface = "", "", ""
			sa.LocalSelectors, sa.RemoteSelectors = sel("10.0.1.0/24"), sel(c.lan)
		}
		if err := a.p.DB.Install(sas, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ dst, gw string }{{"10.0.2.1", "192.0.2.2"}, {"10.0.3.1", "192.0.2.3"}, {"10.0.2.9", "192.0.2.2"}} {
		a.tun.Outbound <- ping(netip.MustParseAddr(c.dst), hostA)
		var o packet.Info
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			a.wire.mu.Lock()
			n := len(a.wire.sent)
			a.wire.mu.Unlock()
			if n > 0 {
				o = lastOuter(t, a)
				a.wire.mu.Lock()
				a.wire.sent = nil
				a.wire.mu.Unlock()
				break
			}
			if time.Now().After(end) {
				t.Fatalf("ping to %s not sent (no SA: %d)", c.dst, a.p.DB.SetCounters("ss1").Get(sad.NoSA))
			}
		}
		if o.Dst.String() != c.gw || o.Proto != packet.ProtoESP {
			t.Errorf("ping to %s went to %s, want the client %s", c.dst, o.Dst, c.gw)
		}
	}
	// Nobody's selectors cover 10.0.9.1: no SA, and nothing to acquire.
	a.tun.Outbound <- ping(netip.MustParseAddr("10.0.9.1"), hostA)
	waitCounter := func() uint64 {
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
			if n := a.p.DB.SetCounters("ss1").Get(sad.NoSA); n > 0 {
				return n
			}
		}
		return 0
	}
	if n := waitCounter(); n != 1 {
		t.Fatalf("no SA counted %d times, want 1", n)
	}
}
