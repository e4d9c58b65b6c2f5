package ikesa

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/sitesec/sitesec/kmd/message"
)

// Table finds the IKE SA of each received datagram, creates responder SAs
// for new IKE_SA_INIT requests and answers with a COOKIE (RFC 7296 section
// 2.6) while too many SAs are half-open. It is safe for concurrent use: SA
// goroutines report their events while the receive path routes.
type Table struct {
	// Lookup finds the configuration that answers a peer, or nil.
	Lookup func(local, remote netip.AddrPort) *Config
	// Options are given to responder SAs.
	Options Options
	// CookieThreshold is the number of half-open SAs from which new
	// requests must return a cookie (0: never); CookiePerSource the same
	// for the half-open SAs of one source (see Source).
	CookieThreshold, CookiePerSource int
	// MaxHalfOpen and MaxHalfOpenPerSource refuse new IKE_SA_INIT
	// requests, cookie or not, while that many SAs are half-open in all
	// or from one source (0: no limit). A cookie only proves that the
	// source address is real; these bound what real sources can hold.
	MaxHalfOpen, MaxHalfOpenPerSource int

	mu       sync.Mutex
	bySPI    map[uint64]*SA
	halfOpen map[halfKey]*SA
	perSrc   map[netip.Prefix]int
	// The cookie secrets (RFC 7296 section 2.6): secret is in use since
	// rotated, generation gen; old (gen-1) is still accepted until
	// oldUntil.
	secret, old       [32]byte
	gen               byte
	rotated, oldUntil time.Time
	haveKey           bool

	// Stats of the receive path.
	Stats TableStats
}

// CookieSecretLifetime is how long one cookie secret is used;
// CookieSecretGrace how long cookies made with the previous one are
// still accepted (a peer that got a cookie just before the rotation).
const (
	CookieSecretLifetime = 5 * time.Minute
	CookieSecretGrace    = time.Minute
)

// TableStats count what the receive path dropped or answered itself.
type TableStats struct {
	Malformed, UnknownSPI, NoConfig, CookiesSent, CookiesRejected uint64
	// HalfOpenRefused counts IKE_SA_INIT requests dropped at
	// MaxHalfOpen or MaxHalfOpenPerSource.
	HalfOpenRefused uint64
}

// Source is what the half-open limits count per: an IPv4 address, or an
// IPv6 /64 (one subscriber or host gets a /64 and can use all of it).
func Source(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

type halfKey struct {
	spii   uint64
	remote netip.AddrPort
}

// Add registers sa under its local SPI.
func (t *Table) Add(sa *SA) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bySPI == nil {
		t.bySPI = map[uint64]*SA{}
	}
	t.bySPI[sa.LocalSPI()] = sa
}

// Remove forgets sa.
func (t *Table) Remove(sa *SA) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bySPI[sa.LocalSPI()] == sa {
		delete(t.bySPI, sa.LocalSPI())
	}
	t.forget(sa)
}

// forget drops sa from the half-open SAs.
func (t *Table) forget(sa *SA) {
	for k, v := range t.halfOpen {
		if v == sa {
			delete(t.halfOpen, k)
			src := Source(k.remote.Addr())
			if t.perSrc[src]--; t.perSrc[src] <= 0 {
				delete(t.perSrc, src)
			}
		}
	}
}

// Matured tells the table that a responder SA is no longer half-open.
func (t *Table) Matured(sa *SA) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forget(sa)
}

// All returns every registered SA.
func (t *Table) All() []*SA {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*SA, 0, len(t.bySPI))
	for _, sa := range t.bySPI {
		out = append(out, sa)
	}
	return out
}

// HalfOpen counts responder SAs still in IKE_SA_INIT.
func (t *Table) HalfOpen() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.halfOpen)
}

