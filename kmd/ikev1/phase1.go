package ikev1

import (
	"crypto/cipher"
	"crypto/hmac"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/sitesec/sitesec/kmd/isakmp"
	"github.com/sitesec/sitesec/kmd/transform"
)

// State is where an ISAKMP SA is.
type State int

const (
	StateInit   State = iota
	StateSentSA       // main mode I: message 1 sent
	StateSentKE       // main I: 3 sent; main R: 2 sent (waiting for 3); aggressive I: 1 sent
	StateSentID       // main I: 5 sent; main R: 4 sent; aggressive R: 2 sent
	StateEstablished
	StateDead
)

func (s State) String() string {
	return [...]string{"init", "sa-sent", "ke-sent", "auth-sent", "established", "dead"}[s]
}

// ISAKMPSA is one phase 1 SA (RFC 2409 section 5).
type ISAKMPSA struct {
	t                 *Tunnel
	Initiator         bool
	Aggressive        bool
	ICookie, RCookie  [8]byte
	State             State
	Suite             Phase1
	PeerID            isakmp.ID
	EstablishedAt     time.Time
	PeerNATT, PeerDPD bool
	dh                transform.DH
	gxi, gxr, ni, nr  []byte
	saib              []byte // the initiator's SA payload body (SAi_b)
	idb               []byte // our ID payload body (IDii_b or IDir_b)
	k                 *keys
	blk               cipher.Block
	lifetime          time.Duration
	out               []byte // last message sent in phase 1, for retransmission
	lastIn            []byte // last message received in phase 1
	tries             int
	retryAt           time.Time
	rekeyAt, expireAt time.Time
	deleteAt          time.Time
	exch              map[uint32]*exchange
	dpdSeq            uint32
}

// Name is the cookie pair, as `show ... ike security-associations`
// prints it.
func (sa *ISAKMPSA) Name() string { return fmt.Sprintf("%x:%x", sa.ICookie, sa.RCookie) }

// LocalID is the identity this side sent (the configured one before it
// sent any).
func (sa *ISAKMPSA) LocalID() isakmp.ID {
	if id, err := isakmp.ParseID(sa.idb); err == nil {
		return id
	}
	return sa.t.Config.LocalID
}

// ExpiresAt is when the SA's lifetime ends (zero: none yet).
func (sa *ISAKMPSA) ExpiresAt() time.Time { return sa.expireAt }

func (sa *ISAKMPSA) exchangeType() isakmp.ExchangeType {
	if sa.Aggressive {
		return isakmp.ExchangeAggressive
	}
	return isakmp.ExchangeMain
}

func (sa *ISAKMPSA) header(ex isakmp.ExchangeType, mid uint32) isakmp.Header {
	return isakmp.Header{ICookie: sa.ICookie, RCookie: sa.RCookie, Version: isakmp.Version, Exchange: ex, MessageID: mid}
}

func (sa *ISAKMPSA) vendorIDs() []isakmp.Payload {
	var ps []isakmp.Payload
	if sa.t.Config.NATTraversal {
		ps = append(ps, isakmp.Payload{Type: isakmp.PayloadVendorID, Body: isakmp.VendorNATT})
	}
	return append(ps, isakmp.Payload{Type: isakmp.PayloadVendorID, Body: isakmp.VendorDPD})
}

func (sa *ISAKMPSA) readVendorIDs(ps []isakmp.Payload) {
	for _, v := range isakmp.All(ps, isakmp.PayloadVendorID) {
		switch string(v) {
		case string(isakmp.VendorNATT):
			sa.PeerNATT = sa.t.Config.NATTraversal
		case string(isakmp.VendorDPD):
			sa.PeerDPD = true
		}
	}
}

