package sad

import "sync/atomic"

// shardCount is how many pieces the SAD's maps are cut into, by SPI.
const shardCount = 256

// shards is a map of SAs by a key with an SPI, cut into shardCount
// copy-on-write pieces: a lookup loads one piece's map without a lock or
// an allocation, and an install or delete copies only the piece of its
// SPI. One copy-on-write map of every SA made each install copy all of
// them (quadratic: at 10,000 tunnels the copies were most of an install's
// cost and garbage, issue 15 goal 3). Writers serialize on DB.mu.
type shards[K comparable] struct {
	p [shardCount]atomic.Pointer[map[K]*SA]
}

func (s *shards[K]) shard(spi uint32) *atomic.Pointer[map[K]*SA] {
	// SPIs are random (kmd) or configured (manual): mix them a little so
	// that configured ones in sequence spread too.
	return &s.p[(spi^spi>>8^spi>>16^spi>>24)%shardCount]
}

func (s *shards[K]) get(spi uint32, k K) *SA {
	if m := s.shard(spi).Load(); m != nil {
		return (*m)[k]
	}
	return nil
}

// put sets k; the caller holds DB.mu.
func (s *shards[K]) put(spi uint32, k K, sa *SA) {
	p := s.shard(spi)
	var old map[K]*SA
	if m := p.Load(); m != nil {
		old = *m
	}
	n := make(map[K]*SA, len(old)+1)
	for k, v := range old {
		n[k] = v
	}
	n[k] = sa
	p.Store(&n)
}

// del removes k; the caller holds DB.mu.
func (s *shards[K]) del(spi uint32, k K) {
	p := s.shard(spi)
	m := p.Load()
	if m == nil {
		return
	}
	if _, ok := (*m)[k]; !ok {
		return
	}
	n := make(map[K]*SA, len(*m))
	for x, v := range *m {
		if x != k {
			n[x] = v
		}
	}
	p.Store(&n)
}

// each calls f for every SA.
func (s *shards[K]) each(f func(k K, sa *SA)) {
	for i := range s.p {
		if m := s.p[i].Load(); m != nil {
			for k, v := range *m {
				f(k, v)
			}
		}
	}
}

// count returns the number of SAs.
func (s *shards[K]) count() int {
	n := 0
	for i := range s.p {
		if m := s.p[i].Load(); m != nil {
			n += len(*m)
		}
	}
	return n
}
