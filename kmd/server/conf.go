package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/kmd/ikesa"
	"github.com/sitesec/sitesec/kmd/ikev1"
	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/transform"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/dn"
	"github.com/sitesec/sitesec/services/plan"
)

// Establish is when a peer's tunnel comes up (SPEC section 3).
type Establish int

// Modes of establish-tunnels.
const (
	OnTraffic Establish = iota
	Immediately
	ResponderOnly
)

// Peer is one tunnel of the plan (services/plan): a rule term with a
// dynamic SA, or the dynamic endpoints of a service set's access profile.
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
	// Fingerprint changes when anything of the plan the peer runs changes
	// (its tunnel, its set, its key; not its index): its IKE SAs are then
	// negotiated again.
	Fingerprint string

	// TunnelIndex numbers the peer's tunnel for show commands (the plan's).
	TunnelIndex uint32
	// InterfaceStyle: the set is interface-service (not next-hop), so a
	// lost gateway puts its SAs in Not Installed (SPEC section 3).
	InterfaceStyle bool

	// What the SAs carry besides keys, selectors and lifetimes: fwdd owns
	// the data-plane options (tunnel MTU, DF, anti-replay, TTL, TOS) and
	// applies them from the plan.
	UDPEncapPort uint32
	InsideIFL    string
	RoutingInst  string
}

// confError is a configuration error with its hierarchy path.
func confError(path string, format string, a ...any) error {
	return fmt.Errorf("[edit %s] %s", path, fmt.Sprintf(format, a...))
}

// Peers maps the configuration's plan onto peers: kmd reads the plan cfgd
// resolved (gateways, selectors, defaults, indexes) and checks only what
// it can run (algorithms, IKE versions, authentication methods). It
// returns every error at once, each with its hierarchy path; peers with
// errors are left out.
func Peers(c *pb.Config) ([]*Peer, error) {
	pl, errs := plan.Of(c)
	var out []*Peer
	for _, ps := range pl.GetSets() {
		local, _ := netip.AddrFromSlice(ps.GetLocalGateway())
		base := Peer{
			ServiceSet: ps.GetName(), Local: local,
			InterfaceStyle: ps.GetInterfaceStyle(), UDPEncapPort: ps.GetUdpEncapPort(), RoutingInst: ps.GetRoutingInstance(),
		}
		setSum := setFingerprint(ps)
		for _, pt := range ps.GetTunnels() {
			if pt.GetIke() == nil {
				continue // manual SAs are installed by fwdd; a term without an SA has nothing to negotiate
			}
			p := base
			p.Key, p.Rule, p.Term, p.TunnelIndex = pt.GetKey(), pt.GetRule(), pt.GetTerm(), pt.GetIndex()
			p.InsideIFL = pt.GetIpsecInsideInterface()
			p.Remote, _ = netip.AddrFromSlice(pt.GetRemoteGateway())
			p.Backup, _ = netip.AddrFromSlice(pt.GetBackupRemoteGateway())
			p.Dynamic = !p.Remote.IsValid()
			p.Establish = establish(pt.GetEstablish())
			lts, err1 := selectors(pt.GetLocalPrefixes())
			rts, err2 := selectors(pt.GetRemotePrefixes())
			if err := errors.Join(err1, err2); err != nil {
				errs = append(errs, confError("services ipsec-vpn rule "+p.Rule+" term "+p.Term+" from", "%v", err))
				continue
			}
			if err := p.configure(c, ps, pt.GetIke(), local, lts, rts); err != nil {
				errs = append(errs, err)
				continue
			}
			p.IKE.Rule, p.IKE.Term = p.Rule, p.Term
			if p.V1 != nil && (len(lts) != 1 || len(rts) != 1) {
				errs = append(errs, confError("services ipsec-vpn rule "+p.Rule+" term "+p.Term+" from", "IKEv1 carries one source and one destination address per term"))
				continue
			}
			if p.V1 != nil {
				p.V1.LocalTS, p.V1.RemoteTS = lts[0], rts[0]
			}
			x := proto.Clone(pt).(*pb.PlanTunnel)
			x.Index = 0
			p.Fingerprint = fingerprint(setSum, x, psk(c, pt.GetIke()))
			out = append(out, &p)
		}
		if d := ps.GetDynamicEndpoints(); d != nil {
			p := base
			p.Key, p.Dynamic, p.Establish, p.TunnelIndex = d.GetKey(), true, ResponderOnly, d.GetIndex()
			var lts, rts []message.Selector
			var err error
			for _, pp := range d.GetAllowedProxyPairs() {
				l, err1 := prefixSelector(pp.GetLocal())
				r, err2 := prefixSelector(pp.GetRemote())
				if err = errors.Join(err1, err2); err != nil {
					break
				}
				lts, rts = append(lts, l), append(rts, r)
			}
			if err != nil {
				errs = append(errs, confError("access profile "+d.GetAccessProfile()+" client * ike", "allowed-proxy-pair: %v", err))
				continue
			}
			if err := p.configure(c, ps, d.GetIke(), local, lts, rts); err != nil {
				errs = append(errs, err)
				continue
			}
			if p.V1 != nil {
				// IKEv1 dynamic endpoints: one responder tunnel per client,
				// its quick mode accepted inside any allowed-proxy-pair.
				p.V1.LocalTS, p.V1.RemoteTS = lts[0], rts[0]
				for i := range lts {
					p.V1.Allowed = append(p.V1.Allowed, [2]message.Selector{lts[i], rts[i]})
				}
			}
			x := proto.Clone(d).(*pb.PlanDynamicEndpoints)
			x.Index = 0
			p.Fingerprint = fingerprint(setSum, x, psk(c, d.GetIke()))
			out = append(out, &p)
		}
	}
	return out, errors.Join(errs...)
}

