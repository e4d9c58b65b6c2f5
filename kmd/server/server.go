// Package server is kmd's App for the shared daemon runtime: it turns the
// committed configuration into IKE peers, carries IKE datagrams between
// fwdd and the IKE SAs (kmd opens no sockets, DESIGN.md "IKE packets"),
// installs CHILD SAs in fwdd (inbound first, then outbound), reacts to
// fwdd's SA events, answers fwdd's SA sync after an fwdd restart, and
// serves the show and clear commands of IKE.
//
// Each IKE SA, and the SAs that replace it by rekeying, is owned by one
// runner goroutine with an inbox; nothing else touches it.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/kmd/ikesa"
	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/daemon"
	"github.com/sitesec/sitesec/services/trace"
)

// Bus is what the server needs of services/bus.Conn.
type Bus interface {
	Publish(daemon, verb string, m proto.Message) error
	Request(ctx context.Context, daemon, verb string, req, rep proto.Message) error
}

// Server is kmd's App.
type Server struct {
	// Rand and Now are injected for tests; New sets crypto/rand and
	// time.Now.
	Rand io.Reader
	Now  func() time.Time
	// Bus is set by Start from the daemon, or by tests.
	Bus Bus
	// Trace is optional.
	Trace *trace.Tracer
	// RestartGrace is how long the SAs a previous kmd left in fwdd stay
	// after their replacements are installed.
	RestartGrace time.Duration
	// Retry is the wait before an immediately-established tunnel whose
	// IKE SA went away is negotiated again.
	Retry time.Duration
	// OutboundDelay is how long, at most, the outbound SA of a CHILD SA
	// this side answered waits for the peer to install its inbound SA
	// (host.Install); 0 installs both directions at once.
	OutboundDelay time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	table  *ikesa.Table

	// cleared holds the IKE counters as they were at `clear services
	// ipsec-vpn ike statistics` (op.go).
	cleared clearedStats

	mu      sync.Mutex
	peers   map[string]*Peer
	runners map[*ikesa.SA]*runner
	// children are the CHILD SAs installed in fwdd, by SPI (inbound and
	// outbound), each with the IKE SA that installed it (fwdd's SA
	// events go to its runner) and its outbound side's install state
	// (outbound.go).
	children map[uint32]*child
	// tunnels are, per tunnel (tunnelKey), the outbound SPI carrying it
	// in fwdd, the SAs a previous kmd left there and the CHILD SAs whose
	// outbound SA is pending.
	tunnels map[string]*tunnel
	// estab records the established IKE SAs for the simultaneous
	// initiation check (collision.go).
	estab map[*ikesa.SA]*established
	// estabKey holds the same records by tunnel key.
	estabKey map[string][]*established
	// backup marks the peers that failed over to backup-remote-gateway.
	backup map[string]bool
	// down holds the service sets whose local gateway went away
	// (gw-interface): no IKE is started for them until it comes back.
	down    map[string]bool
	applied bool
	// v1s holds the IKEv1 tunnels (v1.go).
	v1s *v1State
	// initSlots holds one token per new responder SA whose IKE_SA_INIT
	// is queued or being processed (InitQueue).
	initSlots chan struct{}
	wg        sync.WaitGroup
	stats     Stats
}

// Stats count the receive path.
type Stats struct {
	Received, Dropped, InboxFull uint64
	// InitQueueFull counts new IKE_SA_INIT requests dropped because
	// InitQueue of them were waiting for their Diffie-Hellman already.
	InitQueueFull uint64
}

// InitQueue bounds the new responder SAs whose IKE_SA_INIT request is
// queued or being computed (a Diffie-Hellman each): beyond it new
// requests are dropped, and their initiators retransmit. A flood then
// costs at most this much work in flight, whatever its rate.
const InitQueue = 16

// New returns a Server with real randomness and clock.
func New() *Server {
	return &Server{Rand: rand.Reader, Now: time.Now, RestartGrace: 30 * time.Second, Retry: 5 * time.Second, OutboundDelay: time.Second}
}

