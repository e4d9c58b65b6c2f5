package ikev1

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/kmd/isakmp"
	"github.com/sitesec/sitesec/kmd/message"
)

type fakeHost struct {
	name    string
	out     [][]byte
	in, ob  map[uint32]*Child
	events  []EventKind
	removed []uint32
}

func (h *fakeHost) Send(t *Tunnel, pkt []byte) { h.out = append(h.out, append([]byte(nil), pkt...)) }
func (h *fakeHost) Keepalive(t *Tunnel)        {}
func (h *fakeHost) InstallIn(t *Tunnel, c *Child) error {
	h.in[c.SPIIn] = c
	return nil
}
func (h *fakeHost) InstallOut(t *Tunnel, c *Child, r *Child) error {
	h.ob[c.SPIOut] = c
	return nil
}
func (h *fakeHost) Uninstall(t *Tunnel, c *Child) {
	delete(h.in, c.SPIIn)
	delete(h.ob, c.SPIOut)
	h.removed = append(h.removed, c.SPIIn)
}
func (h *fakeHost) Event(t *Tunnel, e Event) { h.events = append(h.events, e.Kind) }

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func sel(s string) message.Selector {
	p := netip.MustParsePrefix(s)
	return message.Selector{Start: p.Addr(), End: last(p), EndPort: 0xffff}
}

func pair(t *testing.T, aggressive bool, p1 Phase1, p2 Phase2) (*Tunnel, *Tunnel, *fakeHost, *fakeHost, *clock) {
	ck := &clock{time.Unix(1700000000, 0)}
	a, b := netip.MustParseAddrPort("192.0.2.1:500"), netip.MustParseAddrPort("192.0.2.2:500")
	cfg := func(l, r string, id netip.AddrPort) *Config {
		return &Config{
			Name: "t", Aggressive: aggressive, Proposals: []Phase1{p1}, PSK: []byte("secret"),
			LocalID: isakmp.ID{Type: isakmp.IDIPv4, Data: id.Addr().AsSlice()},
			ESP:     []Phase2{p2}, LocalTS: sel(l), RemoteTS: sel(r),
			Lifetime: time.Hour, ChildLifetime: 20 * time.Minute, NATTraversal: true,
			DPDInterval: 10 * time.Second, DPDThreshold: 3,
		}
	}
	ha := &fakeHost{name: "a", in: map[uint32]*Child{}, ob: map[uint32]*Child{}}
	hb := &fakeHost{name: "b", in: map[uint32]*Child{}, ob: map[uint32]*Child{}}
	ta := New(cfg("10.0.0.0/24", "10.1.0.0/24", a), a, b, Options{Rand: rand.Reader, Now: ck.now, Host: ha})
	tb := New(cfg("10.1.0.0/24", "10.0.0.0/24", b), b, a, Options{Rand: rand.Reader, Now: ck.now, Host: hb})
	return ta, tb, ha, hb, ck
}

// run delivers queued packets both ways until both are quiet.
func run(t *testing.T, ta, tb *Tunnel, ha, hb *fakeHost) int {
	n := 0
	for len(ha.out)+len(hb.out) > 0 {
		for _, p := range ha.out {
			ha.out = ha.out[1:]
			if err := tb.Handle(tb.Local, tb.Remote, p); err != nil && !strings.Contains(err.Error(), "no ISAKMP SA") {
				t.Fatalf("b: %v", err)
			}
			n++
			break
		}
		for _, p := range hb.out {
			hb.out = hb.out[1:]
			if err := ta.Handle(ta.Local, ta.Remote, p); err != nil && !strings.Contains(err.Error(), "no ISAKMP SA") {
				// (both sides delete the loser of a collision; the
				// second DELETE finds nothing)
				t.Fatalf("a: %v", err)
			}
			n++
			break
		}
	}
	return n
}

