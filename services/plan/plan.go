// Package plan resolves a checked configuration into the plan kmd and
// fwdd run (pb.Plan, issue 11): per service set its local gateway (an
// interface resolved to its address), sockets and options; per rule term
// its tunnel key and index, selectors with match-direction applied, remote
// gateways, the data-plane options after every precedence rule of SPEC
// section 3, and the IKE and IPsec proposals with Junos's defaults filled
// in; per dynamic-endpoint set its access profile's proposals and allowed
// proxy pairs.
//
// cfgd resolves the plan once, when it checks a configuration, and sends
// it in Config.plan. The daemons read it through Of; they never interpret
// the statements again, so they cannot disagree.
package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/proto/pb"
)

// Defaults of SPEC section 5 the plan fills in.
const (
	DefaultReplayWindow = 128
	DefaultTunnelMTU    = 1500
	DefaultTTL          = 64
	DefaultUDPEncapPort = 4565
	DefaultNATKeepalive = 5 // seconds
	DefaultDPDInterval  = 10
	DefaultDPDThreshold = 3
	DefaultIKELifetime  = 3600
	DefaultIPsecLife    = 28800
	IKEPort             = 500
	NATTPort            = 4500

	// A proposal's omitted statements: the schema's declared defaults,
	// the first values of Juniper's table of implicit proposals (IKE:
	// dh-group group1, sha1, 3des-cbc; IPsec: ESP, hmac-sha1-96,
	// 3des-cbc) for IKEv1 and IKEv2 alike (issue 12 item 8; kmd runs
	// them, commit check warns that they are weak). An IKEv2 AEAD suite's
	// PRF defaults to sha-256.
	DefaultMethod    = "pre-shared-keys"
	V1DefaultGroup   = "group1"
	V1DefaultHash    = "sha1"
	V2DefaultGroup   = "group1"
	V2DefaultHash    = "sha1"
	V2DefaultAEADPRF = "sha-256"
	DefaultIKEEnc    = "3des-cbc"
	DefaultIPsecAuth = "hmac-sha1-96"
	DefaultIPsecEnc  = "3des-cbc"
	// DefaultPFSGroup is perfect-forward-secrecy's keys when the
	// statement is there without them (cfgd fills it in, as the schema
	// declares).
	DefaultPFSGroup = "group1"
	// DefaultVersion is the IKE version of a policy without `version`.
	DefaultVersion = 1
)

// Error is a configuration problem with its hierarchy path, in the form
// cfgd reports ("[edit PATH] message").
type Error struct {
	Path string
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("[edit %s] %s", e.Path, e.Msg) }

// Of returns the configuration's plan: the one cfgd resolved, or, for a
// configuration without one (a test, a snapshot of an older cfgd), the
// same resolution done here. Errors are those of Resolve; a plan from cfgd
// has none (cfgd refuses a configuration whose plan has errors).
func Of(c *pb.Config) (*pb.Plan, []error) {
	if p := c.GetPlan(); p != nil {
		return p, nil
	}
	return Resolve(c)
}

// Resolve makes the plan of c. It reports every problem at once, each with
// its hierarchy path; what has a problem is left out of the plan.
func Resolve(c *pb.Config) (*pb.Plan, []error) {
	r := &resolver{c: c, rules: map[string]*pb.Rule{}, ruleSets: map[string]*pb.RuleSet{},
		profiles: map[string]*pb.AccessProfile{}}
	v := c.GetIpsecVpn()
	for _, x := range v.GetRules() {
		r.rules[x.GetName()] = x
	}
	for _, x := range v.GetRuleSets() {
		r.ruleSets[x.GetName()] = x
	}
	for _, x := range c.GetAccessProfiles() {
		r.profiles[x.GetName()] = x
	}
	r.indexUnits()
	p := &pb.Plan{}
	for _, ss := range c.GetServiceSets() {
		if s := r.set(ss); s != nil {
			p.Sets = append(p.Sets, s)
		}
	}
	return p, r.errs
}