// offer is the initiator's SA payload: one proposal with every
// configured transform (RFC 2409 section 5: one proposal, several
// transforms, for phase 1).
func (sa *ISAKMPSA) offer() []byte {
	p := isakmp.Proposal{Number: 1, Protocol: isakmp.ProtoISAKMP}
	for i, s := range sa.t.Config.Proposals {
		p.Transforms = append(p.Transforms, s.transform(uint8(i+1)))
	}
	return isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: []isakmp.Proposal{p}}.Marshal()
}

// choose selects the first transform of the initiator's offer that the
// configuration allows, and returns the answer's SA payload body: the
// same proposal with only that transform, as received.
func (sa *ISAKMPSA) choose(body []byte) ([]byte, error) {
	offer, err := isakmp.ParseSA(body)
	if err != nil {
		return nil, err
	}
	for _, p := range offer.Proposals {
		if p.Protocol != isakmp.ProtoISAKMP {
			continue
		}
		for _, tr := range p.Transforms {
			s, err := phase1Of(tr)
			if err != nil {
				continue
			}
			for _, c := range sa.t.Config.Proposals {
				if c.same(s) {
					sa.Suite = s
					sa.lifetime = sa.t.Config.Lifetime
					if s.Lifetime > 0 && (sa.lifetime == 0 || s.Lifetime < sa.lifetime) {
						sa.lifetime = s.Lifetime
					}
					p.Transforms = []isakmp.Transform{tr}
					return isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: []isakmp.Proposal{p}}.Marshal(), nil
				}
			}
		}
	}
	return nil, errors.New("ikev1: no phase 1 proposal chosen")
}

// accept reads the responder's choice, which must be one we offered.
func (sa *ISAKMPSA) accept(body []byte) error {
	ans, err := isakmp.ParseSA(body)
	if err != nil {
		return err
	}
	if len(ans.Proposals) != 1 || len(ans.Proposals[0].Transforms) != 1 {
		return errors.New("ikev1: answer is not one transform")
	}
	s, err := phase1Of(ans.Proposals[0].Transforms[0])
	if err != nil {
		return err
	}
	for _, c := range sa.t.Config.Proposals {
		if c.same(s) {
			sa.Suite = s
			sa.lifetime = sa.t.Config.Lifetime
			if s.Lifetime > 0 && (sa.lifetime == 0 || s.Lifetime < sa.lifetime) {
				sa.lifetime = s.Lifetime
			}
			return nil
		}
	}
	return errors.New("ikev1: responder chose a transform we did not offer")
}

func (sa *ISAKMPSA) newDH(group uint16) error {
	dh, err := transform.NewDH(group, sa.t.opts.Rand)
	if err != nil {
		return err
	}
	sa.dh = dh
	return nil
}

func (sa *ISAKMPSA) start() error {
	t := sa.t
	if !sa.Aggressive {
		sa.saib = sa.offer()
		ps := append([]isakmp.Payload{{Type: isakmp.PayloadSA, Body: sa.saib}}, sa.vendorIDs()...)
		sa.State = StateSentSA
		sa.sendPhase1(isakmp.Marshal(sa.header(isakmp.ExchangeMain, 0), ps), ps)
		return nil
	}
	// Aggressive mode, RFC 2409 section 5: the group is that of the
	// first proposal (all transforms must share it).
	if len(t.Config.Proposals) == 0 {
		return errors.New("ikev1: no proposal")
	}
	if err := sa.newDH(t.Config.Proposals[0].Group); err != nil {
		return err
	}
	id, err := t.localID()
	if err != nil {
		return err
	}
	sa.saib, sa.idb = sa.offer(), id.Marshal()
	sa.gxi, sa.ni = sa.dh.Public(), t.random(32)
	ps := []isakmp.Payload{
		{Type: isakmp.PayloadSA, Body: sa.saib},
		{Type: isakmp.PayloadKE, Body: sa.gxi},
		{Type: isakmp.PayloadNonce, Body: sa.ni},
		{Type: isakmp.PayloadID, Body: sa.idb},
	}
	if signatureAuth(t.Config.Proposals[0].Auth) {
		// RFC 2409 section 5.1 with RFC 4945 section 3.2.7: our
		// CERTREQ rides in the first message of aggressive mode.
		ps = append(ps, certReq())
	}
	ps = append(ps, sa.vendorIDs()...)
	sa.State = StateSentKE
	sa.sendPhase1(isakmp.Marshal(sa.header(isakmp.ExchangeAggressive, 0), ps), ps)
	return nil
}

