package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a test CA with one RSA certificate per gateway address (IP
// address in the subjectAltName, as IKE identities ipv4_addr need).
type PKI struct {
	CA    *x509.Certificate
	caKey *rsa.PrivateKey
	caPEM []byte
	certs map[string]issued
}

type issued struct{ cert, key []byte }

// PKIFiles are the paths of the PEM files written for one router.
type PKIFiles struct{ CA, Cert, Key string }

// NewPKI makes a CA and a certificate for each address.
func NewPKI(t testing.TB, addrs []string) *PKI { return NewPKIKeys(t, addrs, "rsa") }

// NewPKIKeys is NewPKI with end-entity keys of keyType: "rsa" (2048) or
// "ecdsa-p256" (the CA stays RSA).
func NewPKIKeys(t testing.TB, addrs []string, keyType string) *PKI {
	t.Helper()
	now := time.Now()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sitesec e2e CA", Organization: []string{"sitesec"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &PKI{CA: ca, caKey: caKey, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), certs: map[string]issued{}}
	for i, a := range addrs {
		var key crypto.Signer
		var keyPEM *pem.Block
		if keyType == "ecdsa-p256" {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			der, _ := x509.MarshalECPrivateKey(k)
			key, keyPEM = k, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
		} else {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			key, keyPEM = k, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
		}
		c := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)),
			Subject:      pkix.Name{CommonName: a, Organization: []string{"sitesec"}},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			IPAddresses:  []net.IP{net.ParseIP(a)},
		}
		der, err := x509.CreateCertificate(rand.Reader, c, ca, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		p.certs[a] = issued{
			cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			key:  pem.EncodeToMemory(keyPEM),
		}
	}
	return p
}

// Files writes the CA certificate and addr's certificate and key (0600)
// under dir/pki and returns their absolute paths.
func (p *PKI) Files(t testing.TB, dir, addr string) PKIFiles {
	t.Helper()
	d := filepath.Join(dir, "pki")
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	f := PKIFiles{CA: filepath.Join(d, "ca.pem"), Cert: filepath.Join(d, "gw.pem"), Key: filepath.Join(d, "gw.key")}
	is := p.certs[addr]
	for _, w := range []struct {
		path string
		b    []byte
	}{{f.CA, p.caPEM}, {f.Cert, is.cert}, {f.Key, is.key}} {
		if err := os.WriteFile(w.path, w.b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}
