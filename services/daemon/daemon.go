// Package daemon is the shared lifecycle of the four sitesec daemons: flags,
// the root directory, the bus connection, the trace file, health heartbeats,
// the status reply for `show system processes`, the committed
// configuration, and a graceful stop.
//
// A daemon's main is one line:
//
//	func main() { daemon.Main("fwdd", plane.NewApp()) }
//
// and its logic is an App. The runtime calls App.Start once the bus is
// connected, App.Apply with each committed configuration that differs from
// the running one (in revision order, never concurrently), and App.Stop on
// SIGTERM or SIGINT.
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/bus"
	"github.com/sitesec/sitesec/services/trace"
)

// App is a daemon's own logic.
type App interface {
	// Start is called once the bus is connected, before any
	// configuration. Register bus handlers here.
	Start(ctx context.Context, d *Daemon) error
	// Apply is called with each committed configuration that differs from
	// the running one; old is nil the first time. An error is reported to
	// cfgd in the ApplyAck and the daemon keeps running with whatever part
	// it could apply.
	Apply(ctx context.Context, old, new *pb.Config) error
	// Stop is called once on SIGTERM or SIGINT, with a deadline.
	Stop(ctx context.Context) error
}

// Preparer is implemented by an App that can tell, before a commit is
// recorded, what of a candidate configuration it could not run (cfgd's
// prepare round: `commit check` and `commit` fail with its errors and
// nothing is applied). Prepare must not change the running state.
type Preparer interface {
	Prepare(ctx context.Context, running, candidate *pb.Config) error
}

// Operator is implemented by an App that answers operational commands on
// <root>.<router>.<daemon>.op.
type Operator interface {
	Op(ctx context.Context, req *pb.OpRequest) *pb.OpReply
}

// Daemon is what the runtime hands an App.
type Daemon struct {
	Name  string
	Root  string
	Space subject.Space
	Bus   *bus.Conn
	Trace *trace.Tracer

	instance string
	started  time.Time
	revision atomic.Uint64
	// applyErr holds the last apply error ("" when it succeeded).
	applyErr atomic.Value
	state    atomic.Int32

	mu      sync.Mutex
	running *pb.Config
}

// Path joins elem under the daemon's root.
func (d *Daemon) Path(elem ...string) string {
	return filepath.Join(append([]string{d.Root}, elem...)...)
}

// Revision is the configuration revision the daemon runs.
func (d *Daemon) Revision() uint64 { return d.revision.Load() }

// Running returns the configuration the daemon last applied (nil before
// the first).
func (d *Daemon) Running() *pb.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running
}

// Flags returns the trace flags a daemon accepts.
func Flags(name string) []trace.Flag {
	switch name {
	case subject.Pkid:
		return trace.PKIDFlags
	case subject.Kmd:
		return trace.KMDFlags
	}
	return trace.ProcessFlags
}

// Traceoptions picks the daemon's traceoptions out of a configuration:
// kmd reads [edit services ipsec-vpn traceoptions], pkid [edit security
// pki traceoptions], the others [edit system processes NAME traceoptions].
func Traceoptions(name string, c *pb.Config) *pb.Traceoptions {
	switch name {
	case subject.Kmd:
		return c.GetIpsecVpn().GetTraceoptions()
	case subject.Pkid:
		return c.GetPki().GetTraceoptions()
	}
	for _, p := range c.GetSystem().GetProcesses() {
		if p.GetName() == name {
			return p.GetTraceoptions()
		}
	}
	return nil
}

