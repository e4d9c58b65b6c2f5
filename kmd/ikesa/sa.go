package ikesa

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/task"
	"github.com/sitesec/sitesec/kmd/transform"
)

// State of an IKE SA.
type State int

// States.
const (
	StateConnecting State = iota
	StateEstablished
	StateRekeyed // replaced by a new IKE SA, waiting for its deletion
	StateDeleting
	StateDead
)

func (s State) String() string {
	return [...]string{"not matured", "matured", "rekeyed", "deleting", "dead"}[s]
}

// EventKind is what an SA tells its host.
type EventKind int

// Events.
const (
	EventEstablished EventKind = iota
	EventIKERekeyed            // New holds the new IKE SA
	EventDead                  // the SA is gone; Err says why, if it failed
	EventRemoteMoved           // the peer's address or port changed (NAT)
)

// Event is a change of an SA its host must know.
type Event struct {
	Kind EventKind
	New  *SA
	Err  error
}

// Host is the SA's world: the wire (through fwdd), the SAD (in fwdd) and
// the SA table.
type Host interface {
	// Send transmits IKE datagrams from sa.Local to sa.Remote; keepalive
	// asks for a NAT keepalive instead (RFC 3948 section 2.3).
	Send(sa *SA, pkts [][]byte, keepalive bool)
	// Install installs a CHILD SA, inbound first, then outbound; replaces
	// is the CHILD SA whose outbound traffic moves to c (nil if none).
	Install(sa *SA, c *ChildSA, replaces *ChildSA) error
	// Uninstall removes both directions of c.
	Uninstall(sa *SA, c *ChildSA)
	Event(sa *SA, e Event)
}

// Options are the injected dependencies of an SA.
type Options struct {
	Rand io.Reader
	Now  func() time.Time
	Host Host
	// Trace, when set, sees every message sent and received, in clear.
	Trace func(sa *SA, sent bool, m *message.Message)
}

// SA is one IKE SA.
type SA struct {
	Config *Config
	opts   Options

	// Initiator is true when this side sent IKE_SA_INIT.
	Initiator  bool
	SPIi, SPIr uint64
	// Local and Remote are the IKE endpoints (ports move to 4500 with
	// NAT, RFC 7296 section 2.23).
	Local, Remote netip.AddrPort
	State         State

	Suite transform.Suite
	prf   transform.PRF
	keys  transform.IKEKeys
	in    message.Cipher
	out   message.Cipher
	ni    []byte
	nr    []byte
	// initMsg holds the raw IKE_SA_INIT request and response, which AUTH
	// signs.
	initMsg [2][]byte

	// NATLocal: this side is behind a NAT; NATRemote: the peer is.
	NATLocal, NATRemote bool
	fragment            bool
	PeerID              *message.ID
	// peerHashes are the peer's RFC 7427 hash algorithms.
	peerHashes []uint16

	Children []*ChildSA
	mgr      *task.Manager
	reasm    [2]message.Reassembler

	EstablishedAt time.Time
	RekeyAt       time.Time
	ExpireAt      time.Time
	lastSeen      time.Time
	keepaliveAt   time.Time
	deleteAt      time.Time
	// halfOpenUntil ends a responder SA the initiator never authenticated.
	halfOpenUntil time.Time
	Err           error

	Stats Stats
}

// Stats are the counters of `show ike security-associations detail` and
// `show ike statistics`.
type Stats struct {
	BytesIn, BytesOut, PacketsIn, PacketsOut uint64
	ChildCreated, ChildDeleted, Rekeys       uint32
	DeletesIn, DeletesOut                    uint64
	DPDSent, DPDAnswered, DPDMissed          uint64
	DPDReceived                              uint64
	InvalidSPI                               uint64
	// AddressChangesRefused counts authenticated messages from another
	// address that did not move the SA (follow).
	AddressChangesRefused uint64
}

func newSA(cfg *Config, o Options) *SA {
	sa := &SA{Config: cfg, opts: o}
	sa.mgr = task.NewManager(sa, o.Now)
	return sa
}

// NewInitiator creates an IKE SA that will initiate to remote. Start
// sends the first message.
func NewInitiator(cfg *Config, local, remote netip.AddrPort, o Options) (*SA, error) {
	sa := newSA(cfg, o)
	sa.Initiator = true
	sa.Local, sa.Remote = local, remote
	spi, err := sa.randomSPI()
	if err != nil {
		return nil, err
	}
	sa.SPIi = spi
	return sa, nil
}

