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

// outBatch is one batch of packets read from an inside interface, with
// its own buffers: MaxBatch read buffers, then extraSlots for fragments
// and ICMP errors. A sender owns a fixed number of them (outBatches), so
// the packets in flight per inside interface are bounded.
type outBatch struct {
	p      *Plane
	bufs   [][]byte
	sizes  []int
	jobs   []outJob
	outs   [][]byte
	back   [][]byte // ICMP errors to write back into the TUN
	extra  int      // next free extra slot
	wg     sync.WaitGroup
	sealFn func(i int)
}

// outBatches is how many batches one inside interface has in flight: one
// being read and classified while others are sealed or written.
const outBatches = 3

func newOutBatch(p *Plane) *outBatch {
	b := &outBatch{p: p, sizes: make([]int, MaxBatch)}
	for i := 0; i < MaxBatch+extraSlots; i++ {
		b.bufs = append(b.bufs, make([]byte, BufferSize))
	}
	b.jobs = make([]outJob, 0, MaxBatch+extraSlots)
	b.outs = make([][]byte, 0, MaxBatch+extraSlots)
	b.back = make([][]byte, 0, extraSlots)
	b.sealFn = b.seal
	return b
}

// sender is the outbound pipeline of one inside interface.
type sender struct {
	p     *Plane
	in    *Inside
	cur   *outBatch // the batch the reader classifies
	frag  []byte
	free  chan *outBatch // batches ready for reading into
	ready chan *outBatch // batches being sealed, in read order
}

func newSender(p *Plane, in *Inside) *sender {
	s := &sender{p: p, in: in, frag: make([]byte, BufferSize),
		free: make(chan *outBatch, outBatches), ready: make(chan *outBatch, outBatches)}
	for i := 0; i < outBatches; i++ {
		s.free <- newOutBatch(p)
	}
	s.cur = <-s.free
	return s
}

