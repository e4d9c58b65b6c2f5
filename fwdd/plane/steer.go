package plane

import (
	"errors"
	"hash/fnv"
	"net/netip"
	"strings"

	"github.com/sitesec/sitesec/fwdd/spd"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/trace"
)

// Interface-style service sets (issue 12 item 3). Junos applies such a
// set to a logical interface with `family inet service input service-set
// S` (what the interface receives) and `output service-set S` (what it
// sends): the packets crossing the interface in a direction go to the
// services PIC, which matches them against the set's rules of that
// match-direction; a packet a term matches is carried by the term's
// tunnel, any other goes on unchanged. The reverse traffic arrives as ESP
// at the local gateway and is decrypted whatever the interface.
//
// fwdd has no services PIC between the forwarding path and the wire, so
// it steers with the kernel's policy routing (RFC 4301 section 4.4.1's
// SPD as routing rules, tagged with RouteProtocol so fwdd finds its own):
// each interface-style set gets a routing table whose default route is
// its service-interface's TUN device, and
//
//   - input on unit X, for each term of the set's match-direction input
//     rules: `iif X from SRC to DST lookup SET`;
//   - output on unit X, for each term of its match-direction output rules:
//     `from SRC to DST lookup main suppress_ifgroup G` then `from SRC to
//     DST lookup SET`, where G is X's interface group: the main table's
//     answer stands unless it sends the packet out of X, and a packet
//     that would leave X goes to the TUN instead. This also takes the
//     router's own packets (Junos: an interface-style set sees Routing
//     Engine traffic).
//
// Ahead of these, the set's TUN device and its local gateway are excluded
// (`iif TUN lookup main`, `from GATEWAY lookup main`), so decrypted
// packets and fwdd's own IKE and ESP are never steered. Each set's table
// also holds an unreachable default behind the TUN route, so while the
// TUN is gone (fwdd restarting) the steered traffic is dropped, not sent
// in the clear.

// Rule priorities of the steering rules: after the local table (0), before
// main (32766).
const (
	steerPrioExclude  = 14600
	steerPrioMatch    = 14601
	steerPrioFallback = 14602
	// steerTableBase is the first routing table number fwdd uses.
	steerTableBase = 0x92000000
	// steerGroupBase is the interface group fwdd gives an interface with
	// output steering whose group is the default 0 (low 16 bits: the
	// interface index).
	steerGroupBase = 0x920000
)

// Steer is the steering of one interface-style service set.
type Steer struct {
	Set     string
	Inside  string // the Junos service-interface, fwdd's TUN device
	Table   int
	Gateway netip.Addr
	Matches []SteerMatch
}

// SteerMatch is one term applied to one unit in one direction.
type SteerMatch struct {
	Unit   string // Junos logical interface, ge-0/0/1.0
	Output bool   // family inet service output; else input
	// Addresses are the unit's configured family inet addresses, to find
	// its Linux device when no device is named after it.
	Addresses []string
	Src, Dst  netip.Prefix // invalid: any
	Rule      string       // rule and term, for traces
	Term      string
}

// SteerTable is the routing table of set.
func SteerTable(set string) int {
	h := fnv.New32a()
	h.Write([]byte(set))
	return steerTableBase + int(h.Sum32()&0xffffff)
}

// SteerPlan works out the steering of every interface-style service set
// from the units the plan says apply it (family inet service
// input|output service-set, resolved by services/plan; fwdd reads no
// interface statement itself).
func SteerPlan(tbl *spd.Table) []Steer {
	var out []Steer
	for _, set := range tbl.Sets {
		if set.NextHop || set.Inside == "" || len(set.Units) == 0 {
			continue
		}
		st := Steer{Set: set.Name, Inside: set.Inside, Table: SteerTable(set.Name), Gateway: set.LocalGateway}
		for _, u := range set.Units {
			want := pb.MatchDirection_MATCH_DIRECTION_INPUT
			if u.Output {
				want = pb.MatchDirection_MATCH_DIRECTION_OUTPUT
			}
			for _, t := range set.Terms {
				if t.Direction != want {
					continue
				}
				for _, src := range orAny(t.Src) {
					for _, dst := range orAny(t.Dst) {
						if (src.IsValid() && !src.Addr().Is4()) || (dst.IsValid() && !dst.Addr().Is4()) {
							continue // family inet: IPv4 only
						}
						st.Matches = append(st.Matches, SteerMatch{Unit: u.Name, Output: u.Output, Addresses: u.Addresses,
							Src: src, Dst: dst, Rule: t.Rule, Term: t.Name})
					}
				}
			}
		}
		out = append(out, st)
	}
	return out
}

// orAny is ps, or one invalid prefix (any) when ps is empty.
func orAny(ps []netip.Prefix) []netip.Prefix {
	if len(ps) == 0 {
		return []netip.Prefix{{}}
	}
	return ps
}

// UnitDeviceNames are the Linux device names a Junos logical interface may
// have, in the order fwdd tries them: for unit 0 the physical interface
// with '/' as '-' (ge-0/0/1.0 -> ge-0-0-1), then the unit's own name as
// fwdd names inside interfaces (ge-0-0-1u5), then a VLAN device's usual
// name (ge-0-0-1.5). Failing all, fwdd takes the device holding one of
// the unit's configured addresses.
func UnitDeviceNames(unit string) []string {
	ifd, num, ok := strings.Cut(unit, ".")
	if !ok {
		num = "0"
	}
	phys := LinuxName(ifd)
	var out []string
	if num == "0" {
		out = append(out, phys)
	}
	out = append(out, LinuxName(ifd+"."+num))
	if v := phys + "." + num; len(v) <= maxIfName {
		out = append(out, v)
	}
	return out
}

// applySteering applies the policy routing of the interface-style sets
// (family inet service input|output service-set). A unit whose Linux
// device is not there (yet) is not a commit error: the trace says so and
// sweep tries again, as for a local gateway address that is missing.
// Called with mu held.
func (a *App) applySteering() {
	// Always synced, even to nothing: rules a killed fwdd left behind for
	// a set that is gone are removed.
	var errs []error
	plan := SteerPlan(a.p.SPD())
	for _, s := range plan {
		for _, m := range s.Matches {
			a.d.Trace.Event(trace.FlagRoute, trace.Info).Str("service_set", s.Set).Str("unit", m.Unit).Bool("output", m.Output).
				Str("rule", m.Rule).Str("term", m.Term).Str("src", prefixOrAny(m.Src)).Str("dst", prefixOrAny(m.Dst)).Msg("steer")
		}
	}
	if err := a.steering.Apply(plan); err != nil {
		errs = append(errs, err)
	}
	a.steerRetry = len(errs) > 0
	if err := errors.Join(errs...); err != nil {
		a.d.Trace.Event(trace.FlagRoute, trace.Warning).Err(err).Msg("interface-style steering")
	}
}

// retrySteering applies the last steering plan again while some of it is
// missing.
func (a *App) retrySteering() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.steerRetry || a.cfg == nil {
		return
	}
	a.applySteering()
}

func prefixOrAny(p netip.Prefix) string {
	if !p.IsValid() {
		return "any"
	}
	return p.String()
}