// NewResponder creates an IKE SA for a received IKE_SA_INIT request.
func NewResponder(cfg *Config, local, remote netip.AddrPort, spii uint64, o Options) (*SA, error) {
	sa := newSA(cfg, o)
	sa.Local, sa.Remote = local, remote
	sa.SPIi = spii
	spi, err := sa.randomSPI()
	if err != nil {
		return nil, err
	}
	sa.SPIr = spi
	sa.halfOpenUntil = o.Now().Add(HalfOpenTimeout)
	return sa, nil
}

// HalfOpenTimeout is how long a responder keeps an IKE SA whose IKE_AUTH
// never came.
const HalfOpenTimeout = 30 * time.Second

// Start queues IKE_SA_INIT and IKE_AUTH with a first CHILD SA, and sends.
func (sa *SA) Start() error {
	init := &ikeInit{sa: sa}
	sa.mgr.Queue(init)
	sa.mgr.Queue(&auth{sa: sa}, newChildCreate(sa, true, nil))
	return sa.check(sa.mgr.Initiate())
}

// LocalSPI is this side's SPI, the key of the SA table.
func (sa *SA) LocalSPI() uint64 {
	if sa.Initiator {
		return sa.SPIi
	}
	return sa.SPIr
}

// Name returns the SPIs as show commands print them.
func (sa *SA) Name() string { return fmt.Sprintf("%016x:%016x", sa.SPIi, sa.SPIr) }

// Manager exposes the task manager (tests and show commands).
func (sa *SA) Manager() *task.Manager { return sa.mgr }

func (sa *SA) now() time.Time { return sa.opts.Now() }

func (sa *SA) random(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(sa.opts.Rand, b); err != nil {
		return nil, fmt.Errorf("ikesa: random: %w", err)
	}
	return b, nil
}

func (sa *SA) randomSPI() (uint64, error) {
	for {
		b, err := sa.random(8)
		if err != nil {
			return 0, err
		}
		if v := binary.BigEndian.Uint64(b); v != 0 {
			return v, nil
		}
	}
}

func (sa *SA) childSPI() (uint32, error) {
	for {
		b, err := sa.random(4)
		if err != nil {
			return 0, err
		}
		// SPIs 1..255 are reserved by IANA (RFC 4303 section 2.1).
		if v := binary.BigEndian.Uint32(b); v >= 256 {
			return v, nil
		}
	}
}

// ---- task.Wire ---------------------------------------------------------------

// Encode implements task.Wire: it sets the header and seals.
func (sa *SA) Encode(m *message.Message) ([][]byte, error) {
	m.SPIi, m.SPIr = sa.SPIi, sa.SPIr
	if sa.Initiator {
		m.Flags |= message.FlagInitiator
	}
	if sa.opts.Trace != nil {
		sa.opts.Trace(sa, true, m)
	}
	if m.Exchange == message.IKESAInit {
		if m.IsResponse() {
			m.SPIr = sa.SPIr
		} else {
			m.SPIr = 0
		}
		b, err := m.Marshal()
		if err != nil {
			return nil, err
		}
		if m.IsResponse() {
			sa.initMsg[1] = b
		} else {
			sa.initMsg[0] = b
		}
		return [][]byte{b}, nil
	}
	if sa.out == nil {
		return nil, errors.New("ikesa: no keys yet")
	}
	if sa.fragment {
		size := sa.Config.FragmentSize
		if size == 0 {
			size = DefaultFragmentSize
		}
		return m.SealFragments(sa.out, size)
	}
	b, err := m.Seal(sa.out)
	if err != nil {
		return nil, err
	}
	return [][]byte{b}, nil
}

// Send implements task.Wire.
func (sa *SA) Send(pkts [][]byte) {
	for _, p := range pkts {
		sa.Stats.BytesOut += uint64(len(p))
		sa.Stats.PacketsOut++
	}
	sa.opts.Host.Send(sa, pkts, false)
}

