package server

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sitesec/sitesec/kmd/ikev1"
	"github.com/sitesec/sitesec/kmd/isakmp"
	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/dn"
	"github.com/sitesec/sitesec/services/trace"
)

// IKEv1 (kmd/ikev1) beside IKEv2: datagrams are told apart by the
// version octet of the header (RFC 2408 section 3.1: 0x10; RFC 7296
// section 3.1: 0x20). Each IKEv1 tunnel (one peer of one term) has its
// own runner goroutine, like an IKEv2 SA lineage; its ISAKMP SAs are
// found by their initiator cookie.

// v1State is the server's IKEv1 part; its maps are guarded by Server.mu.
type v1State struct {
	tunnels map[string]*v1Runner // by peer key and remote address
	cookies map[[8]byte]*v1Runner
}

type v1Runner struct {
	mailbox
	key  string // peer key + "|" + remote address
	peer *Peer
	t    *ikev1.Tunnel
}

// isV1Datagram reports an ISAKMP (IKEv1) header.
func isV1Datagram(b []byte) bool { return len(b) >= isakmp.HeaderLen && b[17]>>4 == 1 }

func (s *Server) v1() *v1State {
	if s.v1s == nil {
		s.v1s = &v1State{tunnels: map[string]*v1Runner{}, cookies: map[[8]byte]*v1Runner{}}
	}
	return s.v1s
}

func (s *Server) newV1Runner(p *Peer, local, remote netip.AddrPort) *v1Runner {
	r := &v1Runner{mailbox: s.newMailbox(), key: p.Key + "|" + remote.Addr().String(), peer: p}
	r.t = ikev1.New(p.V1, local, remote, ikev1.Options{Rand: s.Rand, Now: s.Now, Host: (*v1Host)(s), Trace: s.traceV1})
	r.deadline = r.t.Deadline
	r.tick = func() {
		if d := r.t.Deadline(); !d.IsZero() && !d.After(s.Now()) {
			r.t.Tick()
		}
	}
	r.after = r.routeCookies
	s.v1().tunnels[r.key] = r
	return r
}

// routeCookies routes the cookies of new ISAKMP SAs to r and forgets the
// dead ones; false once the tunnel is dead.
func (r *v1Runner) routeCookies() bool {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, x := range s.v1().cookies {
		if x == r {
			delete(s.v1().cookies, c)
		}
	}
	if r.t.Dead() {
		if s.v1().tunnels[r.key] == r {
			delete(s.v1().tunnels, r.key)
		}
		return false
	}
	for _, sa := range r.t.SAs {
		s.v1().cookies[sa.ICookie] = r
	}
	return true
}

// v1Punt routes an IKEv1 datagram: by initiator cookie to its tunnel,
// or, for a new phase 1, to the peer configured for the addresses.
func (s *Server) v1Punt(local, remote netip.AddrPort, payload []byte) {
	h, _, err := isakmp.ParseHeader(payload)
	if err != nil {
		s.drop()
		s.trace(trace.Verbose).Str("remote", remote.String()).Err(err).Msg("IKEv1 datagram dropped")
		return
	}
	s.mu.Lock()
	r := s.v1().cookies[h.ICookie]
	if r == nil && h.RCookie == ([8]byte{}) && (h.Exchange == isakmp.ExchangeMain || h.Exchange == isakmp.ExchangeAggressive) {
		var p, dyn *Peer
		for _, x := range s.peers {
			if x.V1 == nil || x.Local != local.Addr().Unmap() {
				continue
			}
			if x.Remote == remote.Addr().Unmap() || x.Backup == remote.Addr().Unmap() {
				p = x
			} else if x.Dynamic && (dyn == nil || x.Key < dyn.Key) {
				dyn = x // dynamic endpoints: any client address
			}
		}
		if p == nil {
			p = dyn
		}
		if p != nil && !s.down[p.ServiceSet] {
			r = s.v1().tunnels[p.Key+"|"+remote.Addr().String()]
			if r == nil {
				r = s.newV1Runner(p, local, remote)
			}
			s.v1().cookies[h.ICookie] = r
		}
	}
	s.mu.Unlock()
	if r == nil {
		s.drop()
		s.trace(trace.Verbose).Str("remote", remote.String()).Msg("IKEv1 datagram for no tunnel dropped")
		return
	}
	pkt := append([]byte(nil), payload...)
	r.do(func() {
		if err := r.t.Handle(local, remote, pkt); err != nil {
			s.trace(trace.Notice).Str("tunnel", r.t.Name()).Err(err).Msg("IKEv1 message")
		}
	})
}

