package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/kmd/ikesa"
	"github.com/sitesec/sitesec/kmd/ikev1"
	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/transform"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/dn"
)

// Establish is when a peer's tunnel comes up (SPEC section 3).
type Establish int

// Modes of establish-tunnels.
const (
	OnTraffic Establish = iota
	Immediately
	ResponderOnly
)

// Peer is one tunnel of the configuration: a rule term with a dynamic SA,
// or the dynamic endpoints of a service set's access profile.
type Peer struct {
	// Key is service-set/rule/term, or service-set/access-profile.
	Key        string
	ServiceSet string
	Rule, Term string
	Local      netip.Addr
	// Remote is the remote gateway; invalid for dynamic endpoints.
	Remote    netip.Addr
	Backup    netip.Addr
	Dynamic   bool
	Establish Establish
	IKE       *ikesa.Config
	// V1, when set, negotiates IKEv1 (kmd/ikev1) instead of IKEv2; IKE
	// then only carries the shared parts (identities, selectors, DPD).
	V1 *ikev1.Config
	// cert, when set, authenticates with a certificate through pkid; the
	// server turns it into IKE.Auth.
	cert *certAuth
	// Fingerprint changes when any statement the peer depends on changes:
	// its IKE SAs are then negotiated again.
	Fingerprint string

	// TunnelIndex numbers the peer's tunnel for show commands.
	TunnelIndex uint32
	// InterfaceStyle: the set is interface-service (not next-hop), so a
	// lost gateway puts its SAs in Not Installed (SPEC section 3).
	InterfaceStyle bool

	// Data plane options copied into every pb.SA.
	ReplayWindow uint32
	TunnelMTU    uint32
	DF           pb.DFBit
	CopyTTL      bool
	TTL          uint32
	CopyTOS      bool
	TOS          uint32
	Passive      bool
	HeaderCheck  bool
	NoTraceroute bool
	UDPEncapPort uint32
	InsideIFL    string
	RoutingInst  string
}

// confError is a configuration error with its hierarchy path.
func confError(path string, format string, a ...any) error {
	return fmt.Errorf("[edit %s] %s", path, fmt.Sprintf(format, a...))
}

// Defaults of SPEC section 5 that kmd applies.
const (
	defaultDPDInterval  = 10 * time.Second
	defaultDPDThreshold = 3
	defaultNATKeepalive = 5 * time.Second
	defaultReplayWindow = 128
	defaultTunnelMTU    = 1500
)