// Main runs a daemon and exits the process. It never returns.
//
// $<NAME>_CPUPROFILE=FILE (FWDD_CPUPROFILE, KMD_CPUPROFILE, …) writes a CPU
// profile of the whole run to FILE ("%d" in it becomes the process id),
// ended when the daemon stops; for the benchmarks of tests/bench.
func Main(name string, app App) {
	if err := noCoreDumps(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: disabling core dumps: %v\n", name, err)
		os.Exit(1)
	}
	stopProfile, err := startProfile(name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	err = Run(context.Background(), name, app, os.Args[1:])
	stopProfile()
	if err != nil {
		if errors.Is(err, errHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
	os.Exit(0)
}

// heartbeat is how often Health is published.
const heartbeat = 2 * time.Second

// Run is Main without the exit, for tests: it returns when ctx ends or a
// signal arrives, after the App stopped.
func Run(ctx context.Context, name string, app App, args []string) error {
	o, err := parseFlags(name, args)
	if err != nil {
		return err
	}
	if err := makeRoot(o.root); err != nil {
		return err
	}
	space, err := subject.New(o.busRoot, o.router)
	if err != nil {
		return usageError{err}
	}
	tr, err := trace.New(o.root, name, Flags(name))
	if err != nil {
		return err
	}
	defer tr.Close()

	d := &Daemon{Name: name, Root: o.root, Space: space, Trace: tr, instance: newInstance(), started: time.Now()}
	d.state.Store(int32(pb.DaemonState_DAEMON_STATE_STARTING))
	d.applyErr.Store("")
	tr.Lifecycle().Int("pid", os.Getpid()).Str("bus", o.display()).Str("router", space.Router).Msg("starting")

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	conn, err := connect(ctx, space, name, o)
	if err != nil {
		tr.Lifecycle().Err(err).Msg("exiting")
		return err
	}
	d.Bus = conn
	defer conn.Close()

	if err := app.Start(ctx, d); err != nil {
		tr.Lifecycle().Err(err).Msg("exiting")
		return fmt.Errorf("start: %w", err)
	}
	if err := d.serve(app); err != nil {
		return err
	}
	d.state.Store(int32(pb.DaemonState_DAEMON_STATE_RUNNING))
	d.publishHealth()

	watchCtx, cancelWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		d.heartbeats(watchCtx)
	}()
	go func() {
		defer wg.Done()
		err := conn.WatchConfig(watchCtx, func(s *pb.ConfigSnapshot) { d.apply(watchCtx, app, s) })
		if err != nil && watchCtx.Err() == nil {
			tr.Event(trace.FlagGeneral, trace.Error).Err(err).Msg("configuration watch ended")
		}
	}()
	tr.Lifecycle().Msg("running")

	<-ctx.Done()
	cancelWatch()
	wg.Wait()
	d.state.Store(int32(pb.DaemonState_DAEMON_STATE_STOPPING))
	d.publishHealth()
	heapProfile(name)
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := app.Stop(stopCtx); err != nil {
		tr.Lifecycle().Err(err).Msg("stop")
	}
	d.state.Store(int32(pb.DaemonState_DAEMON_STATE_STOPPED))
	d.publishHealth()
	// Bounded: with the bus gone, a plain Flush would wait 10 s.
	_ = conn.NC.FlushTimeout(500 * time.Millisecond)
	tr.Lifecycle().Msg("stopped")
	return nil
}

// serve registers the status and op handlers.
func (d *Daemon) serve(app App) error {
	if _, err := d.Bus.Handle(d.Name, subject.VerbStatus, func(context.Context, proto.Message) (proto.Message, error) {
		return d.Status(), nil
	}); err != nil {
		return fmt.Errorf("serve status: %w", err)
	}
	if _, ok := subject.Find(d.Name, subject.VerbPrepare); ok {
		if _, err := d.Bus.Handle(d.Name, subject.VerbPrepare, func(ctx context.Context, m proto.Message) (proto.Message, error) {
			return d.prepare(ctx, app, m.(*pb.ConfigSnapshot)), nil
		}); err != nil {
			return fmt.Errorf("serve prepare: %w", err)
		}
	}
	if op, ok := app.(Operator); ok {
		if _, err := d.Bus.Handle(d.Name, subject.VerbOp, func(ctx context.Context, m proto.Message) (proto.Message, error) {
			return op.Op(ctx, m.(*pb.OpRequest)), nil
		}); err != nil {
			return fmt.Errorf("serve op: %w", err)
		}
	}
	return nil
}

// apply runs one committed configuration through the App and reports the
// result to cfgd.
func (d *Daemon) apply(ctx context.Context, app App, s *pb.ConfigSnapshot) {
	rev := s.GetRevision()
	if rev <= d.revision.Load() {
		return
	}
	next := s.GetConfig()
	if next == nil {
		next = &pb.Config{}
	}
	old := d.Running()
	ack := &pb.ApplyAck{Daemon: d.Name, Revision: rev, Ok: true}
	if err := d.Trace.Configure(Traceoptions(d.Name, next)); err != nil {
		ack.Warnings = append(ack.Warnings, "traceoptions: "+err.Error())
	}
	if old == nil || !proto.Equal(old, next) {
		if err := safeApply(ctx, app, old, next); err != nil {
			ack.Ok = false
			ack.Errors = append(ack.Errors, err.Error())
		}
	}
	d.mu.Lock()
	d.running = next
	d.mu.Unlock()
	d.revision.Store(rev)
	if ack.Ok {
		d.applyErr.Store("")
		d.Trace.Lifecycle().Uint64("revision", rev).Msg("configuration applied")
	} else {
		d.applyErr.Store(ack.Errors[0])
		d.Trace.Event(trace.FlagGeneral, trace.Error).Uint64("revision", rev).Strs("errors", ack.Errors).Msg("configuration not applied")
	}
	if err := d.Bus.Publish(subject.Cfgd, subject.VerbAck, ack); err != nil {
		d.Trace.Event(trace.FlagGeneral, trace.Warning).Err(err).Msg("publish ack")
	}
	d.publishHealth()
}

// prepare answers cfgd's prepare round for a candidate configuration.
func (d *Daemon) prepare(ctx context.Context, app App, s *pb.ConfigSnapshot) *pb.ApplyAck {
	ack := &pb.ApplyAck{Daemon: d.Name, Revision: s.GetRevision(), Ok: true}
	p, ok := app.(Preparer)
	if !ok {
		return ack
	}
	next := s.GetConfig()
	if next == nil {
		next = &pb.Config{}
	}
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("internal error preparing configuration: %v", r)
			}
		}()
		return p.Prepare(ctx, d.Running(), next)
	}()
	if err != nil {
		ack.Ok = false
		ack.Errors = splitErrors(err)
	}
	return ack
}

