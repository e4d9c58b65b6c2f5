package plane

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/proto/pb"
)

// Op answers the operational commands fwdd owns (SPEC section 4):
//
//	show services ipsec-vpn ipsec security-associations [brief|detail|extensive] [service-set S] [hex]
//	show services ipsec-vpn ipsec statistics [brief|detail] [remote-gw A] [service-set S]
//	clear services ipsec-vpn ipsec statistics [remote-gateway A] [service-set S]
//	show services ipsec-vpn interfaces
//	show services service-sets summary [interface I]
//
// The reply carries the structured body only: the cli renders it as
// Junos-style text (cfgd/cli/show_ipsec.go) or as JSON.
func (p *Plane) Op(words []string) *pb.OpReply {
	line := strings.Join(words, " ")
	switch {
	case strings.HasPrefix(line, "show services ipsec-vpn ipsec security-associations"):
		args, err := parseArgs(words[5:], []string{"brief", "detail", "extensive", "hex"}, []string{"service-set"})
		if err != nil {
			return &pb.OpReply{Error: err.Error()}
		}
		body := p.SecurityAssociations(level(args, "brief"), args["hex"] != "", args["service-set"])
		return &pb.OpReply{Body: &pb.OpReply_IpsecSecurityAssociations{IpsecSecurityAssociations: body}}
	case strings.HasPrefix(line, "show services ipsec-vpn ipsec statistics"):
		args, err := parseArgs(words[5:], []string{"brief", "detail"}, []string{"remote-gw", "service-set"})
		if err != nil {
			return &pb.OpReply{Error: err.Error()}
		}
		body := p.Statistics(args["detail"] != "", args["service-set"], args["remote-gw"])
		return &pb.OpReply{Body: &pb.OpReply_IpsecStatistics{IpsecStatistics: body}}
	case strings.HasPrefix(line, "clear services ipsec-vpn ipsec statistics"):
		args, err := parseArgs(words[5:], nil, []string{"remote-gateway", "service-set"})
		if err != nil {
			return &pb.OpReply{Error: err.Error()}
		}
		p.DB.ClearStatistics(args["service-set"])
		return &pb.OpReply{}
	case strings.HasPrefix(line, "show services service-sets summary"):
		args, err := parseArgs(words[4:], nil, []string{"interface"})
		if err != nil {
			return &pb.OpReply{Error: err.Error()}
		}
		return &pb.OpReply{Body: &pb.OpReply_ServiceSetSummary{ServiceSetSummary: p.ServiceSetSummary(args["interface"])}}
	case line == "show services ipsec-vpn interfaces":
		body := p.InterfaceMap()
		return &pb.OpReply{Body: &pb.OpReply_InterfaceMap{InterfaceMap: body}}
	}
	return &pb.OpReply{Error: fmt.Sprintf("fwdd: unknown command %q", line)}
}

func level(args map[string]string, def string) string {
	for _, l := range []string{"extensive", "detail", "brief"} {
		if args[l] != "" {
			return l
		}
	}
	return def
}

// parseArgs reads keyword flags and "keyword value" pairs.
func parseArgs(words, flags, valued []string) (map[string]string, error) {
	out := map[string]string{}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case contains(flags, w):
			out[w] = w
		case contains(valued, w):
			if i+1 >= len(words) {
				return nil, fmt.Errorf("syntax error, expecting <%s>", w)
			}
			out[w] = words[i+1]
			i++
		default:
			return nil, fmt.Errorf("syntax error at '%s'", w)
		}
	}
	return out, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

type tunnelKey struct {
	set, rule, term string
	index           uint32
	remote          netip.Addr
}

