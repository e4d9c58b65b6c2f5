// Package spd is fwdd's security policy database: the service sets of the
// committed configuration turned into what the data plane asks per packet
// (RFC 4301 section 4.4.1): which service set an inside packet belongs to,
// which rule term it matches, and with which tunnel options.
//
// Both Junos styles reduce to the same question in a userspace data plane.
// A next-hop service set protects what is routed to its
// inside-service-interface; an interface-style set protects what reaches
// its service-interface: what fwdd steers there from the interfaces the
// set is applied to (family inet service input|output service-set, see
// plane/steer.go), or what a static route sends there. Either interface is
// a TUN device, and a packet read from it is matched against the terms of
// the set's rules in order: source and destination prefixes (swapped for
// match-direction output in a next-hop set, see Term), an empty from
// matching everything. In a next-hop set a packet no term
// matches goes to the first term (everything routed to the inside
// interface is protected); in an interface-style set it is dropped and
// counted as a rule lookup failure.
package spd

import (
	"errors"
	"fmt"
	"net/netip"

	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/plan"
)

// Defaults of SPEC section 5 (the plan fills them in; the data plane
// falls back on them for an SA without options).
const (
	DefaultReplayWindow = plan.DefaultReplayWindow
	DefaultTunnelMTU    = plan.DefaultTunnelMTU
	DefaultTTL          = plan.DefaultTTL
	DefaultUDPEncapPort = plan.DefaultUDPEncapPort
	NATTPort            = plan.NATTPort
	IKEPort             = plan.IKEPort
)

// Options are the per-tunnel data-plane knobs after precedence: a term's
// setting overrides its service set's (SPEC section 3, "Precedence"),
// as the plan resolved them.
type Options struct {
	ReplayWindow    uint32 // 0: no-anti-replay
	DF              pb.DFBit
	TunnelMTU       uint32
	TTL             uint32
	CopyTTL         bool
	TOS             uint32
	CopyTOS         bool
	Passive         bool // passive-mode-tunneling
	HeaderIntegrity bool // header-integrity-check enable-all
	NoTraceroute    bool // no-ipsec-tunnel-in-traceroute
}

// Term is one term of a rule used by a service set.
type Term struct {
	Rule, Name string
	// Direction is the rule's match-direction.
	Direction pb.MatchDirection
	// Output: source and destination swap. In a next-hop set a rule with
	// match-direction output is written for the traffic routed to the
	// outside service interface, the reverse of what the tunnel sends. In
	// an interface-style set a rule matches the packets crossing the
	// interface in its direction (family inet service input|output) as
	// they are, and those are the packets the tunnel protects: no swap.
	Output bool
	// Index is the tunnel index of show commands (the plan's).
	Index         uint32
	Src, Dst      []netip.Prefix
	RemoteGateway netip.Addr
	Manual        *pb.ManualSA
	Options       Options
}

// Matches reports whether an inside packet src -> dst matches the term.
func (t *Term) Matches(src, dst netip.Addr) bool {
	s, d := t.Src, t.Dst
	if t.Output {
		s, d = d, s
	}
	return in(s, src) && in(d, dst)
}

