package ikev1

import (
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/sitesec/sitesec/kmd/isakmp"
	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/transform"
)

// exchange is one quick mode or informational exchange under an ISAKMP
// SA, by message ID (RFC 2409 section 5.5 and 5.7).
type exchange struct {
	mid       uint32
	quick     bool
	initiator bool
	iv        []byte
	state     int // quick: 1 sent/received message 1, 2 message 2, 3 done
	ni, nr    []byte
	dh        transform.DH
	gxy       []byte
	spiIn     uint32
	auxIn     uint32 // ESP's inbound SPI in a bundle
	suite     Phase2
	encap     bool
	localTS   message.Selector
	remoteTS  message.Selector
	child     *Child
	rekeys    *Child
	out       []byte
	lastIn    []byte
	tries     int
	retryAt   time.Time
	expireAt  time.Time
}

func (sa *ISAKMPSA) newMID() uint32 {
	for {
		mid := binary.BigEndian.Uint32(sa.t.random(4))
		if _, used := sa.exch[mid]; mid != 0 && !used {
			return mid
		}
	}
}

// qmHash is HASH(1) = prf(SKEYID_a, M-ID | rest) and HASH(2) =
// prf(SKEYID_a, M-ID | Ni_b | rest) where rest is the message after the
// HASH payload (RFC 2409 section 5.5); informational messages use
// HASH(1) (section 5.7).
func (sa *ISAKMPSA) qmHash(mid uint32, ni []byte, rest []isakmp.Payload) []byte {
	m := binary.BigEndian.AppendUint32(nil, mid)
	return prf(sa.Suite.newHash(), sa.k.a, m, ni, isakmp.AppendPayloads(nil, rest))
}

// hash3 is HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b).
func (sa *ISAKMPSA) hash3(x *exchange) []byte {
	return prf(sa.Suite.newHash(), sa.k.a, []byte{0}, binary.BigEndian.AppendUint32(nil, x.mid), x.ni, x.nr)
}

// selectorID renders a traffic selector as an IPsec DOI identity: a
// subnet when it is a prefix, an address range otherwise (RFC 2407
// section 4.6.2.1).
func selectorID(s message.Selector) isakmp.ID {
	id := isakmp.ID{Protocol: s.Protocol}
	if s.StartPort == s.EndPort {
		id.Port = s.StartPort
	}
	v6 := s.Start.Is6() && !s.Start.Is4In6()
	for bits := s.Start.BitLen(); bits >= 0; bits-- {
		p := netip.PrefixFrom(s.Start, bits).Masked()
		if p.Addr() != s.Start {
			break
		}
		if last(p) == s.End {
			mask := make([]byte, s.Start.BitLen()/8)
			for i := 0; i < bits; i++ {
				mask[i/8] |= 0x80 >> (i % 8)
			}
			id.Type, id.Data = isakmp.IDIPv4Subnet, append(s.Start.AsSlice(), mask...)
			if v6 {
				id.Type = isakmp.IDIPv6Subnet
			}
			return id
		}
	}
	id.Type, id.Data = isakmp.IDIPv4Range, append(s.Start.AsSlice(), s.End.AsSlice()...)
	if v6 {
		id.Type = isakmp.IDIPv6Range
	}
	return id
}

