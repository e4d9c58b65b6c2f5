package ikesa

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/task"
	"github.com/sitesec/sitesec/kmd/transform"
)

// childCreate negotiates a CHILD SA: inside IKE_AUTH (initial), in a
// CREATE_CHILD_SA exchange (RFC 7296 section 1.3.1), or as a rekey of an
// existing one (section 1.3.3, rekey != nil), with PFS when a group is
// configured.
type childCreate struct {
	sa      *SA
	initial bool
	rekey   *ChildSA
	child   *ChildSA

	dh     transform.DH
	group  uint16
	ni, nr []byte
	offer  []message.Proposal
	tsi    []message.Selector
	tsr    []message.Selector
	chosen message.Proposal

	// err is a responder failure answered inside IKE_AUTH without failing
	// the IKE SA (RFC 7296 section 1.2).
	err *task.NotifyError
	// skip: an IKE_AUTH without a CHILD SA.
	skip bool
	// collision is the peer's rekey of the same CHILD SA that this side
	// answered while its own rekey was outstanding (section 2.8.1).
	collision *childCreate
	retries   int
}

func newChildCreate(sa *SA, initial bool, rekey *ChildSA) *childCreate {
	return &childCreate{sa: sa, initial: initial, rekey: rekey}
}

func (t *childCreate) Kind() task.Kind {
	if t.rekey != nil {
		return task.ChildRekey
	}
	return task.ChildCreate
}

func stripDH(ps []message.Proposal, spi []byte) []message.Proposal {
	out := make([]message.Proposal, len(ps))
	for i, p := range ps {
		p.SPI = spi
		var ts []message.Transform
		for _, tr := range p.Transforms {
			if tr.Type != message.TransformDH {
				ts = append(ts, tr)
			}
		}
		p.Transforms = ts
		out[i] = p
	}
	return out
}

func withSPI(ps []message.Proposal, spi []byte) []message.Proposal {
	out := make([]message.Proposal, len(ps))
	for i, p := range ps {
		p.SPI = spi
		out[i] = p
	}
	return out
}

func spiBytes(spi uint32) []byte { return binary.BigEndian.AppendUint32(nil, spi) }

func (t *childCreate) Build(m *message.Message) (task.Status, error) {
	if m.IsResponse() {
		return t.buildResponse(m)
	}
	sa := t.sa
	if t.rekey != nil && t.rekey.state != childInstalled && t.rekey.state != childRekeying {
		return task.Done, nil // deleted meanwhile
	}
	if t.child == nil {
		spi, err := sa.childSPI()
		if err != nil {
			return task.Failed, err
		}
		t.child = &ChildSA{SPIIn: spi, Initiator: true, LocalTS: sa.Config.LocalTS, RemoteTS: sa.Config.RemoteTS}
		if t.rekey != nil {
			t.child.Reqid = t.rekey.Reqid
			t.child.LocalTS, t.child.RemoteTS = t.rekey.LocalTS, t.rekey.RemoteTS
			t.rekey.state = childRekeying
		} else {
			t.child.Reqid = spi
		}
	}
	spi := spiBytes(t.child.SPIIn)
	if t.initial {
		t.offer = stripDH(sa.Config.ESPProposals, spi)
	} else {
		t.offer = withSPI(sa.Config.ESPProposals, spi)
		if t.group == 0 {
			t.group = sa.Config.PFSGroup
		}
		if t.group != 0 && (t.dh == nil || t.dh.Group() != t.group) {
			dh, err := transform.NewDH(t.group, sa.opts.Rand)
			if err != nil {
				return task.Failed, err
			}
			t.dh = dh
		}
		ni, err := sa.random(32)
		if err != nil {
			return task.Failed, err
		}
		t.ni = ni
	}
	if t.rekey != nil {
		m.Payloads = append(m.Payloads, &message.Notify{Protocol: t.rekey.protocol(), SPI: spiBytes(t.rekey.SPIIn), NotifyType: message.NotifyRekeySA})
	}
	m.Payloads = append(m.Payloads, &message.SA{Proposals: t.offer})
	if !t.initial {
		m.Payloads = append(m.Payloads, &message.Nonce{Data: t.ni})
		if t.dh != nil {
			m.Payloads = append(m.Payloads, &message.KE{Group: t.dh.Group(), Data: t.dh.Public()})
		}
	}
	t.tsi, t.tsr = t.child.LocalTS, t.child.RemoteTS
	m.Payloads = append(m.Payloads, &message.TS{Selectors: t.tsi}, &message.TS{Responder: true, Selectors: t.tsr})
	return task.NeedMore, nil
}

