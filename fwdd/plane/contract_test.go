package plane

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/sitesec/sitesec/fwdd/spd"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/plan"
	"github.com/sitesec/sitesec/services/plan/plantest"
)

// TestPlanContractLinks: for the plan corpus and generated configurations,
// what fwdd opens and installs outside the SPD (spd's TestPlanContract
// covers the tunnels) is the plan's: the UDP sockets on the local
// gateways, the inside devices' addresses and MTU, the static routes to
// them and the interface-style steering. The configuration's own
// statements are taken out after the plan is resolved, so a daemon that
// still read them would see nothing (issue 11 item 1: fwdd interprets no
// configuration statement).
func TestPlanContractLinks(t *testing.T) {
	cs, err := plantest.Configs("../../services/plan/testdata/corpus", 300)
	if err != nil {
		t.Fatal(err)
	}
	var nsock, nunit, nroute int
	for _, c := range cs {
		p, errs := plan.Resolve(c.Config)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", c.Name, errs)
		}
		c.Config.Plan = p
		c.Config.Interfaces, c.Config.RoutingOptions, c.Config.ServiceSets = nil, nil, nil
		tbl, errs := spd.Build(c.Config)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", c.Name, errs)
		}
		wantSock := map[netip.AddrPort]Kind{}
		kinds := map[string]Kind{"ike": KindIKE, "nat-t": KindNATT, "udp-encapsulate": KindUDPEncap}
		var wantRoutes []Route
		wantUnits := map[string][]string{}
		for _, s := range p.GetSets() {
			for _, so := range s.GetSockets() {
				a, _ := netip.AddrFromSlice(so.GetAddress())
				wantSock[netip.AddrPortFrom(a, uint16(so.GetPort()))] = kinds[so.GetKind()]
			}
			for _, r := range s.GetInsideRoutes() {
				wantRoutes = append(wantRoutes, Route{Prefix: netip.MustParsePrefix(r), Linux: LinuxName(s.GetInsideInterface())})
			}
			for _, u := range s.GetServiceUnits() {
				wantUnits[s.GetName()] = append(wantUnits[s.GetName()], fmt.Sprintf("%s %v", u.GetUnit(), u.GetOutput()))
			}
			set := tbl.Set(s.GetName())
			if !slices.Equal(set.InsideAddresses, s.GetInsideAddresses()) || set.InsideMTU != int(s.GetInsideMtu()) {
				t.Fatalf("%s: set %s inside %v mtu %d, plan %v %d", c.Name, s.GetName(), set.InsideAddresses, set.InsideMTU,
					s.GetInsideAddresses(), s.GetInsideMtu())
			}
		}
		if got := Sockets(tbl); !reflect.DeepEqual(got, wantSock) {
			t.Fatalf("%s: sockets %v, plan %v", c.Name, got, wantSock)
		}
		if got := StaticRoutes(tbl); !slices.Equal(got, wantRoutes) {
			t.Fatalf("%s: routes %v, plan %v", c.Name, got, wantRoutes)
		}
		gotUnits := map[string][]string{}
		for _, st := range SteerPlan(tbl) {
			for _, m := range st.Matches {
				u := fmt.Sprintf("%s %v", m.Unit, m.Output)
				if !slices.Contains(gotUnits[st.Set], u) {
					gotUnits[st.Set] = append(gotUnits[st.Set], u)
				}
			}
		}
		// A unit steers when the set has a rule of its direction.
		for set, us := range wantUnits {
			var keep []string
			for _, u := range us {
				for _, tm := range tbl.Set(set).Terms {
					if u == fmt.Sprintf("%s %v", unitOf(u), tm.Direction == pb.MatchDirection_MATCH_DIRECTION_OUTPUT) && !slices.Contains(keep, u) {
						keep = append(keep, u)
					}
				}
			}
			if len(keep) == 0 {
				delete(wantUnits, set)
				continue
			}
			wantUnits[set] = keep
		}
		if !reflect.DeepEqual(gotUnits, wantUnits) {
			t.Fatalf("%s: steering units %v, plan %v", c.Name, gotUnits, wantUnits)
		}
		nsock += len(wantSock)
		nroute += len(wantRoutes)
		for _, us := range wantUnits {
			nunit += len(us)
		}
	}
	if nsock == 0 || nroute == 0 || nunit == 0 {
		t.Fatalf("the corpus exercises nothing: %d sockets, %d routes, %d steered units", nsock, nroute, nunit)
	}
	t.Logf("%d configurations: %d sockets, %d static routes, %d steered units", len(cs), nsock, nroute, nunit)
}

// unitOf is the unit of a "unit output" view string.
func unitOf(v string) string {
	for i := len(v) - 1; i >= 0; i-- {
		if v[i] == ' ' {
			return v[:i]
		}
	}
	return v
}