// Route decodes a datagram and returns the SA that must handle it (a new
// responder SA for a fresh IKE_SA_INIT, already registered), or a reply
// to send back statelessly (a COOKIE request), or an error for a datagram
// to drop and count.
func (t *Table) Route(local, remote netip.AddrPort, raw []byte) (*SA, *message.Packet, []byte, error) {
	pkt, err := message.Parse(raw)
	if err != nil {
		t.mu.Lock()
		t.Stats.Malformed++
		t.mu.Unlock()
		return nil, nil, nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bySPI == nil {
		t.bySPI, t.halfOpen = map[uint64]*SA{}, map[halfKey]*SA{}
	}
	if t.halfOpen == nil {
		t.halfOpen = map[halfKey]*SA{}
	}
	if t.perSrc == nil {
		t.perSrc = map[netip.Prefix]int{}
	}
	// RFC 7296 section 3.1: the responder SPI of an IKE_SA_INIT request
	// is zero. One that names an SA must not reach it (it would reset
	// the SA's addresses or signed octets).
	if pkt.Exchange == message.IKESAInit && !pkt.IsResponse() && pkt.SPIr != 0 {
		t.Stats.Malformed++
		return nil, nil, nil, errors.New("ikesa: IKE_SA_INIT request with a responder SPI")
	}
	// The SPI this side chose is SPIr when the original initiator sent
	// the message, else SPIi.
	if pkt.IsInitiator() && pkt.SPIr == 0 {
		if pkt.Exchange != message.IKESAInit || pkt.IsResponse() {
			t.Stats.Malformed++
			return nil, nil, nil, errors.New("ikesa: zero responder SPI outside IKE_SA_INIT")
		}
		k := halfKey{pkt.SPIi, remote}
		if sa := t.halfOpen[k]; sa != nil {
			return sa, pkt, nil, nil // a retransmitted IKE_SA_INIT
		}
		src := Source(remote.Addr())
		if (t.MaxHalfOpen > 0 && len(t.halfOpen) >= t.MaxHalfOpen) ||
			(t.MaxHalfOpenPerSource > 0 && t.perSrc[src] >= t.MaxHalfOpenPerSource) {
			t.Stats.HalfOpenRefused++
			return nil, nil, nil, fmt.Errorf("ikesa: too many half-open IKE SAs (%d, %d from %s)", len(t.halfOpen), t.perSrc[src], src)
		}
		need := (t.CookieThreshold > 0 && len(t.halfOpen) >= t.CookieThreshold) ||
			(t.CookiePerSource > 0 && t.perSrc[src] >= t.CookiePerSource)
		if need {
			if reply, err := t.cookie(remote, pkt); reply != nil || err != nil {
				return nil, nil, reply, err
			}
		}
		cfg := t.Lookup(local, remote)
		if cfg == nil {
			t.Stats.NoConfig++
			return nil, nil, nil, fmt.Errorf("ikesa: no configuration for peer %s", remote)
		}
		sa, err := NewResponder(cfg, local, remote, pkt.SPIi, t.Options)
		if err != nil {
			return nil, nil, nil, err
		}
		t.bySPI[sa.LocalSPI()] = sa
		t.halfOpen[k] = sa
		t.perSrc[src]++
		return sa, pkt, nil, nil
	}
	spi := pkt.SPIi
	if pkt.IsInitiator() {
		spi = pkt.SPIr
	}
	sa := t.bySPI[spi]
	if sa == nil || (sa.Initiator == pkt.IsInitiator()) {
		t.Stats.UnknownSPI++
		return nil, nil, nil, fmt.Errorf("ikesa: no IKE SA %016x", spi)
	}
	return sa, pkt, nil, nil
}

// cookie applies RFC 7296 section 2.6 to a new IKE_SA_INIT request that
// needs one: a request without a valid cookie gets one. Cookie =
// <generation> | HMAC-SHA-256(secret, Ni | IPi | SPIi). The secret is
// replaced every CookieSecretLifetime; cookies of the previous one are
// accepted for CookieSecretGrace more.
func (t *Table) cookie(remote netip.AddrPort, pkt *message.Packet) ([]byte, error) {
	now := t.Options.Now()
	if !t.haveKey || now.Sub(t.rotated) >= CookieSecretLifetime {
		next := [32]byte{}
		if _, err := io.ReadFull(t.Options.Rand, next[:]); err != nil {
			return nil, err
		}
		if t.haveKey {
			t.old, t.oldUntil = t.secret, now.Add(CookieSecretGrace)
		}
		t.secret, t.rotated, t.haveKey = next, now, true
		t.gen++
	}
	var ni []byte
	var got []byte
	for i, p := range pkt.Payloads {
		switch p := p.(type) {
		case *message.Nonce:
			ni = p.Data
		case *message.Notify:
			if p.NotifyType == message.NotifyCookie && i == 0 {
				got = p.Data
			}
		}
	}
	mac := func(gen byte, secret *[32]byte) []byte {
		h := hmac.New(sha256.New, secret[:])
		h.Write(ni)
		h.Write(remote.Addr().Unmap().AsSlice())
		h.Write(binary.BigEndian.AppendUint64(nil, pkt.SPIi))
		return h.Sum([]byte{gen})
	}
	want := mac(t.gen, &t.secret)
	if len(got) > 0 {
		switch {
		case got[0] == t.gen && hmac.Equal(got, want):
			return nil, nil
		case got[0] == t.gen-1 && now.Before(t.oldUntil) && hmac.Equal(got, mac(t.gen-1, &t.old)):
			return nil, nil
		}
		t.Stats.CookiesRejected++
	}
	t.Stats.CookiesSent++
	m := &message.Message{
		Header:   message.Header{SPIi: pkt.SPIi, Exchange: message.IKESAInit, Flags: message.FlagResponse, MessageID: 0},
		Payloads: []message.Payload{&message.Notify{NotifyType: message.NotifyCookie, Data: want}},
	}
	b, err := m.Marshal()
	return b, err
}
