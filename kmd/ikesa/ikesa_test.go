package ikesa

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/task"
	"github.com/sitesec/sitesec/kmd/transform"
)

func establish(t *testing.T, seed uint64) (*world, *SA) {
	cfg := testConfig("secret")
	w := newWorld(t, seed, cfg, mirror(cfg))
	sa := w.initiate(cfg)
	// IKE_SA_INIT request, response; IKE_AUTH request, response.
	for i, want := range []State{StateConnecting, StateConnecting, StateConnecting, StateEstablished} {
		if !w.step() {
			t.Fatalf("message %d missing", i+1)
		}
		if i == 3 && sa.State != want {
			t.Fatalf("after message %d: state %v", i+1, sa.State)
		}
	}
	if w.step() {
		t.Fatal("extra message after IKE_AUTH")
	}
	r := w.r.only(t)
	if r.SPIi != sa.SPIi || r.SPIr != sa.SPIr || !bytes.Equal(r.keys.D, sa.keys.D) {
		t.Fatal("SAs disagree")
	}
	w.checkChildren(t, 1)
	return w, sa
}

func TestEstablish(t *testing.T) {
	w, sa := establish(t, 1)
	if sa.PeerID.String() != "198.51.100.1" || w.r.only(t).PeerID.String() != "192.0.2.1" {
		t.Fatalf("peer ids %s", sa.PeerID)
	}
	if sa.NATLocal || sa.NATRemote {
		t.Fatal("NAT detected without NAT")
	}
	if w.r.table.HalfOpen() != 0 {
		t.Fatal("responder still half-open")
	}
}

func TestEveryGroupAndCipher(t *testing.T) {
	for _, g := range transform.Groups {
		for _, enc := range []string{"aes-128-cbc", "aes-256-gcm", "chacha20-poly1305"} {
			ike, err := transform.IKESuite(enc, "sha-384", "group"+itoa(g))
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig("k")
			cfg.IKEProposals = transform.Proposals([]transform.Suite{ike}, nil)
			w := newWorld(t, uint64(g), cfg, mirror(cfg))
			w.initiate(cfg)
			w.run()
			w.l.only(t)
			w.checkChildren(t, 1)
		}
	}
}

func itoa(g uint16) string {
	return string([]byte{byte('0' + g/10), byte('0' + g%10)})
}

func TestWrongPSK(t *testing.T) {
	l := testConfig("one")
	r := mirror(testConfig("two"))
	w := newWorld(t, 2, l, r)
	sa := w.initiate(l)
	w.run()
	if sa.State != StateDead || len(w.r.sas()) != 0 || len(w.l.installed)+len(w.r.installed) != 0 {
		t.Fatalf("state %v, right SAs %d", sa.State, len(w.r.sas()))
	}
}

func TestNoProposalChosen(t *testing.T) {
	l := testConfig("k")
	r := mirror(testConfig("k"))
	ike, _ := transform.IKESuite("aes-128-cbc", "sha1", "group14")
	r.IKEProposals = transform.Proposals([]transform.Suite{ike}, nil)
	w := newWorld(t, 3, l, r)
	sa := w.initiate(l)
	w.run()
	if sa.State != StateDead || len(w.r.sas()) != 0 {
		t.Fatal("SA survived NO_PROPOSAL_CHOSEN")
	}
}

func TestInvalidKERetry(t *testing.T) {
	l := testConfig("k")
	// The initiator offers group 19 first, then 31; the responder only 31.
	a, _ := transform.IKESuite("aes-256-gcm", "sha-256", "group19")
	b, _ := transform.IKESuite("aes-256-gcm", "sha-256", "group31")
	l.IKEProposals = transform.Proposals([]transform.Suite{a, b}, nil)
	r := mirror(testConfig("k"))
	r.IKEProposals = transform.Proposals([]transform.Suite{b}, nil)
	w := newWorld(t, 4, l, r)
	sa := w.initiate(l)
	w.run()
	if sa.State != StateEstablished || sa.Suite.DH != 31 {
		t.Fatalf("state %v group %d", sa.State, sa.Suite.DH)
	}
}

