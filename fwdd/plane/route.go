// Routes: fwdd's static routes and the reverse routes of dynamic-endpoint
// tunnels, installed with netlink.

package plane

import (
	"maps"

	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/fwdd/spd"
	"github.com/sitesec/sitesec/services/trace"
)

// reroute refreshes the reverse routes after the SAD changed.
func (a *App) reroute() {
	if err := a.syncRoutesIfChanged(); err != nil {
		a.d.Trace.Event(trace.FlagRoute, trace.Warning).Err(err).Msg("reverse routes")
	}
}

// syncRoutes installs the static routes of the configuration and the
// reverse routes of dynamic-endpoint tunnels: for each outbound SA of a
// service set with an ike-access-profile, its remote selectors are routed
// to the set's inside interface (SPEC section 3, DEP "reverse route").
func (a *App) syncRoutes() error { return a.syncRouteSet(true) }

// syncRoutesIfChanged is syncRoutes after an SA change: it touches the
// kernel only when the wanted routes differ from those last installed
// (SetRoutes replaces every route and dumps the table, once per CHILD SA
// before: 15 % of fwdd's CPU in the setup-rate benchmark).
func (a *App) syncRoutesIfChanged() error { return a.syncRouteSet(false) }

func (a *App) syncRouteSet(force bool) error {
	a.routeMu.Lock()
	defer a.routeMu.Unlock()
	a.gw.Lock()
	routes := append([]Route(nil), a.static...)
	a.gw.Unlock()
	routes = append(routes, reverseRoutes(a.p.SPD(), a.p.DB.RemoteSpans())...)
	if len(a.p.Insides()) == 0 && len(routes) == 0 {
		a.applied = nil
		return nil
	}
	want := make(map[Route]bool, len(routes))
	for _, r := range routes {
		want[r] = true
	}
	if !force && a.applied != nil && maps.Equal(want, a.applied) {
		return nil
	}
	if !force && a.applied != nil {
		// Only what changed (ChangeRoutes); on an error, all of them.
		var add, del []Route
		for _, r := range routes {
			if !a.applied[r] {
				add = append(add, r)
			}
		}
		for r := range a.applied {
			if !want[r] {
				del = append(del, r)
			}
		}
		if ChangeRoutes(add, del) == nil {
			a.applied = want
			return nil
		}
	}
	a.applied = nil
	if err := SetRoutes(routes); err != nil {
		return err
	}
	a.applied = want
	return nil
}

// reverseRoutes are the routes DEP tunnels need: the remote selector
// ranges of the outbound SAs of every DEP set, through the set's inside
// interface. It runs after every SA install and delete, over the SAD's
// distinct ranges (sad.DB.RemoteSpans, kept by the installs and deletes):
// at 10,000 tunnels a walk over every SA here was a quarter of fwdd's CPU
// while they came up; each set's DEP test and device are looked up once.
func reverseRoutes(tbl *spd.Table, spans []sad.Span) []Route {
	var out []Route
	seen := map[Route]bool{}
	// dev is the inside device of a DEP set, "" for other sets.
	dev := map[string]string{}
	for _, sp := range spans {
		linux, ok := dev[sp.Set]
		if !ok {
			if set := tbl.Set(sp.Set); set != nil && set.DEP && set.Inside != "" {
				linux = LinuxName(set.Inside)
			}
			dev[sp.Set] = linux
		}
		if linux == "" {
			continue
		}
		for _, p := range sad.RangePrefixes(sp.Start, sp.End) {
			if p.Bits() == 0 {
				continue // never a default route through one peer
			}
			r := Route{Prefix: p, Linux: linux, Reverse: true}
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}
