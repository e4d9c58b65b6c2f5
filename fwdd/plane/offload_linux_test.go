package plane

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitesec/sitesec/fwdd/packet"
	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/proto/pb"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// outerUDP builds an outer ESP-in-UDP packet as Plane.outer does, with an
// n-byte payload.
func outerUDP(src, dst netip.AddrPort, n int, ttl, tos byte, df bool) []byte {
	iph := ipHeaderLen(src.Addr())
	b := make([]byte, iph+packet.UDPHeaderLen+n)
	packet.UDP(b[iph:], src.Port(), dst.Port(), n)
	if src.Addr().Is4() {
		packet.OuterIPv4(b, src.Addr(), dst.Addr(), packet.ProtoUDP, ttl, tos, df, 1, len(b)-iph)
	} else {
		packet.OuterIPv6(b, src.Addr(), dst.Addr(), packet.ProtoUDP, ttl, tos, len(b)-iph)
	}
	return b
}

// TestUDPEndpoints: only packets whose header the UDP socket reproduces
// (TTL 64, TOS 0, DF clear, no options) leave through it.
func TestUDPEndpoints(t *testing.T) {
	src := netip.MustParseAddrPort("192.0.2.1:4500")
	dst := netip.MustParseAddrPort("192.0.2.2:4501")
	src6 := netip.MustParseAddrPort("[2001:db8::1]:4565")
	dst6 := netip.MustParseAddrPort("[2001:db8::2]:4565")
	esp := outerRaw(t)
	cases := []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"default", outerUDP(src, dst, 100, 64, 0, false), true},
		{"ttl", outerUDP(src, dst, 100, 32, 0, false), false},
		{"tos", outerUDP(src, dst, 100, 64, 0x10, false), false},
		{"df", outerUDP(src, dst, 100, 64, 0, true), false},
		{"raw ESP", esp, false},
		{"v6", outerUDP(src6, dst6, 100, 64, 0, false), true},
		{"v6 hop limit", outerUDP(src6, dst6, 100, 255, 0, false), false},
		{"v6 traffic class", outerUDP(src6, dst6, 100, 64, 0x20, false), false},
		{"short", []byte{0x45, 0, 0}, false},
	}
	for _, c := range cases {
		s, d, hl, ok := udpEndpoints(c.pkt)
		if ok != c.ok {
			t.Errorf("%s: ok %v, want %v", c.name, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		ws, wd := src, dst
		if strings.HasPrefix(c.name, "v6") {
			ws, wd = src6, dst6
		}
		if s != ws || d != wd || len(c.pkt)-hl != 100 {
			t.Errorf("%s: %v > %v payload %d", c.name, s, d, len(c.pkt)-hl)
		}
	}
	// Fragments and options never.
	p := outerUDP(src, dst, 100, 64, 0, false)
	p[6] = 0x20 // more fragments
	if _, _, _, ok := udpEndpoints(p); ok {
		t.Error("fragment accepted")
	}
	p = outerUDP(src, dst, 100, 64, 0, false)
	p[0] = 0x46
	if _, _, _, ok := udpEndpoints(p); ok {
		t.Error("options accepted")
	}
}

func outerRaw(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 20+100)
	packet.OuterIPv4(b, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), packet.ProtoESP, 64, 0, false, 1, 100)
	return b
}

// TestGSOGroup: runs of one size to one peer, the last one possibly
// shorter, bounded by the kernel's segment count and the UDP length.
func TestGSOGroup(t *testing.T) {
	src := netip.MustParseAddrPort("192.0.2.1:4500")
	dst := netip.MustParseAddrPort("192.0.2.2:4500")
	other := netip.MustParseAddrPort("192.0.2.3:4500")
	mk := func(sizes ...int) [][]byte {
		var ps [][]byte
		for _, n := range sizes {
			d := dst
			if n < 0 {
				d, n = other, -n
			}
			ps = append(ps, outerUDP(src, d, n, 64, 0, false))
		}
		return ps
	}
	hl := packet.IPv4HeaderLen + packet.UDPHeaderLen
	many := make([]int, 100)
	for i := range many {
		many[i] = 1000
	}
	cases := []struct {
		sizes []int
		want  int
	}{
		{[]int{1400}, 1},
		{[]int{1400, 1400, 1400}, 3},
		{[]int{1400, 1400, 600, 1400}, 3},                          // the short one ends the run
		{[]int{1400, 1500}, 1},                                     // a bigger one cannot follow
		{[]int{1400, 1400, -1400, 1400}, 2},                        // another peer
		{many, gsoMaxSegments},                                     // segment limit
		{[]int{9000, 9000, 9000, 9000, 9000, 9000, 9000, 9000}, 7}, // 65507 bytes
	}
	for _, c := range cases {
		ps := mk(c.sizes...)
		if got := gsoGroup(ps, dst, hl); got != c.want {
			t.Errorf("%v: %d, want %d", c.sizes, got, c.want)
		}
	}
	// A raw ESP packet ends the run too.
	ps := append(mk(1400, 1400), outerRaw(t))
	if got := gsoGroup(ps, dst, hl); got != 2 {
		t.Errorf("raw ESP in the run: %d", got)
	}
}