func (s *Server) init(ctx context.Context) {
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.peers = map[string]*Peer{}
	s.runners = map[*ikesa.SA]*runner{}
	s.children = map[uint32]*child{}
	s.tunnels = map[string]*tunnel{}
	s.backup = map[string]bool{}
	s.down = map[string]bool{}
	s.v1s = &v1State{tunnels: map[string]*v1Runner{}, cookies: map[[8]byte]*v1Runner{}}
	if s.Retry == 0 {
		s.Retry = 5 * time.Second
	}
	if s.Rand == nil {
		s.Rand = rand.Reader
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	s.table = &ikesa.Table{
		Lookup:  s.lookup,
		Options: ikesa.Options{Rand: s.Rand, Now: s.Now, Host: (*host)(s), Trace: s.traceMessage},
		// Issue 14 item 4: cookies from the third half-open SA of one
		// source or the 64th in all; none past 10 per source or 512.
		CookieThreshold:      64,
		CookiePerSource:      2,
		MaxHalfOpen:          512,
		MaxHalfOpenPerSource: 10,
	}
	s.initSlots = make(chan struct{}, InitQueue)
}

// Start implements daemon.App: it subscribes to the punt path and fwdd's
// events and serves the SA sync.
func (s *Server) Start(ctx context.Context, d *daemon.Daemon) error {
	s.init(context.Background())
	s.Bus, s.Trace = d.Bus, d.Trace
	if _, err := d.Bus.Subscribe(subject.Kmd, subject.VerbPunt, func(m proto.Message) {
		s.Punt(m.(*pb.IKEDatagram))
	}); err != nil {
		return err
	}
	if _, err := d.Bus.Subscribe(subject.Fwdd, subject.VerbSAEvents, func(m proto.Message) {
		s.SAEvent(m.(*pb.SAEvent))
	}); err != nil {
		return err
	}
	if _, err := d.Bus.Subscribe(subject.Fwdd, subject.VerbGatewayEvents, func(m proto.Message) {
		s.GatewayEvent(m.(*pb.GatewayEvent))
	}); err != nil {
		return err
	}
	_, err := d.Bus.Handle(subject.Kmd, subject.VerbSASync, func(ctx context.Context, req proto.Message) (proto.Message, error) {
		return s.Sync(req.(*pb.SASyncRequest)), nil
	})
	return err
}

// StartLocal prepares a Server without a daemon runtime (tests).
func (s *Server) StartLocal(ctx context.Context, b Bus) {
	s.init(ctx)
	s.Bus = b
}

// Stop implements daemon.App. The CHILD SAs stay in fwdd: forwarding goes
// on while kmd restarts (README "Restart").
func (s *Server) Stop(ctx context.Context) error {
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// trace starts a trace message; nil (a no-op) without a tracer.
func (s *Server) trace(l trace.Level) *zerolog.Event {
	if s.Trace == nil {
		return nil
	}
	return s.Trace.Event(trace.FlagIKE, l)
}

// Apply implements daemon.App: the new peers replace the old; peers that
// disappeared lose their IKE SAs; establish-tunnels immediately starts
// the tunnels that have none.
func (s *Server) Apply(ctx context.Context, old, new *pb.Config) error {
	peers, err := Peers(new)
	for _, p := range peers {
		if p.cert != nil {
			p.IKE.Auth = s.newCertAuth(p.cert)
			if p.V1 != nil {
				p.V1.Sig = v1Signer{p.cert}
			}
		}
	}
	s.mu.Lock()
	first := !s.applied
	s.applied = true
	prev := s.peers
	s.peers = map[string]*Peer{}
	for _, p := range peers {
		s.peers[p.Key] = p
	}
	s.mu.Unlock()
	if first {
		s.learnPrevious(ctx)
	}
	for key, op := range prev {
		if np, ok := s.peers[key]; !ok || np.Fingerprint != op.Fingerprint {
			s.deletePeer(key)
		}
	}
	for _, p := range peers {
		s.mu.Lock()
		restarted := s.tunnels[p.Key] != nil && len(s.tunnels[p.Key].previous) > 0
		s.mu.Unlock()
		if (p.Establish == Immediately || (restarted && !p.Dynamic)) && s.findSA(p.Key) == nil {
			if ierr := s.Initiate(p); ierr != nil {
				err = errors.Join(err, ierr)
			}
		}
	}
	return err
}

// Prepare implements daemon.Preparer: a candidate configuration kmd could
// not run (an algorithm or IKE version it does not implement, a local
// gateway without an address) fails the commit before it is recorded.
func (s *Server) Prepare(_ context.Context, _, candidate *pb.Config) error {
	_, err := Peers(candidate)
	return err
}

// learnPrevious asks fwdd which dynamic SAs it still runs (fwdd.sa.list,
// typed; issue 11 item 3): after a kmd restart they are replaced
// make-before-break.
func (s *Server) learnPrevious(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rep := &pb.SAListReply{}
	if err := s.Bus.Request(ctx, subject.Fwdd, subject.VerbSAList, &pb.SAListRequest{}, rep); err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range rep.GetSas() {
		key := e.GetServiceSet() + "/" + e.GetRule() + "/" + e.GetTerm()
		if e.GetRule() == "" {
			// A dynamic-endpoint tunnel: the set's access-profile peer.
			for k, p := range s.peers {
				if p.ServiceSet == e.GetServiceSet() && p.Rule == "" {
					key = k
				}
			}
		}
		if p := s.peers[key]; p != nil && p.Dynamic {
			// One tunnel per client (tunnelKey).
			if a, ok := netip.AddrFromSlice(e.GetRemote().GetAddress()); ok {
				key += "@" + a.Unmap().String()
			}
		}
		if k := e.GetKey(); k != nil {
			t := s.tunnel(key)
			t.previous = append(t.previous, k)
		}
	}
}

// lookup finds the configuration answering a peer: a term naming its
// address first, then the dynamic endpoints of the local gateway (SPEC
// section 3: the peer's address first, then the profile key).
func (s *Server) lookup(local, remote netip.AddrPort) *ikesa.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	var dyn *ikesa.Config
	for _, p := range s.peers {
		if p.Local != local.Addr().Unmap() {
			continue
		}
		if p.Remote == remote.Addr().Unmap() || (p.Backup.IsValid() && p.Backup == remote.Addr().Unmap()) {
			return p.IKE
		}
		if p.Dynamic && (dyn == nil || p.IKE.Name < dyn.Name) {
			dyn = p.IKE
		}
	}
	return dyn
}

func (s *Server) peer(key string) *Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peers[key]
}

