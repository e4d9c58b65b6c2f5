package plane

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/proto/pb"
)

// Issue 14 item 4: IKE punts to kmd are limited per source (50/s, burst
// 100) and in all (1000/s, burst 2000), so a flood of IKE_SA_INIT from
// one source or thousands does not reach the bus, and a peer keeps
// getting through.
func TestPuntRateLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	db, err := sad.Open(sad.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := New(db)
	p.Now = func() time.Time { return now }
	var punted map[netip.Addr]int
	p.Punt = func(d *pb.IKEDatagram) {
		a, _ := netip.AddrFromSlice(d.GetRemote().GetAddress())
		punted[a]++
	}
	r := p.NewReceiver()
	local := netip.MustParseAddrPort("192.0.2.1:500")
	peer := netip.MustParseAddr("198.51.100.7")
	send := func(src netip.Addr, n int, kind Kind) {
		ds := make([]Datagram, n)
		for i := range ds {
			data := []byte{1, 2, 3, 4, 5, 6, 7, 8}
			if kind == KindNATT {
				data = append([]byte{0, 0, 0, 0}, data...)
			}
			ds[i] = Datagram{Data: data, Local: local, Remote: netip.AddrPortFrom(src, 500), Kind: kind}
		}
		r.Receive(ds)
	}

	// One source: its burst of 100, then 50 per second.
	punted = map[netip.Addr]int{}
	attacker := netip.MustParseAddr("203.0.113.9")
	send(attacker, 1000, KindIKE)
	if punted[attacker] != 100 {
		t.Fatalf("one source, 1000 at once: %d punted", punted[attacker])
	}
	for range 10 {
		now = now.Add(100 * time.Millisecond)
		send(attacker, 100, KindNATT)
	}
	if punted[attacker] != 150 {
		t.Fatalf("one source over 1 s: %d punted, want 150", punted[attacker])
	}
	// The peer is not held back by it.
	send(peer, 5, KindIKE)
	if punted[peer] != 5 {
		t.Fatalf("peer: %d punted", punted[peer])
	}

	// Thousands of sources (IPv4 and IPv6 /64s): the global bucket.
	now = now.Add(10 * time.Second)
	punted = map[netip.Addr]int{}
	total := 0
	for i := range 5000 {
		var src netip.Addr
		if i%2 == 0 {
			src = netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		} else {
			src = netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::1", i))
		}
		send(src, 2, KindIKE)
	}
	for _, n := range punted {
		total += n
	}
	if total != PuntBurst {
		t.Fatalf("10000 datagrams from 5000 sources: %d punted, want %d", total, PuntBurst)
	}
	// A second later the peer gets through again (the global bucket
	// refilled by 1000, its own bucket is full).
	now = now.Add(time.Second)
	send(peer, 5, KindIKE)
	if punted[peer] != 5 {
		t.Fatalf("peer during the flood: %d punted", punted[peer])
	}
	if d := p.PuntDropped(); d != 900+950+10000-PuntBurst {
		t.Fatalf("%d dropped", d)
	}
	// IPv6 sources in one /64 share a bucket.
	now = now.Add(10 * time.Second)
	punted = map[netip.Addr]int{}
	for i := range 200 {
		send(netip.MustParseAddr(fmt.Sprintf("2001:db8:ffff:1::%x", i+1)), 1, KindIKE)
	}
	if len(punted) != 100 {
		t.Fatalf("one /64: %d punted", len(punted))
	}
}
