package spd

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/proto/pb"
)

func u32(v uint32) *uint32 { return &v }

func testConfig() *pb.Config {
	return &pb.Config{
		ServiceSets: []*pb.ServiceSet{
			{
				Name:          "nh",
				Style:         &pb.ServiceSet_NextHopService{NextHopService: &pb.NextHopService{InsideServiceInterface: "ms-1/2/0.1", OutsideServiceInterface: "ms-1/2/0.2"}},
				IpsecVpnRules: []string{"manual-rule"},
				IpsecVpnOptions: &pb.IPsecVPNOptions{
					LocalGateway:         &pb.LocalGateway{Address: "192.0.2.1"},
					AntiReplayWindowSize: u32(256),
					TunnelMtu:            u32(1400),
					DontFragment:         pb.DFBit_DF_BIT_SET, // DEP only: ignored here
					PassiveModeTunneling: true,
					UdpEncapsulate:       &pb.UDPEncapsulate{},
				},
			},
			{
				Name:          "if",
				Style:         &pb.ServiceSet_InterfaceService{InterfaceService: &pb.InterfaceService{ServiceInterface: "sp-1/2/0.5"}},
				IpsecVpnRules: []string{"dyn"},
				IpsecVpnOptions: &pb.IPsecVPNOptions{
					LocalGateway: &pb.LocalGateway{Address: "192.0.2.9"},
					NoAntiReplay: true,
					DontFragment: pb.DFBit_DF_BIT_CLEAR,
				},
				ServiceSetOptions: &pb.ServiceSetOptions{HeaderIntegrityCheckEnableAll: true},
			},
			{Name: "not-ipsec", Style: &pb.ServiceSet_InterfaceService{InterfaceService: &pb.InterfaceService{ServiceInterface: "sp-9/9/9.9"}}},
		},
		IpsecVpn: &pb.IPsecVPN{
			NoIpsecTunnelInTraceroute: true,
			Rules: []*pb.Rule{
				{Name: "manual-rule", MatchDirection: pb.MatchDirection_MATCH_DIRECTION_INPUT, Terms: []*pb.Term{{
					Name: "t1",
					From: &pb.TermFrom{SourceAddress: []string{"10.0.1.0/24"}, DestinationAddress: []string{"10.0.2.0/24"}},
					Then: &pb.TermThen{RemoteGateway: "198.51.100.1", NoAntiReplay: true, CopyTtlFromInnerIpHeader: true, Tos: u32(8),
						Sa: &pb.TermThen_Manual{Manual: &pb.ManualSA{Directions: []*pb.ManualSADirection{{
							Direction: pb.ManualDirection_MANUAL_DIRECTION_BIDIRECTIONAL, Protocol: pb.IPsecProtocol_IPSEC_PROTOCOL_ESP, Spi: 16000,
							AuthenticationAlgorithm: "hmac-sha2-256", AuthenticationKey: &pb.Key{Value: make([]byte, 32)},
							EncryptionAlgorithm: "aes-128-cbc", EncryptionKey: &pb.Key{Value: make([]byte, 16)},
						}}}}},
				}}},
				{Name: "dyn", MatchDirection: pb.MatchDirection_MATCH_DIRECTION_OUTPUT, Terms: []*pb.Term{
					{Name: "a", From: &pb.TermFrom{DestinationAddress: []string{"10.9.0.0/16"}}, Then: &pb.TermThen{RemoteGateway: "203.0.113.5", AntiReplayWindowSize: u32(1024), DontFragment: pb.DFBit_DF_BIT_COPY, TunnelMtu: u32(9000)}},
					{Name: "b", Then: &pb.TermThen{RemoteGateway: "203.0.113.6"}},
				}},
			},
		},
	}
}

func TestBuild(t *testing.T) {
	tbl, errs := Build(testConfig())
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if len(tbl.Sets) != 2 {
		t.Fatalf("%d sets", len(tbl.Sets))
	}
	nh := tbl.ByInside("ms-1/2/0.1")
	if nh == nil || nh.Name != "nh" || !nh.NextHop || nh.UDPEncapPort != DefaultUDPEncapPort || !nh.NATTraversal {
		t.Fatalf("nh set %+v", nh)
	}
	tests := []struct {
		name string
		got  Options
		want Options
	}{
		{"nh set", nh.Options, Options{ReplayWindow: 256, TunnelMTU: 1400, TTL: 64, DF: pb.DFBit_DF_BIT_SET, Passive: true, NoTraceroute: true}},
		{"nh term: no-anti-replay overrides, set-level DF set is DEP-only", nh.Terms[0].Options,
			Options{ReplayWindow: 0, TunnelMTU: 1400, TTL: 64, CopyTTL: true, TOS: 8, Passive: true, NoTraceroute: true}},
		{"if term a overrides", tbl.Set("if").Terms[0].Options,
			Options{ReplayWindow: 1024, TunnelMTU: 9000, TTL: 64, DF: pb.DFBit_DF_BIT_COPY, HeaderIntegrity: true, NoTraceroute: true}},
		{"if term b inherits clear", tbl.Set("if").Terms[1].Options,
			Options{ReplayWindow: 0, TunnelMTU: 1500, TTL: 64, DF: pb.DFBit_DF_BIT_CLEAR, HeaderIntegrity: true, NoTraceroute: true}},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, tt.got, tt.want)
		}
	}
}

