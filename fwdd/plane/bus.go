// fwdd's App on the bus: the fwdd.sa.* handlers (install, delete, list,
// update), fwdd.transmit, the SA events it publishes and the SA sync it
// asks kmd for.

package plane

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/fwdd/spd"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/trace"
	"google.golang.org/protobuf/proto"
)

// install serves fwdd.sa.install. SAs in one request go in together,
// inbound before outbound.
func (a *App) install(_ context.Context, m proto.Message) (proto.Message, error) {
	req := m.(*pb.SAInstall)
	sas := orderInbound(req.GetSas())
	a.fillOptions(sas)
	// The request is this handler's own (decoded for it): the SAD keeps
	// it, read only, and so does the trace below.
	if err := a.p.DB.InstallOwned(sas, req.GetReplacesSpi()); err != nil {
		return &pb.SAInstallReply{Error: err.Error()}, nil
	}
	a.reroute()
	for _, s := range sas {
		a.d.Trace.Event(trace.FlagSA, trace.Info).Uint32("spi", s.GetSpi()).Str("direction", s.GetDirection().String()).
			Str("service_set", s.GetServiceSet()).Msg("SA installed")
	}
	return &pb.SAInstallReply{}, nil
}

func orderInbound(sas []*pb.SA) []*pb.SA {
	out := append([]*pb.SA(nil), sas...)
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].GetDirection() == pb.Direction_DIRECTION_INBOUND && out[j].GetDirection() != pb.Direction_DIRECTION_INBOUND
	})
	return out
}

// fillOptions gives the SAs kmd installs the data-plane options of their
// term, or of their set for a dynamic-endpoint tunnel, as the plan
// resolved them: fwdd is the one owner of these options (issue 11); kmd
// sends keys, selectors and lifetimes.
func (a *App) fillOptions(sas []*pb.SA) {
	tbl := a.p.SPD()
	for _, sa := range sas {
		opts, set := optionsFor(tbl, sa)
		if set == nil {
			continue
		}
		opts.Apply(sa)
		if sa.GetInsideInterface() == "" {
			sa.InsideInterface = set.Inside
		}
	}
}

// optionsFor are the plan's options for an SA: its term's, or its set's
// for a dynamic-endpoint tunnel; set is nil when the SA's set is gone.
func optionsFor(tbl *spd.Table, sa *pb.SA) (opts spd.Options, set *spd.Set) {
	set = tbl.Set(sa.GetServiceSet())
	if set == nil {
		return opts, nil
	}
	opts = set.Options
	for _, t := range set.Terms {
		if t.Rule == sa.GetRule() && t.Name == sa.GetTerm() {
			opts = t.Options
		}
	}
	return opts, set
}

func (a *App) delete(_ context.Context, m proto.Message) (proto.Message, error) {
	req := m.(*pb.SADelete)
	if len(req.GetSas()) == 0 && req.GetServiceSet() == "" && req.GetIkeSa() == "" {
		return &pb.SADeleteReply{Error: "fwdd: delete names no SA"}, nil
	}
	f := sad.Filter{Keys: req.GetSas(), ServiceSet: req.GetServiceSet(), IKESA: req.GetIkeSa()}
	if req.GetServiceSet() != "" {
		f.Type = pb.SAType_SA_TYPE_DYNAMIC // manual SAs belong to the configuration
	}
	n := a.p.DB.Delete(f, req.GetReason())
	a.reroute()
	return &pb.SADeleteReply{Deleted: uint32(n)}, nil
}

// list serves fwdd.sa.list: the dynamic SAs, for a restarted kmd (issue
// 11 item 3).
func (a *App) list(context.Context, proto.Message) (proto.Message, error) {
	return saList(a.p.DB.All()), nil
}

// saList describes dynamic SAs without their key material: their SAD key
// (destination: the local gateway inbound, the remote one outbound),
// tunnel and endpoints (the peer's current address, NAT included).
func saList(sas []*sad.SA) *pb.SAListReply {
	rep := &pb.SAListReply{}
	for _, sa := range sas {
		c := sa.Config
		if c.GetType() != pb.SAType_SA_TYPE_DYNAMIC {
			continue
		}
		dest := c.GetLocal().GetAddress()
		if c.GetDirection() == pb.Direction_DIRECTION_OUTBOUND {
			dest = c.GetRemote().GetAddress()
		}
		peer := sa.Peer().Addr
		rep.Sas = append(rep.Sas, &pb.SAListEntry{
			Key:        &pb.SAKey{Spi: c.GetSpi(), Direction: c.GetDirection(), Destination: dest},
			ServiceSet: c.GetServiceSet(), Rule: c.GetRule(), Term: c.GetTerm(), TunnelIndex: c.GetTunnelIndex(),
			Local:  &pb.Endpoint{Address: c.GetLocal().GetAddress(), Port: c.GetLocal().GetPort()},
			Remote: &pb.Endpoint{Address: peer.Addr().AsSlice(), Port: uint32(peer.Port())},
		})
	}
	return rep
}

