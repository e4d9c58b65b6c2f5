package plane

import (
	"net/netip"
	"sync"
	"time"

	"github.com/sitesec/sitesec/fwdd/esp"
	"github.com/sitesec/sitesec/fwdd/packet"
	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/fwdd/spd"
	"github.com/sitesec/sitesec/proto/pb"
)

// outJob is one packet on its way out: the inner packet at
// buf[start:end], its SA and sequence number, and the outer header values.
type outJob struct {
	buf        []byte
	start, end int
	sa         *sad.SA
	seq        uint64
	nh         byte
	ttl, tos   byte
	df         bool
	out        []byte // the outer packet once sealed
	err        error
}

// sender is the state of one inside reader: its buffers and batch.
type sender struct {
	p      *Plane
	in     *Inside
	bufs   [][]byte // MaxBatch read buffers, then extraSlots
	sizes  []int
	jobs   []outJob
	outs   [][]byte
	back   [][]byte // ICMP errors to write back into the TUN
	extra  int      // next free extra slot
	frag   []byte
	wg     sync.WaitGroup
	sealFn func(i int)
}

func newSender(p *Plane, in *Inside) *sender {
	s := &sender{p: p, in: in, sizes: make([]int, MaxBatch), frag: make([]byte, BufferSize)}
	for i := 0; i < MaxBatch+extraSlots; i++ {
		s.bufs = append(s.bufs, make([]byte, BufferSize))
	}
	s.jobs = make([]outJob, 0, MaxBatch+extraSlots)
	s.outs = make([][]byte, 0, MaxBatch+extraSlots)
	s.back = make([][]byte, 0, extraSlots)
	s.sealFn = s.seal
	return s
}

// readInside is the outbound pipeline of one inside interface.
func (p *Plane) readInside(in *Inside) {
	defer close(in.done)
	s := newSender(p, in)
	failures := 0
	for {
		n, err := in.Dev.Read(s.bufs[:in.batch], s.sizes, Headroom)
		if n > 0 {
			s.batch(n)
		}
		if err == nil {
			failures = 0
			continue
		}
		if isClosed(err) {
			return
		}
		// A batch too big for the buffers or a transient error: the
		// packets are lost, the reader goes on, backing off if the
		// device keeps failing (deleted under us, say).
		p.DB.SetCounters("").Add(sad.MiscErrors, 1)
		failures++
		time.Sleep(backoff(failures))
	}
}

// backoff is the pause after the n-th read failure in a row.
func backoff(n int) time.Duration {
	if n < 3 {
		return 0
	}
	return min(time.Millisecond<<min(n-3, 10), time.Second)
}

// batch processes n packets read into s.bufs.
func (s *sender) batch(n int) {
	s.jobs = s.jobs[:0]
	s.back = s.back[:0]
	s.extra = MaxBatch
	for i := 0; i < n; i++ {
		s.classify(s.bufs[i], Headroom, Headroom+s.sizes[i])
	}
	s.p.Workers.Run(len(s.jobs), s.sealFn, &s.wg)
	s.outs = s.outs[:0]
	for i := range s.jobs {
		j := &s.jobs[i]
		if j.err != nil {
			j.sa.Counters.Add(sad.Discards, 1)
			continue
		}
		s.outs = append(s.outs, j.out)
	}
	if w := s.p.outside(); w != nil && len(s.outs) > 0 {
		if err := w.WriteOuter(s.outs); err != nil {
			s.p.DB.SetCounters("").Add(sad.MiscErrors, uint64(len(s.outs)))
		}
	}
	if len(s.back) > 0 {
		s.in.write(s.back, Headroom)
	}
}

func (in *Inside) write(bufs [][]byte, offset int) {
	in.wmu.Lock()
	in.Dev.Write(bufs, offset)
	in.wmu.Unlock()
}

// slot returns a free extra buffer, or nil when the batch used them all.
func (s *sender) slot() []byte {
	if s.extra >= len(s.bufs) {
		return nil
	}
	b := s.bufs[s.extra]
	s.extra++
	return b
}

// reply queues an ICMP error for the inside host.
func (s *sender) reply(build func(dst []byte) []byte) {
	b := s.slot()
	if b == nil {
		return
	}
	if pkt := build(b[Headroom:]); pkt != nil {
		s.back = append(s.back, b[:Headroom+len(pkt)])
	}
}

