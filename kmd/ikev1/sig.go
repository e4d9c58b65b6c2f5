package ikev1

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/sitesec/sitesec/kmd/isakmp"
)

// Signer authenticates phase 1 with signatures (RFC 2409 section 5.1):
// the private key stays with its owner (kmd asks pkid), and the peer's
// chain is validated there too.
type Signer interface {
	// Local returns this side's chain (DER, end entity first) and the
	// key type: "rsa", "ecdsa-p256", "ecdsa-p384" or "ecdsa-p521".
	Local() (certs [][]byte, keyType string, err error)
	// SignHash signs HASH_I or HASH_R as it is, without hashing it
	// again: RSA PKCS#1 v1.5 without a DigestInfo (RFC 2409 section
	// 5.1, "the signature is PKCS #1 encoded"), ECDSA r|s (RFC 4754
	// section 7).
	SignHash(keyType string, hash []byte) ([]byte, error)
	// Validate checks the peer's chain against the trusted CAs and its
	// identity against the chain, and returns its public key.
	Validate(certs [][]byte, id isakmp.ID) (crypto.PublicKey, error)
	// LocalID returns the identity to send when the configuration asks
	// for the certificate's subject (nil: Config.LocalID).
	LocalID() (*isakmp.ID, error)
}

// signatureAuth reports whether method is a signature method.
func signatureAuth(method uint16) bool {
	switch method {
	case isakmp.AuthRSA, isakmp.AuthECDSA256, isakmp.AuthECDSA384, isakmp.AuthECDSA521:
		return true
	}
	return false
}

// keyTypeOf is the key type an authentication method needs (RFC 2409
// appendix A for RSA, RFC 4754 section 3 for ECDSA).
func keyTypeOf(method uint16) string {
	return map[uint16]string{isakmp.AuthRSA: "rsa", isakmp.AuthECDSA256: "ecdsa-p256", isakmp.AuthECDSA384: "ecdsa-p384", isakmp.AuthECDSA521: "ecdsa-p521"}[method]
}

// localID is the identity this side sends in phase 1.
func (t *Tunnel) localID() (isakmp.ID, error) {
	if s := t.Config.Sig; s != nil {
		id, err := s.LocalID()
		if err != nil {
			return isakmp.ID{}, err
		}
		if id != nil {
			return *id, nil
		}
	}
	return t.Config.LocalID, nil
}

// certPayloads are the CERT payloads of the local chain (RFC 2408
// section 3.9, encoding 4: X.509 certificate - signature) and the SIG
// payload over hash (RFC 2409 section 5.1).
func (sa *ISAKMPSA) signPayloads(hash []byte) ([]isakmp.Payload, error) {
	s := sa.t.Config.Sig
	if s == nil {
		return nil, errors.New("ikev1: signature authentication without a certificate")
	}
	certs, keyType, err := s.Local()
	if err != nil {
		return nil, fmt.Errorf("ikev1: local certificate: %w", err)
	}
	if len(certs) == 0 {
		return nil, errors.New("ikev1: no local certificate")
	}
	if want := keyTypeOf(sa.Suite.Auth); keyType != want {
		return nil, fmt.Errorf("ikev1: the local certificate's key is %s, authentication method %d needs %s", keyType, sa.Suite.Auth, want)
	}
	var ps []isakmp.Payload
	for _, der := range certs {
		ps = append(ps, isakmp.Payload{Type: isakmp.PayloadCert, Body: append([]byte{isakmp.CertX509Signature}, der...)})
	}
	sig, err := s.SignHash(keyType, hash)
	if err != nil {
		return nil, fmt.Errorf("ikev1: sign: %w", err)
	}
	return append(ps, isakmp.Payload{Type: isakmp.PayloadSig, Body: sig}), nil
}

// certReq is an empty CERTREQ for X.509 signature certificates: the
// peer may send a certificate from any CA (RFC 4945 section 3.2.7.1);
// our trusted CAs decide when its chain is validated.
func certReq() isakmp.Payload {
	return isakmp.Payload{Type: isakmp.PayloadCertReq, Body: []byte{isakmp.CertX509Signature}}
}

// verifySig validates the peer's CERT payloads and checks its SIG over
// hash with the end entity's key.
func (sa *ISAKMPSA) verifySig(ps []isakmp.Payload, id isakmp.ID, hash []byte) error {
	s := sa.t.Config.Sig
	if s == nil {
		return errors.New("ikev1: signature authentication without a certificate")
	}
	sig := isakmp.Find(ps, isakmp.PayloadSig)
	if sig == nil {
		return errors.New("ikev1: SIG payload missing")
	}
	var certs [][]byte
	for _, c := range isakmp.All(ps, isakmp.PayloadCert) {
		if len(c) > 1 && c[0] == isakmp.CertX509Signature {
			certs = append(certs, c[1:])
		}
	}
	if len(certs) == 0 {
		return errors.New("ikev1: peer sent no certificate")
	}
	pub, err := s.Validate(certs, id)
	if err != nil {
		return fmt.Errorf("ikev1: peer certificate: %w", err)
	}
	return verifyHash(sa.Suite.Auth, pub, hash, sig)
}

// verifyHash checks a signature over HASH_I or HASH_R as the peer made
// it (see Signer.SignHash).
func verifyHash(method uint16, pub crypto.PublicKey, hash, sig []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if method != isakmp.AuthRSA {
			return fmt.Errorf("ikev1: an RSA key for authentication method %d", method)
		}
		if rsa.VerifyPKCS1v15(k, 0, hash, sig) != nil {
			return errors.New("ikev1: RSA signature does not verify")
		}
	case *ecdsa.PublicKey:
		bits := map[uint16]int{isakmp.AuthECDSA256: 256, isakmp.AuthECDSA384: 384, isakmp.AuthECDSA521: 521}[method]
		if k.Curve.Params().BitSize != bits {
			return fmt.Errorf("ikev1: an ECDSA %s key for authentication method %d", k.Curve.Params().Name, method)
		}
		n := (bits + 7) / 8
		if len(sig) != 2*n {
			return errors.New("ikev1: ECDSA signature of bad length")
		}
		r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
		if !ecdsa.Verify(k, hash, r, s) {
			return errors.New("ikev1: ECDSA signature does not verify")
		}
	default:
		return fmt.Errorf("ikev1: unsupported public key %T", pub)
	}
	return nil
}