func last(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// idSelector reads an identity of quick mode back into a selector.
func idSelector(id isakmp.ID) (message.Selector, error) {
	s := message.Selector{Protocol: id.Protocol, StartPort: id.Port, EndPort: id.Port}
	if id.Port == 0 {
		s.EndPort = 0xffff
	}
	n := 4
	switch id.Type {
	case isakmp.IDIPv6, isakmp.IDIPv6Subnet, isakmp.IDIPv6Range:
		n = 16
	}
	switch id.Type {
	case isakmp.IDIPv4, isakmp.IDIPv6:
		if len(id.Data) != n {
			return s, errors.New("ikev1: bad address identity")
		}
		s.Start, _ = netip.AddrFromSlice(id.Data)
		s.End = s.Start
	case isakmp.IDIPv4Subnet, isakmp.IDIPv6Subnet:
		if len(id.Data) != 2*n {
			return s, errors.New("ikev1: bad subnet identity")
		}
		a, _ := netip.AddrFromSlice(id.Data[:n])
		bits := 0
		for _, c := range id.Data[n:] {
			for j := 7; j >= 0 && c&(1<<j) != 0; j-- {
				bits++
			}
		}
		p := netip.PrefixFrom(a, bits).Masked()
		s.Start, s.End = p.Addr(), last(p)
	case isakmp.IDIPv4Range, isakmp.IDIPv6Range:
		if len(id.Data) != 2*n {
			return s, errors.New("ikev1: bad range identity")
		}
		s.Start, _ = netip.AddrFromSlice(id.Data[:n])
		s.End, _ = netip.AddrFromSlice(id.Data[n:])
		if s.End.Less(s.Start) {
			return s, errors.New("ikev1: empty range identity")
		}
	default:
		return s, fmt.Errorf("ikev1: identity type %d in quick mode", id.Type)
	}
	return s, nil
}

// within reports whether s lies inside c (IKEv1 has no narrowing: the
// responder accepts the initiator's selectors when its policy covers
// them).
func within(s, c message.Selector) bool {
	return !s.Start.Less(c.Start) && !c.End.Less(s.End) &&
		(c.Protocol == 0 || c.Protocol == s.Protocol) &&
		s.StartPort >= c.StartPort && s.EndPort <= c.EndPort
}

func hostSelector(a netip.Addr) message.Selector {
	return message.Selector{Start: a, End: a, EndPort: 0xffff}
}

// startQuick sends quick mode message 1 (RFC 2409 section 5.5):
// HDR*, HASH(1), SA, Ni [, KE ] [, IDci, IDcr ].
func (t *Tunnel) startQuick(sa *ISAKMPSA, rekeys *Child) error {
	x := &exchange{mid: sa.newMID(), quick: true, initiator: true, rekeys: rekeys, encap: t.NATLocal || t.NATRemote}
	x.iv = messageIV(sa.Suite.newHash(), sa.k.iv, x.mid)
	x.spiIn = binary.BigEndian.Uint32(t.random(4)) | 0x100
	x.ni = t.random(32)
	x.localTS, x.remoteTS = t.Config.LocalTS, t.Config.RemoteTS
	encap := uint16(isakmp.EncapTunnel)
	if x.encap {
		encap = isakmp.EncapUDPTunnel
	}
	x.auxIn = binary.BigEndian.Uint32(t.random(4)) | 0x100
	var props []isakmp.Proposal
	group := uint16(0)
	for _, s := range t.Config.ESP {
		if s.AH && x.encap {
			continue // AH covers the outer addresses: not through a NAT (RFC 3947 is ESP only)
		}
		if s.Lifetime == 0 {
			s.Lifetime = t.Config.ChildLifetime
		}
		n := uint8(1)
		if len(props) > 0 {
			n = props[len(props)-1].Number + 1
		}
		props = append(props, s.proposals(n, x.spiIn, x.auxIn, encap)...)
		if group == 0 {
			group = s.Group
		}
	}
	if len(props) == 0 {
		return errors.New("ikev1: only AH proposals, and a NAT between the gateways")
	}
	rest := []isakmp.Payload{
		{Type: isakmp.PayloadSA, Body: isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: props}.Marshal()},
		{Type: isakmp.PayloadNonce, Body: x.ni},
	}
	if group != 0 {
		dh, err := transform.NewDH(group, t.opts.Rand)
		if err != nil {
			return err
		}
		x.dh = dh
		rest = append(rest, isakmp.Payload{Type: isakmp.PayloadKE, Body: dh.Public()})
	}
	rest = append(rest,
		isakmp.Payload{Type: isakmp.PayloadID, Body: selectorID(x.localTS).Marshal()},
		isakmp.Payload{Type: isakmp.PayloadID, Body: selectorID(x.remoteTS).Marshal()})
	ps := append([]isakmp.Payload{{Type: isakmp.PayloadHash, Body: sa.qmHash(x.mid, nil, rest)}}, rest...)
	x.state = 1
	sa.exch[x.mid] = x
	sa.sendExchange(x, ps, true)
	return nil
}

