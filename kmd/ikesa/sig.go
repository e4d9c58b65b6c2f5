package ikesa

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/sitesec/sitesec/kmd/message"
)

// Scheme is a signature algorithm the local key signs with.
type Scheme int

// Schemes.
const (
	RSAPKCS1SHA1 Scheme = iota + 1
	RSAPKCS1SHA256
	RSAPKCS1SHA384
	RSAPKCS1SHA512
	ECDSAP256SHA256
	ECDSAP384SHA384
	ECDSAP521SHA512
)

// SignatureAuth authenticates with a certificate and its private key
// (RFC 7296 section 2.15). It uses RFC 7427 digital signatures (auth
// method 14) when the peer announced SHA2-256 in SIGNATURE_HASH_ALGORITHMS,
// else RSA PKCS#1 v1.5 with SHA-1 (method 1) or ECDSA (methods 9 to 11).
// The key never leaves its owner: Sign is pkid's signing service.
type SignatureAuth struct {
	// Local returns this side's chain (DER, end entity first) and key
	// type: "rsa", "ecdsa-p256", "ecdsa-p384" or "ecdsa-p521".
	Local func() (certs [][]byte, keyType string, err error)
	// SignData signs data (hashing it per scheme); raw asks for ECDSA r|s
	// instead of a DER signature.
	SignData func(s Scheme, raw bool, data []byte) ([]byte, error)
	// Validate checks the peer's chain and identity and returns its
	// public key.
	Validate func(certs [][]byte, id *message.ID) (crypto.PublicKey, error)
	// CAKeyHashes are the SHA-1 hashes of trusted CA public keys for
	// CERTREQ (nil: no CERTREQ).
	CAKeyHashes func() ([]byte, error)
	// SubjectID makes the local identity the certificate's subject
	// (ID_DER_ASN1_DN), for local-id distinguished-name.
	SubjectID bool
}

// LocalID implements IDProvider: the subject of the local certificate
// when SubjectID is set, else nil (the configured or address identity).
func (a *SignatureAuth) LocalID() (*message.ID, error) {
	if !a.SubjectID {
		return nil, nil
	}
	certs, _, err := a.Local()
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("ikesa: local certificate for the identity: %v", err)
	}
	c, err := x509.ParseCertificate(certs[0])
	if err != nil {
		return nil, err
	}
	return &message.ID{IDType: message.IDDERASN1DN, Data: c.RawSubject}, nil
}

func (a *SignatureAuth) Name() string { return "RSA-signatures" }

// CertReq implements CertRequester.
func (a *SignatureAuth) CertReq() (*message.CertReq, error) {
	if a.CAKeyHashes == nil {
		return nil, nil
	}
	h, err := a.CAKeyHashes()
	if err != nil || len(h) == 0 {
		return nil, err
	}
	return &message.CertReq{Encoding: message.CertX509Signature, Data: h}, nil
}

// AlgorithmIdentifiers of RFC 7427 appendix A.
var (
	algSHA256RSA   = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00}
	algSHA384RSA   = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00}
	algSHA512RSA   = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00}
	algECDSASHA256 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
	algECDSASHA384 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}
	algECDSASHA512 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04}
)

