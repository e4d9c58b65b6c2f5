// The inside interfaces: the TUN devices of the service sets, their
// addresses and MTU, and the static routes to them.

package plane

import (
	"github.com/sitesec/sitesec/fwdd/packet"
	"github.com/sitesec/sitesec/fwdd/spd"
	"github.com/sitesec/sitesec/services/trace"
)

// applyInsides creates and removes TUN devices, sets their addresses and
// fwdd's static routes.
func (a *App) applyInsides() []error {
	var errs []error
	want := map[string]bool{}
	for _, s := range a.p.SPD().Sets {
		if s.Inside != "" {
			want[s.Inside] = true
		}
	}
	have := a.p.Insides()
	for name := range have {
		if !want[name] {
			a.p.RemoveInside(name)
			a.d.Trace.Event(trace.FlagTUN, trace.Info).Str("interface", name).Msg("inside interface removed")
		}
	}
	for name := range want {
		set := a.p.SPD().ByInside(name)
		addrs, mtu := set.InsideAddresses, set.InsideMTU
		if mtu == 0 {
			mtu = insideMTU(set)
		}
		in := have[name]
		if in == nil {
			var err error
			in, err = CreateTUN(name, mtu)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			a.p.AddInside(in)
			a.d.Trace.Event(trace.FlagTUN, trace.Info).Str("interface", name).Str("linux", in.Linux).Int("mtu", mtu).Msg("inside interface created")
		}
		if err := SetMTU(in, mtu); err != nil {
			errs = append(errs, err)
		}
		if err := SetAddresses(in, addrs); err != nil {
			errs = append(errs, err)
		}
	}
	routes := StaticRoutes(a.p.SPD())
	for _, r := range routes {
		a.d.Trace.Event(trace.FlagRoute, trace.Info).Str("prefix", r.Prefix.String()).Str("dev", r.Linux).Msg("static route")
	}
	a.gw.Lock()
	a.static = routes
	a.gw.Unlock()
	if err := a.syncRoutes(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// StaticRoutes are the plan's static routes to the inside interfaces
// (routing-options static route P next-hop INSIDE).
func StaticRoutes(tbl *spd.Table) []Route {
	var routes []Route
	for _, s := range tbl.Sets {
		if s.Inside == "" {
			continue
		}
		for _, p := range s.InsideRoutes {
			routes = append(routes, Route{Prefix: p, Linux: LinuxName(s.Inside)})
		}
	}
	return routes
}

// MaxESPOverhead bounds what encapsulation adds to an inner packet: outer
// IPv4 (20), UDP (8), ESP header (8), IV (16), padding (15), pad length and
// next header (2), ICV (up to 32), rounded up.
const MaxESPOverhead = 100

// insideMTU is the MTU of an inside TUN device whose unit sets none: the
// largest tunnel MTU of the set's terms less the ESP overhead, so that the
// kernel itself fragments, or sends ICMP fragmentation needed from a proper
// source address, before a packet reaches a tunnel it would not fit
// (SPEC section 3: the tunnel MTU, not the interface's, is what counts).
// fwdd fragments what still exceeds a smaller term tunnel MTU.
func insideMTU(set *spd.Set) int {
	mtu, over := spd.DefaultTunnelMTU, MaxESPOverhead
	if set != nil {
		mtu = int(set.Options.TunnelMTU)
		for _, t := range set.Terms {
			mtu = max(mtu, int(t.Options.TunnelMTU))
		}
		if set.LocalGateway.Is6() {
			over += packet.IPv6HeaderLen - packet.IPv4HeaderLen
		}
	}
	return max(mtu-over, 576)
}
