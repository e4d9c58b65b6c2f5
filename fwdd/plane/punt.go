package plane

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// IKE datagrams are handed to kmd over the bus (the punt path, DESIGN.md
// "IKE packets"). Anyone can send them, so the punt path is rate-limited
// with token buckets before anything is copied or published (issue 14
// item 4): per source (an IPv4 address or an IPv6 /64) and in all. A
// legitimate peer sends a few IKE messages per exchange; a flood from
// one source or many cannot saturate the bus or kmd.
const (
	PuntRatePerSource  = 50   // datagrams per second from one source
	PuntBurstPerSource = 100  // and its bucket's depth
	PuntRate           = 1000 // datagrams per second in all
	PuntBurst          = 2000
	// puntSources bounds the per-source buckets kept; past it, idle
	// (full) buckets are forgotten, and a new source is held to the
	// global bucket alone until there is room.
	puntSources = 4096
)

type bucket struct {
	tokens float64
	last   time.Time
}

// take refills b at rate up to burst since its last use and takes one
// token if there is one.
func (b *bucket) take(now time.Time, rate, burst float64) bool {
	b.refill(now, rate, burst)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *bucket) refill(now time.Time, rate, burst float64) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*rate)
		b.last = now
	}
}

type puntLimiter struct {
	mu      sync.Mutex
	global  *bucket
	sources map[netip.Prefix]*bucket
	swept   time.Time // the last sweep of idle buckets, at most every 100 ms
	// dropped counts the datagrams the limits dropped.
	dropped atomic.Uint64
}

// puntSource groups IPv6 sources per /64, like kmd's half-open limits.
func puntSource(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// allow reports whether a datagram from src may be punted now.
func (l *puntLimiter) allow(src netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.global == nil {
		l.global = &bucket{tokens: PuntBurst, last: now}
		l.sources = map[netip.Prefix]*bucket{}
	}
	key := puntSource(src)
	b := l.sources[key]
	if b == nil {
		if len(l.sources) >= puntSources && now.Sub(l.swept) >= 100*time.Millisecond {
			l.swept = now
			for k, o := range l.sources {
				if o.refill(now, PuntRatePerSource, PuntBurstPerSource); o.tokens >= PuntBurstPerSource {
					delete(l.sources, k)
				}
			}
		}
		b = &bucket{tokens: PuntBurstPerSource, last: now}
		if len(l.sources) < puntSources {
			l.sources[key] = b
		}
	}
	// The source's token is taken first: a flooding source spends its
	// own bucket, not the global one that other peers need.
	if !b.take(now, PuntRatePerSource, PuntBurstPerSource) {
		l.dropped.Add(1)
		return false
	}
	if !l.global.take(now, PuntRate, PuntBurst) {
		b.tokens++ // not punted: the source keeps its token
		l.dropped.Add(1)
		return false
	}
	return true
}

// PuntDropped is the number of IKE datagrams the punt rate limits
// dropped.
func (p *Plane) PuntDropped() uint64 { return p.punts.dropped.Load() }
