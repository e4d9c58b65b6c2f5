// Package plane is fwdd's userspace ESP data plane: it joins the inside
// interfaces (TUN devices), the SPD, the SAD, the ESP transforms and the
// outside sockets into the forwarding pipeline, and is the daemon App
// that the bus drives.
//
// The pipeline is Plane: plane.go, send.go, receive.go, workers.go, the
// outside sockets of wire_linux.go, ike.go (IKE datagrams and NAT
// keepalives kmd asks for). The daemon glue around it is App: app.go
// (what services/daemon calls, and the timers), bus.go (the fwdd.sa.*
// handlers, fwdd.transmit, SA events, the SA sync with kmd), gateway.go
// (netlink address watch, local gateway sockets and gateway events),
// inside.go (TUN devices, their addresses and MTU), route.go (static and
// reverse routes) and steer.go (policy routing of interface-style sets).
//
// The pipeline, outbound (inside -> outside), per inside interface:
//
//  1. the reader goroutine reads a batch of packets from the TUN device
//     (offloads split by the tun package), each into its own buffer at a
//     fixed headroom;
//  2. it runs the in-order stage per packet: SPD lookup (service set by
//     interface, term by addresses), SAD lookup, inner checks, TTL, DF
//     and tunnel MTU (fragmentation before encapsulation or ICMP
//     fragmentation needed), and the sequence number, which is handed
//     out here, in order;
//  3. it hands the batch to the crypto workers, which seal its packets and
//     write their outer IPv4/IPv6 (and UDP) headers in parallel, and
//     queues it for the writer; then it reads the next batch into another
//     set of buffers (outBatches per interface);
//  4. the writer goroutine takes the batches in the order they were read,
//     waits until each is sealed and writes it to the outside (sendmmsg),
//     so the packets of one SA leave in sequence order.
//
// Inbound (outside -> inside), one goroutine per outside socket:
//
//  1. read a batch of datagrams (recvmmsg); demultiplex IKE (UDP 500, or
//     4500 with the non-ESP marker), NAT keepalives and ESP (RFC 3948);
//  2. in order: SPI lookup, ESN inference and the cheap anti-replay check;
//  3. open the batch in parallel on the crypto workers;
//  4. in order: anti-replay update (only after the ICV verified, RFC 4303
//     section 3.4.3), inner checks, traffic selector check, statistics,
//     and a batched write to each inside TUN device.
//
// Inbound batches are fork-join: the reader takes part in the crypto and
// waits for it, so its buffers are free again when Receive returns.
//
// Buffers belong to the reader that reads into them (a fixed set per
// reader, sized at start), so the number of packets in flight is bounded
// and nothing is allocated per packet.
//
// # Lock order
//
// The forwarding goroutines take no lock of the App: the SPD, the SAD's
// maps, the inside interfaces and the wire are atomic pointers. A
// goroutine holding one of these locks takes only those below it:
//
//  1. App.mu: Apply and retrySteering (the configuration, the inside
//     interfaces, the steering);
//  2. App.routeMu: one route sync at a time (Apply, and reroute after an
//     SA install, delete or event);
//  3. App.gw: the wanted sockets, gateway states, static routes and the
//     opened signal (rebind publishes gateway events holding it);
//  4. LinuxWire.mu: the open UDP sockets.
//
// Under App.mu also Plane.mu (changes to the insides; RemoveInside lets go
// of it before it waits for the reader), Inside.mu (addresses) and the
// SAD's writers (Configure installs manual SAs): sad.DB.mu, then
// sad.DB.setMu or sad.Marks.mu; sad.SA.resMu, then sad.Marks.mu. Leaves,
// never held while taking another lock: Inside.wmu, LinuxWire.smu,
// Plane.acqMu, the punt and drop limiters, replay.Window.
package plane

import (
	"errors"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/fwdd/spd"
	"github.com/sitesec/sitesec/proto/pb"
	"golang.zx2c4.com/wireguard/tun"
)

// Sizes of the pipeline.
const (
	// Headroom is where a packet read from a TUN device starts in its
	// buffer: room for the outer IPv6 (40) and UDP (8) headers, the ESP
	// header (8) and the longest IV (16), or for a bundle the outer IPv6
	// header, the longest AH header (48 with hmac-sha-512-256) and ESP
	// (24).
	Headroom = 128
	// BufferSize holds the largest tunnel MTU (9192) and the ESP trailer.
	BufferSize = Headroom + 9216 + 128
	// InBufferSize is the buffer of each datagram an outside reader
	// receives (and of each datagram cut from a coalesced one): the TUN
	// device's write coalesces the decrypted TCP segments of a batch
	// into the first one's buffer, up to its capacity, so that one write
	// carries up to 64 KiB, as the sending side's TSO read, instead of
	// the 6 full-size segments a BufferSize buffer holds. Pages a
	// reader never fills are never touched.
	InBufferSize = 1 << 16
	// MaxBatch bounds a batch read or written at once.
	MaxBatch = 128
	// extraSlots are the buffers per batch for fragments and ICMP errors.
	extraSlots = 64
)

// Datagram kinds, by the socket that received them.
type Kind uint8

// The kinds of outside datagrams.
const (
	KindESP      Kind = iota // raw IP protocol 50: Data is the ESP packet
	KindNATT                 // UDP 4500: non-ESP marker demultiplexing (RFC 3948 section 2.2)
	KindUDPEncap             // udp-encapsulate dest-port: ESP in UDP
	KindIKE                  // UDP 500: IKE only
	KindAH                   // raw IP protocol 51: Data is the whole outer packet, IP header included
)

