package plane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sitesec/sitesec/fwdd/packet"
	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/fwdd/spd"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/daemon"
	"github.com/sitesec/sitesec/services/trace"
	"google.golang.org/protobuf/proto"
)

// StateDir is where fwdd keeps its sequence marks, under the root.
const StateDir = "var/db/fwdd"

// App is fwdd as a daemon: services/daemon runs it.
type App struct {
	d    *daemon.Daemon
	p    *Plane
	wire *LinuxWire

	mu  sync.Mutex // serializes Apply and the inside interfaces
	cfg *pb.Config

	cancel     context.CancelFunc
	wg         sync.WaitGroup
	configured chan struct{} // closed by the first Apply
	once       sync.Once

	gw     sync.Mutex // guards listen, gwUp, static and opened
	listen map[netip.AddrPort]Kind
	// opened is closed (and replaced) each time rebind has opened
	// sockets: transmit waits on it.
	opened chan struct{}
	gwUp   map[string]bool
	static []Route

	routeMu sync.Mutex // serializes route changes
	// applied is the route set the last successful sync installed
	// (under routeMu): an SA install or delete that leaves the wanted
	// routes as they are makes no netlink call (issue 15 goal 2).
	applied map[Route]bool

	// steering is the policy routing of interface-style service sets
	// (steer.go); steerRetry is set while some of it could not be
	// applied (a unit's device missing), for sweep to try again. Both
	// under mu.
	steering   Steering
	steerRetry bool
}

// NewApp returns fwdd's App.
func NewApp() *App { return &App{configured: make(chan struct{})} }

// Plane returns the data plane (after Start).
func (a *App) Plane() *Plane { return a.p }

// Start opens the SAD (with its marks), the outside sockets, registers the
// bus handlers and asks kmd for the SAs it wants installed.
func (a *App) Start(ctx context.Context, d *daemon.Daemon) error {
	a.d = d
	db, err := sad.Open(sad.Options{Dir: d.Path(StateDir)})
	if err != nil {
		return fmt.Errorf("fwdd: %w", err)
	}
	a.p = New(db)
	a.p.Punt = func(dg *pb.IKEDatagram) {
		if err := d.Bus.Publish(subject.Kmd, subject.VerbPunt, dg); err != nil {
			d.Trace.Event(trace.FlagGeneral, trace.Warning).Err(err).Msg("punt")
		}
	}
	a.p.OnDrop = func(dr Drop) {
		d.Trace.Event(trace.FlagPacket, trace.Info).Str("reason", dr.Reason).Str("service_set", dr.Set).
			Uint32("spi", dr.SPI).Str("src", dr.Src.String()).Str("dst", dr.Dst.String()).
			Str("packet", dr.Decode()).Msg("dropped")
	}
	w, err := OpenLinuxWire(a.p)
	if err != nil {
		// Without raw sockets (not root) fwdd still keeps SAs and answers
		// show commands, but forwards nothing.
		d.Trace.Lifecycle().Err(err).Msg("no outside sockets: forwarding disabled")
	} else {
		a.wire = w
		w.Error = func(err error) { d.Trace.Event(trace.FlagGeneral, trace.Warning).Err(err).Msg("outside read") }
		a.p.SetWire(w)
	}
	handlers := []struct {
		verb string
		h    func(context.Context, proto.Message) (proto.Message, error)
	}{
		{subject.VerbSAInstall, a.install},
		{subject.VerbSADelete, a.delete},
		{subject.VerbSAUpdate, a.update},
		{subject.VerbSAList, a.list},
	}
	for _, h := range handlers {
		if _, err := d.Bus.Handle(subject.Fwdd, h.verb, h.h); err != nil {
			return fmt.Errorf("fwdd: %w", err)
		}
	}
	if _, err := d.Bus.Subscribe(subject.Fwdd, subject.VerbTransmit, a.transmit); err != nil {
		return fmt.Errorf("fwdd: %w", err)
	}
	ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	a.wg.Add(4)
	go a.events(ctx)
	go a.sweep(ctx)
	go a.sync(ctx)
	go a.watchAddresses(ctx)
	return nil
}