func TestCookie(t *testing.T) {
	cfg := testConfig("k")
	w := newWorld(t, 5, cfg, mirror(cfg))
	w.r.table.CookieThreshold = 1
	// One half-open SA from a peer that never continues.
	stale, _ := NewInitiator(cfg, netip.MustParseAddrPort("192.0.2.9:500"), netip.MustParseAddrPort("198.51.100.1:500"), w.l.table.Options)
	w.l.table.Add(stale)
	stale.Start()
	w.step()
	w.queue = nil // its response is lost
	if w.r.table.HalfOpen() != 1 {
		t.Fatal("no half-open SA")
	}
	sa := w.initiate(cfg)
	w.run()
	if sa.State != StateEstablished || w.r.table.Stats.CookiesSent != 1 {
		t.Fatalf("state %v cookies %d", sa.State, w.r.table.Stats.CookiesSent)
	}
	// The half-open SA goes after HalfOpenTimeout.
	stale.State = StateDead // its initiator gave up; keep it off the wire
	w.advance(HalfOpenTimeout + time.Second)
	if w.r.table.HalfOpen() != 0 || len(w.r.sas()) != 1 {
		t.Fatalf("half-open %d, SAs %d", w.r.table.HalfOpen(), len(w.r.sas()))
	}
}

func TestRetransmission(t *testing.T) {
	cfg := testConfig("k")
	w := newWorld(t, 6, cfg, mirror(cfg))
	lost := 0
	w.drop = func(d datagram) bool {
		// Lose the first IKE_AUTH response.
		if h, _ := message.ParseHeader(d.raw); h.Exchange == message.IKEAuth && h.IsResponse() && lost == 0 {
			lost++
			return true
		}
		return false
	}
	sa := w.initiate(cfg)
	w.run()
	if sa.State != StateConnecting {
		t.Fatal("established without the response")
	}
	w.advance(5 * time.Second)
	if sa.State != StateEstablished {
		t.Fatalf("state %v after retransmission", sa.State)
	}
	r := w.r.only(t)
	if r.mgr.Stats.RetransmitsAnswered != 1 || len(w.r.installed) != 1 {
		t.Fatal("responder did not answer the retransmission from its cache")
	}
}

func TestPeerGone(t *testing.T) {
	cfg := testConfig("k")
	w := newWorld(t, 7, cfg, mirror(cfg))
	w.drop = func(datagram) bool { return true }
	sa := w.initiate(cfg)
	w.advance(5 * time.Minute)
	if sa.State != StateDead {
		t.Fatalf("state %v", sa.State)
	}
	if sa.mgr.Stats.Retransmits != task.DefaultTries {
		t.Fatalf("%d retransmits", sa.mgr.Stats.Retransmits)
	}
}

func TestNAT(t *testing.T) {
	cfg := testConfig("k")
	w := newWorld(t, 8, cfg, mirror(cfg))
	w.nat = netip.MustParseAddrPort("203.0.113.7:0")
	sa := w.initiate(cfg)
	w.run()
	r := w.r.only(t)
	if !sa.NATLocal || sa.NATRemote || !r.NATRemote || r.NATLocal {
		t.Fatalf("NAT flags: left %v/%v right %v/%v", sa.NATLocal, sa.NATRemote, r.NATLocal, r.NATRemote)
	}
	if sa.Local.Port() != 4500 || sa.Remote.Port() != 4500 || r.Local.Port() != 4500 {
		t.Fatalf("did not move to 4500: %v %v", sa.Local, r.Local)
	}
	w.advance(45 * time.Second)
	if w.l.keepalive < 2 || w.r.keepalive != 0 {
		t.Fatalf("keepalives left %d right %d", w.l.keepalive, w.r.keepalive)
	}
}

func TestChildCreateRekeyDelete(t *testing.T) {
	w, sa := establish(t, 9)
	if err := sa.CreateChild(); err != nil {
		t.Fatal(err)
	}
	w.run()
	w.checkChildren(t, 2)
	old := sa.Children[0]
	if err := sa.RekeyChild(old); err != nil {
		t.Fatal(err)
	}
	w.run()
	w.checkChildren(t, 2)
	if sa.Child(old.SPIIn) != nil || len(w.l.replaced) != 1 || w.l.replaced[0] != old.SPIIn {
		t.Fatal("old CHILD SA not replaced and deleted")
	}
	if sa.Children[1].Reqid != old.Reqid {
		t.Fatal("rekey changed the reqid")
	}
	if err := sa.DeleteChild(sa.Children[0]); err != nil {
		t.Fatal(err)
	}
	w.run()
	w.checkChildren(t, 1)
}