// splitErrors returns the messages of an errors.Join, one per error.
func splitErrors(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// safeApply turns a panic in App.Apply into an error: a bad configuration
// must never take the daemon down.
func safeApply(ctx context.Context, app App, old, next *pb.Config) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error applying configuration: %v", r)
		}
	}()
	return app.Apply(ctx, old, next)
}

func (d *Daemon) heartbeats(ctx context.Context) {
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.publishHealth()
		}
	}
}

func (d *Daemon) health() *pb.Health {
	return &pb.Health{
		Daemon:         d.Name,
		Pid:            int32(os.Getpid()),
		Instance:       d.instance,
		State:          pb.DaemonState(d.state.Load()),
		StartedAt:      timestamppb.New(d.started),
		SentAt:         timestamppb.Now(),
		ConfigRevision: d.revision.Load(),
		ConfigError:    d.applyErr.Load().(string),
		BusReconnects:  d.Bus.Reconnects(),
	}
}

func (d *Daemon) publishHealth() {
	if err := d.Bus.Publish(d.Name, subject.VerbHealth, d.health()); err != nil {
		d.Trace.Event(trace.FlagGeneral, trace.Verbose).Err(err).Msg("publish health")
	}
}

// Status is the daemon's own row of `show system processes`.
func (d *Daemon) Status() *pb.ProcessStatus {
	bs := "connected"
	if !d.Bus.Connected() {
		bs = "reconnecting"
	}
	sup := os.Getenv("SITESEC_SUPERVISOR")
	if sup == "" {
		sup = "external"
	}
	return &pb.ProcessStatus{
		Name:           d.Name,
		Pid:            int32(os.Getpid()),
		State:          pb.DaemonState(d.state.Load()),
		StartedAt:      timestamppb.New(d.started),
		UptimeSeconds:  uint64(time.Since(d.started).Seconds()),
		ConfigRevision: d.revision.Load(),
		BusStatus:      bs,
		Supervisor:     sup,
		LastHeartbeat:  timestamppb.Now(),
	}
}

func newInstance() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// makeRoot creates the directories every daemon uses under root and
// checks that they are writable.
func makeRoot(root string) error {
	for _, dir := range []string{"var/log", "var/db", "var/run"} {
		p := filepath.Join(root, dir)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("cannot use root %s: %v", root, unwrapPath(err))
		}
		f, err := os.CreateTemp(p, ".probe-*")
		if err != nil {
			return fmt.Errorf("cannot use root %s: %s is not writable: %v", root, p, unwrapPath(err))
		}
		f.Close()
		os.Remove(f.Name())
	}
	return nil
}

// unwrapPath drops the path from a *PathError, which the caller already
// names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Idle is an App with no logic of its own: the daemon joins the bus,
// traces, reports health and acknowledges configurations.
type Idle struct{}

func (Idle) Start(context.Context, *Daemon) error                { return nil }
func (Idle) Apply(context.Context, *pb.Config, *pb.Config) error { return nil }
func (Idle) Stop(context.Context) error                          { return nil }
