package ikesa

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/task"
	"github.com/sitesec/sitesec/kmd/transform"
)

// ikeRekey replaces the IKE SA with a new one in a CREATE_CHILD_SA
// exchange (RFC 7296 section 1.3.2); the CHILD SAs move to the new SA and
// the old one is deleted by the rekey initiator (section 2.18).
type ikeRekey struct {
	sa        *SA
	initiator bool
	newSA     *SA
	dh        transform.DH
	group     uint16
	ni, nr    []byte
	chosen    message.Proposal
	collision *ikeRekey
	retries   int
}

func (t *ikeRekey) Kind() task.Kind { return task.IKERekey }

func (t *ikeRekey) Build(m *message.Message) (task.Status, error) {
	sa := t.sa
	if m.IsResponse() {
		spi := binary.BigEndian.AppendUint64(nil, t.newSA.SPIr)
		t.chosen.SPI = spi
		m.Payloads = append(m.Payloads, &message.SA{Proposals: []message.Proposal{t.chosen}},
			&message.Nonce{Data: t.nr}, &message.KE{Group: t.dh.Group(), Data: t.dh.Public()})
		sa.State = StateRekeyed
		sa.opts.Host.Event(sa, Event{Kind: EventIKERekeyed, New: t.newSA})
		return task.Done, nil
	}
	if sa.State != StateEstablished {
		return task.Done, nil
	}
	if t.newSA == nil {
		n := newSA(sa.Config, sa.opts)
		n.Initiator = true
		spi, err := n.randomSPI()
		if err != nil {
			return task.Failed, err
		}
		n.SPIi = spi
		t.newSA = n
	}
	if t.group == 0 {
		t.group = sa.Suite.DH
	}
	var err error
	if t.dh == nil || t.dh.Group() != t.group {
		if t.dh, err = transform.NewDH(t.group, sa.opts.Rand); err != nil {
			return task.Failed, err
		}
	}
	if t.ni, err = sa.random(32); err != nil {
		return task.Failed, err
	}
	m.Payloads = append(m.Payloads,
		&message.SA{Proposals: withSPIBytes(sa.Config.IKEProposals, binary.BigEndian.AppendUint64(nil, t.newSA.SPIi))},
		&message.Nonce{Data: t.ni}, &message.KE{Group: t.group, Data: t.dh.Public()})
	return task.NeedMore, nil
}

func withSPIBytes(ps []message.Proposal, spi []byte) []message.Proposal {
	out := make([]message.Proposal, len(ps))
	for i, p := range ps {
		p.SPI = spi
		out[i] = p
	}
	return out
}

// derive computes the new SA's keys: SKEYSEED = prf(SK_d (old), g^ir (new)
// | Ni | Nr) with the old SA's PRF (RFC 7296 section 2.18, as strongSwan
// reads it), then the seven keys with the new SPIs.
func (t *ikeRekey) derive(suite transform.Suite, peerKE []byte) error {
	sa, n := t.sa, t.newSA
	gir, err := t.dh.Shared(peerKE)
	if err != nil {
		return err
	}
	if n.prf, err = transform.NewPRF(suite.PRF); err != nil {
		return err
	}
	n.Suite, n.ni, n.nr = suite, t.ni, t.nr
	if err := n.deriveKeys(transform.RekeySKEYSEED(sa.prf, sa.keys.D, gir, t.ni, t.nr)); err != nil {
		return err
	}
	n.Local, n.Remote = sa.Local, sa.Remote
	n.NATLocal, n.NATRemote, n.fragment, n.PeerID = sa.NATLocal, sa.NATRemote, sa.fragment, sa.PeerID
	n.Stats.Rekeys = sa.Stats.Rekeys + 1
	n.State = StateEstablished
	n.EstablishedAt, n.lastSeen, n.keepaliveAt = sa.now(), sa.now(), sa.keepaliveAt
	n.scheduleIKE()
	return nil
}

// adopt moves the CHILD SAs of from to to.
func adopt(to, from *SA) {
	to.Children = append(to.Children, from.Children...)
	from.Children = nil
}

