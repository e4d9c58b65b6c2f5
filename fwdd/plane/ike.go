// IKE datagrams kmd asks fwdd to send, and NAT keepalives (RFC 3948).

package plane

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/sitesec/sitesec/fwdd/spd"
	"github.com/sitesec/sitesec/proto/pb"
)

// Transmit sends an IKE datagram kmd asked for.
func (p *Plane) Transmit(dg *pb.IKEDatagram) error {
	w := p.outside()
	if w == nil {
		return fmt.Errorf("fwdd: no outside sockets: %w", ErrNoSocket)
	}
	la, ok1 := netip.AddrFromSlice(dg.GetLocal().GetAddress())
	ra, ok2 := netip.AddrFromSlice(dg.GetRemote().GetAddress())
	if !ok1 || !ok2 {
		return errors.New("fwdd: transmit without addresses")
	}
	lp := uint16(dg.GetLocal().GetPort())
	if lp == 0 {
		lp = spd.IKEPort
	}
	local := netip.AddrPortFrom(la.Unmap(), lp)
	remote := netip.AddrPortFrom(ra.Unmap(), uint16(dg.GetRemote().GetPort()))
	payload := dg.GetPayload()
	switch {
	case dg.GetNatKeepalive():
		payload = []byte{NATKeepalive}
		local = netip.AddrPortFrom(local.Addr(), spd.NATTPort)
	case lp == spd.NATTPort:
		payload = append(make([]byte, 4, 4+len(payload)), payload...)
	}
	return w.SendUDP(local, remote, payload)
}

// keepalives sends RFC 3948 section 2.3 keepalives every nat_keepalive
// seconds on outbound NAT-T SAs.
func (p *Plane) keepalives(tick uint32) {
	w := p.outside()
	if w == nil {
		return
	}
	for _, sa := range p.DB.All() {
		iv := sa.Config.GetNatKeepalive()
		peer := sa.Peer()
		if sa.Inbound() || iv == 0 || peer.Encap != pb.Encapsulation_ENCAPSULATION_UDP_NATT || tick%iv != 0 {
			continue
		}
		_ = w.SendUDP(netip.AddrPortFrom(sa.Local, spd.NATTPort), peer.Addr, []byte{NATKeepalive})
	}
}