// watchAddresses follows the machine's addresses (netlink) and tells kmd
// when a local gateway address comes or goes (SPEC section 3, gateway
// down with gw-interface: kmd stops IKE and clears the SAs or marks them
// Not Installed). A gateway that comes back gets its sockets again.
func (a *App) watchAddresses(ctx context.Context) {
	defer a.wg.Done()
	updates, err := SubscribeAddresses(ctx)
	if err != nil {
		a.d.Trace.Event(trace.FlagSocket, trace.Warning).Err(err).Msg("no address updates")
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				return
			}
			a.addressChanged(u.Addr, u.Up)
		}
	}
}

func (a *App) addressChanged(addr netip.Addr, up bool) {
	for _, s := range a.p.SPD().Sets {
		if s.LocalGateway != addr {
			continue
		}
		a.d.Trace.Event(trace.FlagSocket, trace.Notice).Str("service_set", s.Name).Str("address", addr.String()).Bool("up", up).Msg("local gateway")
		if up {
			a.rebind(false) // opens missing sockets, reports the change
			continue
		}
		a.gw.Lock()
		if a.gwUp == nil {
			a.gwUp = map[string]bool{}
		}
		a.gwUp[s.Name] = false
		a.gw.Unlock()
		ev := &pb.GatewayEvent{ServiceSet: s.Name, Address: addr.AsSlice(), Up: false}
		if err := a.d.Bus.Publish(subject.Fwdd, subject.VerbGatewayEvents, ev); err != nil {
			a.d.Trace.Event(trace.FlagGeneral, trace.Warning).Err(err).Msg("gateway event")
		}
	}
}

// install serves fwdd.sa.install. SAs in one request go in together,
// inbound before outbound.
func (a *App) install(_ context.Context, m proto.Message) (proto.Message, error) {
	req := m.(*pb.SAInstall)
	sas := orderInbound(req.GetSas())
	a.fillOptions(sas)
	if err := a.p.DB.Install(sas, req.GetReplacesSpi()); err != nil {
		return &pb.SAInstallReply{Error: err.Error()}, nil
	}
	a.reroute()
	for _, s := range sas {
		a.d.Trace.Event(trace.FlagSA, trace.Info).Uint32("spi", s.GetSpi()).Str("direction", s.GetDirection().String()).
			Str("service_set", s.GetServiceSet()).Msg("SA installed")
	}
	return &pb.SAInstallReply{}, nil
}

// reroute refreshes the reverse routes after the SAD changed.
func (a *App) reroute() {
	if err := a.syncRoutesIfChanged(); err != nil {
		a.d.Trace.Event(trace.FlagRoute, trace.Warning).Err(err).Msg("reverse routes")
	}
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
		set := tbl.Set(sa.GetServiceSet())
		if set == nil {
			continue
		}
		opts := set.Options
		for _, t := range set.Terms {
			if t.Rule == sa.GetRule() && t.Name == sa.GetTerm() {
				opts = t.Options
			}
		}
		opts.Apply(sa)
		if sa.GetInsideInterface() == "" {
			sa.InsideInterface = set.Inside
		}
	}
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

// sweep runs the SAD's timers and the NAT keepalives of SAs behind NAT.
func (a *App) sweep(ctx context.Context) {
	defer a.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var n uint32
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n++
		a.p.DB.Sweep()
		a.p.keepalives(n)
		if n%5 == 0 && a.missing() {
			a.rebind(false)
		}
		if n%5 == 0 {
			a.retrySteering()
		}
	}
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

// Prepare implements daemon.Preparer: what of a candidate configuration
// the data plane could not run (its SPD, manual SAs and the steering of
// interface-style sets) fails the commit before it is recorded.
func (a *App) Prepare(_ context.Context, _, candidate *pb.Config) error {
	tbl, errs := spd.Build(candidate)
	_, merrs := tbl.ManualSAs()
	_, serrs := SteerPlan(candidate, tbl)
	return errors.Join(append(append(errs, merrs...), serrs...)...)
}

