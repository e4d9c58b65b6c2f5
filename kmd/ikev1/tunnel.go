// Package ikev1 negotiates IKEv1 (RFC 2409) security associations for one
// configured tunnel: ISAKMP SAs in main or aggressive mode with
// pre-shared keys, ESP SAs by quick mode with or without PFS, NAT
// traversal (RFC 3947, RFC 3948), the informational exchange with
// DELETE and dead peer detection (RFC 3706), retransmission, and
// rekeying of both phases.
//
// A Tunnel owns every ISAKMP SA and every ESP SA pair negotiated for one
// peer: in IKEv1 the phase 2 SAs do not depend on the ISAKMP SA that
// negotiated them, so a phase 1 rekey (a new main mode) leaves them in
// place. A Tunnel is not safe for concurrent use: the server gives each
// one its own goroutine (as kmd does for IKEv2 SAs).
package ikev1

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/sitesec/sitesec/kmd/isakmp"
	"github.com/sitesec/sitesec/kmd/message"
)

// Config is what a Tunnel negotiates.
type Config struct {
	Name, ServiceSet string
	Aggressive       bool
	// Proposals are offered in order, or accepted as a responder.
	Proposals []Phase1
	PSK       []byte
	// Sig, when set, signs and verifies for the signature methods
	// (RFC 2409 section 5.1).
	Sig Signer
	// LocalID is sent in phase 1; RemoteID, when set, must accept the
	// peer's.
	LocalID  isakmp.ID
	RemoteID func(isakmp.ID) bool
	// ESP are the phase 2 transforms (their Group is the PFS group).
	ESP               []Phase2
	LocalTS, RemoteTS message.Selector
	// Allowed, when set, replaces LocalTS/RemoteTS as what a responder
	// accepts: the initiator's proxy identities must lie inside one
	// pair (local, remote) (allowed-proxy-pair of an access profile).
	Allowed       [][2]message.Selector
	Lifetime      time.Duration // ISAKMP SA
	ChildLifetime time.Duration
	NATTraversal  bool
	NATKeepalive  time.Duration
	DPDInterval   time.Duration
	DPDThreshold  int
}

// Host is what a Tunnel needs of kmd: fwdd's transmit path and SA
// installation.
type Host interface {
	Send(t *Tunnel, pkt []byte)
	Keepalive(t *Tunnel)
	// InstallIn installs the inbound SA of c; InstallOut the outbound
	// one, replacing the outbound SA of replaces (make-before-break).
	InstallIn(t *Tunnel, c *Child) error
	InstallOut(t *Tunnel, c *Child, replaces *Child) error
	Uninstall(t *Tunnel, c *Child)
	Event(t *Tunnel, e Event)
}

// Event tells the host what happened.
type Event struct {
	Kind EventKind
	SA   *ISAKMPSA
	Err  error
}

// EventKind values.
type EventKind int

const (
	EventPhase1Up EventKind = iota + 1
	EventPhase2Up
	// EventDead: the tunnel has no SA left (deleted, failed, dead peer).
	EventDead
)

// Options are injected: randomness, clock, host and an optional trace.
type Options struct {
	Rand  io.Reader
	Now   func() time.Time
	Host  Host
	Trace func(t *Tunnel, sent bool, h isakmp.Header, ps []isakmp.Payload)
}

// Timers; variables so that tests can shorten them.
var (
	// RetransmitBase, times 2^n, up to Retransmits sends (strongSwan's
	// IKEv1 defaults are 4 s, 5 tries).
	RetransmitBase = 2 * time.Second
	Retransmits    = 5
	// DeleteGrace is how long the replaced ESP SAs of a rekey stay
	// installed before they are deleted, so that packets in flight on
	// them are still accepted.
	DeleteGrace = 5 * time.Second
)

// Stats count a tunnel's IKEv1 messages.
type Stats struct {
	InPackets, OutPackets, Dropped, Retransmits, Phase2 uint64
	// Phase2Deleted counts ESP SA pairs removed (deleted, replaced by a
	// rekey, or dropped with the tunnel).
	Phase2Deleted uint64
	// DeletesIn and DeletesOut count DELETE payloads (RFC 2408 section
	// 3.15); the DPD counters R-U-THERE sent and received and the
	// R-U-THERE-ACKs that answered ours (RFC 3706 section 5).
	DeletesIn, DeletesOut             uint64
	DPDSent, DPDReceived, DPDAnswered uint64
	// Phase1 counts ISAKMP SAs established (the first, and each rekey).
	Phase1 uint64
}