// sendPhase1 sends a phase 1 message and keeps it for retransmission.
func (sa *ISAKMPSA) sendPhase1(pkt []byte, ps []isakmp.Payload) {
	sa.out, sa.tries = pkt, 1
	if sa.Initiator {
		sa.retryAt = sa.t.now().Add(RetransmitBase)
	} else {
		// The responder only answers retransmissions; it gives up on
		// an exchange that does not complete.
		sa.retryAt = time.Time{}
		sa.expireAt = sa.t.now().Add(RetransmitBase * (1<<Retransmits - 1))
	}
	sa.t.send(sa.header(sa.exchangeType(), 0), ps, pkt)
}

func (t *Tunnel) send(h isakmp.Header, ps []isakmp.Payload, pkt []byte) {
	t.Stats.OutPackets++
	if t.opts.Trace != nil {
		t.opts.Trace(t, true, h, ps)
	}
	t.opts.Host.Send(t, pkt)
}

func (sa *ISAKMPSA) retransmit() {
	if sa.tries >= Retransmits || sa.out == nil {
		sa.retryAt = time.Time{}
		sa.State = StateDead
		if sa.t.Established() == nil && len(sa.t.Children) == 0 {
			sa.t.die(errors.New("ikev1: phase 1 timed out"))
		}
		return
	}
	sa.tries++
	sa.t.Stats.Retransmits++
	sa.retryAt = sa.t.now().Add(RetransmitBase << (sa.tries - 1))
	sa.t.opts.Host.Send(sa.t, sa.out)
}

// handlePhase1 runs main mode (RFC 2409 section 5, figure "Main Mode
// authenticated with a Pre-Shared Key") and aggressive mode.
func (sa *ISAKMPSA) handlePhase1(local, remote netip.AddrPort, h isakmp.Header, body, pkt []byte) error {
	t := sa.t
	if sa.lastIn != nil && string(pkt) == string(sa.lastIn) {
		// A retransmitted request: answer it again (RFC 2408 section 5).
		if !sa.Initiator && sa.out != nil {
			t.Stats.Retransmits++
			t.opts.Host.Send(t, sa.out)
		}
		return nil
	}
	if sa.State == StateEstablished {
		if !sa.Initiator && h.Flags&isakmp.FlagEncryption != 0 && sa.out != nil {
			// The peer did not get our last message; the duplicate
			// check failed only because it re-encrypted.
			t.opts.Host.Send(t, sa.out)
		}
		return nil
	}
	var ps []isakmp.Payload
	var err error
	if h.Flags&isakmp.FlagEncryption != 0 {
		if sa.k == nil {
			return errors.New("ikev1: encrypted phase 1 message before the keys")
		}
		var pt, next []byte
		if pt, next, err = decrypt(sa.blk, sa.k.iv, body); err != nil {
			return err
		}
		if ps, _, err = isakmp.ParsePayloads(h.Next, pt); err != nil {
			return err
		}
		sa.k.iv = next
	} else {
		var rest []byte
		if ps, rest, err = isakmp.ParsePayloads(h.Next, body); err != nil {
			return err
		}
		if len(rest) != 0 {
			return errors.New("ikev1: bytes after the last payload")
		}
	}
	if t.opts.Trace != nil {
		t.opts.Trace(t, false, h, ps)
	}
	sa.lastIn = pkt
	if sa.Aggressive {
		return sa.aggressive(local, remote, h, ps)
	}
	if sa.Initiator {
		return sa.mainInitiator(local, remote, h, ps)
	}
	return sa.mainResponder(local, remote, h, ps)
}