// SecurityAssociations builds the reply of show ... security-associations.
func (p *Plane) SecurityAssociations(lvl string, hex bool, onlySet string) *pb.IPsecSecurityAssociations {
	out := &pb.IPsecSecurityAssociations{Level: lvl, Hex: hex}
	tunnels := map[tunnelKey]*pb.IPsecTunnel{}
	sets := map[string]*pb.ServiceSetSAs{}
	now := p.Now()
	for _, sa := range p.DB.All() {
		c := sa.Config
		if onlySet != "" && c.GetServiceSet() != onlySet {
			continue
		}
		peer := sa.Peer()
		k := tunnelKey{c.GetServiceSet(), c.GetRule(), c.GetTerm(), c.GetTunnelIndex(), peer.Addr.Addr()}
		t := tunnels[k]
		if t == nil {
			ss := sets[k.set]
			if ss == nil {
				ss = &pb.ServiceSetSAs{ServiceSet: k.set, RoutingInstance: "default"}
				if s := p.SPD().Set(k.set); s != nil && s.RoutingInstance != "" {
					ss.RoutingInstance = s.RoutingInstance
				}
				sets[k.set] = ss
				out.ServiceSets = append(out.ServiceSets, ss)
			}
			t = &pb.IPsecTunnel{Rule: k.rule, Term: k.term, TunnelIndex: k.index,
				LocalGateway: sa.Local.String(), RemoteGateway: peer.Addr.Addr().String(),
				LocalIdentity: c.GetLocalIdentity(), RemoteIdentity: c.GetRemoteIdentity(),
				InsideInterface: c.GetInsideInterface(), TunnelMtu: sa.Options().TunnelMTU,
				NattKeepalive: c.GetNatKeepalive(), PrimaryGateway: peer.Addr.Addr().String(), PrimaryState: "Up"}
			ss.Tunnels = append(ss.Tunnels, t)
			tunnels[k] = t
		}
		switch peer.Encap {
		case pb.Encapsulation_ENCAPSULATION_UDP_NATT:
			t.NattDetected = true
			t.UdpDestPort = uint32(peer.Addr.Port())
		case pb.Encapsulation_ENCAPSULATION_UDP_MULTIPATH:
			t.UdpEncapsulate = true
			t.UdpDestPort = uint32(peer.Addr.Port())
		}
		info := &pb.IPsecSAInfo{Spi: c.GetSpi(), Mode: "tunnel", Protocol: "ESP", State: "installed",
			Authentication: c.GetAuthenticationAlgorithm(), Encryption: c.GetEncryptionAlgorithm(),
			CopyTos: sa.Options().CopyTOS, Tos: sa.Options().TOS, CopyTtl: sa.Options().CopyTTL, Ttl: sa.Options().TTL, Sequence: sa.Sequence()}
		switch c.GetProtocol() {
		case pb.IPsecProtocol_IPSEC_PROTOCOL_AH:
			info.Protocol, info.Encryption = "AH", "none"
		case pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE:
			// Junos: Protocol BUNDLE, SPI the AH SA's, AUX-SPI ESP's.
			info.Protocol, info.AuxSpi = "BUNDLE", c.GetAuxiliarySpi()
		}
		if info.Authentication == "" {
			info.Authentication = "none"
		}
		info.Direction = "outbound"
		if sa.Inbound() {
			info.Direction = "inbound"
			info.AntiReplay = c.GetReplayWindow() != 0
			info.ReplayWindow = c.GetReplayWindow()
		}
		info.Type = "dynamic"
		if c.GetType() == pb.SAType_SA_TYPE_MANUAL {
			info.Type = "manual"
		}
		if sa.NotInstalled() {
			info.State = "Not Installed"
		}
		if lt := c.GetLifetime(); lt != nil {
			age := now.Sub(sa.Installed)
			if soft := lt.SoftSeconds; soft != 0 || lt.RekeySeconds != 0 {
				if soft == 0 {
					soft = lt.RekeySeconds // kmd's own rekey timer
				}
				info.SoftLifetimeSeconds = int64((time.Duration(soft)*time.Second - age) / time.Second)
			}
			if lt.HardSeconds != 0 {
				info.HardLifetimeSeconds = int64((time.Duration(lt.HardSeconds)*time.Second - age) / time.Second)
			}
		}
		t.Sas = append(t.Sas, info)
	}
	sort.Slice(out.ServiceSets, func(i, j int) bool { return out.ServiceSets[i].ServiceSet < out.ServiceSets[j].ServiceSet })
	for _, ss := range out.ServiceSets {
		sort.Slice(ss.Tunnels, func(i, j int) bool { return ss.Tunnels[i].TunnelIndex < ss.Tunnels[j].TunnelIndex })
		for _, t := range ss.Tunnels {
			sort.Slice(t.Sas, func(i, j int) bool {
				if t.Sas[i].Direction != t.Sas[j].Direction {
					return t.Sas[i].Direction == "inbound"
				}
				return t.Sas[i].Spi < t.Sas[j].Spi
			})
		}
	}
	return out
}

// Statistics builds the reply of show ... statistics: per service set
// (brief) or per tunnel (detail).
func (p *Plane) Statistics(detail bool, onlySet, remote string) *pb.IPsecStatistics {
	out := &pb.IPsecStatistics{Detail: detail}
	var names []string
	for _, s := range p.SPD().Sets {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	for _, name := range names {
		if onlySet != "" && name != onlySet {
			continue
		}
		s := p.SPD().Set(name)
		pic := ""
		if s != nil {
			pic = strings.SplitN(s.Inside, ".", 2)[0]
		}
		if !detail {
			out.Blocks = append(out.Blocks, &pb.IPsecStatistics_Block{Pic: pic, ServiceSet: name, Counters: p.DB.ServiceSetTotals(name).Proto()})
			continue
		}
		per := map[tunnelKey]*sad.Counters{}
		var keys []tunnelKey
		for _, sa := range p.DB.All() {
			c := sa.Config
			if c.GetServiceSet() != name {
				continue
			}
			k := tunnelKey{name, c.GetRule(), c.GetTerm(), c.GetTunnelIndex(), sa.Peer().Addr.Addr()}
			if remote != "" && k.remote.String() != remote {
				continue
			}
			if per[k] == nil {
				per[k] = new(sad.Counters)
				keys = append(keys, k)
			}
			sa.Counters.AddTo(per[k])
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].index < keys[j].index })
		for _, k := range keys {
			b := &pb.IPsecStatistics_Block{Pic: pic, ServiceSet: name, RemoteGateway: k.remote.String(), TunnelIndex: k.index, Counters: per[k].Proto()}
			if s != nil {
				b.LocalGateway = s.LocalGateway.String()
			}
			out.Blocks = append(out.Blocks, b)
		}
	}
	return out
}

// InterfaceMap builds the reply of show services ipsec-vpn interfaces.
func (p *Plane) InterfaceMap() *pb.InterfaceMap {
	out := &pb.InterfaceMap{}
	for _, in := range p.Insides() {
		e := &pb.InterfaceMap_Entry{JunosName: in.Junos, LinuxName: in.Linux, Addresses: in.Addrs(), Mtu: uint32(in.MTU), Up: true}
		for _, s := range p.SPD().Sets {
			if s.Inside == in.Junos {
				e.ServiceSet = s.Name
			}
		}
		out.Entries = append(out.Entries, e)
	}
	sort.Slice(out.Entries, func(i, j int) bool { return out.Entries[i].JunosName < out.Entries[j].JunosName })
	return out
}
