package plane

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sitesec/sitesec/fwdd/packet"
	"github.com/sitesec/sitesec/fwdd/sad"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// LinuxWire owns the outside sockets: a raw IP socket with IP_HDRINCL to
// send every outer packet (raw ESP and ESP in UDP, so that fwdd sets the
// outer TTL, TOS and DF itself), a raw IP protocol 50 socket that receives
// ESP (the kernel has no ESP of its own), and UDP sockets on each local
// gateway: 500 (IKE), 4500 (IKE and ESP behind NAT, RFC 3948) and the
// udp-encapsulate port.
type LinuxWire struct {
	p     *Plane
	send  *ipv4.PacketConn
	send6 *ipv6.PacketConn // nil without IPv6
	smu   sync.Mutex       // guards what follows up to mu
	msgs  []ipv4.Message
	// the UDP socket udpFor found last, in this WriteOuter
	lastSrc netip.AddrPort
	lastOff *udpOffload
	addr4   []net.IPAddr // per message slot, reused
	addr6   []net.IPAddr

	mu    sync.Mutex
	esp   *ipv4.PacketConn
	esp6  *ipv6.PacketConn
	ah    *ipv4.PacketConn // raw IP protocol 51 (AH, RFC 4302)
	ah6   *ipv6.PacketConn
	udp   map[netip.AddrPort]*udpSock
	wg    sync.WaitGroup
	Error func(error) // reports a reader that stopped, optional
	// NoOffload keeps UDP_SEGMENT and UDP_GRO off on the UDP sockets
	// opened after it is set (tests of the fallback).
	NoOffload bool
	// GSOSegments counts the packets sent in UDP_SEGMENT messages of
	// more than one, GROSegments those received in coalesced datagrams.
	GSOSegments, GROSegments atomic.Uint64
	// groSlots is how many datagrams cut from coalesced ones one batch
	// holds (MaxBatch; tests make it small).
	groSlots int
}

type udpSock struct {
	c    *net.UDPConn
	pc   batchConn
	kind Kind
	off  *udpOffload // sends ESP in UDP with UDP_SEGMENT; nil for IKE
	gro  bool        // UDP_GRO is on: read with readGRO
}

// batchConn is what ipv4.PacketConn and ipv6.PacketConn share.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
}

// OpenLinuxWire opens the raw sockets and starts the ESP and AH readers.
func OpenLinuxWire(p *Plane) (*LinuxWire, error) {
	sc, err := net.ListenPacket("ip4:255", "0.0.0.0") // IPPROTO_RAW implies IP_HDRINCL
	if err != nil {
		return nil, fmt.Errorf("wire: raw send socket: %w", err)
	}
	rc, err := net.ListenPacket("ip4:50", "0.0.0.0")
	if err != nil {
		sc.Close()
		return nil, fmt.Errorf("wire: raw ESP socket: %w", err)
	}
	bigBuffers(sc)
	bigBuffers(rc)
	w := &LinuxWire{p: p, send: ipv4.NewPacketConn(sc), esp: ipv4.NewPacketConn(rc), udp: map[netip.AddrPort]*udpSock{}}
	w.msgs = make([]ipv4.Message, MaxBatch+extraSlots)
	w.addr4 = make([]net.IPAddr, len(w.msgs))
	w.addr6 = make([]net.IPAddr, len(w.msgs))
	for i := range w.msgs {
		w.msgs[i].Buffers = make([][]byte, 1)
		w.addr4[i].IP = make(net.IP, 4)
		w.addr6[i].IP = make(net.IP, 16)
	}
	w.wg.Add(1)
	go w.read(w.esp, KindESP, netip.AddrPort{}, false)
	// AH (RFC 4302) arrives on its own raw socket, IPv4 header included.
	ac, err := net.ListenPacket("ip4:51", "0.0.0.0")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("wire: raw AH socket: %w", err)
	}
	bigBuffers(ac)
	w.ah = ipv4.NewPacketConn(ac)
	w.wg.Add(1)
	go w.read(w.ah, KindAH, netip.AddrPort{}, false)
	// IPv6: IPPROTO_RAW implies IPV6_HDRINCL too; ESP arrives without its
	// IPv6 header, so the local address comes from IPV6_PKTINFO. A machine
	// without IPv6 just has no IPv6 gateways.
	if sc6, err := net.ListenPacket("ip6:255", "::"); err == nil {
		bigBuffers(sc6)
		w.send6 = ipv6.NewPacketConn(sc6)
		if rc6, err := net.ListenPacket("ip6:50", "::"); err == nil {
			bigBuffers(rc6)
			w.esp6 = ipv6.NewPacketConn(rc6)
			w.esp6.SetControlMessage(ipv6.FlagDst, true)
			w.wg.Add(1)
			go w.read(w.esp6, KindESP, netip.AddrPort{}, true)
		}
		if ac6, err := net.ListenPacket("ip6:51", "::"); err == nil {
			bigBuffers(ac6)
			w.ah6 = ipv6.NewPacketConn(ac6)
			w.ah6.SetControlMessage(ipv6.FlagDst, true)
			w.wg.Add(1)
			go w.read(w.ah6, KindAH, netip.AddrPort{}, true)
		}
	}
	return w, nil
}

