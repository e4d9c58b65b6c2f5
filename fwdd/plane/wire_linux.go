package plane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/sitesec/sitesec/fwdd/packet"
	"github.com/sitesec/sitesec/fwdd/sad"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// LinuxWire owns the outside sockets: a raw IP socket with IP_HDRINCL to
// send every outer packet (raw ESP and ESP in UDP, so that fwdd sets the
// outer TTL, TOS and DF itself), a raw IP protocol 50 socket that receives
// ESP (the kernel has no ESP of its own), and UDP sockets on each local
// gateway: 500 (IKE), 4500 (IKE and ESP behind NAT, RFC 3948) and the
// udp-encapsulate port.
type LinuxWire struct {
	p    *Plane
	send *ipv4.PacketConn
	smu  sync.Mutex
	msgs []ipv4.Message

	mu    sync.Mutex
	esp   *ipv4.PacketConn
	udp   map[netip.AddrPort]*udpSock
	wg    sync.WaitGroup
	Error func(error) // reports a reader that stopped, optional
}

type udpSock struct {
	c    *net.UDPConn
	pc   *ipv4.PacketConn
	kind Kind
}

// OpenLinuxWire opens the raw sockets and starts the ESP reader.
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
	for i := range w.msgs {
		w.msgs[i].Buffers = make([][]byte, 1)
		w.msgs[i].Addr = &net.IPAddr{IP: make(net.IP, 4)}
	}
	w.wg.Add(1)
	go w.read(w.esp, KindESP, netip.AddrPort{})
	return w, nil
}

// SocketBuffer is the send and receive buffer of every outside socket:
// a burst of full-size ESP packets must not overflow the default 208 KiB
// while the readers decrypt the previous batch.
const SocketBuffer = 8 << 20

// bigBuffers raises a socket's buffers past net.core.[rw]mem_max when
// allowed (SO_RCVBUFFORCE needs CAP_NET_ADMIN), or as far as allowed.
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
		for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], SocketBuffer) != nil {
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], SocketBuffer)
			}
		}
	})
}

// WriteOuter sends outer IPv4 packets with sendmmsg.
func (w *LinuxWire) WriteOuter(pkts [][]byte) error {
	w.smu.Lock()
	defer w.smu.Unlock()
	for len(pkts) > 0 {
		n := min(len(pkts), len(w.msgs))
		for i := 0; i < n; i++ {
			w.msgs[i].Buffers[0] = pkts[i]
			copy(w.msgs[i].Addr.(*net.IPAddr).IP, pkts[i][16:20])
		}
		sent, err := w.send.WriteBatch(w.msgs[:n], 0)
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
		return fmt.Errorf("wire: no socket on %s", local)
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
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			errs = append(errs, fmt.Errorf("wire: %w", err))
			continue
		}
		bigBuffers(c)
		s := &udpSock{c: c, pc: ipv4.NewPacketConn(c), kind: k}
		w.udp[ap] = s
		w.wg.Add(1)
		go w.read(s.pc, k, ap)
	}
	return errors.Join(errs...)
}

// read is one outside reader: recvmmsg into its own buffers, then the
// inbound pipeline.
func (w *LinuxWire) read(pc *ipv4.PacketConn, kind Kind, local netip.AddrPort) {
	defer w.wg.Done()
	r := w.p.NewReceiver()
	msgs := make([]ipv4.Message, MaxBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, BufferSize)}
	}
	ds := make([]Datagram, 0, MaxBatch)
	failures := 0
	for {
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
		ds = ds[:0]
		for i := 0; i < n; i++ {
			m := &msgs[i]
			b := m.Buffers[0][:m.N]
			d := Datagram{Kind: kind, Local: local}
			if kind == KindESP {
				// A raw socket hands over the IPv4 header too.
				info, err := packet.Parse(b)
				if err != nil || info.Proto != packet.ProtoESP || info.FragOff != 0 || info.MoreFrag {
					w.p.DB.SetCounters("").Add(sad.BadHeaders, 1)
					continue
				}
				d.Data = b[info.HdrLen:info.Len]
				d.Local = netip.AddrPortFrom(info.Dst, 0)
				d.Remote = netip.AddrPortFrom(info.Src, 0)
			} else {
				d.Data = b
				if ua, ok := m.Addr.(*net.UDPAddr); ok {
					ap := ua.AddrPort()
					d.Remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
				}
			}
			ds = append(ds, d)
		}
		r.Receive(ds)
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
	w.wg.Wait()
}