// Tunnel is every IKEv1 SA of one peer.
type Tunnel struct {
	Config        *Config
	Local, Remote netip.AddrPort
	// NATLocal and NATRemote are the NAT-D results (RFC 3947 section 3.2).
	NATLocal, NATRemote bool
	SAs                 []*ISAKMPSA
	Children            []*Child
	Stats               Stats

	opts     Options
	dead     bool
	wantQM   int // quick modes to start once phase 1 is up
	activity time.Time
	dpdTries int
	dpdAt    time.Time
	kaAt     time.Time
	reqid    uint32
}

// Child is one pair of ESP SAs.
type Child struct {
	SPIIn, SPIOut     uint32 // AH's with AH or a bundle
	AuxIn, AuxOut     uint32 // ESP's in a bundle
	Suite             Phase2
	EncrIn, IntegIn   []byte
	EncrOut, IntegOut []byte
	LocalTS, RemoteTS message.Selector
	UDPEncap          bool
	Initiator         bool
	CreatedAt         time.Time
	Lifetime          time.Duration // the shorter of both sides' (0: none)
	Reqid             uint32
	rekeyAt, expireAt time.Time
	deleteAt          time.Time // set once replaced
	rekeying          bool
	outInstalled      bool
}

// OutInstalled reports whether c's outbound SA went into fwdd (a pair
// that lost a collision never has one).
func (c *Child) OutInstalled() bool { return c.outInstalled }

// New returns a tunnel between local and remote (port 500).
func New(cfg *Config, local, remote netip.AddrPort, opts Options) *Tunnel {
	now := opts.Now()
	return &Tunnel{Config: cfg, Local: local, Remote: remote, opts: opts, activity: now}
}

// Dead reports whether the tunnel ended.
func (t *Tunnel) Dead() bool { return t.dead }

// Name identifies the tunnel in traces.
func (t *Tunnel) Name() string { return t.Config.Name + "@" + t.Remote.Addr().String() }

func (t *Tunnel) now() time.Time { return t.opts.Now() }

func (t *Tunnel) random(n int) []byte {
	b := make([]byte, n)
	io.ReadFull(t.opts.Rand, b)
	return b
}

// Established returns the newest established ISAKMP SA that is not
// being replaced, else one that is, or nil.
func (t *Tunnel) Established() *ISAKMPSA {
	var old *ISAKMPSA
	for i := len(t.SAs) - 1; i >= 0; i-- {
		if sa := t.SAs[i]; sa.State == StateEstablished {
			if sa.deleteAt.IsZero() {
				return sa
			}
			if old == nil {
				old = sa
			}
		}
	}
	return old
}

// Initiate starts phase 1 if no ISAKMP SA is up or under way, then a
// quick mode.
func (t *Tunnel) Initiate() error {
	if sa := t.Established(); sa != nil {
		return t.startQuick(sa, nil)
	}
	// Queued for the phase 1 under way or started here, and only then:
	// a count left behind would start an unasked quick mode at the next
	// phase 1, which the peer takes as a rekey.
	t.wantQM++
	for _, sa := range t.SAs {
		if sa.State != StateDead {
			return nil // phase 1 under way: the quick mode follows it
		}
	}
	return t.startPhase1()
}

func (t *Tunnel) startPhase1() error {
	sa := &ISAKMPSA{t: t, Initiator: true, Aggressive: t.Config.Aggressive, exch: map[uint32]*exchange{}}
	copy(sa.ICookie[:], t.random(8))
	t.SAs = append(t.SAs, sa)
	return sa.start()
}

// MaxHalfOpen bounds the phase 1 exchanges a tunnel answers at once:
// each holds a DH key and a minute of state, and the first message is
// unauthenticated (addresses can be spoofed).
const MaxHalfOpen = 8

func (t *Tunnel) halfOpen() int {
	n := 0
	for _, sa := range t.SAs {
		if !sa.Initiator && sa.State != StateEstablished && sa.State != StateDead {
			n++
		}
	}
	return n
}