// Peers maps the typed configuration onto peers. It returns every error
// at once, each with its hierarchy path; peers with errors are left out.
func Peers(c *pb.Config) ([]*Peer, error) {
	var errs []error
	var out []*Peer
	v := c.GetIpsecVpn()
	mode := OnTraffic
	switch v.GetEstablishTunnels() {
	case pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY:
		mode = Immediately
	case pb.EstablishTunnels_ESTABLISH_TUNNELS_RESPONDER_ONLY:
		mode = ResponderOnly
	}
	rules := map[string]*pb.Rule{}
	for _, r := range v.GetRules() {
		rules[r.GetName()] = r
	}
	ruleSets := map[string]*pb.RuleSet{}
	for _, rs := range v.GetRuleSets() {
		ruleSets[rs.GetName()] = rs
	}
	profiles := map[string]*pb.AccessProfile{}
	for _, p := range c.GetAccessProfiles() {
		profiles[p.GetName()] = p
	}
	for _, ss := range c.GetServiceSets() {
		opts := ss.GetIpsecVpnOptions()
		path := "services service-set " + ss.GetName() + " ipsec-vpn-options local-gateway"
		names := slices.Clone(ss.GetIpsecVpnRules())
		for _, rs := range ss.GetIpsecVpnRuleSets() {
			names = append(names, ruleSets[rs].GetRules()...)
		}
		if len(names) == 0 && opts.GetIkeAccessProfile() == "" {
			continue
		}
		local, err := localGateway(c, opts.GetLocalGateway())
		if err != nil {
			errs = append(errs, confError(path, "%v", err))
			continue
		}
		base := Peer{
			ServiceSet: ss.GetName(), Local: local, Establish: mode,
			InterfaceStyle: ss.GetInterfaceService() != nil,
			ReplayWindow:   defaultReplayWindow, TunnelMTU: defaultTunnelMTU,
			DF: opts.GetDontFragment(), Passive: opts.GetPassiveModeTunneling(),
			HeaderCheck:  ss.GetServiceSetOptions().GetHeaderIntegrityCheckEnableAll(),
			NoTraceroute: v.GetNoIpsecTunnelInTraceroute(), RoutingInst: opts.GetLocalGateway().GetRoutingInstance(),
			TTL: 64,
		}
		if opts.AntiReplayWindowSize != nil {
			base.ReplayWindow = opts.GetAntiReplayWindowSize()
		}
		if opts.GetNoAntiReplay() {
			base.ReplayWindow = 0
		}
		if opts.TunnelMtu != nil {
			base.TunnelMTU = opts.GetTunnelMtu()
		}
		if u := opts.GetUdpEncapsulate(); u != nil {
			base.UDPEncapPort = u.GetDestPort()
			if base.UDPEncapPort == 0 {
				base.UDPEncapPort = 4565
			}
		}
		natt := !v.GetDisableNatt() && !opts.GetNoNatTraversal()
		keepalive := defaultNATKeepalive
		if opts.NatKeepalive != nil {
			keepalive = time.Duration(opts.GetNatKeepalive()) * time.Second
		}
		for _, rn := range names {
			r := rules[rn]
			if r == nil {
				errs = append(errs, confError("services service-set "+ss.GetName(), "Referenced IPSec VPN rule must be defined under [edit services ipsec-vpn rule]"))
				continue
			}
			for _, term := range r.GetTerms() {
				dyn := term.GetThen().GetDynamic()
				if dyn == nil {
					continue // manual SAs are installed by fwdd from the configuration
				}
				tpath := fmt.Sprintf("services ipsec-vpn rule %s term %s", r.GetName(), term.GetName())
				p := base
				p.Rule, p.Term = r.GetName(), term.GetName()
				p.Key = ss.GetName() + "/" + r.GetName() + "/" + term.GetName()
				p.InsideIFL = term.GetFrom().GetIpsecInsideInterface()
				then := term.GetThen()
				if then.AntiReplayWindowSize != nil {
					p.ReplayWindow = then.GetAntiReplayWindowSize()
				}
				if then.GetNoAntiReplay() {
					p.ReplayWindow = 0
				}
				if then.TunnelMtu != nil {
					p.TunnelMTU = then.GetTunnelMtu()
				}
				if then.GetDontFragment() != pb.DFBit_DF_BIT_UNSPECIFIED {
					p.DF = then.GetDontFragment()
				}
				p.CopyTTL, p.CopyTOS = then.GetCopyTtlFromInnerIpHeader(), then.GetCopyTosFromInnerIpHeader()
				if then.Ttl != nil {
					p.TTL = then.GetTtl()
				}
				p.TOS = then.GetTos()
				if rg := then.GetRemoteGateway(); rg != "" && rg != "0.0.0.0" && rg != "::" {
					if p.Remote, err = netip.ParseAddr(rg); err != nil {
						errs = append(errs, confError(tpath+" then", "remote-gateway %q is not an address", rg))
						continue
					}
				} else {
					p.Dynamic = true
				}
				if b := then.GetBackupRemoteGateway(); b != "" {
					p.Backup, _ = netip.ParseAddr(b)
				}
				cfg, cert, err := ikeConfig(c, dyn.GetIkePolicy(), dyn.GetIpsecPolicy(), nil, local)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if cert != nil {
					cert.serviceSet, cert.trustedCA, cert.endEntityOnly = ss.GetName(), opts.GetTrustedCa(), opts.GetNoCertificateChainInIke()
					p.cert = cert
				}
				cfg.Name, cfg.ServiceSet, cfg.Rule, cfg.Term = p.Key, ss.GetName(), p.Rule, p.Term
				cfg.NATTraversal, cfg.NATKeepalive = natt, keepalive
				src, dst, err := selectors(term.GetFrom())
				if err != nil {
					errs = append(errs, confError(tpath+" from", "%v", err))
					continue
				}
				// match-direction input: traffic from the inside going out;
				// the term's source is the local side. In a next-hop set an
				// output rule is written for the traffic coming back, so the
				// sides swap; an interface-style set's output rule matches the
				// packets leaving the interface it is applied to, which are
				// what the tunnel protects (fwdd/spd Term.Output agrees).
				cfg.LocalTS, cfg.RemoteTS = src, dst
				if r.GetMatchDirection() == pb.MatchDirection_MATCH_DIRECTION_OUTPUT && ss.GetNextHopService() != nil {
					cfg.LocalTS, cfg.RemoteTS = dst, src
				}
				if then.GetInitiateDeadPeerDetection() || p.Backup.IsValid() {
					cfg.DPDInterval, cfg.DPDThreshold = dpd(then.GetDeadPeerDetection())
				}
				if p.Dynamic {
					p.Establish = ResponderOnly
				}
				p.IKE = cfg
				if isV1(c, dyn.GetIkePolicy()) {
					if p.V1, err = v1Config(c, dyn.GetIkePolicy(), dyn.GetIpsecPolicy(), cfg); err != nil {
						errs = append(errs, err)
						continue
					}
				}
				p.Fingerprint = fingerprint(c, ss, r, dyn.GetIkePolicy(), dyn.GetIpsecPolicy(), nil)
				out = append(out, &p)
			}
		}
		if ap := opts.GetIkeAccessProfile(); ap != "" {
			prof := profiles[ap]
			if prof == nil {
				errs = append(errs, confError("services service-set "+ss.GetName()+" ipsec-vpn-options", "referenced ike access profile must be defined"))
				continue
			}
			ci := prof.GetClientIke()
			p := base
			p.Key, p.Dynamic, p.Establish = ss.GetName()+"/"+ap, true, ResponderOnly
			cfg, cert, err := ikeConfig(c, ci.GetIkePolicy(), ci.GetIpsecPolicy(), ci.GetPreSharedKey(), local)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if cert != nil {
				cert.serviceSet, cert.trustedCA, cert.endEntityOnly = ss.GetName(), opts.GetTrustedCa(), opts.GetNoCertificateChainInIke()
				p.cert = cert
			}
			cfg.Name, cfg.ServiceSet = p.Key, ss.GetName()
			cfg.NATTraversal, cfg.NATKeepalive = natt, keepalive
			cfg.LocalTS, cfg.RemoteTS = nil, nil
			for _, pp := range ci.GetAllowedProxyPairs() {
				l, err1 := prefixSelector(pp.GetLocal())
				r, err2 := prefixSelector(pp.GetRemote())
				if err := errors.Join(err1, err2); err != nil {
					errs = append(errs, confError("access profile "+ap+" client * ike", "allowed-proxy-pair: %v", err))
					continue
				}
				cfg.LocalTS, cfg.RemoteTS = append(cfg.LocalTS, l), append(cfg.RemoteTS, r)
			}
			if len(cfg.LocalTS) == 0 {
				// SPEC section 5: allowed-proxy-pair defaults to ANY-ANY.
				any := ikesa.PrefixSelector(netip.MustParsePrefix("0.0.0.0/0"))
				cfg.LocalTS, cfg.RemoteTS = []message.Selector{any}, []message.Selector{any}
			}
			if ci.GetInitiateDeadPeerDetection() {
				cfg.DPDInterval, cfg.DPDThreshold = dpd(ci.GetDeadPeerDetection())
			}
			p.IKE = cfg
			if ci.GetIkePolicy() != "" && isV1(c, ci.GetIkePolicy()) {
				// IKEv1 dynamic endpoints: one responder tunnel per client.
				if p.V1, err = v1Config(c, ci.GetIkePolicy(), ci.GetIpsecPolicy(), cfg); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			p.Fingerprint = fingerprint(c, ss, nil, ci.GetIkePolicy(), ci.GetIpsecPolicy(), prof)
			out = append(out, &p)
		}
	}
	// Tunnel indexes number the tunnels in configuration order, from 1,
	// as `show services ipsec-vpn ipsec security-associations` shows them.
	for i, p := range out {
		p.TunnelIndex = uint32(i + 1)
	}
	return out, errors.Join(errs...)
}

// localGateway is the set's local gateway address: local-gateway ADDRESS,
// or the first address of local-gateway interface IFL (SPEC section 2,
// rule 8).
func localGateway(c *pb.Config, lg *pb.LocalGateway) (netip.Addr, error) {
	if ifl := lg.GetInterface(); lg.GetAddress() == "" && ifl != "" {
		name, unit, _ := strings.Cut(ifl, ".")
		for _, ifd := range c.GetInterfaces() {
			for _, u := range ifd.GetUnits() {
				if ifd.GetName() != name || fmt.Sprint(u.GetNumber()) != unit {
					continue
				}
				for _, a := range append(slices.Clone(u.GetInetAddresses()), u.GetInet6Addresses()...) {
					if p, err := netip.ParsePrefix(a); err == nil {
						return p.Addr(), nil
					}
				}
			}
		}
		return netip.Addr{}, fmt.Errorf("interface %s has no address", ifl)
	}
	a, err := netip.ParseAddr(lg.GetAddress())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("local gateway %q is not an address", lg.GetAddress())
	}
	return a, nil
}

