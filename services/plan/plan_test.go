package plan

import (
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/redact"
)

func u32(v uint32) *uint32 { return &v }

// config is one next-hop set with one IKEv2 term, in the shape of SPEC
// section 3's next-hop example.
func config() *pb.Config {
	return &pb.Config{
		Interfaces: []*pb.Interface{{Name: "ge-0/0/0", Units: []*pb.Unit{{Number: 0, InetAddresses: []string{"192.0.2.1/24"}}}}},
		ServiceSets: []*pb.ServiceSet{{
			Name:            "ss1",
			Style:           &pb.ServiceSet_NextHopService{NextHopService: &pb.NextHopService{InsideServiceInterface: "ms-1/2/0.1", OutsideServiceInterface: "ms-1/2/0.2"}},
			IpsecVpnRules:   []string{"r1"},
			IpsecVpnOptions: &pb.IPsecVPNOptions{LocalGateway: &pb.LocalGateway{Address: "192.0.2.1"}},
		}},
		IpsecVpn: &pb.IPsecVPN{
			Rules: []*pb.Rule{{Name: "r1", MatchDirection: pb.MatchDirection_MATCH_DIRECTION_INPUT, Terms: []*pb.Term{{
				Name: "t1",
				From: &pb.TermFrom{SourceAddress: []string{"10.0.0.1/24"}, DestinationAddress: []string{"10.1.0.0/24"}},
				Then: &pb.TermThen{RemoteGateway: "198.51.100.1", Sa: &pb.TermThen_Dynamic{Dynamic: &pb.DynamicSA{IkePolicy: "ike1", IpsecPolicy: "ipsec1"}}},
			}}}},
			Ike: &pb.IKE{
				Proposals: []*pb.IKEProposal{{Name: "p1"}},
				Policies:  []*pb.IKEPolicy{{Name: "ike1", Version: 2, Proposals: []string{"p1"}, PreSharedKey: &pb.Key{Value: []byte("k")}}},
			},
			Ipsec: &pb.IPsec{
				Proposals: []*pb.IPsecProposal{{Name: "e1"}},
				Policies:  []*pb.IPsecPolicy{{Name: "ipsec1", Proposals: []string{"e1"}}},
			},
		},
	}
}

func resolve(t *testing.T, c *pb.Config) *pb.Plan {
	t.Helper()
	p, errs := Resolve(c)
	if len(errs) > 0 {
		t.Fatalf("Resolve: %v", errs)
	}
	return p
}

func TestResolve(t *testing.T) {
	p := resolve(t, config())
	if len(p.Sets) != 1 || len(p.Sets[0].Tunnels) != 1 {
		t.Fatalf("%v", p)
	}
	s, tn := p.Sets[0], p.Sets[0].Tunnels[0]
	if a, _ := netip.AddrFromSlice(s.LocalGateway); a.String() != "192.0.2.1" || !s.NextHop || s.InsideInterface != "ms-1/2/0.1" {
		t.Fatalf("set %v", s)
	}
	if tn.Key != "ss1/r1/t1" || tn.Index != 1 || strings.Join(tn.LocalPrefixes, ",") != "10.0.0.0/24" || strings.Join(tn.RemotePrefixes, ",") != "10.1.0.0/24" {
		t.Fatalf("tunnel %v", tn)
	}
	o := tn.Options
	if o.ReplayWindow != 128 || o.TunnelMtu != 1500 || o.Ttl != 64 || o.DontFragment != pb.DFBit_DF_BIT_UNSPECIFIED {
		t.Fatalf("options %v", o)
	}
	ike := tn.Ike
	if ike.Version != 2 || ike.IkeLifetime != 3600 || ike.IpsecLifetime != 28800 || ike.PskSource != pb.PlanPSKSource_PLAN_PSK_IKE_POLICY || ike.PskName != "ike1" {
		t.Fatalf("ike %v", ike)
	}
	if got := ike.IkeProposals[0]; got.DhGroup != "group1" || got.AuthenticationAlgorithm != "sha1" || got.EncryptionAlgorithm != "3des-cbc" || got.AuthenticationMethod != "pre-shared-keys" {
		t.Fatalf("IKEv2 defaults %v", got)
	}
	if got := ike.IpsecProposals[0]; got.Protocol != pb.IPsecProtocol_IPSEC_PROTOCOL_ESP || got.AuthenticationAlgorithm != "hmac-sha1-96" || got.EncryptionAlgorithm != "3des-cbc" {
		t.Fatalf("IPsec defaults %v", got)
	}
	if len(s.Sockets) != 2 || s.Sockets[0].Port != 500 || s.Sockets[1].Port != 4500 {
		t.Fatalf("sockets %v", s.Sockets)
	}
}