func checkKeys(t *testing.T, ha, hb *fakeHost) {
	t.Helper()
	if len(ha.in) == 0 || len(ha.in) != len(hb.ob) || len(hb.in) != len(ha.ob) {
		t.Fatalf("installed: a in %d out %d, b in %d out %d", len(ha.in), len(ha.ob), len(hb.in), len(hb.ob))
	}
	for spi, c := range ha.in {
		o := hb.ob[spi]
		if o == nil || !bytes.Equal(c.EncrIn, o.EncrOut) || !bytes.Equal(c.IntegIn, o.IntegOut) || !c.Suite.same(o.Suite) || c.AuxIn != o.AuxOut {
			t.Fatalf("SPI %x: keys differ", spi)
		}
		el, il := c.Suite.keyLens()
		if len(c.EncrIn) != el || len(c.IntegIn) != il || (c.Suite.AH && c.Suite.ESP == 0 && len(c.EncrIn) != 0) {
			t.Fatalf("SPI %x: key lengths %d/%d, want %d/%d", spi, len(c.EncrIn), len(c.IntegIn), el, il)
		}
		if c.Suite.Bundle() && (c.AuxIn < 256 || c.AuxIn == c.SPIIn || bytes.Equal(c.EncrIn[:8], c.IntegIn[:8])) {
			t.Fatalf("bundle SPIs %x/%x or keys not separate", c.SPIIn, c.AuxIn)
		}
	}
	for spi, c := range hb.in {
		o := ha.ob[spi]
		if o == nil || !bytes.Equal(c.EncrIn, o.EncrOut) || !bytes.Equal(c.IntegIn, o.IntegOut) {
			t.Fatalf("SPI %x: keys differ", spi)
		}
	}
}

