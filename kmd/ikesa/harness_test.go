package ikesa

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/transform"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type datagram struct {
	from, to *side
	src, dst netip.AddrPort
	raw      []byte
}

// world connects two sides through an in-memory wire with an optional NAT
// in front of the left side.
type world struct {
	t     testing.TB
	clock *clock
	queue []datagram
	// nat rewrites the left side's source address as the right side sees
	// it (zero: no NAT).
	nat  netip.AddrPort
	drop func(d datagram) bool
	l, r *side
}

type side struct {
	name      string
	w         *world
	addr      netip.Addr
	table     *Table
	installed map[uint32]*ChildSA
	events    []Event
	uninst    int
	keepalive int
	replaced  []uint32
	fail      bool
}

func (s *side) peer() *side {
	if s == s.w.l {
		return s.w.r
	}
	return s.w.l
}

func (s *side) Send(sa *SA, pkts [][]byte, keepalive bool) {
	if keepalive {
		s.keepalive++
		return
	}
	for _, p := range pkts {
		src, dst := sa.Local, sa.Remote
		if s == s.w.l && s.w.nat.IsValid() {
			src = netip.AddrPortFrom(s.w.nat.Addr(), src.Port()+1000)
		}
		if s == s.w.r && s.w.nat.IsValid() {
			// Answers go to the NAT, which maps them back.
			dst = netip.AddrPortFrom(s.w.l.addr, dst.Port()-1000)
			src = sa.Local
		}
		s.w.queue = append(s.w.queue, datagram{from: s, to: s.peer(), src: src, dst: dst, raw: append([]byte{}, p...)})
	}
}

func (s *side) Install(sa *SA, c *ChildSA, replaces *ChildSA) error {
	if s.fail {
		return fmt.Errorf("fwdd is away")
	}
	if _, dup := s.installed[c.SPIIn]; dup {
		return fmt.Errorf("duplicate SPI %08x", c.SPIIn)
	}
	s.installed[c.SPIIn] = c
	if replaces != nil {
		s.replaced = append(s.replaced, replaces.SPIIn)
	}
	return nil
}

func (s *side) Uninstall(sa *SA, c *ChildSA) {
	if _, ok := s.installed[c.SPIIn]; !ok {
		s.w.t.Errorf("%s: uninstall of unknown %08x", s.name, c.SPIIn)
	}
	delete(s.installed, c.SPIIn)
	s.uninst++
}

func (s *side) Event(sa *SA, e Event) {
	s.events = append(s.events, e)
	switch e.Kind {
	case EventIKERekeyed:
		s.table.Add(e.New)
	case EventDead:
		s.table.Remove(sa)
	case EventEstablished:
		s.table.Matured(sa)
	}
}

// sas returns the live SAs of a side.
func (s *side) sas() []*SA {
	var out []*SA
	for _, sa := range s.table.All() {
		if sa.State != StateDead {
			out = append(out, sa)
		}
	}
	return out
}

func (s *side) only(t *testing.T) *SA {
	t.Helper()
	var live []*SA
	for _, sa := range s.sas() {
		if sa.State == StateEstablished {
			live = append(live, sa)
		}
	}
	if len(live) != 1 {
		t.Fatalf("%s: %d established IKE SAs", s.name, len(live))
	}
	return live[0]
}

func testConfig(psk string) *Config {
	ike, _ := transform.IKESuite("aes-256-gcm", "sha-256", "group19")
	esp, _ := transform.ESPSuite("aes-128-cbc", "hmac-sha-256-128", "")
	return &Config{
		Name:          "test",
		IKEProposals:  transform.Proposals([]transform.Suite{ike}, nil),
		ESPProposals:  transform.Proposals([]transform.Suite{esp}, nil),
		Auth:          PSK(psk),
		LocalTS:       []message.Selector{PrefixSelector(netip.MustParsePrefix("10.0.0.0/16"))},
		RemoteTS:      []message.Selector{PrefixSelector(netip.MustParsePrefix("10.1.0.0/16"))},
		IKELifetime:   time.Hour,
		ChildLifetime: 8 * time.Hour,
		NATTraversal:  true,
		NATKeepalive:  20 * time.Second,
	}
}

