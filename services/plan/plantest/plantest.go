// Package plantest feeds configurations through the plan for the contract
// tests of kmd and fwdd (issue 11): the corpus cfgd keeps typed in
// services/plan/testdata/corpus (Juniper's published examples, the seed
// example, the deployment examples) and generated configurations that
// vary what the daemons used to work out each on its own (local gateway
// by interface, set- and term-level data-plane options, match direction,
// IKE versions and defaults, manual terms, dynamic endpoints).
//
// Each daemon's test turns a configuration into its own view of the
// tunnels (View) and compares it with the plan's (Views): kmd's and fwdd's
// views then agree with each other.
package plantest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/plan"
)

// Named is a configuration of the contract corpus.
type Named struct {
	Name   string
	Config *pb.Config
}

// Configs is the corpus in dir (services/plan/testdata/corpus, relative
// to the caller) followed by n generated configurations.
func Configs(dir string, n int) ([]Named, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no corpus in %s", dir)
	}
	var out []Named
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		c := &pb.Config{}
		if err := protojson.Unmarshal(b, c); err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		out = append(out, Named{filepath.Base(f), c})
	}
	for i := range n {
		out = append(out, Named{fmt.Sprintf("generated-%d", i), Generate(uint64(i))})
	}
	return out, nil
}

// Contract is the loop of kmd's and fwdd's TestPlanContract: for every
// configuration of Configs(dir, n) it resolves the plan, fails t on a
// resolution error, stores the plan in the configuration (Config.Plan)
// and asks views for the plan's tunnels as the daemon should run them
// (want) and the daemon's own view (got); the first difference fails t.
// It logs and returns how many tunnels it compared.
func Contract(t testing.TB, dir string, n int, views func(c Named, p *pb.Plan) (want, got []View)) int {
	t.Helper()
	cs, err := Configs(dir, n)
	if err != nil {
		t.Fatal(err)
	}
	tunnels := 0
	for _, c := range cs {
		p, errs := plan.Resolve(c.Config)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", c.Name, errs)
		}
		c.Config.Plan = p
		want, got := views(c, p)
		if d := Diff(want, got); d != "" {
			t.Fatalf("%s:\n%s", c.Name, d)
		}
		tunnels += len(want)
	}
	t.Logf("%d tunnels of %d configurations", tunnels, len(cs))
	return tunnels
}

// View is one tunnel as a daemon runs it. Options is nil in kmd's view:
// fwdd alone applies data-plane options.
type View struct {
	Key            string
	Index          uint32
	Local, Remote  netip.Addr
	LocalPrefixes  []string
	RemotePrefixes []string
	Options        *pb.PlanOptions
}

func (v View) String() string {
	o := "-"
	if v.Options != nil {
		o = prototextShort(v.Options)
	}
	return fmt.Sprintf("%s #%d %s->%s %v->%v %s", v.Key, v.Index, v.Local, v.Remote, v.LocalPrefixes, v.RemotePrefixes, o)
}

func prototextShort(m proto.Message) string {
	b, _ := protojson.MarshalOptions{}.Marshal(m)
	return string(b)
}

// Views is the plan's view of every IKE tunnel (manual ones too when
// manual is set), with options when options is set, sorted by key.
func Views(p *pb.Plan, manual, options bool) []View {
	var out []View
	for _, s := range p.GetSets() {
		local, _ := netip.AddrFromSlice(s.GetLocalGateway())
		for _, t := range s.GetTunnels() {
			if t.GetManual() && !manual {
				continue
			}
			remote, _ := netip.AddrFromSlice(t.GetRemoteGateway())
			v := View{Key: t.GetKey(), Index: t.GetIndex(), Local: local, Remote: remote,
				LocalPrefixes: t.GetLocalPrefixes(), RemotePrefixes: t.GetRemotePrefixes()}
			if options {
				v.Options = t.GetOptions()
			}
			out = append(out, v)
		}
		if d := s.GetDynamicEndpoints(); d != nil {
			v := View{Key: d.GetKey(), Index: d.GetIndex(), Local: local}
			for _, pp := range d.GetAllowedProxyPairs() {
				v.LocalPrefixes = append(v.LocalPrefixes, pp.GetLocal())
				v.RemotePrefixes = append(v.RemotePrefixes, pp.GetRemote())
			}
			if options {
				v.Options = s.GetOptions()
			}
			out = append(out, v)
		}
	}
	Sort(out)
	return out
}