// SocketBuffer is the send and receive buffer of every outside socket:
// a burst of full-size ESP packets must not overflow the default 208 KiB
// while the readers decrypt the previous batch.
const SocketBuffer = 8 << 20

// bigBuffers raises a socket's buffers past net.core.[rw]mem_max when
// allowed (SO_RCVBUFFORCE needs CAP_NET_ADMIN), or as far as allowed, and
// marks the socket with OutsideMark: every outside socket goes through it.
func bigBuffers(c any) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		// fwdd's own IKE and ESP skip the reverse routes (ReverseTable).
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, OutsideMark)
		for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], SocketBuffer) != nil {
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], SocketBuffer)
			}
		}
	})
}

// WriteOuter sends outer IPv4 and IPv6 packets, in order: ESP in UDP
// that one of the UDP sockets may send as built from that socket with
// UDP_SEGMENT (offload_linux.go), everything else from the raw socket,
// with sendmmsg.
func (w *LinuxWire) WriteOuter(pkts [][]byte) error {
	w.smu.Lock()
	defer w.smu.Unlock()
	w.lastSrc, w.lastOff = netip.AddrPort{}, nil
	for len(pkts) > 0 {
		o := w.udpFor(pkts[0])
		n := 1
		for n < len(pkts) && w.udpFor(pkts[n]) == o {
			n++
		}
		run := pkts[:n]
		pkts = pkts[n:]
		if o != nil {
			sent, err := o.writeUDP(run)
			run = run[sent:]
			if err == nil {
				continue
			}
			// The rest of the run goes from the raw socket.
		}
		if err := w.writeRaw(run); err != nil {
			return err
		}
	}
	return nil
}

// udpFor returns the send offload of the UDP socket that may send pkt, or
// nil for the raw socket. The last lookup is kept for the rest of one
// WriteOuter (consecutive packets mostly share their SA).
func (w *LinuxWire) udpFor(pkt []byte) *udpOffload {
	src, _, _, ok := udpEndpoints(pkt)
	if !ok {
		return nil
	}
	if src != w.lastSrc || w.lastOff == nil {
		w.mu.Lock()
		s := w.udp[src]
		w.mu.Unlock()
		w.lastSrc, w.lastOff = src, nil
		if s != nil && s.off != nil {
			w.lastOff = s.off
		}
	}
	if o := w.lastOff; o != nil && o.gso.Load() {
		return o
	}
	return nil
}