// Process of a response (initiator) or a request (responder).
func (t *childCreate) Process(m *message.Message) (task.Status, error) {
	if !m.IsResponse() {
		return t.processRequest(m)
	}
	sa := t.sa
	if t.child == nil { // the rekeyed SA went away before Build
		return task.Done, nil
	}
	if n := m.Notify(message.NotifyInvalidKEPayload); n != nil && !t.initial && len(n.Data) == 2 {
		g := binary.BigEndian.Uint16(n.Data)
		if t.retries++; t.retries <= maxInitRetries && g != t.group && transform.HasGroup(sa.Config.ESPProposals, g) {
			t.group = g
			return task.NeedMore, nil
		}
	}
	if n := m.ErrorNotify(); n != nil {
		return task.Failed, &task.NotifyError{Type: n.NotifyType, Err: fmt.Errorf("peer refused the CHILD SA with notify %d", n.NotifyType)}
	}
	p, _ := m.Find(message.PayloadSA).(*message.SA)
	tsi, _ := m.Find(message.PayloadTSi).(*message.TS)
	tsr, _ := m.Find(message.PayloadTSr).(*message.TS)
	if p == nil || tsi == nil || tsr == nil || len(p.Proposals) != 1 {
		if t.initial && p == nil && tsi == nil {
			return task.Done, nil // no CHILD SA requested back
		}
		return task.Failed, errors.New("ikesa: CHILD SA response lacks SA or TS")
	}
	if _, _, ok := transform.Select(t.offer, p.Proposals); !ok {
		return task.Failed, errors.New("ikesa: responder chose a CHILD SA proposal that was not offered")
	}
	suite, err := transform.FromProposal(p.Proposals[0])
	if err != nil || len(p.Proposals[0].SPI) != 4 {
		return task.Failed, fmt.Errorf("ikesa: CHILD SA answer: %v", err)
	}
	if !within(tsi.Selectors, t.tsi) || !within(tsr.Selectors, t.tsr) {
		return task.Failed, errors.New("ikesa: responder widened the traffic selectors")
	}
	var gir []byte
	ni, nr := sa.ni, sa.nr
	if !t.initial {
		n, _ := m.Find(message.PayloadNonce).(*message.Nonce)
		if n == nil {
			return task.Failed, errors.New("ikesa: CREATE_CHILD_SA response lacks Nonce")
		}
		t.nr = n.Data
		ni, nr = t.ni, t.nr
		if suite.DH != 0 {
			ke, _ := m.Find(message.PayloadKE).(*message.KE)
			if ke == nil || t.dh == nil || ke.Group != t.dh.Group() || suite.DH != t.dh.Group() {
				return task.Failed, errors.New("ikesa: PFS key exchange mismatch")
			}
			if gir, err = t.dh.Shared(ke.Data); err != nil {
				return task.Failed, err
			}
		}
	}
	c := t.child
	c.Suite, c.SPIOut = suite, binary.BigEndian.Uint32(p.Proposals[0].SPI)
	c.LocalTS, c.RemoteTS = tsi.Selectors, tsr.Selectors
	keys, err := transform.DeriveChildKeys(sa.prf, suite, sa.keys.D, gir, ni, nr)
	if err != nil {
		return task.Failed, err
	}
	c.EncrOut, c.IntegOut, c.EncrIn, c.IntegIn = keys.EncrI, keys.IntegI, keys.EncrR, keys.IntegR
	if err := sa.install(c, t.rekey); err != nil {
		return task.Failed, err
	}
	if t.rekey != nil {
		t.finishRekey()
	}
	return task.Done, nil
}

// install puts c in fwdd and in the SA.
func (sa *SA) install(c *ChildSA, replaces *ChildSA) error {
	// Timers first: the install tells fwdd when the SA was created and
	// when kmd will rekey it (shown as its soft lifetime).
	sa.scheduleChild(c)
	if err := sa.opts.Host.Install(sa, c, replaces); err != nil {
		return fmt.Errorf("ikesa: install CHILD SA %08x: %w", c.SPIIn, err)
	}
	c.installed, c.state = true, childInstalled
	sa.Children = append(sa.Children, c)
	sa.Stats.ChildCreated++
	if replaces != nil {
		sa.Stats.Rekeys++
	}
	return nil
}