func need(ps []isakmp.Payload, types ...isakmp.PayloadType) error {
	for _, tp := range types {
		if isakmp.Find(ps, tp) == nil {
			return fmt.Errorf("ikev1: %v payload missing", tp)
		}
	}
	return nil
}

func (sa *ISAKMPSA) mainInitiator(local, remote netip.AddrPort, h isakmp.Header, ps []isakmp.Payload) error {
	t := sa.t
	switch sa.State {
	case StateSentSA:
		if err := need(ps, isakmp.PayloadSA); err != nil {
			return err
		}
		if err := sa.accept(isakmp.Find(ps, isakmp.PayloadSA)); err != nil {
			return err
		}
		sa.RCookie = h.RCookie
		sa.readVendorIDs(ps)
		if err := sa.newDH(sa.Suite.Group); err != nil {
			return err
		}
		sa.gxi, sa.ni = sa.dh.Public(), t.random(32)
		out := []isakmp.Payload{{Type: isakmp.PayloadKE, Body: sa.gxi}, {Type: isakmp.PayloadNonce, Body: sa.ni}}
		if signatureAuth(sa.Suite.Auth) {
			out = append(out, certReq()) // main mode message 3 (RFC 4945 section 3.2.7)
		}
		if sa.PeerNATT {
			out = append(out, sa.natPayloads()...)
		}
		sa.State = StateSentKE
		sa.sendPhase1(isakmp.Marshal(sa.header(isakmp.ExchangeMain, 0), out), out)
	case StateSentKE:
		if err := need(ps, isakmp.PayloadKE, isakmp.PayloadNonce); err != nil {
			return err
		}
		sa.gxr, sa.nr = isakmp.Find(ps, isakmp.PayloadKE), isakmp.Find(ps, isakmp.PayloadNonce)
		if err := sa.derive(); err != nil {
			return err
		}
		if sa.PeerNATT {
			sa.detectNAT(ps, local, remote)
			t.float()
		}
		out, err := sa.idAuth(true)
		if err != nil {
			return err
		}
		out = append(out, sa.initialContact()...)
		sa.State = StateSentID
		sa.sendEncryptedPhase1(out)
	case StateSentID:
		if err := need(ps, isakmp.PayloadID); err != nil {
			return err
		}
		if err := sa.verifyPeer(ps, false); err != nil {
			return err
		}
		t.moved(local, remote)
		sa.established()
	default:
		return fmt.Errorf("ikev1: unexpected main mode message in state %v", sa.State)
	}
	return nil
}