// classify runs the in-order stage for the inner packet buf[start:end].
func (s *sender) classify(buf []byte, start, end int) {
	p := s.p
	pkt := buf[start:end]
	tbl := p.SPD()
	set := tbl.ByInside(s.in.Junos)
	if set == nil {
		p.DB.SetCounters("").Add(sad.RuleLookupFailures, 1)
		return
	}
	info, err := packet.Parse(pkt)
	if err != nil {
		p.DB.SetCounters(set.Name).Add(sad.IPIntegrity, 1)
		return
	}
	end = start + info.Len // drop link padding
	pkt = buf[start:end]
	if info.Dst.IsMulticast() || info.Dst.IsLinkLocalUnicast() || info.Src.IsLinkLocalUnicast() {
		// The host's own link chatter (IPv6 router solicitations, mDNS):
		// never tunneled, never a reason to negotiate.
		p.DB.SetCounters(set.Name).Add(sad.Discards, 1)
		return
	}
	term := set.Lookup(info.Src, info.Dst)
	if term == nil {
		p.DB.SetCounters(set.Name).Add(sad.RuleLookupFailures, 1)
		p.report(Drop{Reason: "no term matches", Set: set.Name,
			Src: netip.AddrPortFrom(info.Src, info.SrcPort), Dst: netip.AddrPortFrom(info.Dst, info.DstPort)})
		return
	}
	sa := p.DB.Outbound(set.Name, info.Src, info.Dst)
	if sa == nil {
		p.DB.SetCounters(set.Name).Add(sad.NoSA, 1)
		p.acquire(set, term, info.Src, info.Dst, info.Proto)
		return
	}
	c := sa.Config
	passive := c.GetPassiveModeTunneling()
	if !passive {
		if err := packet.Check(pkt, info, c.GetHeaderIntegrityCheck()); err != nil {
			sa.Counters.Add(sad.IPIntegrity, 1)
			return
		}
		// The tunnel is a next hop: decrement the TTL, and answer an
		// expired one, unless no-ipsec-tunnel-in-traceroute hides it.
		if !c.GetNoIpsecTunnelInTraceroute() {
			if !packet.DecrementTTL(pkt, info) {
				sa.Counters.Add(sad.Discards, 1)
				// From the far end of the tunnel: the hop traceroute shows.
				src := sa.Peer().Addr.Addr()
				s.reply(func(dst []byte) []byte { return packet.TimeExceeded(dst, pkt, info, src) })
				return
			}
			info.TTL--
		}
	}
	// DF handling (SPEC section 3): clear clears the inner DF; copy copies
	// it to the outer header; set sets the outer DF only.
	var outerDF bool
	switch c.GetDontFragment() {
	case pb.DFBit_DF_BIT_CLEAR:
		packet.ClearDF(pkt, info)
		info.DF = false
	case pb.DFBit_DF_BIT_COPY:
		outerDF = info.DF
	case pb.DFBit_DF_BIT_SET:
		outerDF = true
	}
	ttl, tos := byte(c.GetTtl()), byte(c.GetTos())
	if ttl == 0 {
		ttl = spd.DefaultTTL
	}
	if c.GetCopyTtl() {
		ttl = info.TTL
	}
	if c.GetCopyTos() {
		tos = info.TOS
	}
	nh := byte(packet.ProtoIPIP)
	if info.Version == 6 {
		nh = packet.ProtoIPv6
	}
	// Tunnel MTU: the outer packet may not exceed it (SPEC section 3).
	mtu := int(c.GetTunnelMtu())
	if mtu == 0 {
		mtu = spd.DefaultTunnelMTU
	}
	over := outerOverhead(sa)
	tooBig := over+sa.Cipher.Overhead(len(pkt))+len(pkt) > mtu
	if tooBig && !passive {
		sa.Counters.Add(sad.ExceedsTunnelMTU, 1)
		if info.Version != 4 || info.DF {
			// Fragmentation needed (RFC 1191) with the MTU the inner
			// packet may have; IPv6 is never fragmented on the way.
			inner := innerMTU(sa, mtu)
			// From the packet's destination: the kernel drops ICMP that
			// arrives with one of its own addresses as source, and a
			// strict reverse-path filter wants a source routed via
			// this interface; the sender only reads the quoted header.
			s.reply(func(dst []byte) []byte {
				if info.Version == 6 {
					return packet.PacketTooBig(dst, pkt, info, info.Dst, max(inner, 1280))
				}
				return packet.FragNeeded(dst, pkt, info, info.Dst, inner)
			})
			return
		}
		// Fragment before encapsulation.
		fmtu := innerMTU(sa, mtu)
		_, err := packet.Fragment(pkt, info, fmtu, s.frag, func(f []byte) {
			b := s.slot()
			if b == nil {
				sa.Counters.Add(sad.Discards, 1)
				return
			}
			copy(b[Headroom:], f)
			s.queue(sa, b, Headroom, Headroom+len(f), nh, ttl, tos, outerDF)
		})
		if err != nil {
			sa.Counters.Add(sad.Discards, 1)
		}
		return
	} else if tooBig {
		sa.Counters.Add(sad.ExceedsTunnelMTU, 1) // passive: tunneled anyway
	}
	s.queue(sa, buf, start, end, nh, ttl, tos, outerDF)
}

