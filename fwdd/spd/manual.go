package spd

import (
	"fmt"
	"net/netip"

	"github.com/sitesec/sitesec/proto/pb"
	"google.golang.org/protobuf/proto"
)

// ManualSAs returns the SAs of every `then manual` term, ready for the SAD.
// fwdd applies manual SAs itself, from the configuration, with no IKE at
// all: kmd ignores manual terms. With udp-encapsulate the SAs use the
// configured destination port; otherwise raw ESP.
func (t *Table) ManualSAs() ([]*pb.SA, []error) {
	var out []*pb.SA
	var errs []error
	for _, s := range t.Sets {
		for _, term := range s.Terms {
			if term.Manual == nil {
				continue
			}
			path := "services ipsec-vpn rule " + term.Rule + " term " + term.Name + " then manual"
			if !s.LocalGateway.IsValid() || !term.RemoteGateway.IsValid() || term.RemoteGateway.IsUnspecified() {
				errs = append(errs, &Error{Path: path, Msg: "a manual SA needs a local gateway and a remote gateway"})
				continue
			}
			for _, d := range term.Manual.GetDirections() {
				sas, err := manualSA(s, term, d)
				if err != nil {
					errs = append(errs, &Error{Path: path + " direction " + dirName(d.GetDirection()), Msg: err.Error()})
					continue
				}
				out = append(out, sas...)
			}
		}
	}
	return out, errs
}

func dirName(d pb.ManualDirection) string {
	switch d {
	case pb.ManualDirection_MANUAL_DIRECTION_INBOUND:
		return "inbound"
	case pb.ManualDirection_MANUAL_DIRECTION_OUTBOUND:
		return "outbound"
	case pb.ManualDirection_MANUAL_DIRECTION_BIDIRECTIONAL:
		return "bidirectional"
	}
	return "?"
}

func manualSA(s *Set, term *Term, d *pb.ManualSADirection) ([]*pb.SA, error) {
	proto := d.GetProtocol()
	isAH := proto == pb.IPsecProtocol_IPSEC_PROTOCOL_AH || proto == pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE
	if isAH && s.UDPEncapPort != 0 {
		return nil, fmt.Errorf("protocol %s cannot be used with udp-encapsulate: AH authenticates the outer IP header and has no UDP encapsulation (RFC 3948 is ESP only)", map[pb.IPsecProtocol]string{2: "ah", 3: "bundle"}[proto])
	}
	auth := d.GetAuthenticationAlgorithm()
	if auth == "hmac-sha2-256" {
		auth = "hmac-sha-256-128"
	}
	base := &pb.SA{
		Spi:                     d.GetSpi(),
		Type:                    pb.SAType_SA_TYPE_MANUAL,
		ServiceSet:              s.Name,
		Rule:                    term.Rule,
		Term:                    term.Name,
		TunnelIndex:             term.Index,
		Local:                   &pb.Endpoint{Address: s.LocalGateway.AsSlice()},
		Remote:                  &pb.Endpoint{Address: term.RemoteGateway.AsSlice()},
		Encapsulation:           pb.Encapsulation_ENCAPSULATION_ESP,
		EncryptionAlgorithm:     d.GetEncryptionAlgorithm(),
		AuthenticationAlgorithm: auth,
		EncryptionKey:           d.GetEncryptionKey().GetValue(),
		AuthenticationKey:       d.GetAuthenticationKey().GetValue(),
		InsideInterface:         s.Inside,
		InitialSequence:         1,
		Protocol:                proto,
	}
	switch proto {
	case pb.IPsecProtocol_IPSEC_PROTOCOL_AH:
		base.EncryptionAlgorithm, base.EncryptionKey = "", nil
	case pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE:
		// Junos: spi and authentication are AH's, auxiliary-spi and
		// encryption ESP's.
		base.AuxiliarySpi = d.GetAuxiliarySpi()
	}
	if s.UDPEncapPort != 0 {
		base.Encapsulation = pb.Encapsulation_ENCAPSULATION_UDP_MULTIPATH
		base.Local.Port = uint32(s.UDPEncapPort)
		base.Remote.Port = uint32(s.UDPEncapPort)
	}
	src, dst := term.Src, term.Dst
	if term.Output {
		src, dst = dst, src
	}
	base.LocalIdentity, base.RemoteIdentity = identity(src), identity(dst)
	if !s.NextHop {
		// Interface style: the SA carries what its term matches. A
		// next-hop SA carries whatever is routed to the inside interface.
		base.LocalSelectors = selectors(src)
		base.RemoteSelectors = selectors(dst)
	}
	var dirs []pb.Direction
	switch d.GetDirection() {
	case pb.ManualDirection_MANUAL_DIRECTION_INBOUND:
		dirs = []pb.Direction{pb.Direction_DIRECTION_INBOUND}
	case pb.ManualDirection_MANUAL_DIRECTION_OUTBOUND:
		dirs = []pb.Direction{pb.Direction_DIRECTION_OUTBOUND}
	default:
		dirs = []pb.Direction{pb.Direction_DIRECTION_INBOUND, pb.Direction_DIRECTION_OUTBOUND}
	}
	var out []*pb.SA
	for _, dir := range dirs {
		sa := cloneSA(base)
		sa.Direction = dir
		term.Options.Apply(sa)
		out = append(out, sa)
	}
	return out, nil
}

func cloneSA(s *pb.SA) *pb.SA { return proto.Clone(s).(*pb.SA) }

// identity renders a selector as Junos shows a proxy identity.
func identity(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "ipv4_subnet(any:0,[0..7]=0.0.0.0/0)"
	}
	return fmt.Sprintf("ipv4_subnet(any:0,[0..7]=%s)", ps[0])
}

func selectors(ps []netip.Prefix) []*pb.TrafficSelector {
	var out []*pb.TrafficSelector
	for _, p := range ps {
		out = append(out, &pb.TrafficSelector{StartAddress: p.Addr().AsSlice(), EndAddress: last(p).AsSlice()})
	}
	return out
}

func last(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