func (sa *ISAKMPSA) mainResponder(local, remote netip.AddrPort, h isakmp.Header, ps []isakmp.Payload) error {
	t := sa.t
	switch sa.State {
	case StateInit:
		if err := need(ps, isakmp.PayloadSA); err != nil {
			return err
		}
		sa.saib = isakmp.Find(ps, isakmp.PayloadSA)
		ans, err := sa.choose(sa.saib)
		if err != nil {
			sa.notifyPlain(isakmp.NotifyNoProposalChosen)
			return err
		}
		sa.readVendorIDs(ps)
		out := []isakmp.Payload{{Type: isakmp.PayloadSA, Body: ans}}
		if sa.PeerNATT {
			out = append(out, isakmp.Payload{Type: isakmp.PayloadVendorID, Body: isakmp.VendorNATT})
		}
		out = append(out, isakmp.Payload{Type: isakmp.PayloadVendorID, Body: isakmp.VendorDPD})
		sa.State = StateSentKE
		sa.sendPhase1(isakmp.Marshal(sa.header(isakmp.ExchangeMain, 0), out), out)
	case StateSentKE:
		if err := need(ps, isakmp.PayloadKE, isakmp.PayloadNonce); err != nil {
			return err
		}
		if err := sa.newDH(sa.Suite.Group); err != nil {
			return err
		}
		sa.gxi, sa.ni = isakmp.Find(ps, isakmp.PayloadKE), isakmp.Find(ps, isakmp.PayloadNonce)
		sa.gxr, sa.nr = sa.dh.Public(), t.random(32)
		if err := sa.derive(); err != nil {
			return err
		}
		out := []isakmp.Payload{{Type: isakmp.PayloadKE, Body: sa.gxr}, {Type: isakmp.PayloadNonce, Body: sa.nr}}
		if signatureAuth(sa.Suite.Auth) {
			out = append(out, certReq()) // main mode message 4 (RFC 4945 section 3.2.7)
		}
		if sa.PeerNATT && len(isakmp.All(ps, isakmp.PayloadNATD)) > 0 {
			sa.detectNAT(ps, local, remote)
			out = append(out, sa.natPayloads()...)
		}
		sa.State = StateSentID
		sa.sendPhase1(isakmp.Marshal(sa.header(isakmp.ExchangeMain, 0), out), out)
	case StateSentID:
		if err := need(ps, isakmp.PayloadID); err != nil {
			return err
		}
		if err := sa.verifyPeer(ps, true); err != nil {
			sa.State = StateDead
			return err
		}
		out, err := sa.idAuth(false)
		if err != nil {
			sa.State = StateDead
			return err
		}
		t.moved(local, remote)
		sa.sendEncryptedPhase1(out)
		sa.established()
		sa.readInitialContact(ps)
	default:
		return fmt.Errorf("ikev1: unexpected main mode message in state %v", sa.State)
	}
	return nil
}

// aggressive runs aggressive mode with pre-shared keys (RFC 2409 section
// 5, RFC 3947 section 4 for NAT-D in messages 2 and 3).
func (sa *ISAKMPSA) aggressive(local, remote netip.AddrPort, h isakmp.Header, ps []isakmp.Payload) error {
	t := sa.t
	switch {
	case sa.Initiator && sa.State == StateSentKE:
		if err := need(ps, isakmp.PayloadSA, isakmp.PayloadKE, isakmp.PayloadNonce, isakmp.PayloadID); err != nil {
			return err
		}
		if err := sa.accept(isakmp.Find(ps, isakmp.PayloadSA)); err != nil {
			return err
		}
		if sa.Suite.Group != sa.dh.Group() {
			return errors.New("ikev1: aggressive mode answer in another group")
		}
		sa.RCookie = h.RCookie
		sa.readVendorIDs(ps)
		sa.gxr, sa.nr = isakmp.Find(ps, isakmp.PayloadKE), isakmp.Find(ps, isakmp.PayloadNonce)
		if err := sa.derive(); err != nil {
			return err
		}
		if err := sa.verifyPeer(ps, false); err != nil {
			return err
		}
		out, err := sa.authPayloads(true, sa.idb)
		if err != nil {
			return err
		}
		out = append(out, sa.initialContact()...)
		if sa.PeerNATT && len(isakmp.All(ps, isakmp.PayloadNATD)) > 0 {
			sa.detectNAT(ps, local, remote)
			out = append(out, sa.natPayloads()...)
			t.float()
		}
		sa.sendEncryptedPhase1(out)
		sa.established()
	case !sa.Initiator && sa.State == StateInit:
		if err := need(ps, isakmp.PayloadSA, isakmp.PayloadKE, isakmp.PayloadNonce, isakmp.PayloadID); err != nil {
			return err
		}
		sa.saib = isakmp.Find(ps, isakmp.PayloadSA)
		ans, err := sa.choose(sa.saib)
		if err != nil {
			sa.notifyPlain(isakmp.NotifyNoProposalChosen)
			return err
		}
		sa.readVendorIDs(ps)
		if err := sa.newDH(sa.Suite.Group); err != nil {
			return err
		}
		sa.gxi, sa.ni = isakmp.Find(ps, isakmp.PayloadKE), isakmp.Find(ps, isakmp.PayloadNonce)
		sa.gxr, sa.nr = sa.dh.Public(), t.random(32)
		id, err := isakmp.ParseID(isakmp.Find(ps, isakmp.PayloadID))
		if err != nil {
			return err
		}
		if t.Config.RemoteID != nil && !t.Config.RemoteID(id) {
			return errors.New("ikev1: peer identity not accepted")
		}
		sa.PeerID = id
		if err := sa.derive(); err != nil {
			return err
		}
		lid, err := t.localID()
		if err != nil {
			return err
		}
		sa.idb = lid.Marshal()
		auth, err := sa.authPayloads(false, sa.idb)
		if err != nil {
			return err
		}
		out := []isakmp.Payload{
			{Type: isakmp.PayloadSA, Body: ans}, {Type: isakmp.PayloadKE, Body: sa.gxr},
			{Type: isakmp.PayloadNonce, Body: sa.nr}, {Type: isakmp.PayloadID, Body: sa.idb},
		}
		out = append(out, auth...)
		if signatureAuth(sa.Suite.Auth) {
			out = append(out, certReq())
		}
		if sa.PeerNATT {
			out = append(out, isakmp.Payload{Type: isakmp.PayloadVendorID, Body: isakmp.VendorNATT})
		}
		out = append(out, isakmp.Payload{Type: isakmp.PayloadVendorID, Body: isakmp.VendorDPD})
		if sa.PeerNATT {
			out = append(out, sa.natPayloads()...)
		}
		sa.State = StateSentID
		sa.sendPhase1(isakmp.Marshal(sa.header(isakmp.ExchangeAggressive, 0), out), out)
	case !sa.Initiator && sa.State == StateSentID:
		if err := sa.checkAuth(ps, sa.PeerID, sa.authHash(true, sa.PeerID.Marshal())); err != nil {
			sa.State = StateDead
			return err
		}
		if sa.PeerNATT {
			sa.detectNAT(ps, local, remote)
		}
		t.moved(local, remote)
		sa.established()
		sa.readInitialContact(ps)
	default:
		return fmt.Errorf("ikev1: unexpected aggressive mode message in state %v", sa.State)
	}
	return nil
}