type resolver struct {
	c *pb.Config
	// ikePolicies and ipsecPolicies index the policies by name (the last
	// of a name wins), made on first use: 10,000 tunnels each looking
	// their policy up in a list took seconds (issue 15 goal 5).
	ikePolicies   map[string]*pb.IKEPolicy
	ipsecPolicies map[string]*pb.IPsecPolicy
	rules         map[string]*pb.Rule
	ruleSets      map[string]*pb.RuleSet
	profiles      map[string]*pb.AccessProfile
	errs          []error
	index         uint32
	// ikes caches a resolution per IKE policy, IPsec policy and profile:
	// tunnels sharing their policies share it (a 10,000-set plan holds
	// each once). A tunnel with DPD gets its own copy.
	ikes map[[3]string]*pb.PlanIKE
	// props caches proposals with their defaults filled, by kind, name
	// and IKE version, shared by the policies naming them.
	props map[propKey]proto.Message
	// options are the first distinct set-level options met.
	options []*pb.PlanOptions
	// units are the logical interfaces by name (ge-0/0/1.0); applied the
	// units applying each set with family inet service; routes the static
	// routes' prefixes by next-hop interface. Made once: a set looking
	// them up in the lists was quadratic at 10,000 sets.
	units   map[string]*pb.Unit
	applied map[string][]*pb.PlanServiceUnit
	routes  map[string][]string
}

// indexUnits makes r.units, r.applied and r.routes.
func (r *resolver) indexUnits() {
	r.units = map[string]*pb.Unit{}
	r.applied = map[string][]*pb.PlanServiceUnit{}
	r.routes = map[string][]string{}
	for _, ifd := range r.c.GetInterfaces() {
		for _, u := range ifd.GetUnits() {
			name := fmt.Sprintf("%s.%d", ifd.GetName(), u.GetNumber())
			if _, dup := r.units[name]; !dup {
				r.units[name] = u
			}
			for _, dir := range []struct {
				output bool
				sets   []string
			}{{false, u.GetServiceInput()}, {true, u.GetServiceOutput()}} {
				for _, set := range dir.sets {
					r.applied[set] = append(r.applied[set], &pb.PlanServiceUnit{Unit: name, Output: dir.output,
						Addresses: slices.Clone(u.GetInetAddresses())})
				}
			}
		}
	}
	for _, sr := range r.c.GetRoutingOptions().GetStaticRoutes() {
		var p netip.Prefix
		parsed := false
		for _, nh := range sr.GetNextHops() {
			if _, err := netip.ParseAddr(nh); err == nil {
				continue // an address: the kernel's route, not fwdd's
			}
			if !parsed {
				var err error
				if p, err = netip.ParsePrefix(sr.GetPrefix()); err != nil {
					r.fail("routing-options static route "+sr.GetPrefix(), "%v", err)
					break
				}
				parsed = true
			}
			r.routes[nh] = append(r.routes[nh], p.Masked().String())
		}
	}
}

// inside fills the set's inside interface as configured: the unit's
// addresses and MTU, the static routes to it, and for an interface-style
// set the units applying it.
func (r *resolver) inside(s *pb.PlanSet) {
	if s.InterfaceStyle {
		s.ServiceUnits = r.applied[s.Name]
	}
	if s.InsideInterface == "" {
		return
	}
	if u := r.units[s.InsideInterface]; u != nil {
		s.InsideAddresses = append(slices.Clone(u.GetInetAddresses()), u.GetInet6Addresses()...)
		s.InsideMtu = u.GetMtu()
	}
	s.InsideRoutes = r.routes[s.InsideInterface]
}

type propKey struct {
	ipsec   bool
	name    string
	version uint32
}

func (r *resolver) ikeProposal(prop *pb.IKEProposal, version uint32) *pb.IKEProposal {
	k := propKey{false, prop.GetName(), version}
	if p, ok := r.props[k]; ok {
		return p.(*pb.IKEProposal)
	}
	if r.props == nil {
		r.props = map[propKey]proto.Message{}
	}
	f := IKEProposalDefaults(prop, version)
	r.props[k] = f
	return f
}

func (r *resolver) ipsecProposal(prop *pb.IPsecProposal, version uint32) *pb.IPsecProposal {
	k := propKey{true, prop.GetName(), version}
	if p, ok := r.props[k]; ok {
		return p.(*pb.IPsecProposal)
	}
	if r.props == nil {
		r.props = map[propKey]proto.Message{}
	}
	f := IPsecProposalDefaults(prop, version)
	r.props[k] = f
	return f
}

func (r *resolver) fail(path, format string, a ...any) {
	r.errs = append(r.errs, &Error{Path: path, Msg: fmt.Sprintf(format, a...)})
}