func TestExchanges(t *testing.T) {
	cases := []struct {
		name       string
		aggressive bool
		p1         Phase1
		p2         Phase2
		msgs       int
	}{
		{"main aes128-sha1-modp2048", false, Phase1{Encr: isakmp.EncrAES, KeyBits: 128, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 14}, Phase2{ESP: isakmp.ESPAES, KeyBits: 128, AuthAlg: isakmp.AuthHMACSHA}, 9},
		{"main 3des-sha1-modp1024", false, Phase1{Encr: isakmp.Encr3DES, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 2}, Phase2{ESP: isakmp.ESP3DES, AuthAlg: isakmp.AuthHMACSHA}, 9},
		{"main des-md5-modp768 pfs group1", false, Phase1{Encr: isakmp.EncrDES, Hash: isakmp.HashMD5, Auth: isakmp.AuthPSK, Group: 1}, Phase2{ESP: isakmp.ESPDES, AuthAlg: isakmp.AuthHMACMD5, Group: 1}, 9},
		{"aggressive aes256-sha256-modp2048 pfs", true, Phase1{Encr: isakmp.EncrAES, KeyBits: 256, Hash: isakmp.HashSHA256, Auth: isakmp.AuthPSK, Group: 14}, Phase2{ESP: isakmp.ESPAES, KeyBits: 256, AuthAlg: isakmp.AuthHMACSHA256, Group: 14}, 6},
		{"main aes256-sha512-group24 gcm", false, Phase1{Encr: isakmp.EncrAES, KeyBits: 256, Hash: isakmp.HashSHA512, Auth: isakmp.AuthPSK, Group: 24}, Phase2{ESP: isakmp.ESPAESGCM16, KeyBits: 256, Group: 5}, 9},
		{"main AH hmac-sha1-96 (issue 13)", false, Phase1{Encr: isakmp.Encr3DES, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 2}, Phase2{AH: true, AuthAlg: isakmp.AuthHMACSHA}, 9},
		{"main AH hmac-sha-256-128 pfs group14 (issue 13)", false, Phase1{Encr: isakmp.EncrAES, KeyBits: 128, Hash: isakmp.HashSHA256, Auth: isakmp.AuthPSK, Group: 14}, Phase2{AH: true, AuthAlg: isakmp.AuthHMACSHA256, Group: 14}, 9},
		{"main bundle AH hmac-md5-96 + ESP 3des pfs group2 (issue 13)", false, Phase1{Encr: isakmp.Encr3DES, Hash: isakmp.HashMD5, Auth: isakmp.AuthPSK, Group: 2}, Phase2{AH: true, ESP: isakmp.ESP3DES, AuthAlg: isakmp.AuthHMACMD5, Group: 2}, 9},
		{"aggressive bundle AH hmac-sha1-96 + ESP aes-256-cbc (issue 13)", true, Phase1{Encr: isakmp.EncrAES, KeyBits: 256, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 14}, Phase2{AH: true, ESP: isakmp.ESPAES, KeyBits: 256, AuthAlg: isakmp.AuthHMACSHA}, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ta, tb, ha, hb, ck := pair(t, tc.aggressive, tc.p1, tc.p2)
			if err := ta.Initiate(); err != nil {
				t.Fatal(err)
			}
			if n := run(t, ta, tb, ha, hb); n != tc.msgs {
				t.Fatalf("%d messages, want %d", n, tc.msgs)
			}
			if ta.Established() == nil || tb.Established() == nil {
				t.Fatal("phase 1 not established")
			}
			checkKeys(t, ha, hb)
			if len(ha.in) != 1 {
				t.Fatalf("%d SAs", len(ha.in))
			}
			// Phase 2 rekey: a new pair, the old one deleted after the grace.
			old := ta.Children[0]
			ck.t = ck.t.Add(19 * time.Minute)
			ta.Tick()
			run(t, ta, tb, ha, hb)
			if len(ta.Children) != 2 || len(tb.Children) != 2 {
				t.Fatalf("after rekey: %d/%d children", len(ta.Children), len(tb.Children))
			}
			checkKeys(t, ha, hb)
			ck.t = ck.t.Add(DeleteGrace)
			ta.Tick()
			run(t, ta, tb, ha, hb)
			if ta.Child(old.SPIIn) != nil || tb.Child(old.SPIOut) != nil || len(ha.in) != 1 || len(hb.in) != 1 {
				t.Fatalf("old pair not deleted on both sides: %d %d", len(ha.in), len(hb.in))
			}
			checkKeys(t, ha, hb)
			// Phase 1 rekey: a new ISAKMP SA; the ESP SAs stay.
			p1 := ta.Established()
			if want := p1.EstablishedAt.Add(time.Hour * 9 / 10); p1.rekeyAt != want {
				t.Fatalf("phase 1 rekey at %v, want %v", p1.rekeyAt, want)
			}
			ta.startPhase1()
			run(t, ta, tb, ha, hb)
			if ta.Established() == p1 || len(ta.SAs) != 2 {
				t.Fatalf("phase 1 not rekeyed: %d SAs", len(ta.SAs))
			}
			ck.t = ck.t.Add(DeleteGrace)
			ta.Activity()
			tb.Activity()
			ta.Tick()
			run(t, ta, tb, ha, hb)
			if len(ta.SAs) != 1 || len(tb.SAs) != 1 || len(ha.in) != 1 {
				t.Fatalf("after phase 1 rekey: %d/%d ISAKMP SAs, %d ESP", len(ta.SAs), len(tb.SAs), len(ha.in))
			}
			// DPD: an idle tunnel is probed and answered.
			ck.t = ck.t.Add(11 * time.Second)
			tb.Activity()
			ta.Tick()
			if n := run(t, ta, tb, ha, hb); n != 2 || ta.dpdTries != 0 {
				t.Fatalf("DPD: %d messages, tries %d", n, ta.dpdTries)
			}
			// Quick mode on the new ISAKMP SA still works.
			ta.RekeyChild(ta.Children[0])
			run(t, ta, tb, ha, hb)
			checkKeys(t, ha, hb)
			// Delete: both sides end.
			ta.Delete()
			run(t, ta, tb, ha, hb)
			if !ta.Dead() || !tb.Dead() || len(ha.in)+len(hb.in)+len(ha.ob)+len(hb.ob) != 0 {
				t.Fatalf("delete: dead %v %v, SAs %d %d", ta.Dead(), tb.Dead(), len(ha.in), len(hb.in))
			}
		})
	}
}

func TestWrongPSK(t *testing.T) {
	p1 := Phase1{Encr: isakmp.EncrAES, KeyBits: 128, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 14}
	ta, tb, ha, hb, _ := pair(t, false, p1, Phase2{ESP: isakmp.ESPAES, KeyBits: 128, AuthAlg: isakmp.AuthHMACSHA})
	tb.Config.PSK = []byte("other")
	ta.Initiate()
	var err error
	for i := 0; i < 10 && len(ha.out)+len(hb.out) > 0 && err == nil; i++ {
		if len(ha.out) > 0 {
			p := ha.out[0]
			ha.out = ha.out[1:]
			err = tb.Handle(tb.Local, tb.Remote, p)
		}
		if len(hb.out) > 0 && err == nil {
			p := hb.out[0]
			hb.out = hb.out[1:]
			err = ta.Handle(ta.Local, ta.Remote, p)
		}
	}
	if err == nil || tb.Established() != nil || len(hb.in) != 0 {
		t.Fatalf("wrong PSK accepted: %v", err)
	}
}

