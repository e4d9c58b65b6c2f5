package ikev1

import (
	"testing"

	"github.com/sitesec/sitesec/kmd/isakmp"
)

// FuzzHandle feeds untrusted datagrams to an established responder
// tunnel: nothing may panic, and no datagram without the keys may take
// its ISAKMP SA or its ESP pair away.
func FuzzHandle(f *testing.F) {
	p1 := Phase1{Encr: isakmp.EncrAES, KeyBits: 128, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 14}
	p2 := Phase2{ESP: isakmp.ESPAES, KeyBits: 128, AuthAlg: isakmp.AuthHMACSHA}
	ta, tb, ha, hb, _ := pair(&testing.T{}, false, p1, p2)
	ta.Initiate()
	var seeds [][]byte
	for len(ha.out)+len(hb.out) > 0 {
		for _, p := range ha.out {
			seeds = append(seeds, p)
			tb.Handle(tb.Local, tb.Remote, p)
		}
		ha.out = nil
		for _, p := range hb.out {
			ta.Handle(ta.Local, ta.Remote, p)
		}
		hb.out = nil
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, tb, _, _, _ := pair(t, false, p1, p2)
		// A fresh responder: phase 1 from scratch must not panic either.
		tb.Handle(tb.Local, tb.Remote, b)
	})
}

// TestHandleKeepsState replays every message of a negotiation with each
// byte flipped into an established tunnel: its SAs stay.
func TestHandleKeepsState(t *testing.T) {
	p1 := Phase1{Encr: isakmp.EncrAES, KeyBits: 128, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 14}
	p2 := Phase2{ESP: isakmp.ESPAES, KeyBits: 128, AuthAlg: isakmp.AuthHMACSHA}
	ta, tb, ha, hb, _ := pair(t, false, p1, p2)
	ta.Initiate()
	var msgs [][]byte
	for len(ha.out)+len(hb.out) > 0 {
		for _, p := range ha.out {
			msgs = append(msgs, p)
			tb.Handle(tb.Local, tb.Remote, p)
		}
		ha.out = nil
		for _, p := range hb.out {
			ta.Handle(ta.Local, ta.Remote, p)
		}
		hb.out = nil
	}
	sa, c := tb.Established(), tb.Children[0]
	for _, m := range msgs {
		for i := range m {
			bad := append([]byte(nil), m...)
			bad[i] ^= 0x5a
			tb.Handle(tb.Local, tb.Remote, bad)
		}
	}
	if tb.Established() != sa || len(tb.Children) != 1 || tb.Children[0] != c || len(hb.in) != 1 {
		t.Fatalf("state changed by corrupted messages: %d children, %d inbound SAs", len(tb.Children), len(hb.in))
	}
	if tb.Stats.Dropped == 0 {
		t.Fatal("nothing counted as dropped")
	}
}
