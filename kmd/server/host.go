package server

import (
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sitesec/sitesec/kmd/ikesa"
	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/trace"
)

// host is the Server seen by its IKE SAs (ikesa.Host). Its methods run
// on the SA's runner goroutine.
type host Server

func (h *host) s() *Server { return (*Server)(h) }

func (h *host) Send(sa *ikesa.SA, pkts [][]byte, keepalive bool) {
	s := h.s()
	d := &pb.IKEDatagram{Local: pbEndpoint(sa.Local), Remote: pbEndpoint(sa.Remote), ServiceSet: sa.Config.ServiceSet}
	if p := s.peer(sa.Config.Name); p != nil {
		d.RoutingInstance = p.RoutingInst
	}
	if keepalive {
		d.NatKeepalive = true
		s.Bus.Publish(subject.Fwdd, subject.VerbTransmit, d)
		return
	}
	for _, b := range pkts {
		m := cloneDatagram(d)
		m.Payload = b
		s.Bus.Publish(subject.Fwdd, subject.VerbTransmit, m)
	}
}

func cloneDatagram(d *pb.IKEDatagram) *pb.IKEDatagram {
	return &pb.IKEDatagram{Local: d.Local, Remote: d.Remote, ServiceSet: d.ServiceSet, RoutingInstance: d.RoutingInstance}
}

func pbSelectors(ts []message.Selector) []*pb.TrafficSelector {
	var out []*pb.TrafficSelector
	for _, t := range ts {
		out = append(out, &pb.TrafficSelector{StartAddress: t.Start.AsSlice(), EndAddress: t.End.AsSlice(), StartPort: uint32(t.StartPort), EndPort: uint32(t.EndPort), Protocol: uint32(t.Protocol)})
	}
	return out
}

// childSAs renders both directions of a CHILD SA for fwdd, inbound first.
func (s *Server) childSAs(sa *ikesa.SA, c *ikesa.ChildSA) []*pb.SA {
	p := s.peer(sa.Config.Name)
	if p == nil {
		p = &Peer{ServiceSet: sa.Config.ServiceSet}
	}
	enc := pb.Encapsulation_ENCAPSULATION_ESP
	switch {
	case sa.NATLocal || sa.NATRemote:
		enc = pb.Encapsulation_ENCAPSULATION_UDP_NATT
	case p.UDPEncapPort != 0:
		enc = pb.Encapsulation_ENCAPSULATION_UDP_MULTIPATH
	}
	local, remote := pbEndpoint(sa.Local), pbEndpoint(sa.Remote)
	if enc == pb.Encapsulation_ENCAPSULATION_UDP_MULTIPATH {
		local.Port, remote.Port = p.UDPEncapPort, p.UDPEncapPort
	}
	var keepalive uint32
	if sa.NATLocal {
		keepalive = uint32(sa.Config.NATKeepalive / time.Second)
	}
	lt := &pb.Lifetime{HardSeconds: uint32(sa.Config.ChildLifetime / time.Second), SoftBytes: sa.Config.ChildLifetimeBytes}
	if lt.SoftBytes != 0 {
		lt.HardBytes = lt.SoftBytes + lt.SoftBytes/10
	}
	if !c.RekeyAt.IsZero() {
		lt.RekeySeconds = uint32(c.RekeyAt.Sub(c.CreatedAt) / time.Second)
	}
	// The IPsec SA's identities are its proxy IDs, the traffic selectors
	// (Junos: ipv4_subnet(any:0,[0..7]=10.1.12.0/24)), not the IKE IDs.
	localID, remoteID := tsString(c.LocalTS), tsString(c.RemoteTS)
	mk := func(dir pb.Direction, spi uint32, ek, ik []byte) *pb.SA {
		x := &pb.SA{
			Spi: spi, Direction: dir, Type: pb.SAType_SA_TYPE_DYNAMIC,
			ServiceSet: p.ServiceSet, Rule: p.Rule, Term: p.Term, TunnelIndex: p.TunnelIndex,
			Local: local, Remote: remote, Encapsulation: enc,
			EncryptionAlgorithm: c.Suite.EncryptionName(), AuthenticationAlgorithm: c.Suite.IntegrityName(),
			EncryptionKey: ek, AuthenticationKey: ik, ExtendedSequenceNumbers: c.Suite.ESN,
			Lifetime:       lt,
			LocalSelectors: pbSelectors(c.LocalTS), RemoteSelectors: pbSelectors(c.RemoteTS),
			InsideInterface: p.InsideIFL, IkeSa: sa.Name(), LocalIdentity: localID, RemoteIdentity: remoteID,
			Reqid: c.Reqid, CreatedAt: timestamppb.New(c.CreatedAt), NatKeepalive: keepalive,
		}
		if dir == pb.Direction_DIRECTION_OUTBOUND {
			x.InitialSequence = 1
		}
		if c.Suite.Protocol == message.ProtocolAH {
			x.Protocol = pb.IPsecProtocol_IPSEC_PROTOCOL_AH
		}
		return x
	}
	return []*pb.SA{
		mk(pb.Direction_DIRECTION_INBOUND, c.SPIIn, c.EncrIn, c.IntegIn),
		mk(pb.Direction_DIRECTION_OUTBOUND, c.SPIOut, c.EncrOut, c.IntegOut),
	}
}