// derive computes g^xy and the key schedule.
func (sa *ISAKMPSA) derive() error {
	peer := sa.gxr
	if !sa.Initiator {
		peer = sa.gxi
	}
	gxy, err := sa.dh.Shared(peer)
	if err != nil {
		return err
	}
	k, err := deriveKeys(sa.Suite, sa.t.Config.PSK, sa.ni, sa.nr, gxy, sa.gxi, sa.gxr, sa.ICookie, sa.RCookie)
	if err != nil {
		return err
	}
	blk, err := blockCipher(sa.Suite, k.enc)
	if err != nil {
		return err
	}
	sa.k, sa.blk = k, blk
	return nil
}

// authHash is HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b |
// IDii_b) or HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b |
// IDir_b) (RFC 2409 section 5).
func (sa *ISAKMPSA) authHash(initiator bool, idb []byte) []byte {
	h := sa.Suite.newHash()
	if initiator {
		return prf(h, sa.k.skeyid, sa.gxi, sa.gxr, sa.ICookie[:], sa.RCookie[:], sa.saib, idb)
	}
	return prf(h, sa.k.skeyid, sa.gxr, sa.gxi, sa.RCookie[:], sa.ICookie[:], sa.saib, idb)
}

// verifyPeer checks the peer's ID against the configuration and its
// HASH (the initiator's when we respond).
func (sa *ISAKMPSA) verifyPeer(ps []isakmp.Payload, peerIsInitiator bool) error {
	idb := isakmp.Find(ps, isakmp.PayloadID)
	id, err := isakmp.ParseID(idb)
	if err != nil {
		return err
	}
	if sa.t.Config.RemoteID != nil && !sa.t.Config.RemoteID(id) {
		return errors.New("ikev1: peer identity not accepted")
	}
	if err := sa.checkAuth(ps, id, sa.authHash(peerIsInitiator, idb)); err != nil {
		return err
	}
	sa.PeerID = id
	return nil
}