func in(ps []netip.Prefix, a netip.Addr) bool {
	if len(ps) == 0 {
		return true
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Set is one service set.
type Set struct {
	Name    string
	NextHop bool
	// Inside is the Junos inside interface (ms-1/2/0.1): the
	// inside-service-interface, or the service-interface of an
	// interface-style set.
	Inside          string
	Outside         string
	LocalGateway    netip.Addr
	RoutingInstance string
	DEP             bool   // has an ike-access-profile (dynamic endpoints)
	UDPEncapPort    uint16 // 0: udp-encapsulate not configured
	NATTraversal    bool
	NATKeepalive    uint32
	Terms           []*Term
	Options         Options // set level, after defaults
	// PlanBytes is the encoded size of the set's plan: the policy fwdd
	// compiled it from (show services service-sets summary).
	PlanBytes int
	// Sockets are the UDP sockets to open on the local gateway (the
	// plan's: IKE, NAT-T when enabled, udp-encapsulate).
	Sockets []Socket
	// The inside interface's configured addresses and MTU (0: none), and
	// the prefixes static routes send to it.
	InsideAddresses []string
	InsideMTU       int
	InsideRoutes    []netip.Prefix
	// Units applying an interface-style set (family inet service).
	Units []Unit
}

// Socket is one UDP socket of a set's local gateway.
type Socket struct {
	Addr netip.AddrPort
	Kind string // ike, nat-t or udp-encapsulate (the plan's names)
}

// The plan's socket kinds.
const (
	SocketIKE      = "ike"
	SocketNATT     = "nat-t"
	SocketUDPEncap = "udp-encapsulate"
)

// Unit is a logical interface applying an interface-style set.
type Unit struct {
	Name      string // ge-0/0/1.0
	Output    bool   // family inet service output; else input
	Addresses []string
}

// Lookup returns the first term matching the inside packet src -> dst.
// A next-hop set protects everything routed to its inside interface: when
// no term's from matches, its first term does. An interface-style set
// protects only what its terms match. A dynamic-endpoint set's tunnels
// have no term: Lookup returns nil and the packet goes to the outbound SA
// whose selectors cover it (Set.DEP).
func (s *Set) Lookup(src, dst netip.Addr) *Term {
	for _, t := range s.Terms {
		if t.Matches(src, dst) {
			return t
		}
	}
	if s.NextHop && len(s.Terms) > 0 {
		return s.Terms[0]
	}
	return nil
}

// Table is the SPD of one configuration.
type Table struct {
	Sets     []*Set
	byName   map[string]*Set
	byInside map[string]*Set
}

// Set returns the service set named name.
func (t *Table) Set(name string) *Set { return t.byName[name] }

// ByInside returns the service set whose inside interface is ifl.
func (t *Table) ByInside(ifl string) *Set { return t.byInside[ifl] }

// Error is a configuration problem with its hierarchy path.
type Error struct {
	Path string
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("spd: [edit %s] %s", e.Path, e.Msg) }

// Build turns the committed configuration's plan (services/plan: cfgd
// resolves it once, for kmd and fwdd alike) into the SPD. It does not
// interpret configuration statements: gateways, selectors, indexes and
// options come from the plan; only the manual SAs' keys come from the
// configuration (the plan holds no secret). It collects every problem it
// finds, each with its hierarchy path: the plan's own (a configuration
// without a plan) and the data plane's (two sets on one inside interface).
func Build(c *pb.Config) (*Table, []error) {
	t := &Table{byName: map[string]*Set{}, byInside: map[string]*Set{}}
	p, errs := plan.Of(c)
	fail := func(path, f string, a ...any) { errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf(f, a...)}) }
	for _, ps := range p.GetSets() {
		path := "services service-set " + ps.GetName()
		s := &Set{Name: ps.GetName(), NextHop: ps.GetNextHop(), Inside: ps.GetInsideInterface(), Outside: ps.GetOutsideInterface(),
			RoutingInstance: ps.GetRoutingInstance(), DEP: ps.GetDynamicEndpoints() != nil,
			UDPEncapPort: uint16(ps.GetUdpEncapPort()), NATTraversal: ps.GetNatTraversal(), NATKeepalive: ps.GetNatKeepalive(),
			Options: options(ps.GetOptions()), PlanBytes: proto.Size(ps)}
		s.LocalGateway, _ = netip.AddrFromSlice(ps.GetLocalGateway())
		for _, so := range ps.GetSockets() {
			a, ok := netip.AddrFromSlice(so.GetAddress())
			if !ok || so.GetPort() == 0 || so.GetPort() > 65535 {
				fail(path, "socket %x:%d is not an address and port", so.GetAddress(), so.GetPort())
				continue
			}
			if k := so.GetKind(); k != SocketIKE && k != SocketNATT && k != SocketUDPEncap {
				fail(path, "socket kind %q is not one fwdd opens", k)
				continue
			}
			s.Sockets = append(s.Sockets, Socket{Addr: netip.AddrPortFrom(a.Unmap(), uint16(so.GetPort())), Kind: so.GetKind()})
		}
		s.InsideAddresses, s.InsideMTU = ps.GetInsideAddresses(), int(ps.GetInsideMtu())
		for _, r := range ps.GetInsideRoutes() {
			p, err := netip.ParsePrefix(r)
			if err != nil {
				fail("routing-options static route "+r, "%v", err)
				continue
			}
			s.InsideRoutes = append(s.InsideRoutes, p.Masked())
		}
		for _, u := range ps.GetServiceUnits() {
			s.Units = append(s.Units, Unit{Name: u.GetUnit(), Output: u.GetOutput(), Addresses: u.GetAddresses()})
		}
		for _, pt := range ps.GetTunnels() {
			term := &Term{Rule: pt.GetRule(), Name: pt.GetTerm(), Index: pt.GetIndex(), Direction: pt.GetMatchDirection(),
				Output: pt.GetOutput() && s.NextHop, Options: options(pt.GetOptions())}
			// The plan's selectors have match-direction applied (swapped
			// for an output rule of a next-hop set); Term keeps the term's
			// source and destination (Matches swaps them back).
			local, err1 := prefixList(pt.GetLocalPrefixes())
			remote, err2 := prefixList(pt.GetRemotePrefixes())
			if err := errors.Join(err1, err2); err != nil {
				fail("services ipsec-vpn rule "+pt.GetRule()+" term "+pt.GetTerm()+" from", "%v", err)
				continue
			}
			term.Src, term.Dst = local, remote
			if term.Output {
				term.Src, term.Dst = remote, local
			}
			term.RemoteGateway, _ = netip.AddrFromSlice(pt.GetRemoteGateway())
			if pt.GetManual() {
				term.Manual = manualOf(c, pt.GetRule(), pt.GetTerm())
			}
			s.Terms = append(s.Terms, term)
		}
		if s.Inside != "" {
			if other := t.byInside[s.Inside]; other != nil {
				fail(path, "inside interface %s is already used by service set %s", s.Inside, other.Name)
			}
			t.byInside[s.Inside] = s
		}
		t.Sets = append(t.Sets, s)
		t.byName[s.Name] = s
	}
	return t, errs
}

