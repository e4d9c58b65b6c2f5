package server

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
)

// TestIdleRunnersHoldNoGoroutine: established IKE SAs that have nothing
// to do hold no goroutine (issue 15 goal 3: a parked goroutine per IKE SA,
// its stack and a 256-slot inbox was most of kmd's memory at 10,000
// tunnels), and their timers and inboxes still work: a soft-lifetime event
// afterwards rekeys a CHILD SA.
func TestIdleRunnersHoldNoGoroutine(t *testing.T) {
	ctx := t.Context()
	r, rb := dynamicResponder(t)
	stop := func(s *Server) {
		sc, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Stop(sc)
	}
	t.Cleanup(func() { stop(r) })
	const n = 24
	clients := map[netip.Addr]*Server{}
	var buses []*fakeBus
	for i := range n {
		c := New()
		c.Rand = seeded(byte(40 + i))
		b := &fakeBus{peer: r}
		c.StartLocal(ctx, b)
		clients[netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})] = c
		buses = append(buses, b)
		t.Cleanup(func() { stop(c) })
	}
	rb.route = func(dst netip.Addr) *Server { return clients[dst] }
	base := runtime.NumGoroutine()
	for a, c := range clients {
		lan := fmt.Sprintf("10.0.%d.0/24", a.As4()[3])
		if err := c.Apply(ctx, nil, config(a.String(), "198.51.100.1", "dep-key", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, lan, "10.1.0.0/24")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every client installed", func() bool {
		for _, b := range buses {
			if a, _ := b.count(); a != 1 {
				return false
			}
		}
		a, _ := rb.count()
		return a >= n
	})
	// 2n runners (each client's and the responder's one per client).
	var extra int
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if extra = runtime.NumGoroutine() - base; extra < n/2 {
			break
		}
	}
	if extra >= n/2 {
		t.Errorf("%d goroutines more than before %d established IKE SAs on each side (want none per idle SA)", extra, n)
	}
	r.mu.Lock()
	runners := len(r.runners)
	r.mu.Unlock()
	if runners != n {
		t.Fatalf("responder has %d runners, want %d", runners, n)
	}

	// A soft-lifetime event on a client's CHILD SA: its runner wakes and
	// rekeys it.
	b := buses[0]
	b.mu.Lock()
	spi := b.installs[0].Sas[0].Spi
	b.mu.Unlock()
	var c *Server
	for _, x := range clients {
		if x.Bus == b {
			c = x
		}
	}
	c.SAEvent(&pb.SAEvent{Kind: pb.SAEventKind_SA_EVENT_KIND_SOFT_LIFETIME, Sa: &pb.SAKey{Spi: spi}})
	waitFor(t, "rekey of an idle tunnel", func() bool { a, _ := b.count(); return a == 2 })
}

// BenchmarkMailbox is one item through a runner's mailbox: queued, run on
// a goroutine started for it, then the runner's timer set again (the path
// of every datagram, SA event and command).
func BenchmarkMailbox(b *testing.B) {
	s := New()
	s.StartLocal(b.Context(), nil)
	m := s.newMailbox()
	m.deadline = func() time.Time { return time.Now().Add(time.Hour) }
	m.tick = func() {}
	m.after = func() bool { return true }
	var wg sync.WaitGroup
	b.ReportAllocs()
	for b.Loop() {
		wg.Add(1)
		if !m.do(wg.Done) {
			b.Fatal("refused")
		}
		wg.Wait()
	}
}