// findSA returns a live SA of peer key, or nil.
func (s *Server) findSA(key string) *ikesa.SA {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sa := range s.runners {
		if sa.Config.Name == key {
			return sa
		}
	}
	return nil
}

// Initiate starts an IKE SA to peer p, unless p has one already: the
// commit that brings an immediately-established tunnel in, the acquire of
// its first packets and a retry after its end can all ask at once, and
// the check and the start are one step under s.mu.
func (s *Server) Initiate(p *Peer) error { return s.initiate(p, false) }

// initiate starts an IKE SA to p; replace starts one even though p has
// one (it is being deleted and will not carry the traffic).
func (s *Server) initiate(p *Peer, replace bool) error {
	if p.Dynamic || !p.Remote.IsValid() {
		return nil
	}
	remote := p.Remote
	s.mu.Lock()
	if s.down[p.ServiceSet] {
		s.mu.Unlock()
		return nil
	}
	if s.backup[p.Key] && p.Backup.IsValid() {
		remote = p.Backup
	}
	s.mu.Unlock()
	if p.V1 != nil {
		s.v1Initiate(p, remote)
		return nil
	}
	sa, err := ikesa.NewInitiator(p.IKE, netip.AddrPortFrom(p.Local, 500), netip.AddrPortFrom(remote, 500), s.table.Options)
	if err != nil {
		return err
	}
	r := s.newRunner(sa, func() bool {
		if replace {
			return true
		}
		for x := range s.runners {
			if x.Config.Name == p.Key {
				return false
			}
		}
		return true
	})
	if r == nil {
		return nil // one is under way
	}
	s.table.Add(sa)
	r.do(func() {
		if err := sa.Start(); err != nil {
			s.trace(trace.Error).Str("peer", p.Key).Err(err).Msg("IKE_SA_INIT failed")
		}
	})
	s.trace(trace.Info).Str("peer", p.Key).Msg("initiating IKE SA")
	return nil
}