// sendExchange encrypts and sends a message of exchange x; requests are
// retransmitted until answered.
func (sa *ISAKMPSA) sendExchange(x *exchange, ps []isakmp.Payload, retransmit bool) {
	ex := isakmp.ExchangeInformational
	if x.quick {
		ex = isakmp.ExchangeQuick
	}
	h := sa.header(ex, x.mid)
	x.out, x.iv = sa.seal(h, ps, x.iv)
	x.tries = 1
	x.retryAt = time.Time{}
	if retransmit {
		x.retryAt = sa.t.now().Add(RetransmitBase)
	}
	sa.t.send(h, ps, x.out)
}

func (sa *ISAKMPSA) retransmitExchange(x *exchange) {
	if x.tries >= Retransmits {
		delete(sa.exch, x.mid)
		if x.rekeys != nil {
			x.rekeys.rekeying = false
		}
		if x.quick && x.initiator && len(sa.t.Children) == 0 {
			// The tunnel never came up: start over later from scratch.
			sa.t.die(errors.New("ikev1: quick mode timed out"))
		}
		return
	}
	x.tries++
	sa.t.Stats.Retransmits++
	x.retryAt = sa.t.now().Add(RetransmitBase << (x.tries - 1))
	sa.t.opts.Host.Send(sa.t, x.out)
}

// open decrypts a message of exchange x (created with the first IV of
// its message ID when new).
func (sa *ISAKMPSA) open(h isakmp.Header, body []byte, x *exchange) ([]isakmp.Payload, error) {
	if h.Flags&isakmp.FlagEncryption == 0 {
		return nil, errors.New("ikev1: unencrypted message after phase 1")
	}
	pt, next, err := decrypt(sa.blk, x.iv, body)
	if err != nil {
		return nil, err
	}
	ps, _, err := isakmp.ParsePayloads(h.Next, pt)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 || ps[0].Type != isakmp.PayloadHash {
		return nil, errors.New("ikev1: first payload is not HASH")
	}
	x.iv = next
	return ps, nil
}

func (sa *ISAKMPSA) handleQuick(local, remote netip.AddrPort, h isakmp.Header, body, pkt []byte) error {
	t := sa.t
	if sa.State != StateEstablished {
		return errors.New("ikev1: quick mode before phase 1 completed")
	}
	x := sa.exch[h.MessageID]
	if x != nil && x.lastIn != nil && string(x.lastIn) == string(pkt) {
		if !x.initiator && x.out != nil && x.state == 2 {
			t.Stats.Retransmits++
			t.opts.Host.Send(t, x.out)
		}
		return nil
	}
	fresh := x == nil
	if fresh {
		if h.MessageID == 0 {
			return errors.New("ikev1: quick mode with message ID 0")
		}
		x = &exchange{mid: h.MessageID, quick: true, iv: messageIV(sa.Suite.newHash(), sa.k.iv, h.MessageID)}
	}
	iv := x.iv
	ps, err := sa.open(h, body, x)
	if err != nil {
		x.iv = iv
		return err
	}
	if t.opts.Trace != nil {
		t.opts.Trace(t, false, h, ps)
	}
	switch {
	case fresh:
		err = sa.quickResponder(x, ps)
		if err == nil {
			sa.exch[x.mid] = x
		}
	case x.initiator && x.state == 1:
		err = sa.quickInitiator(x, ps)
	case !x.initiator && x.state == 2:
		err = sa.quickDone(x, ps)
	default:
		err = errors.New("ikev1: unexpected quick mode message")
	}
	if err != nil {
		x.iv = iv
		return err
	}
	x.lastIn = pkt
	t.moved(local, remote)
	return nil
}