func (t *ikeRekey) Process(m *message.Message) (task.Status, error) {
	sa := t.sa
	if !m.IsResponse() {
		return t.processRequest(m)
	}
	// A collision answered meanwhile already marked the SA rekeyed.
	if t.newSA == nil || (sa.State != StateEstablished && t.collision == nil) {
		return task.Done, nil
	}
	if n := m.Notify(message.NotifyInvalidKEPayload); n != nil && len(n.Data) == 2 {
		g := binary.BigEndian.Uint16(n.Data)
		if t.retries++; t.retries <= maxInitRetries && g != t.group && transform.HasGroup(sa.Config.IKEProposals, g) {
			t.group = g
			return task.NeedMore, nil
		}
	}
	if n := m.ErrorNotify(); n != nil {
		// TEMPORARY_FAILURE (a collision the peer already finished) or a
		// refusal: try again later (RFC 7296 section 2.25).
		sa.RekeyAt = sa.now().Add(rekeyRetry)
		return task.Done, nil
	}
	p, _ := m.Find(message.PayloadSA).(*message.SA)
	ke, _ := m.Find(message.PayloadKE).(*message.KE)
	nr, _ := m.Find(message.PayloadNonce).(*message.Nonce)
	if p == nil || ke == nil || nr == nil || len(p.Proposals) != 1 || len(p.Proposals[0].SPI) != 8 {
		return task.Failed, errors.New("ikesa: IKE rekey response lacks SA, KE or Nonce")
	}
	if _, _, ok := transform.Select(sa.Config.IKEProposals, p.Proposals); !ok {
		return task.Failed, errors.New("ikesa: IKE rekey answer was not offered")
	}
	suite, err := transform.FromProposal(p.Proposals[0])
	if err != nil || suite.DH != t.group || ke.Group != t.group {
		return task.Failed, fmt.Errorf("ikesa: IKE rekey answer: group %d, %v", ke.Group, err)
	}
	t.newSA.SPIr = binary.BigEndian.Uint64(p.Proposals[0].SPI)
	t.nr = nr.Data
	if err := t.derive(suite, ke.Data); err != nil {
		return task.Failed, err
	}
	sa.State = StateRekeyed
	sa.opts.Host.Event(sa, Event{Kind: EventIKERekeyed, New: t.newSA})
	c := t.collision
	if c != nil && c.newSA != nil && bytes.Compare(lowest(t.ni, t.nr), lowest(c.ni, c.nr)) < 0 {
		// RFC 7296 section 2.8.2: this side's new IKE SA has the lowest
		// nonce and is redundant: move the CHILD SAs to the peer's and
		// delete ours; the peer deletes the old one.
		adopt(c.newSA, t.newSA)
		adopt(c.newSA, sa)
		t.newSA.mgr.Queue(&ikeDelete{sa: t.newSA, initiator: true})
		return task.Done, t.newSA.check(t.newSA.mgr.Initiate())
	}
	if c != nil && c.newSA != nil {
		adopt(t.newSA, c.newSA)
	}
	adopt(t.newSA, sa)
	sa.mgr.Queue(&ikeDelete{sa: sa, initiator: true})
	return task.Done, nil
}

func (t *ikeRekey) processRequest(m *message.Message) (task.Status, error) {
	sa := t.sa
	if sa.State == StateRekeyed {
		return task.Failed, &task.NotifyError{Type: message.NotifyTemporaryFailure, Err: errors.New("IKE SA already rekeyed")}
	}
	p, _ := m.Find(message.PayloadSA).(*message.SA)
	ke, _ := m.Find(message.PayloadKE).(*message.KE)
	ni, _ := m.Find(message.PayloadNonce).(*message.Nonce)
	if p == nil || ke == nil || ni == nil {
		return task.Failed, &task.NotifyError{Type: message.NotifyInvalidSyntax, Err: errors.New("IKE rekey lacks SA, KE or Nonce")}
	}
	chosen, suite, ok := transform.Select(sa.Config.IKEProposals, p.Proposals)
	if !ok || len(chosen.SPI) != 8 {
		return task.Failed, &task.NotifyError{Type: message.NotifyNoProposalChosen, Err: errors.New("no acceptable IKE rekey proposal")}
	}
	if ke.Group != suite.DH {
		return task.Failed, &task.NotifyError{Type: message.NotifyInvalidKEPayload, Data: binary.BigEndian.AppendUint16(nil, suite.DH), Err: errors.New("KE group")}
	}
	for _, a := range append(sa.mgr.Active(), sa.mgr.Queued()...) {
		if o, ok := a.(*ikeRekey); ok && o.initiator {
			o.collision = t
		}
	}
	n := newSA(sa.Config, sa.opts)
	n.SPIi = binary.BigEndian.Uint64(chosen.SPI)
	spi, err := n.randomSPI()
	if err != nil {
		return task.Failed, err
	}
	n.SPIr = spi
	t.newSA, t.chosen, t.ni, t.group = n, chosen, ni.Data, suite.DH
	if t.nr, err = sa.random(32); err != nil {
		return task.Failed, err
	}
	if t.dh, err = transform.NewDH(suite.DH, sa.opts.Rand); err != nil {
		return task.Failed, err
	}
	if err := t.derive(suite, ke.Data); err != nil {
		return task.Failed, &task.NotifyError{Type: message.NotifyInvalidSyntax, Err: err}
	}
	adopt(n, sa)
	return task.Done, nil
}
