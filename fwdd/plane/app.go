// fwdd's App: what services/daemon calls (Start, Apply, Prepare, Op,
// Stop) and the one-second sweep. The package comment (plane.go) says
// which file holds the rest of the glue, and the lock order.

package plane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

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
	a.p.OnOptions = func(sa *sad.SA) {
		a.d.Trace.Event(trace.FlagSA, trace.Info).Uint32("spi", sa.Config.GetSpi()).Str("service_set", sa.Config.GetServiceSet()).
			Str("rule", sa.Config.GetRule()).Str("term", sa.Config.GetTerm()).Msg("SA options changed by the configuration")
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

// Prepare implements daemon.Preparer: what of a candidate configuration
// the data plane could not run (its SPD, manual SAs and the steering of
// interface-style sets) fails the commit before it is recorded.
func (a *App) Prepare(_ context.Context, _, candidate *pb.Config) error {
	tbl, errs := spd.Build(candidate)
	_, merrs := tbl.ManualSAs()
	return errors.Join(append(errs, merrs...)...)
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
		want := Sockets(a.p.SPD())
		// A local gateway address that is not (yet) on the machine is a
		// gateway down (SPEC section 3, gw-interface), not a bad
		// configuration: kmd hears about it and sweep keeps trying.
		a.gw.Lock()
		a.listen = want
		a.gw.Unlock()
		a.rebind(true)
	}
	errs = append(errs, a.applyInsides()...)
	a.applySteering() // after the TUN devices it routes to
	if a.missing() {
		// A gateway address on an inside device just configured.
		a.rebind(false)
	}
	a.cfg = cfg
	a.once.Do(func() { close(a.configured) })
	return errors.Join(errs...)
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