// quickResponder answers message 1 with HDR*, HASH(2), SA, Nr [, KE ]
// [, IDci, IDcr ] and installs the inbound SA.
func (sa *ISAKMPSA) quickResponder(x *exchange, ps []isakmp.Payload) error {
	t := sa.t
	if !hmac.Equal(ps[0].Body, sa.qmHash(x.mid, nil, ps[1:])) {
		return errors.New("ikev1: quick mode HASH(1) does not verify")
	}
	if err := need(ps, isakmp.PayloadSA, isakmp.PayloadNonce); err != nil {
		return err
	}
	x.ni = isakmp.Find(ps, isakmp.PayloadNonce)
	offer, err := isakmp.ParseSA(isakmp.Find(ps, isakmp.PayloadSA))
	if err != nil {
		return err
	}
	// Selectors: IDci is the initiator's side (our remote), IDcr ours.
	ids := isakmp.All(ps, isakmp.PayloadID)
	switch len(ids) {
	case 0:
		x.remoteTS, x.localTS = hostSelector(t.Remote.Addr()), hostSelector(t.Local.Addr())
	case 2:
		ci, err1 := isakmp.ParseID(ids[0])
		cr, err2 := isakmp.ParseID(ids[1])
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if x.remoteTS, err = idSelector(ci); err != nil {
			return err
		}
		if x.localTS, err = idSelector(cr); err != nil {
			return err
		}
	default:
		return errors.New("ikev1: quick mode needs two identities or none")
	}
	if !t.Config.allowed(x.localTS, x.remoteTS) {
		sa.sendNotify(isakmp.NotifyInvalidIDInformation, isakmp.ProtoESP, nil)
		return fmt.Errorf("ikev1: proxy identities %v-%v / %v-%v outside the policy", x.localTS.Start, x.localTS.End, x.remoteTS.Start, x.remoteTS.End)
	}
	chosen, spiOut, auxOut := t.selectPhase2(x, offer.Proposals)
	if chosen == nil {
		sa.sendNotify(isakmp.NotifyNoProposalChosen, isakmp.ProtoESP, nil)
		return errors.New("ikev1: no quick mode proposal chosen")
	}
	ke := isakmp.Find(ps, isakmp.PayloadKE)
	if (x.suite.Group != 0) != (ke != nil) {
		return errors.New("ikev1: KE payload and PFS group disagree")
	}
	x.spiIn = binary.BigEndian.Uint32(t.random(4)) | 0x100
	chosen[0].SPI = binary.BigEndian.AppendUint32(nil, x.spiIn)
	if len(chosen) == 2 {
		x.auxIn = binary.BigEndian.Uint32(t.random(4)) | 0x100
		chosen[1].SPI = binary.BigEndian.AppendUint32(nil, x.auxIn)
	}
	x.nr = t.random(32)
	rest := []isakmp.Payload{
		{Type: isakmp.PayloadSA, Body: isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: chosen}.Marshal()},
		{Type: isakmp.PayloadNonce, Body: x.nr},
	}
	if x.suite.Group != 0 {
		dh, err := transform.NewDH(x.suite.Group, t.opts.Rand)
		if err != nil {
			return err
		}
		if x.gxy, err = dh.Shared(ke); err != nil {
			return err
		}
		rest = append(rest, isakmp.Payload{Type: isakmp.PayloadKE, Body: dh.Public()})
	}
	if len(ids) == 2 {
		rest = append(rest, isakmp.Payload{Type: isakmp.PayloadID, Body: ids[0]}, isakmp.Payload{Type: isakmp.PayloadID, Body: ids[1]})
	}
	if l := t.Config.ChildLifetime; l > 0 && (x.suite.Lifetime == 0 || x.suite.Lifetime > l) {
		// RFC 2407 section 4.6.3.1: our lifetime is shorter than the
		// one proposed; tell the initiator so that it rekeys in time.
		data := isakmp.AppendAttrs(nil, []isakmp.Attr{isakmp.Basic(isakmp.AttrSALifeType, isakmp.LifeSeconds), isakmp.Long(isakmp.AttrSALifeDuration, uint32(l/time.Second))})
		rest = append(rest, isakmp.Payload{Type: isakmp.PayloadNotify, Body: isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: chosen[0].Protocol,
			SPI: binary.BigEndian.AppendUint32(nil, x.spiIn), Type: isakmp.NotifyResponderLifetime, Data: data}.Marshal()})
	}
	out := append([]isakmp.Payload{{Type: isakmp.PayloadHash, Body: sa.qmHash(x.mid, x.ni, rest)}}, rest...)
	x.child = sa.newChild(x, spiOut, auxOut)
	// The inbound SA goes in before the answer leaves: the initiator
	// may send on it as soon as it reads message 2.
	if err := t.opts.Host.InstallIn(t, x.child); err != nil {
		return err
	}
	x.state = 2
	sa.sendExchange(x, out, false)
	// Message 3 normally follows at once; without it the SA is still
	// used once the initiator sends on it (strongSwan does the same).
	x.expireAt = t.now().Add(RetransmitBase * (1<<Retransmits - 1))
	return nil
}