// Responders implements task.Wire: the tasks that answer a request.
func (sa *SA) Responders(req *message.Message) ([]task.Task, error) {
	switch req.Exchange {
	case message.IKESAInit:
		if sa.State != StateConnecting || sa.Initiator {
			return nil, &task.NotifyError{Type: message.NotifyInvalidSyntax, Err: errors.New("IKE_SA_INIT on an established SA")}
		}
		return []task.Task{&ikeInit{sa: sa}}, nil
	case message.IKEAuth:
		if sa.State != StateConnecting || sa.Initiator || sa.in == nil {
			return nil, &task.NotifyError{Type: message.NotifyInvalidSyntax, Err: errors.New("unexpected IKE_AUTH")}
		}
		return []task.Task{&auth{sa: sa}, newChildCreate(sa, true, nil)}, nil
	case message.CreateChildSA:
		if sa.State != StateEstablished {
			return nil, &task.NotifyError{Type: message.NotifyTemporaryFailure, Err: errors.New("IKE SA not established")}
		}
		if p, ok := req.Find(message.PayloadSA).(*message.SA); ok && len(p.Proposals) > 0 && p.Proposals[0].Protocol == message.ProtocolIKE {
			return []task.Task{&ikeRekey{sa: sa}}, nil
		}
		return []task.Task{newChildCreate(sa, false, nil)}, nil
	case message.Informational:
		return []task.Task{&informational{sa: sa}}, nil
	}
	return nil, &task.NotifyError{Type: message.NotifyInvalidSyntax, Err: fmt.Errorf("exchange %s", req.Exchange)}
}

// ---- receiving ---------------------------------------------------------------

// Handle processes one datagram for this SA, received from remote on
// local. The header has already been parsed by the dispatcher.
func (sa *SA) Handle(local, remote netip.AddrPort, pkt *message.Packet) error {
	sa.Stats.BytesIn += uint64(len(pkt.Raw))
	sa.Stats.PacketsIn++
	var msg *message.Message
	if pkt.Exchange == message.IKESAInit {
		if pkt.Encrypted != nil {
			return errors.New("ikesa: encrypted IKE_SA_INIT")
		}
		msg = &message.Message{Header: pkt.Header, Payloads: pkt.Payloads}
		// The signed octets of IKE_AUTH (RFC 7296 section 2.15) are the
		// IKE_SA_INIT messages this SA processed, not a later stray.
		if sa.mgr.Expected(msg) {
			if pkt.IsResponse() {
				sa.initMsg[1] = pkt.Raw
			} else if sa.State == StateConnecting {
				sa.initMsg[0] = pkt.Raw
				sa.Local, sa.Remote = local, remote
			}
		}
	} else {
		if pkt.Encrypted == nil || sa.in == nil {
			return errors.New("ikesa: unencrypted message after IKE_SA_INIT")
		}
		var err error
		if pkt.Encrypted.Type == message.PayloadSKF {
			i := 0
			if pkt.IsResponse() {
				i = 1
			}
			msg, err = sa.reasm[i].Add(pkt, sa.in)
			if err != nil || msg == nil {
				return err
			}
		} else if msg, err = pkt.Open(sa.in); err != nil {
			// RFC 7296 section 2.21.1: drop messages that fail integrity;
			// answer authenticated requests that do not parse.
			var me *message.Error
			if errors.As(err, &me) && sa.State != StateConnecting {
				return errors.Join(err, sa.mgr.Reject(pkt.Header, me.Notify, me.Data))
			}
			return err
		}
	}
	if sa.opts.Trace != nil {
		sa.opts.Trace(sa, false, msg)
	}
	if err := message.Check(msg); err != nil {
		var me *message.Error
		if errors.As(err, &me) && pkt.Exchange != message.IKESAInit {
			return errors.Join(err, sa.mgr.Reject(msg.Header, me.Notify, me.Data))
		}
		return err
	}
	if pkt.Exchange != message.IKESAInit && (remote != sa.Remote || local != sa.Local) {
		sa.follow(local, remote, msg)
	}
	sa.lastSeen = sa.now()
	return sa.check(sa.mgr.Receive(msg))
}

// follow moves the SA to the addresses an authenticated message came
// from, under RFC 7296 section 2.23: only a message that decrypted, passed
// its integrity check and carries the message ID this side expects (not
// a retransmission or a replay, which an attacker can send from any
// address), and only when NAT was detected, where a peer's mapping may
// change. Without NAT the only move is the float to port 4500 on the
// same addresses. Everything else is counted and ignored.
func (sa *SA) follow(local, remote netip.AddrPort, msg *message.Message) {
	nat := sa.NATLocal || sa.NATRemote
	float := local.Addr() == sa.Local.Addr() && remote.Addr() == sa.Remote.Addr() && local.Port() == 4500
	if !sa.mgr.Expected(msg) || !(nat || float) {
		sa.Stats.AddressChangesRefused++
		return
	}
	moved := sa.State == StateEstablished && remote != sa.Remote
	sa.Local, sa.Remote = local, remote
	if moved {
		sa.opts.Host.Event(sa, Event{Kind: EventRemoteMoved})
	}
}

