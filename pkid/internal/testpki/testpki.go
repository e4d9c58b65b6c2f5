// Package testpki builds small certificate hierarchies and CRLs for pkid's
// tests: a root, an optional intermediate, end entities, all ECDSA P-256
// unless asked otherwise, with a fixed clock.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Now is the reference time of every test hierarchy.
var Now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

var serial atomic.Int64

// Issuer is a CA certificate with its key.
type Issuer struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Options tune a certificate.
type Options struct {
	NotBefore, NotAfter time.Time
	KeyUsage            x509.KeyUsage
	ExtKeyUsage         []x509.ExtKeyUsage
	DNSNames            []string
	IPs                 []net.IP
	CRLURLs             []string
	RSA                 bool
	Key                 crypto.Signer // use this key instead of a fresh one
	NoBasicConstraints  bool
	OU                  string // a leaf's organizationalUnitName
}

func key(t testing.TB, o Options) crypto.Signer {
	if o.Key != nil {
		return o.Key
	}
	if o.RSA {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func window(o Options) (time.Time, time.Time) {
	nb, na := o.NotBefore, o.NotAfter
	if nb.IsZero() {
		nb = Now.Add(-24 * time.Hour)
	}
	if na.IsZero() {
		na = Now.Add(365 * 24 * time.Hour)
	}
	return nb, na
}

// Root makes a self-signed CA.
func Root(t testing.TB, cn string, o Options) *Issuer {
	k := key(t, o)
	nb, na := window(o)
	ku := o.KeyUsage
	if ku == 0 {
		ku = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	subject := pkix.Name{CommonName: cn, Organization: []string{"Test"}}
	if o.OU != "" {
		subject.OrganizationalUnit = []string{o.OU}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               subject,
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              ku,
		BasicConstraintsValid: !o.NoBasicConstraints,
		IsCA:                  !o.NoBasicConstraints,
		CRLDistributionPoints: o.CRLURLs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &Issuer{Cert: c, Key: k}
}

// Intermediate makes a CA signed by parent.
func (p *Issuer) Intermediate(t testing.TB, cn string, o Options) *Issuer {
	k := key(t, o)
	nb, na := window(o)
	ku := o.KeyUsage
	if ku == 0 {
		ku = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	subject := pkix.Name{CommonName: cn, Organization: []string{"Test"}}
	if o.OU != "" {
		subject.OrganizationalUnit = []string{o.OU}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               subject,
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              ku,
		BasicConstraintsValid: !o.NoBasicConstraints,
		IsCA:                  !o.NoBasicConstraints,
		CRLDistributionPoints: o.CRLURLs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Cert, k.Public(), p.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &Issuer{Cert: c, Key: k}
}

// Leaf makes an end-entity certificate signed by p and returns it with its key.
func (p *Issuer) Leaf(t testing.TB, cn string, o Options) (*x509.Certificate, crypto.Signer) {
	k := key(t, o)
	nb, na := window(o)
	ku := o.KeyUsage
	if ku == 0 {
		ku = x509.KeyUsageDigitalSignature
	}
	subject := pkix.Name{CommonName: cn, Organization: []string{"Test"}}
	if o.OU != "" {
		subject.OrganizationalUnit = []string{o.OU}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               subject,
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              ku,
		ExtKeyUsage:           o.ExtKeyUsage,
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPs,
		CRLDistributionPoints: o.CRLURLs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Cert, k.Public(), p.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

// CRL makes a CRL issued by p revoking the given certificates, valid from
// thisUpdate to nextUpdate.
func (p *Issuer) CRL(t testing.TB, thisUpdate, nextUpdate time.Time, revoked ...*x509.Certificate) []byte {
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: thisUpdate.Add(-time.Hour)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(serial.Add(1)),
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
		RevokedCertificateEntries: entries,
	}, p.Cert, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