// TestSegmentControlMessage: what putSegment writes is what the kernel's
// parser reads.
func TestSegmentControlMessage(t *testing.T) {
	oob := putSegment(make([]byte, 64), 1388)
	ms, err := unix.ParseSocketControlMessage(oob)
	if err != nil || len(ms) != 1 || ms[0].Header.Level != unix.IPPROTO_UDP || ms[0].Header.Type != unix.UDP_SEGMENT ||
		len(ms[0].Data) < 2 || binary.NativeEndian.Uint16(ms[0].Data) != 1388 {
		t.Fatalf("%v %+v", err, ms)
	}
	if got := groSize(nil); got != 0 {
		t.Fatalf("empty: %d", got)
	}
	if got := groSize(oob); got != 0 {
		t.Fatalf("UDP_SEGMENT read as UDP_GRO: %d", got)
	}
	if got := groSize(oob[:unix.CmsgLen(0)-1]); got != 0 {
		t.Fatalf("truncated: %d", got)
	}
}

// TestLoopbackGSO sends ESP-in-UDP packets as writeUDP does, one GSO
// message, between two sockets on the loopback interface, the receiver
// with UDP_GRO: the kernel hands over the message whole, and cutting it
// at groSize gives back each packet, in order.
func TestLoopbackGSO(t *testing.T) {
	rc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if _, gro := setupOffloads(rc, false); !gro {
		t.Fatal("UDP_GRO refused")
	}
	gso, _ := setupOffloads(sc, false)
	if !gso {
		t.Fatal("UDP_SEGMENT not supported")
	}
	var segs atomic.Uint64
	o := newUDPOffload(ipv4.NewPacketConn(sc), gso, &segs)
	src := sc.LocalAddr().(*net.UDPAddr).AddrPort()
	dst := rc.LocalAddr().(*net.UDPAddr).AddrPort()
	var pkts, want [][]byte
	for i := 0; i < 10; i++ {
		n := 1000
		if i == 9 {
			n = 500
		}
		p := outerUDP(src, dst, n, 64, 0, false)
		for j := 28; j < len(p); j++ {
			p[j] = byte(i*7 + j)
		}
		pkts = append(pkts, p)
		want = append(want, p[28:])
	}
	if sent, err := o.writeUDP(pkts); sent != 10 || err != nil || segs.Load() != 10 {
		t.Fatalf("writeUDP: %d %v, %d in GSO messages", sent, err, segs.Load())
	}
	pc := ipv4.NewPacketConn(rc)
	ms := []ipv4.Message{{Buffers: [][]byte{make([]byte, groBufSize)}, OOB: make([]byte, unix.CmsgSpace(4))}}
	var got [][]byte
	coalesced := false
	rc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < 10 {
		if _, err := pc.ReadBatch(ms, 0); err != nil {
			t.Fatalf("read after %d: %v", len(got), err)
		}
		b := ms[0].Buffers[0][:ms[0].N]
		seg := groSize(ms[0].OOB[:ms[0].NN])
		if seg <= 0 || seg >= len(b) {
			seg = len(b)
		} else {
			coalesced = true
		}
		for off := 0; off < len(b); off += seg {
			got = append(got, append([]byte(nil), b[off:min(off+seg, len(b))]...))
		}
	}
	if !coalesced {
		t.Error("the receiver never got a coalesced datagram")
	}
	for i := range want {
		if i >= len(got) || !bytes.Equal(got[i], want[i]) {
			t.Fatalf("datagram %d differs (got %d datagrams)", i, len(got))
		}
	}
}