// finishRekey deletes the replaced CHILD SA, or after a collision the
// redundant one: "the SA created with the lowest of the four nonces should
// be deleted by the node that created it" (RFC 7296 section 2.8.1).
func (t *childCreate) finishRekey() {
	sa := t.sa
	c := t.collision
	if c == nil || c.child == nil || !c.child.installed {
		t.rekey.state = childRekeyed
		sa.mgr.Queue(&childDelete{sa: sa, child: t.rekey, initiator: true})
		return
	}
	ours := lowest(t.ni, t.nr)
	theirs := lowest(c.ni, c.nr)
	if bytes.Compare(ours, theirs) < 0 {
		// This side's new CHILD SA is redundant; the peer deletes the old.
		t.rekey.state = childRekeyed
		sa.mgr.Queue(&childDelete{sa: sa, child: t.child, initiator: true})
		return
	}
	t.rekey.state = childRekeyed
	sa.mgr.Queue(&childDelete{sa: sa, child: t.rekey, initiator: true})
}

func lowest(a, b []byte) []byte {
	if bytes.Compare(a, b) < 0 {
		return a
	}
	return b
}

// abort undoes a failed CHILD SA negotiation: a rekey is retried later.
func (t *childCreate) abort(err error) {
	if t.rekey != nil && t.rekey.state == childRekeying {
		t.rekey.state = childInstalled
		var ne *task.NotifyError
		if errors.As(err, &ne) && ne.Type == message.NotifyChildSANotFound {
			return
		}
		// RFC 7296 section 2.25: retry after a TEMPORARY_FAILURE, later.
		t.rekey.RekeyAt = t.sa.now().Add(rekeyRetry)
	}
}

// rekeyRetry is how long a failed rekey waits before the next try.
const rekeyRetry = 10 * time.Second

func (t *childCreate) fail(nt message.NotifyType, err error) (task.Status, error) {
	ne := &task.NotifyError{Type: nt, Err: err}
	if t.initial {
		// Inside IKE_AUTH the IKE SA survives a CHILD SA failure.
		t.err = ne
		return task.Done, nil
	}
	return task.Failed, ne
}