func (r *resolver) set(ss *pb.ServiceSet) *pb.PlanSet {
	path := "services service-set " + ss.GetName()
	o := ss.GetIpsecVpnOptions()
	v := r.c.GetIpsecVpn()
	if len(ss.GetIpsecVpnRules()) == 0 && len(ss.GetIpsecVpnRuleSets()) == 0 && o.GetIkeAccessProfile() == "" {
		return nil // not an IPsec service set
	}
	s := &pb.PlanSet{Name: ss.GetName(), TrustedCa: o.GetTrustedCa(), NoCertificateChainInIke: o.GetNoCertificateChainInIke()}
	switch st := ss.GetStyle().(type) {
	case *pb.ServiceSet_NextHopService:
		s.NextHop = true
		s.InsideInterface = st.NextHopService.GetInsideServiceInterface()
		s.OutsideInterface = st.NextHopService.GetOutsideServiceInterface()
	case *pb.ServiceSet_InterfaceService:
		s.InterfaceStyle = true
		s.InsideInterface = st.InterfaceService.GetServiceInterface()
	}
	r.inside(s)
	lg := o.GetLocalGateway()
	s.RoutingInstance = lg.GetRoutingInstance()
	local, ok := r.localGateway(path+" ipsec-vpn-options local-gateway", lg)
	if !ok {
		return nil
	}
	s.LocalGateway = local.AsSlice()
	s.LocalGatewayInterface = lg.GetInterface()
	if u := o.GetUdpEncapsulate(); u != nil {
		s.UdpEncapPort = u.GetDestPort()
		if s.UdpEncapPort == 0 {
			s.UdpEncapPort = DefaultUDPEncapPort
		}
	}
	s.NatTraversal = !v.GetDisableNatt() && !o.GetNoNatTraversal()
	s.NatKeepalive = DefaultNATKeepalive
	if o.NatKeepalive != nil {
		s.NatKeepalive = o.GetNatKeepalive()
	}
	s.Options = r.setOptions(ss, v)
	s.Sockets = append(s.Sockets, &pb.PlanSocket{Address: s.LocalGateway, Port: IKEPort, Kind: "ike"})
	if s.NatTraversal {
		s.Sockets = append(s.Sockets, &pb.PlanSocket{Address: s.LocalGateway, Port: NATTPort, Kind: "nat-t"})
	}
	if s.UdpEncapPort != 0 {
		s.Sockets = append(s.Sockets, &pb.PlanSocket{Address: s.LocalGateway, Port: s.UdpEncapPort, Kind: "udp-encapsulate"})
	}
	dep := o.GetIkeAccessProfile() != ""
	base := termBase(s.Options, dep)

	names := slices.Clone(ss.GetIpsecVpnRules())
	for _, rsn := range ss.GetIpsecVpnRuleSets() {
		rs := r.ruleSets[rsn]
		if rs == nil {
			r.fail(path, "Referenced IPSec VPN rule-set %s must be defined under [edit services ipsec-vpn rule-set]", rsn)
			continue
		}
		names = append(names, rs.GetRules()...)
	}
	for _, rn := range names {
		rule := r.rules[rn]
		if rule == nil {
			r.fail(path, "Referenced IPSec VPN rule must be defined under [edit services ipsec-vpn rule]")
			continue
		}
		for _, tm := range rule.GetTerms() {
			if t := r.tunnel(s, rule, tm, base); t != nil {
				s.Tunnels = append(s.Tunnels, t)
			}
		}
	}
	if dep {
		s.DynamicEndpoints = r.dynamicEndpoints(s, o.GetIkeAccessProfile(), path+" ipsec-vpn-options")
	}
	return s
}

// localGateway resolves local-gateway ADDRESS, or the first address of
// local-gateway interface IFL (SPEC section 2, rule 8).
func (r *resolver) localGateway(path string, lg *pb.LocalGateway) (netip.Addr, bool) {
	if a := lg.GetAddress(); a != "" {
		addr, err := netip.ParseAddr(a)
		if err != nil {
			r.fail(path, "%q is not an address", a)
			return netip.Addr{}, false
		}
		return addr, true
	}
	if ifl := lg.GetInterface(); ifl != "" {
		if a := InterfaceAddress(r.c, ifl); a.IsValid() {
			return a, true
		}
		r.fail(path, "interface %s has no address", ifl)
		return netip.Addr{}, false
	}
	r.fail(path, "local-gateway must be configured")
	return netip.Addr{}, false
}

