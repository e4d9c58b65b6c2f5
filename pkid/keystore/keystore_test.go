package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/proto/pb"
)

func TestGenerate(t *testing.T) {
	tests := []struct {
		typ     string
		size    int
		want    string
		wantErr string
	}{
		{"", 0, "rsaEncryption(2048 bits)", ""},
		{"rsa", 3072, "rsaEncryption(3072 bits)", ""},
		{"ecdsa", 0, "ecdsaEncryption(P-256)", ""},
		{"ecdsa", 384, "ecdsaEncryption(P-384)", ""},
		{"rsa", 1024, "rsaEncryption(1024 bits)", ""},
		{"ecdsa", 521, "ecdsaEncryption(P-521)", ""},
		{"rsa", 512, "", "rsa size 512 not supported"},
		{"ecdsa", 224, "", "ecdsa size 224 not supported"},
		{"dsa", 1024, "dsaEncryption(1024 bits)", ""},
		{"dsa", 3072, "", "dsa size 3072 not supported (1024, 2048)"},
		{"ed448", 0, "", `key type "ed448" not supported`},
	}
	dir := t.TempDir()
	s := New(filepath.Join(dir, "certs"))
	for i, tt := range tests {
		id := "k" + string(rune('a'+i))
		pub, err := s.Generate(id, tt.typ, tt.size)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Generate(%q, %d) error %v, want %q", tt.typ, tt.size, err, tt.wantErr)
			}
			if s.Has(id) {
				t.Errorf("Generate(%q, %d) failed but stored a key", tt.typ, tt.size)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Generate(%q, %d): %v", tt.typ, tt.size, err)
		}
		if got := Describe(pub); got != tt.want {
			t.Errorf("Describe = %q, want %q", got, tt.want)
		}
		fi, err := os.Stat(filepath.Join(dir, "certs", id+".key"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
		}
		// A fresh store reads it back from disk.
		pub2, err := New(filepath.Join(dir, "certs")).Public(id)
		if err != nil {
			t.Fatalf("reload %s: %v", id, err)
		}
		if !SamePublic(pub, pub2) {
			t.Errorf("reloaded public key differs")
		}
	}
	if _, err := s.Generate("ka", "rsa", 2048); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second Generate: %v, want already exists", err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "certs"))
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", fi.Mode().Perm())
	}
	ids, _ := s.List()
	if strings.Join(ids, ",") != "ka,kb,kc,kd,ke,kf,ki" {
		t.Errorf("List = %v", ids)
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"", "../x", "a/b", ".hidden", "a b", strings.Repeat("a", 33)} {
		if CheckID(id) == nil {
			t.Errorf("CheckID(%q) accepted", id)
		}
	}
	for _, id := range []string{"vpn1", "host.example-1_2", strings.Repeat("a", 32)} {
		if err := CheckID(id); err != nil {
			t.Errorf("CheckID(%q): %v", id, err)
		}
	}
	s := New(t.TempDir())
	if _, err := s.Generate("../escape", "rsa", 0); err == nil {
		t.Error("Generate accepted a path")
	}
}