// reestablish reacts to the end of a peer's last IKE SA: a dead gateway
// fails over to backup-remote-gateway (and back), an immediately
// established tunnel is negotiated again after Retry (SPEC section 3).
func (s *Server) reestablish(dead *ikesa.SA, err error) {
	key := dead.Config.Name
	p := s.peer(key)
	if p == nil || p.Dynamic || s.findSA(key) != nil || s.ctx.Err() != nil {
		return
	}
	failover := err != nil && p.Backup.IsValid()
	if failover {
		s.mu.Lock()
		s.backup[key] = dead.Remote.Addr() == p.Remote
		s.mu.Unlock()
		s.trace(trace.Notice).Str("peer", key).Msg("gateway failover")
		s.Initiate(p)
		return
	}
	if p.Establish != Immediately {
		return
	}
	time.AfterFunc(s.Retry, func() {
		if s.ctx.Err() == nil && s.peer(key) == p && s.findSA(key) == nil {
			s.Initiate(p)
		}
	})
}

func (s *Server) deletePeer(key string) {
	s.v1DeletePeer(key)
	s.each(func(sa *ikesa.SA) {
		if sa.Config.Name == key {
			sa.Delete()
		}
	})
}

// each runs f on every SA in its own runner and waits. A runner that ends
// (its last IKE SA died) before it ran f is not waited for: f was queued
// but will never run, and waiting for it hung the caller for good (an
// acquire after clear ike security-associations, so on-traffic tunnels
// never came back).
func (s *Server) each(f func(sa *ikesa.SA)) {
	s.mu.Lock()
	type job struct {
		sa *ikesa.SA
		r  *runner
	}
	var list []job
	for sa, r := range s.runners {
		list = append(list, job{sa, r})
	}
	s.mu.Unlock()
	type wait struct{ ran, done <-chan struct{} }
	var waits []wait
	for _, x := range list {
		ran := make(chan struct{})
		sa := x.sa
		if x.r.do(func() { defer close(ran); f(sa) }) {
			waits = append(waits, wait{ran, x.r.done})
		}
	}
	for _, w := range waits {
		select {
		case <-w.ran:
		case <-w.done:
		case <-s.ctx.Done():
			return
		}
	}
}

// on runs f on r's goroutine for each SA r holds, and waits for it.
func (s *Server) on(r *runner, f func(sa *ikesa.SA)) {
	ran := make(chan struct{})
	if !r.do(func() {
		defer close(ran)
		for _, sa := range r.sas {
			f(sa)
		}
	}) {
		return
	}
	select {
	case <-ran:
	case <-r.done:
	case <-s.ctx.Done():
	}
}

