package spd

import (
	"net/netip"
	"testing"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/plan"
	"github.com/sitesec/sitesec/services/plan/plantest"
)

// view is fwdd's view of a configuration's tunnels: what the SPD matches
// and the options the data plane applies (manual SAs' come from their
// terms, dynamic ones' from their term or, for dynamic endpoints, their
// set; App.fillOptions).
func view(tbl *Table) []plantest.View {
	var out []plantest.View
	for _, s := range tbl.Sets {
		for _, t := range s.Terms {
			v := plantest.View{Key: s.Name + "/" + t.Rule + "/" + t.Name, Index: t.Index, Local: s.LocalGateway}
			if t.RemoteGateway.IsValid() {
				v.Remote = t.RemoteGateway
			}
			src, dst := t.Src, t.Dst
			if t.Output {
				src, dst = dst, src
			}
			v.LocalPrefixes, v.RemotePrefixes = strs(src), strs(dst)
			v.Options = pbOptions(t.Options)
			out = append(out, v)
		}
	}
	plantest.Sort(out)
	return out
}

func strs(ps []netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func pbOptions(o Options) *pb.PlanOptions {
	return &pb.PlanOptions{ReplayWindow: o.ReplayWindow, DontFragment: o.DF, TunnelMtu: o.TunnelMTU, Ttl: o.TTL,
		CopyTtl: o.CopyTTL, Tos: o.TOS, CopyTos: o.CopyTOS, PassiveModeTunneling: o.Passive,
		HeaderIntegrityCheck: o.HeaderIntegrity, NoIpsecTunnelInTraceroute: o.NoTraceroute}
}

// TestPlanContract: for every corpus and generated configuration, the
// SPD holds the plan's tunnels (keys, indexes, gateways, selectors,
// options); kmd's test checks its peers against the same plan.
func TestPlanContract(t *testing.T) {
	plantest.Contract(t, "../../services/plan/testdata/corpus", 300, func(c plantest.Named, p *pb.Plan) (want, got []plantest.View) {
		tbl, errs := Build(c.Config)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", c.Name, errs)
		}
		for _, v := range plantest.Views(p, true, true) {
			if v.Key != "" && !isDEP(p, v.Key) {
				want = append(want, v)
			}
		}
		return want, view(tbl)
	})
}

func isDEP(p *pb.Plan, key string) bool {
	for _, s := range p.GetSets() {
		if s.GetDynamicEndpoints().GetKey() == key {
			return true
		}
	}
	return false
}

// The disagreements the plan removed (issue 11), each seen from fwdd.
func TestPlanFixes(t *testing.T) {
	c := testConfig()
	// local-gateway interface: resolved to the unit's address.
	c.Interfaces = []*pb.Interface{{Name: "ge-0/0/0", Units: []*pb.Unit{{Number: 0, InetAddresses: []string{"192.0.2.77/24"}}}}}
	c.ServiceSets[0].IpsecVpnOptions.LocalGateway = &pb.LocalGateway{Interface: "ge-0/0/0.0"}
	tbl, errs := Build(c)
	if len(errs) > 0 || tbl.Sets[0].LocalGateway.String() != "192.0.2.77" {
		t.Fatalf("%v %v", errs, tbl.Sets[0].LocalGateway)
	}
	// Tunnel indexes: configuration order from 1, the same numbers kmd
	// shows (a hash of the term's name before).
	i := uint32(0)
	for _, s := range tbl.Sets {
		for _, tm := range s.Terms {
			i++
			if tm.Index != i {
				t.Fatalf("%s/%s/%s index %d, want %d", s.Name, tm.Rule, tm.Name, tm.Index, i)
			}
		}
	}
	sas, _ := tbl.ManualSAs()
	if len(sas) == 0 || sas[0].GetTunnelIndex() != tbl.Sets[0].Terms[0].Index {
		t.Fatalf("manual SA index %d", sas[0].GetTunnelIndex())
	}
}

// Build runs cfgd's plan, not its own reading of the statements.
func TestBuildReadsThePlan(t *testing.T) {
	c := testConfig()
	p, errs := plan.Resolve(c)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	p.Sets[0].LocalGateway = netip.MustParseAddr("203.0.113.9").AsSlice()
	p.Sets[0].Tunnels[0].Options.TunnelMtu = 1234
	c.Plan = p
	tbl, errs := Build(c)
	if len(errs) > 0 || tbl.Sets[0].LocalGateway.String() != "203.0.113.9" || tbl.Sets[0].Terms[0].Options.TunnelMTU != 1234 {
		t.Fatalf("%v %v %v", errs, tbl.Sets[0].LocalGateway, tbl.Sets[0].Terms[0].Options)
	}
}