// InterfaceAddress is the first address (inet, then inet6) of a logical
// interface such as "ge-0/0/0.0"; invalid when it has none.
func InterfaceAddress(c *pb.Config, ifl string) netip.Addr {
	for _, ifd := range c.GetInterfaces() {
		for _, u := range ifd.GetUnits() {
			if fmt.Sprintf("%s.%d", ifd.GetName(), u.GetNumber()) != ifl {
				continue
			}
			for _, a := range append(slices.Clone(u.GetInetAddresses()), u.GetInet6Addresses()...) {
				if p, err := netip.ParsePrefix(a); err == nil {
					return p.Addr()
				}
			}
		}
	}
	return netip.Addr{}
}

func (r *resolver) tunnel(s *pb.PlanSet, rule *pb.Rule, tm *pb.Term, base *pb.PlanOptions) *pb.PlanTunnel {
	tpath := "services ipsec-vpn rule " + rule.GetName() + " term " + tm.GetName()
	then := tm.GetThen()
	t := &pb.PlanTunnel{
		Key: s.GetName() + "/" + rule.GetName() + "/" + tm.GetName(), ServiceSet: s.GetName(),
		Rule: rule.GetName(), Term: tm.GetName(),
		Output:               rule.GetMatchDirection() == pb.MatchDirection_MATCH_DIRECTION_OUTPUT,
		MatchDirection:       rule.GetMatchDirection(),
		IpsecInsideInterface: tm.GetFrom().GetIpsecInsideInterface(),
		Options:              termOptions(base, then),
	}
	ok := true
	src, err1 := prefixes(tm.GetFrom().GetSourceAddress())
	if err1 != nil {
		r.fail(tpath+" from", "source-address %v", err1)
		ok = false
	}
	dst, err2 := prefixes(tm.GetFrom().GetDestinationAddress())
	if err2 != nil {
		r.fail(tpath+" from", "destination-address %v", err2)
		ok = false
	}
	// match-direction input: traffic from the inside going out, the
	// term's source is the local side. In a next-hop set output swaps
	// them (the rule is written for the traffic routed to the outside
	// service interface); an interface-style set's output rule matches
	// the packets leaving the interface it is applied to (family inet
	// service output) as they are, and those are what the tunnel
	// protects: no swap (issue 12 item 3; fwdd/spd and kmd agree).
	t.LocalPrefixes, t.RemotePrefixes = src, dst
	if t.Output && s.GetNextHop() {
		t.LocalPrefixes, t.RemotePrefixes = dst, src
	}
	if g := then.GetRemoteGateway(); g != "" {
		a, err := netip.ParseAddr(g)
		if err != nil {
			r.fail(tpath+" then", "remote-gateway %q is not an address", g)
			ok = false
		} else if !a.IsUnspecified() {
			t.RemoteGateway = a.AsSlice()
		}
	}
	if b := then.GetBackupRemoteGateway(); b != "" {
		a, err := netip.ParseAddr(b)
		if err != nil {
			r.fail(tpath+" then", "backup-remote-gateway %q is not an address", b)
			ok = false
		} else {
			t.BackupRemoteGateway = a.AsSlice()
		}
	}
	switch {
	case then.GetManual() != nil:
		t.Manual = true
	case then.GetDynamic() != nil:
		dyn := then.GetDynamic()
		ike := r.cachedIKE(dyn.GetIkePolicy(), dyn.GetIpsecPolicy(), nil)
		if ike == nil {
			ok = false
			break
		}
		if then.GetInitiateDeadPeerDetection() || len(t.BackupRemoteGateway) > 0 {
			ike = proto.Clone(ike).(*pb.PlanIKE)
			ike.DpdInterval, ike.DpdThreshold = dpd(then.GetDeadPeerDetection())
		}
		t.Ike = ike
		switch r.c.GetIpsecVpn().GetEstablishTunnels() {
		case pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY:
			t.Establish = pb.PlanEstablish_PLAN_ESTABLISH_IMMEDIATELY
		case pb.EstablishTunnels_ESTABLISH_TUNNELS_RESPONDER_ONLY:
			t.Establish = pb.PlanEstablish_PLAN_ESTABLISH_RESPONDER_ONLY
		}
		if len(t.RemoteGateway) == 0 {
			// A dynamic peer only answers.
			t.Establish = pb.PlanEstablish_PLAN_ESTABLISH_RESPONDER_ONLY
		}
	}
	// A term with neither (cfgd accepts it) matches traffic that no SA
	// carries: fwdd keeps it in the SPD, kmd has nothing to negotiate.
	if !ok {
		return nil
	}
	r.index++
	t.Index = r.index
	return t
}

