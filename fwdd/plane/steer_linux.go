package plane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Steering is the kernel state fwdd keeps for interface-style service
// sets (steer.go): its rules, its tables' routes and the interface groups
// it gave.
type Steering struct {
	// groups are the interfaces (by index) whose group fwdd set, with the
	// group.
	groups map[int]int
	// synced is set after the first Apply (which always looks for rules
	// and routes a killed fwdd left); active while the last plan steered
	// anything. With neither an empty plan has nothing to remove, and
	// Apply does not list the kernel's routes at each commit.
	synced, active bool
}

// ruleKey identifies a rule for the comparison of wanted and installed.
func ruleKey(r *netlink.Rule) string {
	s := func(n *net.IPNet) string {
		if n == nil {
			return "all"
		}
		return n.String()
	}
	return fmt.Sprintf("%d %s %s %s %d %d", r.Priority, r.IifName, s(r.Src), s(r.Dst), r.Table, r.SuppressIfgroup)
}

func ipnet(p netip.Prefix) *net.IPNet {
	if !p.IsValid() {
		return nil
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func newRule(prio, table int) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = unix.AF_INET
	r.Priority = prio
	r.Table = table
	r.Protocol = uint8(RouteProtocol)
	return r
}

// unitLink finds the Linux device of a Junos unit (UnitDeviceNames, then
// by address).
func unitLink(m SteerMatch) (netlink.Link, error) {
	for _, n := range UnitDeviceNames(m.Unit) {
		if l, err := netlink.LinkByName(n); err == nil {
			return l, nil
		}
	}
	for _, s := range m.Addresses {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			continue
		}
		addrs, _ := netlink.AddrList(nil, netlink.FAMILY_V4)
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == p.Addr() {
				if l, err := netlink.LinkByIndex(a.LinkIndex); err == nil {
					return l, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("steer: no Linux device for %s (tried %v and its addresses %v)", m.Unit, UnitDeviceNames(m.Unit), m.Addresses)
}

// Apply makes the kernel's steering exactly plan: rules, the sets'
// routing tables, interface groups. It returns every problem; a unit with
// no device yet is one, and the caller tries again later.
func (st *Steering) Apply(plan []Steer) error {
	if len(plan) == 0 && st.synced && !st.active {
		return nil
	}
	st.synced, st.active = true, len(plan) > 0
	var errs []error
	if st.groups == nil {
		st.groups = map[int]int{}
	}
	var rules []*netlink.Rule
	type tableRoute struct {
		table int
		dev   string
	}
	var routes []tableRoute
	usedGroups := map[int]bool{}
	for _, s := range plan {
		tun := LinuxName(s.Inside)
		routes = append(routes, tableRoute{s.Table, tun})
		r := newRule(steerPrioExclude, unix.RT_TABLE_MAIN)
		r.IifName = tun
		rules = append(rules, r)
		if s.Gateway.Is4() {
			r := newRule(steerPrioExclude, unix.RT_TABLE_MAIN)
			r.Src = ipnet(netip.PrefixFrom(s.Gateway, 32))
			rules = append(rules, r)
		}
		for _, m := range s.Matches {
			l, err := unitLink(m)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !m.Output {
				r := newRule(steerPrioMatch, s.Table)
				r.IifName = l.Attrs().Name
				r.Src, r.Dst = ipnet(m.Src), ipnet(m.Dst)
				rules = append(rules, r)
				continue
			}
			g, err := st.group(l)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			usedGroups[l.Attrs().Index] = true
			keep := newRule(steerPrioMatch, unix.RT_TABLE_MAIN)
			keep.Src, keep.Dst = ipnet(m.Src), ipnet(m.Dst)
			keep.SuppressIfgroup = g
			steer := newRule(steerPrioFallback, s.Table)
			steer.Src, steer.Dst = ipnet(m.Src), ipnet(m.Dst)
			rules = append(rules, keep, steer)
		}
	}
	// Rules: add what is missing, remove what is fwdd's and not wanted.
	want := map[string]bool{}
	have := map[string]bool{}
	installed, err := netlink.RuleList(netlink.FAMILY_V4)
	if err != nil {
		errs = append(errs, fmt.Errorf("steer: rules: %w", err))
	}
	for _, r := range rules {
		want[ruleKey(r)] = true
	}
	for i := range installed {
		r := &installed[i]
		if r.Protocol != uint8(RouteProtocol) || r.Priority == ReversePrio {
			continue // the reverse-route rule is SetRoutes'
		}
		k := ruleKey(r)
		if !want[k] || have[k] {
			if err := netlink.RuleDel(r); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("steer: remove rule %s: %w", r, err))
			}
			continue
		}
		have[k] = true
	}
	for _, r := range rules {
		k := ruleKey(r)
		if have[k] {
			continue
		}
		have[k] = true
		if err := netlink.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("steer: rule %s: %w", k, err))
		}
	}
	// Tables: the TUN route and an unreachable default behind it.
	wantRoute := map[string]bool{}
	for _, tr := range routes {
		wantRoute[fmt.Sprintf("%d unreachable", tr.table)] = true
		bh := &netlink.Route{Table: tr.table, Dst: ipnet(netip.MustParsePrefix("0.0.0.0/0")), Type: unix.RTN_UNREACHABLE,
			Protocol: RouteProtocol, Priority: 0xffffffff}
		if err := netlink.RouteReplace(bh); err != nil {
			errs = append(errs, fmt.Errorf("steer: table %d unreachable default: %w", tr.table, err))
		}
		l, err := netlink.LinkByName(tr.dev)
		if err != nil {
			errs = append(errs, fmt.Errorf("steer: table %d: %s: %w", tr.table, tr.dev, err))
			continue
		}
		wantRoute[fmt.Sprintf("%d %d", tr.table, l.Attrs().Index)] = true
		rt := &netlink.Route{Table: tr.table, LinkIndex: l.Attrs().Index, Dst: ipnet(netip.MustParsePrefix("0.0.0.0/0")),
			Scope: netlink.SCOPE_LINK, Protocol: RouteProtocol}
		if err := netlink.RouteReplace(rt); err != nil {
			errs = append(errs, fmt.Errorf("steer: table %d default dev %s: %w", tr.table, tr.dev, err))
		}
	}
	all, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_UNSPEC},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err == nil {
		for _, rt := range all {
			if rt.Table < steerTableBase {
				continue
			}
			k := fmt.Sprintf("%d %d", rt.Table, rt.LinkIndex)
			if rt.Type == unix.RTN_UNREACHABLE {
				k = fmt.Sprintf("%d unreachable", rt.Table)
			}
			if !wantRoute[k] {
				netlink.RouteDel(&rt)
			}
		}
	}
	// Groups fwdd gave and no longer needs go back to 0.
	for idx := range st.groups {
		if usedGroups[idx] {
			continue
		}
		if l, err := netlink.LinkByIndex(idx); err == nil && l.Attrs().Group == uint32(st.groups[idx]) {
			_ = netlink.LinkSetGroup(l, 0)
		}
		delete(st.groups, idx)
	}
	return errors.Join(errs...)
}

// group returns l's interface group for suppress_ifgroup, giving l a group
// of its own when it has the default one (0, shared by every interface).
func (st *Steering) group(l netlink.Link) (int, error) {
	if g := int(l.Attrs().Group); g != 0 {
		if g&^0xffff == steerGroupBase {
			st.groups[l.Attrs().Index] = g // fwdd's, from before a restart
		}
		return g, nil
	}
	g := steerGroupBase | (l.Attrs().Index & 0xffff)
	if err := netlink.LinkSetGroup(l, g); err != nil {
		return 0, fmt.Errorf("steer: interface group of %s: %w", l.Attrs().Name, err)
	}
	st.groups[l.Attrs().Index] = g
	return g, nil
}