// v1Initiate starts (or reuses) the IKEv1 tunnel of p.
func (s *Server) v1Initiate(p *Peer, remote netip.Addr) {
	s.mu.Lock()
	r := s.v1().tunnels[p.Key+"|"+remote.String()]
	if r == nil {
		r = s.newV1Runner(p, netip.AddrPortFrom(p.Local, 500), netip.AddrPortFrom(remote, 500))
	}
	s.mu.Unlock()
	r.do(func() {
		if len(r.t.Children) > 0 || r.t.Busy() {
			return
		}
		if err := r.t.Initiate(); err != nil {
			s.trace(trace.Error).Str("peer", p.Key).Err(err).Msg("IKEv1 initiation failed")
		}
	})
	s.trace(trace.Info).Str("peer", p.Key).Msg("initiating IKEv1 tunnel")
}

// v1Each runs f in every IKEv1 runner and waits.
func (s *Server) v1Each(f func(r *v1Runner)) {
	s.mu.Lock()
	var rs []*v1Runner
	for _, r := range s.v1().tunnels {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	for _, r := range rs {
		done := make(chan struct{})
		if r.do(func() { defer close(done); f(r) }) {
			select {
			case <-done:
			case <-r.done:
			}
		}
	}
}

// v1Deleted removes the tunnels of peer key.
func (s *Server) v1DeletePeer(key string) {
	s.v1Each(func(r *v1Runner) {
		if r.peer.Key == key {
			r.t.Delete()
		}
	})
}

// v1SAEvent handles fwdd's events for IKEv1 ESP SAs; it reports whether
// the SPI was one of them.
func (s *Server) v1SAEvent(e *pb.SAEvent) bool {
	spi := e.GetSa().GetSpi()
	found := false
	s.v1Each(func(r *v1Runner) {
		c := r.t.Child(spi)
		if c == nil {
			return
		}
		found = true
		switch e.GetKind() {
		case pb.SAEventKind_SA_EVENT_KIND_SOFT_LIFETIME, pb.SAEventKind_SA_EVENT_KIND_SEQUENCE_ROLLOVER_NEAR:
			r.t.RekeyChild(c)
		case pb.SAEventKind_SA_EVENT_KIND_HARD_LIFETIME:
			r.t.DeleteChild(c)
		case pb.SAEventKind_SA_EVENT_KIND_INBOUND_ACTIVITY:
			r.t.Activity()
		}
	})
	return found
}

func (s *Server) traceV1(t *ikev1.Tunnel, sent bool, h isakmp.Header, ps []isakmp.Payload) {
	ev := s.trace(trace.Verbose)
	if ev == nil {
		return
	}
	dir := "received"
	if sent {
		dir = "sending"
	}
	ev.Str("tunnel", t.Name()).Str("peer", t.Remote.String()).Msgf("%s IKEv1 %v %d [ %s ]", dir, h.Exchange, h.MessageID, isakmp.Describe(ps))
}

// v1Host is the Server seen by IKEv1 tunnels; its methods run on the
// tunnel's runner.
type v1Host Server

func (h *v1Host) s() *Server { return (*Server)(h) }

func (h *v1Host) datagram(t *ikev1.Tunnel) *pb.IKEDatagram {
	s := h.s()
	d := &pb.IKEDatagram{Local: pbEndpoint(t.Local), Remote: pbEndpoint(t.Remote), ServiceSet: t.Config.ServiceSet}
	if p := s.peer(t.Config.Name); p != nil {
		d.RoutingInstance = p.RoutingInst
	}
	return d
}

func (h *v1Host) Send(t *ikev1.Tunnel, pkt []byte) {
	d := h.datagram(t)
	d.Payload = pkt
	h.s().Bus.Publish(subject.Fwdd, subject.VerbTransmit, d)
}

func (h *v1Host) Keepalive(t *ikev1.Tunnel) {
	d := h.datagram(t)
	d.NatKeepalive = true
	h.s().Bus.Publish(subject.Fwdd, subject.VerbTransmit, d)
}

// v1SAs renders both directions of an IKEv1 ESP SA pair for fwdd.
func (s *Server) v1SAs(t *ikev1.Tunnel, c *ikev1.Child) (in, out *pb.SA) {
	p := s.peer(t.Config.Name)
	if p == nil {
		p = &Peer{ServiceSet: t.Config.ServiceSet}
	}
	enc := pb.Encapsulation_ENCAPSULATION_ESP
	local, remote := pbEndpoint(t.Local), pbEndpoint(t.Remote)
	switch {
	case c.UDPEncap:
		enc = pb.Encapsulation_ENCAPSULATION_UDP_NATT
	case p.UDPEncapPort != 0:
		enc = pb.Encapsulation_ENCAPSULATION_UDP_MULTIPATH
		local.Port, remote.Port = p.UDPEncapPort, p.UDPEncapPort
	}
	var keepalive uint32
	if t.NATLocal {
		keepalive = uint32(t.Config.NATKeepalive / time.Second)
	}
	lt := &pb.Lifetime{HardSeconds: uint32(c.Lifetime / time.Second)}
	localID, remoteID, ike := "", "", ""
	if sa := t.Established(); sa != nil {
		remoteID, ike = idString(sa.PeerID), sa.Name()
	}
	localID = idString(t.Config.LocalID)
	mk := func(dir pb.Direction, spi uint32, ek, ik []byte) *pb.SA {
		return &pb.SA{
			Spi: spi, Direction: dir, Type: pb.SAType_SA_TYPE_DYNAMIC,
			ServiceSet: p.ServiceSet, Rule: p.Rule, Term: p.Term, TunnelIndex: p.TunnelIndex,
			Local: local, Remote: remote, Encapsulation: enc,
			EncryptionAlgorithm: c.Suite.EncryptionName(), AuthenticationAlgorithm: c.Suite.IntegrityName(),
			EncryptionKey: ek, AuthenticationKey: ik,
			Lifetime:       lt,
			LocalSelectors: pbSelectors([]message.Selector{c.LocalTS}), RemoteSelectors: pbSelectors([]message.Selector{c.RemoteTS}),
			InsideInterface: p.InsideIFL, IkeSa: ike, LocalIdentity: localID, RemoteIdentity: remoteID,
			Reqid: c.Reqid, CreatedAt: timestamppb.New(c.CreatedAt), NatKeepalive: keepalive,
		}
	}
	in = mk(pb.Direction_DIRECTION_INBOUND, c.SPIIn, c.EncrIn, c.IntegIn)
	out = mk(pb.Direction_DIRECTION_OUTBOUND, c.SPIOut, c.EncrOut, c.IntegOut)
	out.InitialSequence = 1
	switch {
	case c.Suite.Bundle():
		in.Protocol, in.AuxiliarySpi = pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE, c.AuxIn
		out.Protocol, out.AuxiliarySpi = pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE, c.AuxOut
	case c.Suite.AH:
		in.Protocol, out.Protocol = pb.IPsecProtocol_IPSEC_PROTOCOL_AH, pb.IPsecProtocol_IPSEC_PROTOCOL_AH
	}
	return in, out
}

func idString(id isakmp.ID) string {
	switch id.Type {
	case isakmp.IDIPv4, isakmp.IDIPv6:
		if a, ok := netip.AddrFromSlice(id.Data); ok {
			return a.String()
		}
	case isakmp.IDFQDN, isakmp.IDUserFQDN, isakmp.IDKeyID:
		return string(id.Data)
	case isakmp.IDDERASN1DN:
		return dnText(id.Data)
	}
	return ""
}

// dnText renders an ID_DER_ASN1_DN as RFC 4514 text for show commands.
func dnText(der []byte) string {
	n, err := dn.ParseDER(der)
	if err != nil {
		return fmt.Sprintf("%x", der)
	}
	return n.String()
}

// idText is an IKEv2 identity as show commands print it.
func idText(id *message.ID) string {
	if id.IDType == message.IDDERASN1DN {
		return dnText(id.Data)
	}
	return id.String()
}

func (h *v1Host) install(sas []*pb.SA, replaces uint32) error {
	s := h.s()
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	rep := &pb.SAInstallReply{}
	if err := s.Bus.Request(ctx, subject.Fwdd, subject.VerbSAInstall, &pb.SAInstall{Sas: sas, ReplacesSpi: replaces}, rep); err != nil {
		return err
	}
	if rep.GetError() != "" {
		return &installError{rep.GetError()}
	}
	return nil
}

func (h *v1Host) InstallIn(t *ikev1.Tunnel, c *ikev1.Child) error {
	in, _ := h.s().v1SAs(t, c)
	return h.install([]*pb.SA{in}, 0)
}

func (h *v1Host) InstallOut(t *ikev1.Tunnel, c *ikev1.Child, replaces *ikev1.Child) error {
	s := h.s()
	_, out := s.v1SAs(t, c)
	var r uint32
	if replaces != nil {
		r = replaces.SPIOut
	}
	// After a kmd restart the SAs the previous kmd left in fwdd carry the
	// tunnel until this one takes over, then go after RestartGrace
	// (README "Restart"), as for IKEv2.
	var prev []*pb.SAKey
	s.mu.Lock()
	if tun := s.tunnels[t.Config.Name]; tun != nil {
		prev, tun.previous = tun.previous, nil
		s.tidy(t.Config.Name)
	}
	s.mu.Unlock()
	for _, k := range prev {
		if k.GetDirection() == pb.Direction_DIRECTION_OUTBOUND && r == 0 {
			r = k.GetSpi()
		}
	}
	err := h.install([]*pb.SA{out}, r)
	s.retirePrevious(prev)
	if err == nil {
		s.trace(trace.Info).Str("tunnel", t.Name()).Uint32("spi_in", c.SPIIn).Uint32("spi_out", c.SPIOut).Msg("IKEv1 ESP SA installed")
	}
	return err
}

func (h *v1Host) Uninstall(t *ikev1.Tunnel, c *ikev1.Child) {
	s := h.s()
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	req := &pb.SADelete{Sas: []*pb.SAKey{
		{Spi: c.SPIIn, Direction: pb.Direction_DIRECTION_INBOUND, Destination: t.Local.Addr().AsSlice()},
		{Spi: c.SPIOut, Direction: pb.Direction_DIRECTION_OUTBOUND, Destination: t.Remote.Addr().AsSlice()},
	}, Reason: "IKEv1 SA deleted"}
	if err := s.Bus.Request(ctx, subject.Fwdd, subject.VerbSADelete, req, &pb.SADeleteReply{}); err != nil {
		s.trace(trace.Warning).Err(err).Msg("SA delete")
	}
}

func (h *v1Host) Event(t *ikev1.Tunnel, e ikev1.Event) {
	s := h.s()
	switch e.Kind {
	case ikev1.EventPhase1Up:
		s.trace(trace.Info).Str("tunnel", t.Name()).Str("sa", e.SA.Name()).Msg("IKEv1 ISAKMP SA established")
	case ikev1.EventDead:
		ev := s.trace(trace.Info).Str("tunnel", t.Name())
		if e.Err != nil {
			ev = ev.Err(e.Err)
		}
		ev.Msg("IKEv1 tunnel down")
		key := t.Config.Name
		p := s.peer(key)
		if p == nil || p.Establish != Immediately || s.ctx.Err() != nil {
			return
		}
		remote := t.Remote.Addr()
		time.AfterFunc(s.Retry, func() {
			if s.ctx.Err() == nil && s.peer(key) == p {
				s.v1Initiate(p, remote)
			}
		})
	}
}

func (f filter) matchV1(t *ikev1.Tunnel) bool {
	if f.peer.IsValid() && t.Remote.Addr() != f.peer {
		return false
	}
	return f.serviceSet == "" || t.Config.ServiceSet == f.serviceSet
}

// v1Snapshot renders the ISAKMP SAs as `show services ipsec-vpn ike
// security-associations` prints them (Exchange type Main or Aggressive,
// the quick mode negotiations as Phase 2).
func (s *Server) v1Snapshot(f filter) []*pb.IKESecurityAssociation {
	var out []*pb.IKESecurityAssociation
	s.v1Each(func(r *v1Runner) {
		t := r.t
		if !f.matchV1(t) {
			return
		}
		for _, sa := range t.SAs {
			if sa.State == ikev1.StateDead {
				continue
			}
			role, state, exch := "Responder", "not matured", "Main"
			if sa.Initiator {
				role = "Initiator"
			}
			if sa.Aggressive {
				exch = "Aggressive"
			}
			x := &pb.IKESecurityAssociation{
				RemoteAddress: t.Remote.Addr().String(), InitiatorCookie: fmt.Sprintf("%x", sa.ICookie), ResponderCookie: fmt.Sprintf("%x", sa.RCookie),
				ExchangeType: exch, Role: role, LocalAddress: t.Local.Addr().String(), LocalPort: uint32(t.Local.Port()), RemotePort: uint32(t.Remote.Port()),
				PacketsIn: t.Stats.InPackets, PacketsOut: t.Stats.OutPackets, IpsecSasCreated: uint32(t.Stats.Phase2),
				ServiceSet: t.Config.ServiceSet, NatDetected: t.NATLocal || t.NATRemote, AuthenticationMethod: sa.Suite.AuthName(),
				LocalIdentity: idString(sa.LocalID()), RemoteIdentity: idString(sa.PeerID), RoutingInstance: "default",
			}
			if r.peer.RoutingInst != "" {
				x.RoutingInstance = r.peer.RoutingInst
			}
			if sa.State == ikev1.StateEstablished {
				state = "matured"
				x.Flags = []string{"IKE SA created"}
				enc, hash, _ := strings.Cut(sa.Suite.String(), "/")
				hash, group, _ := strings.Cut(hash, "/")
				x.EncryptionAlgorithm, x.AuthenticationAlgorithm, x.PrfAlgorithm = enc, hash, "hmac-"+hash
				x.DhGroup = strings.TrimPrefix(group, "group")
				if e := sa.ExpiresAt(); !e.IsZero() {
					x.ExpiresInSeconds = int64(e.Sub(s.Now()).Seconds())
				}
			}
			x.State = state
			for _, c := range t.Children {
				role := "Responder"
				if c.Initiator {
					role = "Initiator"
				}
				x.Phase2 = append(x.Phase2, &pb.Phase2Negotiation{
					Type: "quick", Role: role, Local: t.Local.String(), Remote: t.Remote.String(),
					LocalIdentity: tsString([]message.Selector{c.LocalTS}), RemoteIdentity: tsString([]message.Selector{c.RemoteTS}),
				})
			}
			out = append(out, x)
		}
	})
	return out
}

// v1Clear deletes the matching tunnels (clear ... ike
// security-associations), or only their ESP SAs (clear ... ipsec
// security-associations).
func (s *Server) v1Clear(f filter, childrenOnly bool) {
	s.v1Each(func(r *v1Runner) {
		if !f.matchV1(r.t) {
			return
		}
		if !childrenOnly {
			r.t.Delete()
			return
		}
		for _, c := range append([]*ikev1.Child(nil), r.t.Children...) {
			r.t.DeleteChild(c)
		}
	})
}

// v1Sync gives a restarted fwdd the IKEv1 ESP SAs, as Sync does for
// IKEv2: outbound ones past fwdd's high-water mark, or rekeyed when fwdd
// has no mark (a (key, sequence) pair is never used twice).
func (s *Server) v1Sync(marks map[uint32]uint64) []*pb.SA {
	var out []*pb.SA
	var mu sync.Mutex
	s.v1Each(func(r *v1Runner) {
		var rekey []*ikev1.Child
		for _, c := range r.t.Children {
			in, o := s.v1SAs(r.t, c)
			mu.Lock()
			out = append(out, in)
			if !c.OutInstalled() {
				// inbound only
			} else if m, ok := marks[c.SPIOut]; ok && m+seqMargin < 1<<31 {
				o.InitialSequence = m + seqMargin
				out = append(out, o)
			} else {
				rekey = append(rekey, c)
			}
			mu.Unlock()
		}
		for _, c := range rekey {
			r.t.RekeyChild(c)
		}
	})
	return out
}
