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
	"fmt"
	"net/netip"

	"github.com/sitesec/sitesec/proto/pb"
)

// Defaults of SPEC section 5.
const (
	DefaultReplayWindow = 128
	DefaultTunnelMTU    = 1500
	DefaultTTL          = 64
	DefaultUDPEncapPort = 4565
	NATTPort            = 4500
	IKEPort             = 500
)

// Options are the per-tunnel data-plane knobs after precedence: a term's
// setting overrides its service set's (SPEC section 3, "Precedence").
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
	Output        bool
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

// Build turns the committed configuration into the SPD. It collects every
// problem it finds, each with its hierarchy path; cfgd has validated the
// configuration, so these are things only the data plane cares about.
func Build(c *pb.Config) (*Table, []error) {
	t := &Table{byName: map[string]*Set{}, byInside: map[string]*Set{}}
	var errs []error
	fail := func(path, f string, a ...any) { errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf(f, a...)}) }
	vpn := c.GetIpsecVpn()
	rules := map[string]*pb.Rule{}
	for _, r := range vpn.GetRules() {
		rules[r.GetName()] = r
	}
	ruleSets := map[string]*pb.RuleSet{}
	for _, rs := range vpn.GetRuleSets() {
		ruleSets[rs.GetName()] = rs
	}
	for _, ss := range c.GetServiceSets() {
		path := "services service-set " + ss.GetName()
		s := &Set{Name: ss.GetName()}
		switch st := ss.GetStyle().(type) {
		case *pb.ServiceSet_NextHopService:
			s.NextHop = true
			s.Inside = st.NextHopService.GetInsideServiceInterface()
			s.Outside = st.NextHopService.GetOutsideServiceInterface()
		case *pb.ServiceSet_InterfaceService:
			s.Inside = st.InterfaceService.GetServiceInterface()
		}
		o := ss.GetIpsecVpnOptions()
		if len(ss.GetIpsecVpnRules()) == 0 && len(ss.GetIpsecVpnRuleSets()) == 0 && o.GetIkeAccessProfile() == "" {
			continue // not an IPsec service set
		}
		lg := o.GetLocalGateway()
		if a, err := netip.ParseAddr(lg.GetAddress()); err == nil {
			s.LocalGateway = a
		} else if lg.GetAddress() != "" {
			fail(path+" ipsec-vpn-options", "local-gateway %q: %v", lg.GetAddress(), err)
		} else if lg.GetInterface() != "" {
			s.LocalGateway = interfaceAddress(c, lg.GetInterface())
			if !s.LocalGateway.IsValid() {
				fail(path+" ipsec-vpn-options", "local-gateway interface %s has no address", lg.GetInterface())
			}
		}
		s.RoutingInstance = lg.GetRoutingInstance()
		s.DEP = o.GetIkeAccessProfile() != ""
		if u := o.GetUdpEncapsulate(); u != nil {
			s.UDPEncapPort = uint16(u.GetDestPort())
			if s.UDPEncapPort == 0 {
				s.UDPEncapPort = DefaultUDPEncapPort
			}
		}
		s.NATTraversal = !o.GetNoNatTraversal() && !vpn.GetDisableNatt()
		s.NATKeepalive = o.GetNatKeepalive()
		s.Options = setOptions(ss, vpn)
		var ruleNames []string
		ruleNames = append(ruleNames, ss.GetIpsecVpnRules()...)
		for _, rsn := range ss.GetIpsecVpnRuleSets() {
			rs := ruleSets[rsn]
			if rs == nil {
				fail(path, "rule-set %s is not defined", rsn)
				continue
			}
			ruleNames = append(ruleNames, rs.GetRules()...)
		}
		for _, rn := range ruleNames {
			r := rules[rn]
			if r == nil {
				fail(path, "ipsec-vpn-rules %s is not defined", rn)
				continue
			}
			for _, tm := range r.GetTerms() {
				tp := "services ipsec-vpn rule " + rn + " term " + tm.GetName()
				dir := r.GetMatchDirection()
				term := &Term{Rule: rn, Name: tm.GetName(), Direction: dir, Output: dir == pb.MatchDirection_MATCH_DIRECTION_OUTPUT && s.NextHop}
				for _, p := range tm.GetFrom().GetSourceAddress() {
					if pp, err := parsePrefix(p); err != nil {
						fail(tp+" from", "source-address %q: %v", p, err)
					} else {
						term.Src = append(term.Src, pp)
					}
				}
				for _, p := range tm.GetFrom().GetDestinationAddress() {
					if pp, err := parsePrefix(p); err != nil {
						fail(tp+" from", "destination-address %q: %v", p, err)
					} else {
						term.Dst = append(term.Dst, pp)
					}
				}
				then := tm.GetThen()
				if g := then.GetRemoteGateway(); g != "" {
					a, err := netip.ParseAddr(g)
					if err != nil {
						fail(tp+" then", "remote-gateway %q: %v", g, err)
					}
					term.RemoteGateway = a
				}
				term.Manual = then.GetManual()
				term.Options = termOptions(s.Options, then, s.DEP)
				s.Terms = append(s.Terms, term)
			}
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

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// interfaceAddress returns the first address of a unit such as "ge-0/0/0.0".
func interfaceAddress(c *pb.Config, ifl string) netip.Addr {
	for _, ifd := range c.GetInterfaces() {
		for _, u := range ifd.GetUnits() {
			if fmt.Sprintf("%s.%d", ifd.GetName(), u.GetNumber()) != ifl {
				continue
			}
			for _, a := range append(u.GetInetAddresses(), u.GetInet6Addresses()...) {
				if p, err := netip.ParsePrefix(a); err == nil {
					return p.Addr()
				}
			}
		}
	}
	return netip.Addr{}
}

func setOptions(ss *pb.ServiceSet, vpn *pb.IPsecVPN) Options {
	o := ss.GetIpsecVpnOptions()
	opt := Options{ReplayWindow: DefaultReplayWindow, TunnelMTU: DefaultTunnelMTU, TTL: DefaultTTL}
	if o.AntiReplayWindowSize != nil {
		opt.ReplayWindow = o.GetAntiReplayWindowSize()
	}
	if o.GetNoAntiReplay() {
		opt.ReplayWindow = 0
	}
	if o.TunnelMtu != nil {
		opt.TunnelMTU = o.GetTunnelMtu()
	}
	opt.DF = o.GetDontFragment()
	opt.Passive = o.GetPassiveModeTunneling()
	opt.HeaderIntegrity = ss.GetServiceSetOptions().GetHeaderIntegrityCheckEnableAll()
	opt.NoTraceroute = vpn.GetNoIpsecTunnelInTraceroute()
	return opt
}

// termOptions applies a term's overrides to its set's options. Set-level
// copy- and set-dont-fragment-bit act on dynamic-endpoint tunnels only
// (SPEC section 3); set-level clear applies to every tunnel of the set.
func termOptions(set Options, then *pb.TermThen, dep bool) Options {
	o := set
	if o.DF != pb.DFBit_DF_BIT_CLEAR && !dep {
		o.DF = pb.DFBit_DF_BIT_UNSPECIFIED
	}
	if then == nil {
		return o
	}
	if then.AntiReplayWindowSize != nil {
		o.ReplayWindow = then.GetAntiReplayWindowSize()
	}
	if then.GetNoAntiReplay() {
		o.ReplayWindow = 0
	}
	if then.TunnelMtu != nil {
		o.TunnelMTU = then.GetTunnelMtu()
	}
	if then.GetDontFragment() != pb.DFBit_DF_BIT_UNSPECIFIED {
		o.DF = then.GetDontFragment()
	}
	o.CopyTTL = then.GetCopyTtlFromInnerIpHeader()
	if then.Ttl != nil {
		o.TTL = then.GetTtl()
	}
	o.CopyTOS = then.GetCopyTosFromInnerIpHeader()
	if then.Tos != nil {
		o.TOS = then.GetTos()
	}
	return o
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