// writeRaw sends outer packets from the raw socket with sendmmsg.
func (w *LinuxWire) writeRaw(pkts [][]byte) error {
	for len(pkts) > 0 {
		v6 := pkts[0][0]>>4 == 6
		n := 0
		for n < len(pkts) && n < len(w.msgs) && (pkts[n][0]>>4 == 6) == v6 {
			m := &w.msgs[n]
			m.Buffers[0] = pkts[n]
			if v6 {
				copy(w.addr6[n].IP, pkts[n][24:40])
				m.Addr = &w.addr6[n]
			} else {
				copy(w.addr4[n].IP, pkts[n][16:20])
				m.Addr = &w.addr4[n]
			}
			n++
		}
		var sent int
		var err error
		switch {
		case !v6:
			sent, err = w.send.WriteBatch(w.msgs[:n], 0)
		case w.send6 != nil:
			sent, err = w.send6.WriteBatch(w.msgs[:n], 0)
		default:
			err = errors.New("no IPv6")
		}
		if err != nil {
			return fmt.Errorf("wire: %w", err)
		}
		if sent == 0 {
			return errors.New("wire: nothing sent")
		}
		pkts = pkts[sent:]
	}
	return nil
}

// SendUDP sends from one of the UDP sockets.
func (w *LinuxWire) SendUDP(local, remote netip.AddrPort, b []byte) error {
	w.mu.Lock()
	s := w.udp[local]
	w.mu.Unlock()
	if s == nil {
		return fmt.Errorf("wire: %w on %s", ErrNoSocket, local)
	}
	_, err := s.c.WriteToUDPAddrPort(b, remote)
	if err != nil {
		return fmt.Errorf("wire: %w", err)
	}
	return nil
}

// Listen makes sure UDP sockets are open on exactly the given addresses.
func (w *LinuxWire) Listen(want map[netip.AddrPort]Kind) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for ap, s := range w.udp {
		if k, ok := want[ap]; !ok || k != s.kind {
			s.c.Close()
			delete(w.udp, ap)
		}
	}
	for ap, k := range want {
		if w.udp[ap] != nil {
			continue
		}
		network := "udp4"
		if ap.Addr().Is6() {
			network = "udp6"
		}
		c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(ap))
		if err != nil {
			errs = append(errs, fmt.Errorf("wire: %w", err))
			continue
		}
		bigBuffers(c)
		pc := ipv4.NewPacketConn(c)
		s := &udpSock{c: c, pc: pc, kind: k}
		if k != KindIKE && !w.NoOffload {
			gso, gro := setupOffloads(c, ap.Addr().Is6())
			s.off = newUDPOffload(pc, gso, &w.GSOSegments)
			s.gro = gro
		}
		w.udp[ap] = s
		w.wg.Add(1)
		if s.gro {
			go w.readGRO(s.pc, k, ap)
		} else {
			go w.read(s.pc, k, ap, false)
		}
	}
	return errors.Join(errs...)
}

// rxSet is one batch's worth of an outside reader's buffers: the
// datagrams read, the buffers the datagrams of coalesced ones are copied
// into, and the Receiver that runs the batch.
type rxSet struct {
	r     *Receiver
	whole [][]byte // each message's buffer, with room before it for an IPv6 AH header
	msgs  []ipv4.Message
	slots [][]byte
	used  int
	ds    []Datagram
}

// rxSets is how many batches one outside reader has in flight: one being
// read and decrypted, one being delivered.
const rxSets = 2

// rxPipe overlaps the two halves of an outside reader's work: the reader
// goroutine reads a batch and runs Receiver.Open on it (classify,
// decrypt), then hands it to the delivering goroutine (Receiver.Deliver:
// anti-replay update, checks, TUN writes, batches in read order) and
// reads the next batch into another rxSet meanwhile. On a loaded machine
// the receive system calls and the TUN writes, the two biggest costs of
// the inbound path, no longer wait for each other.
type rxPipe struct {
	free, ready chan *rxSet
	done        chan struct{}
}

func newRxPipe(mk func() *rxSet) *rxPipe {
	p := &rxPipe{free: make(chan *rxSet, rxSets), ready: make(chan *rxSet, rxSets), done: make(chan struct{})}
	for i := 0; i < rxSets; i++ {
		p.free <- mk()
	}
	go func() {
		defer close(p.done)
		for s := range p.ready {
			s.r.Deliver()
			p.free <- s
		}
	}()
	return p
}

