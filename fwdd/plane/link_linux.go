package plane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// RouteProtocol marks the routes fwdd installs (routing-options static
// routes to inside interfaces), so that it can find and remove its own;
// 146 is unassigned in iproute2's rt_protos.
const RouteProtocol = netlink.RouteProtocol(146)

// CreateTUN creates the TUN device of an inside interface.
func CreateTUN(junos string, mtu int) (*Inside, error) {
	name := LinuxName(junos)
	dev, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, fmt.Errorf("link: TUN %s for %s: %w", name, junos, err)
	}
	if real, err := dev.Name(); err == nil {
		name = real
	}
	return &Inside{Junos: junos, Linux: name, Dev: dev, MTU: mtu}, nil
}

// SetMTU sets the MTU of a TUN device.
func SetMTU(in *Inside, mtu int) error {
	l, err := netlink.LinkByName(in.Linux)
	if err != nil {
		return fmt.Errorf("link: %s: %w", in.Linux, err)
	}
	if l.Attrs().MTU == mtu {
		return nil
	}
	if err := netlink.LinkSetMTU(l, mtu); err != nil {
		return fmt.Errorf("link: %s mtu %d: %w", in.Linux, mtu, err)
	}
	in.MTU = mtu
	return nil
}

// SetAddresses gives a TUN device exactly the addresses (prefixes) and
// brings it up.
func SetAddresses(in *Inside, prefixes []string) error {
	l, err := netlink.LinkByName(in.Linux)
	if err != nil {
		return fmt.Errorf("link: %s: %w", in.Linux, err)
	}
	var errs []error
	want := map[string]bool{}
	for _, s := range prefixes {
		a, err := netlink.ParseAddr(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("link: %s address %q: %w", in.Junos, s, err))
			continue
		}
		want[a.IPNet.String()] = true
		if err := netlink.AddrReplace(l, a); err != nil {
			errs = append(errs, fmt.Errorf("link: %s address %s: %w", in.Junos, s, err))
		}
	}
	have, _ := netlink.AddrList(l, netlink.FAMILY_ALL)
	for _, a := range have {
		if !want[a.IPNet.String()] && a.IP.IsGlobalUnicast() {
			netlink.AddrDel(l, &a)
		}
	}
	in.setAddrs(prefixes)
	// Without inet6 addresses the device has no IPv6 at all, so the
	// kernel sends no link-local chatter into the tunnel.
	v6 := "1"
	for _, s := range prefixes {
		if strings.Contains(s, ":") {
			v6 = "0"
		}
	}
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+in.Linux+"/disable_ipv6", []byte(v6), 0o644)
	if err := netlink.LinkSetUp(l); err != nil {
		errs = append(errs, fmt.Errorf("link: %s up: %w", in.Linux, err))
	}
	return errors.Join(errs...)
}

// Route is a static route to an inside interface.
type Route struct {
	Prefix netip.Prefix
	Linux  string
	// Reverse: a dynamic-endpoint tunnel's reverse route, installed in
	// ReverseTable rather than main (see ReverseTable).
	Reverse bool
}

// The reverse routes of dynamic-endpoint tunnels live in their own table,
// ReverseTable, looked up by the rule `not fwmark OutsideMark lookup
// ReverseTable` (priority ReversePrio, after the steering rules, before
// main): every packet the kernel routes takes them, except fwdd's own
// IKE and ESP, whose sockets carry OutsideMark. A client whose selectors
// cover its own outside address (a host-to-net road warrior without a
// virtual IP, or 0.0.0.0/0 split into halves) keeps its IKE and ESP on
// the outside interface while the traffic for it goes into the tunnel,
// as strongSwan's and Junos's bypass of IKE/ESP traffic has it.
const (
	ReverseTable = 0x91000092 // below steerTableBase: not a steering table
	ReversePrio  = 14603
	OutsideMark  = 0x92000000
)

// reverseRule is the rule that looks ReverseTable up.
func reverseRule(family int) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = family
	r.Priority = ReversePrio
	r.Table = ReverseTable
	r.Mark = OutsideMark
	r.Mask = func() *uint32 { m := uint32(0xffffffff); return &m }()
	r.Invert = true
	r.Protocol = uint8(RouteProtocol)
	return r
}