func TestNoProposalChosen(t *testing.T) {
	p1 := Phase1{Encr: isakmp.EncrAES, KeyBits: 128, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 14}
	ta, tb, ha, _, _ := pair(t, false, p1, Phase2{ESP: isakmp.ESPAES, KeyBits: 128, AuthAlg: isakmp.AuthHMACSHA})
	tb.Config.Proposals = []Phase1{{Encr: isakmp.Encr3DES, Hash: isakmp.HashMD5, Auth: isakmp.AuthPSK, Group: 2}}
	ta.Initiate()
	if err := tb.Handle(tb.Local, tb.Remote, ha.out[0]); err == nil {
		t.Fatal("mismatched proposal accepted")
	}
	if len(tb.SAs) != 0 {
		t.Fatal("responder kept state for a refused proposal")
	}
}

// Malformed and replayed packets are dropped without changing any state.
func TestMalformed(t *testing.T) {
	p1 := Phase1{Encr: isakmp.EncrAES, KeyBits: 128, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 14}
	ta, tb, ha, hb, _ := pair(t, false, p1, Phase2{ESP: isakmp.ESPAES, KeyBits: 128, AuthAlg: isakmp.AuthHMACSHA})
	ta.Initiate()
	run(t, ta, tb, ha, hb)
	sa := tb.Established()
	// A quick mode message with a flipped ciphertext byte.
	ta.RekeyChild(ta.Children[0])
	pkt := ha.out[0]
	ha.out = nil
	bad := append([]byte(nil), pkt...)
	bad[len(bad)-1] ^= 1
	if err := tb.Handle(tb.Local, tb.Remote, bad); err == nil {
		t.Fatal("corrupted quick mode accepted")
	}
	for n := 0; n < len(pkt); n += 7 {
		tb.Handle(tb.Local, tb.Remote, pkt[:n])
	}
	if tb.Established() != sa || len(tb.Children) != 1 {
		t.Fatal("state changed by bad packets")
	}
	// The genuine packet still works, and its retransmission is answered
	// with the same response.
	if err := tb.Handle(tb.Local, tb.Remote, pkt); err != nil {
		t.Fatal(err)
	}
	if err := tb.Handle(tb.Local, tb.Remote, pkt); err != nil || len(hb.out) != 2 || !bytes.Equal(hb.out[0], hb.out[1]) {
		t.Fatalf("retransmission not answered identically: %v %d", err, len(hb.out))
	}
}

// Both sides initiating at once (establish-tunnels immediately on both)
// end with one ISAKMP SA and one ESP pair, the same on both sides.
func TestSimultaneousInitiation(t *testing.T) {
	p1 := Phase1{Encr: isakmp.EncrAES, KeyBits: 128, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 14}
	for i := 0; i < 20; i++ {
		ta, tb, ha, hb, ck := pair(t, false, p1, Phase2{ESP: isakmp.ESPAES, KeyBits: 128, AuthAlg: isakmp.AuthHMACSHA})
		ta.Initiate()
		tb.Initiate()
		run(t, ta, tb, ha, hb)
		ck.t = ck.t.Add(DeleteGrace)
		ta.Tick()
		tb.Tick()
		run(t, ta, tb, ha, hb)
		if len(ta.SAs) != 1 || len(tb.SAs) != 1 || ta.SAs[0].Name() != tb.SAs[0].Name() {
			t.Fatalf("round %d: ISAKMP SAs %d/%d", i, len(ta.SAs), len(tb.SAs))
		}
		if len(ta.Children) != 1 || len(tb.Children) != 1 || len(ha.ob) != 1 || len(hb.ob) != 1 {
			t.Fatalf("round %d: children %d/%d, outbound %d/%d", i, len(ta.Children), len(tb.Children), len(ha.ob), len(hb.ob))
		}
		checkKeys(t, ha, hb)
	}
}