// manualOf is the `then manual` of a rule term, with its keys.
func manualOf(c *pb.Config, rule, term string) *pb.ManualSA {
	for _, r := range c.GetIpsecVpn().GetRules() {
		if r.GetName() != rule {
			continue
		}
		for _, tm := range r.GetTerms() {
			if tm.GetName() == term {
				return tm.GetThen().GetManual()
			}
		}
	}
	return nil
}

func prefixList(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// options are the plan's options in the form the data plane reads per
// packet.
func options(o *pb.PlanOptions) Options {
	return Options{ReplayWindow: o.GetReplayWindow(), DF: o.GetDontFragment(), TunnelMTU: o.GetTunnelMtu(),
		TTL: o.GetTtl(), CopyTTL: o.GetCopyTtl(), TOS: o.GetTos(), CopyTOS: o.GetCopyTos(),
		Passive: o.GetPassiveModeTunneling(), HeaderIntegrity: o.GetHeaderIntegrityCheck(), NoTraceroute: o.GetNoIpsecTunnelInTraceroute()}
}

// Apply copies the options into an SA (manual SAs, or dynamic SAs kmd
// installed without them).
func (o Options) Apply(sa *pb.SA) {
	if sa.GetDirection() == pb.Direction_DIRECTION_INBOUND {
		sa.ReplayWindow = o.ReplayWindow
	}
	sa.TunnelMtu = o.TunnelMTU
	sa.DontFragment = o.DF
	sa.CopyTtl, sa.Ttl = o.CopyTTL, o.TTL
	sa.CopyTos, sa.Tos = o.CopyTOS, o.TOS
	sa.PassiveModeTunneling = o.Passive
	sa.HeaderIntegrityCheck = o.HeaderIntegrity
	sa.NoIpsecTunnelInTraceroute = o.NoTraceroute
}