// The schema's declared IKEv1 defaults (dh-group group1, version 1) are
// what the plan fills in: kmd runs the plan (issue 11).
func TestIKEv1Defaults(t *testing.T) {
	c := config()
	c.IpsecVpn.Ike.Policies[0].Version = 0
	c.IpsecVpn.Ipsec.Policies[0].Proposals = nil
	ike := resolve(t, c).Sets[0].Tunnels[0].Ike
	if ike.Version != 1 || ike.Mode != "main" {
		t.Fatalf("version %d mode %q", ike.Version, ike.Mode)
	}
	if got := ike.IkeProposals[0]; got.DhGroup != "group1" || got.AuthenticationAlgorithm != "sha1" || got.EncryptionAlgorithm != "3des-cbc" {
		t.Fatalf("IKEv1 defaults %v", got)
	}
	if len(ike.IpsecProposals) != 2 || ike.IpsecProposals[0].EncryptionAlgorithm != "3des-cbc" || ike.IpsecProposals[1].EncryptionAlgorithm != "aes-128-cbc" {
		t.Fatalf("IKEv1 standard IPsec set %v", ike.IpsecProposals)
	}
}

// A set-level set-dont-fragment-bit acts on dynamic-endpoint tunnels only
// (SPEC section 3, "Precedence"); kmd used to send DF set for a term's
// tunnel while fwdd left it unspecified.
func TestSetLevelDF(t *testing.T) {
	c := config()
	c.ServiceSets[0].IpsecVpnOptions.DontFragment = pb.DFBit_DF_BIT_SET
	c.ServiceSets[0].IpsecVpnOptions.TunnelMtu = u32(1400)
	p := resolve(t, c)
	if o := p.Sets[0].Tunnels[0].Options; o.DontFragment != pb.DFBit_DF_BIT_UNSPECIFIED || o.TunnelMtu != 1400 {
		t.Fatalf("term tunnel of a set with set-dont-fragment-bit: %v", o)
	}
	c.ServiceSets[0].IpsecVpnOptions.DontFragment = pb.DFBit_DF_BIT_CLEAR
	if o := resolve(t, c).Sets[0].Tunnels[0].Options; o.DontFragment != pb.DFBit_DF_BIT_CLEAR {
		t.Fatalf("set-level clear applies to every tunnel: %v", o)
	}
	c.IpsecVpn.Rules[0].Terms[0].Then.DontFragment = pb.DFBit_DF_BIT_COPY
	c.IpsecVpn.Rules[0].Terms[0].Then.TunnelMtu = u32(1300)
	c.IpsecVpn.Rules[0].Terms[0].Then.NoAntiReplay = true
	if o := resolve(t, c).Sets[0].Tunnels[0].Options; o.DontFragment != pb.DFBit_DF_BIT_COPY || o.TunnelMtu != 1300 || o.ReplayWindow != 0 {
		t.Fatalf("the term overrides the set: %v", o)
	}
	// Dynamic endpoints run with the set level.
	c = config()
	c.ServiceSets[0].IpsecVpnRules = nil
	c.ServiceSets[0].IpsecVpnOptions.IkeAccessProfile = "ap"
	c.ServiceSets[0].IpsecVpnOptions.DontFragment = pb.DFBit_DF_BIT_SET
	c.AccessProfiles = []*pb.AccessProfile{{Name: "ap", ClientIke: &pb.AccessClientIKE{PreSharedKey: &pb.Key{Value: []byte("k")}}}}
	p = resolve(t, c)
	d := p.Sets[0].DynamicEndpoints
	if d == nil || p.Sets[0].Options.DontFragment != pb.DFBit_DF_BIT_SET || d.Key != "ss1/ap" || d.Index != 1 {
		t.Fatalf("dynamic endpoints %v", p.Sets[0])
	}
	if len(d.AllowedProxyPairs) != 1 || d.AllowedProxyPairs[0].Local != "0.0.0.0/0" || !d.Ike.AnyIkeProposal || !d.Ike.AnyIpsecProposal || d.Ike.PskSource != pb.PlanPSKSource_PLAN_PSK_ACCESS_PROFILE {
		t.Fatalf("dynamic endpoints %v", d)
	}
}