func establish(e pb.PlanEstablish) Establish {
	switch e {
	case pb.PlanEstablish_PLAN_ESTABLISH_IMMEDIATELY:
		return Immediately
	case pb.PlanEstablish_PLAN_ESTABLISH_RESPONDER_ONLY:
		return ResponderOnly
	}
	return OnTraffic
}

// configure builds the peer's negotiation from its resolved IKE: p.IKE
// (and p.V1 for IKEv1), and p.cert for signatures.
func (p *Peer) configure(c *pb.Config, ps *pb.PlanSet, ike *pb.PlanIKE, local netip.Addr, lts, rts []message.Selector) error {
	cfg, cert, err := ikeConfig(c, ike, local)
	if err != nil {
		return err
	}
	if cert != nil {
		cert.serviceSet, cert.trustedCA, cert.endEntityOnly = ps.GetName(), ps.GetTrustedCa(), ps.GetNoCertificateChainInIke()
		p.cert = cert
	}
	cfg.Name, cfg.ServiceSet = p.Key, ps.GetName()
	cfg.NATTraversal, cfg.NATKeepalive = ps.GetNatTraversal(), time.Duration(ps.GetNatKeepalive())*time.Second
	cfg.LocalTS, cfg.RemoteTS = lts, rts
	if ike.GetDpdInterval() != 0 {
		cfg.DPDInterval, cfg.DPDThreshold = time.Duration(ike.GetDpdInterval())*time.Second, int(ike.GetDpdThreshold())
	}
	p.IKE = cfg
	if ike.GetVersion() == 1 {
		v1, err := v1Config(ike, cfg, psk(c, ike))
		if err != nil {
			return err
		}
		p.V1 = v1
	}
	return nil
}