// TestNamespaceUDPOffload runs two data planes in two network namespaces
// (veth pair, real TUN devices with their offloads) with AES-GCM SAs in
// UDP on 4500 and moves 8 MB over one TCP connection from A's inside
// address to B's: with UDP_SEGMENT on A and UDP_GRO on B the packets
// leave in GSO messages and arrive coalesced; with B's offloads off (the
// kernel cuts A's GSO packets for B's socket) and with both off (the raw
// socket sends everything), the same bytes arrive. No ICV or replay
// failure in any.
func TestNamespaceUDPOffload(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root for network namespaces, TUN devices and raw sockets")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: iproute2 (ip) not installed")
	}
	nsA := fmt.Sprintf("fwddGA%d", os.Getpid())
	nsB := fmt.Sprintf("fwddGB%d", os.Getpid())
	for _, ns := range []string{nsA, nsB} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", "fwga", "netns", nsA, "type", "veth", "peer", "name", "fwgb", "netns", nsB)
	run(t, "ip", "-n", nsA, "addr", "add", "192.0.2.1/24", "dev", "fwga")
	run(t, "ip", "-n", nsB, "addr", "add", "192.0.2.2/24", "dev", "fwgb")
	run(t, "ip", "-n", nsA, "link", "set", "fwga", "up")
	run(t, "ip", "-n", nsB, "link", "set", "fwgb", "up")
	type side struct {
		ns, local, remote, src, dst, addr string
		p                                 *Plane
		w                                 *LinuxWire
	}
	sides := []*side{
		{ns: nsA, local: "192.0.2.1", remote: "192.0.2.2", src: "10.0.1.0/24", dst: "10.0.2.0/24", addr: "10.0.1.1/24"},
		{ns: nsB, local: "192.0.2.2", remote: "192.0.2.1", src: "10.0.2.0/24", dst: "10.0.1.0/24", addr: "10.0.2.1/24"},
	}
	for i, s := range sides {
		db, err := sad.Open(sad.Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		s.p = New(db)
		if err := s.p.Configure(manualConfig(s.local, s.remote, s.src, s.dst)); err != nil {
			t.Fatal(err)
		}
		var in *Inside
		inNS(t, s.ns, func() {
			if s.w, err = OpenLinuxWire(s.p); err != nil {
				t.Fatal(err)
			}
			if in, err = CreateTUN("ms-1/2/0.1", 1500); err != nil {
				t.Fatal(err)
			}
		})
		s.p.SetWire(s.w)
		s.p.AddInside(in)
		t.Cleanup(func() { s.w.Close(); s.p.Close() })
		run(t, "ip", "-n", s.ns, "addr", "add", s.addr, "dev", in.Linux)
		run(t, "ip", "-n", s.ns, "link", "set", in.Linux, "up")
		run(t, "ip", "-n", s.ns, "route", "add", s.dst, "dev", in.Linux)
		spiIn, spiOut := uint32(0x7001), uint32(0x7002)
		if i == 1 {
			spiIn, spiOut = spiOut, spiIn
		}
		sas := dynamicSAs("aes-128-gcm", "", make([]byte, 20), nil, s.local, s.remote, spiIn, spiOut, pb.Encapsulation_ENCAPSULATION_UDP_NATT, 4500)
		sas[1].RemoteSelectors = sel(s.dst)
		if err := s.p.DB.Install(sas, 0); err != nil {
			t.Fatal(err)
		}
	}
	listen := func(s *side, off bool) {
		inNS(t, s.ns, func() {
			s.w.Listen(nil) // close, so that NoOffload applies to the new socket
			s.w.NoOffload = off
			if err := s.w.Listen(map[netip.AddrPort]Kind{netip.AddrPortFrom(netip.MustParseAddr(s.local), 4500): KindNATT}); err != nil {
				t.Fatal(err)
			}
		})
	}
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 131 >> 7)
	}
	want := sha256.Sum256(data)
	for _, c := range []struct {
		name       string
		offA, offB bool
	}{{"both", false, false}, {"receiver without GRO", false, true}, {"none", true, true}} {
		listen(sides[0], c.offA)
		listen(sides[1], c.offB)
		gso0, gro0 := sides[0].w.GSOSegments.Load(), sides[1].w.GROSegments.Load()
		var ln net.Listener
		inNS(t, nsB, func() {
			var err error
			if ln, err = net.Listen("tcp4", "10.0.2.1:0"); err != nil {
				t.Fatal(err)
			}
		})
		got := make(chan [32]byte, 1)
		go func() {
			defer ln.Close()
			ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
			c, err := ln.Accept()
			if err != nil {
				got <- [32]byte{}
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(60 * time.Second))
			h := sha256.New()
			io.Copy(h, c)
			var sum [32]byte
			h.Sum(sum[:0])
			got <- sum
		}()
		var conn net.Conn
		inNS(t, nsA, func() {
			d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(10, 0, 1, 1)}}
			var err error
			if conn, err = d.Dial("tcp4", ln.Addr().String()); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		})
		conn.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := conn.Write(data); err != nil {
			t.Fatalf("%s: write: %v", c.name, err)
		}
		conn.Close()
		if sum := <-got; sum != want {
			t.Fatalf("%s: the bytes that arrived differ", c.name)
		}
		gso, gro := sides[0].w.GSOSegments.Load()-gso0, sides[1].w.GROSegments.Load()-gro0
		t.Logf("%s: %d packets sent in GSO messages, %d received coalesced", c.name, gso, gro)
		if (gso > 0) == c.offA || (gro > 0) == c.offB {
			t.Errorf("%s: %d packets sent in GSO messages, %d received coalesced", c.name, gso, gro)
		}
	}
	for _, s := range sides {
		tot := s.p.DB.ServiceSetTotals("ss1")
		if n := tot.Get(sad.AuthFailures) + tot.Get(sad.Replayed) + tot.Get(sad.ReplayBeforeWindow); n != 0 {
			t.Errorf("%s: %d ICV or replay failures: %v", s.ns, n, tot.Proto())
		}
	}
}