// local-gateway interface IFL resolves to the unit's address (kmd used to
// fail with `local gateway "" is not an address`).
func TestLocalGatewayInterface(t *testing.T) {
	c := config()
	c.ServiceSets[0].IpsecVpnOptions.LocalGateway = &pb.LocalGateway{Interface: "ge-0/0/0.0"}
	s := resolve(t, c).Sets[0]
	if a, _ := netip.AddrFromSlice(s.LocalGateway); a.String() != "192.0.2.1" || s.LocalGatewayInterface != "ge-0/0/0.0" {
		t.Fatalf("%v", s)
	}
	c.ServiceSets[0].IpsecVpnOptions.LocalGateway = &pb.LocalGateway{Interface: "ge-0/0/1.0"}
	if _, errs := Resolve(c); len(errs) != 1 || !strings.Contains(errs[0].Error(), "[edit services service-set ss1 ipsec-vpn-options local-gateway] interface ge-0/0/1.0 has no address") {
		t.Fatalf("%v", errs)
	}
}

// Tunnel indexes number every tunnel in configuration order, manual ones
// included (fwdd used to hash manual terms, kmd to count dynamic ones).
func TestIndexes(t *testing.T) {
	c := config()
	r := c.IpsecVpn.Rules[0]
	r.Terms = append([]*pb.Term{{Name: "m", Then: &pb.TermThen{RemoteGateway: "198.51.100.2", Sa: &pb.TermThen_Manual{Manual: &pb.ManualSA{}}}}}, r.Terms...)
	c.ServiceSets = append(c.ServiceSets, proto.Clone(c.ServiceSets[0]).(*pb.ServiceSet))
	c.ServiceSets[1].Name = "ss2"
	p := resolve(t, c)
	var got []uint32
	for _, s := range p.Sets {
		for _, tn := range s.Tunnels {
			got = append(got, tn.Index)
		}
	}
	if len(got) != 4 || got[0] != 1 || got[1] != 2 || got[2] != 3 || got[3] != 4 || !p.Sets[0].Tunnels[0].Manual {
		t.Fatalf("indexes %v", got)
	}
}

func TestMatchDirectionOutput(t *testing.T) {
	c := config()
	c.IpsecVpn.Rules[0].MatchDirection = pb.MatchDirection_MATCH_DIRECTION_OUTPUT
	tn := resolve(t, c).Sets[0].Tunnels[0]
	if !tn.Output || tn.LocalPrefixes[0] != "10.1.0.0/24" || tn.RemotePrefixes[0] != "10.0.0.0/24" {
		t.Fatalf("%v", tn)
	}
	// An interface-style set's output rule matches the packets leaving
	// the interface as they are: no swap.
	c.ServiceSets[0].Style = &pb.ServiceSet_InterfaceService{InterfaceService: &pb.InterfaceService{ServiceInterface: "ms-1/2/0.0"}}
	tn = resolve(t, c).Sets[0].Tunnels[0]
	if !tn.Output || tn.LocalPrefixes[0] != "10.0.0.0/24" || tn.RemotePrefixes[0] != "10.1.0.0/24" {
		t.Fatalf("interface style: %v", tn)
	}
}

func TestErrors(t *testing.T) {
	c := config()
	c.IpsecVpn.Ike.Policies = nil
	c.ServiceSets = append(c.ServiceSets, &pb.ServiceSet{Name: "ss2", IpsecVpnRules: []string{"nope"},
		IpsecVpnOptions: &pb.IPsecVPNOptions{LocalGateway: &pb.LocalGateway{Address: "192.0.2.9"}}})
	p, errs := Resolve(c)
	if len(errs) != 2 || len(p.Sets[0].Tunnels) != 0 {
		t.Fatalf("%v %v", errs, p)
	}
}

// The plan goes to every daemon in the shared configuration: it may hold
// no secret (services/bus splits only Config's secret fields by owner).
func TestPlanHoldsNoSecret(t *testing.T) {
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		for i := 0; i < md.Fields().Len(); i++ {
			fd := md.Fields().Get(i)
			if redact.IsSecret(fd) {
				t.Errorf("%s is a secret", fd.FullName())
			}
			if fd.Message() != nil {
				walk(fd.Message())
			}
		}
	}
	walk((&pb.Plan{}).ProtoReflect().Descriptor())
}

func TestOfPrefersCfgdsPlan(t *testing.T) {
	c := config()
	c.Plan = &pb.Plan{Sets: []*pb.PlanSet{{Name: "from-cfgd"}}}
	if p, errs := Of(c); len(errs) != 0 || p.Sets[0].Name != "from-cfgd" {
		t.Fatal(p, errs)
	}
}

