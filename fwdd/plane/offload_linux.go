package plane

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"github.com/sitesec/sitesec/fwdd/packet"
	"github.com/sitesec/sitesec/fwdd/spd"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// UDP segmentation and receive offloads for ESP in UDP (issue 15).
//
// Sending: the outer packets of a batch that leave from one of fwdd's UDP
// sockets (ESP in UDP on 4500 or the udp-encapsulate port) with the
// socket's own header values (TTL 64, TOS 0, DF clear: see udpFor) go
// through that socket instead of the raw IPPROTO_RAW one, and consecutive
// ones to the same peer with the same size become one message with a
// UDP_SEGMENT control message: the kernel builds one GSO packet that
// crosses the stack (and a veth pair) once and is cut into the datagrams
// late, or by the NIC. Each datagram is one iovec of the message (the
// ESP packet where the crypto wrote it), so nothing is copied. Other
// packets (raw ESP, configured TTL/TOS/DF, IPv4 options) keep the raw
// socket. A kernel or socket without UDP_SEGMENT, or one that refuses it
// (EIO: no checksum offload on the route), keeps the raw socket.
//
// Receiving: UDP_GRO on the same sockets lets the kernel hand over a run
// of equal-size datagrams of one flow as one buffer with their size in a
// control message; the reader cuts it into the datagrams again
// (readGRO).

const (
	// gsoMaxSegments is the kernel's UDP_MAX_SEGMENTS (64 since Linux 4.18).
	gsoMaxSegments = 64
	// gsoMaxBytes bounds the payload of one GSO message: the UDP length
	// field and IPv4's total length.
	gsoMaxBytes = 65535 - packet.IPv4HeaderLen - packet.UDPHeaderLen
	// groMsgs is how many (possibly coalesced) datagrams one recvmmsg
	// takes on a UDP socket with UDP_GRO, each into a groBufSize buffer.
	groMsgs    = 16
	groBufSize = 1 << 16
)

// udpOffload is the send side of one UDP socket's segmentation offload.
// Its fields are used under LinuxWire.smu.
type udpOffload struct {
	pc     *ipv4.PacketConn
	gso    atomic.Bool // UDP_SEGMENT works on this socket
	msgs   []ipv4.Message
	counts []int // packets per message
	addrs  []net.UDPAddr
	oobs   [][]byte
	// segments counts the packets sent in messages of more than one.
	segments *atomic.Uint64
}

func newUDPOffload(pc *ipv4.PacketConn, gso bool, segments *atomic.Uint64) *udpOffload {
	n := MaxBatch + extraSlots
	o := &udpOffload{pc: pc, segments: segments, msgs: make([]ipv4.Message, n), counts: make([]int, n), addrs: make([]net.UDPAddr, n), oobs: make([][]byte, n)}
	for i := range o.msgs {
		o.msgs[i].Buffers = make([][]byte, 0, gsoMaxSegments)
		o.addrs[i].IP = make(net.IP, 16)
		o.oobs[i] = make([]byte, unix.CmsgSpace(2))
	}
	o.gso.Store(gso)
	return o
}

// setupOffloads turns on what the socket supports: UDP_GRO (reported by
// the return value), and, when UDP_SEGMENT is there, the header values
// that udpFor requires of the packets it sends (TTL or hop limit
// spd.DefaultTTL, DF clear).
func setupOffloads(c *net.UDPConn, v6 bool) (gso, gro bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return false, false
	}
	raw.Control(func(fd uintptr) {
		s := int(fd)
		if _, err := unix.GetsockoptInt(s, unix.IPPROTO_UDP, unix.UDP_SEGMENT); err == nil {
			if v6 {
				gso = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, spd.DefaultTTL) == nil &&
					unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0) == nil
			} else {
				gso = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_TTL, spd.DefaultTTL) == nil &&
					unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_TOS, 0) == nil &&
					unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT) == nil
			}
		}
		gro = unix.SetsockoptInt(s, unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
	})
	return gso, gro
}