// Busy reports a phase 1 or an initiated quick mode under way.
func (t *Tunnel) Busy() bool {
	for _, sa := range t.SAs {
		if sa.State != StateEstablished && sa.State != StateDead {
			return true
		}
		for _, x := range sa.exch {
			if x.quick && x.initiator && x.state == 1 {
				return true
			}
		}
	}
	return false
}

// Handle processes one datagram addressed to this tunnel.
func (t *Tunnel) Handle(local, remote netip.AddrPort, pkt []byte) error {
	t.Stats.InPackets++
	h, body, err := isakmp.ParseHeader(pkt)
	if err != nil {
		t.Stats.Dropped++
		return err
	}
	var sa *ISAKMPSA
	for _, x := range t.SAs {
		// The initiator's first message carries no responder cookie,
		// also when retransmitted: it belongs to the SA that answered it.
		if x.ICookie == h.ICookie && (x.RCookie == h.RCookie || (x.RCookie == [8]byte{} && x.Initiator) || (h.RCookie == [8]byte{} && !x.Initiator)) && x.State != StateDead {
			sa = x
		}
	}
	if sa == nil {
		if h.RCookie != ([8]byte{}) || (h.Exchange != isakmp.ExchangeMain && h.Exchange != isakmp.ExchangeAggressive) {
			t.Stats.Dropped++
			return fmt.Errorf("ikev1: no ISAKMP SA for cookies %x/%x", h.ICookie, h.RCookie)
		}
		if t.halfOpen() >= MaxHalfOpen {
			t.Stats.Dropped++
			return errors.New("ikev1: too many half-open ISAKMP SAs")
		}
		sa = &ISAKMPSA{t: t, Aggressive: h.Exchange == isakmp.ExchangeAggressive, ICookie: h.ICookie, exch: map[uint32]*exchange{}}
		copy(sa.RCookie[:], t.random(8))
		t.SAs = append(t.SAs, sa)
	}
	switch h.Exchange {
	case isakmp.ExchangeMain, isakmp.ExchangeAggressive:
		if (h.Exchange == isakmp.ExchangeAggressive) != sa.Aggressive {
			err = errors.New("ikev1: exchange type changed")
		} else {
			err = sa.handlePhase1(local, remote, h, body, pkt)
		}
	case isakmp.ExchangeQuick:
		err = sa.handleQuick(local, remote, h, body, pkt)
	case isakmp.ExchangeInformational:
		err = sa.handleInfo(local, remote, h, body)
	default:
		err = fmt.Errorf("ikev1: exchange %v", h.Exchange)
	}
	if err != nil {
		t.Stats.Dropped++
		if sa.State != StateEstablished && sa.State != StateDead && !sa.Initiator && sa.out == nil {
			// A responder SA that never answered holds nothing.
			sa.State = StateDead
			t.prune()
		}
	}
	return err
}

// moved follows the peer to the addresses an authenticated message came
// from (NAT-T port float, RFC 3947 section 4).
func (t *Tunnel) moved(local, remote netip.AddrPort) {
	t.Local, t.Remote = local, remote
}

// Activity records inbound ESP traffic (DPD, RFC 3706 section 5.3:
// only idle tunnels are probed).
func (t *Tunnel) Activity() {
	t.activity = t.now()
	t.dpdTries = 0
	t.dpdAt = time.Time{}
}

// Deadline is the earliest time Tick must run.
func (t *Tunnel) Deadline() time.Time {
	var d time.Time
	min := func(x time.Time) {
		if !x.IsZero() && (d.IsZero() || x.Before(d)) {
			d = x
		}
	}
	for _, sa := range t.SAs {
		min(sa.retryAt)
		min(sa.rekeyAt)
		min(sa.expireAt)
		min(sa.deleteAt)
		for _, x := range sa.exch {
			min(x.retryAt)
			min(x.expireAt)
		}
	}
	for _, c := range t.Children {
		min(c.rekeyAt)
		min(c.expireAt)
		min(c.deleteAt)
	}
	if t.Config.DPDInterval > 0 && t.Established() != nil {
		if t.dpdAt.IsZero() {
			min(t.activity.Add(t.Config.DPDInterval))
		} else {
			min(t.dpdAt)
		}
	}
	if t.NATLocal && t.Config.NATKeepalive > 0 && len(t.Children) > 0 {
		min(t.kaAt)
	}
	return d
}