func mirror(c *Config) *Config {
	m := *c
	m.LocalTS, m.RemoteTS = c.RemoteTS, c.LocalTS
	return &m
}

func newWorld(t testing.TB, seed uint64, lcfg, rcfg *Config) *world {
	w := &world{t: t, clock: &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	mk := func(name, addr string, cfg *Config, s uint64) *side {
		sd := &side{name: name, w: w, addr: netip.MustParseAddr(addr), installed: map[uint32]*ChildSA{}}
		sd.table = &Table{
			Options: Options{Rand: rand.NewChaCha8([32]byte{byte(seed), byte(s)}), Now: w.clock.now, Host: sd},
			Lookup:  func(local, remote netip.AddrPort) *Config { return cfg },
		}
		return sd
	}
	w.l = mk("left", "192.0.2.1", lcfg, 1)
	w.r = mk("right", "198.51.100.1", rcfg, 2)
	return w
}

// initiate starts an IKE SA from the left side.
func (w *world) initiate(cfg *Config) *SA {
	sa, err := NewInitiator(cfg, netip.AddrPortFrom(w.l.addr, 500), netip.AddrPortFrom(w.r.addr, 500), w.l.table.Options)
	if err != nil {
		w.t.Fatal(err)
	}
	w.l.table.Add(sa)
	if err := sa.Start(); err != nil {
		w.t.Fatal(err)
	}
	return sa
}

// step delivers one queued datagram; it reports false when none is left.
func (w *world) step() bool {
	if len(w.queue) == 0 {
		return false
	}
	d := w.queue[0]
	w.queue = w.queue[1:]
	if w.drop != nil && w.drop(d) {
		return true
	}
	sa, pkt, reply, err := d.to.table.Route(d.dst, d.src, d.raw)
	if reply != nil {
		w.queue = append(w.queue, datagram{from: d.to, to: d.from, src: d.dst, dst: d.src, raw: reply})
		return true
	}
	if err != nil {
		w.t.Logf("%s: route: %v", d.to.name, err)
		return true
	}
	if err := sa.Handle(d.dst, d.src, pkt); err != nil {
		w.t.Logf("%s: handle: %v", d.to.name, err)
	}
	return true
}

// run delivers until the wire is quiet.
func (w *world) run() {
	for i := 0; w.step(); i++ {
		if i > 1000 {
			w.t.Fatal("no quiescence")
		}
	}
}

// advance moves the clock and ticks every SA that is due.
func (w *world) advance(d time.Duration) {
	end := w.clock.t.Add(d)
	for i := 0; ; i++ {
		if i > 10000 {
			w.t.Fatal("advance: deadlines do not move")
		}
		next := end
		for _, s := range []*side{w.l, w.r} {
			for _, sa := range s.sas() {
				if dl := sa.Deadline(); !dl.IsZero() && dl.Before(next) {
					next = dl
				}
			}
		}
		if next.After(w.clock.t) {
			w.clock.t = next
		}
		for _, s := range []*side{w.l, w.r} {
			for _, sa := range s.sas() {
				if dl := sa.Deadline(); !dl.IsZero() && !dl.After(w.clock.t) {
					sa.Tick()
				}
			}
		}
		w.run()
		if !next.Before(end) {
			return
		}
	}
}

// childPairs checks that every installed CHILD SA on one side has its
// mirror on the other, keys crossed.
func (w *world) checkChildren(t *testing.T, want int) {
	t.Helper()
	if len(w.l.installed) != want || len(w.r.installed) != want {
		t.Fatalf("installed CHILD SAs: left %d right %d, want %d", len(w.l.installed), len(w.r.installed), want)
	}
	for spi, c := range w.l.installed {
		p := w.r.installed[c.SPIOut]
		if p == nil || p.SPIOut != spi {
			t.Fatalf("left CHILD SA %08x has no mirror", spi)
		}
		if string(p.EncrIn) != string(c.EncrOut) || string(p.IntegOut) != string(c.IntegIn) || p.Reqid == 0 {
			t.Fatalf("CHILD SA %08x keys do not cross", spi)
		}
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