func (r *resolver) dynamicEndpoints(s *pb.PlanSet, ap, path string) *pb.PlanDynamicEndpoints {
	prof := r.profiles[ap]
	if prof == nil {
		r.fail(path, "referenced ike access profile must be defined")
		return nil
	}
	ci := prof.GetClientIke()
	d := &pb.PlanDynamicEndpoints{Key: s.GetName() + "/" + ap, AccessProfile: ap}
	d.Ike = r.ike(ci.GetIkePolicy(), ci.GetIpsecPolicy(), prof)
	if d.Ike == nil {
		return nil
	}
	if ci.GetInitiateDeadPeerDetection() {
		d.Ike.DpdInterval, d.Ike.DpdThreshold = dpd(ci.GetDeadPeerDetection())
	}
	ok := true
	for _, pp := range ci.GetAllowedProxyPairs() {
		l, err1 := prefixes([]string{pp.GetLocal()})
		rm, err2 := prefixes([]string{pp.GetRemote()})
		if err1 != nil || err2 != nil {
			r.fail("access profile "+ap+" client * ike", "allowed-proxy-pair local %s remote %s: not a prefix", pp.GetLocal(), pp.GetRemote())
			ok = false
			continue
		}
		d.AllowedProxyPairs = append(d.AllowedProxyPairs, &pb.ProxyPair{Local: l[0], Remote: rm[0]})
	}
	if !ok {
		return nil
	}
	if len(d.AllowedProxyPairs) == 0 {
		// SPEC section 5: allowed-proxy-pair defaults to ANY-ANY.
		d.AllowedProxyPairs = []*pb.ProxyPair{{Local: "0.0.0.0/0", Remote: "0.0.0.0/0"}}
	}
	r.index++
	d.Index = r.index
	return d
}

func dpd(d *pb.DeadPeerDetection) (uint32, uint32) {
	iv, th := uint32(DefaultDPDInterval), uint32(DefaultDPDThreshold)
	if d != nil && d.Interval != nil {
		iv = d.GetInterval()
	}
	if d != nil && d.Threshold != nil {
		th = d.GetThreshold()
	}
	return iv, th
}

// prefixes parses addresses and prefixes into masked prefixes.
func prefixes(list []string) ([]string, error) {
	var out []string
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, err2 := netip.ParseAddr(s)
			if err2 != nil {
				return nil, fmt.Errorf("%q is not a prefix", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		} else if p == p.Masked() {
			out = append(out, s) // already canonical: no copy
			continue
		}
		out = append(out, p.Masked().String())
	}
	return out, nil
}

func (r *resolver) cachedIKE(ikePolicy, ipsecPolicy string, prof *pb.AccessProfile) *pb.PlanIKE {
	k := [3]string{ikePolicy, ipsecPolicy, prof.GetName()}
	if ike, ok := r.ikes[k]; ok {
		return ike
	}
	if r.ikes == nil {
		r.ikes = map[[3]string]*pb.PlanIKE{}
	}
	ike := r.ike(ikePolicy, ipsecPolicy, prof)
	r.ikes[k] = ike // nil too: its errors are reported once
	return ike
}