// A peer that lost its state (rebooted) comes back with INITIAL-CONTACT:
// what the tunnel held from before goes; RESPONDER-LIFETIME from a
// responder with a shorter lifetime shortens the initiator's.
func TestInitialContactAndResponderLifetime(t *testing.T) {
	p1 := Phase1{Encr: isakmp.EncrAES, KeyBits: 128, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 14}
	p2 := Phase2{ESP: isakmp.ESPAES, KeyBits: 128, AuthAlg: isakmp.AuthHMACSHA}
	ta, tb, ha, hb, ck := pair(t, false, p1, p2)
	tb.Config.ChildLifetime = 10 * time.Minute
	ta.Initiate()
	run(t, ta, tb, ha, hb)
	c := ta.Children[0]
	if got := c.expireAt.Sub(c.CreatedAt); got != 10*time.Minute {
		t.Fatalf("initiator's ESP lifetime %v, want the responder's 10m", got)
	}
	old := tb.Children[0]
	// a reboots: a fresh tunnel with the same configuration.
	ck.t = ck.t.Add(time.Minute)
	ta2 := New(ta.Config, ta.Local, ta.Remote, ta.opts)
	ha.in, ha.ob = map[uint32]*Child{}, map[uint32]*Child{}
	ta2.Initiate()
	run(t, ta2, tb, ha, hb)
	if len(tb.SAs) != 1 || len(tb.Children) != 1 || tb.Child(old.SPIIn) != nil || hb.in[old.SPIIn] != nil {
		t.Fatalf("after INITIAL-CONTACT: %d ISAKMP SAs, %d pairs, old pair still there: %v", len(tb.SAs), len(tb.Children), tb.Child(old.SPIIn) != nil)
	}
	checkKeys(t, ha, hb)
}

// Unauthenticated first messages cannot make a tunnel hold more than
// MaxHalfOpen phase 1 exchanges.
func TestHalfOpenBound(t *testing.T) {
	p1 := Phase1{Encr: isakmp.EncrAES, KeyBits: 128, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 14}
	p2 := Phase2{ESP: isakmp.ESPAES, KeyBits: 128, AuthAlg: isakmp.AuthHMACSHA}
	ta, tb, ha, _, _ := pair(t, false, p1, p2)
	ta.Initiate()
	first := ha.out[0]
	refused := 0
	for i := 0; i < 3*MaxHalfOpen; i++ {
		m := append([]byte(nil), first...)
		m[0] = byte(i) // a new initiator cookie
		m[1] = byte(i >> 8)
		if err := tb.Handle(tb.Local, tb.Remote, m); err != nil {
			refused++
		}
	}
	if len(tb.SAs) != MaxHalfOpen || refused != 2*MaxHalfOpen {
		t.Fatalf("%d half-open SAs, %d refused", len(tb.SAs), refused)
	}
}

// A retransmitted first message (no responder cookie yet) is answered
// again by the same responder SA, with the same bytes.
func TestFirstMessageRetransmitted(t *testing.T) {
	for _, aggressive := range []bool{false, true} {
		p1 := Phase1{Encr: isakmp.EncrAES, KeyBits: 128, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 14}
		ta, tb, ha, hb, _ := pair(t, aggressive, p1, Phase2{ESP: isakmp.ESPAES, KeyBits: 128, AuthAlg: isakmp.AuthHMACSHA})
		ta.Initiate()
		first := ha.out[0]
		tb.Handle(tb.Local, tb.Remote, first)
		tb.Handle(tb.Local, tb.Remote, first)
		if len(tb.SAs) != 1 || len(hb.out) != 2 || !bytes.Equal(hb.out[0], hb.out[1]) {
			t.Fatalf("aggressive %v: %d responder SAs, %d answers", aggressive, len(tb.SAs), len(hb.out))
		}
	}
}

// A quick mode started on an established ISAKMP SA is not also queued
// for the next phase 1: a phase 1 rekey after it (charon rekeys IKE SAs
// on its own) must not start a second, unasked quick mode, which the
// peer takes as a rekey of the first.
func TestInitiateOnEstablishedQueuesNothing(t *testing.T) {
	p1 := Phase1{Encr: isakmp.Encr3DES, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 2}
	ta, tb, ha, hb, _ := pair(t, false, p1, Phase2{ESP: isakmp.ESP3DES, AuthAlg: isakmp.AuthHMACSHA})
	if err := ta.Initiate(); err != nil {
		t.Fatal(err)
	}
	run(t, ta, tb, ha, hb)
	// The tunnel loses its CHILD SA (cleared, or deleted by the peer);
	// traffic asks for a new one on the ISAKMP SA that is still up.
	ta.DeleteChild(ta.Children[0])
	run(t, ta, tb, ha, hb)
	if len(ta.Children)+len(tb.Children) != 0 {
		t.Fatalf("after delete: %d/%d children", len(ta.Children), len(tb.Children))
	}
	if err := ta.Initiate(); err != nil {
		t.Fatal(err)
	}
	run(t, ta, tb, ha, hb)
	if len(ta.Children) != 1 || len(tb.Children) != 1 {
		t.Fatalf("after initiate: %d/%d children", len(ta.Children), len(tb.Children))
	}
	// Phase 1 rekeys, by either side.
	for _, x := range []*Tunnel{tb, ta} {
		x.startPhase1()
		run(t, ta, tb, ha, hb)
		if len(ta.Children) != 1 || len(tb.Children) != 1 || len(ha.in) != 1 || len(hb.in) != 1 {
			t.Fatalf("after phase 1 rekey by %s: %d/%d children, %d/%d inbound SAs", x.Config.LocalTS, len(ta.Children), len(tb.Children), len(ha.in), len(hb.in))
		}
	}
	checkKeys(t, ha, hb)
}