// check turns a task failure into SA state: a failed IKE_INIT, IKE_AUTH,
// IKE_DELETE or a timeout kills the SA; a failed CHILD SA does not.
func (sa *SA) check(err error) error {
	if err == nil {
		return nil
	}
	var f *task.Failure
	if !errors.As(err, &f) {
		return err
	}
	fatal := errors.Is(err, task.ErrTimeout)
	for _, t := range f.Tasks {
		switch t.Kind() {
		case task.IKEInit, task.Auth, task.IKEDelete, task.DPD:
			fatal = true
		case task.ChildCreate, task.ChildRekey:
			if c, ok := t.(*childCreate); ok {
				c.abort(err)
			}
		}
	}
	if fatal {
		sa.die(err)
		return err
	}
	// Carry on with queued work.
	return sa.check(sa.mgr.Initiate())
}

// die removes the SA and its CHILD SAs.
func (sa *SA) die(err error) {
	if sa.State == StateDead {
		return
	}
	for _, c := range sa.Children {
		if c.installed {
			sa.opts.Host.Uninstall(sa, c)
			sa.Stats.ChildDeleted++
		}
		c.wipe()
	}
	sa.Children = nil
	sa.State = StateDead
	sa.Err = err
	sa.opts.Host.Event(sa, Event{Kind: EventDead, Err: err})
}

// ---- keys --------------------------------------------------------------------

// deriveKeys computes the IKE SA keys from g^ir (or from SKEYSEED on a
// rekey) and installs the SK ciphers.
func (sa *SA) deriveKeys(skeyseed []byte) error {
	keys, err := transform.DeriveIKEKeys(sa.Suite, skeyseed, sa.ni, sa.nr, sa.SPIi, sa.SPIr)
	if err != nil {
		return err
	}
	sa.keys = keys
	ei, ai, er, ar := keys.Ei, keys.Ai, keys.Er, keys.Ar
	if !sa.Initiator {
		ei, ai, er, ar = er, ar, ei, ai
	}
	if sa.out, err = sa.Suite.NewCipher(ei, ai, sa.opts.Rand); err != nil {
		return err
	}
	sa.in, err = sa.Suite.NewCipher(er, ar, sa.opts.Rand)
	return err
}

// natHash is the NAT_DETECTION_*_IP data: SHA-1(SPIi | SPIr | IP | Port)
// (RFC 7296 section 2.23).
func natHash(spii, spir uint64, ap netip.AddrPort) []byte {
	h := sha1.New()
	var b []byte
	b = binary.BigEndian.AppendUint64(b, spii)
	b = binary.BigEndian.AppendUint64(b, spir)
	b = append(b, ap.Addr().Unmap().AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, ap.Port())
	h.Write(b)
	return h.Sum(nil)
}

// established finishes IKE_AUTH.
func (sa *SA) established() {
	sa.State = StateEstablished
	sa.EstablishedAt = sa.now()
	sa.lastSeen = sa.now()
	sa.keepaliveAt = sa.now().Add(sa.Config.NATKeepalive)
	sa.scheduleIKE()
	sa.opts.Host.Event(sa, Event{Kind: EventEstablished})
}

// jitter returns d less up to a tenth of it, random, so both peers do not
// rekey at once.
func (sa *SA) jitter(d time.Duration) time.Duration {
	b, err := sa.random(2)
	if err != nil || d <= 0 {
		return d
	}
	return d - time.Duration(uint64(d/10)*uint64(binary.BigEndian.Uint16(b))/65535)
}

// scheduleIKE sets the IKE rekey (at 90% of the lifetime, jittered) and
// hard expiry.
func (sa *SA) scheduleIKE() {
	if sa.Config.IKELifetime <= 0 {
		return
	}
	now := sa.now()
	sa.ExpireAt = now.Add(sa.Config.IKELifetime)
	sa.RekeyAt = now.Add(sa.jitter(sa.Config.IKELifetime * 9 / 10))
}

// ---- commands and timers ------------------------------------------------------

// Deadline is the next time Tick must run.
func (sa *SA) Deadline() time.Time {
	var d time.Time
	min := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	min(sa.mgr.Deadline())
	if sa.State == StateConnecting && !sa.Initiator {
		min(sa.halfOpenUntil)
	}
	if sa.State == StateEstablished {
		min(sa.RekeyAt)
		min(sa.ExpireAt)
		for _, c := range sa.Children {
			min(c.RekeyAt)
			min(c.ExpireAt)
		}
		if sa.Config.DPDInterval > 0 && !sa.mgr.Busy() {
			min(sa.lastSeen.Add(sa.Config.DPDInterval))
		}
		if sa.NATLocal && sa.Config.NATKeepalive > 0 {
			min(sa.keepaliveAt)
		}
	}
	min(sa.deleteAt)
	return d
}