func (a *SignatureAuth) Sign(c AuthContext) ([]message.Payload, error) {
	certs, keyType, err := a.Local()
	if err != nil {
		return nil, fmt.Errorf("ikesa: local certificate: %w", err)
	}
	if len(certs) == 0 {
		return nil, errors.New("ikesa: no local certificate")
	}
	var out []message.Payload
	for _, der := range certs {
		out = append(out, &message.Cert{Encoding: message.CertX509Signature, Data: der})
	}
	digital := slices.Contains(c.PeerHashes, 2)
	var method message.AuthMethod
	var scheme Scheme
	var alg []byte
	raw := false
	switch keyType {
	case "rsa":
		method, scheme = message.AuthRSASignature, RSAPKCS1SHA1
		if digital {
			method, scheme, alg = message.AuthDigitalSignature, RSAPKCS1SHA256, algSHA256RSA
		}
	case "ecdsa-p256":
		method, scheme, raw = message.AuthECDSA256, ECDSAP256SHA256, true
		if digital {
			method, alg, raw = message.AuthDigitalSignature, algECDSASHA256, false
		}
	case "ecdsa-p384":
		method, scheme, raw = message.AuthECDSA384, ECDSAP384SHA384, true
		if digital {
			method, alg, raw = message.AuthDigitalSignature, algECDSASHA384, false
		}
	case "ecdsa-p521":
		method, scheme, raw = message.AuthECDSA521, ECDSAP521SHA512, true
		if digital {
			method, alg, raw = message.AuthDigitalSignature, algECDSASHA512, false
		}
	default:
		return nil, fmt.Errorf("ikesa: key type %q", keyType)
	}
	sig, err := a.SignData(scheme, raw, c.Octets)
	if err != nil {
		return nil, fmt.Errorf("ikesa: sign: %w", err)
	}
	data := sig
	if method == message.AuthDigitalSignature {
		// RFC 7427 section 3: ASN.1 length, AlgorithmIdentifier, signature.
		data = append(append([]byte{byte(len(alg))}, alg...), sig...)
	}
	return append(out, &message.Auth{Method: method, Data: data}), nil
}

func (a *SignatureAuth) Verify(c AuthContext, auth *message.Auth) error {
	if len(c.PeerCerts) == 0 {
		return errors.New("ikesa: peer sent no certificate")
	}
	pub, err := a.Validate(c.PeerCerts, c.PeerID)
	if err != nil {
		return fmt.Errorf("ikesa: peer certificate: %w", err)
	}
	sig := auth.Data
	var h crypto.Hash
	rawECDSA := false
	switch auth.Method {
	case message.AuthRSASignature:
		h = crypto.SHA1
	case message.AuthECDSA256:
		h, rawECDSA = crypto.SHA256, true
	case message.AuthECDSA384:
		h, rawECDSA = crypto.SHA384, true
	case message.AuthECDSA521:
		h, rawECDSA = crypto.SHA512, true
	case message.AuthDigitalSignature:
		if len(sig) < 1 || len(sig) < 1+int(sig[0]) {
			return errors.New("ikesa: malformed digital signature AUTH")
		}
		alg := sig[1 : 1+int(sig[0])]
		sig = sig[1+int(sig[0]):]
		switch {
		case bytes.Equal(alg, algSHA256RSA), bytes.Equal(alg, algECDSASHA256):
			h = crypto.SHA256
		case bytes.Equal(alg, algSHA384RSA), bytes.Equal(alg, algECDSASHA384):
			h = crypto.SHA384
		case bytes.Equal(alg, algSHA512RSA), bytes.Equal(alg, algECDSASHA512):
			h = crypto.SHA512
		default:
			return fmt.Errorf("ikesa: unsupported signature algorithm %x", alg)
		}
	default:
		return fmt.Errorf("ikesa: unsupported auth method %d", auth.Method)
	}
	digest := hashOf(h, c.Octets)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if rawECDSA {
			return errors.New("ikesa: ECDSA method with an RSA key")
		}
		if err := rsa.VerifyPKCS1v15(k, h, digest, sig); err != nil {
			return errors.New("ikesa: RSA signature does not verify")
		}
	case *ecdsa.PublicKey:
		if rawECDSA {
			n := (k.Curve.Params().BitSize + 7) / 8
			if len(sig) != 2*n {
				return errors.New("ikesa: ECDSA signature of bad length")
			}
			r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
			der, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
			sig = der
		}
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return errors.New("ikesa: ECDSA signature does not verify")
		}
	default:
		return fmt.Errorf("ikesa: unsupported public key %T", pub)
	}
	return nil
}

func hashOf(h crypto.Hash, b []byte) []byte {
	switch h {
	case crypto.SHA1:
		d := sha1.Sum(b)
		return d[:]
	case crypto.SHA256:
		d := sha256.Sum256(b)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(b)
		return d[:]
	}
	d := sha512.Sum512(b)
	return d[:]
}
