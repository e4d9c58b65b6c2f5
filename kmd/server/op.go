package server

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/sitesec/sitesec/kmd/ikesa"
	"github.com/sitesec/sitesec/kmd/ikev1"
	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/proto/pb"
)

// Op answers the IKE operational commands (SPEC section 4):
//
//	show services ipsec-vpn ike security-associations [brief|detail] [PEER]
//	show services ipsec-vpn ike statistics [PEER]
//	clear services ipsec-vpn ike statistics [PEER]
//	clear services ipsec-vpn ike security-associations [PEER] [service-set S]
//	clear services ipsec-vpn ipsec security-associations [S] [remote-gateway A]
func (s *Server) Op(ctx context.Context, req *pb.OpRequest) *pb.OpReply {
	w := req.GetWords()
	i := slices.Index(w, "ipsec-vpn")
	if len(w) < 2 || i < 0 || i+2 >= len(w) {
		return &pb.OpReply{Error: "kmd: unknown command: " + strings.Join(w, " ")}
	}
	verb, what, obj, args := w[0], w[i+1], w[i+2], w[i+3:]
	switch {
	case verb == "show" && what == "ike" && obj == "security-associations":
		return s.showSAs(args)
	case verb == "show" && what == "ike" && obj == "statistics":
		return s.showStats(args)
	case verb == "clear" && what == "ike" && obj == "statistics":
		return s.clearStats(args)
	case verb == "clear" && what == "ike" && obj == "security-associations":
		return s.clearIKE(args)
	case verb == "clear" && what == "ipsec" && obj == "security-associations":
		return s.clearIPsec(args)
	}
	return &pb.OpReply{Error: "kmd: unknown command: " + strings.Join(w, " ")}
}

// filter is the optional arguments of the IKE commands.
type filter struct {
	detail     bool
	peer       netip.Addr
	serviceSet string
	ri         string
}

func parseFilter(args []string) (filter, error) {
	var f filter
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "brief":
		case "detail":
			f.detail = true
		case "service-set", "routing-instance", "remote-gateway":
			if i+1 >= len(args) {
				return f, fmt.Errorf("%s needs a value", a)
			}
			i++
			switch a {
			case "service-set":
				f.serviceSet = args[i]
			case "routing-instance":
				f.ri = args[i]
			default:
				p, err := netip.ParseAddr(args[i])
				if err != nil {
					return f, fmt.Errorf("%q is not an address", args[i])
				}
				f.peer = p
			}
		default:
			p, err := netip.ParseAddr(a)
			if err != nil {
				if !strings.Contains(a, ".") && !strings.Contains(a, ":") {
					f.serviceSet = a
					continue
				}
				return f, fmt.Errorf("%q is not an address", a)
			}
			f.peer = p
		}
	}
	return f, nil
}

func (f filter) match(sa *ikesa.SA) bool {
	if f.peer.IsValid() && sa.Remote.Addr() != f.peer {
		return false
	}
	return f.serviceSet == "" || sa.Config.ServiceSet == f.serviceSet
}

// snapshot renders every matching SA on its own goroutine.
func (s *Server) snapshot(f filter) []*pb.IKESecurityAssociation {
	var mu sync.Mutex
	var out []*pb.IKESecurityAssociation
	s.each(func(sa *ikesa.SA) {
		if sa.State == ikesa.StateDead || !f.match(sa) {
			return
		}
		x := s.render(sa)
		mu.Lock()
		out = append(out, x)
		mu.Unlock()
	})
	out = append(out, s.v1Snapshot(f)...)
	sort.Slice(out, func(i, j int) bool { return out[i].InitiatorCookie < out[j].InitiatorCookie })
	for i, x := range out {
		x.Index = uint32(i + 1)
	}
	return out
}