// Tick runs what is due: retransmissions, rekeys, expiries, DPD and NAT
// keepalives.
func (sa *SA) Tick() error {
	now := sa.now()
	if err := sa.check(sa.mgr.Tick()); err != nil || sa.State == StateDead {
		return err
	}
	if !sa.deleteAt.IsZero() && !now.Before(sa.deleteAt) {
		sa.deleteAt = time.Time{}
		sa.die(nil)
		return nil
	}
	if sa.State == StateConnecting && !sa.Initiator && !now.Before(sa.halfOpenUntil) {
		sa.die(errors.New("ikesa: half-open IKE SA timed out"))
		return nil
	}
	if sa.State != StateEstablished {
		return nil
	}
	if !sa.ExpireAt.IsZero() && !now.Before(sa.ExpireAt) {
		sa.die(errors.New("ikesa: IKE SA lifetime expired"))
		return nil
	}
	if !sa.RekeyAt.IsZero() && !now.Before(sa.RekeyAt) {
		sa.RekeyAt = time.Time{}
		sa.mgr.Queue(&ikeRekey{sa: sa, initiator: true})
	}
	for _, c := range sa.Children {
		if !c.ExpireAt.IsZero() && !now.Before(c.ExpireAt) {
			c.ExpireAt, c.RekeyAt = time.Time{}, time.Time{}
			sa.mgr.Queue(&childDelete{sa: sa, child: c, initiator: true})
		} else if !c.RekeyAt.IsZero() && !now.Before(c.RekeyAt) {
			c.RekeyAt = time.Time{}
			sa.mgr.Queue(newChildCreate(sa, false, c))
		}
	}
	if sa.Config.DPDInterval > 0 && !now.Before(sa.lastSeen.Add(sa.Config.DPDInterval)) && !sa.mgr.Busy() {
		sa.lastSeen = now
		sa.Stats.DPDSent++
		sa.mgr.Queue(&dpd{sa: sa})
	}
	if sa.NATLocal && sa.Config.NATKeepalive > 0 && !now.Before(sa.keepaliveAt) {
		sa.keepaliveAt = now.Add(sa.Config.NATKeepalive)
		sa.opts.Host.Send(sa, nil, true)
	}
	return sa.check(sa.mgr.Initiate())
}

// Activity records inbound ESP traffic (fwdd's liveness hint): DPD waits.
func (sa *SA) Activity() { sa.lastSeen = sa.now() }

// Delete starts an INFORMATIONAL exchange deleting the IKE SA.
func (sa *SA) Delete() error {
	if sa.State != StateEstablished && sa.State != StateRekeyed {
		sa.die(nil)
		return nil
	}
	sa.mgr.Queue(&ikeDelete{sa: sa, initiator: true})
	return sa.check(sa.mgr.Initiate())
}

// RekeyChild starts a CHILD SA rekey (soft lifetime or sequence rollover
// from fwdd).
func (sa *SA) RekeyChild(c *ChildSA) error {
	if c.state != childInstalled || sa.State != StateEstablished {
		return nil
	}
	c.RekeyAt = time.Time{}
	sa.mgr.Queue(newChildCreate(sa, false, c))
	return sa.check(sa.mgr.Initiate())
}

// DeleteChild starts deleting one CHILD SA.
func (sa *SA) DeleteChild(c *ChildSA) error {
	sa.mgr.Queue(&childDelete{sa: sa, child: c, initiator: true})
	return sa.check(sa.mgr.Initiate())
}

// CreateChild negotiates another CHILD SA with the configured selectors.
func (sa *SA) CreateChild() error {
	sa.mgr.Queue(newChildCreate(sa, false, nil))
	return sa.check(sa.mgr.Initiate())
}

// Rekey starts an IKE SA rekey.
func (sa *SA) Rekey() error {
	sa.mgr.Queue(&ikeRekey{sa: sa, initiator: true})
	return sa.check(sa.mgr.Initiate())
}

// Child returns the CHILD SA with inbound SPI spi, or nil.
func (sa *SA) Child(spi uint32) *ChildSA {
	for _, c := range sa.Children {
		if c.SPIIn == spi || c.SPIOut == spi {
			return c
		}
	}
	return nil
}

func (sa *SA) removeChild(c *ChildSA) {
	for i, x := range sa.Children {
		if x == c {
			sa.Children = append(sa.Children[:i], sa.Children[i+1:]...)
			break
		}
	}
	if c.installed {
		sa.opts.Host.Uninstall(sa, c)
		c.installed = false
		sa.Stats.ChildDeleted++
	}
	c.state = childDeleted
	c.wipe()
}
