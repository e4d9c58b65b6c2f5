package server

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
)

// live returns what fwdd would hold after b's installs and deletes: the
// inbound and outbound SPIs not deleted, and the outbound SPI carrying
// the tunnel (fwdd sends on the newest outbound SA installed).
func (b *fakeBus) live() (in, out map[uint32]bool, current uint32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	in, out = map[uint32]bool{}, map[uint32]bool{}
	for _, i := range b.installs {
		for _, sa := range i.Sas {
			if sa.Direction == pb.Direction_DIRECTION_INBOUND {
				in[sa.Spi] = true
			} else {
				out[sa.Spi], current = true, sa.Spi
			}
		}
	}
	for _, d := range b.deletes {
		for _, k := range d.Sas {
			if k.Direction == pb.Direction_DIRECTION_INBOUND {
				delete(in, k.Spi)
			} else {
				delete(out, k.Spi)
			}
		}
	}
	if !out[current] {
		current = 0
	}
	return in, out, current
}

// TestSimultaneousInitiation (issue 12 item 5): both kmds initiate at
// once, so two IKE SAs and two CHILD SA pairs come up. Both settle on the
// same IKE SA (RFC 7296 section 2.8.2's rule, on the SPIs), move their
// outbound traffic to its CHILD SA before the other goes, and the
// initiator of the redundant IKE SA deletes it: one IKE SA and one CHILD
// SA pair remain, shown once on each side.
func TestSimultaneousInitiation(t *testing.T) {
	// Several runners draw randomness at once here: crypto/rand, not
	// pair's unsynchronised ChaCha8.
	l, r := New(), New()
	lb, rb := &fakeBus{peer: r}, &fakeBus{peer: l}
	l.OutboundDelay, r.OutboundDelay = 200*time.Millisecond, 200*time.Millisecond
	// The path is down until both have sent their IKE_SA_INIT: their
	// retransmissions then cross, and each answers the other's as well.
	var up atomic.Bool
	lb.route = func(netip.Addr) *Server {
		if up.Load() {
			return r
		}
		return nil
	}
	rb.route = func(netip.Addr) *Server {
		if up.Load() {
			return l
		}
		return nil
	}
	ctx := t.Context()
	l.StartLocal(ctx, lb)
	r.StartLocal(ctx, rb)
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		l.Stop(c)
		r.Stop(c)
	})
	lc := config("192.0.2.1", "198.51.100.1", "s3cret", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24")
	rc := config("198.51.100.1", "192.0.2.1", "s3cret", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.1.0.0/24", "10.0.0.0/24")
	done := make(chan error, 1)
	go func() { done <- r.Apply(ctx, nil, rc) }()
	if err := l.Apply(ctx, nil, lc); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both IKE_SA_INIT requests", func() bool {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		rb.mu.Lock()
		defer rb.mu.Unlock()
		return lb.sent > 0 && rb.sent > 0
	})
	up.Store(true)
	show := func(s *Server) []*pb.IKESecurityAssociation {
		return s.Op(ctx, &pb.OpRequest{Words: strings.Fields("show services ipsec-vpn ike security-associations")}).GetIkeSecurityAssociations().GetSas()
	}
	// Both initiated: two IKE SAs and CHILD SA pairs each, before the
	// grace.
	sawL, sawR := false, false
	for end := time.Now().Add(20 * time.Second); !(sawL && sawR) && time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		sawL = sawL || len(show(l)) == 2
		sawR = sawR || len(show(r)) == 2
	}
	if !sawL || !sawR {
		t.Fatalf("no collision: two IKE SAs seen on left %v, on right %v", sawL, sawR)
	}
	settled := func() bool {
		ls, rs := show(l), show(r)
		if len(ls) != 1 || len(rs) != 1 || ls[0].InitiatorCookie != rs[0].InitiatorCookie || ls[0].State != "matured" {
			return false
		}
		lin, lout, lcur := lb.live()
		rin, rout, rcur := rb.live()
		return len(lin) == 1 && len(lout) == 1 && len(rin) == 1 && len(rout) == 1 && lout[lcur] && rout[rcur] && rin[lcur] && lin[rcur]
	}
	end := time.Now().Add(15 * time.Second)
	for !settled() && time.Now().Before(end) {
		time.Sleep(20 * time.Millisecond)
	}
	if !settled() {
		lin, lout, lcur := lb.live()
		rin, rout, rcur := rb.live()
		t.Fatalf("not settled on one IKE SA and one CHILD SA pair:\nleft %v\nright %v\nleft fwdd in %v out %v current %08x\nright fwdd in %v out %v current %08x",
			show(l), show(r), lin, lout, lcur, rin, rout, rcur)
	}
	// It stays so: nothing re-initiates.
	time.Sleep(500 * time.Millisecond)
	if !settled() {
		t.Fatal("a second IKE SA came back")
	}
	// The IKE SA kept is the one with the greater SPIs; the tunnel's
	// outbound SA always had a live SA behind it on the peer.
	if _, _, cur := lb.live(); cur == 0 {
		t.Fatal("left has no outbound SA")
	}
}
