// Package transform holds the IKEv2 cryptographic transforms and key
// schedule: the PRF and prf+ (RFC 7296 section 2.13), SKEYSEED and the
// seven IKE SA keys (section 2.14), CHILD SA key material (section 2.17),
// the SK payload ciphers (section 3.14, RFC 5282, RFC 7634), Diffie-Hellman
// groups, proposal selection and the Junos proposal names.
//
// Shared secrets and nonces are byte slices of their full length, never
// big.Int, so leading zero bytes survive.
package transform

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"

	"github.com/sitesec/sitesec/kmd/message"
)

// PRF is a negotiated pseudorandom function (RFC 7296 section 3.3.2,
// transform type 2). All of sitesec's PRFs are HMACs.
type PRF struct {
	ID   uint16
	hash func() hash.Hash
	size int
}

// NewPRF returns the PRF for a transform ID.
func NewPRF(id uint16) (PRF, error) {
	switch id {
	case message.PRFHMACSHA1:
		return PRF{id, sha1.New, sha1.Size}, nil
	case message.PRFHMACSHA2256:
		return PRF{id, sha256.New, sha256.Size}, nil
	case message.PRFHMACSHA2384:
		return PRF{id, sha512.New384, sha512.Size384}, nil
	case message.PRFHMACSHA2512:
		return PRF{id, sha512.New, sha512.Size}, nil
	}
	return PRF{}, fmt.Errorf("transform: unsupported PRF %d", id)
}

// Size is the output length, which is also the preferred key length
// (RFC 7296 section 2.13).
func (p PRF) Size() int { return p.size }

// Sum returns prf(key, data...).
func (p PRF) Sum(key []byte, data ...[]byte) []byte {
	m := hmac.New(p.hash, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

// Plus is prf+ of RFC 7296 section 2.13: T1 = prf(K, S | 0x01),
// Tn = prf(K, Tn-1 | S | n), concatenated and cut to n bytes.
func (p PRF) Plus(key, seed []byte, n int) ([]byte, error) {
	if n > 255*p.size {
		return nil, fmt.Errorf("transform: prf+ cannot produce %d bytes", n)
	}
	out := make([]byte, 0, n+p.size)
	var t []byte
	m := hmac.New(p.hash, key)
	for i := byte(1); len(out) < n; i++ {
		m.Reset()
		m.Write(t)
		m.Write(seed)
		m.Write([]byte{i})
		t = m.Sum(nil)
		out = append(out, t...)
	}
	return out[:n], nil
}

// Name is the Junos name of the PRF, as show commands print it.
func (p PRF) Name() string {
	switch p.ID {
	case message.PRFHMACSHA1:
		return "hmac-sha1"
	case message.PRFHMACSHA2256:
		return "hmac-sha256"
	case message.PRFHMACSHA2384:
		return "hmac-sha384"
	case message.PRFHMACSHA2512:
		return "hmac-sha512"
	}
	return fmt.Sprintf("prf-%d", p.ID)
}