// quickInitiator reads message 2, sends HASH(3) and installs the SA.
func (sa *ISAKMPSA) quickInitiator(x *exchange, ps []isakmp.Payload) error {
	t := sa.t
	if !hmac.Equal(ps[0].Body, sa.qmHash(x.mid, x.ni, ps[1:])) {
		return errors.New("ikev1: quick mode HASH(2) does not verify")
	}
	var responderLifetime time.Duration
	for _, n := range isakmp.All(ps, isakmp.PayloadNotify) {
		nt, err := isakmp.ParseNotify(n)
		if err == nil && nt.Type < 16384 {
			return fmt.Errorf("ikev1: quick mode refused (notify %d)", nt.Type)
		}
		if err == nil && nt.Type == isakmp.NotifyResponderLifetime {
			responderLifetime = lifetimeOf(nt.Data)
		}
	}
	if err := need(ps, isakmp.PayloadSA, isakmp.PayloadNonce); err != nil {
		return err
	}
	x.nr = isakmp.Find(ps, isakmp.PayloadNonce)
	ans, err := isakmp.ParseSA(isakmp.Find(ps, isakmp.PayloadSA))
	if err != nil {
		return err
	}
	s, _, spiOut, auxOut, err := readPhase2(ans.Proposals)
	if err != nil {
		return fmt.Errorf("ikev1: quick mode answer: %w", err)
	}
	ok := false
	for _, c := range t.Config.ESP {
		ok = ok || c.same(s)
	}
	if !ok {
		return errors.New("ikev1: responder chose a transform we did not offer")
	}
	x.suite = s
	if s.Group != 0 {
		ke := isakmp.Find(ps, isakmp.PayloadKE)
		if ke == nil || x.dh == nil || x.dh.Group() != s.Group {
			return errors.New("ikev1: PFS answer without our group's KE")
		}
		if x.gxy, err = x.dh.Shared(ke); err != nil {
			return err
		}
	}
	if responderLifetime > 0 && (x.suite.Lifetime == 0 || responderLifetime < x.suite.Lifetime) {
		x.suite.Lifetime = responderLifetime
	}
	c := sa.newChild(x, spiOut, auxOut)
	out := []isakmp.Payload{{Type: isakmp.PayloadHash, Body: sa.hash3(x)}}
	sa.sendExchange(x, out, false)
	x.state, x.retryAt = 3, time.Time{}
	// Kept a while to answer a retransmitted message 2 with message 3.
	x.expireAt = t.now().Add(RetransmitBase * (1<<Retransmits - 1))
	return t.installChild(c, x.rekeys)
}

// quickDone reads HASH(3) and puts the outbound SA in.
func (sa *ISAKMPSA) quickDone(x *exchange, ps []isakmp.Payload) error {
	if !hmac.Equal(ps[0].Body, sa.hash3(x)) {
		return errors.New("ikev1: quick mode HASH(3) does not verify")
	}
	x.state = 3
	t := sa.t
	c := x.child
	replaces, lost := t.predecessor(c, nil)
	return t.installOut(c, replaces, lost)
}

// installOut puts the outbound SA of c in, taking over from replaces,
// which goes after the grace. A pair that lost a simultaneous
// negotiation keeps only its inbound SA and goes after the grace too.
func (t *Tunnel) installOut(c, replaces *Child, lost bool) error {
	t.Children = append(t.Children, c)
	if lost {
		c.deleteAt = t.now().Add(DeleteGrace)
		return nil
	}
	if err := t.opts.Host.InstallOut(t, c, replaces); err != nil {
		return err
	}
	c.outInstalled = true
	if replaces != nil {
		replaces.rekeying = false
		replaces.deleteAt = t.now().Add(DeleteGrace)
	}
	t.Stats.Phase2++
	t.opts.Host.Event(t, Event{Kind: EventPhase2Up})
	return nil
}

