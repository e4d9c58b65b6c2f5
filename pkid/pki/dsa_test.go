package pki

import (
	"context"
	"crypto/dsa" //nolint:staticcheck // verifying sitesec's DSA signatures
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/pkid/keystore"
	"github.com/sitesec/sitesec/proto/pb"
)

// verifyDSA checks a dsa-with-sha256 signature over tbs with the
// standard library (Go's crypto/x509 parses DSA but no longer verifies it).
func verifyDSA(t *testing.T, pub any, tbs, sig []byte) {
	t.Helper()
	k, ok := pub.(*dsa.PublicKey)
	if !ok {
		t.Fatalf("public key is %T", pub)
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(tbs)
	d := h[:]
	if n := (k.Q.BitLen() + 7) / 8; len(d) > n {
		d = d[:n]
	}
	if !dsa.Verify(k, d, rs.R, rs.S) {
		t.Error("DSA signature does not verify")
	}
}

// TestDSAKeyPair (issue 12 item 4): generate-key-pair type dsa, as Junos
// offers it, makes a key that signs certificate requests and self-signed
// certificates (checked by crypto/dsa and by openssl); IKE authentication
// with it is refused with a reason, at commit check (Prepare) and by
// pkid.sign, never silently.
func TestDSAKeyPair(t *testing.T) {
	f := newFixture(t)
	f.apply(t, f.config(nil))
	rep := f.ok(t, "request security pki generate-key-pair certificate-id d1 type dsa size 1024")
	out := strings.Join(rep.Lines, "\n")
	if !strings.Contains(out, "Generated key pair d1, key size 1024 bits") || !strings.Contains(out, "1024-bit DSA key is weak") ||
		!strings.Contains(out, "IKE authentication needs an rsa or ecdsa key pair") {
		t.Errorf("generate-key-pair: %q", out)
	}

	// A certificate request, signed dsa-with-sha256.
	rep = f.ok(t, "request security pki generate-certificate-request certificate-id d1 subject CN=d1,O=Example domain-name d1.example.net filename d1.csr")
	b, _ := pem.Decode([]byte(strings.Join(rep.Lines, "\n")))
	if b == nil {
		t.Fatalf("no PEM in %q", rep.Lines)
	}
	cr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cr.SignatureAlgorithm != x509.DSAWithSHA256 || cr.PublicKeyAlgorithm != x509.DSA || strings.Join(cr.DNSNames, ",") != "d1.example.net" {
		t.Errorf("request: %v %v %v", cr.SignatureAlgorithm, cr.PublicKeyAlgorithm, cr.DNSNames)
	}
	verifyDSA(t, cr.PublicKey, cr.RawTBSCertificateRequest, cr.Signature)
	reqs := f.ok(t, "show security pki certificate-request certificate-id d1").GetPkiCertificateRequests().GetRequests()
	if len(reqs) != 1 || reqs[0].PublicKeyAlgorithm != "dsaEncryption(1024 bits)" {
		t.Errorf("show certificate-request: %v", reqs)
	}

	// A self-signed certificate.
	f.ok(t, "request security pki local-certificate generate-self-signed certificate-id d1 subject CN=d1,O=Example ip-address 192.0.2.7")
	loc := f.app.LocalCertificate(context.Background(), &pb.LocalCertificateRequest{CertificateId: "d1"})
	if loc.Error != "" || loc.KeyType != "dsa" {
		t.Fatalf("pkid.local: %v", loc)
	}
	c, err := x509.ParseCertificate(loc.Certificates[0])
	if err != nil {
		t.Fatal(err)
	}
	if c.SignatureAlgorithm != x509.DSAWithSHA256 || len(c.SubjectKeyId) != 20 || (len(c.AuthorityKeyId) > 0 && string(c.AuthorityKeyId) != string(c.SubjectKeyId)) {
		t.Errorf("certificate: %v, ski %x, aki %x", c.SignatureAlgorithm, c.SubjectKeyId, c.AuthorityKeyId)
	}
	verifyDSA(t, c.PublicKey, c.RawTBSCertificate, c.Signature)
	shown := f.ok(t, "show security pki local-certificate certificate-id d1").GetPkiCertificates().GetCertificates()
	if len(shown) != 1 || shown[0].PublicKeyAlgorithm != "dsaEncryption(1024 bits)" {
		t.Errorf("show local-certificate: %v", shown)
	}
	if _, err := exec.LookPath("openssl"); err == nil {
		dir := t.TempDir()
		crt := filepath.Join(dir, "d1.pem")
		os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o600)
		if out, err := exec.Command("openssl", "verify", "-CAfile", crt, crt).CombinedOutput(); err != nil {
			t.Errorf("openssl verify: %v %s", err, out)
		}
		if out, err := exec.Command("openssl", "req", "-verify", "-noout", "-in", f.path("d1.csr")).CombinedOutput(); err != nil {
			t.Errorf("openssl req -verify: %v %s", err, out)
		}
	}

	// IKE: refused by pkid.sign and at commit check.
	sig := f.app.Sign(context.Background(), &pb.SignRequest{CertificateId: "d1", Data: []byte("x")})
	if !strings.Contains(sig.Error, "key pair d1 is a DSA key: IKE authentication with DSA signatures is not supported") {
		t.Errorf("sign: %q", sig.Error)
	}
	cfg := &pb.Config{IpsecVpn: &pb.IPsecVPN{Ike: &pb.IKE{Policies: []*pb.IKEPolicy{{Name: "p1", LocalCertificate: "d1"}, {Name: "p2", LocalCertificate: "later"}}}}}
	err = f.app.Prepare(context.Background(), nil, cfg)
	if err == nil || !strings.Contains(err.Error(), "[edit services ipsec-vpn ike policy p1] 'local-certificate d1': key pair d1 is a DSA key") ||
		strings.Contains(err.Error(), "later") {
		t.Errorf("prepare: %v", err)
	}

	// The key survives a restart of pkid (PKCS#8 with Dss-Parms on disk).
	ks := keystore.New(filepath.Join(f.dir, "certs", "keys"))
	pub, err := ks.Public("d1")
	if err != nil || !keystore.SamePublic(pub, c.PublicKey) {
		t.Errorf("reloaded key: %v", err)
	}
	if rep := f.op(t, "request security pki generate-certificate-request certificate-id d1 subject CN=d1 digest sha-384", false, ""); !strings.Contains(rep.Error, "not supported with a DSA key") {
		t.Errorf("sha-384 with DSA: %q", rep.Error)
	}
}
