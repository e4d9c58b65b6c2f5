// The local gateways: the netlink address watch, the outside UDP sockets
// each gateway wants and the gateway events kmd hears.

package plane

import (
	"context"
	"net/netip"

	"github.com/sitesec/sitesec/fwdd/spd"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/trace"
)

// watchAddresses follows the machine's addresses (netlink) and tells kmd
// when a local gateway address comes or goes (SPEC section 3, gateway
// down with gw-interface: kmd stops IKE and clears the SAs or marks them
// Not Installed). A gateway that comes back gets its sockets again.
func (a *App) watchAddresses(ctx context.Context) {
	defer a.wg.Done()
	updates, err := SubscribeAddresses(ctx)
	if err != nil {
		a.d.Trace.Event(trace.FlagSocket, trace.Warning).Err(err).Msg("no address updates")
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				return
			}
			a.addressChanged(u.Addr, u.Up)
		}
	}
}

func (a *App) addressChanged(addr netip.Addr, up bool) {
	for _, s := range a.p.SPD().Sets {
		if s.LocalGateway != addr {
			continue
		}
		a.d.Trace.Event(trace.FlagSocket, trace.Notice).Str("service_set", s.Name).Str("address", addr.String()).Bool("up", up).Msg("local gateway")
		if up {
			a.rebind(false) // opens missing sockets, reports the change
			continue
		}
		a.gw.Lock()
		if a.gwUp == nil {
			a.gwUp = map[string]bool{}
		}
		a.gwUp[s.Name] = false
		a.gw.Unlock()
		ev := &pb.GatewayEvent{ServiceSet: s.Name, Address: addr.AsSlice(), Up: false}
		if err := a.d.Bus.Publish(subject.Fwdd, subject.VerbGatewayEvents, ev); err != nil {
			a.d.Trace.Event(trace.FlagGeneral, trace.Warning).Err(err).Msg("gateway event")
		}
	}
}

// Sockets are the UDP sockets the plan asks for on the local gateways
// (PlanSet.sockets: IKE, NAT-T unless no-nat-traversal or disable-natt,
// udp-encapsulate when configured).
func Sockets(tbl *spd.Table) map[netip.AddrPort]Kind {
	want := map[netip.AddrPort]Kind{}
	for _, s := range tbl.Sets {
		for _, so := range s.Sockets {
			switch so.Kind {
			case spd.SocketIKE:
				want[so.Addr] = KindIKE
			case spd.SocketNATT:
				want[so.Addr] = KindNATT
			case spd.SocketUDPEncap:
				want[so.Addr] = KindUDPEncap
			}
		}
	}
	return want
}

// rebind opens the sockets Apply asked for that are not open yet and
// publishes a GatewayEvent for each local gateway whose state changed (or
// every one, with all).
func (a *App) rebind(all bool) {
	if a.wire == nil {
		return
	}
	a.gw.Lock()
	defer a.gw.Unlock()
	if err := a.wire.Listen(a.listen); err != nil {
		a.d.Trace.Event(trace.FlagSocket, trace.Notice).Err(err).Msg("local gateway sockets")
	}
	if a.opened != nil {
		close(a.opened)
		a.opened = nil
	}
	for ap, k := range a.listen {
		a.d.Trace.Event(trace.FlagSocket, trace.Verbose).Str("address", ap.String()).Int("kind", int(k)).Msg("socket wanted")
	}
	a.wire.mu.Lock()
	have := map[netip.AddrPort]bool{}
	for ap := range a.wire.udp {
		have[ap] = true
	}
	a.wire.mu.Unlock()
	if a.gwUp == nil {
		a.gwUp = map[string]bool{}
	}
	for _, s := range a.p.SPD().Sets {
		if !s.LocalGateway.IsValid() {
			continue
		}
		up := have[netip.AddrPortFrom(s.LocalGateway, spd.IKEPort)]
		if was, ok := a.gwUp[s.Name]; ok && was == up && !all {
			continue
		}
		a.gwUp[s.Name] = up
		ev := &pb.GatewayEvent{ServiceSet: s.Name, Address: s.LocalGateway.AsSlice(), Up: up}
		if err := a.d.Bus.Publish(subject.Fwdd, subject.VerbGatewayEvents, ev); err != nil {
			a.d.Trace.Event(trace.FlagGeneral, trace.Warning).Err(err).Msg("gateway event")
		}
	}
}

// missing reports whether some socket Apply asked for is not open.
func (a *App) missing() bool {
	if a.wire == nil {
		return false
	}
	a.gw.Lock()
	defer a.gw.Unlock()
	a.wire.mu.Lock()
	defer a.wire.mu.Unlock()
	for ap := range a.listen {
		if a.wire.udp[ap] == nil {
			return true
		}
	}
	return false
}
