package csr

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"net"
	"strings"
	"testing"

	"github.com/smallstep/scep/x509util"
)

func TestParseDN(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{"CN=vpn1,OU=net,O=Example,L=Sunnyvale,ST=CA,C=US", "CN=vpn1, OU=net, O=Example, L=Sunnyvale, ST=CA, C=US", ""},
		{"dc=example, cn=a\\,b", "DC=example, CN=a\\,b", ""},
		{"emailAddress=a@b.c,CN=x", "emailAddress=a@b.c, CN=x", ""},
		{"", "", "empty subject"},
		{"CN", "", "not NAME=value"},
		{"XX=1", "", `unknown attribute "XX"`},
		{"CN=", "", "empty value"},
		{"C=USA", "", "two letters"},
		{"CN=a,,O=b", "", "component 2"},
	}
	for _, tt := range tests {
		rdns, err := ParseDN(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseDN(%q) error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseDN(%q): %v", tt.in, err)
		}
		der, err := asn1.Marshal(rdns)
		if err != nil {
			t.Fatal(err)
		}
		var back pkix.RDNSequence
		if _, err := asn1.Unmarshal(der, &back); err != nil {
			t.Fatal(err)
		}
		var n pkix.Name
		n.FillFromRDNSequence(&back)
		if got := FormatDN(n); got != tt.want {
			t.Errorf("ParseDN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCreate(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tests := []struct {
		name    string
		key     any
		req     Request
		wantAlg x509.SignatureAlgorithm
		wantErr string
	}{
		{"rsa default", rk, Request{Subject: "CN=vpn1,O=Example,C=US", DomainNames: []string{"vpn1.example.net"},
			IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}, Emails: []string{"ops@example.net"}}, x509.SHA256WithRSA, ""},
		{"rsa sha1", rk, Request{Subject: "CN=a", Digest: "sha-1"}, x509.SHA1WithRSA, ""},
		{"ecdsa sha384", ek, Request{Subject: "CN=a", Digest: "sha-384"}, x509.ECDSAWithSHA384, ""},
		{"challenge", rk, Request{Subject: "CN=a", ChallengePassword: "s3cret"}, x509.SHA256WithRSA, ""},
		{"bad digest", rk, Request{Subject: "CN=a", Digest: "md5"}, 0, "digest"},
		{"bad subject", rk, Request{Subject: "bogus"}, 0, "NAME=value"},
		{"bad domain", rk, Request{Subject: "CN=a", DomainNames: []string{"a b"}}, 0, "domain-name"},
		{"bad email", rk, Request{Subject: "CN=a", Emails: []string{"nobody"}}, 0, "email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var der []byte
			var err error
			switch k := tt.key.(type) {
			case *rsa.PrivateKey:
				der, err = Create(rand.Reader, k, tt.req)
			case *ecdsa.PrivateKey:
				der, err = Create(rand.Reader, k, tt.req)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cr, err := x509.ParseCertificateRequest(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := cr.CheckSignature(); err != nil {
				t.Fatalf("signature: %v", err)
			}
			if cr.SignatureAlgorithm != tt.wantAlg {
				t.Errorf("alg %v, want %v", cr.SignatureAlgorithm, tt.wantAlg)
			}
			if !strings.HasPrefix(FormatDN(cr.Subject), "CN=") {
				t.Errorf("subject %q", FormatDN(cr.Subject))
			}
			if len(tt.req.DomainNames) > 0 && (cr.DNSNames[0] != "vpn1.example.net" || !cr.IPAddresses[0].Equal(net.ParseIP("192.0.2.1")) || cr.EmailAddresses[0] != "ops@example.net") {
				t.Errorf("SANs %v %v %v", cr.DNSNames, cr.IPAddresses, cr.EmailAddresses)
			}
			cp, err := x509util.ParseChallengePassword(der)
			if err != nil || cp != tt.req.ChallengePassword {
				t.Errorf("challenge password %q (%v), want %q", cp, err, tt.req.ChallengePassword)
			}
			b, _ := pem.Decode(PEM(der))
			if b == nil || b.Type != "CERTIFICATE REQUEST" {
				t.Errorf("PEM block %v", b)
			}
		})
	}
}

func TestColon(t *testing.T) {
	if got := Colon([]byte{0xab, 0x01, 0xff}); got != "ab:01:ff" {
		t.Errorf("Colon = %q", got)
	}
	if len(Fingerprint([]byte("x"))) != 59 {
		t.Errorf("Fingerprint length %d", len(Fingerprint([]byte("x"))))
	}
}

func FuzzParseDN(f *testing.F) {
	f.Add("CN=vpn1,OU=net,O=Example,C=US")
	f.Add("dc=a\\,b,cn=")
	f.Fuzz(func(t *testing.T, s string) {
		rdns, err := ParseDN(s)
		if err != nil {
			return
		}
		var n pkix.Name
		n.FillFromRDNSequence(&rdns)
		_ = FormatDN(n)
	})
}