func TestLookup(t *testing.T) {
	tbl, _ := Build(testConfig())
	a := netip.MustParseAddr
	tests := []struct {
		set, src, dst string
		want          string
	}{
		{"nh", "10.0.1.1", "10.0.2.1", "t1"},
		// Next hop: what no term matches goes to the first term.
		{"nh", "10.0.1.1", "10.0.3.1", "t1"},
		{"nh", "10.0.9.1", "10.0.2.1", "t1"},
		// Interface style, match-direction output: the term matches the
		// packet leaving the interface as it is (no swap).
		{"if", "172.16.0.1", "10.9.1.1", "a"},
		{"if", "10.9.1.1", "172.16.0.1", "b"},
	}
	for _, tt := range tests {
		term := tbl.Set(tt.set).Lookup(a(tt.src), a(tt.dst))
		got := ""
		if term != nil {
			got = term.Name
		}
		if got != tt.want {
			t.Errorf("%s %s->%s: %q, want %q", tt.set, tt.src, tt.dst, got, tt.want)
		}
	}
}

func TestManualSAs(t *testing.T) {
	tbl, _ := Build(testConfig())
	sas, errs := tbl.ManualSAs()
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if len(sas) != 2 {
		t.Fatalf("%d SAs", len(sas))
	}
	in, out := sas[0], sas[1]
	if in.Direction != pb.Direction_DIRECTION_INBOUND || out.Direction != pb.Direction_DIRECTION_OUTBOUND {
		t.Fatal("directions")
	}
	if in.Spi != 16000 || in.AuthenticationAlgorithm != "hmac-sha-256-128" || in.Type != pb.SAType_SA_TYPE_MANUAL {
		t.Fatalf("inbound %v", in)
	}
	if in.Encapsulation != pb.Encapsulation_ENCAPSULATION_UDP_MULTIPATH || in.Remote.Port != 4565 {
		t.Fatalf("encapsulation %v port %d", in.Encapsulation, in.Remote.Port)
	}
	if in.ReplayWindow != 0 || !out.CopyTtl || out.Tos != 8 || out.TunnelMtu != 1400 || !out.PassiveModeTunneling {
		t.Fatalf("options not applied: %v", out)
	}
	if len(out.LocalSelectors) != 0 || len(out.RemoteSelectors) != 0 {
		t.Fatalf("next-hop manual SA with selectors %v", out.RemoteSelectors)
	}
	// An interface-style set's manual SA carries its term's selectors.
	c := testConfig()
	c.ServiceSets[0].Style = &pb.ServiceSet_InterfaceService{InterfaceService: &pb.InterfaceService{ServiceInterface: "ms-1/2/0.1"}}
	tbl2, _ := Build(c)
	sas2, _ := tbl2.ManualSAs()
	if o := sas2[1]; len(o.LocalSelectors) != 1 || netip.AddrFrom4([4]byte(o.RemoteSelectors[0].EndAddress)).String() != "10.0.2.255" {
		t.Fatalf("selectors %v", o.RemoteSelectors)
	}
	if in.LocalIdentity != "ipv4_subnet(any:0,[0..7]=10.0.1.0/24)" {
		t.Fatalf("identity %q", in.LocalIdentity)
	}
}

func TestErrors(t *testing.T) {
	c := testConfig()
	c.ServiceSets[1].IpsecVpnRules = append(c.ServiceSets[1].IpsecVpnRules, "missing")
	c.ServiceSets[1].Style = &pb.ServiceSet_InterfaceService{InterfaceService: &pb.InterfaceService{ServiceInterface: "ms-1/2/0.1"}}
	c.IpsecVpn.Rules[1].Terms[0].From.DestinationAddress = []string{"10.9.0.0/99"}
	c.IpsecVpn.Rules[1].Terms[1].Then.RemoteGateway = "nope"
	c.IpsecVpn.Rules[0].Terms[0].Then.GetManual().Directions[0].Protocol = pb.IPsecProtocol_IPSEC_PROTOCOL_AH
	tbl, errs := Build(c)
	want := []string{
		"[edit services service-set if] Referenced IPSec VPN rule must be defined under [edit services ipsec-vpn rule]",
		"[edit services ipsec-vpn rule dyn term a from] destination-address",
		"[edit services ipsec-vpn rule dyn term b then] remote-gateway",
		"[edit services service-set if] inside interface ms-1/2/0.1 is already used by service set nh",
	}
	all := ""
	for _, e := range errs {
		all += e.Error() + "\n"
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("missing error %q in\n%s", w, all)
		}
	}
	_, merrs := tbl.ManualSAs()
	if len(merrs) != 1 || !strings.Contains(merrs[0].Error(), "direction bidirectional] protocol ah cannot be used with udp-encapsulate") {
		t.Fatalf("manual errors %v", merrs)
	}
}

func BenchmarkLookup(b *testing.B) {
	tbl, _ := Build(testConfig())
	s := tbl.Set("if")
	src, dst := netip.MustParseAddr("172.16.0.1"), netip.MustParseAddr("10.9.1.1")
	b.ReportAllocs()
	for b.Loop() {
		if s.Lookup(src, dst) == nil {
			b.Fatal("no term")
		}
	}
}