// submit decrypts s's batch and queues it for delivery.
func (p *rxPipe) submit(s *rxSet) {
	s.r.Open(s.ds)
	p.ready <- s
}

// next returns a set whose batch has been delivered, ready for reading.
func (p *rxPipe) next() *rxSet {
	s := <-p.free
	s.ds, s.used = s.ds[:0], 0
	return s
}

// stop waits for the batches queued for delivery.
func (p *rxPipe) stop() {
	close(p.ready)
	<-p.done
}

// read is one outside reader: recvmmsg into its own buffers, then the
// inbound pipeline (rxPipe). raw6 marks the IPv6 ESP and AH sockets,
// whose datagrams come without the IPv6 header; for AH, whose ICV covers
// the outer header, the reader writes its immutable fields back in front
// (version, payload length, next header, addresses; the mutable ones are
// zero in the ICV anyway, RFC 4302 section 3.3.3.1.2.1).
func (w *LinuxWire) read(pc batchConn, kind Kind, local netip.AddrPort, raw6 bool) {
	defer w.wg.Done()
	lead := 0
	if raw6 && kind == KindAH {
		lead = packet.IPv6HeaderLen
	}
	pipe := newRxPipe(func() *rxSet {
		s := &rxSet{r: w.p.NewReceiver(), msgs: make([]ipv4.Message, MaxBatch), ds: make([]Datagram, 0, MaxBatch), whole: make([][]byte, MaxBatch)}
		for i := range s.msgs {
			s.whole[i] = make([]byte, InBufferSize+lead)
			s.msgs[i].Buffers = [][]byte{s.whole[i][lead:]}
			if raw6 {
				s.msgs[i].OOB = ipv6.NewControlMessage(ipv6.FlagDst)
			}
		}
		return s
	})
	defer pipe.stop()
	failures := 0
	set := pipe.next()
	for {
		msgs := set.msgs
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			if isClosed(err) {
				return
			}
			if w.Error != nil && failures == 0 {
				w.Error(err)
			}
			failures++
			time.Sleep(backoff(failures))
			continue
		}
		failures = 0
		for i := 0; i < n; i++ {
			m := &msgs[i]
			b := m.Buffers[0][:m.N]
			d := Datagram{Kind: kind, Local: local, Data: b}
			switch {
			case raw6:
				var cm ipv6.ControlMessage
				if cm.Parse(m.OOB[:m.NN]) != nil || cm.Dst == nil {
					w.p.DB.SetCounters("").Add(sad.BadHeaders, 1)
					continue
				}
				la, _ := netip.AddrFromSlice(cm.Dst)
				d.Local = netip.AddrPortFrom(la.Unmap(), 0)
				if ia, ok := m.Addr.(*net.IPAddr); ok {
					ra, _ := netip.AddrFromSlice(ia.IP)
					d.Remote = netip.AddrPortFrom(ra.Unmap(), 0)
				}
				if lead != 0 {
					if !d.Remote.Addr().Is6() || !d.Local.Addr().Is6() {
						w.p.DB.SetCounters("").Add(sad.BadHeaders, 1)
						continue
					}
					d.Data = set.whole[i][:lead+len(b)]
					packet.OuterIPv6(d.Data, d.Remote.Addr(), d.Local.Addr(), packet.ProtoAH, 0, 0, len(b))
				}
			case kind == KindAH:
				// The IPv4 raw socket hands over the header, which AH's
				// ICV covers: Data is the whole packet.
				info, err := packet.Parse(b)
				if err != nil || info.Proto != packet.ProtoAH || info.FragOff != 0 || info.MoreFrag {
					w.p.DB.SetCounters("").Add(sad.BadHeaders, 1)
					continue
				}
				d.Data = b[:info.Len]
				d.Local = netip.AddrPortFrom(info.Dst, 0)
				d.Remote = netip.AddrPortFrom(info.Src, 0)
			case kind == KindESP:
				// The IPv4 raw socket hands over the header too.
				info, err := packet.Parse(b)
				if err != nil || info.Proto != packet.ProtoESP || info.FragOff != 0 || info.MoreFrag {
					w.p.DB.SetCounters("").Add(sad.BadHeaders, 1)
					continue
				}
				d.Data = b[info.HdrLen:info.Len]
				d.Local = netip.AddrPortFrom(info.Dst, 0)
				d.Remote = netip.AddrPortFrom(info.Src, 0)
			default:
				if ua, ok := m.Addr.(*net.UDPAddr); ok {
					ap := ua.AddrPort()
					d.Remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
				}
			}
			set.ds = append(set.ds, d)
		}
		pipe.submit(set)
		set = pipe.next()
	}
}

