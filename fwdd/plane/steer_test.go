package plane

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/sitesec/sitesec/fwdd/spd"
	"github.com/sitesec/sitesec/proto/pb"
)

func TestSteerPlan(t *testing.T) {
	cfg := &pb.Config{
		Interfaces: []*pb.Interface{
			{Name: "ge-0/0/0", Units: []*pb.Unit{{Number: 0, InetAddresses: []string{"192.0.2.1/24"},
				ServiceInput: []string{"ifs"}, ServiceOutput: []string{"ifs"}}}},
			{Name: "ge-0/0/1", Units: []*pb.Unit{{Number: 0, InetAddresses: []string{"10.0.1.1/24"}, ServiceInput: []string{"ifs"}}}},
			{Name: "ge-0/0/2", Units: []*pb.Unit{{Number: 0, ServiceInput: []string{"nh"}}}},
		},
		ServiceSets: []*pb.ServiceSet{
			{Name: "ifs", Style: &pb.ServiceSet_InterfaceService{InterfaceService: &pb.InterfaceService{ServiceInterface: "ms-1/2/0.0"}},
				IpsecVpnRules: []string{"in", "out"}, IpsecVpnOptions: &pb.IPsecVPNOptions{LocalGateway: &pb.LocalGateway{Address: "192.0.2.1"}}},
			{Name: "nh", Style: &pb.ServiceSet_NextHopService{NextHopService: &pb.NextHopService{InsideServiceInterface: "ms-1/2/0.1", OutsideServiceInterface: "ms-1/2/0.2"}},
				IpsecVpnRules: []string{"in"}, IpsecVpnOptions: &pb.IPsecVPNOptions{LocalGateway: &pb.LocalGateway{Address: "192.0.2.1"}}},
		},
		IpsecVpn: &pb.IPsecVPN{Rules: []*pb.Rule{
			{Name: "in", MatchDirection: pb.MatchDirection_MATCH_DIRECTION_INPUT, Terms: []*pb.Term{{Name: "t1",
				From: &pb.TermFrom{SourceAddress: []string{"10.0.1.0/24"}, DestinationAddress: []string{"10.0.2.0/24", "10.0.3.0/24"}},
				Then: &pb.TermThen{RemoteGateway: "192.0.2.2"}}}},
			{Name: "out", MatchDirection: pb.MatchDirection_MATCH_DIRECTION_OUTPUT, Terms: []*pb.Term{{Name: "t2",
				From: &pb.TermFrom{DestinationAddress: []string{"10.0.9.0/24"}},
				Then: &pb.TermThen{RemoteGateway: "192.0.2.3"}}}},
		}},
	}
	tbl, errs := spd.Build(cfg)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	// The units come from the plan (services/plan), not from fwdd's own
	// reading of the interfaces: ge-0/0/2 applies a next-hop set, which
	// cfgd's commit check refuses and the plan leaves out.
	if u := tbl.Set("ifs").Units; len(u) != 3 {
		t.Fatalf("plan units %+v", u)
	}
	plan := SteerPlan(tbl)
	if len(plan) != 1 || plan[0].Set != "ifs" || plan[0].Inside != "ms-1/2/0.0" || plan[0].Table != SteerTable("ifs") ||
		plan[0].Gateway != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("plan %+v", plan)
	}
	type m struct {
		unit     string
		output   bool
		src, dst string
		term     string
	}
	var got []m
	for _, x := range plan[0].Matches {
		s, d := "any", "any"
		if x.Src.IsValid() {
			s = x.Src.String()
		}
		if x.Dst.IsValid() {
			d = x.Dst.String()
		}
		got = append(got, m{x.Unit, x.Output, s, d, x.Term})
	}
	// Input units take the input rule's terms (one match per source and
	// destination pair), output units the output rule's, as written: no
	// swap in an interface-style set.
	want := []m{
		{"ge-0/0/0.0", false, "10.0.1.0/24", "10.0.2.0/24", "t1"},
		{"ge-0/0/0.0", false, "10.0.1.0/24", "10.0.3.0/24", "t1"},
		{"ge-0/0/0.0", true, "any", "10.0.9.0/24", "t2"},
		{"ge-0/0/1.0", false, "10.0.1.0/24", "10.0.2.0/24", "t1"},
		{"ge-0/0/1.0", false, "10.0.1.0/24", "10.0.3.0/24", "t1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("matches\n%v\nwant\n%v", got, want)
	}
	// The set's output term matches the packet leaving the interface as
	// it is.
	if term := tbl.Set("ifs").Lookup(netip.MustParseAddr("10.5.0.1"), netip.MustParseAddr("10.0.9.1")); term == nil || term.Name != "t2" {
		t.Errorf("lookup of a packet leaving towards 10.0.9.1: %v", term)
	}
}

func TestUnitDeviceNames(t *testing.T) {
	for unit, want := range map[string][]string{
		"ge-0/0/1.0":   {"ge-0-0-1", "ge-0-0-1u0", "ge-0-0-1.0"},
		"ge-0/0/1":     {"ge-0-0-1", "ge-0-0-1u0", "ge-0-0-1.0"},
		"ge-0/0/1.5":   {"ge-0-0-1u5", "ge-0-0-1.5"},
		"xe-10/0/11.7": {"xe-10-0-11u7", "xe-10-0-11.7"},
	} {
		if got := UnitDeviceNames(unit); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", unit, got, want)
		}
	}
}
