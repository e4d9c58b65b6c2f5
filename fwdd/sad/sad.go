// Package sad is fwdd's security association database (RFC 4301 section
// 4.4.2): installed ESP SAs by SPI for inbound packets and by service set
// and traffic selectors for outbound ones, their counters, soft and hard
// lifetimes, sequence numbering with rollover warning, and the persisted
// sequence high-water marks that keep a restarted fwdd from reusing a
// (key, sequence number) pair.
//
// Lookups are lock free (copy-on-write maps behind atomic pointers);
// installs and deletes serialize on a mutex.
package sad

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sitesec/sitesec/fwdd/ah"
	"github.com/sitesec/sitesec/fwdd/esp"
	"github.com/sitesec/sitesec/fwdd/replay"
	"github.com/sitesec/sitesec/proto/pb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Defaults.
const (
	// DefaultChunk is how many sequence numbers a mark reserves ahead.
	DefaultChunk = 1 << 18
	// DefaultRolloverMargin: the rollover-near event fires this many
	// numbers before the sequence space ends (RFC 4303 section 3.3.3: the
	// sender must rekey before the counter cycles).
	DefaultRolloverMargin = 1 << 24
	activityEvery         = 10 * time.Second
)

// ErrSequenceExhausted: the outbound SA used its last sequence number and
// must not send again (RFC 4303 section 3.3.3).
var ErrSequenceExhausted = errors.New("sad: sequence number space exhausted")

// InKey finds an inbound SA: SPI and the local address it arrived on.
type InKey struct {
	SPI   uint32
	Local netip.Addr
}

// OutKey names an outbound SA: SPI and remote gateway.
type OutKey struct {
	SPI    uint32
	Remote netip.Addr
}

// Peer is where an outbound SA sends: address, port and encapsulation,
// which an SAUpdate may change (a NAT mapping that moved).
type Peer struct {
	Addr  netip.AddrPort
	Encap pb.Encapsulation
}

// SA is one installed SA.
type SA struct {
	Config *pb.SA // as installed; never modified
	// Cipher is the ESP transform (nil for AH); Auth the AH transform
	// (nil for ESP). A bundle has both: AH outside, ESP inside.
	Cipher    *esp.Cipher
	Auth      *ah.Auth
	Replay    replay.Window // inbound only
	Counters  Counters
	Local     netip.Addr
	Installed time.Time

	peer         atomic.Pointer[Peer]
	opts         atomic.Pointer[DataOptions]
	notInstalled atomic.Bool
	expired      atomic.Bool

	// Outbound sequencing.
	seq      atomic.Uint64 // last number handed out
	reserved atomic.Uint64 // persisted mark
	limit    uint64
	margin   uint64
	resMu    sync.Mutex
	markKey  MarkKey
	prefetch atomic.Bool

	softFired, hardFired, rollFired atomic.Bool
	lastActivity                    atomic.Int64 // unix seconds of the last activity event
	lastDecrypted                   uint64

	db  *DB
	src []netip.Prefix // local selectors as prefixes, nil for any
	dst []netip.Prefix
	// tunnel names the tunnel an outbound SA carries (tunnelKey).
	tunnel string
	// superseded: the SA left its set's outbound order (replaced or
	// deleted); inOrder is the writers' view of the same (DB.mu).
	superseded atomic.Bool
	inOrder    bool
}

// DataOptions are an SA's data-plane options (SPEC section 3). fwdd owns them
// (the plan's, App.fillOptions): a commit that changes them changes the
// installed SAs of the tunnel at once (SetOptions), with no rekey. The
// anti-replay window is not among them: it is the SA's from its install
// (a window in use is not resized).
type DataOptions struct {
	DF                  pb.DFBit
	TunnelMTU, TTL, TOS uint32
	CopyTTL, CopyTOS    bool
	Passive             bool // passive-mode-tunneling
	HeaderIntegrity     bool // header-integrity-check
	NoTraceroute        bool // no-ipsec-tunnel-in-traceroute
}

// OptionsOf are the options an SA configuration carries.
func OptionsOf(c *pb.SA) DataOptions {
	return DataOptions{DF: c.GetDontFragment(), TunnelMTU: c.GetTunnelMtu(), TTL: c.GetTtl(), TOS: c.GetTos(),
		CopyTTL: c.GetCopyTtl(), CopyTOS: c.GetCopyTos(), Passive: c.GetPassiveModeTunneling(),
		HeaderIntegrity: c.GetHeaderIntegrityCheck(), NoTraceroute: c.GetNoIpsecTunnelInTraceroute()}
}

// Options are the SA's data-plane options now; the pipeline reads them
// per packet.
func (sa *SA) Options() *DataOptions { return sa.opts.Load() }