// checkAuth checks the peer's HASH payload against hash (pre-shared
// keys), or its certificate and its SIG payload over hash (RFC 2409
// section 5.1).
func (sa *ISAKMPSA) checkAuth(ps []isakmp.Payload, id isakmp.ID, hash []byte) error {
	if signatureAuth(sa.Suite.Auth) {
		return sa.verifySig(ps, id, hash)
	}
	got := isakmp.Find(ps, isakmp.PayloadHash)
	if got == nil {
		return errors.New("ikev1: HASH payload missing")
	}
	if !hmac.Equal(hash, got) {
		return errors.New("ikev1: peer's HASH does not verify (pre-shared key mismatch?)")
	}
	return nil
}

// authPayloads prove our identity idb: the HASH payload (pre-shared
// keys), or our certificates and the SIG payload (signatures).
func (sa *ISAKMPSA) authPayloads(initiator bool, idb []byte) ([]isakmp.Payload, error) {
	hash := sa.authHash(initiator, idb)
	if signatureAuth(sa.Suite.Auth) {
		return sa.signPayloads(hash)
	}
	return []isakmp.Payload{{Type: isakmp.PayloadHash, Body: hash}}, nil
}

// idAuth is the last main mode message's content: ID, then HASH or
// CERT and SIG.
func (sa *ISAKMPSA) idAuth(initiator bool) ([]isakmp.Payload, error) {
	id, err := sa.t.localID()
	if err != nil {
		return nil, err
	}
	sa.idb = id.Marshal()
	auth, err := sa.authPayloads(initiator, sa.idb)
	if err != nil {
		return nil, err
	}
	return append([]isakmp.Payload{{Type: isakmp.PayloadID, Body: sa.idb}}, auth...), nil
}

// sendEncryptedPhase1 encrypts the last phase 1 message under the phase
// 1 IV chain.
func (sa *ISAKMPSA) sendEncryptedPhase1(ps []isakmp.Payload) {
	h := sa.header(sa.exchangeType(), 0)
	var pkt []byte
	pkt, sa.k.iv = sa.seal(h, ps, sa.k.iv)
	sa.sendPhase1(pkt, ps)
}

// seal renders an encrypted message (RFC 2408 section 3.1, flag E).
func (sa *ISAKMPSA) seal(h isakmp.Header, ps []isakmp.Payload, iv []byte) (pkt, next []byte) {
	h.Flags |= isakmp.FlagEncryption
	h.Next = ps[0].Type
	ct, next := encrypt(sa.blk, iv, isakmp.AppendPayloads(nil, ps))
	h.Length = uint32(isakmp.HeaderLen + len(ct))
	return append(h.Append(nil), ct...), next
}

func (sa *ISAKMPSA) established() {
	t := sa.t
	now := t.now()
	sa.State, sa.EstablishedAt, sa.retryAt = StateEstablished, now, time.Time{}
	t.Stats.Phase1++
	sa.expireAt = time.Time{}
	if !sa.Initiator {
		sa.out = sa.out[:len(sa.out):len(sa.out)] // kept to answer a retransmitted last message
	}
	if sa.lifetime > 0 {
		sa.expireAt = now.Add(sa.lifetime)
		if sa.Initiator {
			sa.rekeyAt = now.Add(sa.lifetime * 9 / 10)
		}
	}
	t.activity = now
	// Older ISAKMP SAs of the tunnel are replaced (phase 1 rekey): they
	// are deleted after the grace, their ESP SAs stay.
	//
	// Both sides initiating at once (establish-tunnels immediately on
	// both) gives two SAs established within moments of each other, in an
	// order each side may see differently: then both keep the one with the
	// greater cookie pair, so they never delete different ones.
	for _, o := range t.SAs {
		if o == sa || o.State != StateEstablished || !o.deleteAt.IsZero() {
			continue
		}
		loser := o
		if now.Sub(o.EstablishedAt) < collisionWindow && cookies(o) > cookies(sa) {
			loser = sa
		}
		loser.deleteAt, loser.rekeyAt = now.Add(DeleteGrace), time.Time{}
	}
	t.opts.Host.Event(t, Event{Kind: EventPhase1Up, SA: sa})
	for ; t.wantQM > 0; t.wantQM-- {
		var rekey *Child
		for _, c := range t.Children {
			if c.rekeying {
				rekey = c
			}
		}
		t.startQuick(sa, rekey)
	}
}