// Sort orders views by key.
func Sort(vs []View) {
	slices.SortFunc(vs, func(a, b View) int { return strings.Compare(a.Key, b.Key) })
}

// Diff describes how two views differ; "" when they are the same.
func Diff(want, got []View) string {
	var b strings.Builder
	for i := 0; i < max(len(want), len(got)); i++ {
		var w, g string
		if i < len(want) {
			w = want[i].String()
		}
		if i < len(got) {
			g = got[i].String()
			if i < len(want) && want[i].Options != nil && got[i].Options != nil && proto.Equal(want[i].Options, got[i].Options) {
				g = strings.Replace(g, prototextShort(got[i].Options), prototextShort(want[i].Options), 1)
			}
		}
		if w != g {
			fmt.Fprintf(&b, "plan:   %s\ndaemon: %s\n", w, g)
		}
	}
	return b.String()
}

// Generate is a random configuration the plan resolves without errors.
func Generate(seed uint64) *pb.Config {
	r := rand.New(rand.NewPCG(seed, 11))
	pick := func(n int) int { return r.IntN(n) }
	u32 := func(v uint32) *uint32 { return &v }
	dfs := []pb.DFBit{pb.DFBit_DF_BIT_UNSPECIFIED, pb.DFBit_DF_BIT_CLEAR, pb.DFBit_DF_BIT_COPY, pb.DFBit_DF_BIT_SET}
	c := &pb.Config{
		IpsecVpn: &pb.IPsecVPN{
			EstablishTunnels: pb.EstablishTunnels(pick(4)),
			DisableNatt:      pick(5) == 0,
			Ike: &pb.IKE{Proposals: []*pb.IKEProposal{
				{Name: "p-default"},
				{Name: "p2", DhGroup: "group19", AuthenticationAlgorithm: "sha-384", EncryptionAlgorithm: "aes-128-cbc", LifetimeSeconds: u32(7200)},
				{Name: "p1", DhGroup: "group14", AuthenticationAlgorithm: "sha1", EncryptionAlgorithm: "aes-128-cbc"},
			}},
			Ipsec: &pb.IPsec{Proposals: []*pb.IPsecProposal{
				{Name: "e-default"},
				{Name: "e-gcm", Protocol: pb.IPsecProtocol_IPSEC_PROTOCOL_ESP, EncryptionAlgorithm: "aes-128-gcm"},
				{Name: "e1", Protocol: pb.IPsecProtocol_IPSEC_PROTOCOL_ESP, EncryptionAlgorithm: "aes-128-cbc", AuthenticationAlgorithm: "hmac-sha-256-128", LifetimeSeconds: u32(3000)},
			}},
		},
	}
	v := c.IpsecVpn
	ifd := &pb.Interface{Name: "ge-0/0/0"}
	c.Interfaces = append(c.Interfaces, ifd)
	nsets := 1 + pick(4)
	var ge1 *pb.Interface
	for i := range nsets {
		ifd.Units = append(ifd.Units, &pb.Unit{Number: uint32(i), InetAddresses: []string{fmt.Sprintf("192.0.%d.1/24", i+2)}})
		lg := &pb.LocalGateway{Address: fmt.Sprintf("192.0.%d.1", i+2)}
		if pick(2) == 0 {
			lg = &pb.LocalGateway{Interface: fmt.Sprintf("ge-0/0/0.%d", i)}
		}
		o := &pb.IPsecVPNOptions{LocalGateway: lg, DontFragment: dfs[pick(4)], NoNatTraversal: pick(4) == 0}
		if pick(3) == 0 {
			o.TunnelMtu = u32(uint32(1200 + pick(300)))
		}
		switch pick(3) {
		case 0:
			o.NoAntiReplay = true
		case 1:
			o.AntiReplayWindowSize = u32(uint32(64 * (1 + pick(8))))
		}
		if pick(4) == 0 {
			o.UdpEncapsulate = &pb.UDPEncapsulate{DestPort: uint32(pick(2) * 4566)}
		}
		ss := &pb.ServiceSet{Name: fmt.Sprintf("ss%d", i), IpsecVpnOptions: o}
		if pick(3) == 0 {
			ss.Style = &pb.ServiceSet_InterfaceService{InterfaceService: &pb.InterfaceService{ServiceInterface: fmt.Sprintf("ms-1/2/0.%d", 100+i)}}
		} else {
			ss.Style = &pb.ServiceSet_NextHopService{NextHopService: &pb.NextHopService{InsideServiceInterface: fmt.Sprintf("ms-1/2/0.%d", 2*i+1), OutsideServiceInterface: fmt.Sprintf("ms-1/2/0.%d", 2*i+2)}}
		}
		c.ServiceSets = append(c.ServiceSets, ss)
		// The inside interface as configured, a static route to it, and
		// for an interface-style set the units applying it (no random
		// draw: the other choices stay those of the seed).
		inside := ss.GetNextHopService().GetInsideServiceInterface() + ss.GetInterfaceService().GetServiceInterface()
		if ms, unit, ok := strings.Cut(inside, "."); ok && i%2 == 1 {
			n, _ := strconv.Atoi(unit)
			c.Interfaces = append(c.Interfaces, &pb.Interface{Name: ms, Units: []*pb.Unit{{Number: uint32(n),
				InetAddresses: []string{fmt.Sprintf("10.250.%d.1/30", i)}, Mtu: u32(uint32(1400 + i))}}})
		}
		sr := &pb.StaticRoute{Prefix: fmt.Sprintf("10.200.%d.0/24", i), NextHops: []string{inside}}
		if c.RoutingOptions == nil {
			c.RoutingOptions = &pb.RoutingOptions{}
		}
		c.RoutingOptions.StaticRoutes = append(c.RoutingOptions.StaticRoutes, sr)
		if ss.GetInterfaceService() != nil {
			if ge1 == nil {
				ge1 = &pb.Interface{Name: "ge-0/0/1"}
				c.Interfaces = append(c.Interfaces, ge1)
			}
			u := &pb.Unit{Number: uint32(i), InetAddresses: []string{fmt.Sprintf("10.%d.255.1/24", i)}, ServiceInput: []string{ss.Name}}
			if i%2 == 0 {
				u.ServiceOutput = []string{ss.Name}
			}
			ge1.Units = append(ge1.Units, u)
		}
		ipol := &pb.IKEPolicy{Name: fmt.Sprintf("ike%d", i), Version: uint32(pick(3)), PreSharedKey: &pb.Key{Value: []byte("key")}}
		switch pick(3) {
		case 0:
			ipol.Proposals = []string{"p1"}
		case 1:
			ipol.Proposals = []string{"p-default", "p1"}
		}
		if ipol.Version == 2 && pick(2) == 0 {
			ipol.Proposals = []string{"p2"}
		}
		if pick(3) == 0 {
			ipol.LocalId = &pb.IKEIdentity{Kind: &pb.IKEIdentity_Fqdn{Fqdn: fmt.Sprintf("gw%d.example.net", i)}}
			ipol.RemoteId = &pb.RemoteIdentity{Fqdn: []string{"peer.example.net"}}
		}
		v.Ike.Policies = append(v.Ike.Policies, ipol)
		epol := &pb.IPsecPolicy{Name: fmt.Sprintf("esp%d", i)}
		switch pick(4) {
		case 0:
			epol.Proposals = []string{"e1"}
			epol.PerfectForwardSecrecyKeys = "group14"
		case 1:
			epol.Proposals = []string{"e-default"}
		case 2:
			if ipol.Version == 2 {
				epol.Proposals = []string{"e-gcm", "e1"}
			}
		}
		v.Ipsec.Policies = append(v.Ipsec.Policies, epol)
		if pick(4) == 0 {
			ap := fmt.Sprintf("ap%d", i)
			o.IkeAccessProfile = ap
			ci := &pb.AccessClientIKE{PreSharedKey: &pb.Key{Value: []byte("k")}, InitiateDeadPeerDetection: pick(2) == 0}
			if pick(2) == 0 {
				ci.AllowedProxyPairs = []*pb.ProxyPair{{Local: fmt.Sprintf("10.%d.0.0/16", i), Remote: "172.16.0.0/12"}}
			}
			c.AccessProfiles = append(c.AccessProfiles, &pb.AccessProfile{Name: ap, ClientIke: ci})
			if pick(2) == 0 {
				continue // dynamic endpoints alone
			}
		}
		rule := &pb.Rule{Name: fmt.Sprintf("r%d", i), MatchDirection: pb.MatchDirection(1 + pick(2))}
		for j := range 1 + pick(3) {
			tm := &pb.Term{Name: fmt.Sprintf("t%d", j), From: &pb.TermFrom{}, Then: &pb.TermThen{}}
			if pick(3) != 0 {
				tm.From.SourceAddress = []string{fmt.Sprintf("10.%d.%d.1/24", i, j)}
			}
			if ipol.Version == 2 && pick(3) != 0 || ipol.Version != 2 {
				tm.From.DestinationAddress = []string{fmt.Sprintf("172.16.%d.0/24", 10*i+j)}
				if ipol.Version != 2 && len(tm.From.SourceAddress) == 0 {
					tm.From.SourceAddress = []string{fmt.Sprintf("10.%d.%d.0/24", i, j)}
				}
			}
			th := tm.Then
			switch pick(6) {
			case 0:
				th.RemoteGateway = "0.0.0.0"
			case 1:
				// no remote gateway: a dynamic peer
			default:
				th.RemoteGateway = fmt.Sprintf("198.51.100.%d", 10*i+j+1)
			}
			th.DontFragment = dfs[pick(4)]
			if pick(3) == 0 {
				th.TunnelMtu = u32(uint32(1300 + pick(100)))
			}
			switch pick(4) {
			case 0:
				th.NoAntiReplay = true
			case 1:
				th.AntiReplayWindowSize = u32(256)
			}
			th.CopyTtlFromInnerIpHeader = pick(3) == 0
			if pick(3) == 0 {
				th.Ttl = u32(uint32(10 + pick(200)))
			}
			th.CopyTosFromInnerIpHeader = pick(3) == 0
			if pick(3) == 0 {
				th.Tos = u32(uint32(pick(255)))
			}
			if th.RemoteGateway != "" && th.RemoteGateway != "0.0.0.0" && pick(5) == 0 {
				th.InitiateDeadPeerDetection = true
				th.DeadPeerDetection = &pb.DeadPeerDetection{Interval: u32(20)}
			}
			if th.RemoteGateway != "" && th.RemoteGateway != "0.0.0.0" && pick(6) == 0 {
				th.Sa = &pb.TermThen_Manual{Manual: &pb.ManualSA{Directions: []*pb.ManualSADirection{{
					Direction: pb.ManualDirection_MANUAL_DIRECTION_BIDIRECTIONAL, Protocol: pb.IPsecProtocol_IPSEC_PROTOCOL_ESP,
					Spi: uint32(1000 + 10*i + j), AuthenticationAlgorithm: "hmac-sha1-96", AuthenticationKey: &pb.Key{Value: make([]byte, 20)},
					EncryptionAlgorithm: "aes-128-cbc", EncryptionKey: &pb.Key{Value: make([]byte, 16)},
				}}}}
			} else {
				th.Sa = &pb.TermThen_Dynamic{Dynamic: &pb.DynamicSA{IkePolicy: ipol.Name, IpsecPolicy: epol.Name}}
			}
			rule.Terms = append(rule.Terms, tm)
		}
		v.Rules = append(v.Rules, rule)
		ss.IpsecVpnRules = []string{rule.Name}
	}
	if _, errs := plan.Resolve(c); len(errs) > 0 {
		panic(fmt.Sprintf("plantest: generated configuration %d does not resolve: %v", seed, errs))
	}
	return c
}
