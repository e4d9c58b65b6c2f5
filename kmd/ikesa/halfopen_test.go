package ikesa

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/kmd/message"
)

// floodTable is a responder Table with kmd's limits (server.init) and a
// template IKE_SA_INIT request from a real initiator.
type floodTable struct {
	t        *testing.T
	table    *Table
	clock    *clock
	template *message.Packet
	spi      uint64
}

func newFloodTable(t *testing.T) *floodTable {
	cfg := testConfig("k")
	f := &floodTable{t: t, clock: &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	f.table = &Table{
		Options:              Options{Rand: rand.NewChaCha8([32]byte{42}), Now: f.clock.now},
		Lookup:               func(local, remote netip.AddrPort) *Config { return cfg },
		CookieThreshold:      64,
		CookiePerSource:      2,
		MaxHalfOpen:          512,
		MaxHalfOpenPerSource: 10,
	}
	w := newWorld(t, 30, cfg, mirror(cfg))
	w.initiate(cfg)
	p, err := message.Parse(w.queue[0].raw)
	if err != nil {
		t.Fatal(err)
	}
	f.template = p
	return f
}

// request is a new IKE_SA_INIT (fresh SPIi) with cookie as its first
// payload when one is given.
func (f *floodTable) request(spi uint64, cookie []byte) []byte {
	m := &message.Message{Header: f.template.Header}
	m.SPIi = spi
	if cookie != nil {
		m.Payloads = append(m.Payloads, &message.Notify{NotifyType: message.NotifyCookie, Data: cookie})
	}
	m.Payloads = append(m.Payloads, f.template.Payloads...)
	b, err := m.Marshal()
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

var responder = netip.MustParseAddrPort("198.51.100.1:500")

// open sends one IKE_SA_INIT from src, answering a COOKIE request as a
// real initiator does; it returns "sa", "cookie" (a cookie was needed and
// the retry made an SA), or the refusal.
func (f *floodTable) open(src netip.AddrPort) string {
	f.spi++
	sa, _, reply, err := f.table.Route(responder, src, f.request(f.spi, nil))
	if err != nil {
		return err.Error()
	}
	if sa != nil {
		return "sa"
	}
	p, err := message.Parse(reply)
	if err != nil {
		f.t.Fatal(err)
	}
	cookie := p.Payloads[0].(*message.Notify).Data
	sa, _, reply, err = f.table.Route(responder, src, f.request(f.spi, cookie))
	switch {
	case err != nil:
		return err.Error()
	case reply != nil:
		return "cookie refused"
	}
	return "cookie"
}

// Issue 14 item 4: one source that answers cookies holds at most 10
// half-open SAs (it needed cookies from the third on), and all sources
// together at most 512 (cookies from the 64th on).
func TestHalfOpenLimits(t *testing.T) {
	f := newFloodTable(t)
	src := netip.MustParseAddrPort("192.0.2.10:500")
	var got []string
	for range 2000 {
		got = append(got, f.open(src))
	}
	want := strings.Repeat("sa ", 2) + strings.Repeat("cookie ", 8)
	if s := strings.Join(got[:10], " ") + " "; s != want {
		t.Fatalf("first 10 from one source: %s", s)
	}
	for i, g := range got[10:] {
		if !strings.Contains(g, "too many half-open") {
			t.Fatalf("request %d from one source: %s", 11+i, g)
		}
	}
	if n := f.table.HalfOpen(); n != 10 || f.table.Stats.HalfOpenRefused != 1990 {
		t.Fatalf("one source holds %d half-open SAs, %d refused", n, f.table.Stats.HalfOpenRefused)
	}
	// IPv6 sources count per /64.
	v6 := func(s string) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(s), 500) }
	for i := range 10 {
		if g := f.open(v6(fmt.Sprintf("2001:db8:1:2::%x", i+1))); g != "sa" && g != "cookie" {
			t.Fatalf("IPv6 request %d: %s", i, g)
		}
	}
	if g := f.open(v6("2001:db8:1:2:ffff::1")); !strings.Contains(g, "too many") {
		t.Fatalf("11th from one /64: %s", g)
	}
	if g := f.open(v6("2001:db8:1:3::1")); g != "sa" {
		t.Fatalf("another /64: %s", g)
	}
	// Thousands of sources: cookies from the 64th half-open SA, none past 512.
	counts := map[string]int{}
	for i := range 3000 {
		a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		g := f.open(netip.AddrPortFrom(a, 500))
		if strings.Contains(g, "too many") {
			g = "refused"
		}
		counts[g]++
	}
	// 21 were half-open before: 43 more without a cookie, then 448 with.
	if counts["sa"] != 64-21 || counts["cookie"] != 512-64 || counts["refused"] != 3000-(512-21) {
		t.Fatalf("3000 sources: %v", counts)
	}
	if n := f.table.HalfOpen(); n != 512 {
		t.Fatalf("%d half-open", n)
	}
	// An SA that completes IKE_AUTH or dies frees its place.
	for _, sa := range f.table.All()[:5] {
		f.table.Remove(sa)
	}
	if g := f.open(netip.MustParseAddrPort("203.0.113.1:500")); g != "cookie" {
		t.Fatalf("after 5 left: %s", g)
	}
}

// RFC 7296 section 2.6: the cookie secret changes every
// CookieSecretLifetime; a cookie of the previous secret is accepted for
// CookieSecretGrace, then refused.
func TestCookieSecretRotation(t *testing.T) {
	f := newFloodTable(t)
	f.table.CookiePerSource = 0
	f.table.CookieThreshold = 1
	src := netip.MustParseAddrPort("192.0.2.20:500")
	if g := f.open(src); g != "sa" {
		t.Fatal(g)
	}
	cookieFor := func(spi uint64) []byte {
		_, _, reply, err := f.table.Route(responder, src, f.request(spi, nil))
		if reply == nil {
			t.Fatalf("no cookie: %v", err)
		}
		p, _ := message.Parse(reply)
		return p.Payloads[0].(*message.Notify).Data
	}
	accepted := func(spi uint64, c []byte) bool {
		sa, _, _, _ := f.table.Route(responder, src, f.request(spi, c))
		return sa != nil
	}
	c1 := cookieFor(100)
	c2 := cookieFor(101)
	f.clock.t = f.clock.t.Add(CookieSecretLifetime)
	c3 := cookieFor(102) // rotates
	if c3[0] == c1[0] {
		t.Fatal("the secret generation did not change")
	}
	if !accepted(100, c1) {
		t.Fatal("a cookie of the previous secret refused within the grace")
	}
	f.clock.t = f.clock.t.Add(CookieSecretGrace)
	if accepted(101, c2) {
		t.Fatal("a cookie of the previous secret accepted after the grace")
	}
	if !accepted(102, c3) {
		t.Fatal("a current cookie refused")
	}
	c4 := cookieFor(103)
	c4[len(c4)-1] ^= 1
	if accepted(103, c4) || f.table.Stats.CookiesRejected != 2 {
		t.Fatalf("forged cookie accepted or not counted (%d rejected)", f.table.Stats.CookiesRejected)
	}
}
