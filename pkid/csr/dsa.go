package csr

import (
	"crypto"
	"crypto/dsa" //nolint:staticcheck // DSA key pairs (Junos generate-key-pair type dsa)
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha1"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
)

// Go's crypto/x509 parses DSA keys and signatures but no longer makes
// them. A request or certificate for a DSA key is therefore built by
// crypto/x509 for a throwaway ECDSA key, and then its
// SubjectPublicKeyInfo and signature algorithm are replaced by the DSA
// ones and the TBS part is signed again with the DSA key (RFC 2986
// section 4, RFC 5280 section 4.1; DSA per RFC 3279 section 2.2.2 and RFC
// 5758 section 3.1).

var (
	oidDSAWithSHA1   = asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 3}
	oidDSAWithSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 2}
)

func isDSA(pub crypto.PublicKey) (*dsa.PublicKey, bool) {
	k, ok := pub.(*dsa.PublicKey)
	return k, ok
}

// dsaAlgorithm picks the DSA signature algorithm for a digest name:
// dsa-with-sha256 (the default) or dsa-with-sha1.
func dsaAlgorithm(digest string) (asn1.ObjectIdentifier, crypto.Hash, error) {
	switch digest {
	case "", "sha-256", "sha256":
		return oidDSAWithSHA256, crypto.SHA256, nil
	case "sha-1", "sha1":
		return oidDSAWithSHA1, crypto.SHA1, nil
	}
	return nil, 0, fmt.Errorf("csr: digest %q not supported with a DSA key (sha-1, sha-256)", digest)
}

// placeholder is the throwaway key crypto/x509 signs with before the
// DSA key replaces it.
func placeholder(rand io.Reader) (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand)
}

// dsaKeyID is the key identifier of RFC 5280 section 4.2.1.2 method (1)
// for a DSA key.
func dsaKeyID(pub *dsa.PublicKey) ([]byte, error) {
	y, err := asn1.Marshal(pub.Y)
	if err != nil {
		return nil, err
	}
	h := sha1.Sum(y)
	return h[:], nil
}

// resign takes a DER request or certificate made for a placeholder key,
// puts spki at TBS field spkiAt and the DSA algorithm at sigAt (-1: none,
// requests carry no algorithm in the TBS part), and signs it with key.
func resign(rand io.Reader, der []byte, key crypto.Signer, digest string, spkiAt, sigAt int) ([]byte, error) {
	oid, hash, err := dsaAlgorithm(digest)
	if err != nil {
		return nil, err
	}
	pub, ok := isDSA(key.Public())
	if !ok {
		return nil, errors.New("csr: not a DSA key")
	}
	spki, err := dsaSPKI(pub)
	if err != nil {
		return nil, err
	}
	alg, err := asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: oid})
	if err != nil {
		return nil, err
	}
	var outer struct {
		TBS asn1.RawValue
		Alg asn1.RawValue
		Sig asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		return nil, fmt.Errorf("csr: re-sign: %w", err)
	}
	var fields []asn1.RawValue
	for rest := outer.TBS.Bytes; len(rest) > 0; {
		var f asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &f); err != nil {
			return nil, fmt.Errorf("csr: re-sign: %w", err)
		}
		fields = append(fields, f)
	}
	if spkiAt >= len(fields) || sigAt >= len(fields) {
		return nil, errors.New("csr: re-sign: unexpected structure")
	}
	fields[spkiAt] = asn1.RawValue{FullBytes: spki}
	if sigAt >= 0 {
		fields[sigAt] = asn1.RawValue{FullBytes: alg}
	}
	var body []byte
	for _, f := range fields {
		body = append(body, f.FullBytes...)
	}
	tbs, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
	if err != nil {
		return nil, err
	}
	h := hash.New()
	h.Write(tbs)
	sig, err := key.Sign(rand, h.Sum(nil), hash)
	if err != nil {
		return nil, fmt.Errorf("csr: sign: %w", err)
	}
	return asn1.Marshal(struct {
		TBS asn1.RawValue
		Alg asn1.RawValue
		Sig asn1.BitString
	}{asn1.RawValue{FullBytes: tbs}, asn1.RawValue{FullBytes: alg}, asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
}

// dsaSPKI encodes pub as SubjectPublicKeyInfo (RFC 3279 section 2.3.2).
func dsaSPKI(pub *dsa.PublicKey) ([]byte, error) {
	params, err := asn1.Marshal(struct{ P, Q, G interface{} }{pub.P, pub.Q, pub.G})
	if err != nil {
		return nil, err
	}
	y, err := asn1.Marshal(pub.Y)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}{pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}, Parameters: asn1.RawValue{FullBytes: params}},
		asn1.BitString{Bytes: y, BitLength: 8 * len(y)}})
}