// Punt handles a datagram fwdd received on UDP 500 or 4500.
func (s *Server) Punt(d *pb.IKEDatagram) {
	local, ok1 := endpoint(d.GetLocal())
	remote, ok2 := endpoint(d.GetRemote())
	s.mu.Lock()
	s.stats.Received++
	s.mu.Unlock()
	if !ok1 || !ok2 {
		s.drop()
		return
	}
	if isV1Datagram(d.GetPayload()) {
		s.v1Punt(local, remote, d.GetPayload())
		return
	}
	sa, pkt, reply, err := s.table.Route(local, remote, d.GetPayload())
	if reply != nil {
		s.Bus.Publish(subject.Fwdd, subject.VerbTransmit, &pb.IKEDatagram{Local: d.GetLocal(), Remote: d.GetRemote(), Payload: reply, RoutingInstance: d.GetRoutingInstance(), ServiceSet: d.GetServiceSet()})
		return
	}
	if err != nil {
		s.drop()
		s.trace(trace.Verbose).Str("remote", remote.String()).Err(err).Msg("IKE datagram dropped")
		return
	}
	s.mu.Lock()
	r := s.runners[sa]
	s.mu.Unlock()
	if r == nil {
		// A new responder SA (Route made it for an IKE_SA_INIT): it
		// waits for a slot of the bounded queue, or is forgotten.
		select {
		case s.initSlots <- struct{}{}:
		default:
			s.table.Remove(sa)
			s.mu.Lock()
			s.stats.InitQueueFull++
			s.stats.Dropped++
			s.mu.Unlock()
			return
		}
		r = s.newRunner(sa)
		if !r.do(func() {
			defer func() { <-s.initSlots }()
			s.handle(sa, local, remote, pkt)
		}) {
			<-s.initSlots
		}
		return
	}
	r.do(func() { s.handle(sa, local, remote, pkt) })
}

func (s *Server) handle(sa *ikesa.SA, local, remote netip.AddrPort, pkt *message.Packet) {
	if err := sa.Handle(local, remote, pkt); err != nil {
		s.trace(trace.Notice).Str("sa", sa.Name()).Err(err).Msg("IKE message")
	}
}

func (s *Server) drop() {
	s.mu.Lock()
	s.stats.Dropped++
	s.mu.Unlock()
}

func endpoint(e *pb.Endpoint) (netip.AddrPort, bool) {
	a, ok := netip.AddrFromSlice(e.GetAddress())
	if !ok || e.GetPort() > 65535 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(e.GetPort())), true
}

func pbEndpoint(ap netip.AddrPort) *pb.Endpoint {
	return &pb.Endpoint{Address: ap.Addr().Unmap().AsSlice(), Port: uint32(ap.Port())}
}

// SAEvent handles fwdd's SA events: acquire, lifetimes, rollover,
// liveness.
func (s *Server) SAEvent(e *pb.SAEvent) {
	switch e.GetKind() {
	case pb.SAEventKind_SA_EVENT_KIND_ACQUIRE:
		key := e.GetServiceSet() + "/" + e.GetRule() + "/" + e.GetTerm()
		p := s.peer(key)
		if p == nil || p.Establish == ResponderOnly {
			return
		}
		if sa := s.findSA(key); sa == nil {
			s.Initiate(p)
		} else {
			// An IKE SA without CHILD SA (cleared, or refused): ask for one.
			// One being deleted (clear ike security-associations) will not
			// carry the traffic: a new one starts now, since fwdd asks again
			// only every 10 s.
			again, ran := false, false
			s.mu.Lock()
			r := s.runners[sa]
			s.mu.Unlock()
			if r != nil {
				s.on(r, func(x *ikesa.SA) {
					if x != sa {
						return
					}
					ran = true
					switch {
					case x.State == ikesa.StateEstablished && len(x.Children) == 0 && !x.Manager().Busy():
						x.CreateChild()
					case x.State == ikesa.StateDeleting || x.State == ikesa.StateDead:
						again = true
					}
				})
			}
			if again || !ran {
				// !ran: its runner ended before it got to it (dead).
				s.initiate(p, true)
			}
		}
		return
	}
	spi := e.GetSa().GetSpi()
	if s.v1SAEvent(e) {
		return
	}
	if e.GetKind() == pb.SAEventKind_SA_EVENT_KIND_INBOUND_ACTIVITY {
		// The peer sends on the new inbound SA: it has it, and our
		// outbound SA can follow (host.Install).
		s.switchOutbound(spi, false)
	}
	s.mu.Lock()
	var owner *ikesa.SA
	if c := s.children[spi]; c != nil {
		owner = c.sa
	}
	r := s.runners[owner]
	s.mu.Unlock()
	if r == nil {
		return // no CHILD SA of ours has it (any more)
	}
	// The runner also holds the SAs its IKE SA was rekeyed into, which
	// took its CHILD SAs over.
	s.on(r, func(sa *ikesa.SA) {
		c := sa.Child(spi)
		if c == nil {
			return
		}
		switch e.GetKind() {
		case pb.SAEventKind_SA_EVENT_KIND_SOFT_LIFETIME, pb.SAEventKind_SA_EVENT_KIND_SEQUENCE_ROLLOVER_NEAR:
			sa.RekeyChild(c)
		case pb.SAEventKind_SA_EVENT_KIND_HARD_LIFETIME:
			sa.DeleteChild(c)
		case pb.SAEventKind_SA_EVENT_KIND_INBOUND_ACTIVITY:
			sa.Activity()
		}
	})
}

