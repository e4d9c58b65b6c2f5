package ikesa

import (
	"errors"
	"fmt"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/task"
)

// auth is the IKE_AUTH exchange (RFC 7296 section 1.2) authenticating
// both sides with the configured Authenticator (section 2.15).
type auth struct {
	sa *SA
}

func (t *auth) Kind() task.Kind { return task.Auth }

// signedOctets is RealMessage | Nonce of the peer | prf(SK_p, ID body)
// (RFC 7296 section 2.15). For the initiator: message 1, Nr, SK_pi; for
// the responder: message 2, Ni, SK_pr.
func (t *auth) signedOctets(initiator bool, id *message.ID) []byte {
	sa := t.sa
	if initiator {
		return append(append(append([]byte{}, sa.initMsg[0]...), sa.nr...), sa.prf.Sum(sa.keys.Pi, id.Body())...)
	}
	return append(append(append([]byte{}, sa.initMsg[1]...), sa.ni...), sa.prf.Sum(sa.keys.Pr, id.Body())...)
}

func (t *auth) localID() (*message.ID, error) {
	sa := t.sa
	id := sa.Config.LocalID
	if p, ok := sa.Config.Auth.(IDProvider); ok && id == nil {
		var err error
		if id, err = p.LocalID(); err != nil {
			return nil, err
		}
	}
	if id == nil {
		id = IPID(sa.Local.Addr().Unmap())
	}
	c := *id
	c.Responder = !sa.Initiator
	return &c, nil
}

func (t *auth) Build(m *message.Message) (task.Status, error) {
	sa := t.sa
	if sa.Config.Auth == nil {
		return task.Failed, errors.New("ikesa: no authenticator configured")
	}
	id, err := t.localID()
	if err != nil {
		return task.Failed, err
	}
	ps, err := sa.Config.Auth.Sign(AuthContext{PRF: sa.prf, Octets: t.signedOctets(sa.Initiator, id), PeerHashes: sa.peerHashes})
	if err != nil {
		return task.Failed, err
	}
	m.Payloads = append(m.Payloads, id)
	if cr, ok := sa.Config.Auth.(CertRequester); ok && sa.Initiator {
		// RFC 7296 section 1.2: the initiator's CERTREQ is in IKE_AUTH.
		if req, err := cr.CertReq(); err == nil && req != nil {
			m.Payloads = append(m.Payloads, req)
		}
	}
	m.Payloads = append(m.Payloads, ps...)
	if sa.Initiator {
		return task.NeedMore, nil
	}
	sa.established()
	return task.Done, nil
}

func (t *auth) Process(m *message.Message) (task.Status, error) {
	sa := t.sa
	fail := func(err error) (task.Status, error) {
		if !sa.Initiator {
			return task.Failed, &task.NotifyError{Type: message.NotifyAuthenticationFailed, Err: err}
		}
		return task.Failed, err
	}
	// An error notify without AUTH refuses the IKE SA; with AUTH it is
	// about the CHILD SA (RFC 7296 section 1.2).
	if n := m.ErrorNotify(); n != nil && sa.Initiator && m.Find(message.PayloadAUTH) == nil {
		return task.Failed, fmt.Errorf("ikesa: IKE_AUTH refused with notify %d", n.NotifyType)
	}
	idType := message.PayloadIDi
	if sa.Initiator {
		idType = message.PayloadIDr
	}
	id, _ := m.Find(idType).(*message.ID)
	a, _ := m.Find(message.PayloadAUTH).(*message.Auth)
	if id == nil || a == nil {
		return fail(errors.New("ikesa: IKE_AUTH lacks ID or AUTH"))
	}
	if sa.Config.RemoteID != nil && !sa.Config.RemoteID(id) {
		return fail(fmt.Errorf("ikesa: peer identity %s is not the configured remote-id", id))
	}
	if sa.Config.Auth == nil {
		return fail(errors.New("ikesa: no authenticator configured"))
	}
	var certs [][]byte
	for _, p := range m.Payloads {
		if c, ok := p.(*message.Cert); ok && c.Encoding == message.CertX509Signature {
			certs = append(certs, c.Data)
		}
	}
	ctx := AuthContext{PRF: sa.prf, Octets: t.signedOctets(!sa.Initiator, id), PeerHashes: sa.peerHashes, PeerID: id, PeerCerts: certs}
	if err := sa.Config.Auth.Verify(ctx, a); err != nil {
		return fail(err)
	}
	sa.PeerID = id
	if sa.Initiator {
		sa.established()
	}
	return task.Done, nil
}