// Tick runs what is due.
func (t *Tunnel) Tick() {
	now := t.now()
	due := func(x time.Time) bool { return !x.IsZero() && !x.After(now) }
	for _, sa := range append([]*ISAKMPSA(nil), t.SAs...) {
		if due(sa.retryAt) {
			sa.retransmit()
		}
		for mid, x := range sa.exch {
			if due(x.retryAt) {
				sa.retransmitExchange(x)
			}
			if due(x.expireAt) {
				delete(sa.exch, mid)
			}
		}
		if due(sa.deleteAt) {
			sa.deleteAt = time.Time{}
			sa.delete(true)
		}
		if due(sa.expireAt) {
			sa.expireAt = time.Time{}
			sa.delete(true)
		}
		if due(sa.rekeyAt) {
			sa.rekeyAt = time.Time{}
			if sa.Initiator && t.Established() == sa {
				t.startPhase1()
			}
		}
	}
	for _, c := range append([]*Child(nil), t.Children...) {
		switch {
		case due(c.deleteAt) || due(c.expireAt):
			t.deleteChild(c, true)
		case due(c.rekeyAt):
			c.rekeyAt = time.Time{}
			t.RekeyChild(c)
		}
	}
	if t.Config.DPDInterval > 0 {
		if sa := t.Established(); sa != nil {
			if t.dpdAt.IsZero() && !t.activity.Add(t.Config.DPDInterval).After(now) {
				t.dpdAt = now
			}
			if due(t.dpdAt) {
				if t.dpdTries >= max(t.Config.DPDThreshold, 1) {
					t.die(errors.New("ikev1: peer dead (DPD)"))
					return
				}
				t.dpdTries++
				t.dpdAt = now.Add(t.Config.DPDInterval)
				sa.sendDPD()
			}
		}
	}
	if t.NATLocal && t.Config.NATKeepalive > 0 && len(t.Children) > 0 && !t.kaAt.After(now) {
		t.opts.Host.Keepalive(t)
		t.kaAt = now.Add(t.Config.NATKeepalive)
	}
	t.prune()
}

// prune forgets dead ISAKMP SAs and ends the tunnel when nothing is left.
func (t *Tunnel) prune() {
	live := t.SAs[:0]
	for _, sa := range t.SAs {
		if sa.State != StateDead {
			live = append(live, sa)
		}
	}
	t.SAs = live
	if len(t.SAs) == 0 && len(t.Children) == 0 && !t.dead {
		t.dead = true
		t.opts.Host.Event(t, Event{Kind: EventDead})
	}
}

// die ends the tunnel: every SA is removed without telling the peer.
func (t *Tunnel) die(err error) {
	for _, c := range append([]*Child(nil), t.Children...) {
		t.deleteChild(c, false)
	}
	for _, sa := range t.SAs {
		sa.State = StateDead
	}
	t.SAs = nil
	if !t.dead {
		t.dead = true
		t.opts.Host.Event(t, Event{Kind: EventDead, Err: err})
	}
}

// Delete deletes every SA of the tunnel and tells the peer.
func (t *Tunnel) Delete() {
	for _, c := range append([]*Child(nil), t.Children...) {
		t.deleteChild(c, true)
	}
	for _, sa := range t.SAs {
		sa.delete(true)
	}
	t.prune()
}

// Child returns the ESP SA pair with inbound or outbound SPI spi.
func (t *Tunnel) Child(spi uint32) *Child {
	for _, c := range t.Children {
		if c.SPIIn == spi || c.SPIOut == spi {
			return c
		}
	}
	return nil
}

// RekeyChild starts a quick mode that replaces c.
func (t *Tunnel) RekeyChild(c *Child) {
	if c.rekeying || !c.deleteAt.IsZero() {
		return
	}
	c.rekeying = true
	if sa := t.Established(); sa != nil {
		t.startQuick(sa, c)
		return
	}
	t.wantQM++
	if len(t.SAs) == 0 {
		t.startPhase1()
	}
}

// DeleteChild deletes c and tells the peer.
func (t *Tunnel) DeleteChild(c *Child) { t.deleteChild(c, true); t.prune() }