// initialContact is the INITIAL-CONTACT notify (RFC 2407 section
// 4.6.3.3) that the initiator adds, encrypted, to its last phase 1
// message when the tunnel has nothing with the peer yet, as Junos does:
// the peer then drops what it still holds from before (a reboot of
// ours).
func (sa *ISAKMPSA) initialContact() []isakmp.Payload {
	t := sa.t
	if len(t.Children) > 0 || t.Established() != nil {
		return nil
	}
	return []isakmp.Payload{{Type: isakmp.PayloadNotify, Body: isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP,
		SPI: append(sa.ICookie[:], sa.RCookie[:]...), Type: isakmp.NotifyInitialContact}.Marshal()}}
}

// readInitialContact honours the peer's INITIAL-CONTACT: the other
// ISAKMP SAs and the ESP pairs of the tunnel are dropped without telling
// the peer, which no longer has them.
func (sa *ISAKMPSA) readInitialContact(ps []isakmp.Payload) {
	t := sa.t
	for _, b := range isakmp.All(ps, isakmp.PayloadNotify) {
		n, err := isakmp.ParseNotify(b)
		if err != nil || n.Type != isakmp.NotifyInitialContact {
			continue
		}
		// What the peer negotiated moments ago (both sides initiating
		// at once, each with INITIAL-CONTACT) is not from before.
		old := t.now().Add(-collisionWindow)
		for _, o := range t.SAs {
			if o != sa && o.State == StateEstablished && o.EstablishedAt.Before(old) {
				o.State = StateDead
			}
		}
		for _, c := range append([]*Child(nil), t.Children...) {
			if c.CreatedAt.Before(old) {
				t.deleteChild(c, false)
			}
		}
		t.prune()
		return
	}
}

// collisionWindow: two ISAKMP SAs, or two ESP SA pairs of the same
// selectors, made this close together come from a simultaneous
// initiation by both sides, not from a rekey.
const collisionWindow = 2 * time.Second

func cookies(sa *ISAKMPSA) string { return string(sa.ICookie[:]) + string(sa.RCookie[:]) }

// notifyPlain answers a phase 1 failure with an unencrypted
// informational notify (RFC 2408 section 5.5).
func (sa *ISAKMPSA) notifyPlain(typ uint16) {
	ps := []isakmp.Payload{{Type: isakmp.PayloadNotify, Body: isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP, Type: typ}.Marshal()}}
	h := sa.header(isakmp.ExchangeInformational, 0)
	sa.t.send(h, ps, isakmp.Marshal(h, ps))
}

// delete ends the ISAKMP SA, telling the peer when notify is set and the
// SA is established.
func (sa *ISAKMPSA) delete(notify bool) {
	if sa.State == StateDead {
		return
	}
	if notify && sa.State == StateEstablished {
		sa.t.Stats.DeletesOut++
		spi := append(sa.ICookie[:], sa.RCookie[:]...)
		sa.sendInfo([]isakmp.Payload{{Type: isakmp.PayloadDelete, Body: isakmp.Delete{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP, SPIs: [][]byte{spi}}.Marshal()}})
	}
	sa.State = StateDead
}
