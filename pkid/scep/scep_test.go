package scep

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/pkid/csr"
	"github.com/sitesec/sitesec/pkid/internal/testpki"
)

func TestEnroll(t *testing.T) {
	ca := testpki.NewSCEPCA(t, "s3cret")
	other := testpki.Root(t, "Other", testpki.Options{RSA: true})
	c := &Client{URL: ca.URL()}
	ctx := context.Background()
	cas, err := c.GetCACert(ctx, "ca1")
	if err != nil || len(cas) != 1 || !cas[0].Equal(ca.Cert) {
		t.Fatalf("GetCACert: %v %v", cas, err)
	}
	caps, err := c.GetCACaps(ctx, "ca1")
	if err != nil || !caps.Has("postpkioperation") {
		t.Fatalf("GetCACaps: %v %v", caps, err)
	}
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mk := func(pw string) []byte {
		der, err := csr.Create(rand.Reader, key, csr.Request{Subject: "CN=vpn1,O=Example", DomainNames: []string{"vpn1.example.net"}, ChallengePassword: pw})
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	tests := []struct {
		name    string
		caps    string
		e       Enrollment
		wantErr string
	}{
		{"post aes", "", Enrollment{CACerts: cas, CSR: mk("s3cret"), Key: key}, ""},
		{"get des", "SHA-1\n", Enrollment{CACerts: cas, CSR: mk("s3cret"), Key: key, Encryption: "des"}, ""},
		{"wrong password", "", Enrollment{CACerts: cas, CSR: mk("wrong"), Key: key}, "CA rejected the request: badRequest"},
		{"no CA", "", Enrollment{CSR: mk("s3cret"), Key: key}, "no CA certificate"},
		{"ecdsa", "", Enrollment{CACerts: cas, CSR: mk("s3cret"), Key: ec}, "must be RSA"},
		{"bad csr", "", Enrollment{CACerts: cas, CSR: []byte{1}, Key: key}, "scep:"},
		{"wrong CA", "", Enrollment{CACerts: []*x509.Certificate{other.Cert}, CSR: mk("s3cret"), Key: key}, "scep:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.caps != "" {
				old := ca.Caps
				ca.Caps = tt.caps
				defer func() { ca.Caps = old }()
			}
			crt, err := c.Enroll(ctx, tt.e)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if crt.Subject.CommonName != "vpn1" || crt.DNSNames[0] != "vpn1.example.net" || crt.CheckSignatureFrom(ca.Cert) != nil {
				t.Errorf("issued %v %v", crt.Subject, crt.DNSNames)
			}
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	ca := testpki.NewSCEPCA(t, "x")
	c := &Client{URL: ca.Server.URL + "/scep"}
	// An unknown operation gets HTTP 400, reported with its body.
	if _, _, err := c.get(context.Background(), "Bogus", ""); err == nil || !strings.Contains(err.Error(), "HTTP 400") {
		t.Errorf("bogus op: %v", err)
	}
	c.URL = "http://127.0.0.1:1/scep"
	if _, err := c.GetCACert(context.Background(), "x"); err == nil {
		t.Error("GetCACert of a closed port succeeded")
	}
	c.URL = "::bad"
	if _, err := c.GetCACert(context.Background(), "x"); err == nil {
		t.Error("bad URL accepted")
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add([]byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		parseReply(b)
	})
}

func TestEnrollPending(t *testing.T) {
	ca := testpki.NewSCEPCA(t, "pw")
	var slept []time.Duration
	c := &Client{URL: ca.URL(), Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := csr.Create(rand.Reader, key, csr.Request{Subject: "CN=p", ChallengePassword: "pw"})
	e := Enrollment{CACerts: []*x509.Certificate{ca.Cert}, CSR: der, Key: key, Retry: 3, RetryInterval: 10 * time.Second}

	ca.Pending = 2
	crt, err := c.Enroll(context.Background(), e)
	if err != nil || crt.Subject.CommonName != "p" {
		t.Fatalf("after 2 pending: %v", err)
	}
	if len(slept) != 2 || slept[0] != 10*time.Second {
		t.Errorf("slept %v", slept)
	}
	ca.Pending = 5
	slept = nil
	if _, err := c.Enroll(context.Background(), e); err == nil || !strings.Contains(err.Error(), "still pending after 3 retries") {
		t.Errorf("retries exhausted: %v", err)
	}
	if len(slept) != 3 {
		t.Errorf("slept %d times, want 3", len(slept))
	}
	c.Sleep = func(ctx context.Context, d time.Duration) error { return context.Canceled }
	ca.Pending = 1
	if _, err := c.Enroll(context.Background(), e); err == nil || !strings.Contains(err.Error(), "waiting for the CA") {
		t.Errorf("cancelled wait: %v", err)
	}
}
