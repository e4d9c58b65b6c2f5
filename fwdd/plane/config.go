package plane

import (
	"errors"
	"fmt"

	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/fwdd/spd"
	"github.com/sitesec/sitesec/proto/pb"
	"google.golang.org/protobuf/proto"
)

// Configure applies the data-plane part of a committed configuration: the
// SPD, and the manual SAs, which fwdd installs itself (kmd ignores manual
// terms). Manual SAs that disappeared or changed are deleted; unchanged
// ones keep running (and keep their sequence numbers). Inside interfaces
// and sockets are the App's (app.go). All problems are returned together.
func (p *Plane) Configure(c *pb.Config) error {
	tbl, errs := spd.Build(c)
	p.SetSPD(tbl)
	want, merrs := tbl.ManualSAs()
	errs = append(errs, merrs...)
	// Keep what is installed and identical; replace the rest.
	have := map[string]*sad.SA{}
	for _, sa := range p.DB.All() {
		if sa.Config.GetType() == pb.SAType_SA_TYPE_MANUAL {
			have[manualKey(sa.Config)] = sa
		}
	}
	var install []*pb.SA
	keep := map[string]bool{}
	for _, m := range want {
		k := manualKey(m)
		if old := have[k]; old != nil && sameManual(old.Config, m) {
			keep[k] = true
			continue
		}
		install = append(install, m)
	}
	var del []*pb.SAKey
	for k, sa := range have {
		if !keep[k] {
			del = append(del, &pb.SAKey{Spi: sa.Config.GetSpi(), Direction: sa.Config.GetDirection(), Destination: destination(sa)})
		}
	}
	if len(del) > 0 {
		p.DB.Delete(sad.Filter{Keys: del, Type: pb.SAType_SA_TYPE_MANUAL}, "configuration changed")
	}
	// Inbound first, then outbound (make-before-break).
	p.refreshOptions(tbl)
	var in, out []*pb.SA
	for _, m := range install {
		if m.GetDirection() == pb.Direction_DIRECTION_INBOUND {
			in = append(in, m)
		} else {
			out = append(out, m)
		}
	}
	for _, group := range [][]*pb.SA{in, out} {
		for _, m := range group {
			if err := p.DB.Install([]*pb.SA{m}, 0); err != nil {
				errs = append(errs, fmt.Errorf("manual SA %d of rule %s term %s: %w", m.GetSpi(), m.GetRule(), m.GetTerm(), err))
			}
		}
	}
	return errors.Join(errs...)
}

func manualKey(s *pb.SA) string {
	return fmt.Sprintf("%d/%d/%x", s.GetSpi(), s.GetDirection(), s.GetRemote().GetAddress())
}

// sameManual reports whether an installed manual SA is the configured
// one, data-plane options aside: App.refreshOptions changes those in
// place, so a new tunnel-mtu or DF bit keeps the SA (its sequence
// numbers and replay window). The anti-replay window size is the SA's.
func sameManual(a, b *pb.SA) bool {
	x := proto.Clone(a).(*pb.SA)
	y := proto.Clone(b).(*pb.SA)
	x.CreatedAt = nil
	for _, s := range []*pb.SA{x, y} {
		w := s.ReplayWindow
		spd.Options{}.Apply(s)
		s.ReplayWindow = w
	}
	return proto.Equal(x, y)
}

func destination(sa *sad.SA) []byte {
	if sa.Inbound() {
		return sa.Local.AsSlice()
	}
	return sa.Peer().Addr.Addr().AsSlice()
}

// refreshOptions gives every installed SA the data-plane options of the
// plan just configured: a commit that changes a tunnel's DF bit, tunnel
// MTU, TTL or TOS, passive mode, header-integrity-check or
// no-ipsec-tunnel-in-traceroute changes its SAs at once, without a rekey
// (dynamic and manual alike); the SAs of other tunnels are not touched
// (issue 11). The anti-replay window stays the SA's own until its next
// rekey. Returns the number of SAs changed.
func (p *Plane) refreshOptions(tbl *spd.Table) int {
	n := 0
	for _, sa := range p.DB.All() {
		opts, set := optionsFor(tbl, sa.Config)
		if set == nil {
			continue // kmd deletes the SAs of a set that is gone
		}
		x := &pb.SA{Direction: sa.Config.GetDirection()}
		opts.Apply(x)
		if sa.SetOptions(sad.OptionsOf(x)) {
			n++
			if f := p.OnOptions; f != nil {
				f(sa)
			}
		}
	}
	return n
}