// BenchmarkWireUDP sends batches of 64 ESP-in-UDP packets of 1400 bytes
// with LinuxWire.WriteOuter over the loopback interface to a UDP socket
// with UDP_GRO that a goroutine drains: "gso" from the UDP socket with
// UDP_SEGMENT (one message per batch), "raw" with the offloads off (the
// raw socket, one sendmmsg slot per packet, as before issue 15). ns/pkt
// includes the kernel's delivery to the receiving socket, which happens
// in the sending thread on loopback (as on a veth pair). Needs root.
func BenchmarkWireUDP(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipped: needs root for the raw socket")
	}
	for _, mode := range []string{"gso", "raw"} {
		b.Run(mode, func(b *testing.B) {
			db, _ := sad.Open(sad.Options{})
			p := New(db)
			defer p.Workers.Close()
			w, err := OpenLinuxWire(p)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			w.NoOffload = mode == "raw"
			rc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			setupOffloads(rc, false)
			bigBuffers(rc)
			src := netip.MustParseAddrPort("127.0.0.1:0")
			// A free port for the sending socket.
			tmp, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			src = tmp.LocalAddr().(*net.UDPAddr).AddrPort()
			tmp.Close()
			if err := w.Listen(map[netip.AddrPort]Kind{src: KindUDPEncap}); err != nil {
				b.Fatal(err)
			}
			dst := rc.LocalAddr().(*net.UDPAddr).AddrPort()
			pkts := make([][]byte, benchBatch)
			for i := range pkts {
				pkts[i] = outerUDP(src, dst, 1400-28, 64, 0, false)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				pc := ipv4.NewPacketConn(rc)
				ms := make([]ipv4.Message, 8)
				for i := range ms {
					ms[i] = ipv4.Message{Buffers: [][]byte{make([]byte, groBufSize)}, OOB: make([]byte, 64)}
				}
				for {
					if _, err := pc.ReadBatch(ms, 0); err != nil {
						return
					}
				}
			}()
			b.SetBytes(1400 * benchBatch)
			b.ResetTimer()
			for b.Loop() {
				if err := w.WriteOuter(pkts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/pkt")
			b.StopTimer()
			if (w.GSOSegments.Load() > 0) != (mode == "gso") {
				b.Fatalf("%s: %d packets in GSO messages", mode, w.GSOSegments.Load())
			}
			rc.Close()
			<-done
		})
	}
}

// recordTUN keeps a copy of every packet written to it.
type recordTUN struct {
	discardTUN
	mu   sync.Mutex
	pkts [][]byte
}

func (d *recordTUN) Write(bufs [][]byte, off int) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range bufs {
		d.pkts = append(d.pkts, append([]byte(nil), b[off:]...))
	}
	return len(bufs), nil
}