// installChild installs both directions of a CHILD the initiator
// negotiated; the one it rekeys is deleted after the grace.
func (t *Tunnel) installChild(c *Child, rekeys *Child) error {
	if err := t.opts.Host.InstallIn(t, c); err != nil {
		return err
	}
	replaces, lost := t.predecessor(c, rekeys)
	return t.installOut(c, replaces, lost)
}

func childKey(c *Child) uint64 {
	a, b := c.SPIIn, c.SPIOut
	if a < b {
		a, b = b, a
	}
	return uint64(a)<<32 | uint64(b)
}

// predecessor finds the pair that c takes over from: the one it rekeys,
// or the current pair of the same selectors. When both sides negotiated
// a pair at once, both keep the pair with the greater SPIs (lost: c is
// the other), so that they never delete different ones.
func (t *Tunnel) predecessor(c, rekeys *Child) (replaces *Child, lost bool) {
	if rekeys != nil && rekeys.deleteAt.IsZero() {
		return rekeys, false
	}
	for _, o := range t.Children {
		if o == c || !o.deleteAt.IsZero() || o.LocalTS != c.LocalTS || o.RemoteTS != c.RemoteTS {
			continue
		}
		if !o.rekeying && c.CreatedAt.Sub(o.CreatedAt) < collisionWindow && childKey(o) > childKey(c) {
			return nil, true
		}
		replaces = o
	}
	return replaces, false
}

// newChild cuts the keys of both directions (RFC 2409 section 5.5: each
// direction's KEYMAT uses the protocol and SPI its receiver chose; in a
// bundle AH's KEYMAT gives the integrity key, ESP's the encryption key).
func (sa *ISAKMPSA) newChild(x *exchange, spiOut, auxOut uint32) *Child {
	t := sa.t
	h := sa.Suite.newHash()
	ni, nr := x.ni, x.nr
	el, il := x.suite.keyLens()
	c := &Child{
		SPIIn: x.spiIn, SPIOut: spiOut, Suite: x.suite,
		LocalTS: x.localTS, RemoteTS: x.remoteTS, UDPEncap: x.encap,
		Initiator: x.initiator, CreatedAt: t.now(), Reqid: t.nextReqid(),
	}
	switch {
	case !x.suite.AH:
		in := keymat(h, sa.k.d, x.gxy, isakmp.ProtoESP, x.spiIn, ni, nr, el+il)
		out := keymat(h, sa.k.d, x.gxy, isakmp.ProtoESP, spiOut, ni, nr, el+il)
		c.EncrIn, c.IntegIn, c.EncrOut, c.IntegOut = in[:el], in[el:], out[:el], out[el:]
	default:
		c.IntegIn = keymat(h, sa.k.d, x.gxy, isakmp.ProtoAH, x.spiIn, ni, nr, il)
		c.IntegOut = keymat(h, sa.k.d, x.gxy, isakmp.ProtoAH, spiOut, ni, nr, il)
		if x.suite.Bundle() {
			c.AuxIn, c.AuxOut = x.auxIn, auxOut
			c.EncrIn = keymat(h, sa.k.d, x.gxy, isakmp.ProtoESP, x.auxIn, ni, nr, el)
			c.EncrOut = keymat(h, sa.k.d, x.gxy, isakmp.ProtoESP, auxOut, ni, nr, el)
		}
	}
	lifetime := t.Config.ChildLifetime
	if x.suite.Lifetime > 0 && (lifetime == 0 || x.suite.Lifetime < lifetime) {
		lifetime = x.suite.Lifetime
	}
	if lifetime > 0 {
		c.Lifetime = lifetime
		t.lifetimes(c, lifetime)
	}
	return c
}

// lifetimeOf reads the seconds of a RESPONDER-LIFETIME notify's
// attributes (RFC 2407 section 4.6.3.1); 0 when there are none.
func lifetimeOf(data []byte) time.Duration {
	as, err := isakmp.ParseAttrs(data)
	if err != nil {
		return 0
	}
	seconds := true
	for _, a := range as {
		v, ok := a.Uint()
		switch {
		case !ok:
		case a.Type == isakmp.AttrSALifeType:
			seconds = v == isakmp.LifeSeconds
		case a.Type == isakmp.AttrSALifeDuration && seconds && v < 1<<31:
			return time.Duration(v) * time.Second
		}
	}
	return 0
}