// initiate-dead-peer-detection without a dead-peer-detection block takes
// the defaults (kmd used to dereference the missing block).
func TestDPDDefaults(t *testing.T) {
	c := config()
	c.IpsecVpn.Rules[0].Terms[0].Then.InitiateDeadPeerDetection = true
	ike := resolve(t, c).Sets[0].Tunnels[0].Ike
	if ike.DpdInterval != 10 || ike.DpdThreshold != 3 {
		t.Fatalf("%v", ike)
	}
}

// The statements fwdd needed to read itself before (issue 11 item 1): the
// sockets, the inside unit's addresses and MTU, the static routes to it
// and the units applying an interface-style set.
func TestPlanInsideAndUnits(t *testing.T) {
	c := config()
	c.ServiceSets[0].IpsecVpnOptions.NoNatTraversal = true
	c.ServiceSets[0].IpsecVpnOptions.UdpEncapsulate = &pb.UDPEncapsulate{}
	c.ServiceSets = append(c.ServiceSets, &pb.ServiceSet{Name: "ifs",
		Style:           &pb.ServiceSet_InterfaceService{InterfaceService: &pb.InterfaceService{ServiceInterface: "ms-1/2/0.5"}},
		IpsecVpnRules:   []string{"r1"},
		IpsecVpnOptions: &pb.IPsecVPNOptions{LocalGateway: &pb.LocalGateway{Interface: "ge-0/0/0.0"}}})
	c.Interfaces = append(c.Interfaces,
		&pb.Interface{Name: "ms-1/2/0", Units: []*pb.Unit{{Number: 1, InetAddresses: []string{"10.9.9.1/30"}, Inet6Addresses: []string{"2001:db8::1/64"}, Mtu: u32(1400)}}},
		&pb.Interface{Name: "ge-0/0/1", Units: []*pb.Unit{
			{Number: 0, InetAddresses: []string{"10.0.1.1/24"}, ServiceInput: []string{"ifs"}, ServiceOutput: []string{"ifs"}},
			{Number: 7, ServiceInput: []string{"ifs"}},
			{Number: 8, ServiceInput: []string{"ss1"}}, // a next-hop set: cfgd refuses it; nothing to steer
		}})
	c.RoutingOptions = &pb.RoutingOptions{StaticRoutes: []*pb.StaticRoute{
		{Prefix: "10.1.0.7/24", NextHops: []string{"ms-1/2/0.1"}},
		{Prefix: "10.3.0.0/16", NextHops: []string{"192.0.2.254"}},
		{Prefix: "10.4.0.0/16", NextHops: []string{"ms-1/2/0.5", "ms-1/2/0.1"}},
	}}
	p := resolve(t, c)
	ss, ifs := p.Sets[0], p.Sets[1]
	var socks []string
	for _, s := range ss.Sockets {
		a, _ := netip.AddrFromSlice(s.Address)
		socks = append(socks, netip.AddrPortFrom(a, uint16(s.Port)).String()+" "+s.Kind)
	}
	// no-nat-traversal: no 4500; udp-encapsulate without dest-port: 4565.
	if got := strings.Join(socks, ", "); got != "192.0.2.1:500 ike, 192.0.2.1:4565 udp-encapsulate" {
		t.Errorf("sockets %s", got)
	}
	if strings.Join(ss.InsideAddresses, " ") != "10.9.9.1/30 2001:db8::1/64" || ss.InsideMtu != 1400 ||
		strings.Join(ss.InsideRoutes, " ") != "10.1.0.0/24 10.4.0.0/16" || len(ss.ServiceUnits) != 0 {
		t.Errorf("ss1 inside %v mtu %d routes %v units %v", ss.InsideAddresses, ss.InsideMtu, ss.InsideRoutes, ss.ServiceUnits)
	}
	var units []string
	for _, u := range ifs.ServiceUnits {
		units = append(units, u.Unit+map[bool]string{false: " input ", true: " output "}[u.Output]+strings.Join(u.Addresses, ","))
	}
	if got := strings.Join(units, "; "); got != "ge-0/0/1.0 input 10.0.1.1/24; ge-0/0/1.0 output 10.0.1.1/24; ge-0/0/1.7 input " {
		t.Errorf("units %q", got)
	}
	if len(ifs.InsideAddresses) != 0 || ifs.InsideMtu != 0 || strings.Join(ifs.InsideRoutes, " ") != "10.4.0.0/16" {
		t.Errorf("ifs inside %v %d %v", ifs.InsideAddresses, ifs.InsideMtu, ifs.InsideRoutes)
	}
}