func TestPFS(t *testing.T) {
	cfg := testConfig("k")
	esp, _ := transform.ESPSuite("aes-256-gcm", "", "group31")
	cfg.ESPProposals = transform.Proposals([]transform.Suite{esp}, nil)
	cfg.PFSGroup = 31
	w := newWorld(t, 10, cfg, mirror(cfg))
	sa := w.initiate(cfg)
	w.run()
	w.checkChildren(t, 1)
	first := sa.Children[0]
	if first.Suite.DH != 0 {
		t.Fatal("IKE_AUTH CHILD SA carries a DH group")
	}
	sa.RekeyChild(first)
	w.run()
	w.checkChildren(t, 1)
	if sa.Children[0].Suite.DH != 31 {
		t.Fatalf("rekey without PFS: %+v", sa.Children[0].Suite)
	}
}

func TestTSNarrowing(t *testing.T) {
	l := testConfig("k")
	l.LocalTS = []message.Selector{PrefixSelector(netip.MustParsePrefix("10.0.0.0/8"))}
	l.RemoteTS = []message.Selector{PrefixSelector(netip.MustParsePrefix("0.0.0.0/0"))}
	r := mirror(testConfig("k"))
	w := newWorld(t, 11, l, r)
	sa := w.initiate(l)
	w.run()
	w.checkChildren(t, 1)
	c := sa.Children[0]
	if c.LocalTS[0].Start != netip.MustParseAddr("10.0.0.0") || c.LocalTS[0].End != netip.MustParseAddr("10.0.255.255") ||
		c.RemoteTS[0].Start != netip.MustParseAddr("10.1.0.0") {
		t.Fatalf("not narrowed: %v %v", c.LocalTS, c.RemoteTS)
	}
	// Disjoint selectors: TS_UNACCEPTABLE, the IKE SA survives.
	l2 := testConfig("k")
	l2.LocalTS = []message.Selector{PrefixSelector(netip.MustParsePrefix("172.16.0.0/12"))}
	w2 := newWorld(t, 12, l2, r)
	sa2 := w2.initiate(l2)
	w2.run()
	if sa2.State != StateEstablished || len(w2.l.installed) != 0 {
		t.Fatalf("state %v, %d CHILD SAs", sa2.State, len(w2.l.installed))
	}
}

func TestSimultaneousChildRekey(t *testing.T) {
	for seed := uint64(20); seed < 28; seed++ {
		w, sa := establish(t, seed)
		r := w.r.only(t)
		sa.RekeyChild(sa.Children[0])
		r.RekeyChild(r.Children[0])
		// Both requests cross on the wire, then both responses.
		w.run()
		w.checkChildren(t, 1)
		if len(sa.Children) != 1 || len(r.Children) != 1 {
			t.Fatalf("seed %d: children left %d right %d", seed, len(sa.Children), len(r.Children))
		}
		// Both rekeys completed (a real collision): three CHILD SAs were
		// created on each side and two deleted, the redundant one and
		// the old one (RFC 7296 section 2.8.1).
		if sa.Stats.ChildCreated != 3 || r.Stats.ChildCreated != 3 || sa.Stats.ChildDeleted != 2 || r.Stats.ChildDeleted != 2 {
			t.Fatalf("seed %d: created %d/%d deleted %d/%d", seed, sa.Stats.ChildCreated, r.Stats.ChildCreated, sa.Stats.ChildDeleted, r.Stats.ChildDeleted)
		}
	}
}

func TestIKERekey(t *testing.T) {
	w, sa := establish(t, 30)
	child := sa.Children[0]
	if err := sa.Rekey(); err != nil {
		t.Fatal(err)
	}
	w.run()
	if sa.State != StateDead {
		t.Fatalf("old SA %v", sa.State)
	}
	n := w.l.only(t)
	r := w.r.only(t)
	if n.SPIi == sa.SPIi || n.SPIi != r.SPIi || n.SPIr != r.SPIr || n.Children[0] != child {
		t.Fatal("new IKE SA does not match or lost its CHILD SA")
	}
	w.checkChildren(t, 1)
	// The new SA works: rekey its CHILD SA.
	n.RekeyChild(child)
	w.run()
	w.checkChildren(t, 1)
	// The new SA's IDs started at 0: CREATE_CHILD_SA and the delete.
	if n.mgr.NextID() != 2 {
		t.Fatalf("message IDs did not restart: %d", n.mgr.NextID())
	}
}

