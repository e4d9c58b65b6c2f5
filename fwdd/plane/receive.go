package plane

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/sitesec/sitesec/fwdd/ah"
	"github.com/sitesec/sitesec/fwdd/esp"
	"github.com/sitesec/sitesec/fwdd/packet"
	"github.com/sitesec/sitesec/fwdd/replay"
	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/proto/pb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func isClosed(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

// inJob is one ESP packet on its way in.
type inJob struct {
	d     *Datagram
	sa    *sad.SA
	seq   uint64
	inner []byte
	nh    byte
	err   error
}

// Receiver is the state of one outside reader: reuse it for every batch
// that reader gets, from one goroutine.
type Receiver struct {
	p      *Plane
	jobs   []inJob
	writes map[*Inside][][]byte
	wg     sync.WaitGroup
	openFn func(i int)
}

// NewReceiver returns a Receiver for one reader goroutine.
func (p *Plane) NewReceiver() *Receiver {
	r := &Receiver{p: p, jobs: make([]inJob, 0, MaxBatch), writes: map[*Inside][][]byte{}}
	r.openFn = r.open
	return r
}

// NATKeepalive is the one-byte payload of RFC 3948 section 2.3.
const NATKeepalive = 0xff

// Receive runs the inbound pipeline over a batch of datagrams. Their Data
// are decrypted in place; the caller may reuse the buffers when it
// returns. The inner packet of an ESP datagram starts at least
// esp.HeaderLen+8 bytes into Data's buffer, which TUN writes with a
// virtio header rely on.
func (r *Receiver) Receive(ds []Datagram) {
	r.Open(ds)
	r.Deliver()
}

// Open is the first half of Receive: demultiplexing, the in-order stage
// before decryption, and the decryption (in parallel, the caller taking
// part). Deliver finishes the batch; ds and its buffers must stay
// untouched until it returned. An outside reader runs Open on the next
// batch while another goroutine delivers this one (wire_linux.go).
func (r *Receiver) Open(ds []Datagram) {
	p := r.p
	r.jobs = r.jobs[:0]
	for i := range ds {
		d := &ds[i]
		switch d.Kind {
		case KindIKE:
			p.punt(d, d.Data)
			continue
		case KindNATT:
			// RFC 3948 section 2.2: a zero non-ESP marker means IKE; a
			// single 0xFF byte is a NAT keepalive.
			if len(d.Data) == 1 && d.Data[0] == NATKeepalive {
				continue
			}
			if len(d.Data) >= 4 && binary.BigEndian.Uint32(d.Data) == 0 {
				p.punt(d, d.Data[4:])
				continue
			}
		case KindUDPEncap:
			if len(d.Data) == 1 && d.Data[0] == NATKeepalive {
				continue
			}
		}
		r.classify(d)
	}
	p.Workers.Run(len(r.jobs), r.openFn, &r.wg)
}

// Deliver is the second half of Receive: the in-order stage after
// decryption (anti-replay update, checks, statistics) and the batched TUN
// writes, for the batch of the last Open.
func (r *Receiver) Deliver() {
	for i := range r.jobs {
		r.deliver(&r.jobs[i])
	}
	r.jobs = r.jobs[:0]
	for in, bufs := range r.writes {
		if len(bufs) > 0 {
			in.write(bufs, innerOffset)
		}
		r.writes[in] = bufs[:0]
	}
}

// innerOffset is where, in the slices Receive hands the TUN device, the
// inner packet starts: the ESP header and the shortest IV lie before it.
const innerOffset = esp.HeaderLen + 8

func (p *Plane) punt(d *Datagram, ike []byte) {
	if p.Punt == nil || len(ike) == 0 {
		return
	}
	if !p.punts.allow(d.Remote.Addr(), p.Now()) {
		p.report(Drop{Reason: "IKE punt rate limit", Src: d.Remote, Dst: d.Local})
		return
	}
	var set string
	for _, s := range p.SPD().Sets {
		if s.LocalGateway == d.Local.Addr() {
			set = s.Name
			break
		}
	}
	p.Punt(&pb.IKEDatagram{
		Local:      &pb.Endpoint{Address: d.Local.Addr().AsSlice(), Port: uint32(d.Local.Port())},
		Remote:     &pb.Endpoint{Address: d.Remote.Addr().AsSlice(), Port: uint32(d.Remote.Port())},
		Payload:    append([]byte(nil), ike...),
		ServiceSet: set,
		ReceivedAt: timestamppb.New(p.Now()),
	})
}

// classifyAH is classify for an AH packet (AH or a bundle): the SA by
// the AH SPI, the replay pre-check by AH's sequence number.
func (r *Receiver) classifyAH(d *Datagram) {
	p := r.p
	_, h, err := ah.Outer(d.Data)
	if err != nil {
		p.DB.SetCounters("").Add(sad.BadHeaders, 1)
		return
	}
	sa := p.DB.Inbound(h.SPI, d.Local.Addr())
	if sa == nil || !sa.Usable() || !sa.IsAH() {
		p.DB.SetCounters("").Add(sad.InvalidSPI, 1)
		p.report(Drop{Reason: "invalid SPI", SPI: h.SPI, Src: d.Remote, Dst: d.Local, Packet: d.Data})
		return
	}
	seq := sa.Replay.Infer(h.Seq)
	if err := sa.Replay.Check(seq); err != nil {
		countReplay(sa, err)
		p.report(Drop{Reason: err.Error(), SPI: h.SPI, Src: d.Remote, Dst: d.Local, Packet: d.Data})
		return
	}
	r.jobs = append(r.jobs, inJob{d: d, sa: sa, seq: seq})
}

// classify is the in-order stage before decryption.
func (r *Receiver) classify(d *Datagram) {
	p := r.p
	if d.Kind == KindAH {
		r.classifyAH(d)
		return
	}
	spi, err := esp.SPIOf(d.Data)
	if err != nil {
		p.DB.SetCounters("").Add(sad.BadHeaders, 1)
		return
	}
	sa := p.DB.Inbound(spi, d.Local.Addr())
	if sa == nil || !sa.Usable() || sa.IsAH() {
		// RFC 4303 section 3.4.2: no SA, drop (and audit, rate-limited).
		p.DB.SetCounters("").Add(sad.InvalidSPI, 1)
		p.report(Drop{Reason: "invalid SPI", SPI: spi, Src: d.Remote, Dst: d.Local, Packet: d.Data, ESP: true})
		return
	}
	seq := sa.Replay.Infer(esp.SeqOf(d.Data))
	if err := sa.Replay.Check(seq); err != nil {
		countReplay(sa, err)
		p.report(Drop{Reason: err.Error(), SPI: spi, Src: d.Remote, Dst: d.Local, Packet: d.Data, ESP: true})
		return
	}
	r.jobs = append(r.jobs, inJob{d: d, sa: sa, seq: seq})
}

func countReplay(sa *sad.SA, err error) {
	switch {
	case errors.Is(err, replay.ErrTooOld):
		sa.Counters.Add(sad.ReplayBeforeWindow, 1)
	case errors.Is(err, replay.ErrReplayed):
		sa.Counters.Add(sad.Replayed, 1)
	default:
		sa.Counters.Add(sad.BadHeaders, 1)
	}
}

// errBundle: what AH protects in a bundle is not the bundle's ESP SA.
var errBundle = errors.New("bundle: AH does not carry the SA's ESP")

// open is the parallel stage.
func (r *Receiver) open(i int) {
	j := &r.jobs[i]
	sa := j.sa
	if sa.Auth == nil {
		j.inner, j.nh, j.err = sa.Cipher.Open(j.d.Data, j.seq)
		return
	}
	j.inner, j.nh, j.err = sa.Auth.Open(j.d.Data, j.seq)
	if j.err != nil || sa.Cipher == nil {
		return
	}
	// Bundle: ESP inside AH, under the same outer header.
	if spi, err := esp.SPIOf(j.inner); j.nh != packet.ProtoESP || err != nil || spi != sa.Cipher.SPI() {
		j.err = errBundle
		return
	}
	seq := j.seq&^0xffffffff | uint64(esp.SeqOf(j.inner))
	j.inner, j.nh, j.err = sa.Cipher.Open(j.inner, seq)
}

// deliver is the in-order stage after decryption.
func (r *Receiver) deliver(j *inJob) {
	sa := j.sa
	if j.err != nil {
		r.p.report(Drop{Reason: j.err.Error(), SPI: sa.Config.GetSpi(), Src: j.d.Remote, Dst: j.d.Local, Packet: j.d.Data, ESP: j.d.Kind != KindAH})
		switch {
		case errors.Is(j.err, ah.ErrAuth):
			sa.Counters.Add(sad.AHAuthFailures, 1)
		case errors.Is(j.err, esp.ErrAuth):
			sa.Counters.Add(sad.AuthFailures, 1)
		case errors.Is(j.err, esp.ErrDecrypt):
			sa.Counters.Add(sad.DecryptFailures, 1)
		case errors.Is(j.err, esp.ErrPadding):
			sa.Counters.Add(sad.BadTrailers, 1)
		default:
			sa.Counters.Add(sad.BadHeaders, 1)
		}
		return
	}
	if err := sa.Replay.Accept(j.seq); err != nil {
		countReplay(sa, err) // a duplicate within this batch
		r.p.report(Drop{Reason: err.Error(), SPI: sa.Config.GetSpi(), Src: j.d.Remote, Dst: j.d.Local, Packet: j.d.Data, ESP: j.d.Kind != KindAH})
		return
	}
	switch j.nh {
	case packet.ProtoNone:
		return // RFC 4303 section 2.6: dummy packet, dropped silently
	case packet.ProtoIPIP, packet.ProtoIPv6:
	default:
		sa.Counters.Add(sad.BadTrailers, 1)
		return
	}
	info, err := packet.Parse(j.inner)
	if err != nil || (j.nh == packet.ProtoIPIP) != (info.Version == 4) {
		sa.Counters.Add(sad.IPIntegrity, 1)
		return
	}
	inner := j.inner[:info.Len]
	if o := sa.Options(); !o.Passive {
		if err := packet.Check(inner, info, o.HeaderIntegrity); err != nil {
			sa.Counters.Add(sad.IPIntegrity, 1)
			return
		}
	}
	// RFC 4301 section 5.2 step 4: the inner addresses must be covered by
	// the SA's selectors.
	if !sa.Matches(info.Src, info.Dst) {
		sa.Counters.Add(sad.TSCheckFailures, 1)
		r.p.report(Drop{Reason: "inner addresses outside the SA's traffic selectors", SPI: sa.Config.GetSpi(),
			Src: netip.AddrPortFrom(info.Src, info.SrcPort), Dst: netip.AddrPortFrom(info.Dst, info.DstPort), Packet: inner})
		return
	}
	sa.Account(len(inner))
	in := r.p.insideFor(sa)
	if in == nil {
		sa.Counters.Add(sad.Discards, 1)
		return
	}
	// The slice handed to the TUN device starts innerOffset bytes before
	// the inner packet.
	data := j.d.Data
	off := cap(data) - cap(inner)
	if off < innerOffset {
		// ESP-NULL has no IV: move the packet up into the trailer's room.
		copy(data[innerOffset:], inner)
		off = innerOffset
	}
	r.writes[in] = append(r.writes[in], data[off-innerOffset:off+len(inner)])
}

// insideFor returns the inside interface an inbound SA delivers to.
func (p *Plane) insideFor(sa *sad.SA) *Inside {
	ins := p.Insides()
	if name := sa.Config.GetInsideInterface(); name != "" {
		if in := ins[name]; in != nil {
			return in
		}
	}
	if set := p.SPD().Set(sa.Config.GetServiceSet()); set != nil {
		return ins[set.Inside]
	}
	return nil
}