// applySteering applies the policy routing of the interface-style sets
// (family inet service input|output service-set). A unit whose Linux
// device is not there (yet) is not a commit error: the trace says so and
// sweep tries again, as for a local gateway address that is missing.
// Called with mu held.
func (a *App) applySteering(cfg *pb.Config) {
	// Always synced, even to nothing: rules a killed fwdd left behind for
	// a set that is gone are removed.
	plan, errs := SteerPlan(cfg, a.p.SPD())
	for _, s := range plan {
		for _, m := range s.Matches {
			a.d.Trace.Event(trace.FlagRoute, trace.Info).Str("service_set", s.Set).Str("unit", m.Unit).Bool("output", m.Output).
				Str("rule", m.Rule).Str("term", m.Term).Str("src", prefixOrAny(m.Src)).Str("dst", prefixOrAny(m.Dst)).Msg("steer")
		}
	}
	if err := a.steering.Apply(plan); err != nil {
		errs = append(errs, err)
	}
	a.steerRetry = len(errs) > 0
	if err := errors.Join(errs...); err != nil {
		a.d.Trace.Event(trace.FlagRoute, trace.Warning).Err(err).Msg("interface-style steering")
	}
}

// retrySteering applies the last steering plan again while some of it is
// missing.
func (a *App) retrySteering() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.steerRetry || a.cfg == nil {
		return
	}
	a.applySteering(a.cfg)
}

func prefixOrAny(p netip.Prefix) string {
	if !p.IsValid() {
		return "any"
	}
	return p.String()
}

// Apply applies a committed configuration: the SPD and manual SAs, the
// inside TUN devices with their addresses, the static routes to them and
// the sockets on each local gateway.
func (a *App) Apply(ctx context.Context, old, cfg *pb.Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	if err := a.p.Configure(cfg); err != nil {
		errs = append(errs, err)
	}
	// The sockets first: kmd starts an immediately-established tunnel
	// when its gateway is up, and IKE then runs while the TUN devices
	// and routes are made (issue 15 goal 4).
	if a.wire != nil {
		want := map[netip.AddrPort]Kind{}
		for _, s := range a.p.SPD().Sets {
			if !s.LocalGateway.IsValid() {
				continue
			}
			want[netip.AddrPortFrom(s.LocalGateway, spd.IKEPort)] = KindIKE
			want[netip.AddrPortFrom(s.LocalGateway, spd.NATTPort)] = KindNATT
			if s.UDPEncapPort != 0 {
				want[netip.AddrPortFrom(s.LocalGateway, s.UDPEncapPort)] = KindUDPEncap
			}
		}
		// A local gateway address that is not (yet) on the machine is a
		// gateway down (SPEC section 3, gw-interface), not a bad
		// configuration: kmd hears about it and sweep keeps trying.
		a.gw.Lock()
		a.listen = want
		a.gw.Unlock()
		a.rebind(true)
	}
	errs = append(errs, a.applyInsides(cfg)...)
	a.applySteering(cfg) // after the TUN devices it routes to
	if a.missing() {
		// A gateway address on an inside device just configured.
		a.rebind(false)
	}
	a.cfg = cfg
	a.once.Do(func() { close(a.configured) })
	return errors.Join(errs...)
}

// rebind opens the sockets Apply asked for that are not open yet and
// publishes a GatewayEvent for each local gateway whose state changed (or
// every one, with all).
func (a *App) rebind(all bool) {
	if a.wire == nil {
		return
	}
	a.gw.Lock()
	defer a.gw.Unlock()
	if err := a.wire.Listen(a.listen); err != nil {
		a.d.Trace.Event(trace.FlagSocket, trace.Notice).Err(err).Msg("local gateway sockets")
	}
	if a.opened != nil {
		close(a.opened)
		a.opened = nil
	}
	for ap, k := range a.listen {
		a.d.Trace.Event(trace.FlagSocket, trace.Verbose).Str("address", ap.String()).Int("kind", int(k)).Msg("socket wanted")
	}
	a.wire.mu.Lock()
	have := map[netip.AddrPort]bool{}
	for ap := range a.wire.udp {
		have[ap] = true
	}
	a.wire.mu.Unlock()
	if a.gwUp == nil {
		a.gwUp = map[string]bool{}
	}
	for _, s := range a.p.SPD().Sets {
		if !s.LocalGateway.IsValid() {
			continue
		}
		up := have[netip.AddrPortFrom(s.LocalGateway, spd.IKEPort)]
		if was, ok := a.gwUp[s.Name]; ok && was == up && !all {
			continue
		}
		a.gwUp[s.Name] = up
		ev := &pb.GatewayEvent{ServiceSet: s.Name, Address: s.LocalGateway.AsSlice(), Up: up}
		if err := a.d.Bus.Publish(subject.Fwdd, subject.VerbGatewayEvents, ev); err != nil {
			a.d.Trace.Event(trace.FlagGeneral, trace.Warning).Err(err).Msg("gateway event")
		}
	}
}