func (t *Tunnel) deleteChild(c *Child, notify bool) {
	i := -1
	for j, x := range t.Children {
		if x == c {
			i = j
		}
	}
	if i < 0 {
		return
	}
	t.Children = append(t.Children[:i], t.Children[i+1:]...)
	t.opts.Host.Uninstall(t, c)
	t.Stats.Phase2Deleted++
	if sa := t.Established(); notify && sa != nil {
		t.Stats.DeletesOut++
		// RFC 2408 section 3.15: the SPI of the SA the sender deletes,
		// its inbound one.
		spi := binary.BigEndian.AppendUint32(nil, c.SPIIn)
		proto := uint8(isakmp.ProtoESP)
		if c.Suite.AH {
			proto = isakmp.ProtoAH
		}
		ps := []isakmp.Payload{{Type: isakmp.PayloadDelete, Body: isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: proto, SPIs: [][]byte{spi}}.Marshal()}}
		if c.Suite.Bundle() {
			aux := binary.BigEndian.AppendUint32(nil, c.AuxIn)
			ps = append(ps, isakmp.Payload{Type: isakmp.PayloadDelete, Body: isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoESP, SPIs: [][]byte{aux}}.Marshal()})
		}
		sa.sendInfo(ps)
	}
}

// lifetimes sets the rekey and expiry times of c: rekey at 90% of the
// lifetime less up to 10% random for the initiator, at 97% for the
// responder (so that the initiator normally rekeys first), expiry at
// the lifetime.
func (t *Tunnel) lifetimes(c *Child, lifetime time.Duration) {
	c.expireAt = c.CreatedAt.Add(lifetime)
	frac := 0.97
	if c.Initiator {
		j := binary.BigEndian.Uint16(t.random(2))
		frac = 0.9 - 0.1*float64(j)/65535
	}
	c.rekeyAt = c.CreatedAt.Add(time.Duration(float64(lifetime) * frac))
}

// natHash is HASH(CKY-I | CKY-R | IP | Port) (RFC 3947 section 3.2).
func (sa *ISAKMPSA) natHash(ap netip.AddrPort) []byte {
	return digest(sa.Suite.newHash(), sa.ICookie[:], sa.RCookie[:], ap.Addr().Unmap().AsSlice(), binary.BigEndian.AppendUint16(nil, ap.Port()))
}

func (sa *ISAKMPSA) natPayloads() []isakmp.Payload {
	t := sa.t
	return []isakmp.Payload{
		{Type: isakmp.PayloadNATD, Body: sa.natHash(t.Remote)},
		{Type: isakmp.PayloadNATD, Body: sa.natHash(t.Local)},
	}
}

// detectNAT reads the peer's NAT-D payloads: the first is its view of
// our address, the others its own (RFC 3947 section 3.2).
func (sa *ISAKMPSA) detectNAT(ps []isakmp.Payload, local, remote netip.AddrPort) {
	ds := isakmp.All(ps, isakmp.PayloadNATD)
	if len(ds) < 2 {
		return
	}
	t := sa.t
	t.NATLocal = string(ds[0]) != string(sa.natHash(local))
	t.NATRemote = true
	for _, d := range ds[1:] {
		if string(d) == string(sa.natHash(remote)) {
			t.NATRemote = false
		}
	}
}

// float moves IKE to port 4500 once a NAT is found (RFC 3947 section 4).
func (t *Tunnel) float() {
	if (t.NATLocal || t.NATRemote) && t.Local.Port() == 500 {
		t.Local = netip.AddrPortFrom(t.Local.Addr(), 4500)
		t.Remote = netip.AddrPortFrom(t.Remote.Addr(), 4500)
	}
}

func (t *Tunnel) nextReqid() uint32 {
	t.reqid++
	return t.reqid
}

// allowed reports whether a responder accepts the proxy identities
// local and remote (RFC 2409 section 5.5: IKEv1 has no narrowing).
func (c *Config) allowed(local, remote message.Selector) bool {
	if len(c.Allowed) == 0 {
		return within(local, c.LocalTS) && within(remote, c.RemoteTS)
	}
	for _, p := range c.Allowed {
		if within(local, p[0]) && within(remote, p[1]) {
			return true
		}
	}
	return false
}