func (s *Server) render(sa *ikesa.SA) *pb.IKESecurityAssociation {
	role := "Responder"
	if sa.Initiator {
		role = "Initiator"
	}
	x := &pb.IKESecurityAssociation{
		RemoteAddress:   sa.Remote.Addr().String(),
		State:           sa.State.String(),
		InitiatorCookie: fmt.Sprintf("%016x", sa.SPIi),
		ResponderCookie: fmt.Sprintf("%016x", sa.SPIr),
		ExchangeType:    "IKEv2",
		Role:            role,
		LocalAddress:    sa.Local.Addr().String(),
		LocalPort:       uint32(sa.Local.Port()),
		RemotePort:      uint32(sa.Remote.Port()),
		BytesIn:         sa.Stats.BytesIn, BytesOut: sa.Stats.BytesOut,
		PacketsIn: sa.Stats.PacketsIn, PacketsOut: sa.Stats.PacketsOut,
		InvalidSpis:     sa.Stats.InvalidSPI,
		IpsecSasCreated: sa.Stats.ChildCreated, IpsecSasDeleted: sa.Stats.ChildDeleted,
		Rekeys:      sa.Stats.Rekeys,
		ServiceSet:  sa.Config.ServiceSet,
		NatDetected: sa.NATLocal || sa.NATRemote,
	}
	if sa.Config.Auth != nil {
		x.AuthenticationMethod = sa.Config.Auth.Name()
	}
	if p := s.peer(sa.Config.Name); p != nil {
		x.RoutingInstance = p.RoutingInst
		if x.RoutingInstance == "" {
			x.RoutingInstance = "default"
		}
	}
	if sa.State == ikesa.StateEstablished {
		x.Flags = []string{"IKE SA created"}
		x.EncryptionAlgorithm = sa.Suite.EncryptionName()
		x.AuthenticationAlgorithm = sa.Suite.IntegrityName()
		if x.AuthenticationAlgorithm == "" {
			x.AuthenticationAlgorithm = "none"
		}
		x.DhGroup = fmt.Sprint(sa.Suite.DH)
		x.PrfAlgorithm = prfName(sa.Suite.PRF)
		if !sa.ExpireAt.IsZero() {
			x.ExpiresInSeconds = int64(sa.ExpireAt.Sub(s.Now()).Seconds())
		}
	}
	if sa.Config.LocalID != nil {
		x.LocalIdentity = idText(sa.Config.LocalID)
	}
	if sa.PeerID != nil {
		x.RemoteIdentity = idText(sa.PeerID)
	}
	for _, c := range sa.Children {
		role := "Responder"
		if c.Initiator {
			role = "Initiator"
		}
		x.Phase2 = append(x.Phase2, &pb.Phase2Negotiation{
			Type: "quick", Role: role,
			Local: sa.Local.String(), Remote: sa.Remote.String(),
			LocalIdentity: tsString(c.LocalTS), RemoteIdentity: tsString(c.RemoteTS),
			InProgress: !c.Installed(),
		})
	}
	return x
}

func prfName(id uint16) string {
	switch id {
	case 2:
		return "hmac-sha1"
	case 5:
		return "hmac-sha256"
	case 6:
		return "hmac-sha384"
	case 7:
		return "hmac-sha512"
	}
	return fmt.Sprint(id)
}

func (s *Server) showSAs(args []string) *pb.OpReply {
	f, err := parseFilter(args)
	if err != nil {
		return &pb.OpReply{Error: err.Error()}
	}
	return &pb.OpReply{Body: &pb.OpReply_IkeSecurityAssociations{IkeSecurityAssociations: &pb.IKESecurityAssociations{Sas: s.snapshot(f), Detail: f.detail}}}
}