func (a *App) update(_ context.Context, m proto.Message) (proto.Message, error) {
	if err := a.p.DB.Update(m.(*pb.SAUpdate)); err != nil {
		return &pb.SAUpdateReply{Error: err.Error()}, nil
	}
	return &pb.SAUpdateReply{}, nil
}

// transmit sends an IKE datagram (or a NAT keepalive) for kmd: from port
// 4500 with the non-ESP marker (RFC 3948 section 2.2).
//
// kmd may ask before this fwdd has opened the socket of a local gateway
// that the same commit added (establish-tunnels immediately): such a
// datagram is sent again as soon as rebind opened sockets, for at most
// TransmitWait, instead of waiting for IKE's first retransmission seconds
// later (issue 15 goal 4: a fixed 50 ms poll here was the largest wait
// between a commit and its tunnel's first packet).
func (a *App) transmit(m proto.Message) {
	dg := m.(*pb.IKEDatagram)
	opened := a.openedSignal()
	err := a.p.Transmit(dg)
	if errors.Is(err, ErrNoSocket) {
		go func() {
			if err := retry(func() error { return a.p.Transmit(dg) }, opened, a.openedSignal, TransmitWait); err != nil {
				a.d.Trace.Event(trace.FlagGeneral, trace.Warning).Err(err).Msg("transmit")
			}
		}()
		return
	}
	if err != nil {
		a.d.Trace.Event(trace.FlagGeneral, trace.Warning).Err(err).Msg("transmit")
	}
}

// TransmitWait bounds how long a datagram kmd asked for waits for its
// socket.
const TransmitWait = 2 * time.Second

// openedSignal returns a channel closed the next time rebind opens
// sockets.
func (a *App) openedSignal() <-chan struct{} {
	a.gw.Lock()
	defer a.gw.Unlock()
	if a.opened == nil {
		a.opened = make(chan struct{})
	}
	return a.opened
}

// retry calls send again each time the channel from signal (first) is
// closed, until send succeeds, fails with another error than
// ErrNoSocket, or limit has passed.
func retry(send func() error, first <-chan struct{}, signal func() <-chan struct{}, limit time.Duration) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	ch := first
	for {
		select {
		case <-ch:
		case <-t.C:
			return fmt.Errorf("no socket after %s: %w", limit, ErrNoSocket)
		}
		ch = signal()
		if err := send(); !errors.Is(err, ErrNoSocket) {
			return err
		}
	}
}

// events publishes SA events for kmd.
func (a *App) events(ctx context.Context) {
	defer a.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-a.p.DB.Events():
			a.d.Trace.Message(trace.FlagSA, trace.Info, "SA event", ev)
			if ev.GetKind() == pb.SAEventKind_SA_EVENT_KIND_DELETED {
				a.reroute()
			}
			if err := a.d.Bus.Publish(subject.Fwdd, subject.VerbSAEvents, ev); err != nil {
				a.d.Trace.Event(trace.FlagGeneral, trace.Warning).Err(err).Msg("SA event")
			}
		}
	}
}

// sync asks kmd for every SA it wants installed, with the persisted
// marks, until kmd answers once (kmd may start after fwdd).
func (a *App) sync(ctx context.Context) {
	defer a.wg.Done()
	// Ask once the first configuration is in, so that SAs find their
	// service sets (kmd may also just not be there yet).
	select {
	case <-a.configured:
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
		return
	}
	wait := time.Second
	for {
		req := &pb.SASyncRequest{Instance: a.d.Name, Marks: a.p.DB.Marks()}
		var rep pb.SASyncReply
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := a.d.Bus.Request(rctx, subject.Kmd, subject.VerbSASync, req, &rep)
		cancel()
		if err == nil {
			sas := orderInbound(rep.GetSas())
			a.fillOptions(sas)
			for _, s := range sas {
				if err := a.p.DB.Install([]*pb.SA{s}, 0); err != nil {
					a.d.Trace.Event(trace.FlagSA, trace.Warning).Err(err).Msg("sync install")
				}
			}
			a.d.Trace.Event(trace.FlagSA, trace.Info).Int("sas", len(sas)).Msg("synced with kmd")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
}
