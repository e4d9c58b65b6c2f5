package ikesa

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/task"
	"github.com/sitesec/sitesec/kmd/transform"
)

// maxInitRetries bounds COOKIE and INVALID_KE_PAYLOAD retries.
const maxInitRetries = 3

// ikeInit is the IKE_SA_INIT exchange (RFC 7296 section 1.2) with NAT
// detection (section 2.23), COOKIE (section 2.6), INVALID_KE_PAYLOAD
// (section 1.2) and the RFC 7383 fragmentation announcement.
type ikeInit struct {
	sa      *SA
	dh      transform.DH
	group   uint16
	cookie  []byte
	retries int
	chosen  message.Proposal
}

func (t *ikeInit) Kind() task.Kind { return task.IKEInit }

func (t *ikeInit) natd(m *message.Message, spir uint64) {
	sa := t.sa
	m.Payloads = append(m.Payloads,
		&message.Notify{NotifyType: message.NotifyNATDetectionSourceIP, Data: natHash(sa.SPIi, spir, sa.Local)},
		&message.Notify{NotifyType: message.NotifyNATDetectionDestIP, Data: natHash(sa.SPIi, spir, sa.Remote)},
	)
}

// processNATD compares the peer's NAT_DETECTION notifications with what
// this side sees (RFC 7296 section 2.23).
func (t *ikeInit) processNATD(m *message.Message) {
	sa := t.sa
	src := m.Notifies(message.NotifyNATDetectionSourceIP)
	dst := m.Notify(message.NotifyNATDetectionDestIP)
	if len(src) == 0 || dst == nil {
		return
	}
	spir := m.SPIr
	sa.NATLocal = !bytes.Equal(dst.Data, natHash(m.SPIi, spir, sa.Local))
	sa.NATRemote = true
	for _, s := range src {
		if bytes.Equal(s.Data, natHash(m.SPIi, spir, sa.Remote)) {
			sa.NATRemote = false
		}
	}
}

func (t *ikeInit) Build(m *message.Message) (task.Status, error) {
	sa := t.sa
	if sa.Initiator && !m.IsResponse() {
		return t.buildRequest(m)
	}
	m.Payloads = append(m.Payloads,
		&message.SA{Proposals: []message.Proposal{t.chosen}},
		&message.KE{Group: t.dh.Group(), Data: t.dh.Public()},
		&message.Nonce{Data: sa.nr},
	)
	t.natd(m, sa.SPIr)
	m.Payloads = append(m.Payloads, &message.Notify{NotifyType: message.NotifyFragmentationSupported}, hashAlgorithms())
	if cr, ok := sa.Config.Auth.(CertRequester); ok {
		// RFC 7296 section 1.2: the responder's CERTREQ is in IKE_SA_INIT.
		if req, err := cr.CertReq(); err == nil && req != nil {
			m.Payloads = append(m.Payloads, req)
		}
	}
	return task.Done, nil
}

func (t *ikeInit) buildRequest(m *message.Message) (task.Status, error) {
	sa := t.sa
	if t.group == 0 {
		t.group = transform.DHGroupOf(sa.Config.IKEProposals)
	}
	if t.dh == nil || t.dh.Group() != t.group {
		dh, err := transform.NewDH(t.group, sa.opts.Rand)
		if err != nil {
			return task.Failed, err
		}
		t.dh = dh
	}
	if sa.ni == nil {
		ni, err := sa.random(32)
		if err != nil {
			return task.Failed, err
		}
		sa.ni = ni
	}
	if t.cookie != nil {
		// RFC 7296 section 2.6: the COOKIE notification comes first.
		m.Payloads = append(m.Payloads, &message.Notify{NotifyType: message.NotifyCookie, Data: t.cookie})
	}
	m.Payloads = append(m.Payloads,
		&message.SA{Proposals: sa.Config.IKEProposals},
		&message.KE{Group: t.group, Data: t.dh.Public()},
		&message.Nonce{Data: sa.ni},
	)
	t.natd(m, 0)
	m.Payloads = append(m.Payloads, &message.Notify{NotifyType: message.NotifyFragmentationSupported}, hashAlgorithms())
	return task.NeedMore, nil
}