func (s *Server) showStats(args []string) *pb.OpReply {
	f, err := parseFilter(args)
	if err != nil {
		return &pb.OpReply{Error: err.Error()}
	}
	var mu sync.Mutex
	peers := map[string]*pb.IKEStatistics_Peer{}
	// add sums one SA's counters since the last clear into its peer's.
	add := func(remote, local netip.AddrPort, c, zero map[string]uint64) {
		mu.Lock()
		defer mu.Unlock()
		key := remote.Addr().String()
		p := peers[key]
		if p == nil {
			p = &pb.IKEStatistics_Peer{RemoteAddress: key, LocalAddress: local.Addr().String(), Counters: map[string]uint64{}}
			peers[key] = p
		}
		for k, v := range c {
			p.Counters[k] += v - min(v, zero[k])
		}
	}
	s.each(func(sa *ikesa.SA) {
		if f.match(sa) {
			add(sa.Remote, sa.Local, saCounters(sa), s.cleared.v2.get(sa))
		}
	})
	// IKEv1 tunnels count per tunnel (every ISAKMP SA of one peer).
	s.v1Each(func(r *v1Runner) {
		if f.matchV1(r.t) {
			add(r.t.Remote, r.t.Local, v1Counters(r.t), s.cleared.v1.get(r.t))
		}
	})
	out := &pb.IKEStatistics{}
	for _, p := range peers {
		out.Peers = append(out.Peers, p)
	}
	sort.Slice(out.Peers, func(i, j int) bool { return out.Peers[i].RemoteAddress < out.Peers[j].RemoteAddress })
	return &pb.OpReply{Body: &pb.OpReply_IkeStatistics{IkeStatistics: out}}
}

// saCounters are the counters of one IKE SA, keyed as IKEStatistics
// sends them. Call it on the SA's runner.
func saCounters(sa *ikesa.SA) map[string]uint64 {
	st, ms := sa.Stats, sa.Manager().Stats
	return map[string]uint64{
		"delete-payloads-received": st.DeletesIn, "delete-payloads-sent": st.DeletesOut,
		"dpd-requests-sent": st.DPDSent, "dpd-responses-received": st.DPDAnswered,
		"dpd-requests-received": st.DPDReceived, "invalid-spi": st.InvalidSPI,
		"ikev2-rekeys": uint64(st.Rekeys), "ipsec-sas-created": uint64(st.ChildCreated),
		"ipsec-sas-deleted": uint64(st.ChildDeleted), "requests-sent": ms.RequestsSent,
		"responses-sent": ms.ResponsesSent, "retransmits": ms.Retransmits,
		"retransmits-answered": ms.RetransmitsAnswered, "address-changes-refused": st.AddressChangesRefused,
	}
}

// v1Counters are an IKEv1 tunnel's counters, under IKEv2's keys where
// they mean the same (DELETE payloads, DPD of RFC 3706, ESP SAs made and
// removed, retransmissions) and ikev1- keys for the rest. Call it on the
// tunnel's runner.
func v1Counters(t *ikev1.Tunnel) map[string]uint64 {
	st := t.Stats
	return map[string]uint64{
		"delete-payloads-received": st.DeletesIn, "delete-payloads-sent": st.DeletesOut,
		"dpd-requests-sent": st.DPDSent, "dpd-responses-received": st.DPDAnswered,
		"dpd-requests-received": st.DPDReceived,
		"ipsec-sas-created":     st.Phase2, "ipsec-sas-deleted": st.Phase2Deleted,
		"retransmits":            st.Retransmits,
		"ikev1-packets-received": st.InPackets, "ikev1-packets-sent": st.OutPackets,
		"ikev1-packets-dropped": st.Dropped, "ikev1-phase1-sas-established": st.Phase1,
	}
}

// clearedStats is, per IKE SA and per IKEv1 tunnel, its counters at the
// last clear: show statistics prints the counts since then, as Junos's
// clear does.
type clearedStats struct {
	v2 zeros[*ikesa.SA]
	v1 zeros[*ikev1.Tunnel]
}

// zeros are the counters at the last clear of each IKE SA (or IKEv1
// tunnel) K. An SA's entry goes when the SA does (pruned at each clear).
type zeros[K comparable] struct {
	mu sync.Mutex
	m  map[K]map[string]uint64
}

