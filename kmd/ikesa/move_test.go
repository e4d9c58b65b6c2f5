package ikesa

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/sitesec/sitesec/kmd/message"
)

func moves(s *side) int {
	n := 0
	for _, e := range s.events {
		if e.Kind == EventRemoteMoved {
			n++
		}
	}
	return n
}

// Issue 14 item 3: a replayed IKE message from another address does not
// move an IKE SA; a new authenticated request with the expected message
// ID from a new NAT mapping does (RFC 7296 section 2.23).
func TestReplayDoesNotMoveSA(t *testing.T) {
	cfg := testConfig("k")
	w := newWorld(t, 21, cfg, mirror(cfg))
	w.nat = netip.MustParseAddrPort("203.0.113.7:0")
	var toRight []datagram
	w.drop = func(d datagram) bool {
		if d.to == w.r {
			toRight = append(toRight, d)
		}
		return false
	}
	sa := w.initiate(cfg)
	w.run()
	r := w.r.only(t)
	home := r.Remote
	if home.Addr() != w.nat.Addr() || home.Port() != 5500 {
		t.Fatalf("right sees the left side at %v", home)
	}
	// toRight[0] is IKE_SA_INIT, toRight[1] IKE_AUTH (port 4500).
	var auth []byte
	for _, d := range toRight {
		if p, err := message.Parse(d.raw); err == nil && p.Exchange == message.IKEAuth && !p.IsResponse() {
			auth = d.raw
		}
	}
	if auth == nil {
		t.Fatal("no IKE_AUTH request captured")
	}
	attacker := netip.MustParseAddrPort("192.0.2.66:4500")
	local := r.Local
	deliver := func(raw []byte, from netip.AddrPort) error {
		sa2, pkt, reply, err := w.r.table.Route(local, from, raw)
		if err != nil || reply != nil {
			return err
		}
		if sa2 != r {
			t.Fatalf("routed to %v", sa2)
		}
		return sa2.Handle(local, from, pkt)
	}
	// A replayed IKE_AUTH request: authentic, but message ID 1 is done.
	if err := deliver(auth, attacker); err != nil {
		t.Logf("replay: %v", err)
	}
	if r.Remote != home || moves(w.r) != 0 || r.Stats.AddressChangesRefused != 1 {
		t.Fatalf("replayed IKE_AUTH: remote %v, %d moves, %d refused", r.Remote, moves(w.r), r.Stats.AddressChangesRefused)
	}
	w.run() // the cached response goes to the SA's address, not the attacker's
	// An IKE_SA_INIT request naming the SA's responder SPI is dropped
	// before it reaches the SA.
	init := append([]byte(nil), toRight[0].raw...)
	binary.BigEndian.PutUint64(init[8:16], r.SPIr)
	if err := deliver(init, attacker); err == nil {
		t.Fatal("IKE_SA_INIT with a responder SPI reached the SA")
	}
	if r.Remote != home || r.Local != local {
		t.Fatalf("IKE_SA_INIT moved the SA to %v", r.Remote)
	}
	// The NAT mapping changes; the next request the right side expects
	// moves the SA and its CHILD SAs (EventRemoteMoved).
	w.nat = netip.MustParseAddrPort("203.0.113.8:0")
	if err := sa.CreateChild(); err != nil {
		t.Fatal(err)
	}
	w.run()
	if r.Remote.Addr() != w.nat.Addr() || moves(w.r) != 1 {
		t.Fatalf("new mapping: remote %v, %d moves", r.Remote, moves(w.r))
	}
	w.checkChildren(t, 2)
	// Replaying the now old CREATE_CHILD_SA from the old mapping moves
	// nothing back.
	var create []byte
	for _, d := range toRight {
		if p, err := message.Parse(d.raw); err == nil && p.Exchange == message.CreateChildSA && !p.IsResponse() {
			create = d.raw
		}
	}
	if err := deliver(create, home); err != nil {
		t.Logf("replay: %v", err)
	}
	if r.Remote.Addr() != w.nat.Addr() || moves(w.r) != 1 || r.Stats.AddressChangesRefused != 2 {
		t.Fatalf("replayed CREATE_CHILD_SA: remote %v, %d moves, %d refused", r.Remote, moves(w.r), r.Stats.AddressChangesRefused)
	}
}

// Without NAT, even an expected message from a new address does not move
// the SA: only NAT mappings change under RFC 7296 section 2.23.
func TestNoMoveWithoutNAT(t *testing.T) {
	w, sa := establish(t, 22)
	r := w.r.only(t)
	home := r.Remote
	w.drop = func(d datagram) bool {
		if d.to == w.r {
			d.src = netip.MustParseAddrPort("192.0.2.66:500")
			sa2, pkt, _, err := w.r.table.Route(d.dst, d.src, d.raw)
			if err == nil {
				sa2.Handle(d.dst, d.src, pkt)
			}
			return true
		}
		return false
	}
	if err := sa.CreateChild(); err != nil {
		t.Fatal(err)
	}
	w.run()
	if r.Remote != home || moves(w.r) != 0 || r.Stats.AddressChangesRefused != 1 {
		t.Fatalf("remote %v, %d moves, %d refused", r.Remote, moves(w.r), r.Stats.AddressChangesRefused)
	}
}
