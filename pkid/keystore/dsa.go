package keystore

import (
	"crypto"
	"crypto/dsa" //nolint:staticcheck // Junos offers DSA key pairs; FIPS 186-5 withdrew DSA signatures, see DSAKey.
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// TypeDSA is `generate-key-pair ... type dsa`.
const TypeDSA = "dsa"

// oidDSA is id-dsa (RFC 3279 section 2.3.2).
var oidDSA = asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}

// DSAKey is a DSA private key as a crypto.Signer. Go's crypto/x509 and
// crypto/tls no longer sign with DSA, so pkid encodes DSA keys
// (PKCS#8 with Dss-Parms, RFC 5958 and RFC 3279 section 2.3.2) and
// signatures (Dss-Sig-Value, RFC 3279 section 2.2.2) itself. A DSA key
// signs certificate requests and self-signed certificates; IKE
// authentication with it is refused (pkid's prepare round and Sign).
type DSAKey struct{ Key *dsa.PrivateKey }

// Public returns the *dsa.PublicKey.
func (k *DSAKey) Public() crypto.PublicKey { return &k.Key.PublicKey }

// Sign signs digest (already hashed by the caller) and returns the DER
// Dss-Sig-Value. opts is unused: the caller picked the hash.
func (k *DSAKey) Sign(rand io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	// FIPS 186-4 section 4.6: the leftmost min(N, outlen) bits of the hash.
	if n := (k.Key.Q.BitLen() + 7) / 8; len(digest) > n {
		digest = digest[:n]
	}
	r, s, err := dsa.Sign(rand, k.Key, digest)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(struct{ R, S *big.Int }{r, s})
}

// dsaSizes maps `size` to the FIPS 186-4 (L, N) pair: 2048 (the default)
// and 1024 (weak, as RSA 1024).
var dsaSizes = map[int]dsa.ParameterSizes{1024: dsa.L1024N160, 2048: dsa.L2048N256}

func generateDSA(rand io.Reader, size int) (*DSAKey, error) {
	if size == 0 {
		size = 2048
	}
	ps, ok := dsaSizes[size]
	if !ok {
		return nil, fmt.Errorf("keystore: dsa size %d not supported (1024, 2048)", size)
	}
	k := new(dsa.PrivateKey)
	if err := dsa.GenerateParameters(&k.Parameters, rand, ps); err != nil {
		return nil, err
	}
	if err := dsa.GenerateKey(k, rand); err != nil {
		return nil, err
	}
	return &DSAKey{Key: k}, nil
}

type dssParms struct{ P, Q, G *big.Int }

type pkcs8 struct {
	Version    int
	Algorithm  pkix.AlgorithmIdentifier
	PrivateKey []byte
}

// marshalDSA encodes k as PKCS#8 PrivateKeyInfo: id-dsa with Dss-Parms,
// the private key an INTEGER in the OCTET STRING.
func marshalDSA(k *DSAKey) ([]byte, error) {
	params, err := asn1.Marshal(dssParms{k.Key.P, k.Key.Q, k.Key.G})
	if err != nil {
		return nil, err
	}
	x, err := asn1.Marshal(k.Key.X)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(pkcs8{Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidDSA, Parameters: asn1.RawValue{FullBytes: params}}, PrivateKey: x})
}

// parseDSA decodes a PKCS#8 id-dsa key; ok is false for other algorithms.
func parseDSA(der []byte) (key *DSAKey, ok bool, err error) {
	var p pkcs8
	if rest, err := asn1.Unmarshal(der, &p); err != nil || len(rest) != 0 {
		return nil, false, nil
	}
	if !p.Algorithm.Algorithm.Equal(oidDSA) {
		return nil, false, nil
	}
	var params dssParms
	if rest, err := asn1.Unmarshal(p.Algorithm.Parameters.FullBytes, &params); err != nil || len(rest) != 0 {
		return nil, true, errors.New("keystore: bad DSA parameters")
	}
	x := new(big.Int)
	if rest, err := asn1.Unmarshal(p.PrivateKey, &x); err != nil || len(rest) != 0 {
		return nil, true, errors.New("keystore: bad DSA private key")
	}
	if params.P == nil || params.Q == nil || params.G == nil || params.P.Sign() <= 0 || params.Q.Sign() <= 0 ||
		params.G.Sign() <= 0 || params.P.BitLen() > 4096 || x.Sign() <= 0 || x.Cmp(params.Q) >= 0 {
		return nil, true, errors.New("keystore: bad DSA key")
	}
	k := &dsa.PrivateKey{PublicKey: dsa.PublicKey{Parameters: dsa.Parameters{P: params.P, Q: params.Q, G: params.G}}, X: x}
	k.Y = new(big.Int).Exp(k.G, k.X, k.P)
	return &DSAKey{Key: k}, true, nil
}

// SamePublic reports whether a and b are the same public key (DSA keys
// have no Equal method).
func SamePublic(a, b crypto.PublicKey) bool {
	if da, ok := a.(*dsa.PublicKey); ok {
		db, ok := b.(*dsa.PublicKey)
		return ok && da.Y.Cmp(db.Y) == 0 && da.P.Cmp(db.P) == 0 && da.Q.Cmp(db.Q) == 0 && da.G.Cmp(db.G) == 0
	}
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}