func (z *zeros[K]) get(k K) map[string]uint64 {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.m[k]
}

// clearing collects, from the runners of one IKE version at once, which
// SAs are live and the counters of those a clear matches.
type clearing[K comparable] struct {
	mu   sync.Mutex
	live map[K]bool
	now  map[K]map[string]uint64
}

// add records a live SA; c is its counters when the clear matches it, nil
// otherwise.
func (c *clearing[K]) add(k K, counters map[string]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live == nil {
		c.live, c.now = map[K]bool{}, map[K]map[string]uint64{}
	}
	c.live[k] = true
	if counters != nil {
		c.now[k] = counters
	}
}

// reset drops the zeros of SAs that are gone and takes the matched SAs'
// counters as their new zeros.
func (z *zeros[K]) reset(c *clearing[K]) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.m == nil {
		z.m = map[K]map[string]uint64{}
	}
	for k := range z.m {
		if !c.live[k] {
			delete(z.m, k)
		}
	}
	for k, v := range c.now {
		z.m[k] = v
	}
}

// clearStats is `clear services ipsec-vpn ike statistics [PEER]`: the
// matching SAs' counters start again from zero.
func (s *Server) clearStats(args []string) *pb.OpReply {
	f, err := parseFilter(args)
	if err != nil {
		return &pb.OpReply{Error: err.Error()}
	}
	var v2 clearing[*ikesa.SA]
	s.each(func(sa *ikesa.SA) {
		var c map[string]uint64
		if f.match(sa) {
			c = saCounters(sa)
		}
		v2.add(sa, c)
	})
	s.cleared.v2.reset(&v2)
	var v1 clearing[*ikev1.Tunnel]
	s.v1Each(func(r *v1Runner) {
		var c map[string]uint64
		if f.matchV1(r.t) {
			c = v1Counters(r.t)
		}
		v1.add(r.t, c)
	})
	s.cleared.v1.reset(&v1)
	return &pb.OpReply{}
}

func (s *Server) clearIKE(args []string) *pb.OpReply {
	f, err := parseFilter(args)
	if err != nil {
		return &pb.OpReply{Error: err.Error()}
	}
	s.each(func(sa *ikesa.SA) {
		if f.match(sa) {
			sa.Delete()
		}
	})
	s.v1Clear(f, false)
	return &pb.OpReply{}
}

// clearIPsec deletes the dynamic CHILD SAs; tunnels established
// immediately come back by themselves (their IKE SA creates new ones on
// the next acquire or at once).
func (s *Server) clearIPsec(args []string) *pb.OpReply {
	f, err := parseFilter(args)
	if err != nil {
		return &pb.OpReply{Error: err.Error()}
	}
	s.each(func(sa *ikesa.SA) {
		if !f.match(sa) {
			return
		}
		for _, c := range append([]*ikesa.ChildSA(nil), sa.Children...) {
			sa.DeleteChild(c)
		}
	})
	s.v1Clear(f, true)
	return &pb.OpReply{}
}

// tsString renders selectors as Junos identities:
// ipv4_subnet(any:0,[0..7]=10.1.12.0/24), or a range when not a prefix.
func tsString(ts []message.Selector) string {
	var parts []string
	for _, t := range ts {
		kind := "ipv4"
		if t.Start.Is6() {
			kind = "ipv6"
		}
		what := t.Start.String() + "-" + t.End.String()
		for bits := 0; bits <= t.Start.BitLen(); bits++ {
			p := netip.PrefixFrom(t.Start, bits).Masked()
			if p.Addr() == t.Start && ikesa.PrefixSelector(p).End == t.End {
				what = p.String()
				break
			}
		}
		parts = append(parts, fmt.Sprintf("%s_subnet(any:%d,[0..7]=%s)", kind, t.Protocol, what))
	}
	return strings.Join(parts, " ")
}