// SetOptions replaces the SA's data-plane options; the packets after it
// use them. It reports whether they changed.
func (sa *SA) SetOptions(o DataOptions) bool {
	if *sa.opts.Load() == o {
		return false
	}
	sa.opts.Store(&o)
	return true
}

// Inbound reports the SA's direction.
func (sa *SA) Inbound() bool { return sa.Config.GetDirection() == pb.Direction_DIRECTION_INBOUND }

// Peer returns where the SA sends.
func (sa *SA) Peer() Peer { return *sa.peer.Load() }

// NotInstalled reports the Not Installed state of SPEC section 3.
func (sa *SA) NotInstalled() bool { return sa.notInstalled.Load() }

// Usable reports whether the SA may carry traffic.
func (sa *SA) Usable() bool { return !sa.expired.Load() && !sa.notInstalled.Load() }

// Sequence returns the last sequence number used (outbound) or the highest
// received (inbound).
func (sa *SA) Sequence() uint64 {
	if sa.Inbound() {
		return sa.Replay.Top()
	}
	return sa.seq.Load()
}

// NextSeq hands out the next outbound sequence number. It reserves the
// next chunk on disk before the reserved range runs out (in the
// background when half of it is left, synchronously if that did not
// finish in time), and reports the approaching rollover once.
func (sa *SA) NextSeq() (uint64, error) {
	s := sa.seq.Add(1)
	if s > sa.limit || s == 0 {
		sa.seq.Store(sa.limit)
		return 0, ErrSequenceExhausted
	}
	res := sa.reserved.Load()
	if s > res {
		if err := sa.reserve(s); err != nil {
			return 0, err
		}
	} else if res-s < sa.db.chunk/2 && sa.prefetch.CompareAndSwap(false, true) {
		sa.db.bg.Add(1)
		go func() {
			defer sa.db.bg.Done()
			_ = sa.reserve(sa.reserved.Load() + 1)
			sa.prefetch.Store(false)
		}()
	}
	if s >= sa.limit-sa.margin && sa.rollFired.CompareAndSwap(false, true) {
		sa.db.emit(sa, pb.SAEventKind_SA_EVENT_KIND_SEQUENCE_ROLLOVER_NEAR, "")
	}
	return s, nil
}

// reserve persists a mark covering s and a chunk beyond.
func (sa *SA) reserve(s uint64) error {
	sa.resMu.Lock()
	defer sa.resMu.Unlock()
	if s <= sa.reserved.Load() {
		return nil
	}
	mark := min(s+sa.db.chunk, sa.limit)
	if mark < s { // overflow
		mark = sa.limit
	}
	if err := sa.db.marks.Reserve(sa.markKey, mark); err != nil {
		return err
	}
	sa.reserved.Store(mark)
	return nil
}

// Account counts one packet of n bytes through the SA and checks the byte
// and packet lifetimes (RFC 4301 section 4.4.2.1).
func (sa *SA) Account(n int) {
	var bytes, pkts uint64
	if sa.Inbound() {
		if sa.Auth != nil {
			bytes = sa.Counters.c[AHInputBytes].Add(uint64(n))
			pkts = sa.Counters.c[AHInputPackets].Add(1)
		}
		if sa.Cipher != nil {
			bytes = sa.Counters.c[DecryptedBytes].Add(uint64(n))
			pkts = sa.Counters.c[DecryptedPackets].Add(1)
		}
		if pkts == 1 {
			// The first packet on a new inbound SA tells kmd at once that
			// the peer sends on it, so a responder waiting to switch its
			// outbound SA (make-before-break) need not wait for Sweep.
			sa.lastActivity.Store(sa.db.now().Unix())
			sa.db.emit(sa, pb.SAEventKind_SA_EVENT_KIND_INBOUND_ACTIVITY, "first packet")
		}
	} else {
		if sa.Auth != nil {
			bytes = sa.Counters.c[AHOutputBytes].Add(uint64(n))
			pkts = sa.Counters.c[AHOutputPackets].Add(1)
		}
		if sa.Cipher != nil {
			bytes = sa.Counters.c[EncryptedBytes].Add(uint64(n))
			pkts = sa.Counters.c[EncryptedPackets].Add(1)
		}
	}
	lt := sa.Config.GetLifetime()
	if lt == nil {
		return
	}
	if (lt.HardBytes != 0 && bytes >= lt.HardBytes) || (lt.HardPackets != 0 && pkts >= lt.HardPackets) {
		sa.hardExpire()
		return
	}
	if (lt.SoftBytes != 0 && bytes >= lt.SoftBytes) || (lt.SoftPackets != 0 && pkts >= lt.SoftPackets) {
		if sa.softFired.CompareAndSwap(false, true) {
			sa.db.emit(sa, pb.SAEventKind_SA_EVENT_KIND_SOFT_LIFETIME, "")
		}
	}
}

