// Package ikesa is one IKEv2 security association and its CHILD SAs, with
// the tasks that negotiate them (RFC 7296): IKE_SA_INIT with NAT detection,
// COOKIE and INVALID_KE_PAYLOAD retries; IKE_AUTH with a pluggable
// Authenticator; CHILD SA creation, rekeying with collision handling
// (section 2.8.1), IKE SA rekeying (section 2.18), deletion and dead peer
// detection.
//
// An SA is owned by one goroutine at a time (the server runs one per SA),
// so nothing here locks. Randomness and the clock are injected.
package ikesa

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/transform"
)

// Config is what one peer (a rule term, or a dynamic endpoint through an
// access profile) negotiates.
type Config struct {
	// Name identifies the peer in traces: service-set/rule/term.
	Name       string
	ServiceSet string
	Rule, Term string

	// IKEProposals are offered (initiator) or accepted (responder).
	IKEProposals []message.Proposal
	// ESPProposals likewise for CHILD SAs; PFS groups are DH transforms.
	ESPProposals []message.Proposal
	// PFSGroup is the group used when initiating a CHILD SA (0: no PFS).
	PFSGroup uint16

	LocalID  *message.ID
	RemoteID IDMatcher
	Auth     Authenticator

	// LocalTS and RemoteTS are the traffic selectors of the policy: the
	// term's source and destination, or the allowed proxy pair.
	LocalTS, RemoteTS []message.Selector

	IKELifetime   time.Duration
	ChildLifetime time.Duration
	// ChildLifetimeBytes is the soft byte limit handed to fwdd (0: none).
	ChildLifetimeBytes uint64

	// DPDInterval and DPDThreshold: R-U-THERE (an empty INFORMATIONAL)
	// after Interval without traffic, failing after Threshold tries.
	DPDInterval  time.Duration
	DPDThreshold int

	// NATTraversal allows the move to port 4500 when NAT is detected.
	NATTraversal bool
	NATKeepalive time.Duration

	// FragmentSize is the largest IKE message before RFC 7383
	// fragmentation (0: 1280 bytes less IP and UDP headers).
	FragmentSize int
}

// DefaultFragmentSize is 1280 less IPv6 and UDP headers and the non-ESP
// marker (RFC 7383 section 2.5.1).
const DefaultFragmentSize = 1280 - 40 - 8 - 4

// IDMatcher accepts or refuses a peer's identity (remote-id).
type IDMatcher func(id *message.ID) bool

// AnyID accepts every identity (any-remote-id, or no remote-id).
func AnyID(*message.ID) bool { return true }

// MatchIDs accepts identities equal to one of ids.
func MatchIDs(ids ...*message.ID) IDMatcher {
	return func(id *message.ID) bool {
		for _, x := range ids {
			if x.IDType == id.IDType && bytes.Equal(x.Data, id.Data) {
				return true
			}
		}
		return false
	}
}

// IPID returns an ID_IPV4_ADDR or ID_IPV6_ADDR identity.
func IPID(a netip.Addr) *message.ID {
	if a.Is4() {
		b := a.As4()
		return &message.ID{IDType: message.IDIPv4Addr, Data: b[:]}
	}
	b := a.As16()
	return &message.ID{IDType: message.IDIPv6Addr, Data: b[:]}
}

// AuthContext is what an Authenticator signs or verifies.
type AuthContext struct {
	// PRF is the IKE SA's PRF.
	PRF transform.PRF
	// Octets are the signed octets of RFC 7296 section 2.15.
	Octets []byte
	// PeerHashes are the RFC 7427 hash algorithms the peer announced in
	// SIGNATURE_HASH_ALGORITHMS (none: classic signature methods).
	PeerHashes []uint16
	// PeerID and PeerCerts (DER, from CERT payloads) when verifying.
	PeerID    *message.ID
	PeerCerts [][]byte
}

// Authenticator builds and checks AUTH payloads (RFC 7296 section 2.15).
// The pre-shared key is one; certificate signatures through pkid are
// another (SignatureAuth).
type Authenticator interface {
	// Sign returns the payloads that authenticate this side: CERT payloads
	// if any, then AUTH.
	Sign(c AuthContext) ([]message.Payload, error)
	// Verify checks the peer's AUTH payload.
	Verify(c AuthContext, a *message.Auth) error
	// Name is what show commands print ("Pre-shared-keys").
	Name() string
}

// IDProvider is implemented by Authenticators that derive this side's
// identity from their credential: local-id distinguished-name takes the
// certificate's subject. It is used when Config.LocalID is nil.
type IDProvider interface {
	LocalID() (*message.ID, error)
}

// CertRequester is implemented by Authenticators that ask the peer for
// certificates: the CERTREQ payload (RFC 7296 section 3.7).
type CertRequester interface {
	CertReq() (*message.CertReq, error)
}

// PSK authenticates with a pre-shared key: AUTH = prf(prf(Shared Secret,
// "Key Pad for IKEv2"), <SignedOctets>) (RFC 7296 section 2.15).
type PSK []byte

const keyPad = "Key Pad for IKEv2"

func (PSK) Name() string { return "Pre-shared-keys" }

func (k PSK) auth(c AuthContext) (*message.Auth, error) {
	if len(k) == 0 {
		return nil, errors.New("ikesa: empty pre-shared key")
	}
	return &message.Auth{Method: message.AuthSharedKeyMIC, Data: c.PRF.Sum(c.PRF.Sum(k, []byte(keyPad)), c.Octets)}, nil
}

func (k PSK) Sign(c AuthContext) ([]message.Payload, error) {
	a, err := k.auth(c)
	if err != nil {
		return nil, err
	}
	return []message.Payload{a}, nil
}

func (k PSK) Verify(c AuthContext, a *message.Auth) error {
	if a.Method != message.AuthSharedKeyMIC {
		return fmt.Errorf("ikesa: peer authenticates with method %d, want shared key", a.Method)
	}
	want, err := k.auth(c)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(want.Data, a.Data) != 1 {
		return errors.New("ikesa: pre-shared key AUTH mismatch")
	}
	return nil
}