func TestImportDeleteNotFound(t *testing.T) {
	s := New(t.TempDir())
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(ec)
	sec1 := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)})
	for name, data := range map[string][]byte{"ec": append([]byte("junk\n"), sec1...), "rsa": pkcs1} {
		if _, err := s.Import(name, data); err != nil {
			t.Fatalf("Import %s: %v", name, err)
		}
	}
	for _, bad := range [][]byte{nil, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
		pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})} {
		if _, err := s.Import("bad", bad); err == nil {
			t.Errorf("Import(%q) accepted", bad)
		}
	}
	if err := s.Delete("ec"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Public("ec"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Public after Delete: %v", err)
	}
	if err := s.Delete("ec"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := s.Sign("nope", 0, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Sign missing: %v", err)
	}
	// Corrupt file on disk.
	os.WriteFile(filepath.Join(s.Dir, "corrupt.key"), []byte("x"), 0o600)
	if _, err := s.Public("corrupt"); err == nil {
		t.Error("corrupt key file accepted")
	}
}

func TestReplace(t *testing.T) {
	s := New(t.TempDir())
	p1, _ := s.Generate("e", "ecdsa", 384)
	p2, err := s.Replace("e")
	if err != nil {
		t.Fatal(err)
	}
	if p1.(*ecdsa.PublicKey).Equal(p2) || Describe(p2) != "ecdsaEncryption(P-384)" {
		t.Errorf("Replace gave %s, same=%v", Describe(p2), p1.(*ecdsa.PublicKey).Equal(p2))
	}
	if _, err := s.Replace("missing"); err == nil {
		t.Error("Replace of missing key succeeded")
	}
}

func TestSign(t *testing.T) {
	s := New(t.TempDir())
	rsaPub, _ := s.Generate("r", "rsa", 2048)
	p256, _ := s.Generate("e256", "ecdsa", 256)
	p384, _ := s.Generate("e384", "ecdsa", 384)
	data := []byte("IKE_SA_INIT octets | Ni | prf(SK_pi, IDi')")
	h1 := sha1.Sum(data)
	h256 := sha256.Sum256(data)
	h384 := sha512.Sum384(data)
	tests := []struct {
		id      string
		scheme  pb.SignatureScheme
		verify  func(sig []byte) bool
		wantErr string
	}{
		{"r", 0, func(sig []byte) bool {
			return rsa.VerifyPKCS1v15(rsaPub.(*rsa.PublicKey), crypto.SHA1, h1[:], sig) == nil
		}, ""},
		{"r", pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_SHA256, func(sig []byte) bool {
			return rsa.VerifyPKCS1v15(rsaPub.(*rsa.PublicKey), crypto.SHA256, h256[:], sig) == nil
		}, ""},
		{"r", pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PSS_SHA384, func(sig []byte) bool {
			return rsa.VerifyPSS(rsaPub.(*rsa.PublicKey), crypto.SHA384, h384[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}, ""},
		{"e256", 0, func(sig []byte) bool { return ecdsa.VerifyASN1(p256.(*ecdsa.PublicKey), h256[:], sig) }, ""},
		{"e384", pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_P384_SHA384, func(sig []byte) bool { return ecdsa.VerifyASN1(p384.(*ecdsa.PublicKey), h384[:], sig) }, ""},
		{"e256", pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_P384_SHA384, nil, "needs P-384"},
		{"e256", pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_SHA1, nil, "needs RSA"},
		{"r", pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_P256_SHA256, nil, "needs ECDSA"},
		{"r", pb.SignatureScheme(99), nil, "not supported"},
	}
	for _, tt := range tests {
		sig, err := s.Sign(tt.id, tt.scheme, data)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Sign(%s, %v) error %v, want %q", tt.id, tt.scheme, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Sign(%s, %v): %v", tt.id, tt.scheme, err)
		}
		if !tt.verify(sig) {
			t.Errorf("Sign(%s, %v) does not verify", tt.id, tt.scheme)
		}
	}
}

func BenchmarkSignECDSAP256(b *testing.B) {
	s := New(b.TempDir())
	s.Generate("e", "ecdsa", 256)
	data := make([]byte, 512)
	for b.Loop() {
		if _, err := s.Sign("e", 0, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignRSA2048(b *testing.B) {
	s := New(b.TempDir())
	s.Generate("r", "rsa", 2048)
	data := make([]byte, 512)
	for b.Loop() {
		if _, err := s.Sign("r", pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_SHA256, data); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParsePrivateKey(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n"))
	// A DSA key (PKCS#8 with Dss-Parms, dsa.go).
	if dk, err := generateDSA(rand.Reader, 1024); err == nil {
		if der, err := marshalDSA(dk); err == nil {
			f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParsePrivateKey(data)
		if err == nil && k == nil {
			t.Fatal("nil key without error")
		}
	})
}

// TestSignUnhashed: the IKEv1 schemes (RFC 2409 section 5.1) sign a prf
// output as it is, with no DigestInfo, as strongSwan's
// SIGN_RSA_EMSA_PKCS1_NULL and SIGN_ECDSA_WITH_NULL verify.
func TestSignUnhashed(t *testing.T) {
	s := New(t.TempDir())
	rsaPub, _ := s.Generate("r", "rsa", 2048)
	p384, _ := s.Generate("e384", "ecdsa", 384)
	hash := sha1.Sum([]byte("HASH_I"))
	sig, err := s.Sign("r", pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_NONE, hash[:])
	if err != nil || rsa.VerifyPKCS1v15(rsaPub.(*rsa.PublicKey), 0, hash[:], sig) != nil {
		t.Fatalf("RSA: %v", err)
	}
	sig, err = s.Sign("e384", pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_NONE, hash[:])
	if err != nil || !ecdsa.VerifyASN1(p384.(*ecdsa.PublicKey), hash[:], sig) {
		t.Fatalf("ECDSA: %v", err)
	}
	if _, err := s.Sign("r", pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_NONE, make([]byte, 200)); err == nil {
		t.Fatal("a 200-byte message signed unhashed")
	}
	if _, err := s.Sign("r", pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_NONE, hash[:]); err == nil {
		t.Fatal("an RSA key signed with an ECDSA scheme")
	}
}