// readGRO is the outside reader of a UDP socket with UDP_GRO: a
// datagram may be several of the peer's, of the size the control message
// gives (the last one possibly shorter). A datagram of one is handed on
// where it was read; the datagrams of a coalesced one are copied into
// buffers of their own first, since the TUN device's coalescing of the
// inner packets writes past the end of the first ones (up to their
// buffer's capacity).
func (w *LinuxWire) readGRO(pc batchConn, kind Kind, local netip.AddrPort) {
	defer w.wg.Done()
	pipe := newRxPipe(func() *rxSet {
		s := &rxSet{r: w.p.NewReceiver(), msgs: make([]ipv4.Message, groMsgs), slots: make([][]byte, cmp.Or(w.groSlots, MaxBatch)),
			ds: make([]Datagram, 0, MaxBatch+groMsgs)}
		for i := range s.msgs {
			s.msgs[i].Buffers = [][]byte{make([]byte, groBufSize)}
			s.msgs[i].OOB = make([]byte, unix.CmsgSpace(4))
		}
		for i := range s.slots {
			s.slots[i] = make([]byte, InBufferSize)
		}
		return s
	})
	defer pipe.stop()
	failures := 0
	set := pipe.next()
	for {
		msgs := set.msgs // set may change below; these stay until read's set is next
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			if isClosed(err) {
				return
			}
			if w.Error != nil && failures == 0 {
				w.Error(err)
			}
			failures++
			time.Sleep(backoff(failures))
			continue
		}
		failures = 0
		read := set
		for i := 0; i < n; i++ {
			m := &msgs[i]
			b := m.Buffers[0][:m.N]
			d := Datagram{Kind: kind, Local: local}
			if ua, ok := m.Addr.(*net.UDPAddr); ok {
				ap := ua.AddrPort()
				d.Remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			}
			seg := groSize(m.OOB[:m.NN])
			if seg <= 0 || seg >= len(b) {
				seg = len(b)
				if set == read {
					// In place: delivered with the set that owns it.
					d.Data = b
					set.ds = append(set.ds, d)
					continue
				}
			} else {
				w.GROSegments.Add(uint64((len(b) + seg - 1) / seg))
			}
			for off := 0; off < len(b); off += seg {
				part := b[off:min(off+seg, len(b))]
				if len(part) > InBufferSize {
					w.p.DB.SetCounters("").Add(sad.BadHeaders, 1)
					continue
				}
				if set.used == len(set.slots) {
					// Every copy buffer of this set is taken: on with
					// the next set. read's messages are not read into
					// again before the loop comes back to the top, and
					// from now on nothing is delivered from them in
					// place (its set may be delivered, and read into,
					// before the later sets are).
					pipe.submit(set)
					set = pipe.next()
				}
				d.Data = set.slots[set.used][:copy(set.slots[set.used], part)]
				set.used++
				set.ds = append(set.ds, d)
			}
		}
		pipe.submit(set)
		set = pipe.next()
	}
}

// Close closes every socket and waits for the readers.
func (w *LinuxWire) Close() {
	w.mu.Lock()
	for ap, s := range w.udp {
		s.c.Close()
		delete(w.udp, ap)
	}
	w.mu.Unlock()
	w.esp.Close()
	w.send.Close()
	if w.ah != nil {
		w.ah.Close()
	}
	if w.ah6 != nil {
		w.ah6.Close()
	}
	if w.esp6 != nil {
		w.esp6.Close()
	}
	if w.send6 != nil {
		w.send6.Close()
	}
	w.wg.Wait()
}