// TestBundleProposals: a bundle is one proposal number with an AH
// proposal (its transform ID naming the algorithm its authentication
// attribute repeats, RFC 2407 section 4.4.3) and an ESP proposal without
// authentication (RFC 2409 section 9); readPhase2 reads it back, and
// refuses an ESP half that authenticates or an AH transform whose ID and
// attribute disagree.
func TestBundleProposals(t *testing.T) {
	s := Phase2{AH: true, ESP: isakmp.ESP3DES, AuthAlg: isakmp.AuthHMACSHA, Group: 2}
	ps := s.proposals(1, 0x1111, 0x2222, isakmp.EncapTunnel)
	if len(ps) != 2 || ps[0].Number != 1 || ps[1].Number != 1 || ps[0].Protocol != isakmp.ProtoAH || ps[1].Protocol != isakmp.ProtoESP ||
		ps[0].Transforms[0].ID != isakmp.AHSHA || ps[1].Transforms[0].ID != isakmp.ESP3DES {
		t.Fatalf("%+v", ps)
	}
	// The wire form round-trips.
	b := isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: ps}.Marshal()
	sa, err := isakmp.ParseSA(b)
	if err != nil {
		t.Fatal(err)
	}
	got, encap, spi, aux, err := readPhase2(sa.Proposals)
	if err != nil || !got.same(s) || encap != isakmp.EncapTunnel || spi != 0x1111 || aux != 0x2222 {
		t.Fatalf("%+v %d %x %x %v", got, encap, spi, aux, err)
	}
	ah := Phase2{AH: true, AuthAlg: isakmp.AuthHMACSHA256}
	if ps := ah.proposals(3, 0x3333, 0, isakmp.EncapTunnel); len(ps) != 1 || ps[0].Protocol != isakmp.ProtoAH || ps[0].Transforms[0].ID != isakmp.AHSHA256 {
		t.Fatalf("AH %+v", ps)
	}
	// ESP half with its own authentication.
	bad := s.proposals(1, 0x1111, 0x2222, isakmp.EncapTunnel)
	esp := Phase2{ESP: isakmp.ESP3DES, AuthAlg: isakmp.AuthHMACSHA}
	bad[1].Transforms[0] = esp.transform(1, isakmp.EncapTunnel)
	if _, _, _, _, err := readPhase2(bad); err == nil {
		t.Fatal("bundle ESP with authentication accepted")
	}
	// AH transform ID and attribute disagree.
	bad = ah.proposals(1, 0x1111, 0, isakmp.EncapTunnel)
	bad[0].Transforms[0].ID = isakmp.AHMD5
	if _, _, _, _, err := readPhase2(bad); err == nil {
		t.Fatal("AH_MD5 with HMAC-SHA-256 accepted")
	}
	// A bundle is never taken through a NAT (UDP-encapsulated tunnel).
	ta, _, _, _, _ := pair(t, false, Phase1{Encr: isakmp.Encr3DES, Hash: isakmp.HashSHA1, Auth: isakmp.AuthPSK, Group: 2}, s)
	udp := s.proposals(1, 0x1111, 0x2222, isakmp.EncapUDPTunnel)
	if c, _, _ := ta.selectPhase2(&exchange{}, udp); c != nil {
		t.Fatal("bundle accepted in UDP-encapsulated tunnel mode")
	}
	if c, spi, aux := ta.selectPhase2(&exchange{}, ps); c == nil || spi != 0x1111 || aux != 0x2222 {
		t.Fatal("bundle not selected")
	}
}
