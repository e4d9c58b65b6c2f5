// Package csr builds PKCS#10 certificate requests (RFC 2986) for `request
// security pki generate-certificate-request` and for SCEP enrollment, and
// parses the subject DN the operator types.
package csr

import (
	"crypto"
	"crypto/dsa" //nolint:staticcheck // DSA key pairs (Junos generate-key-pair type dsa)
	cryptorand "crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/smallstep/scep/x509util"
)

// Request is what the operator asks for.
type Request struct {
	Subject     string   // "CN=vpn1,O=Example,C=US"
	DomainNames []string // subjectAltName dNSName
	IPAddresses []net.IP // subjectAltName iPAddress
	Emails      []string // subjectAltName rfc822Name
	// Digest is sha-1, sha-256 (the default) or sha-384.
	Digest string
	// ChallengePassword goes into the PKCS#9 challengePassword attribute
	// (RFC 2985 section 5.4.1), as SCEP needs (RFC 8894 section 2.2).
	ChallengePassword string
}

// SignatureAlgorithm picks the x509 algorithm for a key and digest name.
func SignatureAlgorithm(pub crypto.PublicKey, digest string) (x509.SignatureAlgorithm, error) {
	rsaKey := strings.HasPrefix(fmt.Sprintf("%T", pub), "*rsa.")
	switch digest {
	case "sha-1", "sha1":
		if rsaKey {
			return x509.SHA1WithRSA, nil
		}
		return x509.ECDSAWithSHA1, nil
	case "", "sha-256", "sha256":
		if rsaKey {
			return x509.SHA256WithRSA, nil
		}
		return x509.ECDSAWithSHA256, nil
	case "sha-384", "sha384":
		if rsaKey {
			return x509.SHA384WithRSA, nil
		}
		return x509.ECDSAWithSHA384, nil
	}
	return 0, fmt.Errorf("csr: digest %q not supported (sha-1, sha-256, sha-384)", digest)
}

// Create signs a PKCS#10 request for r with key and returns its DER.
func Create(rand io.Reader, key crypto.Signer, r Request) ([]byte, error) {
	p, err := prepare(rand, key, r)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{
		RawSubject:         p.subject,
		SignatureAlgorithm: p.alg,
		DNSNames:           r.DomainNames,
		IPAddresses:        r.IPAddresses,
		EmailAddresses:     r.Emails,
	}
	var der []byte
	if r.ChallengePassword != "" {
		der, err = x509util.CreateCertificateRequest(rand, &x509util.CertificateRequest{
			CertificateRequest: *tmpl, ChallengePassword: r.ChallengePassword}, p.signer)
	} else {
		der, err = x509.CreateCertificateRequest(rand, tmpl, p.signer)
	}
	if err != nil {
		return nil, fmt.Errorf("csr: sign: %w", err)
	}
	if p.dsa != nil {
		// CertificationRequestInfo: version, subject, subjectPKInfo, attributes.
		return resign(rand, der, key, r.Digest, 2, -1)
	}
	return der, nil
}

// prepared is what a request and a self-signed certificate for one key
// start from.
type prepared struct {
	// subject is the DER of r.Subject.
	subject []byte
	// signer is what crypto/x509 signs with: the key itself, or for a DSA
	// key a throwaway ECDSA placeholder whose signature resign replaces.
	signer crypto.Signer
	alg    x509.SignatureAlgorithm
	// dsa is the DSA public key, nil for other keys.
	dsa *dsa.PublicKey
}

// prepare parses and checks r for key and picks the signer and algorithm.
func prepare(rand io.Reader, key crypto.Signer, r Request) (prepared, error) {
	rdns, err := ParseDN(r.Subject)
	if err != nil {
		return prepared{}, err
	}
	p := prepared{signer: key}
	if p.subject, err = asn1.Marshal(rdns); err != nil {
		return prepared{}, fmt.Errorf("csr: marshal subject: %w", err)
	}
	if pub, ok := isDSA(key.Public()); ok {
		if _, _, err := dsaAlgorithm(r.Digest); err != nil {
			return prepared{}, err
		}
		if p.signer, err = placeholder(rand); err != nil {
			return prepared{}, err
		}
		p.dsa = pub
	}
	if p.alg, err = SignatureAlgorithm(p.signer.Public(), r.Digest); err != nil {
		return prepared{}, err
	}
	if err := checkNames(r); err != nil {
		return prepared{}, err
	}
	return p, nil
}

// PEM encodes a request DER as "CERTIFICATE REQUEST".
func PEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// Fingerprint is the SHA-1 of der as colon-separated hex, as Junos shows
// fingerprints.
func Fingerprint(der []byte) string {
	sum := sha1.Sum(der)
	return Colon(sum[:])
}

// Colon renders b as lower-case hex pairs joined by ':'.
func Colon(b []byte) string {
	h := hex.EncodeToString(b)
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// SelfSignedValidity is how long a certificate of `request security pki
// local-certificate generate-self-signed` is valid.
const SelfSignedValidity = 5 * 365 * 24 * time.Hour

// SelfSigned issues the certificate of `request security pki
// local-certificate generate-self-signed` for r, signed by key itself
// (RFC 5280 section 3.2: a self-issued, self-signed certificate). It is
// valid from now for SelfSignedValidity. It may sign (digitalSignature,
// for IKE AUTH, RFC 4945 section 5.1.3.2) and, being its own issuer, it is
// marked as a CA (basicConstraints cA, keyCertSign; RFC 5280 section
// 4.2.1.9) so that a peer can load it as the trust anchor of a ca-profile.
func SelfSigned(rand io.Reader, key crypto.Signer, r Request, now time.Time) ([]byte, error) {
	p, err := prepare(rand, key, r)
	if err != nil {
		return nil, err
	}
	var keyID []byte
	if p.dsa != nil {
		if keyID, err = dsaKeyID(p.dsa); err != nil {
			return nil, err
		}
	}
	// RFC 5280 section 4.1.2.2: a positive serial of at most 20 octets.
	serial, err := cryptorand.Int(rand, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("csr: serial: %w", err)
	}
	serial.Add(serial, big.NewInt(1))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            p.subject,
		RawIssuer:             p.subject,
		SignatureAlgorithm:    p.alg,
		NotBefore:             now.Add(-time.Minute).UTC(),
		NotAfter:              now.Add(SelfSignedValidity).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              r.DomainNames,
		IPAddresses:           r.IPAddresses,
		EmailAddresses:        r.Emails,
		SubjectKeyId:          keyID,
	}
	der, err := x509.CreateCertificate(rand, tmpl, tmpl, p.signer.Public(), p.signer)
	if err != nil {
		return nil, fmt.Errorf("csr: sign: %w", err)
	}
	if p.dsa != nil {
		// TBSCertificate: [0] version, serial, signature, issuer,
		// validity, subject, subjectPublicKeyInfo, [3] extensions.
		return resign(rand, der, key, r.Digest, 6, 2)
	}
	return der, nil
}

// checkNames refuses alternative names that cannot be what the operator
// meant.
func checkNames(r Request) error {
	for _, d := range r.DomainNames {
		if d == "" || strings.ContainsAny(d, " /,") {
			return fmt.Errorf("csr: bad domain-name %q", d)
		}
	}
	for _, e := range r.Emails {
		if !strings.Contains(e, "@") {
			return fmt.Errorf("csr: bad email %q", e)
		}
	}
	return nil
}