// queue numbers a packet and adds it to the batch to seal.
func (s *sender) queue(sa *sad.SA, buf []byte, start, end int, nh, ttl, tos byte, df bool) {
	seq, err := sa.NextSeq()
	if err != nil {
		sa.Counters.Add(sad.Discards, 1)
		return
	}
	sa.Account(end - start)
	s.jobs = append(s.jobs, outJob{buf: buf, start: start, end: end, sa: sa, seq: seq, nh: nh, ttl: ttl, tos: tos, df: df})
}

// seal is the parallel stage: ESP and the outer headers.
func (s *sender) seal(i int) {
	j := &s.jobs[i]
	e, err := j.sa.Cipher.Seal(j.buf, j.start, j.end, j.seq, j.nh)
	if err != nil {
		j.err = err
		return
	}
	j.out = s.p.outer(j.sa, j.buf, e, j.ttl, j.tos, j.df)
	if j.out == nil {
		j.err = esp.ErrBuffer
	}
}

// outer writes the outer IPv4 or IPv6 header and, for UDP encapsulation,
// the UDP header in front of the ESP packet e (a slice of buf) and returns
// the whole packet. With IPv6 the DF knobs do not apply (IPv6 routers never
// fragment) and the UDP checksum is required.
func (p *Plane) outer(sa *sad.SA, buf, e []byte, ttl, tos byte, df bool) []byte {
	peer := sa.Peer()
	src, dst := sa.Local, peer.Addr.Addr()
	if src.Is4() != dst.Is4() {
		return nil
	}
	off := cap(buf) - cap(e) // e's offset in buf
	iph := ipHeaderLen(src)
	hl := iph
	proto := byte(packet.ProtoESP)
	if udpEncap(peer.Encap) {
		hl += packet.UDPHeaderLen
		proto = packet.ProtoUDP
	}
	if off < hl {
		return nil
	}
	o := buf[off-hl : off+len(e)]
	if proto == packet.ProtoUDP {
		sp, dp := localPort(sa), peer.Addr.Port()
		if dp == 0 {
			dp = sp
		}
		packet.UDP(o[iph:], sp, dp, len(e))
		if !src.Is4() {
			packet.UDP6Checksum(o[iph:], src, dst)
		}
	}
	if src.Is4() {
		packet.OuterIPv4(o, src, dst, proto, ttl, tos, df, uint16(p.ipID.Add(1)), len(o)-iph)
	} else {
		packet.OuterIPv6(o, src, dst, proto, ttl, tos, len(o)-iph)
	}
	return o
}

func udpEncap(e pb.Encapsulation) bool {
	return e == pb.Encapsulation_ENCAPSULATION_UDP_NATT || e == pb.Encapsulation_ENCAPSULATION_UDP_MULTIPATH
}

func ipHeaderLen(a netip.Addr) int {
	if a.Is4() {
		return packet.IPv4HeaderLen
	}
	return packet.IPv6HeaderLen
}

func localPort(sa *sad.SA) uint16 {
	if p := sa.Config.GetLocal().GetPort(); p != 0 {
		return uint16(p)
	}
	if sa.Peer().Encap == pb.Encapsulation_ENCAPSULATION_UDP_NATT {
		return spd.NATTPort
	}
	return spd.DefaultUDPEncapPort
}

// outerOverhead is the outer header bytes an SA adds before ESP.
func outerOverhead(sa *sad.SA) int {
	n := ipHeaderLen(sa.Local)
	if udpEncap(sa.Peer().Encap) {
		n += packet.UDPHeaderLen
	}
	return n
}

// innerMTU is the largest inner packet whose outer packet fits mtu.
func innerMTU(sa *sad.SA, mtu int) int {
	n := mtu - outerOverhead(sa) - sa.Cipher.Overhead(0)
	// Overhead(0) includes padding for an empty payload; align down so
	// that padding never pushes the packet over.
	return n - 16
}
