package certstore

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/smallstep/pkcs7"

	"github.com/sitesec/sitesec/pkid/internal/testpki"
)

func TestParseCertificates(t *testing.T) {
	root := testpki.Root(t, "Root", testpki.Options{})
	mid := root.Intermediate(t, "Mid", testpki.Options{})
	var both []byte
	for _, c := range []*x509.Certificate{root.Cert, mid.Cert} {
		both = append(both, c.Raw...)
	}
	p7, err := pkcs7.DegenerateCertificate(both)
	if err != nil {
		t.Fatal(err)
	}
	pemBoth := EncodePEM([]*x509.Certificate{root.Cert, mid.Cert})
	tests := []struct {
		name    string
		data    []byte
		want    int
		wantErr bool
	}{
		{"pem two", append([]byte("garbage before\n"), pemBoth...), 2, false},
		{"der", root.Cert.Raw, 1, false},
		{"pkcs7 der", p7, 2, false},
		{"pkcs7 pem", pem.EncodeToMemory(&pem.Block{Type: "PKCS7", Bytes: p7}), 2, false},
		{"pem key only", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), 0, true},
		{"pem bad cert", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}), 0, true},
		{"junk", []byte{0x30, 0x03, 0x01, 0x01, 0xff}, 0, true},
		{"empty", nil, 0, true},
	}
	for _, tt := range tests {
		got, err := ParseCertificates(tt.data)
		if (err != nil) != tt.wantErr || len(got) != tt.want {
			t.Errorf("%s: got %d certs, err %v; want %d, err %v", tt.name, len(got), err, tt.want, tt.wantErr)
		}
	}
}

func TestStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	root := testpki.Root(t, "Root", testpki.Options{})
	leaf, _ := root.Leaf(t, "vpn1", testpki.Options{})
	if err := s.SetCA("ca1", []*x509.Certificate{root.Cert}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLocal("vpn1", []*x509.Certificate{leaf, root.Cert}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRequest("vpn1", []byte{0x30, 0}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCA("bad/name", []*x509.Certificate{root.Cert}); err == nil {
		t.Error("SetCA accepted a path")
	}
	if err := s.SetLocal("x", nil); err == nil {
		t.Error("SetLocal accepted no certificate")
	}
	fi, err := os.Stat(filepath.Join(dir, "local", "vpn1.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("local file: %v %v", fi, err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(s2.CA("ca1")) != 1 || len(s2.Local("vpn1")) != 2 || len(s2.Request("vpn1")) != 2 {
		t.Errorf("reload: %d CA, %d local, %d request bytes", len(s2.CA("ca1")), len(s2.Local("vpn1")), len(s2.Request("vpn1")))
	}
	if s2.CAProfiles()[0] != "ca1" || s2.LocalIDs()[0] != "vpn1" || s2.RequestIDs()[0] != "vpn1" {
		t.Error("listing after reload")
	}
	for _, f := range []func(string) error{s2.ClearCA, s2.ClearLocal, s2.ClearRequest} {
		if err := f("ca1"); err != nil && !errors.Is(err, ErrNotFound) {
			t.Error(err)
		}
	}
	if err := s2.ClearLocal("vpn1"); err != nil {
		t.Fatal(err)
	}
	if err := s2.ClearLocal("vpn1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second clear: %v", err)
	}
	// A corrupt file is reported, the rest still loads.
	os.WriteFile(filepath.Join(dir, "local", "junk.pem"), []byte("nope"), 0o600)
	s3, err := Open(dir)
	if err == nil {
		t.Error("corrupt file not reported")
	}
	if len(s3.CA("ca1")) != 0 || s3.Local("vpn1") != nil || len(s3.Request("vpn1")) == 0 {
		t.Errorf("after clear and reload: %v %v %v", s3.CA("ca1"), s3.Local("vpn1"), s3.Request("vpn1"))
	}
}

func FuzzParseCertificates(f *testing.F) {
	root := testpki.Root(f, "Root", testpki.Options{})
	f.Add(root.Cert.Raw)
	f.Add(EncodePEM([]*x509.Certificate{root.Cert}))
	p7, _ := pkcs7.DegenerateCertificate(root.Cert.Raw)
	f.Add(p7)
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseCertificates(data)
	})
}
