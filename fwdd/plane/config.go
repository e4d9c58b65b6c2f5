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

func sameManual(a, b *pb.SA) bool {
	x := proto.Clone(a).(*pb.SA)
	x.CreatedAt = nil
	return proto.Equal(x, b)
}

func destination(sa *sad.SA) []byte {
	if sa.Inbound() {
		return sa.Local.AsSlice()
	}
	return sa.Peer().Addr.Addr().AsSlice()
}