// ike resolves an IKE policy and an IPsec policy (either may be empty for
// dynamic endpoints: prof is then the access profile).
func (r *resolver) ike(ikePolicy, ipsecPolicy string, prof *pb.AccessProfile) *pb.PlanIKE {
	v := r.c.GetIpsecVpn()
	out := &pb.PlanIKE{Version: 2, IkePolicy: ikePolicy, IpsecPolicy: ipsecPolicy,
		IkeLifetime: DefaultIKELifetime, IpsecLifetime: DefaultIPsecLife}
	bad := len(r.errs)
	if ikePolicy == "" {
		out.AnyIkeProposal = true
		if prof == nil {
			r.fail("services ipsec-vpn", "a dynamic security association needs an ike-policy")
			return nil
		}
		if prof.GetClientIke().GetPreSharedKey() == nil {
			r.fail("access-profile "+prof.GetName()+" client * ike", "pre-shared-key or ike-policy must be configured")
			return nil
		}
		out.PskSource, out.PskName = pb.PlanPSKSource_PLAN_PSK_ACCESS_PROFILE, prof.GetName()
	} else {
		pol := r.ikePolicy(ikePolicy)
		if pol == nil {
			r.fail("services ipsec-vpn", "Referenced IKE policy must be defined under [edit services ipsec-vpn ike policy]")
			return nil
		}
		path := "services ipsec-vpn ike policy " + ikePolicy
		out.Version = pol.GetVersion()
		if out.Version == 0 {
			out.Version = DefaultVersion
		}
		out.Mode = pol.GetMode()
		if out.Version == 1 && out.Mode == "" {
			out.Mode = "main"
		}
		lifetime := uint32(0)
		for _, name := range pol.GetProposals() {
			var prop *pb.IKEProposal
			for _, p := range v.GetIke().GetProposals() {
				if p.GetName() == name {
					prop = p
				}
			}
			if prop == nil {
				r.fail(path, "Referenced proposal is not defined")
				continue
			}
			f := r.ikeProposal(prop, out.Version)
			out.IkeProposals = append(out.IkeProposals, f)
			switch f.GetAuthenticationMethod() {
			case "rsa-signatures", "dsa-signatures", "ecdsa-signatures-256", "ecdsa-signatures-384":
				out.Signatures = true
			}
			if prop.LifetimeSeconds != nil && (lifetime == 0 || prop.GetLifetimeSeconds() < lifetime) {
				lifetime = prop.GetLifetimeSeconds()
			}
		}
		if len(pol.GetProposals()) == 0 {
			if out.Version == 1 {
				// Junos's "standard" set: pre-g2-aes128-sha, pre-g2-3des-sha.
				for _, enc := range []string{"aes-128-cbc", "3des-cbc"} {
					out.IkeProposals = append(out.IkeProposals, &pb.IKEProposal{Name: "pre-g2-" + strings.TrimSuffix(strings.ReplaceAll(enc, "-", ""), "cbc") + "-sha",
						AuthenticationMethod: DefaultMethod, DhGroup: "group2", AuthenticationAlgorithm: "sha1", EncryptionAlgorithm: enc})
				}
			} else {
				out.AnyIkeProposal = true
			}
		}
		if lifetime != 0 {
			out.IkeLifetime = lifetime
		}
		switch {
		case out.Signatures && pol.GetLocalCertificate() != "":
			out.LocalCertificate = pol.GetLocalCertificate()
			out.CertificatePolicyOids = pol.GetCertificatePolicyOids()
		case out.Signatures:
			r.fail(path, "local-certificate must be configured for signature authentication")
		case pol.GetPreSharedKey() != nil:
			out.PskSource, out.PskName = pb.PlanPSKSource_PLAN_PSK_IKE_POLICY, pol.GetName()
		case prof.GetClientIke().GetPreSharedKey() != nil:
			out.PskSource, out.PskName = pb.PlanPSKSource_PLAN_PSK_ACCESS_PROFILE, prof.GetName()
		default:
			r.fail(path, "Either pre-shared-key or local-certificate must be configured in the referencd ike policy")
		}
		if pol.GetLocalId() != nil {
			out.LocalId = proto.Clone(pol.GetLocalId()).(*pb.IKEIdentity)
		}
		if pol.GetRemoteId() != nil {
			out.RemoteId = proto.Clone(pol.GetRemoteId()).(*pb.RemoteIdentity)
		}
	}
	r.ipsec(ipsecPolicy, out)
	if len(r.errs) > bad {
		return nil
	}
	return out
}

// IKEProposalDefaults is prop with its omitted statements filled in for
// the IKE version.
func IKEProposalDefaults(prop *pb.IKEProposal, version uint32) *pb.IKEProposal {
	f := proto.Clone(prop).(*pb.IKEProposal)
	f.Description = ""
	if f.AuthenticationMethod == "" {
		f.AuthenticationMethod = DefaultMethod
	}
	if f.EncryptionAlgorithm == "" {
		f.EncryptionAlgorithm = DefaultIKEEnc
	}
	if version == 1 {
		if f.DhGroup == "" {
			f.DhGroup = V1DefaultGroup
		}
		if f.AuthenticationAlgorithm == "" {
			f.AuthenticationAlgorithm = V1DefaultHash
		}
	} else {
		if f.DhGroup == "" {
			f.DhGroup = V2DefaultGroup
		}
		if f.AuthenticationAlgorithm == "" && !aead(f.EncryptionAlgorithm) {
			f.AuthenticationAlgorithm = V2DefaultHash
		}
		if f.AuthenticationAlgorithm == "" {
			// The PRF of an AEAD suite (RFC 5282 section 7).
			f.AuthenticationAlgorithm = V2DefaultAEADPRF
		}
	}
	return f
}