// selectPhase2 is the responder's choice among the offered proposals
// (RFC 2408 section 4.2: proposals with the same number are one offer,
// here ESP, AH, or AH and ESP): the first offer, in the initiator's
// order, with a combination of transforms one of our suites is. It
// returns the chosen proposals, each with the one chosen transform, and
// the initiator's SPIs (AH's or ESP's, and ESP's in a bundle).
func (t *Tunnel) selectPhase2(x *exchange, offer []isakmp.Proposal) ([]isakmp.Proposal, uint32, uint32) {
	for i := 0; i < len(offer); {
		j := i
		for j < len(offer) && offer[j].Number == offer[i].Number {
			j++
		}
		group := offer[i:j]
		i = j
		if len(group) > 2 {
			continue
		}
		// Every combination of one transform per proposal.
		idx := make([]int, len(group))
		for {
			cand := make([]isakmp.Proposal, len(group))
			for k, p := range group {
				cand[k] = p
				if idx[k] < len(p.Transforms) {
					cand[k].Transforms = []isakmp.Transform{p.Transforms[idx[k]]}
				} else {
					cand[k].Transforms = nil
				}
			}
			if s, encap, spi, aux, err := readPhase2(cand); err == nil {
				udp := encap == isakmp.EncapUDPTunnel || encap == isakmp.EncapUDPTunnelDraft
				for _, c := range t.Config.ESP {
					if c.same(s) && (encap == isakmp.EncapTunnel || (udp && !s.AH)) {
						x.suite, x.encap = s, udp
						return cand, spi, aux
					}
				}
			}
			k := 0
			for k < len(idx) {
				idx[k]++
				if idx[k] < len(group[k].Transforms) {
					break
				}
				idx[k] = 0
				k++
			}
			if k == len(idx) {
				break
			}
		}
	}
	return nil, 0, 0
}

// readPhase2 reads one offer or answer of one transform per proposal:
// ESP, AH, or AH and ESP (in either order) with the same encapsulation
// mode; the bundle's ESP must not authenticate (AH does). It returns the
// suite, the encapsulation mode and the SPIs (AH's or ESP's, and ESP's in
// a bundle).
func readPhase2(ps []isakmp.Proposal) (Phase2, uint16, uint32, uint32, error) {
	var esp, ah *isakmp.Proposal
	for k := range ps {
		p := &ps[k]
		if len(p.Transforms) != 1 || len(p.SPI) != 4 {
			return Phase2{}, 0, 0, 0, errors.New("not one transform with a 4-byte SPI per proposal")
		}
		switch {
		case p.Protocol == isakmp.ProtoESP && esp == nil:
			esp = p
		case p.Protocol == isakmp.ProtoAH && ah == nil:
			ah = p
		default:
			return Phase2{}, 0, 0, 0, fmt.Errorf("protocol %d", p.Protocol)
		}
	}
	switch {
	case ah == nil && esp != nil:
		s, encap, err := phase2Of(esp.Transforms[0])
		return s, encap, binary.BigEndian.Uint32(esp.SPI), 0, err
	case ah != nil:
		s, encap, err := ahPhase2Of(ah.Transforms[0])
		if err != nil || esp == nil {
			return s, encap, binary.BigEndian.Uint32(ah.SPI), 0, err
		}
		e, encap2, err := phase2Of(esp.Transforms[0])
		if err != nil && e.ESP != isakmp.ESPAESGCM16 && e.ESP != isakmp.ESPNull {
			// An ESP without authentication fails Phase2.Valid alone;
			// in a bundle it is what is wanted.
			err = nil
		}
		if err != nil || e.AuthAlg != 0 || encap2 != encap || e.Group != s.Group {
			return s, 0, 0, 0, errors.New("bundle: ESP half does not fit")
		}
		s.ESP, s.KeyBits = e.ESP, e.KeyBits
		return s, encap, binary.BigEndian.Uint32(ah.SPI), binary.BigEndian.Uint32(esp.SPI), s.Valid()
	}
	return Phase2{}, 0, 0, 0, errors.New("no proposal")
}
