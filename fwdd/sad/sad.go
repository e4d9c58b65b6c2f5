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
	Config    *pb.SA // as installed; never modified
	Cipher    *esp.Cipher
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
		bytes = sa.Counters.c[DecryptedBytes].Add(uint64(n))
		pkts = sa.Counters.c[DecryptedPackets].Add(1)
		if pkts == 1 {
			// The first packet on a new inbound SA tells kmd at once that
			// the peer sends on it, so a responder waiting to switch its
			// outbound SA (make-before-break) need not wait for Sweep.
			sa.lastActivity.Store(sa.db.now().Unix())
			sa.db.emit(sa, pb.SAEventKind_SA_EVENT_KIND_INBOUND_ACTIVITY, "first packet")
		}
	} else {
		bytes = sa.Counters.c[EncryptedBytes].Add(uint64(n))
		pkts = sa.Counters.c[EncryptedPackets].Add(1)
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
	mu     sync.Mutex // serializes writers
	in     atomic.Pointer[map[InKey]*SA]
	out    atomic.Pointer[map[OutKey]*SA]
	bySet  atomic.Pointer[map[string][]*SA] // outbound lookup order, newest first
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
	db.in.Store(&map[InKey]*SA{})
	db.out.Store(&map[OutKey]*SA{})
	db.bySet.Store(&map[string][]*SA{})
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

// build checks one pb.SA and makes the SA; nothing is installed yet.
func (db *DB) build(c *pb.SA) (*SA, error) {
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
	ci, err := esp.New(esp.Config{SPI: c.GetSpi(), Encryption: c.GetEncryptionAlgorithm(),
		Authentication: c.GetAuthenticationAlgorithm(), EncryptionKey: c.GetEncryptionKey(),
		AuthenticationKey: c.GetAuthenticationKey(), ESN: c.GetExtendedSequenceNumbers(), Rand: db.rand})
	if err != nil {
		return nil, fmt.Errorf("sad: SA %d: %w", c.GetSpi(), err)
	}
	sa := &SA{Config: proto.Clone(c).(*pb.SA), Cipher: ci, Local: local.Addr(), Installed: db.now(), db: db}
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
	built := make([]*SA, 0, len(cs))
	for _, c := range cs {
		sa, err := db.build(c)
		if err != nil {
			return err
		}
		built = append(built, sa)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	in := clone(*db.in.Load())
	out := clone(*db.out.Load())
	for _, sa := range built {
		if sa.Inbound() {
			k := InKey{sa.Config.GetSpi(), sa.Local}
			if old := in[k]; old != nil {
				db.retire(old) // reinstalled: keep what it counted
			}
			in[k] = sa
		}
	}
	db.in.Store(&in)
	bySet := cloneSets(*db.bySet.Load())
	for _, sa := range built {
		if sa.Inbound() {
			continue
		}
		ok := OutKey{sa.Config.GetSpi(), sa.Peer().Addr.Addr()}
		if old := out[ok]; old != nil {
			db.retire(old)
		}
		out[ok] = sa
		set := sa.Config.GetServiceSet()
		list := []*SA{sa}
		for _, o := range bySet[set] {
			if o.Config.GetSpi() == replacesSPI || o.tunnelKey() == sa.tunnelKey() || o == sa {
				continue
			}
			list = append(list, o)
		}
		bySet[set] = list
	}
	db.out.Store(&out)
	db.bySet.Store(&bySet)
	return nil
}

func clone[K comparable](m map[K]*SA) map[K]*SA {
	n := make(map[K]*SA, len(m)+1)
	for k, v := range m {
		n[k] = v
	}
	return n
}

func cloneSets(m map[string][]*SA) map[string][]*SA {
	n := make(map[string][]*SA, len(m)+1)
	for k, v := range m {
		n[k] = v
	}
	return n
}

// Inbound returns the inbound SA for an SPI that arrived on local.
func (db *DB) Inbound(spi uint32, local netip.Addr) *SA {
	return (*db.in.Load())[InKey{spi, local}]
}

// Outbound returns the newest usable outbound SA of the service set whose
// selectors cover src -> dst.
func (db *DB) Outbound(set string, src, dst netip.Addr) *SA {
	for _, sa := range (*db.bySet.Load())[set] {
		if sa.Usable() && sa.Matches(src, dst) {
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
	in := clone(*db.in.Load())
	out := clone(*db.out.Load())
	var gone []*SA
	for k, sa := range in {
		if f.match(sa) {
			delete(in, k)
			gone = append(gone, sa)
		}
	}
	for k, sa := range out {
		if f.match(sa) {
			delete(out, k)
			gone = append(gone, sa)
		}
	}
	if len(gone) == 0 {
		return 0
	}
	bySet := cloneSets(*db.bySet.Load())
	for set, list := range bySet {
		var keep []*SA
		for _, sa := range list {
			if !f.match(sa) {
				keep = append(keep, sa)
			}
		}
		bySet[set] = keep
	}
	db.in.Store(&in)
	db.out.Store(&out)
	db.bySet.Store(&bySet)
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
	f := Filter{Keys: []*pb.SAKey{u.GetSa()}}
	var hit *SA
	for _, sa := range db.All() {
		if f.match(sa) {
			hit = sa
			break
		}
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
	var out []*SA
	for _, sa := range *db.in.Load() {
		out = append(out, sa)
	}
	for _, sa := range *db.out.Load() {
		out = append(out, sa)
	}
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