func (t *ikeInit) Process(m *message.Message) (task.Status, error) {
	sa := t.sa
	if !m.IsResponse() {
		return t.processRequest(m)
	}
	if n := m.Notify(message.NotifyCookie); n != nil {
		if t.retries++; t.retries > maxInitRetries || len(n.Data) < 1 || len(n.Data) > 64 {
			return task.Failed, errors.New("ikesa: too many COOKIE requests")
		}
		t.cookie = n.Data
		return task.NeedMore, nil
	}
	if n := m.Notify(message.NotifyInvalidKEPayload); n != nil {
		if len(n.Data) != 2 {
			return task.Failed, errors.New("ikesa: malformed INVALID_KE_PAYLOAD")
		}
		g := binary.BigEndian.Uint16(n.Data)
		// Only a group this side offered, and not the one just refused.
		if t.retries++; t.retries > maxInitRetries || g == t.group || !transform.HasGroup(sa.Config.IKEProposals, g) {
			return task.Failed, fmt.Errorf("ikesa: peer wants DH group %d", g)
		}
		t.group = g
		return task.NeedMore, nil
	}
	if n := m.ErrorNotify(); n != nil {
		return task.Failed, fmt.Errorf("ikesa: IKE_SA_INIT refused with notify %d", n.NotifyType)
	}
	p, _ := m.Find(message.PayloadSA).(*message.SA)
	ke, _ := m.Find(message.PayloadKE).(*message.KE)
	nr, _ := m.Find(message.PayloadNonce).(*message.Nonce)
	if p == nil || ke == nil || nr == nil || len(p.Proposals) != 1 || m.SPIr == 0 {
		return task.Failed, errors.New("ikesa: IKE_SA_INIT response lacks SA, KE or Nonce")
	}
	// The answer must be one of the offered proposals, reduced.
	if _, _, ok := transform.Select(sa.Config.IKEProposals, p.Proposals); !ok {
		return task.Failed, errors.New("ikesa: responder chose a proposal that was not offered")
	}
	suite, err := transform.FromProposal(p.Proposals[0])
	if err != nil {
		return task.Failed, err
	}
	if suite.DH != ke.Group || ke.Group != t.group {
		return task.Failed, fmt.Errorf("ikesa: KE group %d does not match %d", ke.Group, suite.DH)
	}
	sa.SPIr = m.SPIr
	sa.nr = nr.Data
	if err := t.keys(suite, ke.Data); err != nil {
		return task.Failed, err
	}
	t.processNATD(m)
	sa.fragment = m.Notify(message.NotifyFragmentationSupported) != nil
	sa.peerHashes = peerHashes(m)
	// RFC 7296 section 2.23: behind a NAT, move to port 4500.
	if (sa.NATLocal || sa.NATRemote) && sa.Config.NATTraversal && sa.Remote.Port() == 500 {
		sa.Local = netipPort(sa.Local, 4500)
		sa.Remote = netipPort(sa.Remote, 4500)
	}
	return task.Done, nil
}

func (t *ikeInit) keys(suite transform.Suite, peerKE []byte) error {
	sa := t.sa
	prf, err := transform.NewPRF(suite.PRF)
	if err != nil {
		return err
	}
	gir, err := t.dh.Shared(peerKE)
	if err != nil {
		return err
	}
	sa.Suite, sa.prf = suite, prf
	return sa.deriveKeys(transform.SKEYSEED(prf, sa.ni, sa.nr, gir))
}

func (t *ikeInit) processRequest(m *message.Message) (task.Status, error) {
	sa := t.sa
	p, _ := m.Find(message.PayloadSA).(*message.SA)
	ke, _ := m.Find(message.PayloadKE).(*message.KE)
	ni, _ := m.Find(message.PayloadNonce).(*message.Nonce)
	if p == nil || ke == nil || ni == nil {
		return task.Failed, &task.NotifyError{Type: message.NotifyInvalidSyntax, Err: errors.New("IKE_SA_INIT lacks SA, KE or Nonce")}
	}
	chosen, suite, ok := transform.Select(sa.Config.IKEProposals, p.Proposals)
	if !ok {
		return task.Failed, &task.NotifyError{Type: message.NotifyNoProposalChosen, Err: errors.New("no acceptable IKE proposal")}
	}
	if ke.Group != suite.DH {
		// RFC 7296 section 1.2: ask for the group of the chosen proposal.
		d := binary.BigEndian.AppendUint16(nil, suite.DH)
		return task.Failed, &task.NotifyError{Type: message.NotifyInvalidKEPayload, Data: d, Err: fmt.Errorf("KE group %d, want %d", ke.Group, suite.DH)}
	}
	dh, err := transform.NewDH(suite.DH, sa.opts.Rand)
	if err != nil {
		return task.Failed, err
	}
	t.dh, t.chosen = dh, chosen
	sa.ni = ni.Data
	if sa.nr, err = sa.random(32); err != nil {
		return task.Failed, err
	}
	if err := t.keys(suite, ke.Data); err != nil {
		return task.Failed, &task.NotifyError{Type: message.NotifyInvalidSyntax, Err: err}
	}
	// NAT-D hashes of a request carry SPIr = 0.
	h := m.Header
	h.SPIr = 0
	t.processNATD(&message.Message{Header: h, Payloads: m.Payloads})
	sa.fragment = m.Notify(message.NotifyFragmentationSupported) != nil
	sa.peerHashes = peerHashes(m)
	return task.Done, nil
}

func netipPort(ap netip.AddrPort, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr(), port)
}

// hashAlgorithms announces SHA2-256, SHA2-384 and SHA2-512 for RFC 7427
// signatures (RFC 7427 section 4).
func hashAlgorithms() *message.Notify {
	return &message.Notify{NotifyType: message.NotifySignatureHashAlgorithms, Data: []byte{0, 2, 0, 3, 0, 4}}
}

func peerHashes(m *message.Message) []uint16 {
	n := m.Notify(message.NotifySignatureHashAlgorithms)
	if n == nil {
		return nil
	}
	var out []uint16
	for i := 0; i+1 < len(n.Data); i += 2 {
		out = append(out, binary.BigEndian.Uint16(n.Data[i:]))
	}
	return out
}
