package plane

import (
	"net/netip"
	"sync"
	"time"
)

// Drop describes a dropped packet for the trace file (flag packet). The
// plane reports at most DropReportsPerSecond of them, so an attack cannot
// fill the disk; the counters count them all. RFC 4303 section 3.4.2 asks
// for packets with an unknown SPI to be audited this way.
type Drop struct {
	Reason   string
	Set      string // the service set, when known
	SPI      uint32
	Src, Dst netip.AddrPort // outer addresses inbound, inner outbound
}

// DropReportsPerSecond bounds the drop reports.
const DropReportsPerSecond = 20

type dropLimiter struct {
	mu     sync.Mutex
	window time.Time
	n      int
}

// report hands d to p.OnDrop unless this second's reports are used up.
func (p *Plane) report(d Drop) {
	f := p.OnDrop
	if f == nil {
		return
	}
	now := p.Now()
	l := &p.drops
	l.mu.Lock()
	if now.Sub(l.window) >= time.Second {
		l.window, l.n = now, 0
	}
	l.n++
	ok := l.n <= DropReportsPerSecond
	l.mu.Unlock()
	if ok {
		f(d)
	}
}
