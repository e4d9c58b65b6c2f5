package server

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/plan"
	"github.com/sitesec/sitesec/services/plan/plantest"
)

// prefixOf is the prefix a selector's address range is (kmd builds them
// from prefixes).
func prefixOf(s message.Selector) string {
	for bits := 0; bits <= s.Start.BitLen(); bits++ {
		p := netip.PrefixFrom(s.Start, bits).Masked()
		if p.Addr() == s.Start && lastAddr(p) == s.End {
			return p.String()
		}
	}
	return s.Start.String() + "-" + s.End.String()
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// view is kmd's view of its peers: what it negotiates (no data-plane
// options: fwdd owns them).
func view(peers []*Peer) []plantest.View {
	var out []plantest.View
	for _, p := range peers {
		v := plantest.View{Key: p.Key, Index: p.TunnelIndex, Local: p.Local, Remote: p.Remote}
		lts, rts := p.IKE.LocalTS, p.IKE.RemoteTS
		if p.V1 != nil {
			lts, rts = []message.Selector{p.V1.LocalTS}, []message.Selector{p.V1.RemoteTS}
		}
		for _, s := range lts {
			v.LocalPrefixes = append(v.LocalPrefixes, prefixOf(s))
		}
		for _, s := range rts {
			v.RemotePrefixes = append(v.RemotePrefixes, prefixOf(s))
		}
		out = append(out, v)
	}
	plantest.Sort(out)
	return out
}

// planView is the plan's view of the tunnels kmd negotiates: IKE terms
// and dynamic endpoints, an empty side being any IPv4 address.
func planView(p *pb.Plan) []plantest.View {
	noIKE := map[string]bool{}
	for _, s := range p.GetSets() {
		for _, t := range s.GetTunnels() {
			if t.GetIke() == nil {
				noIKE[t.GetKey()] = true
			}
		}
	}
	var out []plantest.View
	for _, v := range plantest.Views(p, false, false) {
		if noIKE[v.Key] {
			continue
		}
		if len(v.LocalPrefixes) == 0 {
			v.LocalPrefixes = []string{"0.0.0.0/0"}
		}
		if len(v.RemotePrefixes) == 0 {
			v.RemotePrefixes = []string{"0.0.0.0/0"}
		}
		out = append(out, v)
	}
	return out
}

// TestPlanContract: for every corpus and generated configuration, kmd's
// peers are the plan's tunnels (keys, indexes, gateways, selectors);
// fwdd's spd TestPlanContract checks its SPD against the same plan, so
// kmd and fwdd run the same tunnels.
func TestPlanContract(t *testing.T) {
	plantest.Contract(t, "../../services/plan/testdata/corpus", 300, func(c plantest.Named, p *pb.Plan) (want, got []plantest.View) {
		peers, err := Peers(c.Config)
		want = planView(p)
		if err != nil {
			// kmd refuses what it cannot run (3des-cbc over IKEv2 in a
			// published example): what it runs is still the plan's.
			t.Logf("%s: kmd refuses %v", c.Name, err)
			have := map[string]bool{}
			for _, p := range peers {
				have[p.Key] = true
			}
			var runs []plantest.View
			for _, v := range want {
				if have[v.Key] {
					runs = append(runs, v)
				}
			}
			want = runs
		}
		return want, view(peers)
	})
}

// The disagreements with fwdd the plan removed (issue 11), seen from kmd.
func TestPlanFixes(t *testing.T) {
	c := config("192.0.2.1", "198.51.100.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24")
	// local-gateway interface: kmd failed with `local gateway "" is not
	// an address`.
	c.Interfaces = []*pb.Interface{{Name: "ge-0/0/0", Units: []*pb.Unit{{Number: 0, InetAddresses: []string{"192.0.2.77/24"}}}}}
	c.ServiceSets[0].IpsecVpnOptions.LocalGateway = &pb.LocalGateway{Interface: "ge-0/0/0.0"}
	// A manual term before the dynamic one: the tunnel index counts it
	// (configuration order over every tunnel, the number fwdd shows).
	r := c.IpsecVpn.Rules[0]
	r.Terms = append([]*pb.Term{{Name: "m", Then: &pb.TermThen{RemoteGateway: "198.51.100.2", Sa: &pb.TermThen_Manual{Manual: &pb.ManualSA{}}}}}, r.Terms...)
	peers, err := Peers(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 1 || peers[0].Local.String() != "192.0.2.77" || peers[0].TunnelIndex != 2 {
		t.Fatalf("%+v", peers[0])
	}
	// initiate-dead-peer-detection without a dead-peer-detection block:
	// the defaults (kmd dereferenced the missing block).
	r.Terms[1].Then.InitiateDeadPeerDetection = true
	r.Terms[1].Then.DeadPeerDetection = nil
	if peers, err = Peers(c); err != nil || peers[0].IKE.DPDInterval.Seconds() != 10 || peers[0].IKE.DPDThreshold != 3 {
		t.Fatalf("%v %+v", err, peers)
	}
}

// Peers runs cfgd's plan, not its own reading of the statements.
func TestPeersReadThePlan(t *testing.T) {
	c := config("192.0.2.1", "198.51.100.1", "k", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24")
	p, errs := plan.Resolve(c)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	p.Sets[0].Tunnels[0].RemoteGateway = netip.MustParseAddr("203.0.113.9").AsSlice()
	p.Sets[0].Tunnels[0].Ike.IkeLifetime = 1234
	c.Plan = p
	peers, err := Peers(c)
	if err != nil || peers[0].Remote.String() != "203.0.113.9" || peers[0].IKE.IKELifetime.Seconds() != 1234 {
		t.Fatalf("%v %+v", err, peers)
	}
	if !strings.Contains(peers[0].Key, "ss1") {
		t.Fatal(peers[0].Key)
	}
}