func dpd(d *pb.DeadPeerDetection) (time.Duration, int) {
	iv, th := defaultDPDInterval, defaultDPDThreshold
	if d.Interval != nil {
		iv = time.Duration(d.GetInterval()) * time.Second
	}
	if d.Threshold != nil {
		th = int(d.GetThreshold())
	}
	return iv, th
}

func prefixSelector(s string) (message.Selector, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, err2 := netip.ParseAddr(s)
		if err2 != nil {
			return message.Selector{}, fmt.Errorf("%q is not a prefix", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return ikesa.PrefixSelector(p), nil
}

// selectors are the term's source and destination addresses (any when
// absent).
func selectors(f *pb.TermFrom) (src, dst []message.Selector, err error) {
	conv := func(list []string) ([]message.Selector, error) {
		if len(list) == 0 {
			return []message.Selector{ikesa.PrefixSelector(netip.MustParsePrefix("0.0.0.0/0"))}, nil
		}
		var out []message.Selector
		for _, s := range list {
			sel, err := prefixSelector(s)
			if err != nil {
				return nil, err
			}
			out = append(out, sel)
		}
		return out, nil
	}
	if src, err = conv(f.GetSourceAddress()); err != nil {
		return nil, nil, err
	}
	dst, err = conv(f.GetDestinationAddress())
	return src, dst, err
}

// ikeConfig builds the negotiation parameters of an IKE policy and an
// IPsec policy. An empty IKE policy name (dynamic endpoints with a key in
// the access profile) accepts every supported IKE transform; an empty
// IPsec policy accepts every ESP transform.
func ikeConfig(c *pb.Config, ikePolicy, ipsecPolicy string, profileKey *pb.Key, local netip.Addr) (*ikesa.Config, *certAuth, error) {
	ike := c.GetIpsecVpn().GetIke()
	var cert *certAuth
	cfg := &ikesa.Config{
		IKELifetime:   transform.DefaultIKELifetime * time.Second,
		ChildLifetime: transform.DefaultIPsecLifetime * time.Second,
		RemoteID:      ikesa.AnyID,
		LocalID:       ikesa.IPID(local),
	}
	var errs []error
	v1 := false
	if ikePolicy == "" {
		cfg.IKEProposals = transform.AllIKE()
		if profileKey == nil || len(profileKey.GetValue()) == 0 {
			return nil, nil, confError("access profile", "pre-shared-key or ike-policy must be configured")
		}
		cfg.Auth = ikesa.PSK(profileKey.GetValue())
	} else {
		var pol *pb.IKEPolicy
		for _, p := range ike.GetPolicies() {
			if p.GetName() == ikePolicy {
				pol = p
			}
		}
		path := "services ipsec-vpn ike policy " + ikePolicy
		if pol == nil {
			return nil, nil, confError("services ipsec-vpn", "Referenced IKE policy must be defined under [edit services ipsec-vpn ike policy]")
		}
		// IKEv1 (version 1, or unset: Junos's default) builds its
		// proposals in v1Config; the rest is shared.
		v1 = pol.GetVersion() != 2
		var suites []transform.Suite
		lifetime := uint32(0)
		signatures := false
		for _, name := range pol.GetProposals() {
			var prop *pb.IKEProposal
			for _, p := range ike.GetProposals() {
				if p.GetName() == name {
					prop = p
				}
			}
			if prop == nil {
				errs = append(errs, confError(path, "Referenced proposal is not defined"))
				continue
			}
			ppath := "services ipsec-vpn ike proposal " + name
			switch m := prop.GetAuthenticationMethod(); m {
			case "", "pre-shared-keys":
			case "rsa-signatures", "ecdsa-signatures-256", "ecdsa-signatures-384":
				signatures = true
			default:
				errs = append(errs, confError(ppath, "authentication-method %s is not supported", m))
				continue
			}
			if v1 {
				continue // v1Config maps the IKEv1 transforms
			}
			s, err := transform.IKESuite(prop.GetEncryptionAlgorithm(), prop.GetAuthenticationAlgorithm(), prop.GetDhGroup())
			if err != nil {
				errs = append(errs, confError(ppath, "%v", err))
				continue
			}
			suites = append(suites, s)
			if prop.LifetimeSeconds != nil && (lifetime == 0 || prop.GetLifetimeSeconds() < lifetime) {
				lifetime = prop.GetLifetimeSeconds()
			}
		}
		if len(pol.GetProposals()) == 0 {
			cfg.IKEProposals = transform.AllIKE()
		} else {
			cfg.IKEProposals = transform.Proposals(suites, nil)
		}
		if lifetime != 0 {
			cfg.IKELifetime = time.Duration(lifetime) * time.Second
		}
		key := pol.GetPreSharedKey().GetValue()
		if len(key) == 0 && profileKey != nil {
			key = profileKey.GetValue()
		}
		switch {
		case signatures && pol.GetLocalCertificate() != "":
			cert = &certAuth{certificateID: pol.GetLocalCertificate(), policyOIDs: pol.GetCertificatePolicyOids()}
		case signatures:
			errs = append(errs, confError(path, "local-certificate must be configured for signature authentication"))
		case len(key) == 0:
			errs = append(errs, confError(path, "Either pre-shared-key or local-certificate must be configured in the referencd ike policy"))
		}
		cfg.Auth = ikesa.PSK(key)
		if _, dn := pol.GetLocalId().GetKind().(*pb.IKEIdentity_DistinguishedName); dn {
			// The identity is the local certificate's subject.
			if cert == nil {
				errs = append(errs, confError(path+" local-id", "distinguished-name needs local-certificate"))
			} else {
				cert.subjectID = true
				cfg.LocalID = nil
			}
		} else if id, err := localID(pol.GetLocalId()); err != nil {
			errs = append(errs, confError(path+" local-id", "%v", err))
		} else if id != nil {
			cfg.LocalID = id
		}
		if m, err := remoteID(pol.GetRemoteId()); err != nil {
			errs = append(errs, confError(path+" remote-id", "%v", err))
		} else {
			cfg.RemoteID = m
		}
	}
	if v1 {
		// v1Config reads the IPsec policy.
	} else if err := ipsecConfig(c, ipsecPolicy, cfg); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return cfg, cert, nil
}

func ipsecConfig(c *pb.Config, name string, cfg *ikesa.Config) error {
	ipsec := c.GetIpsecVpn().GetIpsec()
	if name == "" {
		// No ipsec-policy: any proposal from the peer (SPEC section 3),
		// with or without PFS.
		cfg.ESPProposals = renumber(append(transform.AllESP(), transform.AllESP(transform.Groups...)...), 1)
		return nil
	}
	var pol *pb.IPsecPolicy
	for _, p := range ipsec.GetPolicies() {
		if p.GetName() == name {
			pol = p
		}
	}
	if pol == nil {
		return confError("services ipsec-vpn", "Referenced IPSec policy must be defined under [edit services ipsec-vpn ipsec policy]")
	}
	path := "services ipsec-vpn ipsec policy " + name
	pfs := pol.GetPerfectForwardSecrecyKeys()
	var errs []error
	if pfs != "" {
		g, err := transform.DHGroup(pfs)
		if err != nil {
			errs = append(errs, confError(path+" perfect-forward-secrecy", "%v", err))
		}
		cfg.PFSGroup = g
	}
	var suites []transform.Suite
	lifetime := uint32(0)
	for _, pn := range pol.GetProposals() {
		var prop *pb.IPsecProposal
		for _, p := range ipsec.GetProposals() {
			if p.GetName() == pn {
				prop = p
			}
		}
		ppath := "services ipsec-vpn ipsec proposal " + pn
		if prop == nil {
			errs = append(errs, confError(path, "Referenced proposal is not defined"))
			continue
		}
		if pr := prop.GetProtocol(); pr == pb.IPsecProtocol_IPSEC_PROTOCOL_AH || pr == pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE {
			errs = append(errs, confError(ppath, "protocol %s is not supported: the data plane is ESP only", strings.ToLower(strings.TrimPrefix(pr.String(), "IPSEC_PROTOCOL_"))))
			continue
		}
		s, err := transform.ESPSuite(prop.GetEncryptionAlgorithm(), prop.GetAuthenticationAlgorithm(), pfs)
		if err != nil {
			errs = append(errs, confError(ppath, "%v", err))
			continue
		}
		suites = append(suites, s)
		if prop.LifetimeSeconds != nil && (lifetime == 0 || prop.GetLifetimeSeconds() < lifetime) {
			lifetime = prop.GetLifetimeSeconds()
		}
		if kb := prop.GetLifetimeKilobytes(); kb != 0 {
			cfg.ChildLifetimeBytes = kb * 1024
		}
	}
	switch {
	case len(pol.GetProposals()) == 0 && pol.GetProposalSet() != "":
		// proposal-set basic, compatible, standard: sitesec offers every
		// supported ESP transform (README).
		var groups []uint16
		if cfg.PFSGroup != 0 {
			groups = []uint16{cfg.PFSGroup}
		}
		cfg.ESPProposals = transform.AllESP(groups...)
	case len(pol.GetProposals()) == 0:
		// SPEC section 5: ESP, hmac-sha1-96; aes-256-cbc stands in for
		// 3des-cbc, which the data plane does not implement.
		if s, err := transform.ESPSuite("", "", pfs); err == nil {
			suites = append(suites, s)
		}
		fallthrough
	default:
		cfg.ESPProposals = transform.Proposals(suites, nil)
	}
	if lifetime != 0 {
		cfg.ChildLifetime = time.Duration(lifetime) * time.Second
	}
	return errors.Join(errs...)
}

func renumber(ps []message.Proposal, from uint8) []message.Proposal {
	for i := range ps {
		ps[i].Number = from + uint8(i)
	}
	return ps
}

func localID(id *pb.IKEIdentity) (*message.ID, error) {
	switch k := id.GetKind().(type) {
	case nil:
		return nil, nil
	case *pb.IKEIdentity_Ipv4Addr:
		a, err := netip.ParseAddr(k.Ipv4Addr)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("ipv4_addr %q", k.Ipv4Addr)
		}
		return ikesa.IPID(a), nil
	case *pb.IKEIdentity_Ipv6Addr:
		a, err := netip.ParseAddr(k.Ipv6Addr)
		if err != nil || !a.Is6() {
			return nil, fmt.Errorf("ipv6-addr %q", k.Ipv6Addr)
		}
		return ikesa.IPID(a), nil
	case *pb.IKEIdentity_Fqdn:
		return &message.ID{IDType: message.IDFQDN, Data: []byte(k.Fqdn)}, nil
	case *pb.IKEIdentity_KeyId:
		return &message.ID{IDType: message.IDKeyID, Data: []byte(k.KeyId)}, nil
	}
	return nil, errors.New("distinguished-name needs a local certificate (pkid), not supported yet")
}

func remoteID(r *pb.RemoteIdentity) (ikesa.IDMatcher, error) {
	if r == nil || r.GetAnyRemoteId() {
		return ikesa.AnyID, nil
	}
	var ids []*message.ID
	for _, s := range append(slices.Clone(r.GetIpv4Addr()), r.GetIpv6Addr()...) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address", s)
		}
		ids = append(ids, ikesa.IPID(a))
	}
	for _, s := range r.GetFqdn() {
		ids = append(ids, &message.ID{IDType: message.IDFQDN, Data: []byte(s)})
	}
	for _, s := range r.GetKeyId() {
		ids = append(ids, &message.ID{IDType: message.IDKeyID, Data: []byte(s)})
	}
	want := r.GetDistinguishedName()
	if len(ids) == 0 && want == nil {
		return ikesa.AnyID, nil
	}
	var matchDN func([]byte) bool
	if want != nil {
		m, err := dnMatcher(want)
		if err != nil {
			return nil, err
		}
		matchDN = m
	}
	exact := ikesa.MatchIDs(ids...)
	return func(id *message.ID) bool {
		if exact(id) {
			return true
		}
		return matchDN != nil && id.IDType == message.IDDERASN1DN && matchDN(id.Data)
	}, nil
}