// udpEndpoints returns the source and destination of an outer ESP-in-UDP
// packet fwdd built, when the UDP socket of its source may send it as
// is: IPv4 without options, DF, fragmentation, TTL other than
// spd.DefaultTTL or TOS; IPv6 with hop limit spd.DefaultTTL and traffic
// class 0. The payload (the ESP packet) starts at hl.
func udpEndpoints(pkt []byte) (src, dst netip.AddrPort, hl int, ok bool) {
	if len(pkt) < packet.IPv4HeaderLen+packet.UDPHeaderLen {
		return
	}
	switch pkt[0] >> 4 {
	case 4:
		if pkt[0] != 0x45 || pkt[1] != 0 || pkt[6]&0xff != 0 || pkt[7] != 0 || pkt[8] != spd.DefaultTTL || pkt[9] != packet.ProtoUDP {
			return
		}
		hl = packet.IPv4HeaderLen
		src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(pkt[12:16])), binary.BigEndian.Uint16(pkt[20:]))
		dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(pkt[16:20])), binary.BigEndian.Uint16(pkt[22:]))
	case 6:
		if len(pkt) < packet.IPv6HeaderLen+packet.UDPHeaderLen || pkt[0]&0x0f != 0 || pkt[1]&0xf0 != 0 ||
			pkt[6] != packet.ProtoUDP || pkt[7] != spd.DefaultTTL {
			return
		}
		hl = packet.IPv6HeaderLen
		src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(pkt[8:24])), binary.BigEndian.Uint16(pkt[40:]))
		dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(pkt[24:40])), binary.BigEndian.Uint16(pkt[42:]))
	default:
		return
	}
	return src, dst, hl + packet.UDPHeaderLen, true
}

// gsoGroup returns how many packets from the start of pkts (all to dst,
// payload at hl) go out as one GSO message: the same payload size, the
// last one possibly shorter, at most gsoMaxSegments and gsoMaxBytes.
func gsoGroup(pkts [][]byte, dst netip.AddrPort, hl int) int {
	size := len(pkts[0]) - hl
	total := size
	n := 1
	for n < len(pkts) && n < gsoMaxSegments {
		q := pkts[n]
		_, d, qhl, ok := udpEndpoints(q)
		if !ok || d != dst || qhl != hl {
			break
		}
		l := len(q) - hl
		if l > size || l == 0 || total+l > gsoMaxBytes {
			break
		}
		total += l
		n++
		if l < size {
			break
		}
	}
	return n
}

// putSegment writes a UDP_SEGMENT control message with size into oob.
func putSegment(oob []byte, size int) []byte {
	oob = oob[:unix.CmsgSpace(2)]
	clear(oob)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = unix.IPPROTO_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(size))
	return oob
}

// groSize returns the segment size of a UDP_GRO control message in oob,
// or 0.
func groSize(oob []byte) int {
	hl := unix.CmsgLen(0)
	for len(oob) >= hl {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hl || l > len(oob) {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && l >= hl+4 {
			return int(binary.NativeEndian.Uint32(oob[hl:]))
		}
		oob = oob[min(unix.CmsgSpace(l-hl), len(oob)):]
	}
	return 0
}

// writeUDP sends pkts (all from o's socket, see udpFor) as GSO messages
// and returns how many packets went out. On an error the caller sends
// the rest another way; EIO (the route cannot segment) turns GSO off for
// the socket.
func (o *udpOffload) writeUDP(pkts [][]byte) (int, error) {
	nm := 0
	for i := 0; i < len(pkts); nm++ {
		_, dst, hl, _ := udpEndpoints(pkts[i])
		k := gsoGroup(pkts[i:], dst, hl)
		m := &o.msgs[nm]
		m.Buffers = m.Buffers[:0]
		for _, p := range pkts[i : i+k] {
			m.Buffers = append(m.Buffers, p[hl:])
		}
		m.OOB = nil
		if k > 1 {
			m.OOB = putSegment(o.oobs[nm], len(pkts[i])-hl)
		}
		a := &o.addrs[nm]
		if dst.Addr().Is4() {
			b := dst.Addr().As4()
			a.IP = a.IP[:4]
			copy(a.IP, b[:])
		} else {
			b := dst.Addr().As16()
			a.IP = a.IP[:16]
			copy(a.IP, b[:])
		}
		a.Port = int(dst.Port())
		m.Addr = a
		o.counts[nm] = k
		i += k
	}
	sent, done := 0, 0
	for done < nm {
		n, err := o.pc.WriteBatch(o.msgs[done:nm], 0)
		for _, c := range o.counts[done : done+max(n, 0)] {
			sent += c
			if c > 1 {
				o.segments.Add(uint64(c))
			}
		}
		done += max(n, 0)
		if err != nil {
			if errors.Is(err, unix.EIO) {
				o.gso.Store(false)
			}
			return sent, err
		}
		if n == 0 {
			return sent, errors.New("nothing sent")
		}
	}
	return sent, nil
}