func aead(enc string) bool {
	return strings.HasSuffix(enc, "-gcm") || enc == "chacha20-poly1305"
}

// IPsecProposalDefaults is prop with its omitted statements filled in:
// ESP, hmac-sha1-96 (none with an AEAD cipher), 3des-cbc, for either IKE
// version.
func IPsecProposalDefaults(prop *pb.IPsecProposal, version uint32) *pb.IPsecProposal {
	f := proto.Clone(prop).(*pb.IPsecProposal)
	f.Description = ""
	if f.Protocol == pb.IPsecProtocol_IPSEC_PROTOCOL_UNSPECIFIED {
		f.Protocol = pb.IPsecProtocol_IPSEC_PROTOCOL_ESP
	}
	if f.EncryptionAlgorithm == "" {
		f.EncryptionAlgorithm = DefaultIPsecEnc
	}
	if f.AuthenticationAlgorithm == "" && !aead(f.EncryptionAlgorithm) {
		f.AuthenticationAlgorithm = DefaultIPsecAuth
	}
	return f
}

func (r *resolver) ipsec(name string, out *pb.PlanIKE) {
	v := r.c.GetIpsecVpn().GetIpsec()
	var pol *pb.IPsecPolicy
	if name != "" {
		pol = r.ipsecPolicy(name)
		if pol == nil {
			r.fail("services ipsec-vpn", "Referenced IPSec policy must be defined under [edit services ipsec-vpn ipsec policy]")
			return
		}
	}
	if pol == nil && out.Version != 1 {
		// No ipsec-policy: any proposal from the peer (SPEC section 3),
		// with or without PFS.
		out.AnyIpsecProposal = true
		return
	}
	out.PfsGroup = pol.GetPerfectForwardSecrecyKeys()
	lifetime := uint32(0)
	for _, pn := range pol.GetProposals() {
		var prop *pb.IPsecProposal
		for _, p := range v.GetProposals() {
			if p.GetName() == pn {
				prop = p
			}
		}
		if prop == nil {
			r.fail("services ipsec-vpn ipsec policy "+name, "Referenced proposal is not defined")
			continue
		}
		out.IpsecProposals = append(out.IpsecProposals, r.ipsecProposal(prop, out.Version))
		if prop.LifetimeSeconds != nil && (lifetime == 0 || prop.GetLifetimeSeconds() < lifetime) {
			lifetime = prop.GetLifetimeSeconds()
		}
		if kb := prop.GetLifetimeKilobytes(); kb != 0 {
			out.IpsecLifetimeKilobytes = kb
		}
	}
	if lifetime != 0 {
		out.IpsecLifetime = lifetime
	}
	if len(pol.GetProposals()) > 0 {
		return
	}
	switch {
	case out.Version == 1:
		// Junos's "standard" set: g2-esp-3des-sha, g2-esp-aes128-sha.
		for _, enc := range []string{"3des-cbc", "aes-128-cbc"} {
			out.IpsecProposals = append(out.IpsecProposals, &pb.IPsecProposal{Name: "g2-esp-" + strings.TrimSuffix(strings.ReplaceAll(enc, "-", ""), "cbc") + "-sha",
				Protocol: pb.IPsecProtocol_IPSEC_PROTOCOL_ESP, AuthenticationAlgorithm: DefaultIPsecAuth, EncryptionAlgorithm: enc})
		}
	case pol.GetProposalSet() != "":
		// proposal-set basic, compatible, standard: every supported ESP
		// transform (README).
		out.IpsecProposalSet = pol.GetProposalSet()
	default:
		// SPEC section 5: ESP, hmac-sha1-96, 3des-cbc.
		out.IpsecProposals = append(out.IpsecProposals, &pb.IPsecProposal{Name: "default",
			Protocol: pb.IPsecProtocol_IPSEC_PROTOCOL_ESP, AuthenticationAlgorithm: DefaultIPsecAuth, EncryptionAlgorithm: DefaultIPsecEnc})
	}
}

// setOptions are a set's options after defaults. Sets with the same
// options share one value (read only).
func (r *resolver) setOptions(ss *pb.ServiceSet, v *pb.IPsecVPN) *pb.PlanOptions {
	opt := setOptions(ss, v)
	for _, o := range r.options {
		if proto.Equal(o, opt) {
			return o
		}
	}
	if len(r.options) < 8 {
		r.options = append(r.options, opt)
	}
	return opt
}