// GatewayEvent: with gw-interface, a local gateway that goes away stops
// IKE for its service set (SPEC section 3). A next-hop set's SAs are
// cleared; an interface-style set's SAs go to Not Installed and are
// deleted when the address comes back. Then the immediately-established
// tunnels start again.
func (s *Server) GatewayEvent(e *pb.GatewayEvent) {
	set := e.GetServiceSet()
	s.mu.Lock()
	wasDown := s.down[set]
	if e.GetUp() {
		delete(s.down, set)
	} else {
		s.down[set] = true
	}
	iface := false
	var start []*Peer
	for _, p := range s.peers {
		if p.ServiceSet != set {
			continue
		}
		iface = iface || p.InterfaceStyle
		if p.Establish == Immediately {
			start = append(start, p)
		}
	}
	s.mu.Unlock()
	if !e.GetUp() {
		s.each(func(sa *ikesa.SA) {
			switch {
			case sa.Config.ServiceSet != set:
			case iface:
				s.notInstalled(sa)
			default:
				sa.Delete()
			}
		})
		return
	}
	if iface && wasDown {
		s.each(func(sa *ikesa.SA) {
			if sa.Config.ServiceSet == set {
				sa.Delete()
			}
		})
	}
	for _, p := range start {
		if s.findSA(p.Key) == nil {
			s.Initiate(p)
		}
	}
}

// notInstalled marks every CHILD SA of sa Not Installed in fwdd.
func (s *Server) notInstalled(sa *ikesa.SA) {
	for _, c := range sa.Children {
		for _, k := range []*pb.SAKey{
			{Spi: c.SPIIn, Direction: pb.Direction_DIRECTION_INBOUND, Destination: sa.Local.Addr().AsSlice()},
			{Spi: c.SPIOut, Direction: pb.Direction_DIRECTION_OUTBOUND, Destination: sa.Remote.Addr().AsSlice()},
		} {
			ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
			err := s.Bus.Request(ctx, subject.Fwdd, subject.VerbSAUpdate, &pb.SAUpdate{Sa: k, NotInstalled: true}, &pb.SAUpdateReply{})
			cancel()
			if err != nil {
				s.trace(trace.Warning).Err(err).Msg("SA not installed")
			}
		}
	}
}

// traceMessage writes "sending/received EXCHANGE request N [ payloads ]"
// under flag ike at level verbose; contents and keys are never written.
func (s *Server) traceMessage(sa *ikesa.SA, sent bool, m *message.Message) {
	ev := s.trace(trace.Verbose)
	if ev == nil {
		return
	}
	dir, peer := "received", sa.Remote.String()
	if sent {
		dir = "sending"
	}
	ev.Str("sa", sa.Name()).Str("peer", peer).Msg(dir + " " + m.String())
}