// fingerprint hashes the statements a peer is built from.
func fingerprint(c *pb.Config, ss *pb.ServiceSet, r *pb.Rule, ikePolicy, ipsecPolicy string, prof *pb.AccessProfile) string {
	h := sha256.New()
	add := func(m proto.Message) {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		h.Write(b)
		h.Write([]byte{0})
	}
	v := c.GetIpsecVpn()
	add(ss)
	add(r)
	add(prof)
	add(&pb.IPsecVPN{EstablishTunnels: v.GetEstablishTunnels(), DisableNatt: v.GetDisableNatt(), NoIpsecTunnelInTraceroute: v.GetNoIpsecTunnelInTraceroute()})
	for _, p := range v.GetIke().GetPolicies() {
		if p.GetName() == ikePolicy {
			add(p)
			for _, q := range v.GetIke().GetProposals() {
				if slices.Contains(p.GetProposals(), q.GetName()) {
					add(q)
				}
			}
		}
	}
	for _, p := range v.GetIpsec().GetPolicies() {
		if p.GetName() == ipsecPolicy {
			add(p)
			for _, q := range v.GetIpsec().GetProposals() {
				if slices.Contains(p.GetProposals(), q.GetName()) {
					add(q)
				}
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// dnMatcher applies remote-id distinguished-name to the parsed RDNs of
// an ID_DER_ASN1_DN (never to its text, issue 14): name is the whole DN
// (RFC 5280 section 7.1, in RFC 4514 or certificate order); container
// lists RDNs the DN must contain; wildcard is like container where a
// value "*" matches any value of its attribute type.
func dnMatcher(want *pb.DistinguishedName) (func(der []byte) bool, error) {
	parse := func(s string) (dn.Name, error) {
		n, err := dn.Parse(s)
		if err == nil && len(n) == 0 {
			err = errors.New("dn: empty name")
		}
		return n, err
	}
	switch {
	case want.GetName() != "":
		name, err := parse(want.GetName())
		if err != nil {
			return nil, fmt.Errorf("distinguished-name name %q: %v", want.GetName(), err)
		}
		return func(der []byte) bool {
			have, err := dn.ParseDER(der)
			return err == nil && dn.EqualEitherOrder(name, have)
		}, nil
	case want.GetContainer() != "" || want.GetWildcard() != "":
		pattern := want.GetContainer()
		if pattern == "" {
			pattern = want.GetWildcard()
		}
		p, err := parse(pattern)
		if err != nil {
			return nil, fmt.Errorf("distinguished-name %q: %v", pattern, err)
		}
		return func(der []byte) bool {
			have, err := dn.ParseDER(der)
			return err == nil && have.Matches(p)
		}, nil
	}
	return func(der []byte) bool {
		_, err := dn.ParseDER(der)
		return err == nil
	}, nil
}
