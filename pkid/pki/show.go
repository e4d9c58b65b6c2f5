package pki

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/sitesec/sitesec/pkid/csr"
	"github.com/sitesec/sitesec/pkid/keystore"
	"github.com/sitesec/sitesec/proto/pb"
)

var keyUsageNames = []struct {
	bit  x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "Digital signature"},
	{x509.KeyUsageContentCommitment, "Non repudiation"},
	{x509.KeyUsageKeyEncipherment, "Key encipherment"},
	{x509.KeyUsageDataEncipherment, "Data encipherment"},
	{x509.KeyUsageKeyAgreement, "Key agreement"},
	{x509.KeyUsageCertSign, "Certificate signing"},
	{x509.KeyUsageCRLSign, "CRL signing"},
	{x509.KeyUsageEncipherOnly, "Encipher only"},
	{x509.KeyUsageDecipherOnly, "Decipher only"},
}

// describe fills the show-command view of a certificate.
func describe(c *x509.Certificate, id, prof string, now time.Time) *pb.PKICertificate {
	s1 := sha1.Sum(c.Raw)
	s256 := sha256.Sum256(c.Raw)
	m5 := md5.Sum(c.Raw)
	p := &pb.PKICertificate{
		FingerprintMd5:     csr.Colon(m5[:]),
		CertificateId:      id,
		CaProfile:          prof,
		Version:            uint32(c.Version),
		Serial:             fmt.Sprintf("%x", c.SerialNumber),
		Issuer:             csr.FormatDN(c.Issuer),
		Subject:            csr.FormatDN(c.Subject),
		AlternateSubject:   altNames(c),
		NotBeforeUnix:      c.NotBefore.Unix(),
		NotAfterUnix:       c.NotAfter.Unix(),
		PublicKeyAlgorithm: keystore.Describe(c.PublicKey),
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
		FingerprintSha1:    csr.Colon(s1[:]),
		FingerprintSha256:  csr.Colon(s256[:]),
		DistributionCrl:    c.CRLDistributionPoints,
		Der:                c.Raw,
		Status:             validity(c, now),
	}
	for _, k := range keyUsageNames {
		if c.KeyUsage&k.bit != 0 {
			p.KeyUsage = append(p.KeyUsage, k.name)
		}
	}
	return p
}

func validity(c *x509.Certificate, now time.Time) string {
	switch {
	case now.Before(c.NotBefore):
		return "not yet valid"
	case now.After(c.NotAfter):
		return "expired"
	}
	return "valid"
}

// fingerprintLines are the lines Junos prints under "Fingerprint:".
func fingerprintLines(c *x509.Certificate) []string {
	s1 := sha1.Sum(c.Raw)
	m5 := md5.Sum(c.Raw)
	return []string{"Fingerprint:", csr.Colon(s1[:]) + " (sha1)", csr.Colon(m5[:]) + " (md5)"}
}

func summary(c *x509.Certificate) []string {
	return []string{
		"Certificate identifier: " + csr.FormatDN(c.Subject),
		"  Issued by: " + csr.FormatDN(c.Issuer),
		"  Validity: " + c.NotBefore.UTC().Format(time.RFC1123) + " to " + c.NotAfter.UTC().Format(time.RFC1123),
	}
}