// Datagram is one packet received from the outside.
type Datagram struct {
	Data          []byte // payload after the IP (and UDP) header (AH: the whole packet); decrypted in place
	Local, Remote netip.AddrPort
	Kind          Kind
}

// Wire is the outside, as the operating system offers it (wire_linux.go),
// or a fake in tests.
type Wire interface {
	// WriteOuter sends complete outer IPv4 packets, in order.
	WriteOuter(pkts [][]byte) error
	// SendUDP sends one UDP datagram from local (an IKE socket) to remote;
	// ErrNoSocket when no socket is open on local.
	SendUDP(local, remote netip.AddrPort, payload []byte) error
}

// Inside is one inside interface: the TUN device of a service set.
type Inside struct {
	Junos string // ms-1/2/0.1
	Linux string // ms-1-2-0u1
	Dev   tun.Device
	MTU   int

	mu    sync.Mutex // guards what SetAddresses changes while forwarding
	addrs []string

	batch int
	done  chan struct{}
	wmu   sync.Mutex // serializes writes from several outside readers
}

// setAddrs records the configured addresses.
func (in *Inside) setAddrs(prefixes []string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.addrs = prefixes
}

// Addrs returns the configured addresses.
func (in *Inside) Addrs() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.addrs
}

// Plane is the data plane.
type Plane struct {
	DB      *sad.DB
	Now     func() time.Time
	Workers *Workers

	spd     atomic.Pointer[spd.Table]
	wire    atomic.Pointer[wireBox]
	insides atomic.Pointer[map[string]*Inside]
	mu      sync.Mutex // serializes changes to insides

	ipID atomic.Uint32

	acqMu   sync.Mutex
	acqLast map[string]time.Time

	// Punt receives IKE datagrams for kmd. It must not block.
	Punt  func(*pb.IKEDatagram)
	punts puntLimiter
	// OnDrop receives rate-limited reports of dropped packets. It must
	// not block.
	OnDrop func(Drop)
	// OnOptions is told of each installed SA whose data-plane options a
	// configuration changed (Configure).
	OnOptions func(*sad.SA)
	drops     dropLimiter

	cpu cpuSampler // show services service-sets summary
}

type wireBox struct{ w Wire }

// New returns a Plane over db with no configuration, inside interfaces or
// wire yet.
func New(db *sad.DB) *Plane {
	p := &Plane{DB: db, Now: time.Now, Workers: NewWorkers(runtime.GOMAXPROCS(0)), acqLast: map[string]time.Time{}}
	p.spd.Store(&spd.Table{})
	p.insides.Store(&map[string]*Inside{})
	return p
}

// SetSPD installs the policy of a new configuration.
func (p *Plane) SetSPD(t *spd.Table) { p.spd.Store(t) }

// SPD returns the policy in force.
func (p *Plane) SPD() *spd.Table { return p.spd.Load() }

// SetWire sets the outside.
func (p *Plane) SetWire(w Wire) { p.wire.Store(&wireBox{w}) }

func (p *Plane) outside() Wire {
	if b := p.wire.Load(); b != nil {
		return b.w
	}
	return nil
}

// Insides returns the inside interfaces by Junos name.
func (p *Plane) Insides() map[string]*Inside { return *p.insides.Load() }

// AddInside starts forwarding from a TUN device.
func (p *Plane) AddInside(in *Inside) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]*Inside{}
	for k, v := range *p.insides.Load() {
		m[k] = v
	}
	in.done = make(chan struct{})
	in.batch = min(max(in.Dev.BatchSize(), 1), MaxBatch)
	m[in.Junos] = in
	p.insides.Store(&m)
	go p.readInside(in)
}

// RemoveInside stops forwarding from an inside interface and closes its
// device.
func (p *Plane) RemoveInside(junos string) {
	p.mu.Lock()
	m := map[string]*Inside{}
	var gone *Inside
	for k, v := range *p.insides.Load() {
		if k == junos {
			gone = v
			continue
		}
		m[k] = v
	}
	p.insides.Store(&m)
	p.mu.Unlock()
	if gone != nil {
		gone.Dev.Close()
		<-gone.done
	}
}

// Close stops every inside reader.
func (p *Plane) Close() {
	for k := range p.Insides() {
		p.RemoveInside(k)
	}
	p.Workers.Close()
}

// acquire reports traffic with no SA once per term every ten seconds
// (establish-tunnels on-traffic).
func (p *Plane) acquire(set *spd.Set, term *spd.Term, src, dst netip.Addr, proto byte) {
	key := set.Name + "/" + term.Rule + "/" + term.Name
	now := p.Now()
	p.acqMu.Lock()
	last, ok := p.acqLast[key]
	if ok && now.Sub(last) < 10*time.Second {
		p.acqMu.Unlock()
		return
	}
	p.acqLast[key] = now
	p.acqMu.Unlock()
	p.DB.Acquire(set.Name, term.Rule, term.Name, &pb.TrafficSelector{
		StartAddress: src.AsSlice(), EndAddress: dst.AsSlice(), Protocol: uint32(proto)})
}

// ErrNoSocket is a send from a local address that has no socket (yet).
var ErrNoSocket = errors.New("no socket")