func (sa *SA) hardExpire() {
	if sa.hardFired.CompareAndSwap(false, true) {
		sa.expired.Store(true)
		sa.db.emit(sa, pb.SAEventKind_SA_EVENT_KIND_HARD_LIFETIME, "")
	}
}

// Matches reports whether the packet src -> dst is covered by the SA's
// traffic selectors (local, remote), seen from the sending side.
func (sa *SA) Matches(src, dst netip.Addr) bool {
	return inPrefixes(sa.src, src) && inPrefixes(sa.dst, dst)
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	if ps == nil {
		return true
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Options configure a DB.
type Options struct {
	// Dir holds the sequence marks (<root>/var/db/fwdd); "" keeps them in
	// memory.
	Dir            string
	Chunk          uint64
	RolloverMargin uint64
	Now            func() time.Time
	Rand           io.Reader // CBC IV generator seeds; nil means crypto/rand
	// EventQueue bounds the events not yet taken from Events.
	EventQueue int
}

// DB is the SAD.
type DB struct {
	mu  sync.Mutex // serializes writers
	in  shards[InKey]
	out shards[OutKey]
	// bySet is the outbound lookup order of each service set; the map is
	// replaced when a set appears, each set's order is appended to in
	// place (order).
	bySet atomic.Pointer[map[string]*order]
	// spans counts the remote selector ranges of the outbound SAs
	// (RemoteSpans); under mu.
	spans  map[Span]int
	marks  *Marks
	chunk  uint64
	margin uint64
	now    func() time.Time
	rand   io.Reader
	events chan *pb.SAEvent
	lost   atomic.Uint64
	bg     sync.WaitGroup // background mark reservations

	setMu   sync.Mutex
	retired map[string]*Counters // counters of deleted SAs, per service set
	setOnly map[string]*Counters // counters that belong to no SA
}

// Open returns an empty DB with the marks of o.Dir loaded.
func Open(o Options) (*DB, error) {
	m, err := OpenMarks(o.Dir)
	if err != nil {
		return nil, err
	}
	db := &DB{marks: m, chunk: o.Chunk, margin: o.RolloverMargin, now: o.Now, rand: o.Rand,
		retired: map[string]*Counters{}, setOnly: map[string]*Counters{}}
	if db.chunk == 0 {
		db.chunk = DefaultChunk
	}
	if db.margin == 0 {
		db.margin = DefaultRolloverMargin
	}
	if db.now == nil {
		db.now = time.Now
	}
	q := o.EventQueue
	if q <= 0 {
		q = 1024
	}
	db.events = make(chan *pb.SAEvent, q)
	db.bySet.Store(&map[string]*order{})
	return db, nil
}

// Events delivers SA events (lifetimes, rollover, deletion, activity,
// acquire). Events that find the queue full are dropped and counted.
func (db *DB) Events() <-chan *pb.SAEvent { return db.events }

// Close waits for background mark writes.
func (db *DB) Close() { db.bg.Wait() }

// LostEvents counts events dropped on a full queue.
func (db *DB) LostEvents() uint64 { return db.lost.Load() }

func (db *DB) push(ev *pb.SAEvent) {
	select {
	case db.events <- ev:
	default:
		db.lost.Add(1)
	}
}

func (db *DB) emit(sa *SA, kind pb.SAEventKind, detail string) {
	c := sa.Config
	db.push(&pb.SAEvent{
		Kind:       kind,
		Sa:         sa.key(),
		ServiceSet: c.GetServiceSet(), Rule: c.GetRule(), Term: c.GetTerm(), IkeSa: c.GetIkeSa(),
		Detail:  detail,
		At:      timestamppb.New(db.now()),
		Bytes:   sa.Counters.Get(EncryptedBytes) + sa.Counters.Get(DecryptedBytes),
		Packets: sa.Counters.Get(EncryptedPackets) + sa.Counters.Get(DecryptedPackets),
	})
}

// Acquire reports traffic that matched a policy with no SA
// (establish-tunnels on-traffic). The caller rate-limits.
func (db *DB) Acquire(set, rule, term string, pkt *pb.TrafficSelector) {
	db.push(&pb.SAEvent{Kind: pb.SAEventKind_SA_EVENT_KIND_ACQUIRE, ServiceSet: set, Rule: rule, Term: term,
		Packet: pkt, At: timestamppb.New(db.now())})
}

func (sa *SA) key() *pb.SAKey {
	k := &pb.SAKey{Spi: sa.Config.GetSpi(), Direction: sa.Config.GetDirection()}
	if sa.Inbound() {
		k.Destination = sa.Local.AsSlice()
	} else {
		k.Destination = sa.Peer().Addr.Addr().AsSlice()
	}
	return k
}

func endpoint(e *pb.Endpoint) (netip.AddrPort, error) {
	a, ok := netip.AddrFromSlice(e.GetAddress())
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("address of %d bytes", len(e.GetAddress()))
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(e.GetPort())), nil
}

func selectorPrefixes(ts []*pb.TrafficSelector) []netip.Prefix {
	var out []netip.Prefix
	for _, t := range ts {
		s, ok1 := netip.AddrFromSlice(t.GetStartAddress())
		e, ok2 := netip.AddrFromSlice(t.GetEndAddress())
		if !ok1 || !ok2 {
			continue
		}
		out = append(out, RangePrefixes(s.Unmap(), e.Unmap())...)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// RangePrefixes covers the address range [s, e] with prefixes (an RFC 7296
// selector is a range; most are a single prefix).
func RangePrefixes(s, e netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	if s.BitLen() != e.BitLen() || e.Less(s) {
		return nil
	}
	for i := 0; i < 64 && !e.Less(s); i++ {
		bits := s.BitLen()
		// Grow the prefix while it stays aligned and inside the range.
		for bits > 0 {
			p := netip.PrefixFrom(s, bits-1).Masked()
			if p.Addr() != s || lastAddr(p).Compare(e) > 0 {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(s, bits)
		out = append(out, p)
		last := lastAddr(p)
		next := last.Next()
		if !next.IsValid() || last == e {
			break
		}
		s = next
	}
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// transforms makes the ESP and AH transforms of c by its protocol.
func (db *DB) transforms(c *pb.SA) (*esp.Cipher, *ah.Auth, error) {
	switch c.GetProtocol() {
	case pb.IPsecProtocol_IPSEC_PROTOCOL_UNSPECIFIED, pb.IPsecProtocol_IPSEC_PROTOCOL_ESP:
		ci, err := esp.New(esp.Config{SPI: c.GetSpi(), Encryption: c.GetEncryptionAlgorithm(),
			Authentication: c.GetAuthenticationAlgorithm(), EncryptionKey: c.GetEncryptionKey(),
			AuthenticationKey: c.GetAuthenticationKey(), ESN: c.GetExtendedSequenceNumbers(), Rand: db.rand})
		return ci, nil, err
	case pb.IPsecProtocol_IPSEC_PROTOCOL_AH, pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE:
	default:
		return nil, nil, fmt.Errorf("protocol %v", c.GetProtocol())
	}
	if udp := c.GetEncapsulation(); udp != pb.Encapsulation_ENCAPSULATION_UNSPECIFIED && udp != pb.Encapsulation_ENCAPSULATION_ESP {
		// RFC 4302 covers the outer addresses; RFC 3948 has no AH.
		return nil, nil, errors.New("AH cannot be UDP-encapsulated")
	}
	au, err := ah.New(ah.Config{SPI: c.GetSpi(), Authentication: c.GetAuthenticationAlgorithm(),
		Key: c.GetAuthenticationKey(), ESN: c.GetExtendedSequenceNumbers()})
	if err != nil {
		return nil, nil, err
	}
	if c.GetProtocol() == pb.IPsecProtocol_IPSEC_PROTOCOL_AH {
		if c.GetEncryptionAlgorithm() != "" || len(c.GetEncryptionKey()) != 0 {
			return nil, nil, errors.New("AH takes no encryption")
		}
		return nil, au, nil
	}
	if c.GetAuxiliarySpi() < 256 {
		return nil, nil, fmt.Errorf("bundle: ESP SPI %d is reserved", c.GetAuxiliarySpi())
	}
	if enc := c.GetEncryptionAlgorithm(); enc == "" || enc == "null" {
		return nil, nil, errors.New("bundle: ESP needs an encryption algorithm")
	}
	// The ESP of a bundle encrypts only: AH authenticates (RFC 4301
	// section 4.5, Junos `protocol bundle`).
	ci, err := esp.New(esp.Config{SPI: c.GetAuxiliarySpi(), Encryption: c.GetEncryptionAlgorithm(),
		EncryptionKey: c.GetEncryptionKey(), ESN: c.GetExtendedSequenceNumbers(), Rand: db.rand})
	if err != nil {
		return nil, nil, err
	}
	return ci, au, nil
}

// IsAH reports whether the SA's outer protocol is AH (AH or bundle).
func (sa *SA) IsAH() bool { return sa.Auth != nil }

// build checks one pb.SA and makes the SA; nothing is installed yet.
func (db *DB) build(c *pb.SA, owned bool) (*SA, error) {
	if c.GetSpi() < 256 {
		// RFC 4303 section 2.1: 1..255 are reserved, 0 is never sent.
		return nil, fmt.Errorf("sad: SPI %d is reserved", c.GetSpi())
	}
	dir := c.GetDirection()
	if dir != pb.Direction_DIRECTION_INBOUND && dir != pb.Direction_DIRECTION_OUTBOUND {
		return nil, fmt.Errorf("sad: SA %d: no direction", c.GetSpi())
	}
	local, err := endpoint(c.GetLocal())
	if err != nil {
		return nil, fmt.Errorf("sad: SA %d local gateway: %w", c.GetSpi(), err)
	}
	remote, err := endpoint(c.GetRemote())
	if err != nil {
		return nil, fmt.Errorf("sad: SA %d remote gateway: %w", c.GetSpi(), err)
	}
	ci, au, err := db.transforms(c)
	if err != nil {
		return nil, fmt.Errorf("sad: SA %d: %w", c.GetSpi(), err)
	}
	if !owned {
		c = proto.Clone(c).(*pb.SA)
	}
	sa := &SA{Config: c, Cipher: ci, Auth: au, Local: local.Addr(), Installed: db.now(), db: db}
	sa.peer.Store(&Peer{Addr: remote, Encap: c.GetEncapsulation()})
	o := OptionsOf(c)
	sa.opts.Store(&o)
	if dir == pb.Direction_DIRECTION_INBOUND {
		if err := sa.Replay.Init(int(c.GetReplayWindow()), c.GetExtendedSequenceNumbers()); err != nil {
			return nil, fmt.Errorf("sad: SA %d: %w", c.GetSpi(), err)
		}
		// Inbound: the peer sends from its selectors to ours.
		sa.src = selectorPrefixes(c.GetRemoteSelectors())
		sa.dst = selectorPrefixes(c.GetLocalSelectors())
		return sa, nil
	}
	sa.src = selectorPrefixes(c.GetLocalSelectors())
	sa.dst = selectorPrefixes(c.GetRemoteSelectors())
	sa.limit = 1<<32 - 1
	if c.GetExtendedSequenceNumbers() {
		sa.limit = 1<<64 - 1
	}
	sa.margin = min(db.margin, sa.limit/2)
	sa.tunnel = sa.tunnelKey()
	sa.markKey = MarkKey{SPI: c.GetSpi(), Dst: remote.Addr(), Fingerprint: fingerprint(c.GetEncryptionKey(), c.GetAuthenticationKey())}
	start := max(c.GetInitialSequence(), 1)
	if m, ok := db.marks.Get(sa.markKey); ok && m >= start {
		// Numbers up to m may have gone out before a restart.
		start = m + 1
	}
	if start > sa.limit {
		return nil, fmt.Errorf("sad: SA %d: %w", c.GetSpi(), ErrSequenceExhausted)
	}
	sa.seq.Store(start - 1)
	if m, ok := db.marks.Get(sa.markKey); ok {
		sa.reserved.Store(m)
	}
	return sa, nil
}

func (sa *SA) tunnelKey() string {
	c := sa.Config
	return fmt.Sprintf("%s/%s/%s/%d/%s", c.GetServiceSet(), c.GetRule(), c.GetTerm(), c.GetTunnelIndex(), sa.Peer().Addr.Addr())
}

// Install adds SAs: every one is checked first and none is installed if
// one fails. Inbound SAs go in before outbound ones (RFC 7296 section 2.8,
// make-before-break). An outbound SA takes over from the outbound SA
// replacesSPI, or from the one of the same tunnel, for new packets.
func (db *DB) Install(cs []*pb.SA, replacesSPI uint32) error {
	return db.install(cs, replacesSPI, false)
}

// InstallOwned is Install for SAs the caller hands over and never touches
// again (a decoded install request): they are kept as they are, not
// copied (the copy was about 1 KB of each SA's memory; issue 15 goal 3).
func (db *DB) InstallOwned(cs []*pb.SA, replacesSPI uint32) error {
	return db.install(cs, replacesSPI, true)
}

func (db *DB) install(cs []*pb.SA, replacesSPI uint32, owned bool) error {
	built := make([]*SA, 0, len(cs))
	for _, c := range cs {
		sa, err := db.build(c, owned)
		if err != nil {
			return err
		}
		built = append(built, sa)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, sa := range built {
		if sa.Inbound() {
			spi := sa.Config.GetSpi()
			k := InKey{spi, sa.Local}
			if old := db.in.get(spi, k); old != nil {
				db.retire(old) // reinstalled: keep what it counted
			}
			db.in.put(spi, k, sa)
		}
	}
	for _, sa := range built {
		if sa.Inbound() {
			continue
		}
		spi := sa.Config.GetSpi()
		ok := OutKey{spi, sa.Peer().Addr.Addr()}
		if old := db.out.get(spi, ok); old != nil {
			db.retire(old)
			db.addSpans(old, -1)
		}
		db.out.put(spi, ok, sa)
		db.addSpans(sa, 1)
		o := db.order(sa.Config.GetServiceSet())
		// What the new SA takes over from: the tunnel's SA, and the SA
		// replacesSPI of the set (found in the SPI's piece of the map).
		if v := o.current[sa.tunnel]; v != nil {
			o.remove(v)
		}
		if replacesSPI != 0 {
			if m := db.out.shard(replacesSPI).Load(); m != nil {
				for k, v := range *m {
					if k.SPI == replacesSPI && v != sa && v.Config.GetServiceSet() == sa.Config.GetServiceSet() {
						o.remove(v)
					}
				}
			}
		}
		o.add(sa)
	}
	return nil
}

// order is a service set's outbound SAs in the order a lookup tries
// them: the newest first. The list holds them oldest first and grows in
// place (a lookup reads the length it loaded; an append writes past it);
// an SA that leaves the order is marked superseded and skipped, and the
// list is compacted once they are the majority. Copying the set's list
// per install was quadratic (issue 15 goal 3: at 10,000 tunnels each
// install copied and filtered 10,000 entries). Writers hold DB.mu.
type order struct {
	list atomic.Pointer[[]*SA]
	// Writers only: the tunnel's SA in the order, by tunnel key, and
	// how many superseded entries the list still holds.
	current map[string]*SA
	dead    int
}

// order returns set's order, making it; the caller holds DB.mu.
func (db *DB) order(set string) *order {
	sets := *db.bySet.Load()
	if o := sets[set]; o != nil {
		return o
	}
	o := &order{current: map[string]*SA{}}
	o.list.Store(&[]*SA{})
	n := make(map[string]*order, len(sets)+1)
	for k, v := range sets {
		n[k] = v
	}
	n[set] = o
	db.bySet.Store(&n)
	return o
}

func (o *order) add(sa *SA) {
	l := append(*o.list.Load(), sa)
	sa.inOrder = true
	o.current[sa.tunnel] = sa
	o.list.Store(&l)
}

func (o *order) remove(sa *SA) {
	if !sa.inOrder {
		return
	}
	sa.inOrder = false
	sa.superseded.Store(true)
	if o.current[sa.tunnel] == sa {
		delete(o.current, sa.tunnel)
	}
	o.dead++
	l := *o.list.Load()
	if o.dead < 32 || o.dead*2 < len(l) {
		return
	}
	keep := make([]*SA, 0, len(l)-o.dead+len(l)/4)
	for _, x := range l {
		if x.inOrder {
			keep = append(keep, x)
		}
	}
	o.dead = 0
	o.list.Store(&keep)
}

// live returns the SAs of the order, newest first.
func (o *order) live() []*SA {
	l := *o.list.Load()
	out := make([]*SA, 0, len(l))
	for i := len(l) - 1; i >= 0; i-- {
		if !l[i].superseded.Load() {
			out = append(out, l[i])
		}
	}
	return out
}

// Inbound returns the inbound SA for an SPI that arrived on local.
func (db *DB) Inbound(spi uint32, local netip.Addr) *SA {
	return db.in.get(spi, InKey{spi, local})
}

// Outbound returns the newest usable outbound SA of the service set whose
// selectors cover src -> dst.
func (db *DB) Outbound(set string, src, dst netip.Addr) *SA {
	o := (*db.bySet.Load())[set]
	if o == nil {
		return nil
	}
	l := *o.list.Load()
	for i := len(l) - 1; i >= 0; i-- {
		if sa := l[i]; !sa.superseded.Load() && sa.Usable() && sa.Matches(src, dst) {
			return sa
		}
	}
	return nil
}

// Filter selects SAs for Delete: a key list, a service set or an IKE SA.
type Filter struct {
	Keys       []*pb.SAKey
	ServiceSet string
	IKESA      string
	// Type limits a service-set delete to dynamic or manual SAs (0: all).
	Type pb.SAType
}

func (f Filter) match(sa *SA) bool {
	c := sa.Config
	if f.Type != pb.SAType_SA_TYPE_UNSPECIFIED && c.GetType() != f.Type {
		return false
	}
	if f.ServiceSet != "" && c.GetServiceSet() == f.ServiceSet {
		return true
	}
	if f.IKESA != "" && c.GetIkeSa() == f.IKESA {
		return true
	}
	for _, k := range f.Keys {
		if k.GetSpi() != c.GetSpi() || (k.GetDirection() != 0 && k.GetDirection() != c.GetDirection()) {
			continue
		}
		d, ok := netip.AddrFromSlice(k.GetDestination())
		if !ok || len(k.GetDestination()) == 0 {
			return true
		}
		if sa.Inbound() && d.Unmap() == sa.Local || !sa.Inbound() && d.Unmap() == sa.Peer().Addr.Addr() {
			return true
		}
	}
	return false
}

// Delete removes the SAs f selects, folds their counters into their
// service set's, forgets the marks of dynamic ones, and reports a DELETED
// event for each. It returns how many it removed.
func (db *DB) Delete(f Filter, reason string) int {
	db.mu.Lock()
	defer db.mu.Unlock()
	gone := db.find(f)
	if len(gone) == 0 {
		return 0
	}
	for _, sa := range gone {
		spi := sa.Config.GetSpi()
		if sa.Inbound() {
			db.in.del(spi, InKey{spi, sa.Local})
		} else {
			db.out.del(spi, OutKey{spi, sa.Peer().Addr.Addr()})
			db.order(sa.Config.GetServiceSet()).remove(sa)
			db.addSpans(sa, -1)
		}
	}
	for _, sa := range gone {
		db.retire(sa)
		if !sa.Inbound() && sa.Config.GetType() != pb.SAType_SA_TYPE_MANUAL {
			_ = db.marks.Forget(sa.markKey)
		}
		db.emit(sa, pb.SAEventKind_SA_EVENT_KIND_DELETED, reason)
		wipe(sa)
	}
	return len(gone)
}

// find returns the SAs f selects: a key list by lookups, a service set or
// IKE SA by a walk over every SA.
func (db *DB) find(f Filter) []*SA {
	var out []*SA
	if f.ServiceSet == "" && f.IKESA == "" {
		seen := map[*SA]bool{}
		add := func(sa *SA) {
			if sa != nil && !seen[sa] && f.match(sa) {
				seen[sa] = true
				out = append(out, sa)
			}
		}
		for _, k := range f.Keys {
			spi := k.GetSpi()
			d, ok := netip.AddrFromSlice(k.GetDestination())
			if !ok || len(k.GetDestination()) == 0 {
				// No destination: any SA with the SPI.
				if m := db.in.shard(spi).Load(); m != nil {
					for x, sa := range *m {
						if x.SPI == spi {
							add(sa)
						}
					}
				}
				if m := db.out.shard(spi).Load(); m != nil {
					for x, sa := range *m {
						if x.SPI == spi {
							add(sa)
						}
					}
				}
				continue
			}
			d = d.Unmap()
			add(db.in.get(spi, InKey{spi, d}))
			add(db.out.get(spi, OutKey{spi, d}))
		}
		return out
	}
	db.in.each(func(_ InKey, sa *SA) {
		if f.match(sa) {
			out = append(out, sa)
		}
	})
	db.out.each(func(_ OutKey, sa *SA) {
		if f.match(sa) {
			out = append(out, sa)
		}
	})
	return out
}

// wipe zeroes the key material a deleted dynamic SA kept from its install
// message (issue 14, low), so it does not linger in memory. Manual SAs'
// keys belong to the configuration, which installs them again. The
// cipher's own key schedule (crypto/aes, crypto/hmac) cannot be reached;
// it is dropped with the SA.
func wipe(sa *SA) {
	if sa.Config.GetType() == pb.SAType_SA_TYPE_MANUAL {
		return
	}
	clear(sa.Config.GetEncryptionKey())
	clear(sa.Config.GetAuthenticationKey())
}

// retire stops an SA and folds its counters into its service set's.
func (db *DB) retire(sa *SA) {
	sa.expired.Store(true)
	db.setMu.Lock()
	r := db.retired[sa.Config.GetServiceSet()]
	if r == nil {
		r = new(Counters)
		db.retired[sa.Config.GetServiceSet()] = r
	}
	db.setMu.Unlock()
	sa.Counters.AddTo(r)
}

// Update changes an installed SA's peer or Not Installed state.
func (db *DB) Update(u *pb.SAUpdate) error {
	var hit *SA
	if found := db.find(Filter{Keys: []*pb.SAKey{u.GetSa()}}); len(found) > 0 {
		hit = found[0]
	}
	if hit == nil {
		return fmt.Errorf("sad: no SA with SPI %d", u.GetSa().GetSpi())
	}
	hit.notInstalled.Store(u.GetNotInstalled())
	if u.GetRemote() != nil || u.GetEncapsulation() != pb.Encapsulation_ENCAPSULATION_UNSPECIFIED {
		p := hit.Peer()
		if u.GetRemote() != nil {
			ap, err := endpoint(u.GetRemote())
			if err != nil {
				return fmt.Errorf("sad: update of SA %d: %w", u.GetSa().GetSpi(), err)
			}
			if hit.Inbound() || ap.Addr() == p.Addr.Addr() {
				p.Addr = ap
			} else {
				return fmt.Errorf("sad: update of SA %d: the remote address is part of the SA's key; install a new SA", u.GetSa().GetSpi())
			}
		}
		if e := u.GetEncapsulation(); e != pb.Encapsulation_ENCAPSULATION_UNSPECIFIED {
			p.Encap = e
		}
		hit.peer.Store(&p)
	}
	return nil
}

// All returns every installed SA, inbound first.
func (db *DB) All() []*SA {
	out := make([]*SA, 0, db.in.count()+db.out.count())
	db.in.each(func(_ InKey, sa *SA) { out = append(out, sa) })
	db.out.each(func(_ OutKey, sa *SA) { out = append(out, sa) })
	return out
}

// SetCounters returns the counters of a service set that belong to no SA
// (no SA, invalid SPI, rule lookup failures), creating them.
func (db *DB) SetCounters(set string) *Counters {
	db.setMu.Lock()
	defer db.setMu.Unlock()
	c := db.setOnly[set]
	if c == nil {
		c = new(Counters)
		db.setOnly[set] = c
	}
	return c
}

// ServiceSetTotals sums a service set's counters: its SAs, its deleted
// SAs and the counters that belong to no SA.
func (db *DB) ServiceSetTotals(set string) *Counters {
	sum := new(Counters)
	for _, sa := range db.All() {
		if sa.Config.GetServiceSet() == set {
			sa.Counters.AddTo(sum)
		}
	}
	db.setMu.Lock()
	if r := db.retired[set]; r != nil {
		r.AddTo(sum)
	}
	if r := db.setOnly[set]; r != nil {
		r.AddTo(sum)
	}
	db.setMu.Unlock()
	return sum
}

// ClearStatistics zeroes the counters of a service set ("" for all).
func (db *DB) ClearStatistics(set string) {
	for _, sa := range db.All() {
		if set == "" || sa.Config.GetServiceSet() == set {
			sa.Counters.Reset()
		}
	}
	db.setMu.Lock()
	defer db.setMu.Unlock()
	for name, c := range db.retired {
		if set == "" || name == set {
			c.Reset()
		}
	}
	for name, c := range db.setOnly {
		if set == "" || name == set {
			c.Reset()
		}
	}
}

// Sweep runs the time-based duties: soft and hard time lifetimes
// (seconds since install), removal of hard-expired SAs, and inbound
// activity hints for DPD. The data plane calls it about once a second.
func (db *DB) Sweep() {
	now := db.now()
	var expired []*pb.SAKey
	for _, sa := range db.All() {
		lt := sa.Config.GetLifetime()
		age := now.Sub(sa.Installed)
		if lt != nil {
			if lt.HardSeconds != 0 && age >= time.Duration(lt.HardSeconds)*time.Second {
				sa.hardExpire()
			} else if lt.SoftSeconds != 0 && age >= time.Duration(lt.SoftSeconds)*time.Second {
				if sa.softFired.CompareAndSwap(false, true) {
					db.emit(sa, pb.SAEventKind_SA_EVENT_KIND_SOFT_LIFETIME, "")
				}
			}
		}
		if sa.expired.Load() {
			k := sa.key()
			expired = append(expired, k)
			continue
		}
		if sa.Inbound() {
			d := sa.Counters.Get(DecryptedPackets)
			if d != sa.lastDecrypted && now.Unix()-sa.lastActivity.Load() >= int64(activityEvery/time.Second) {
				sa.lastDecrypted = d
				sa.lastActivity.Store(now.Unix())
				db.emit(sa, pb.SAEventKind_SA_EVENT_KIND_INBOUND_ACTIVITY, "")
			}
		}
	}
	if len(expired) > 0 {
		db.Delete(Filter{Keys: expired}, "hard lifetime expired")
	}
}

// Marks returns the persisted high-water marks, for the SASyncRequest a
// restarted fwdd sends kmd.
func (db *DB) Marks() []*pb.SequenceMark {
	var out []*pb.SequenceMark
	for k, v := range db.marks.All() {
		out = append(out, &pb.SequenceMark{
			Sa:       &pb.SAKey{Spi: k.SPI, Direction: pb.Direction_DIRECTION_OUTBOUND, Destination: k.Dst.AsSlice()},
			Sequence: v,
		})
	}
	return out
}