// psk is the pre-shared key the plan names (the plan holds no secret;
// kmd's own secrets are in c).
func psk(c *pb.Config, ike *pb.PlanIKE) []byte {
	switch ike.GetPskSource() {
	case pb.PlanPSKSource_PLAN_PSK_IKE_POLICY:
		for _, p := range c.GetIpsecVpn().GetIke().GetPolicies() {
			if p.GetName() == ike.GetPskName() {
				return p.GetPreSharedKey().GetValue()
			}
		}
	case pb.PlanPSKSource_PLAN_PSK_ACCESS_PROFILE:
		for _, p := range c.GetAccessProfiles() {
			if p.GetName() == ike.GetPskName() {
				return p.GetClientIke().GetPreSharedKey().GetValue()
			}
		}
	}
	return nil
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

// selectors are the plan's prefixes of one side (any IPv4 address when
// there are none).
func selectors(list []string) ([]message.Selector, error) {
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

// ikeConfig builds the negotiation parameters of a resolved IKE (its
// proposals have Junos's defaults filled in). An IKE without policy
// (dynamic endpoints with a key in the access profile) accepts every
// supported IKE transform; without an IPsec policy every ESP transform.
func ikeConfig(c *pb.Config, ike *pb.PlanIKE, local netip.Addr) (*ikesa.Config, *certAuth, error) {
	var cert *certAuth
	cfg := &ikesa.Config{
		IKELifetime:   time.Duration(ike.GetIkeLifetime()) * time.Second,
		ChildLifetime: time.Duration(ike.GetIpsecLifetime()) * time.Second,
		RemoteID:      ikesa.AnyID,
		LocalID:       ikesa.IPID(local),
		Auth:          ikesa.PSK(psk(c, ike)),
	}
	var errs []error
	v1 := ike.GetVersion() == 1
	var suites []transform.Suite
	for _, prop := range ike.GetIkeProposals() {
		ppath := "services ipsec-vpn ike proposal " + prop.GetName()
		switch m := prop.GetAuthenticationMethod(); m {
		case "pre-shared-keys", "rsa-signatures", "ecdsa-signatures-256", "ecdsa-signatures-384":
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
	}
	if ike.GetAnyIkeProposal() {
		cfg.IKEProposals = transform.AllIKE()
	} else {
		cfg.IKEProposals = transform.Proposals(suites, nil)
	}
	path := "services ipsec-vpn ike policy " + ike.GetIkePolicy()
	if ike.GetSignatures() {
		cert = &certAuth{certificateID: ike.GetLocalCertificate(), policyOIDs: ike.GetCertificatePolicyOids()}
	}
	if _, dn := ike.GetLocalId().GetKind().(*pb.IKEIdentity_DistinguishedName); dn {
		// The identity is the local certificate's subject.
		if cert == nil {
			errs = append(errs, confError(path+" local-id", "distinguished-name needs local-certificate"))
		} else {
			cert.subjectID = true
			cfg.LocalID = nil
		}
	} else if id, err := localID(ike.GetLocalId()); err != nil {
		errs = append(errs, confError(path+" local-id", "%v", err))
	} else if id != nil {
		cfg.LocalID = id
	}
	if m, err := remoteID(ike.GetRemoteId()); err != nil {
		errs = append(errs, confError(path+" remote-id", "%v", err))
	} else {
		cfg.RemoteID = m
	}
	if !v1 {
		if err := ipsecConfig(ike, cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return cfg, cert, nil
}

func ipsecConfig(ike *pb.PlanIKE, cfg *ikesa.Config) error {
	if ike.GetAnyIpsecProposal() {
		// No ipsec-policy: any proposal from the peer (SPEC section 3),
		// with or without PFS.
		cfg.ESPProposals = renumber(append(transform.AllESP(), transform.AllESP(transform.Groups...)...), 1)
		return nil
	}
	path := "services ipsec-vpn ipsec policy " + ike.GetIpsecPolicy()
	pfs := ike.GetPfsGroup()
	var errs []error
	if pfs != "" {
		g, err := transform.DHGroup(pfs)
		if err != nil {
			errs = append(errs, confError(path+" perfect-forward-secrecy", "%v", err))
		}
		cfg.PFSGroup = g
	}
	var suites []transform.Suite
	for _, prop := range ike.GetIpsecProposals() {
		ppath := "services ipsec-vpn ipsec proposal " + prop.GetName()
		var s transform.Suite
		var err error
		switch prop.GetProtocol() {
		case pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE:
			errs = append(errs, confError(ppath, "protocol bundle needs IKE version 1: IKEv2 negotiates no AH + ESP bundles (RFC 7296)"))
			continue
		case pb.IPsecProtocol_IPSEC_PROTOCOL_AH:
			s, err = transform.AHSuite(prop.GetAuthenticationAlgorithm(), pfs)
		default:
			s, err = transform.ESPSuite(prop.GetEncryptionAlgorithm(), prop.GetAuthenticationAlgorithm(), pfs)
		}
		if err != nil {
			errs = append(errs, confError(ppath, "%v", err))
			continue
		}
		suites = append(suites, s)
	}
	if kb := ike.GetIpsecLifetimeKilobytes(); kb != 0 {
		cfg.ChildLifetimeBytes = kb * 1024
	}
	if ike.GetIpsecProposalSet() != "" {
		// proposal-set basic, compatible, standard: sitesec offers every
		// supported ESP transform (README).
		var groups []uint16
		if cfg.PFSGroup != 0 {
			groups = []uint16{cfg.PFSGroup}
		}
		cfg.ESPProposals = transform.AllESP(groups...)
	} else {
		cfg.ESPProposals = transform.Proposals(suites, nil)
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

// setFingerprint hashes what of a set its peers depend on (not its
// tunnels: each peer hashes its own).
func setFingerprint(ps *pb.PlanSet) []byte {
	x := &pb.PlanSet{Name: ps.GetName(), NextHop: ps.GetNextHop(), InsideInterface: ps.GetInsideInterface(),
		OutsideInterface: ps.GetOutsideInterface(), InterfaceStyle: ps.GetInterfaceStyle(), LocalGateway: ps.GetLocalGateway(), RoutingInstance: ps.GetRoutingInstance(),
		UdpEncapPort: ps.GetUdpEncapPort(), NatTraversal: ps.GetNatTraversal(), NatKeepalive: ps.GetNatKeepalive(),
		Options: ps.GetOptions(), TrustedCa: ps.GetTrustedCa(), NoCertificateChainInIke: ps.GetNoCertificateChainInIke()}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(x)
	sum := sha256.Sum256(b)
	return sum[:]
}

// fingerprint hashes what a peer runs: its set's part, its tunnel (index
// cleared: a tunnel added before it does not renegotiate it) and its key.
func fingerprint(set []byte, tunnel proto.Message, key []byte) string {
	h := sha256.New()
	h.Write(set)
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(tunnel)
	h.Write(b)
	h.Write([]byte{0})
	h.Write(key)
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