func setOptions(ss *pb.ServiceSet, v *pb.IPsecVPN) *pb.PlanOptions {
	o := ss.GetIpsecVpnOptions()
	opt := &pb.PlanOptions{ReplayWindow: DefaultReplayWindow, TunnelMtu: DefaultTunnelMTU, Ttl: DefaultTTL}
	if o.AntiReplayWindowSize != nil {
		opt.ReplayWindow = o.GetAntiReplayWindowSize()
	}
	if o.GetNoAntiReplay() {
		opt.ReplayWindow = 0
	}
	if o.TunnelMtu != nil {
		opt.TunnelMtu = o.GetTunnelMtu()
	}
	opt.DontFragment = o.GetDontFragment()
	opt.PassiveModeTunneling = o.GetPassiveModeTunneling()
	opt.HeaderIntegrityCheck = ss.GetServiceSetOptions().GetHeaderIntegrityCheckEnableAll()
	opt.NoIpsecTunnelInTraceroute = v.GetNoIpsecTunnelInTraceroute()
	return opt
}

// termBase is the set's options as its terms inherit them: set-level
// copy- and set-dont-fragment-bit act on dynamic-endpoint tunnels only
// (SPEC section 3), set-level clear on every tunnel of the set.
func termBase(set *pb.PlanOptions, dep bool) *pb.PlanOptions {
	if set.DontFragment == pb.DFBit_DF_BIT_CLEAR || set.DontFragment == pb.DFBit_DF_BIT_UNSPECIFIED || dep {
		return set
	}
	o := proto.Clone(set).(*pb.PlanOptions)
	o.DontFragment = pb.DFBit_DF_BIT_UNSPECIFIED
	return o
}

// termOptions applies a term's settings over its set's (SPEC section 3,
// "Precedence"): term-level anti-replay, tunnel-mtu and DF knobs override
// the set level. Set-level copy- and set-dont-fragment-bit act on
// dynamic-endpoint tunnels only; set-level clear applies to every tunnel
// of the set.
//
// base is the set's options as a term without settings of its own gets
// them (shared by those terms: a plan of 10,000 sets holds it once per
// set).
func termOptions(base *pb.PlanOptions, then *pb.TermThen) *pb.PlanOptions {
	if then == nil || (then.AntiReplayWindowSize == nil && !then.GetNoAntiReplay() && then.TunnelMtu == nil &&
		then.GetDontFragment() == pb.DFBit_DF_BIT_UNSPECIFIED && !then.GetCopyTtlFromInnerIpHeader() && then.Ttl == nil &&
		!then.GetCopyTosFromInnerIpHeader() && then.Tos == nil) {
		return base
	}
	o := proto.Clone(base).(*pb.PlanOptions)
	if then.AntiReplayWindowSize != nil {
		o.ReplayWindow = then.GetAntiReplayWindowSize()
	}
	if then.GetNoAntiReplay() {
		o.ReplayWindow = 0
	}
	if then.TunnelMtu != nil {
		o.TunnelMtu = then.GetTunnelMtu()
	}
	if then.GetDontFragment() != pb.DFBit_DF_BIT_UNSPECIFIED {
		o.DontFragment = then.GetDontFragment()
	}
	o.CopyTtl = then.GetCopyTtlFromInnerIpHeader()
	if then.Ttl != nil {
		o.Ttl = then.GetTtl()
	}
	o.CopyTos = then.GetCopyTosFromInnerIpHeader()
	if then.Tos != nil {
		o.Tos = then.GetTos()
	}
	return o
}

// ikePolicy returns the IKE policy called name, or nil.
func (r *resolver) ikePolicy(name string) *pb.IKEPolicy {
	if r.ikePolicies == nil {
		ps := r.c.GetIpsecVpn().GetIke().GetPolicies()
		r.ikePolicies = make(map[string]*pb.IKEPolicy, len(ps))
		for _, p := range ps {
			r.ikePolicies[p.GetName()] = p
		}
	}
	return r.ikePolicies[name]
}

// ipsecPolicy returns the IPsec policy called name, or nil.
func (r *resolver) ipsecPolicy(name string) *pb.IPsecPolicy {
	if r.ipsecPolicies == nil {
		ps := r.c.GetIpsecVpn().GetIpsec().GetPolicies()
		r.ipsecPolicies = make(map[string]*pb.IPsecPolicy, len(ps))
		for _, p := range ps {
			r.ipsecPolicies[p.GetName()] = p
		}
	}
	return r.ipsecPolicies[name]
}
