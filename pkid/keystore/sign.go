package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"

	"github.com/sitesec/sitesec/proto/pb"
)

// schemeHash maps a signature scheme to its hash and whether it is RSA-PSS,
// RSA PKCS#1 v1.5 or ECDSA with a given curve size.
type schemeInfo struct {
	hash  crypto.Hash
	alg   string // "pkcs1", "pss", "ecdsa"
	curve int    // ECDSA field size in bits
}

var schemes = map[pb.SignatureScheme]schemeInfo{
	// RFC 7296 section 3.8 method 1 and RFC 7427 section 3.
	pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_SHA1:   {crypto.SHA1, "pkcs1", 0},
	pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_SHA256: {crypto.SHA256, "pkcs1", 0},
	pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_SHA384: {crypto.SHA384, "pkcs1", 0},
	pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_SHA512: {crypto.SHA512, "pkcs1", 0},
	pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PSS_SHA256:   {crypto.SHA256, "pss", 0},
	pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PSS_SHA384:   {crypto.SHA384, "pss", 0},
	pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PSS_SHA512:   {crypto.SHA512, "pss", 0},
	// RFC 4754 section 3 / RFC 7427: the curve fixes the hash.
	pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_P256_SHA256: {crypto.SHA256, "ecdsa", 256},
	pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_P384_SHA384: {crypto.SHA384, "ecdsa", 384},
	pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_P521_SHA512: {crypto.SHA512, "ecdsa", 521},
	// RFC 2409 section 5.1 (IKEv1): the data is a prf output, signed as
	// it is (hash 0: no hashing, no DigestInfo), on any curve.
	pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_NONE: {0, "pkcs1", 0},
	pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_NONE:     {0, "ecdsa", 0},
}

// Sign hashes data per scheme and signs it with id's private key. ECDSA
// signatures are ASN.1 DER Ecdsa-Sig-Value (RFC 7427 section 3); kmd
// converts them to r||s for the RFC 4754 methods. With
// SIGNATURE_SCHEME_UNSPECIFIED the key decides: RSA PKCS#1 v1.5 SHA-1 (RFC
// 7296 method 1), ECDSA with the hash of its curve.
func (s *Store) Sign(id string, scheme pb.SignatureScheme, data []byte) ([]byte, error) {
	k, err := s.signer(id)
	if err != nil {
		return nil, err
	}
	if scheme == pb.SignatureScheme_SIGNATURE_SCHEME_UNSPECIFIED {
		scheme = DefaultScheme(k.Public())
	}
	info, ok := schemes[scheme]
	if !ok {
		return nil, fmt.Errorf("keystore: signature scheme %v not supported", scheme)
	}
	var opts crypto.SignerOpts = info.hash
	switch key := k.(type) {
	case *rsa.PrivateKey:
		switch info.alg {
		case "pkcs1":
		case "pss":
			opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: info.hash}
		default:
			return nil, fmt.Errorf("keystore: %q is an RSA key, scheme %v needs ECDSA", id, scheme)
		}
	case *ecdsa.PrivateKey:
		if info.alg != "ecdsa" {
			return nil, fmt.Errorf("keystore: %q is an ECDSA key, scheme %v needs RSA", id, scheme)
		}
		if info.curve != 0 && key.Curve.Params().BitSize != info.curve {
			return nil, fmt.Errorf("keystore: %q is on %s, scheme %v needs P-%d", id, key.Curve.Params().Name, scheme, info.curve)
		}
	case *DSAKey:
		return nil, fmt.Errorf("key pair %s is a DSA key: IKE authentication with DSA signatures is not supported; use an rsa or ecdsa key pair", id)
	default:
		return nil, fmt.Errorf("keystore: %q: %T keys cannot sign", id, k)
	}
	digest := data
	if info.hash != 0 {
		h := info.hash.New()
		h.Write(data)
		digest = h.Sum(nil)
	} else if len(data) == 0 || len(data) > 64 {
		return nil, fmt.Errorf("keystore: scheme %v signs a prf output, not %d bytes", scheme, len(data))
	}
	sig, err := k.Sign(s.rand(), digest, opts)
	if err != nil {
		return nil, fmt.Errorf("keystore: sign with %q: %w", id, err)
	}
	return sig, nil
}

// DefaultScheme is the scheme used for pub when none is asked for.
func DefaultScheme(pub crypto.PublicKey) pb.SignatureScheme {
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		switch k.Curve.Params().BitSize {
		case 384:
			return pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_P384_SHA384
		case 521:
			return pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_P521_SHA512
		}
		return pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_P256_SHA256
	}
	return pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_SHA1
}