func TestSimultaneousIKERekey(t *testing.T) {
	for seed := uint64(40); seed < 46; seed++ {
		w, sa := establish(t, seed)
		r := w.r.only(t)
		sa.Rekey()
		r.Rekey()
		w.run()
		l2, r2 := w.l.only(t), w.r.only(t)
		if l2.SPIi != r2.SPIi || l2.SPIr != r2.SPIr || l2 == sa {
			t.Fatalf("seed %d: survivors differ", seed)
		}
		if len(l2.Children) != 1 || len(r2.Children) != 1 {
			t.Fatalf("seed %d: CHILD SAs %d %d", seed, len(l2.Children), len(r2.Children))
		}
		w.checkChildren(t, 1)
		if len(w.l.sas())+len(w.r.sas()) != 2 {
			t.Fatalf("seed %d: %d + %d SAs left", seed, len(w.l.sas()), len(w.r.sas()))
		}
	}
}

func TestLifetimes(t *testing.T) {
	w, sa := establish(t, 50)
	spi := sa.Children[0].SPIIn
	// Past 90% of the IKE lifetime the IKE SA is rekeyed; the CHILD SA
	// lives on.
	w.advance(time.Hour)
	n := w.l.only(t)
	if n == sa || n.Child(spi) == nil {
		t.Fatal("IKE SA not rekeyed before expiry")
	}
	w.advance(8 * time.Hour)
	w.checkChildren(t, 1)
	if w.l.only(t).Child(spi) != nil {
		t.Fatal("CHILD SA not rekeyed before expiry")
	}
}

func TestDPD(t *testing.T) {
	cfg := testConfig("k")
	cfg.DPDInterval, cfg.DPDThreshold = 10*time.Second, 3
	w := newWorld(t, 60, cfg, mirror(cfg))
	sa := w.initiate(cfg)
	w.run()
	w.advance(25 * time.Second)
	if sa.Stats.DPDAnswered < 2 || sa.State != StateEstablished {
		t.Fatalf("DPD answered %d", sa.Stats.DPDAnswered)
	}
	// The peer goes silent: three intervals later the SA is cleared.
	w.drop = func(datagram) bool { return true }
	w.advance(45 * time.Second)
	if sa.State != StateDead || len(w.l.installed) != 0 {
		t.Fatalf("state %v after a dead peer", sa.State)
	}
}

func TestDeleteIKE(t *testing.T) {
	w, sa := establish(t, 70)
	sa.Delete()
	w.run()
	if sa.State != StateDead || len(w.r.sas()) != 0 || len(w.l.installed)+len(w.r.installed) != 0 {
		t.Fatal("delete left state behind")
	}
}

func TestFragmentation(t *testing.T) {
	cfg := testConfig("k")
	cfg.FragmentSize = 120
	w := newWorld(t, 80, cfg, mirror(cfg))
	frags := 0
	w.drop = func(d datagram) bool {
		if h, _ := message.ParseHeader(d.raw); h.NextPayload == message.PayloadSKF {
			frags++
		}
		return false
	}
	sa := w.initiate(cfg)
	w.run()
	if sa.State != StateEstablished || frags < 4 {
		t.Fatalf("state %v, %d fragments", sa.State, frags)
	}
	w.checkChildren(t, 1)
}

func BenchmarkEstablish(b *testing.B) {
	cfg := testConfig("k")
	for b.Loop() {
		w := newWorld(b, 1, cfg, mirror(cfg))
		w.initiate(cfg)
		w.run()
	}
}

// TestRejectMalformed: an authenticated request with an unknown critical
// payload is answered with UNSUPPORTED_CRITICAL_PAYLOAD, one with a
// payload its exchange does not allow with INVALID_SYNTAX; the SA lives.
func TestRejectMalformed(t *testing.T) {
	w, sa := establish(t, 90)
	r := w.r.only(t)
	for i, tc := range []struct {
		payloads []message.Payload
		want     message.NotifyType
	}{
		{[]message.Payload{&message.Unknown{PayloadType: 200, Data: []byte{1}}}, message.NotifyUnsupportedCriticalPayload},
		{[]message.Payload{&message.SA{}}, message.NotifyInvalidSyntax},
	} {
		// The left side's next request IDs are 2 and 3.
		m := &message.Message{Header: message.Header{Exchange: message.Informational, MessageID: uint32(2 + i)}, Payloads: tc.payloads}
		raw, err := sa.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tc.payloads[0].(*message.Unknown); ok {
			// Set the critical bit of the unknown payload, inside SK: seal
			// again by hand.
			inner := []byte{0, 0x80, 0, 5, 1}
			hdr := m.Header
			hdr.SPIi, hdr.SPIr, hdr.Flags = sa.SPIi, sa.SPIr, message.FlagInitiator
			raw = [][]byte{sealRaw(t, sa, hdr, 200, inner)}
		}
		before := r.mgr.Stats.ResponsesSent
		w.queue = append(w.queue, datagram{from: w.l, to: w.r, src: sa.Local, dst: r.Local, raw: raw[0]})
		var resp []byte
		w.drop = func(d datagram) bool {
			if d.from == w.r {
				resp = d.raw
				return true
			}
			return false
		}
		w.run()
		w.drop = nil
		if r.mgr.Stats.ResponsesSent != before+1 || resp == nil {
			t.Fatalf("case %d: no response", i)
		}
		p, _ := message.Parse(resp)
		got, err := p.Open(sa.in)
		if err != nil {
			t.Fatal(err)
		}
		if n := got.ErrorNotify(); n == nil || n.NotifyType != tc.want {
			t.Fatalf("case %d: response %v", i, got)
		}
	}
	if r.State != StateEstablished {
		t.Fatal("SA died")
	}
	sa.mgr.SetIDs(4, 0)
	sa.CreateChild()
	w.run()
	w.checkChildren(t, 2)
}