// missing reports whether some socket Apply asked for is not open.
func (a *App) missing() bool {
	if a.wire == nil {
		return false
	}
	a.gw.Lock()
	defer a.gw.Unlock()
	a.wire.mu.Lock()
	defer a.wire.mu.Unlock()
	for ap := range a.listen {
		if a.wire.udp[ap] == nil {
			return true
		}
	}
	return false
}

// applyInsides creates and removes TUN devices, sets their addresses and
// fwdd's static routes.
func (a *App) applyInsides(cfg *pb.Config) []error {
	var errs []error
	want := map[string]bool{}
	for _, s := range a.p.SPD().Sets {
		if s.Inside != "" {
			want[s.Inside] = true
		}
	}
	have := a.p.Insides()
	for name := range have {
		if !want[name] {
			a.p.RemoveInside(name)
			a.d.Trace.Event(trace.FlagTUN, trace.Info).Str("interface", name).Msg("inside interface removed")
		}
	}
	for name := range want {
		addrs, mtu := unitConfig(cfg, name)
		if mtu == 0 {
			mtu = insideMTU(a.p.SPD().ByInside(name))
		}
		in := have[name]
		if in == nil {
			var err error
			in, err = CreateTUN(name, mtu)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			a.p.AddInside(in)
			a.d.Trace.Event(trace.FlagTUN, trace.Info).Str("interface", name).Str("linux", in.Linux).Int("mtu", mtu).Msg("inside interface created")
		}
		if err := SetMTU(in, mtu); err != nil {
			errs = append(errs, err)
		}
		if err := SetAddresses(in, addrs); err != nil {
			errs = append(errs, err)
		}
	}
	var routes []Route
	for _, r := range cfg.GetRoutingOptions().GetStaticRoutes() {
		for _, nh := range r.GetNextHops() {
			if !want[nh] {
				continue
			}
			p, err := netip.ParsePrefix(r.GetPrefix())
			if err != nil {
				errs = append(errs, fmt.Errorf("fwdd: [edit routing-options static route %s] %v", r.GetPrefix(), err))
				continue
			}
			routes = append(routes, Route{Prefix: p.Masked(), Linux: LinuxName(nh)})
		}
	}
	for _, r := range routes {
		a.d.Trace.Event(trace.FlagRoute, trace.Info).Str("prefix", r.Prefix.String()).Str("dev", r.Linux).Msg("static route")
	}
	a.gw.Lock()
	a.static = routes
	a.gw.Unlock()
	if err := a.syncRoutes(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// syncRoutes installs the static routes of the configuration and the
// reverse routes of dynamic-endpoint tunnels: for each outbound SA of a
// service set with an ike-access-profile, its remote selectors are routed
// to the set's inside interface (SPEC section 3, DEP "reverse route").
func (a *App) syncRoutes() error { return a.syncRouteSet(true) }

// syncRoutesIfChanged is syncRoutes after an SA change: it touches the
// kernel only when the wanted routes differ from those last installed
// (SetRoutes replaces every route and dumps the table, once per CHILD SA
// before: 15 % of fwdd's CPU in the setup-rate benchmark).
func (a *App) syncRoutesIfChanged() error { return a.syncRouteSet(false) }

func (a *App) syncRouteSet(force bool) error {
	a.routeMu.Lock()
	defer a.routeMu.Unlock()
	a.gw.Lock()
	routes := append([]Route(nil), a.static...)
	a.gw.Unlock()
	routes = append(routes, reverseRoutes(a.p.SPD(), a.p.DB.All())...)
	if len(a.p.Insides()) == 0 && len(routes) == 0 {
		a.applied = nil
		return nil
	}
	want := make(map[Route]bool, len(routes))
	for _, r := range routes {
		want[r] = true
	}
	if !force && a.applied != nil && maps.Equal(want, a.applied) {
		return nil
	}
	a.applied = nil
	if err := SetRoutes(routes); err != nil {
		return err
	}
	a.applied = want
	return nil
}

// reverseRoutes are the routes DEP tunnels need.
// It runs after every SA install and delete, over every SA: the service
// set's DEP test and device name are looked up once per set, and a
// selector range shared by many SAs is split into prefixes once (this
// function was 45 % of fwdd's CPU in the setup-rate benchmark).
func reverseRoutes(tbl *spd.Table, sas []*sad.SA) []Route {
	var out []Route
	seen := map[Route]bool{}
	// dev is the inside device of a DEP set, "" for other sets.
	dev := map[string]string{}
	type span struct {
		s, e netip.Addr
		dev  string
	}
	done := map[span]bool{}
	for _, sa := range sas {
		if sa.Inbound() {
			continue
		}
		name := sa.Config.GetServiceSet()
		linux, ok := dev[name]
		if !ok {
			if set := tbl.Set(name); set != nil && set.DEP && set.Inside != "" {
				linux = LinuxName(set.Inside)
			}
			dev[name] = linux
		}
		if linux == "" {
			continue
		}
		for _, ts := range sa.Config.GetRemoteSelectors() {
			s, ok1 := netip.AddrFromSlice(ts.GetStartAddress())
			e, ok2 := netip.AddrFromSlice(ts.GetEndAddress())
			if !ok1 || !ok2 {
				continue
			}
			k := span{s.Unmap(), e.Unmap(), linux}
			if done[k] {
				continue
			}
			done[k] = true
			for _, p := range sad.RangePrefixes(k.s, k.e) {
				if p.Bits() == 0 {
					continue // never a default route through one peer
				}
				r := Route{Prefix: p, Linux: linux}
				if !seen[r] {
					seen[r] = true
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// unitConfig finds the addresses and MTU of a unit such as ms-1/2/0.1.
func unitConfig(cfg *pb.Config, ifl string) ([]string, int) {
	name, unit, _ := strings.Cut(ifl, ".")
	for _, ifd := range cfg.GetInterfaces() {
		if ifd.GetName() != name {
			continue
		}
		for _, u := range ifd.GetUnits() {
			if fmt.Sprint(u.GetNumber()) != unit {
				continue
			}
			return append(append([]string(nil), u.GetInetAddresses()...), u.GetInet6Addresses()...), int(u.GetMtu())
		}
	}
	return nil, 0
}

// MaxESPOverhead bounds what encapsulation adds to an inner packet: outer
// IPv4 (20), UDP (8), ESP header (8), IV (16), padding (15), pad length and
// next header (2), ICV (up to 32), rounded up.
const MaxESPOverhead = 100

// insideMTU is the MTU of an inside TUN device whose unit sets none: the
// largest tunnel MTU of the set's terms less the ESP overhead, so that the
// kernel itself fragments, or sends ICMP fragmentation needed from a proper
// source address, before a packet reaches a tunnel it would not fit
// (SPEC section 3: the tunnel MTU, not the interface's, is what counts).
// fwdd fragments what still exceeds a smaller term tunnel MTU.
func insideMTU(set *spd.Set) int {
	mtu, over := spd.DefaultTunnelMTU, MaxESPOverhead
	if set != nil {
		mtu = int(set.Options.TunnelMTU)
		for _, t := range set.Terms {
			mtu = max(mtu, int(t.Options.TunnelMTU))
		}
		if set.LocalGateway.Is6() {
			over += packet.IPv6HeaderLen - packet.IPv4HeaderLen
		}
	}
	return max(mtu-over, 576)
}

// Op answers fwdd's operational commands.
func (a *App) Op(_ context.Context, req *pb.OpRequest) *pb.OpReply {
	return a.p.Op(req.GetWords())
}

// Stop closes the inside devices and sockets. The sequence marks are
// already on disk; routes fwdd added go with their devices.
func (a *App) Stop(ctx context.Context) error {
	if a.cancel != nil {
		a.cancel()
	}
	if a.wire != nil {
		a.wire.Close()
	}
	if a.p != nil {
		a.p.Close()
		a.p.DB.Close()
	}
	a.wg.Wait()
	return nil
}
