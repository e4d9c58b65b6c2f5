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
	// CookieThreshold is the number of half-open SAs above which new
	// requests must return a cookie (0: never).
	CookieThreshold int

	mu       sync.Mutex
	bySPI    map[uint64]*SA
	halfOpen map[halfKey]*SA
	secret   [32]byte
	haveKey  bool

	// Stats of the receive path.
	Stats TableStats
}

// TableStats count what the receive path dropped or answered itself.
type TableStats struct {
	Malformed, UnknownSPI, NoConfig, CookiesSent, CookiesRejected uint64
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
	for k, v := range t.halfOpen {
		if v == sa {
			delete(t.halfOpen, k)
		}
	}
}

// Matured tells the table that a responder SA is no longer half-open.
func (t *Table) Matured(sa *SA) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, v := range t.halfOpen {
		if v == sa {
			delete(t.halfOpen, k)
		}
	}
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
		if reply, err := t.cookie(remote, pkt); reply != nil || err != nil {
			return nil, nil, reply, err
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

// cookie applies RFC 7296 section 2.6 to a new IKE_SA_INIT request: above
// the threshold, a request without a valid cookie gets one. Cookie =
// <version> | HMAC-SHA-256(secret, Ni | IPi | SPIi).
func (t *Table) cookie(remote netip.AddrPort, pkt *message.Packet) ([]byte, error) {
	if t.CookieThreshold <= 0 || len(t.halfOpen) < t.CookieThreshold {
		return nil, nil
	}
	if !t.haveKey {
		if _, err := io.ReadFull(t.Options.Rand, t.secret[:]); err != nil {
			return nil, err
		}
		t.haveKey = true
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
	mac := hmac.New(sha256.New, t.secret[:])
	mac.Write(ni)
	mac.Write(remote.Addr().Unmap().AsSlice())
	mac.Write(binary.BigEndian.AppendUint64(nil, pkt.SPIi))
	want := append([]byte{1}, mac.Sum(nil)...)
	if got != nil && hmac.Equal(got, want) {
		return nil, nil
	}
	if got != nil {
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