// sealRaw seals a raw inner payload chain whose first payload has type
// first.
func sealRaw(t *testing.T, sa *SA, h message.Header, first message.PayloadType, inner []byte) []byte {
	h.NextPayload = message.PayloadSK
	h.Version = message.Version
	bodyLen := sa.out.BodyLen(len(inner))
	h.Length = uint32(message.HeaderLen + 4 + bodyLen)
	aad := binaryHeader(h)
	aad = append(aad, byte(first), 0, byte((4+bodyLen)>>8), byte(4+bodyLen))
	body, err := sa.out.Seal(aad, inner)
	if err != nil {
		t.Fatal(err)
	}
	return append(aad, body...)
}

func binaryHeader(h message.Header) []byte {
	b := make([]byte, 0, message.HeaderLen)
	for i := 7; i >= 0; i-- {
		b = append(b, byte(h.SPIi>>(8*i)))
	}
	for i := 7; i >= 0; i-- {
		b = append(b, byte(h.SPIr>>(8*i)))
	}
	b = append(b, byte(h.NextPayload), h.Version, byte(h.Exchange), h.Flags)
	b = append(b, byte(h.MessageID>>24), byte(h.MessageID>>16), byte(h.MessageID>>8), byte(h.MessageID))
	return append(b, byte(h.Length>>24), byte(h.Length>>16), byte(h.Length>>8), byte(h.Length))
}

// TestPFSInvalidKE: the initiator's PFS group is refused with
// INVALID_KE_PAYLOAD in CREATE_CHILD_SA and the rekey is retried with the
// responder's group (RFC 7296 section 1.3).
func TestPFSInvalidKE(t *testing.T) {
	l := testConfig("k")
	a, _ := transform.ESPSuite("aes-128-gcm", "", "group19")
	b, _ := transform.ESPSuite("aes-128-gcm", "", "group31")
	l.ESPProposals = transform.Proposals([]transform.Suite{a, b}, nil)
	l.PFSGroup = 19
	r := mirror(testConfig("k"))
	r.ESPProposals = transform.Proposals([]transform.Suite{b}, nil)
	r.PFSGroup = 31
	w := newWorld(t, 95, l, r)
	sa := w.initiate(l)
	w.run()
	w.checkChildren(t, 1)
	sa.RekeyChild(sa.Children[0])
	w.run()
	w.checkChildren(t, 1)
	if g := sa.Children[0].Suite.DH; g != 31 {
		t.Fatalf("PFS group %d", g)
	}
	if sa.mgr.NextID() != 5 { // AUTH, rekey refused, rekey, delete
		t.Fatalf("next ID %d", sa.mgr.NextID())
	}
}

// TestInstallFailure: the responder cannot install (fwdd away): the IKE SA
// still comes up with TEMPORARY_FAILURE for the CHILD SA, and a later
// CREATE_CHILD_SA succeeds.
func TestInstallFailure(t *testing.T) {
	cfg := testConfig("k")
	w := newWorld(t, 110, cfg, mirror(cfg))
	w.r.fail = true
	sa := w.initiate(cfg)
	w.run()
	if sa.State != StateEstablished || len(sa.Children) != 0 || w.r.only(t).State != StateEstablished {
		t.Fatalf("state %v, %d CHILD SAs", sa.State, len(sa.Children))
	}
	w.r.fail = false
	sa.CreateChild()
	w.run()
	w.checkChildren(t, 1)
}