// SetRoutes makes fwdd's routes exactly routes: the static routes to the
// inside interfaces in main, the reverse routes in ReverseTable (with its
// rule, kept in place even when there are none, so that a later reverse
// route never catches fwdd's own traffic).
func SetRoutes(routes []Route) error {
	var errs []error
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		if err := netlink.RuleAdd(reverseRule(fam)); err != nil && !errors.Is(err, unix.EEXIST) && !(fam == netlink.FAMILY_V6 && errors.Is(err, unix.EAFNOSUPPORT)) {
			errs = append(errs, fmt.Errorf("link: reverse-route rule: %w", err))
		}
	}
	want := map[string]bool{}
	for _, r := range routes {
		l, err := netlink.LinkByName(r.Linux)
		if err != nil {
			errs = append(errs, fmt.Errorf("link: route %s: %w", r.Prefix, err))
			continue
		}
		dst := &net.IPNet{IP: r.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(r.Prefix.Bits(), r.Prefix.Addr().BitLen())}
		rt := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Protocol: RouteProtocol, Scope: netlink.SCOPE_LINK}
		if r.Reverse {
			rt.Table = ReverseTable
		}
		if err := netlink.RouteReplace(rt); err != nil {
			errs = append(errs, fmt.Errorf("link: route %s dev %s: %w", r.Prefix, r.Linux, err))
		}
		want[fmt.Sprintf("%d %s/%d", rt.Table, dst, l.Attrs().Index)] = true
	}
	for _, table := range []int{0, ReverseTable} {
		filter, mask := &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL
		if table != 0 {
			filter.Table, mask = table, mask|netlink.RT_FILTER_TABLE
		}
		have, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, filter, mask)
		if err != nil {
			continue
		}
		for _, rt := range have {
			t := rt.Table
			if t == unix.RT_TABLE_MAIN {
				t = 0
			}
			if rt.Dst != nil && !want[fmt.Sprintf("%d %s/%d", t, rt.Dst, rt.LinkIndex)] {
				netlink.RouteDel(&rt)
			}
		}
	}
	return errors.Join(errs...)
}

// ChangeRoutes adds the routes add and removes the routes del, touching no
// other: after one CHILD SA's install or delete, at most its reverse
// routes change. SetRoutes replaced every route and dumped the tables per
// change, quadratic once each client has its own selector (82 % of fwdd's
// CPU in the setup-rate benchmark with 400 clients).
func ChangeRoutes(add, del []Route) error {
	var errs []error
	for _, r := range append(append([]Route(nil), del...), add...) {
		l, err := netlink.LinkByName(r.Linux)
		if err != nil {
			errs = append(errs, fmt.Errorf("link: route %s: %w", r.Prefix, err))
			continue
		}
		dst := &net.IPNet{IP: r.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(r.Prefix.Bits(), r.Prefix.Addr().BitLen())}
		rt := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Protocol: RouteProtocol, Scope: netlink.SCOPE_LINK}
		if r.Reverse {
			rt.Table = ReverseTable
		}
		if slices.Contains(del, r) {
			if err := netlink.RouteDel(rt); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("link: delete route %s dev %s: %w", r.Prefix, r.Linux, err))
			}
			continue
		}
		if err := netlink.RouteReplace(rt); err != nil {
			errs = append(errs, fmt.Errorf("link: route %s dev %s: %w", r.Prefix, r.Linux, err))
		}
	}
	return errors.Join(errs...)
}

// AddressUpdate is an address that appeared (Up) or went away.
type AddressUpdate struct {
	Addr netip.Addr
	Up   bool
}

// SubscribeAddresses reports address changes of the process's network
// namespace until ctx ends.
func SubscribeAddresses(ctx context.Context) (<-chan AddressUpdate, error) {
	raw := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	if err := netlink.AddrSubscribeWithOptions(raw, done, netlink.AddrSubscribeOptions{}); err != nil {
		return nil, fmt.Errorf("link: address updates: %w", err)
	}
	out := make(chan AddressUpdate, 64)
	go func() {
		defer close(out)
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-raw:
				if !ok {
					return
				}
				a, ok := netip.AddrFromSlice(u.LinkAddress.IP)
				if !ok {
					continue
				}
				select {
				case out <- AddressUpdate{Addr: a.Unmap(), Up: u.NewAddr}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
