package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	"github.com/sitesec/sitesec/kmd/ikesa"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/trace"
)

// Simultaneous initiation (issue 12 item 5). When both gateways initiate
// at once (establish-tunnels immediately on both, or traffic on both
// sides), each completes an IKE_SA_INIT/IKE_AUTH as initiator and one as
// responder: two IKE SAs and two CHILD SA pairs for one tunnel. RFC 7296
// section 2.8.2 settles the same situation for rekeys by dropping the SA
// with the lowest nonce; strongSwan's ike_rekey and child_create handle
// their collisions alike. For two initial IKE SAs both peers know both
// SPI pairs, so both drop the same one: the IKE SA whose SPIi||SPIr is
// the lower is redundant. Each side first moves its tunnel's outbound
// traffic to the surviving SA's CHILD SA (make-before-break), then the
// initiator of the redundant IKE SA deletes it (an INFORMATIONAL DELETE,
// which takes its CHILD SAs along, RFC 7296 section 1.4.1), so that one
// DELETE is sent, not two.

// collisionWindow: two IKE SAs of one tunnel established this close
// together come from a simultaneous initiation. An older IKE SA is never
// a duplicate: it is the one being replaced (clear, DPD) or rekeyed.
const collisionWindow = 10 * time.Second

// collisionGrace lets both CHILD SAs settle in fwdd (a responder's
// outbound SA waits up to OutboundDelay) before the redundant one goes.
const collisionGrace = 2 * time.Second

// established is an IKE SA of a tunnel, as the collision check needs it:
// fields that do not change once the SA is established, read under s.mu.
type established struct {
	sa        *ikesa.SA
	key       string
	spi       [16]byte
	initiator bool
	at        time.Time
	// kept is set on the redundant SA of a collision: the one its
	// traffic moves to.
	kept *established
}

func spiPair(sa *ikesa.SA) [16]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], sa.SPIi)
	binary.BigEndian.PutUint64(b[8:], sa.SPIr)
	return b
}

// noteEstablished records sa (on its runner, at EventEstablished) and, if
// another IKE SA of the same tunnel was established within
// collisionWindow, resolves the duplicate.
func (s *Server) noteEstablished(sa *ikesa.SA) {
	e := &established{sa: sa, key: s.tunnelKey(sa), spi: spiPair(sa), initiator: sa.Initiator, at: sa.EstablishedAt}
	s.mu.Lock()
	if s.estab == nil {
		s.estab = map[*ikesa.SA]*established{}
		s.estabKey = map[string][]*established{}
	}
	var other *established
	// Only the tunnel's own records: a walk over every established SA
	// per establishment was 30% of kmd's CPU while 8,000 tunnels came up.
	for _, o := range s.estabKey[e.key] {
		// Simultaneous means this side initiated one and answered the
		// other. Two answered ones are a peer that restarted (its new kmd
		// knows nothing of the old IKE SA): the newer replaces the older,
		// as host.Install does, whatever their SPIs.
		if o.key == e.key && o.sa != sa && o.initiator != e.initiator && e.at.Sub(o.at) < collisionWindow && o.at.Sub(e.at) < collisionWindow {
			other = o
		}
	}
	if old := s.estab[sa]; old != nil {
		s.unkey(old)
	}
	s.estab[sa] = e
	s.estabKey[e.key] = append(s.estabKey[e.key], e)
	s.mu.Unlock()
	if other == nil {
		return
	}
	win, lose := e, other
	if bytes.Compare(e.spi[:], other.spi[:]) < 0 {
		win, lose = other, e
	}
	s.mu.Lock()
	lose.kept = win
	s.mu.Unlock()
	s.trace(trace.Info).Str("peer", sa.Config.Name).Str("kept", win.sa.Name()).Str("redundant", lose.sa.Name()).
		Bool("deleting", lose.initiator).Msg("simultaneous initiation: duplicate IKE SA")
	time.AfterFunc(collisionGrace, func() { s.resolveCollision(win, lose) })
}

// forgetEstablished drops a dead SA from the collision records. When the
// redundant SA of a collision goes (the peer deleted it, maybe before this
// side's grace ended), the kept SA's CHILD SA takes the outbound traffic
// at once.
func (s *Server) forgetEstablished(sa *ikesa.SA) {
	s.mu.Lock()
	e := s.estab[sa]
	delete(s.estab, sa)
	if e != nil {
		s.unkey(e)
	}
	var r *runner
	if e != nil && e.kept != nil {
		r = s.runners[e.kept.sa]
	}
	s.mu.Unlock()
	if r != nil {
		kept := e.kept.sa
		r.do(func() {
			if kept.State == ikesa.StateEstablished {
				s.takeOutbound(kept)
			}
		})
	}
}

// unkey drops e from its tunnel's records; the caller holds s.mu.
func (s *Server) unkey(e *established) {
	l := s.estabKey[e.key]
	for i, o := range l {
		if o == e {
			l = append(l[:i:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(s.estabKey, e.key)
	} else {
		s.estabKey[e.key] = l
	}
}

// resolveCollision moves the tunnel's outbound traffic to the kept IKE
// SA's CHILD SAs (on its runner), then deletes the redundant IKE SA if
// this side initiated it (on its runner).
func (s *Server) resolveCollision(win, lose *established) {
	if s.ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	rw, rl := s.runners[win.sa], s.runners[lose.sa]
	s.mu.Unlock()
	if rw == nil {
		return // the kept SA is gone already
	}
	moved := make(chan struct{})
	if !rw.do(func() {
		defer close(moved)
		if win.sa.State == ikesa.StateEstablished {
			s.takeOutbound(win.sa)
		}
	}) {
		return
	}
	select {
	case <-moved:
	case <-rw.done:
		return
	case <-s.ctx.Done():
		return
	}
	if !lose.initiator || rl == nil {
		return // the peer initiated it and deletes it, or it is gone
	}
	rl.do(func() {
		if lose.sa.State == ikesa.StateEstablished {
			s.trace(trace.Info).Str("sa", lose.sa.Name()).Msg("deleting the duplicate IKE SA of a simultaneous initiation")
			lose.sa.Delete()
		}
	})
}

// takeOutbound makes the newest installed CHILD SA of sa carry its
// tunnel's outbound traffic in fwdd, unless it already does. fwdd starts
// a reinstalled outbound SA past its sequence high-water mark, so no
// sequence number is sent twice with one key.
func (s *Server) takeOutbound(sa *ikesa.SA) {
	var c *ikesa.ChildSA
	for _, x := range sa.Children {
		if x.Installed() {
			c = x
		}
	}
	if c == nil {
		return
	}
	key := s.tunnelKey(sa)
	var cur uint32
	s.mu.Lock()
	if t := s.tunnels[key]; t != nil {
		cur = t.active
	}
	ch := s.childOf(c.SPIIn)
	s.mu.Unlock()
	if ch != nil && ch.pending() {
		s.switchOut(ch, true)
		return
	}
	if cur == c.SPIOut {
		return
	}
	out := s.childSAs(sa, c)[1]
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	rep := &pb.SAInstallReply{}
	err := s.Bus.Request(ctx, subject.Fwdd, subject.VerbSAInstall, &pb.SAInstall{Sas: []*pb.SA{out}, ReplacesSpi: cur}, rep)
	if err == nil && rep.GetError() != "" {
		err = &installError{rep.GetError()}
	}
	if err != nil {
		s.trace(trace.Warning).Uint32("spi_out", c.SPIOut).Err(err).Msg("outbound SA of the kept IKE SA")
		return
	}
	s.mu.Lock()
	s.tunnel(key).active = c.SPIOut
	s.mu.Unlock()
}
