package server

import (
	"context"
	"time"

	"github.com/sitesec/sitesec/kmd/ikesa"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/trace"
)

// outState is where the outbound SA of a CHILD SA is in fwdd.
type outState int

const (
	// outNone: not asked for (the install of the CHILD SA is on its way
	// or failed), or given up (the CHILD SA went before it was needed).
	outNone outState = iota
	// outWaiting: the inbound SA is in; the outbound one waits until the
	// peer has certainly installed its inbound SA (host.Install).
	outWaiting
	// outInstalling: the outbound install is on its way to fwdd. The
	// CHILD SA stays in its tunnel's waiting set until fwdd answered, so
	// that an Uninstall of the SA it replaces waits for it instead of
	// deleting the old outbound SA while the new one is still on its way
	// (the old SA's delete and the new SA's install are different
	// subjects, which fwdd may run in either order: a window without an
	// outbound SA).
	outInstalling
	// outInstalled: in fwdd (it may no longer carry the tunnel).
	outInstalled
)

// child is a CHILD SA as kmd installed it in fwdd, with the install state
// of its outbound side, as strongSwan's child_sa keeps its outbound state:
// the outbound SA may go in after the inbound one (make-before-break).
// Server.children finds it by both SPIs; its fields are under Server.mu.
type child struct {
	// sa is the IKE SA that installed it: fwdd's SA events go to that
	// SA's runner alone, not to every runner (at thousands of tunnels
	// each event visited them all).
	sa            *ikesa.SA
	key           string // its tunnel (tunnelKey)
	spiIn, spiOut uint32
	out           outState

	// While the outbound SA waits or is being installed:
	outSA    *pb.SA
	replaces uint32      // the outbound SA in use when the CHILD SA came
	prev     []*pb.SAKey // a previous kmd's SAs it retires once in
	timer    *time.Timer
	done     chan struct{} // closed once installed or given up
}

// pending reports whether the outbound SA has not been installed yet but
// will be (it waits, or its install is on its way).
func (c *child) pending() bool { return c.out == outWaiting || c.out == outInstalling }

// tunnel is a tunnel's outbound side in fwdd (Server.tunnels, by
// tunnelKey); under Server.mu. A record with nothing in it is dropped.
type tunnel struct {
	// active is the outbound SPI carrying the tunnel in fwdd, 0 for none
	// (0 is never an ESP SPI, RFC 4303 section 2.1).
	active uint32
	// previous are the SAs fwdd still runs from before a kmd restart
	// (make-before-break, README "Restart"); the first CHILD SA installed
	// takes them over.
	previous []*pb.SAKey
	// waiting are the CHILD SAs whose outbound SA is pending.
	waiting map[*child]bool
}

// tunnel returns the record of key, creating it. Call with s.mu held.
func (s *Server) tunnel(key string) *tunnel {
	t := s.tunnels[key]
	if t == nil {
		t = &tunnel{waiting: map[*child]bool{}}
		s.tunnels[key] = t
	}
	return t
}

// tidy drops the record of key when it holds nothing. Call with s.mu
// held.
func (s *Server) tidy(key string) {
	if t := s.tunnels[key]; t != nil && t.active == 0 && len(t.previous) == 0 && len(t.waiting) == 0 {
		delete(s.tunnels, key)
	}
}

// unwait takes c out of its tunnel's waiting set. Call with s.mu held.
func (s *Server) unwait(c *child) {
	if t := s.tunnels[c.key]; t != nil {
		delete(t.waiting, c)
	}
	s.tidy(c.key)
}

// childOf returns the CHILD SA whose inbound SPI is spiIn. Call with s.mu
// held.
func (s *Server) childOf(spiIn uint32) *child {
	if c := s.children[spiIn]; c != nil && c.spiIn == spiIn {
		return c
	}
	return nil
}

// tunnelKey names the tunnel whose outbound SA a CHILD SA of sa carries:
// the peer's key, and for dynamic endpoints (many clients behind one
// peer key) also the client's address, so that one client's CHILD SA
// never takes over another client's outbound SA (fwdd's SAD keys its
// tunnels the same way).
func (s *Server) tunnelKey(sa *ikesa.SA) string {
	if p := s.peer(sa.Config.Name); p != nil && p.Dynamic {
		return sa.Config.Name + "@" + sa.Remote.Addr().String()
	}
	return sa.Config.Name
}

// switchOutbound installs the waiting outbound SA of the CHILD SA whose
// inbound SPI is spiIn (see switchOut).
func (s *Server) switchOutbound(spiIn uint32, force bool) {
	s.mu.Lock()
	c := s.childOf(spiIn)
	s.mu.Unlock()
	if c != nil {
		s.switchOut(c, force)
	}
}

// switchOut installs the waiting outbound SA of c. Unless force is set,
// it does nothing while another outbound SA than the one it was to
// replace took over the tunnel meanwhile (this side's own rekey after a
// collision, RFC 7296 section 2.8.1): it then waits, parked, for that
// one's deletion.
func (s *Server) switchOut(c *child, force bool) {
	s.mu.Lock()
	if c.out != outWaiting {
		s.mu.Unlock()
		return
	}
	if t := s.tunnels[c.key]; !force && t != nil && t.active != 0 && t.active != c.replaces {
		s.mu.Unlock()
		return
	}
	c.out = outInstalling
	s.mu.Unlock()
	installed := false
	defer func() {
		s.mu.Lock()
		if installed {
			c.out = outInstalled
			s.tunnel(c.key).active = c.spiOut
		} else {
			c.out = outNone
		}
		c.outSA = nil
		s.unwait(c)
		s.mu.Unlock()
		close(c.done)
	}()
	c.timer.Stop()
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	rep := &pb.SAInstallReply{}
	err := s.Bus.Request(ctx, subject.Fwdd, subject.VerbSAInstall, &pb.SAInstall{Sas: []*pb.SA{c.outSA}, ReplacesSpi: c.replaces}, rep)
	if err == nil && rep.GetError() != "" {
		err = &installError{rep.GetError()}
	}
	if err != nil {
		s.trace(trace.Warning).Uint32("spi_out", c.spiOut).Err(err).Msg("outbound SA install")
		return
	}
	installed = true
	s.retirePrevious(c.prev)
	s.trace(trace.Info).Uint32("spi_in", c.spiIn).Uint32("spi_out", c.spiOut).Msg("CHILD SA outbound installed")
}

// outboundPending reports whether the outbound SA of the CHILD SA with
// inbound SPI spiIn waits for the peer (not in fwdd, nor on its way).
func (s *Server) outboundPending(spiIn uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.childOf(spiIn)
	return c != nil && c.out == outWaiting
}

// retirePrevious deletes, after RestartGrace, the SAs a previous kmd
// left in fwdd (make-before-break: the new ones carry the traffic and
// the peer had time to switch).
func (s *Server) retirePrevious(prev []*pb.SAKey) {
	if len(prev) == 0 {
		return
	}
	go func() {
		select {
		case <-time.After(s.RestartGrace):
		case <-s.ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
		defer cancel()
		s.Bus.Request(ctx, subject.Fwdd, subject.VerbSADelete, &pb.SADelete{Sas: prev, Reason: "replaced after kmd restart"}, &pb.SADeleteReply{})
	}()
}

type installError struct{ msg string }

func (e *installError) Error() string { return "fwdd: " + e.msg }
