package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
)

// fakeBus plays fwdd for one kmd: transmitted datagrams go to the other
// kmd's punt path, installs and deletes are recorded.
type fakeBus struct {
	mu   sync.Mutex
	peer *Server
	// route, when set, picks the kmd behind a destination address (nil:
	// the address is unreachable).
	route    func(dst netip.Addr) *Server
	installs []*pb.SAInstall
	deletes  []*pb.SADelete
	sent     int
	prev     *pb.SAListReply
	// log, when set, records installs and deletes of several buses in
	// the order fwdd would see them, under name.
	log  *eventLog
	name string
	// updates are the SAUpdate requests (Not Installed).
	updates []*pb.SAUpdate
	// hook, when set, sees each request before it is recorded (and may
	// hold it, as a busy fwdd would).
	hook func(verb string, req proto.Message)
}

type eventLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *eventLog) add(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, a...))
}

// index returns the position of line in the log, or -1.
func (l *eventLog) index(line string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, x := range l.lines {
		if x == line {
			return i
		}
	}
	return -1
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (b *fakeBus) Publish(daemon, verb string, m proto.Message) error {
	if daemon != subject.Fwdd || verb != subject.VerbTransmit {
		return errors.New("unexpected publish")
	}
	d := m.(*pb.IKEDatagram)
	b.mu.Lock()
	b.sent++
	b.mu.Unlock()
	if d.GetNatKeepalive() {
		return nil
	}
	// The peer sees our source as its remote and our destination as its
	// local address.
	b.mu.Lock()
	to := b.peer
	b.mu.Unlock()
	if b.route != nil {
		a, _ := netip.AddrFromSlice(d.GetRemote().GetAddress())
		if to = b.route(a); to == nil {
			return nil
		}
	}
	to.Punt(&pb.IKEDatagram{Local: d.GetRemote(), Remote: d.GetLocal(), Payload: d.GetPayload()})
	return nil
}

func (b *fakeBus) Request(ctx context.Context, daemon, verb string, req, rep proto.Message) error {
	b.mu.Lock()
	hook := b.hook
	b.mu.Unlock()
	if hook != nil {
		hook(verb, req)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch verb {
	case subject.VerbSAInstall:
		in := proto.Clone(req).(*pb.SAInstall)
		b.installs = append(b.installs, in)
		if b.log != nil {
			for _, sa := range in.Sas {
				b.log.add("%s install %s %08x", b.name, sa.Direction, sa.Spi)
			}
		}
	case subject.VerbSADelete:
		d := proto.Clone(req).(*pb.SADelete)
		b.deletes = append(b.deletes, d)
		if b.log != nil {
			for _, k := range d.Sas {
				b.log.add("%s delete %s %08x", b.name, k.Direction, k.Spi)
			}
		}
	case subject.VerbSAUpdate:
		b.updates = append(b.updates, proto.Clone(req).(*pb.SAUpdate))
	case subject.VerbSAList:
		if b.prev == nil {
			return errors.New("no fwdd")
		}
		proto.Merge(rep, b.prev)
	default:
		return errors.New("unexpected request " + verb)
	}
	return nil
}

func (b *fakeBus) count() (int, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.installs), len(b.deletes)
}

func config(local, remote, psk string, mode pb.EstablishTunnels, src, dst string) *pb.Config {
	return &pb.Config{
		ServiceSets: []*pb.ServiceSet{{
			Name:            "ss1",
			IpsecVpnRules:   []string{"r1"},
			IpsecVpnOptions: &pb.IPsecVPNOptions{LocalGateway: &pb.LocalGateway{Address: local}},
		}},
		IpsecVpn: &pb.IPsecVPN{
			EstablishTunnels: mode,
			Rules: []*pb.Rule{{Name: "r1", MatchDirection: pb.MatchDirection_MATCH_DIRECTION_INPUT, Terms: []*pb.Term{{
				Name: "t1",
				From: &pb.TermFrom{SourceAddress: []string{src}, DestinationAddress: []string{dst}},
				Then: &pb.TermThen{RemoteGateway: remote, Sa: &pb.TermThen_Dynamic{Dynamic: &pb.DynamicSA{IkePolicy: "ike1", IpsecPolicy: "ipsec1"}}},
			}}}},
			Ike: &pb.IKE{
				Proposals: []*pb.IKEProposal{{Name: "p1", AuthenticationMethod: "pre-shared-keys", DhGroup: "group19", AuthenticationAlgorithm: "sha-256", EncryptionAlgorithm: "aes-256-gcm"}},
				Policies:  []*pb.IKEPolicy{{Name: "ike1", Version: 2, Proposals: []string{"p1"}, PreSharedKey: &pb.Key{Value: []byte(psk)}}},
			},
			Ipsec: &pb.IPsec{
				Proposals: []*pb.IPsecProposal{{Name: "e1", Protocol: pb.IPsecProtocol_IPSEC_PROTOCOL_ESP, EncryptionAlgorithm: "aes-128-gcm"}},
				Policies:  []*pb.IPsecPolicy{{Name: "ipsec1", Proposals: []string{"e1"}, PerfectForwardSecrecyKeys: "group14"}},
			},
		},
	}
}

func pair(t *testing.T) (l, r *Server, lb, rb *fakeBus) {
	l, r = New(), New()
	l.Rand = seeded(1)
	r.Rand = seeded(2)
	lb, rb = &fakeBus{peer: r}, &fakeBus{peer: l}
	ctx := t.Context()
	l.StartLocal(ctx, lb)
	r.StartLocal(ctx, rb)
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		l.Stop(c)
		r.Stop(c)
	})
	return
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestTwoKMDs(t *testing.T) {
	l, r, lb, rb := pair(t)
	lc := config("192.0.2.1", "198.51.100.1", "s3cret", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24")
	rc := config("198.51.100.1", "192.0.2.1", "s3cret", pb.EstablishTunnels_ESTABLISH_TUNNELS_UNSPECIFIED, "10.1.0.0/24", "10.0.0.0/24")
	ctx := t.Context()
	if err := r.Apply(ctx, nil, rc); err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(ctx, nil, lc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "installs", func() bool { a, _ := lb.count(); b, _ := rb.count(); return a == 1 && b == 1 })

	in := lb.installs[0]
	if len(in.Sas) != 2 || in.Sas[0].Direction != pb.Direction_DIRECTION_INBOUND || in.Sas[1].Direction != pb.Direction_DIRECTION_OUTBOUND {
		t.Fatal("install is not inbound then outbound")
	}
	out := rb.installs[0]
	if in.Sas[0].Spi != out.Sas[1].Spi || string(in.Sas[0].EncryptionKey) != string(out.Sas[1].EncryptionKey) {
		t.Fatal("left inbound does not match right outbound")
	}
	if in.Sas[0].EncryptionAlgorithm != "aes-128-gcm" || len(in.Sas[0].EncryptionKey) != 20 || in.Sas[0].Rule != "r1" || in.Sas[0].ServiceSet != "ss1" {
		t.Fatalf("SA %+v", in.Sas[0])
	}
	// The IPsec SA's identities are the proxy IDs, and fwdd learns when
	// kmd will rekey (shown as the soft lifetime).
	if in.Sas[0].LocalIdentity != "ipv4_subnet(any:0,[0..7]=10.0.0.0/24)" || in.Sas[0].RemoteIdentity != "ipv4_subnet(any:0,[0..7]=10.1.0.0/24)" {
		t.Errorf("identities %q %q", in.Sas[0].LocalIdentity, in.Sas[0].RemoteIdentity)
	}
	if lt := in.Sas[0].Lifetime; lt.RekeySeconds == 0 || lt.RekeySeconds >= lt.HardSeconds || lt.SoftSeconds != 0 {
		t.Errorf("lifetime %v", lt)
	}
	rep := l.Op(ctx, &pb.OpRequest{Words: strings.Fields("show services ipsec-vpn ike security-associations detail")})
	sas := rep.GetIkeSecurityAssociations().GetSas()
	if rep.Error != "" || len(sas) != 1 || sas[0].State != "matured" || sas[0].Role != "Initiator" || sas[0].EncryptionAlgorithm != "aes-256-gcm" || sas[0].DhGroup != "19" {
		t.Fatalf("show: %v", rep)
	}
	if p2 := sas[0].Phase2; len(p2) != 1 || p2[0].LocalIdentity != "ipv4_subnet(any:0,[0..7]=10.0.0.0/24)" || p2[0].InProgress {
		t.Fatalf("phase 2: %v", p2)
	}
	st := r.Op(ctx, &pb.OpRequest{Words: strings.Fields("show services ipsec-vpn ike statistics")})
	if p := st.GetIkeStatistics().GetPeers(); len(p) != 1 || p[0].Counters["ipsec-sas-created"] != 1 {
		t.Fatalf("statistics: %v", st)
	}
	// clear ike statistics starts the counters again from zero; a peer
	// that matches nothing clears nothing.
	if rep := r.Op(ctx, &pb.OpRequest{Words: strings.Fields("clear services ipsec-vpn ike statistics 203.0.113.1")}); rep.Error != "" {
		t.Fatal(rep.Error)
	}
	st = r.Op(ctx, &pb.OpRequest{Words: strings.Fields("show services ipsec-vpn ike statistics")})
	if p := st.GetIkeStatistics().GetPeers(); len(p) != 1 || p[0].Counters["ipsec-sas-created"] != 1 {
		t.Fatalf("statistics after clearing another peer: %v", st)
	}
	if rep := r.Op(ctx, &pb.OpRequest{Words: strings.Fields("clear services ipsec-vpn ike statistics")}); rep.Error != "" {
		t.Fatal(rep.Error)
	}
	st = r.Op(ctx, &pb.OpRequest{Words: strings.Fields("show services ipsec-vpn ike statistics")})
	if p := st.GetIkeStatistics().GetPeers(); len(p) != 1 || p[0].Counters["ipsec-sas-created"] != 0 || p[0].Counters["responses-sent"] != 0 {
		t.Fatalf("statistics after clear: %v", st)
	}

	// fwdd reports the soft lifetime: the CHILD SA is rekeyed with PFS
	// and the new outbound SA replaces the old one.
	l.SAEvent(&pb.SAEvent{Kind: pb.SAEventKind_SA_EVENT_KIND_SOFT_LIFETIME, Sa: &pb.SAKey{Spi: in.Sas[0].Spi}})
	waitFor(t, "rekey", func() bool { a, d := lb.count(); return a == 2 && d == 1 })
	if lb.installs[1].ReplacesSpi != in.Sas[1].Spi {
		t.Fatalf("rekey replaces %08x, want %08x", lb.installs[1].ReplacesSpi, in.Sas[1].Spi)
	}

	// fwdd restarted and lost the marks of nothing: the SA sync gives the
	// inbound SA and the outbound one past its high-water mark.
	cur := lb.installs[1]
	sync := l.Sync(&pb.SASyncRequest{Marks: []*pb.SequenceMark{{Sa: &pb.SAKey{Spi: cur.Sas[1].Spi}, Sequence: 1000}}})
	if len(sync.Sas) != 2 || sync.Sas[1].InitialSequence != 1000+seqMargin {
		t.Fatalf("sync: %v", sync.Sas)
	}

	// clear ike security-associations deletes the IKE SA and its CHILD SA
	// on both sides; the immediately-established tunnel comes back.
	l.Retry = 300 * time.Millisecond
	if rep := l.Op(ctx, &pb.OpRequest{Words: strings.Fields("clear services ipsec-vpn ike security-associations 198.51.100.1")}); rep.Error != "" {
		t.Fatal(rep.Error)
	}
	waitFor(t, "clear", func() bool {
		return len(l.Op(ctx, &pb.OpRequest{Words: strings.Fields("show services ipsec-vpn ike security-associations")}).GetIkeSecurityAssociations().GetSas()) == 0 &&
			len(r.Op(ctx, &pb.OpRequest{Words: strings.Fields("show services ipsec-vpn ike security-associations")}).GetIkeSecurityAssociations().GetSas()) == 0
	})
	waitFor(t, "re-established", func() bool { a, _ := lb.count(); return a == 3 })

	// A configuration without the tunnel deletes it for good.
	rc2 := proto.Clone(rc).(*pb.Config)
	lc2 := proto.Clone(lc).(*pb.Config)
	lc2.ServiceSets[0].IpsecVpnRules = nil
	if err := l.Apply(ctx, lc, lc2); err != nil {
		t.Fatal(err)
	}
	r.Apply(ctx, rc, rc2)
	waitFor(t, "deleted by configuration", func() bool {
		return len(l.Op(ctx, &pb.OpRequest{Words: strings.Fields("show services ipsec-vpn ike security-associations")}).GetIkeSecurityAssociations().GetSas()) == 0
	})
	time.Sleep(400 * time.Millisecond)
	if a, _ := lb.count(); a != 3 {
		t.Fatal("removed tunnel came back")
	}
}

func TestAcquire(t *testing.T) {
	l, r, lb, _ := pair(t)
	ctx := t.Context()
	lc := config("192.0.2.1", "198.51.100.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_ON_TRAFFIC, "10.0.0.0/24", "10.1.0.0/24")
	rc := config("198.51.100.1", "192.0.2.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_RESPONDER_ONLY, "10.1.0.0/24", "10.0.0.0/24")
	r.Apply(ctx, nil, rc)
	l.Apply(ctx, nil, lc)
	time.Sleep(20 * time.Millisecond)
	if a, _ := lb.count(); a != 0 || lb.sent != 0 {
		t.Fatal("on-traffic tunnel started without traffic")
	}
	// The responder-only side never initiates, even on acquire.
	r.SAEvent(&pb.SAEvent{Kind: pb.SAEventKind_SA_EVENT_KIND_ACQUIRE, ServiceSet: "ss1", Rule: "r1", Term: "t1"})
	l.SAEvent(&pb.SAEvent{Kind: pb.SAEventKind_SA_EVENT_KIND_ACQUIRE, ServiceSet: "ss1", Rule: "r1", Term: "t1"})
	waitFor(t, "install", func() bool { a, _ := lb.count(); return a == 1 })
	rep := r.Op(ctx, &pb.OpRequest{Words: strings.Fields("show services ipsec-vpn ike security-associations")})
	if sas := rep.GetIkeSecurityAssociations().GetSas(); len(sas) != 1 || sas[0].Role != "" && sas[0].Role != "Responder" {
		t.Fatalf("%v", rep)
	}
}

func TestRestartMakeBeforeBreak(t *testing.T) {
	l, r, lb, _ := pair(t)
	l.RestartGrace = 10 * time.Millisecond
	ctx := t.Context()
	// fwdd still runs the SAs of the kmd that was restarted.
	lb.prev = prevSAs(0x1111, 0x2222)
	lc := config("192.0.2.1", "198.51.100.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_ON_TRAFFIC, "10.0.0.0/24", "10.1.0.0/24")
	rc := config("198.51.100.1", "192.0.2.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_UNSPECIFIED, "10.1.0.0/24", "10.0.0.0/24")
	r.Apply(ctx, nil, rc)
	l.Apply(ctx, nil, lc)
	// The tunnel comes back at once although it is on-traffic, replaces
	// the old outbound SA, and the old pair is deleted after the grace.
	waitFor(t, "old SAs deleted", func() bool { a, d := lb.count(); return a == 1 && d == 1 })
	if lb.installs[0].ReplacesSpi != 0x2222 || len(lb.deletes[0].Sas) != 2 || len(lb.deletes[0].Sas[0].Destination) != 4 {
		t.Fatalf("install %v delete %v", lb.installs[0], lb.deletes[0])
	}
}

// TestDynamicEndpoint: the right side only has an access profile; it
// answers any peer with the profile's key and narrows to the allowed
// proxy pair.
func TestDynamicEndpoint(t *testing.T) {
	l, r, lb, rb := pair(t)
	ctx := t.Context()
	rc := &pb.Config{
		ServiceSets: []*pb.ServiceSet{{Name: "dep", IpsecVpnOptions: &pb.IPsecVPNOptions{
			LocalGateway: &pb.LocalGateway{Address: "198.51.100.1"}, IkeAccessProfile: "prof"}}},
		AccessProfiles: []*pb.AccessProfile{{Name: "prof", ClientIke: &pb.AccessClientIKE{
			PreSharedKey:      &pb.Key{Value: []byte("dep-key")},
			AllowedProxyPairs: []*pb.ProxyPair{{Local: "10.1.0.0/24", Remote: "10.0.0.0/24"}},
		}}},
	}
	if err := r.Apply(ctx, nil, rc); err != nil {
		t.Fatal(err)
	}
	// The initiator asks for more than the proxy pair allows.
	lc := config("192.0.2.1", "198.51.100.1", "dep-key", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/16", "10.1.0.0/16")
	if err := l.Apply(ctx, nil, lc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "installs", func() bool { a, _ := lb.count(); b, _ := rb.count(); return a == 1 && b == 1 })
	in := rb.installs[0].Sas[0]
	if in.ServiceSet != "dep" || len(in.LocalSelectors) != 1 || net(in.LocalSelectors[0]) != "10.1.0.0-10.1.0.255" || net(in.RemoteSelectors[0]) != "10.0.0.0-10.0.0.255" {
		t.Fatalf("DEP SA %v %v %v", in.ServiceSet, in.LocalSelectors, in.RemoteSelectors)
	}
}

func net(ts *pb.TrafficSelector) string {
	a, _ := netip.AddrFromSlice(ts.StartAddress)
	b, _ := netip.AddrFromSlice(ts.EndAddress)
	return a.String() + "-" + b.String()
}

// TestBackupGateway: DPD finds the remote gateway dead and the tunnel
// fails over to backup-remote-gateway.
func TestBackupGateway(t *testing.T) {
	l, primary, lb, _ := pair(t)
	backup := New()
	bb := &fakeBus{peer: l}
	backup.StartLocal(t.Context(), bb)
	t.Cleanup(func() { backup.Stop(context.Background()) })
	var mu sync.Mutex
	primaryUp := true
	lb.route = func(dst netip.Addr) *Server {
		mu.Lock()
		defer mu.Unlock()
		switch dst.String() {
		case "198.51.100.1":
			if primaryUp {
				return primary
			}
		case "198.51.100.2":
			return backup
		}
		return nil
	}
	ctx := t.Context()
	lc := config("192.0.2.1", "198.51.100.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24")
	th := lc.IpsecVpn.Rules[0].Terms[0].Then
	th.BackupRemoteGateway = "198.51.100.2"
	th.InitiateDeadPeerDetection = true
	th.DeadPeerDetection = &pb.DeadPeerDetection{Interval: proto.Uint32(1), Threshold: proto.Uint32(2)}
	primary.Apply(ctx, nil, config("198.51.100.1", "192.0.2.1", "k", 0, "10.1.0.0/24", "10.0.0.0/24"))
	backup.Apply(ctx, nil, config("198.51.100.2", "192.0.2.1", "k", 0, "10.1.0.0/24", "10.0.0.0/24"))
	if err := l.Apply(ctx, nil, lc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "primary tunnel", func() bool { a, _ := lb.count(); return a == 1 })
	mu.Lock()
	primaryUp = false
	mu.Unlock()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if a, _ := bb.count(); a == 1 {
			break
		}
	}
	if a, _ := bb.count(); a != 1 {
		t.Fatal("no failover to the backup gateway")
	}
	sas := l.Op(ctx, &pb.OpRequest{Words: strings.Fields("show services ipsec-vpn ike security-associations")}).GetIkeSecurityAssociations().GetSas()
	if len(sas) != 1 || sas[0].RemoteAddress != "198.51.100.2" {
		t.Fatalf("%v", sas)
	}
}

// TestResponderOutboundAfterInitiator: the responder of a CHILD SA that
// replaces a live one installs its inbound SA at once but its outbound SA
// only after the initiator installed the matching inbound SA (RFC 7296
// section 2.8, make-before-break): when the old CHILD SA is deleted
// (CHILD rekey), and on the first packet on the new inbound SA (the peer's
// kmd restarted and came back with a new IKE SA). Otherwise the responder
// sends on an SPI the initiator does not know yet and packets are lost.
func TestResponderOutboundAfterInitiator(t *testing.T) {
	l, r, lb, rb := pair(t)
	r.OutboundDelay = time.Hour // only the peer's progress may move it
	log := &eventLog{}
	lb.log, lb.name, rb.log, rb.name = log, "l", log, "r"
	ctx := t.Context()
	lc := config("192.0.2.1", "198.51.100.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24")
	rc := config("198.51.100.1", "192.0.2.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_UNSPECIFIED, "10.1.0.0/24", "10.0.0.0/24")
	r.Apply(ctx, nil, rc)
	l.Apply(ctx, nil, lc)
	// A first CHILD SA has nothing to replace: both directions at once.
	waitFor(t, "installs", func() bool { a, _ := lb.count(); b, _ := rb.count(); return a == 1 && b == 1 })
	if n := len(rb.installs[0].Sas); n != 2 {
		t.Fatalf("first responder install has %d SAs", n)
	}
	old := lb.installs[0].Sas

	// CHILD rekey initiated by l.
	l.SAEvent(&pb.SAEvent{Kind: pb.SAEventKind_SA_EVENT_KIND_SOFT_LIFETIME, Sa: &pb.SAKey{Spi: old[0].Spi}})
	waitFor(t, "rekey", func() bool { _, d := rb.count(); return d == 1 })
	lNew := lb.installs[1].Sas
	if len(lNew) != 2 {
		t.Fatalf("initiator rekey install %v", lb.installs[1])
	}
	// r's new outbound SA is l's new inbound SA and the other way round.
	rIn := fmt.Sprintf("r install DIRECTION_INBOUND %08x", lNew[1].Spi)
	rOut := fmt.Sprintf("r install DIRECTION_OUTBOUND %08x", lNew[0].Spi)
	lIn := fmt.Sprintf("l install DIRECTION_INBOUND %08x", lNew[0].Spi)
	rDel := fmt.Sprintf("r delete DIRECTION_OUTBOUND %08x", old[0].Spi)
	order := []string{rIn, lIn, rOut, rDel}
	for i := 1; i < len(order); i++ {
		a, b := log.index(order[i-1]), log.index(order[i])
		if a < 0 || b < 0 || a > b {
			t.Fatalf("want %q before %q in\n%s", order[i-1], order[i], log)
		}
	}
	if rb.installs[2].ReplacesSpi != old[0].Spi {
		t.Fatalf("responder outbound replaces %08x, want %08x", rb.installs[2].ReplacesSpi, old[0].Spi)
	}

	// l's kmd restarts; fwdd still runs its SAs and the new kmd
	// re-establishes the tunnel with a new IKE SA; r answers it while
	// its old IKE SA still runs the old CHILD SA.
	stop, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.Stop(stop)
	l2 := New()
	l2.Rand = seeded(3)
	l2b := &fakeBus{peer: r, log: log, name: "l2", prev: prevSAs(lNew[0].Spi, lNew[1].Spi)}
	rb.mu.Lock()
	rb.peer = l2
	rb.mu.Unlock()
	l2.StartLocal(ctx, l2b)
	t.Cleanup(func() { l2.Stop(context.Background()) })
	l2.Apply(ctx, nil, lc)
	waitFor(t, "new IKE SA", func() bool { a, _ := l2b.count(); b, _ := rb.count(); return a == 1 && b == 4 })
	l2New := l2b.installs[0]
	if len(l2New.Sas) != 2 || l2New.ReplacesSpi != lNew[1].Spi {
		t.Fatalf("restarted initiator install %v", l2New)
	}
	if len(rb.installs[3].Sas) != 1 || rb.installs[3].Sas[0].Direction != pb.Direction_DIRECTION_INBOUND {
		t.Fatalf("responder switched its outbound SA before the initiator had the inbound one: %v", rb.installs[3])
	}
	// A restarted fwdd does not get the waiting outbound SA either.
	sync := r.Sync(&pb.SASyncRequest{Marks: []*pb.SequenceMark{{Sa: &pb.SAKey{Spi: lNew[0].Spi}, Sequence: 10}}})
	for _, sa := range sync.Sas {
		if sa.Spi == l2New.Sas[0].Spi {
			t.Fatalf("sync gave the waiting outbound SA: %v", sync.Sas)
		}
	}
	if len(sync.Sas) != 3 {
		t.Fatalf("sync: %d SAs, want both of the old CHILD SA and the new inbound", len(sync.Sas))
	}
	time.Sleep(50 * time.Millisecond)
	if b, d := rb.count(); b != 4 || d != 1 {
		t.Fatalf("responder moved before the peer sent on the new SA: %d installs, %d deletes\n%s", b, d, log)
	}
	// fwdd sees l2's first packet on the new inbound SA.
	r.SAEvent(&pb.SAEvent{Kind: pb.SAEventKind_SA_EVENT_KIND_INBOUND_ACTIVITY, Sa: &pb.SAKey{Spi: rb.installs[3].Sas[0].Spi}})
	waitFor(t, "responder outbound", func() bool { b, _ := rb.count(); return b == 5 })
	out := rb.installs[4]
	if len(out.Sas) != 1 || out.Sas[0].Spi != l2New.Sas[0].Spi || out.ReplacesSpi != lNew[0].Spi {
		t.Fatalf("responder outbound install %v, want %08x replacing %08x", out, l2New.Sas[0].Spi, lNew[0].Spi)
	}
	if _, d := rb.count(); d != 1 {
		t.Fatal("responder deleted the old CHILD SA")
	}
}

// TestResponderOutboundInFlight: the peer's first packet on the new
// inbound SA starts the outbound switch, and the peer's DELETE of the old
// CHILD SA arrives while fwdd has not answered that install yet. The old
// outbound SA must stay until the new one is in: fwdd runs installs and
// deletes on different subjects, and a delete first left the tunnel
// without an outbound SA (one ping lost around charon's CHILD rekeys in
// tests/interop, counted as "No SA" by fwdd).
func TestResponderOutboundInFlight(t *testing.T) {
	l, r, lb, rb := pair(t)
	r.OutboundDelay = time.Hour // only the peer's progress may move it
	log := &eventLog{}
	lb.log, lb.name, rb.log, rb.name = log, "l", log, "r"
	ctx := t.Context()
	r.Apply(ctx, nil, config("198.51.100.1", "192.0.2.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_UNSPECIFIED, "10.1.0.0/24", "10.0.0.0/24"))
	l.Apply(ctx, nil, config("192.0.2.1", "198.51.100.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24"))
	waitFor(t, "installs", func() bool { a, _ := lb.count(); b, _ := rb.count(); return a == 1 && b == 1 })
	old := lb.installs[0].Sas // l's inbound, outbound

	switching := make(chan struct{})
	release := make(chan struct{})
	rb.mu.Lock()
	rb.hook = func(verb string, req proto.Message) {
		if in, ok := req.(*pb.SAInstall); ok && len(in.Sas) == 1 && in.Sas[0].Direction == pb.Direction_DIRECTION_OUTBOUND {
			close(switching)
			<-release // fwdd is slow to answer the outbound switch
		}
	}
	rb.mu.Unlock()
	lb.mu.Lock()
	lb.hook = func(verb string, req proto.Message) {
		in, ok := req.(*pb.SAInstall)
		if !ok || len(in.Sas) != 2 {
			return
		}
		// l has the new CHILD SA and sends on it: r's fwdd reports the
		// activity before l's DELETE of the old one reaches r.
		go r.SAEvent(&pb.SAEvent{Kind: pb.SAEventKind_SA_EVENT_KIND_INBOUND_ACTIVITY, Sa: &pb.SAKey{Spi: in.Sas[1].Spi}})
		<-switching
	}
	lb.mu.Unlock()
	l.SAEvent(&pb.SAEvent{Kind: pb.SAEventKind_SA_EVENT_KIND_SOFT_LIFETIME, Sa: &pb.SAKey{Spi: old[0].Spi}})
	<-switching
	// l's DELETE of the old CHILD SA is on its way to r meanwhile.
	time.Sleep(100 * time.Millisecond)
	close(release)
	waitFor(t, "old CHILD SA deleted", func() bool { _, d := rb.count(); return d == 1 })
	newOut := lb.installs[1].Sas[0].Spi // l's new inbound: r's new outbound
	in, del := log.index(fmt.Sprintf("r install DIRECTION_OUTBOUND %08x", newOut)), log.index(fmt.Sprintf("r delete DIRECTION_OUTBOUND %08x", old[0].Spi))
	if in < 0 || del < 0 || del < in {
		t.Fatalf("r deleted its old outbound SA before the new one was in:\n%s", log)
	}
}

// TestResponderOutboundGrace: without news from the peer, the waiting
// outbound SA goes in after OutboundDelay.
func TestResponderOutboundGrace(t *testing.T) {
	l, r, lb, rb := pair(t)
	r.OutboundDelay = 30 * time.Millisecond
	ctx := t.Context()
	r.Apply(ctx, nil, config("198.51.100.1", "192.0.2.1", "k", 0, "10.1.0.0/24", "10.0.0.0/24"))
	l.Apply(ctx, nil, config("192.0.2.1", "198.51.100.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24"))
	waitFor(t, "installs", func() bool { a, _ := lb.count(); b, _ := rb.count(); return a == 1 && b == 1 })
	// The peer answers a new IKE SA of l's while the old one runs: l's
	// DELETE never comes (fake: r sees only the new IKE SA's CHILD SA).
	l2 := New()
	l2.Rand = seeded(4)
	l2b := &fakeBus{peer: r}
	rb.mu.Lock()
	rb.peer = l2
	rb.mu.Unlock()
	l2.StartLocal(ctx, l2b)
	t.Cleanup(func() { l2.Stop(context.Background()) })
	l2.Apply(ctx, nil, config("192.0.2.1", "198.51.100.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24"))
	waitFor(t, "grace", func() bool { b, _ := rb.count(); return b == 3 })
	if len(rb.installs[1].Sas) != 1 || len(rb.installs[2].Sas) != 1 || rb.installs[2].Sas[0].Direction != pb.Direction_DIRECTION_OUTBOUND {
		t.Fatalf("installs %v", rb.installs)
	}
}

// TestGatewayDown follows SPEC section 3 for gw-interface: an
// interface-style set's SAs go to Not Installed while its gateway is gone,
// no IKE starts meanwhile, and they are deleted when it comes back; a
// next-hop set's SAs are cleared at once.
func TestGatewayDown(t *testing.T) {
	for _, iface := range []bool{true, false} {
		t.Run(map[bool]string{true: "interface-style", false: "next-hop"}[iface], func(t *testing.T) {
			l, r, lb, _ := pair(t)
			lc := config("192.0.2.1", "198.51.100.1", "s3cret", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24")
			rc := config("198.51.100.1", "192.0.2.1", "s3cret", pb.EstablishTunnels_ESTABLISH_TUNNELS_UNSPECIFIED, "10.1.0.0/24", "10.0.0.0/24")
			if iface {
				lc.ServiceSets[0].Style = &pb.ServiceSet_InterfaceService{InterfaceService: &pb.InterfaceService{ServiceInterface: "ms-0/0/0.1"}}
			}
			// A deleted immediately-established tunnel comes back after
			// Retry.
			l.Retry = 300 * time.Millisecond
			ctx := t.Context()
			r.Apply(ctx, nil, rc)
			l.Apply(ctx, nil, lc)
			waitFor(t, "installs", func() bool { a, _ := lb.count(); return a == 1 })
			lb.mu.Lock()
			in := lb.installs[0]
			lb.mu.Unlock()

			l.GatewayEvent(&pb.GatewayEvent{ServiceSet: "ss1", Up: false})
			if iface {
				lb.mu.Lock()
				got := len(lb.updates)
				var spis []uint32
				for _, u := range lb.updates {
					if !u.NotInstalled {
						t.Errorf("update %v is not Not Installed", u)
					}
					spis = append(spis, u.Sa.Spi)
				}
				lb.mu.Unlock()
				if got != 2 || spis[0] != in.Sas[0].Spi || spis[1] != in.Sas[1].Spi {
					t.Fatalf("Not Installed updates for %08x, want the pair %08x %08x", spis, in.Sas[0].Spi, in.Sas[1].Spi)
				}
				if _, d := lb.count(); d != 0 {
					t.Fatal("SAs deleted while the gateway is down")
				}
			} else {
				waitFor(t, "cleared", func() bool { _, d := lb.count(); return d == 1 })
			}
			// No IKE while the gateway is down.
			sent := func() int { lb.mu.Lock(); defer lb.mu.Unlock(); return lb.sent }
			before := sent()
			l.mu.Lock()
			p := l.peers["ss1/r1/t1"]
			l.mu.Unlock()
			l.Initiate(p)
			time.Sleep(50 * time.Millisecond)
			if sent() != before {
				t.Fatal("IKE started with the gateway down")
			}

			l.GatewayEvent(&pb.GatewayEvent{ServiceSet: "ss1", Up: true})
			if iface {
				waitFor(t, "deleted on recovery", func() bool { _, d := lb.count(); return d >= 1 })
			}
			waitFor(t, "re-established", func() bool { a, _ := lb.count(); return a >= 2 })
		})
	}
}

// TestDynamicEndpointClients: several clients at different addresses
// connect to one access-profile set at once; each gets its own tunnel, and
// no client's CHILD SA takes over another's outbound SA in fwdd.
func TestDynamicEndpointClients(t *testing.T) {
	ctx := t.Context()
	r, rb := dynamicResponder(t)
	const n = 3
	clients := map[netip.Addr]*Server{}
	var buses []*fakeBus
	for i := range n {
		c := New()
		c.Rand = seeded(byte(20 + i))
		b := &fakeBus{peer: r}
		c.StartLocal(ctx, b)
		addr := fmt.Sprintf("192.0.2.%d", i+1)
		clients[netip.MustParseAddr(addr)] = c
		buses = append(buses, b)
		t.Cleanup(func() {
			sc, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			c.Stop(sc)
		})
	}
	rb.route = func(dst netip.Addr) *Server { return clients[dst] }
	t.Cleanup(func() {
		sc, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r.Stop(sc)
	})
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
		return true
	})
	// Outbound SAs of the responder: one per client, each installed
	// without replacing any other.
	waitFor(t, "responder outbound SAs", func() bool {
		rb.mu.Lock()
		defer rb.mu.Unlock()
		k := 0
		for _, in := range rb.installs {
			for _, sa := range in.Sas {
				if sa.Direction == pb.Direction_DIRECTION_OUTBOUND {
					k++
				}
			}
		}
		return k == n
	})
	rb.mu.Lock()
	defer rb.mu.Unlock()
	remotes := map[string]bool{}
	for _, in := range rb.installs {
		if in.ReplacesSpi != 0 {
			t.Errorf("a client's install replaces outbound SA %08x of another client", in.ReplacesSpi)
		}
		for _, sa := range in.Sas {
			if sa.Direction == pb.Direction_DIRECTION_OUTBOUND {
				a, _ := netip.AddrFromSlice(sa.Remote.Address)
				remotes[a.String()+" "+net(sa.RemoteSelectors[0])] = true
			}
		}
	}
	if len(remotes) != n {
		t.Errorf("outbound SAs %v, want one per client", remotes)
	}
}

// TestOnTrafficAfterClear: after clear ike security-associations an
// on-traffic tunnel comes back on the next packet's acquire, also when it
// arrives while the cleared IKE SA is going away (fwdd asks only every
// 10 s).
func TestOnTrafficAfterClear(t *testing.T) {
	l, r, lb, _ := pair(t)
	ctx := t.Context()
	r.Apply(ctx, nil, config("198.51.100.1", "192.0.2.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_RESPONDER_ONLY, "10.1.0.0/24", "10.0.0.0/24"))
	l.Apply(ctx, nil, config("192.0.2.1", "198.51.100.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_ON_TRAFFIC, "10.0.0.0/24", "10.1.0.0/24"))
	acquire := func() {
		l.SAEvent(&pb.SAEvent{Kind: pb.SAEventKind_SA_EVENT_KIND_ACQUIRE, ServiceSet: "ss1", Rule: "r1", Term: "t1"})
	}
	acquire()
	waitFor(t, "first install", func() bool { a, _ := lb.count(); return a == 1 })
	for round := 2; round <= 6; round++ {
		if rep := l.Op(ctx, &pb.OpRequest{Words: strings.Fields("clear services ipsec-vpn ike security-associations")}); rep.Error != "" {
			t.Fatal(rep.Error)
		}
		// Traffic keeps coming, but fwdd asks at most every 10 s: one
		// acquire, at once, while the cleared IKE SA is going away.
		done := make(chan struct{})
		go func() { defer close(done); acquire() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the acquire never returned (kmd hangs)", round)
		}
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			if a, _ := lb.count(); a >= round {
				break
			}
		}
		if a, _ := lb.count(); a < round {
			t.Fatalf("round %d: the on-traffic tunnel did not come back after clear (%d installs)", round, a)
		}
	}
}

// prevSAs is fwdd's fwdd.sa.list answer for the pair of ss1/r1/t1 between
// 192.0.2.1 and 198.51.100.1 that a restarted kmd finds.
func prevSAs(in, out uint32) *pb.SAListReply {
	local, remote := netip.MustParseAddr("192.0.2.1").AsSlice(), netip.MustParseAddr("198.51.100.1").AsSlice()
	e := func(spi uint32, dir pb.Direction, dest []byte) *pb.SAListEntry {
		return &pb.SAListEntry{Key: &pb.SAKey{Spi: spi, Direction: dir, Destination: dest}, ServiceSet: "ss1", Rule: "r1", Term: "t1",
			Local: &pb.Endpoint{Address: local, Port: 500}, Remote: &pb.Endpoint{Address: remote, Port: 500}, TunnelIndex: 1}
	}
	return &pb.SAListReply{Sas: []*pb.SAListEntry{e(in, pb.Direction_DIRECTION_INBOUND, local), e(out, pb.Direction_DIRECTION_OUTBOUND, remote)}}
}

// lockedRand is a deterministic random source that the runners of one
// kmd may share (each IKE SA draws on its own goroutine).
type lockedRand struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func (l *lockedRand) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

func seeded(b byte) *lockedRand { return &lockedRand{r: rand.NewChaCha8([32]byte{b})} }

// TestInitiateOnce: the commit of an immediately-established tunnel, the
// acquire of its first packets and a retry can ask for its IKE SA at the
// same moment; one IKE SA is started, not one each.
func TestInitiateOnce(t *testing.T) {
	ctx := t.Context()
	l, _, _, _ := pair(t)
	lc := config("192.0.2.1", "198.51.100.1", "s3cret", pb.EstablishTunnels_ESTABLISH_TUNNELS_ON_TRAFFIC, "10.0.0.0/24", "10.1.0.0/24")
	if err := l.Apply(ctx, nil, lc); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	p := l.peers["ss1/r1/t1"]
	l.mu.Unlock()
	if p == nil {
		t.Fatal("no peer ss1/r1/t1")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); l.Initiate(p) }()
	}
	wg.Wait()
	n := 0
	l.mu.Lock()
	for sa := range l.runners {
		if sa.Config.Name == p.Key {
			n++
		}
	}
	l.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d IKE SAs for one peer after 8 concurrent initiations, want 1", n)
	}
}

// dynamicResponder is a kmd with one dynamic-endpoint set, dep (local
// gateway 198.51.100.1, access profile prof with PSK dep-key and the
// allowed pair 10.1.0.0/16 - 10.0.0.0/8), on a fake bus.
func dynamicResponder(t *testing.T) (*Server, *fakeBus) {
	t.Helper()
	ctx := t.Context()
	r := New()
	r.Rand = seeded(9)
	rb := &fakeBus{}
	r.StartLocal(ctx, rb)
	rc := &pb.Config{
		ServiceSets: []*pb.ServiceSet{{Name: "dep", IpsecVpnOptions: &pb.IPsecVPNOptions{
			LocalGateway: &pb.LocalGateway{Address: "198.51.100.1"}, IkeAccessProfile: "prof"}}},
		AccessProfiles: []*pb.AccessProfile{{Name: "prof", ClientIke: &pb.AccessClientIKE{
			PreSharedKey:      &pb.Key{Value: []byte("dep-key")},
			AllowedProxyPairs: []*pb.ProxyPair{{Local: "10.1.0.0/16", Remote: "10.0.0.0/8"}},
		}}},
	}
	if err := r.Apply(ctx, nil, rc); err != nil {
		t.Fatal(err)
	}
	return r, rb
}