func (d *recordTUN) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pkts)
}

// TestReadGROManyBatches: 200 ESP-in-UDP packets of one size, sealed by
// one plane, arrive at another's UDP socket (UDP_GRO) as GSO messages of
// up to 64 over loopback; with 8 copy buffers per batch the reader cuts
// each coalesced datagram across several batches (and both of its
// rxSets, several times over). Every packet reaches the inside, once,
// in order.
func TestReadGROManyBatches(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root for the raw sockets of LinuxWire")
	}
	tmp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := uint32(tmp.LocalAddr().(*net.UDPAddr).Port)
	tmp.Close()
	key := bytes.Repeat([]byte{3}, 20)
	// A seals.
	dbA, _ := sad.Open(sad.Options{})
	a := New(dbA)
	defer a.Workers.Close()
	cw := &captureWire{}
	a.SetWire(cw)
	if err := a.Configure(dynConfig("127.0.0.2", "127.0.0.1", "10.0.1.0/24", "10.0.2.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := dbA.Install(dynamicSAs("aes-128-gcm", "", key, nil, "127.0.0.2", "127.0.0.1", 0x1001, 0x2002, pb.Encapsulation_ENCAPSULATION_UDP_NATT, port), 0); err != nil {
		t.Fatal(err)
	}
	s := newSender(a, &Inside{Junos: "ms-1/2/0.1", Dev: &discardTUN{}})
	const total = 200
	for lo := 0; lo < total; lo += 100 {
		for i := 0; i < 100; i++ {
			p := pad(ping(hostB, hostA), 1000)
			p[26], p[27] = byte((lo+i)>>8), byte(lo+i) // ICMP sequence
			p[22], p[23] = 0, 0
			c := packet.Checksum(p[20:], 0)
			p[22], p[23] = byte(c>>8), byte(c)
			copy(s.cur.bufs[i][Headroom:], p)
			s.cur.sizes[i] = len(p)
		}
		s.batch(100)
	}
	if len(cw.pkts) != total {
		t.Fatalf("sealed %d", len(cw.pkts))
	}
	// B receives with LinuxWire.
	dbB, _ := sad.Open(sad.Options{})
	b := New(dbB)
	defer b.Workers.Close()
	if err := b.Configure(dynConfig("127.0.0.1", "127.0.0.2", "10.0.2.0/24", "10.0.1.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := dbB.Install(dynamicSAs("aes-128-gcm", "", key, nil, "127.0.0.1", "127.0.0.2", 0x2002, 0x1001, pb.Encapsulation_ENCAPSULATION_UDP_NATT, port), 0); err != nil {
		t.Fatal(err)
	}
	rec := &recordTUN{}
	m := map[string]*Inside{"ms-1/2/0.1": {Junos: "ms-1/2/0.1", Dev: rec}}
	b.insides.Store(&m)
	w, err := OpenLinuxWire(b)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.groSlots = 8
	if err := w.Listen(map[netip.AddrPort]Kind{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)): KindNATT}); err != nil {
		t.Fatal(err)
	}
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: int(port)})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	gso, _ := setupOffloads(sc, false)
	var segs atomic.Uint64
	o := newUDPOffload(ipv4.NewPacketConn(sc), gso, &segs)
	if n, err := o.writeUDP(cw.pkts); n != total || err != nil {
		t.Fatalf("writeUDP: %d %v", n, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rec.count() < total && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := rec.count(); n != total {
		t.Fatalf("%d of %d packets reached the inside; counters %v", n, total, dbB.ServiceSetTotals("ss1").Proto())
	}
	if w.GROSegments.Load() <= 8 {
		t.Fatalf("only %d packets arrived coalesced: the batches were never cut", w.GROSegments.Load())
	}
	for i, p := range rec.pkts {
		if seq := int(p[26])<<8 | int(p[27]); seq != i {
			t.Fatalf("packet %d has sequence %d", i, seq)
		}
	}
}
