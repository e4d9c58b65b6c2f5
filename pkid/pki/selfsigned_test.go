package pki

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/proto/pb"
)

// TestGenerateSelfSigned: `request security pki local-certificate
// generate-self-signed` (Junos syntax) makes a local certificate signed by
// the certificate-id's own key pair, which pkid.local then serves and
// pkid.sign signs for, and which a peer can load as its ca-profile's CA.
func TestGenerateSelfSigned(t *testing.T) {
	for _, typ := range []string{"rsa", "ecdsa"} {
		t.Run(typ, func(t *testing.T) {
			f := newFixture(t)
			f.apply(t, f.config(nil))
			rep := f.op(t, "request security pki local-certificate generate-self-signed certificate-id gw subject CN=gw,O=Example", false, "")
			if !strings.Contains(rep.Error, "no key pair gw: generate it first") {
				t.Errorf("without a key pair: %q", rep.Error)
			}
			f.ok(t, "request security pki generate-key-pair certificate-id gw type "+typ)
			rep = f.ok(t, "request security pki local-certificate generate-self-signed certificate-id gw domain-name gw.example.net subject CN=gw,O=Example email admin@example.net ip-address 192.0.2.1")
			if strings.Join(rep.Lines, "\n") != "Self-signed certificate generated and loaded successfully" {
				t.Errorf("reply: %q", rep.Lines)
			}
			loc := f.app.LocalCertificate(context.Background(), &pb.LocalCertificateRequest{CertificateId: "gw"})
			if loc.Error != "" || len(loc.Certificates) != 1 {
				t.Fatalf("pkid.local: %v", loc)
			}
			c, err := x509.ParseCertificate(loc.Certificates[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := c.CheckSignatureFrom(c); err != nil {
				t.Errorf("not signed by its own key: %v", err)
			}
			if !c.IsCA || c.KeyUsage&x509.KeyUsageDigitalSignature == 0 || c.KeyUsage&x509.KeyUsageCertSign == 0 {
				t.Errorf("usage: CA %v, key usage %b", c.IsCA, c.KeyUsage)
			}
			if got := strings.Join(loc.SubjectAltNames, ","); got != "fqdn:gw.example.net,ipv4:192.0.2.1,email:admin@example.net" {
				t.Errorf("alternative names %q", got)
			}
			if loc.Subject != "CN=gw, O=Example" {
				t.Errorf("subject %q", loc.Subject)
			}
			// The key signs for IKE and the certificate verifies it.
			data := []byte("AUTH octets")
			scheme := pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_SHA256
			alg := x509.SHA256WithRSA
			if typ == "ecdsa" {
				scheme, alg = pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_P256_SHA256, x509.ECDSAWithSHA256
			}
			sig := f.app.Sign(context.Background(), &pb.SignRequest{CertificateId: "gw", Scheme: scheme, Data: data})
			if sig.Error != "" {
				t.Fatal(sig.Error)
			}
			if err := c.CheckSignature(alg, data, sig.Signature); err != nil {
				t.Errorf("IKE signature does not verify with the certificate: %v", err)
			}
			// A second one is refused; it does not replace the first.
			rep = f.op(t, "request security pki local-certificate generate-self-signed certificate-id gw subject CN=other", false, "")
			if !strings.Contains(rep.Error, "local certificate gw already exists") {
				t.Errorf("second: %q", rep.Error)
			}
			shown := f.ok(t, "show security pki local-certificate certificate-id gw").GetPkiCertificates().GetCertificates()
			if len(shown) != 1 || shown[0].Subject != "CN=gw, O=Example" || shown[0].Issuer != "CN=gw, O=Example" {
				t.Errorf("show local-certificate: %v", shown)
			}
			for _, bad := range []struct{ cmd, want string }{
				{"request security pki local-certificate generate-self-signed certificate-id gw2", "subject is required"},
				{"request security pki local-certificate generate-self-signed subject CN=a", "certificate-id is required"},
				{"request security pki local-certificate generate-self-signed certificate-id gw subject CN=a ip-address 1.2.3", "not an address"},
				{"request security pki local-certificate generate-self-signed certificate-id ../x subject CN=a", "must not start with"},
			} {
				if rep := f.op(t, bad.cmd, false, ""); !strings.Contains(rep.Error, bad.want) || strings.Contains(rep.Error, "keystore:") {
					t.Errorf("%s: %q, want %q", bad.cmd, rep.Error, bad.want)
				}
			}
		})
	}
}