// Install asks fwdd to install the inbound SA, then the outbound one,
// in one request (fwdd applies them in order); the outbound SA replaces
// the rekeyed one, or after a kmd restart the one fwdd still runs.
//
// When this side answered the exchange (c.Initiator is false) and the
// tunnel already has an outbound SA carrying traffic, only the inbound SA
// goes in now: the initiator installs its inbound SA only after it has
// read our response, so an outbound switch at once would send packets
// the peer drops for an unknown SPI. The outbound SA follows on the
// first packet received on the new inbound SA (fwdd's inbound activity),
// on the deletion of the old CHILD SA, or after OutboundDelay, whichever
// comes first (make-before-break, RFC 7296 section 2.8; strongSwan's
// child_rekey does the same).
func (h *host) Install(sa *ikesa.SA, c *ikesa.ChildSA, replaces *ikesa.ChildSA) error {
	s := h.s()
	key := s.tunnelKey(sa)
	sas := s.childSAs(sa, c)
	req := &pb.SAInstall{Sas: sas}
	if replaces != nil {
		req.ReplacesSpi = replaces.SPIOut
	}
	ch := &child{sa: sa, key: key, spiIn: c.SPIIn, spiOut: c.SPIOut}
	s.mu.Lock()
	s.children[c.SPIIn], s.children[c.SPIOut] = ch, ch
	t := s.tunnel(key)
	prev := t.previous
	t.previous = nil
	for _, k := range prev {
		if k.GetDirection() == pb.Direction_DIRECTION_OUTBOUND {
			if req.ReplacesSpi == 0 {
				req.ReplacesSpi = k.GetSpi()
			}
			if t.active == 0 {
				t.active = k.GetSpi()
			}
		}
	}
	deferOut := !c.Initiator && t.active != 0 && s.OutboundDelay > 0
	s.tidy(key)
	s.mu.Unlock()
	if deferOut {
		req.Sas, req.ReplacesSpi = sas[:1], 0
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	rep := &pb.SAInstallReply{}
	if err := s.Bus.Request(ctx, subject.Fwdd, subject.VerbSAInstall, req, rep); err != nil {
		return err
	}
	if rep.GetError() != "" {
		return &installError{rep.GetError()}
	}
	if deferOut {
		s.mu.Lock()
		t := s.tunnel(key)
		ch.out, ch.outSA, ch.prev, ch.done = outWaiting, sas[1], prev, make(chan struct{})
		if replaces != nil {
			ch.replaces = replaces.SPIOut
		}
		if ch.replaces == 0 {
			ch.replaces = t.active
		}
		ch.timer = time.AfterFunc(s.OutboundDelay, func() { s.switchOut(ch, false) })
		t.waiting[ch] = true
		s.mu.Unlock()
		s.trace(trace.Info).Str("sa", sa.Name()).Uint32("spi_in", c.SPIIn).Uint32("spi_out", c.SPIOut).Msg("CHILD SA inbound installed, outbound waits for the peer")
		return nil
	}
	s.mu.Lock()
	ch.out = outInstalled
	s.tunnel(key).active = c.SPIOut
	s.mu.Unlock()
	s.retirePrevious(prev)
	s.trace(trace.Info).Str("sa", sa.Name()).Uint32("spi_in", c.SPIIn).Uint32("spi_out", c.SPIOut).Msg("CHILD SA installed")
	return nil
}

// Uninstall deletes both directions of c. A CHILD SA whose outbound SA
// still waits loses it; when c's outbound SA carries the tunnel, the
// waiting outbound SAs of the tunnel go in first, so that traffic never
// stops (the peer that deletes the old CHILD SA has the new one).
func (h *host) Uninstall(sa *ikesa.SA, c *ikesa.ChildSA) {
	s := h.s()
	key := s.tunnelKey(sa)
	s.mu.Lock()
	var wait []*child
	if ch := s.childOf(c.SPIIn); ch != nil {
		switch ch.out {
		case outInstalling:
			// c's own outbound SA is being installed: delete it after.
			wait = append(wait, ch)
		case outWaiting:
			ch.out = outNone
			s.unwait(ch)
			ch.timer.Stop()
			close(ch.done)
			defer s.retirePrevious(ch.prev)
		}
	}
	if t := s.tunnels[key]; t != nil && t.active == c.SPIOut {
		t.active = 0
		for w := range t.waiting {
			if w.spiIn != c.SPIIn {
				wait = append(wait, w)
			}
		}
	}
	s.tidy(key)
	s.mu.Unlock()
	for _, w := range wait {
		s.switchOut(w, true)
		select {
		case <-w.done:
		case <-s.ctx.Done():
		}
	}
	s.mu.Lock()
	if t := s.tunnels[key]; t != nil && t.active == c.SPIOut {
		t.active = 0 // c's own outbound SA went in meanwhile
		s.tidy(key)
	}
	for _, spi := range []uint32{c.SPIIn, c.SPIOut} {
		// Its IKE SA, or the one it was rekeyed into (same runner), or
		// one that is gone.
		if o := s.children[spi]; o != nil && (o.sa == sa || s.runners[o.sa] == nil || s.runners[o.sa] == s.runners[sa]) {
			delete(s.children, spi)
		}
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	req := &pb.SADelete{Sas: []*pb.SAKey{
		{Spi: c.SPIIn, Direction: pb.Direction_DIRECTION_INBOUND, Destination: sa.Local.Addr().AsSlice()},
		{Spi: c.SPIOut, Direction: pb.Direction_DIRECTION_OUTBOUND, Destination: sa.Remote.Addr().AsSlice()},
	}, Reason: "CHILD SA deleted"}
	if err := s.Bus.Request(ctx, subject.Fwdd, subject.VerbSADelete, req, &pb.SADeleteReply{}); err != nil {
		s.trace(trace.Warning).Err(err).Msg("SA delete")
	}
}

func (h *host) Event(sa *ikesa.SA, e ikesa.Event) {
	s := h.s()
	switch e.Kind {
	case ikesa.EventEstablished:
		s.table.Matured(sa)
		s.trace(trace.Info).Str("sa", sa.Name()).Str("peer", sa.Config.Name).Msg("IKE SA established")
		s.noteEstablished(sa)
	case ikesa.EventIKERekeyed:
		s.table.Add(e.New)
		s.mu.Lock()
		if r := s.runners[sa]; r != nil {
			s.runners[e.New] = r
			r.sas = append(r.sas, e.New)
		}
		s.mu.Unlock()
		s.trace(trace.Info).Str("old", sa.Name()).Str("new", e.New.Name()).Msg("IKE SA rekeyed")
	case ikesa.EventDead:
		s.table.Remove(sa)
		s.forgetEstablished(sa)
		s.mu.Lock()
		delete(s.runners, sa)
		s.mu.Unlock()
		ev := s.trace(trace.Info).Str("sa", sa.Name())
		if e.Err != nil {
			ev = ev.Err(e.Err)
		}
		ev.Msg("IKE SA deleted")
		s.reestablish(sa, e.Err)
	case ikesa.EventRemoteMoved:
		ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
		defer cancel()
		for _, c := range sa.Children {
			s.Bus.Request(ctx, subject.Fwdd, subject.VerbSAUpdate, &pb.SAUpdate{
				Sa:            &pb.SAKey{Spi: c.SPIOut, Direction: pb.Direction_DIRECTION_OUTBOUND, Destination: sa.Remote.Addr().AsSlice()},
				Remote:        pbEndpoint(sa.Remote),
				Encapsulation: pb.Encapsulation_ENCAPSULATION_UDP_NATT,
			}, &pb.SAUpdateReply{})
		}
	}
}

// seqMargin is added to fwdd's persisted outbound high-water mark: fwdd
// persists it periodically, so packets sent after the last write are
// covered (DESIGN.md: never reuse a key and sequence pair).
const seqMargin = 1 << 20

// Sync answers a restarted fwdd with every CHILD SA kmd wants installed.
// An outbound SA without a high-water mark is not given back with its old
// key: it is rekeyed instead, so no (key, sequence) pair is reused.
func (s *Server) Sync(req *pb.SASyncRequest) *pb.SASyncReply {
	marks := map[uint32]uint64{}
	for _, m := range req.GetMarks() {
		marks[m.GetSa().GetSpi()] = m.GetSequence()
	}
	rep := &pb.SASyncReply{}
	var mu sync.Mutex
	s.each(func(sa *ikesa.SA) {
		var rekey []*ikesa.ChildSA
		for _, c := range sa.Children {
			if !c.Installed() {
				continue
			}
			sas := s.childSAs(sa, c)
			mu.Lock()
			rep.Sas = append(rep.Sas, sas[0])
			// Without ESN the 32-bit counter must stay far from wrapping.
			if s.outboundPending(c.SPIIn) {
				// Its outbound SA goes in when the peer is ready.
			} else if m, ok := marks[c.SPIOut]; ok && (c.Suite.ESN || m+seqMargin < 1<<31) {
				sas[1].InitialSequence = m + seqMargin
				rep.Sas = append(rep.Sas, sas[1])
			} else {
				rekey = append(rekey, c)
			}
			mu.Unlock()
		}
		for _, c := range rekey {
			sa.RekeyChild(c)
		}
	})
	rep.Sas = append(rep.Sas, s.v1Sync(marks)...)
	return rep
}