// readInside is the outbound pipeline of one inside interface: this
// goroutine reads and classifies (sequence numbers are handed out here,
// in order), the crypto workers seal, and the writer goroutine sends each
// batch, in read order, once it is sealed.
func (p *Plane) readInside(in *Inside) {
	defer close(in.done)
	s := newSender(p, in)
	written := make(chan struct{})
	go s.writer(written)
	defer func() {
		close(s.ready)
		<-written
	}()
	failures := 0
	for {
		b := s.cur
		n, err := in.Dev.Read(b.bufs[:in.batch], b.sizes, Headroom)
		if n > 0 {
			s.prepare(n)
			p.Workers.Start(len(b.jobs), b.sealFn, &b.wg)
			s.ready <- b
			s.cur = <-s.free
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

// writer sends sealed batches in the order they were read.
func (s *sender) writer(done chan<- struct{}) {
	defer close(done)
	for b := range s.ready {
		b.wg.Wait()
		s.flush(b)
		s.free <- b
	}
}

// backoff is the pause after the n-th read failure in a row.
func backoff(n int) time.Duration {
	if n < 3 {
		return 0
	}
	return min(time.Millisecond<<min(n-3, 10), time.Second)
}

// prepare runs the in-order stage over the n packets read into s.cur.
func (s *sender) prepare(n int) {
	b := s.cur
	b.jobs = b.jobs[:0]
	b.back = b.back[:0]
	b.extra = MaxBatch
	for i := 0; i < n; i++ {
		s.classify(b.bufs[i], Headroom, Headroom+b.sizes[i])
	}
}

// batch runs the whole pipeline over n packets in s.cur synchronously
// (tests and benchmarks).
func (s *sender) batch(n int) {
	b := s.cur
	s.prepare(n)
	s.p.Workers.Run(len(b.jobs), b.sealFn, &b.wg)
	s.flush(b)
}

// flush writes a sealed batch: its packets to the outside, its ICMP
// errors to the inside.
func (s *sender) flush(b *outBatch) {
	b.outs = b.outs[:0]
	for i := range b.jobs {
		j := &b.jobs[i]
		if j.err != nil {
			j.sa.Counters.Add(sad.Discards, 1)
			continue
		}
		b.outs = append(b.outs, j.out)
	}
	if w := s.p.outside(); w != nil && len(b.outs) > 0 {
		if err := w.WriteOuter(b.outs); err != nil {
			s.p.DB.SetCounters("").Add(sad.MiscErrors, uint64(len(b.outs)))
		}
	}
	if len(b.back) > 0 {
		s.in.write(b.back, Headroom)
	}
}

func (in *Inside) write(bufs [][]byte, offset int) {
	in.wmu.Lock()
	in.Dev.Write(bufs, offset)
	in.wmu.Unlock()
}

// slot returns a free extra buffer, or nil when the batch used them all.
func (s *sender) slot() []byte {
	b := s.cur
	if b.extra >= len(b.bufs) {
		return nil
	}
	buf := b.bufs[b.extra]
	b.extra++
	return buf
}

// reply queues an ICMP error for the inside host.
func (s *sender) reply(build func(dst []byte) []byte) {
	b := s.slot()
	if b == nil {
		return
	}
	if pkt := build(b[Headroom:]); pkt != nil {
		s.cur.back = append(s.cur.back, b[:Headroom+len(pkt)])
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
	if term == nil && !set.DEP {
		p.DB.SetCounters(set.Name).Add(sad.RuleLookupFailures, 1)
		p.report(Drop{Reason: "no term matches", Set: set.Name,
			Src: netip.AddrPortFrom(info.Src, info.SrcPort), Dst: netip.AddrPortFrom(info.Dst, info.DstPort), Packet: pkt})
		return
	}
	// A dynamic-endpoint set's tunnels have no term: the CHILD SA a client
	// negotiated within the access profile's allowed proxy pairs is found
	// by its selectors, and its IKE is responder only (nothing to acquire).
	sa := p.DB.Outbound(set.Name, info.Src, info.Dst)
	if sa == nil {
		p.DB.SetCounters(set.Name).Add(sad.NoSA, 1)
		if term != nil {
			p.acquire(set, term, info.Src, info.Dst, info.Proto)
		}
		return
	}
	o := sa.Options() // the commit's, even on an SA installed before it
	passive := o.Passive
	if !passive {
		if err := packet.Check(pkt, info, o.HeaderIntegrity); err != nil {
			sa.Counters.Add(sad.IPIntegrity, 1)
			return
		}
		// The tunnel is a next hop: decrement the TTL, and answer an
		// expired one, unless no-ipsec-tunnel-in-traceroute hides it.
		if !o.NoTraceroute {
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
	switch o.DF {
	case pb.DFBit_DF_BIT_CLEAR:
		packet.ClearDF(pkt, info)
		info.DF = false
	case pb.DFBit_DF_BIT_COPY:
		outerDF = info.DF
	case pb.DFBit_DF_BIT_SET:
		outerDF = true
	}
	ttl, tos := byte(o.TTL), byte(o.TOS)
	if ttl == 0 {
		ttl = spd.DefaultTTL
	}
	if o.CopyTTL {
		ttl = info.TTL
	}
	if o.CopyTOS {
		tos = info.TOS
	}
	nh := byte(packet.ProtoIPIP)
	if info.Version == 6 {
		nh = packet.ProtoIPv6
	}
	// Tunnel MTU: the outer packet may not exceed it (SPEC section 3).
	mtu := int(o.TunnelMTU)
	if mtu == 0 {
		mtu = spd.DefaultTunnelMTU
	}
	over := outerOverhead(sa)
	tooBig := over+protoOverhead(sa, len(pkt))+len(pkt) > mtu
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
	s.cur.jobs = append(s.cur.jobs, outJob{buf: buf, start: start, end: end, sa: sa, seq: seq, nh: nh, ttl: ttl, tos: tos, df: df})
}

// seal is the parallel stage: ESP (ESP, bundle), the outer headers and
// AH (AH, bundle).
func (b *outBatch) seal(i int) {
	j := &b.jobs[i]
	sa := j.sa
	e := j.buf[j.start:j.end]
	nh := j.nh
	if sa.Cipher != nil {
		var err error
		if e, err = sa.Cipher.Seal(j.buf, j.start, j.end, j.seq, j.nh); err != nil {
			j.err = err
			return
		}
		nh = packet.ProtoESP
	}
	j.out = b.p.outer(sa, j.buf, e, j.ttl, j.tos, j.df)
	if j.out == nil {
		j.err = esp.ErrBuffer
		return
	}
	if sa.Auth != nil {
		// RFC 4302 section 3.3: AH after the outer header, its ICV over
		// the whole packet; a bundle's sequence numbers are AH's.
		j.err = sa.Auth.SealInPlace(j.out, j.seq, nh)
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
	switch {
	case sa.Auth != nil:
		// AH is never UDP-encapsulated (sad refuses it); the caller
		// fills the AH header.
		hl += sa.Auth.Len(!src.Is4())
		proto = packet.ProtoAH
	case udpEncap(peer.Encap):
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

// outerOverhead is the outer header bytes an SA adds before ESP (or
// the AH header).
func outerOverhead(sa *sad.SA) int {
	n := ipHeaderLen(sa.Local)
	if sa.Auth == nil && udpEncap(sa.Peer().Encap) {
		n += packet.UDPHeaderLen
	}
	return n
}

// protoOverhead is what ESP and AH add to an inner packet of n bytes.
func protoOverhead(sa *sad.SA, n int) int {
	o := 0
	if sa.Cipher != nil {
		o = sa.Cipher.Overhead(n)
	}
	if sa.Auth != nil {
		o += sa.Auth.Len(!sa.Local.Is4())
	}
	return o
}

// innerMTU is the largest inner packet whose outer packet fits mtu.
func innerMTU(sa *sad.SA, mtu int) int {
	n := mtu - outerOverhead(sa) - protoOverhead(sa, 0)
	// Overhead(0) includes padding for an empty payload; align down so
	// that padding never pushes the packet over.
	return n - 16
}