func (t *childCreate) processRequest(m *message.Message) (task.Status, error) {
	sa := t.sa
	p, _ := m.Find(message.PayloadSA).(*message.SA)
	tsi, _ := m.Find(message.PayloadTSi).(*message.TS)
	tsr, _ := m.Find(message.PayloadTSr).(*message.TS)
	if t.initial && p == nil && tsi == nil && tsr == nil {
		t.skip = true
		return task.Done, nil
	}
	if p == nil || tsi == nil || tsr == nil {
		return t.fail(message.NotifyInvalidSyntax, errors.New("CHILD SA request lacks SA or TS"))
	}
	if n := m.Notify(message.NotifyRekeySA); n != nil && !t.initial {
		if len(n.SPI) != 4 {
			return t.fail(message.NotifyInvalidSyntax, errors.New("REKEY_SA without a 4-byte SPI"))
		}
		var old *ChildSA
		spi := binary.BigEndian.Uint32(n.SPI)
		for _, c := range sa.Children {
			if c.SPIOut == spi {
				old = c
			}
		}
		if old == nil || old.state == childDeleted {
			return t.fail(message.NotifyChildSANotFound, fmt.Errorf("rekey of unknown CHILD SA %08x", spi))
		}
		switch old.state {
		case childRekeyed:
			return t.fail(message.NotifyTemporaryFailure, fmt.Errorf("CHILD SA %08x already rekeyed", spi))
		case childRekeying:
			// A collision: answer, and let this side's rekey decide.
			for _, a := range append(sa.mgr.Active(), sa.mgr.Queued()...) {
				if o, ok := a.(*childCreate); ok && o.rekey == old {
					o.collision = t
				}
			}
		}
		t.rekey = old
	}
	local := sa.Config.ESPProposals
	if t.initial {
		local = stripDH(local, nil)
	}
	chosen, suite, ok := transform.Select(local, p.Proposals)
	if !ok {
		return t.fail(message.NotifyNoProposalChosen, errors.New("no acceptable CHILD SA proposal"))
	}
	if len(chosen.SPI) != 4 {
		return t.fail(message.NotifyInvalidSyntax, errors.New("CHILD SA proposal without a 4-byte SPI"))
	}
	var gir []byte
	ni, nr := sa.ni, sa.nr
	if !t.initial {
		n, _ := m.Find(message.PayloadNonce).(*message.Nonce)
		if n == nil {
			return t.fail(message.NotifyInvalidSyntax, errors.New("CREATE_CHILD_SA lacks Nonce"))
		}
		t.ni = n.Data
		var err error
		if t.nr, err = sa.random(32); err != nil {
			return task.Failed, err
		}
		ni, nr = t.ni, t.nr
		if suite.DH != 0 {
			ke, _ := m.Find(message.PayloadKE).(*message.KE)
			if ke == nil || ke.Group != suite.DH {
				return task.Failed, &task.NotifyError{Type: message.NotifyInvalidKEPayload, Data: binary.BigEndian.AppendUint16(nil, suite.DH), Err: errors.New("PFS group mismatch")}
			}
			if t.dh, err = transform.NewDH(suite.DH, sa.opts.Rand); err != nil {
				return task.Failed, err
			}
			if gir, err = t.dh.Shared(ke.Data); err != nil {
				return t.fail(message.NotifyInvalidSyntax, err)
			}
		}
	}
	// RFC 7296 section 2.9: narrow to the configured policy.
	t.tsi = narrow(tsi.Selectors, sa.Config.RemoteTS)
	t.tsr = narrow(tsr.Selectors, sa.Config.LocalTS)
	if len(t.tsi) == 0 || len(t.tsr) == 0 {
		return t.fail(message.NotifyTSUnacceptable, errors.New("traffic selectors outside the policy"))
	}
	spi, err := sa.childSPI()
	if err != nil {
		return task.Failed, err
	}
	c := &ChildSA{SPIIn: spi, SPIOut: binary.BigEndian.Uint32(chosen.SPI), Suite: suite, LocalTS: t.tsr, RemoteTS: t.tsi, Reqid: spi}
	if t.rekey != nil {
		c.Reqid = t.rekey.Reqid
	}
	keys, err := transform.DeriveChildKeys(sa.prf, suite, sa.keys.D, gir, ni, nr)
	if err != nil {
		return task.Failed, err
	}
	c.EncrIn, c.IntegIn, c.EncrOut, c.IntegOut = keys.EncrI, keys.IntegI, keys.EncrR, keys.IntegR
	chosen.SPI = spiBytes(spi)
	t.child, t.chosen = c, chosen
	return task.Done, nil
}

func (t *childCreate) buildResponse(m *message.Message) (task.Status, error) {
	sa := t.sa
	if t.skip {
		return task.Done, nil
	}
	if t.err != nil {
		m.Payloads = append(m.Payloads, &message.Notify{NotifyType: t.err.Type, Data: t.err.Data})
		return task.Done, nil
	}
	if err := sa.install(t.child, t.rekey); err != nil {
		// fwdd refused or is away: the peer may retry later (RFC 7296
		// section 2.25); inside IKE_AUTH the IKE SA still comes up.
		if t.initial {
			m.Payloads = append(m.Payloads, &message.Notify{NotifyType: message.NotifyTemporaryFailure})
			return task.Done, nil
		}
		return task.Failed, &task.NotifyError{Type: message.NotifyTemporaryFailure, Err: err}
	}
	m.Payloads = append(m.Payloads, &message.SA{Proposals: []message.Proposal{t.chosen}})
	if !t.initial {
		m.Payloads = append(m.Payloads, &message.Nonce{Data: t.nr})
		if t.dh != nil {
			m.Payloads = append(m.Payloads, &message.KE{Group: t.dh.Group(), Data: t.dh.Public()})
		}
	}
	m.Payloads = append(m.Payloads, &message.TS{Selectors: t.tsi}, &message.TS{Responder: true, Selectors: t.tsr})
	if t.rekey != nil && t.rekey.state == childInstalled {
		// The initiator deletes the old CHILD SA.
		t.rekey.state = childRekeyed
	}
	return task.Done, nil
}
