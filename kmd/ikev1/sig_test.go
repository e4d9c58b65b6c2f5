package ikev1

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/kmd/isakmp"
	"github.com/sitesec/sitesec/kmd/message"
)

// testSigner stands in for pkid: a self-signed certificate whose key
// signs here, and a "trust store" of the peer's certificate.
type testSigner struct {
	key     crypto.Signer
	keyType string
	der     []byte
	trusted []byte // the only certificate Validate accepts
	signs   int
}

func newTestSigner(t *testing.T, keyType, cn string) *testSigner {
	var key crypto.Signer
	var err error
	switch keyType {
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ecdsa-p256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ecdsa-p384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"sitesec"}},
		NotBefore: time.Unix(1600000000, 0), NotAfter: time.Unix(1900000000, 0), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return &testSigner{key: key, keyType: keyType, der: der}
}

func (s *testSigner) Local() ([][]byte, string, error) { return [][]byte{s.der}, s.keyType, nil }

func (s *testSigner) SignHash(keyType string, hash []byte) ([]byte, error) {
	s.signs++
	switch k := s.key.(type) {
	case *rsa.PrivateKey:
		return rsa.SignPKCS1v15(rand.Reader, k, 0, hash)
	case *ecdsa.PrivateKey:
		r, ss, err := ecdsa.Sign(rand.Reader, k, hash)
		if err != nil {
			return nil, err
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*n)
		r.FillBytes(out[:n])
		ss.FillBytes(out[n:])
		return out, nil
	}
	return nil, errors.New("key")
}

func (s *testSigner) Validate(certs [][]byte, id isakmp.ID) (crypto.PublicKey, error) {
	if string(certs[0]) != string(s.trusted) {
		return nil, errors.New("untrusted certificate")
	}
	c, err := x509.ParseCertificate(certs[0])
	if err != nil {
		return nil, err
	}
	if id.Type != isakmp.IDDERASN1DN || string(id.Data) != string(c.RawSubject) {
		return nil, errors.New("identity is not the certificate's subject")
	}
	return c.PublicKey, nil
}

func (s *testSigner) LocalID() (*isakmp.ID, error) {
	c, err := x509.ParseCertificate(s.der)
	if err != nil {
		return nil, err
	}
	return &isakmp.ID{Type: isakmp.IDDERASN1DN, Data: c.RawSubject}, nil
}

// TestSignatures runs main and aggressive mode with RSA and ECDSA
// signatures (RFC 2409 section 5.1, RFC 4754): the identities are the
// certificates' subjects, and each side signs once per phase 1.
func TestSignatures(t *testing.T) {
	cases := []struct {
		name       string
		aggressive bool
		auth       uint16
		keyType    string
		msgs       int
	}{
		{"main rsa", false, isakmp.AuthRSA, "rsa", 9},
		{"aggressive rsa", true, isakmp.AuthRSA, "rsa", 6},
		{"main ecdsa-256", false, isakmp.AuthECDSA256, "ecdsa-p256", 9},
		{"aggressive ecdsa-384", true, isakmp.AuthECDSA384, "ecdsa-p384", 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p1 := Phase1{Encr: isakmp.EncrAES, KeyBits: 128, Hash: isakmp.HashSHA1, Auth: tc.auth, Group: 14}
			ta, tb, ha, hb, _ := pair(t, tc.aggressive, p1, Phase2{ESP: isakmp.ESPAES, KeyBits: 128, AuthAlg: isakmp.AuthHMACSHA})
			sa, sb := newTestSigner(t, tc.keyType, "a.sitesec.test"), newTestSigner(t, tc.keyType, "b.sitesec.test")
			sa.trusted, sb.trusted = sb.der, sa.der
			ta.Config.Sig, tb.Config.Sig = sa, sb
			ta.Config.PSK, tb.Config.PSK = nil, nil
			if err := ta.Initiate(); err != nil {
				t.Fatal(err)
			}
			if n := run(t, ta, tb, ha, hb); n != tc.msgs {
				t.Fatalf("%d messages, want %d", n, tc.msgs)
			}
			if ta.Established() == nil || tb.Established() == nil {
				t.Fatal("phase 1 not established")
			}
			checkKeys(t, ha, hb)
			if sa.signs != 1 || sb.signs != 1 {
				t.Fatalf("signatures made: %d and %d, want 1 each", sa.signs, sb.signs)
			}
			want, _ := sb.LocalID()
			if got := ta.Established().PeerID; got.Type != isakmp.IDDERASN1DN || string(got.Data) != string(want.Data) {
				t.Fatalf("initiator's peer ID %v", got)
			}
		})
	}
}

// TestSignatureRefused: an untrusted certificate, or a signature that
// does not verify, leaves no ISAKMP SA on the verifying side.
func TestSignatureRefused(t *testing.T) {
	for _, mode := range []string{"untrusted", "bad signature", "wrong key type"} {
		for _, aggressive := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s aggressive=%v", mode, aggressive), func(t *testing.T) {
				p1 := Phase1{Encr: isakmp.EncrAES, KeyBits: 128, Hash: isakmp.HashSHA1, Auth: isakmp.AuthRSA, Group: 14}
				ta, tb, ha, hb, _ := pair(t, aggressive, p1, Phase2{ESP: isakmp.ESPAES, KeyBits: 128, AuthAlg: isakmp.AuthHMACSHA})
				sa, sb := newTestSigner(t, "rsa", "a"), newTestSigner(t, "rsa", "b")
				sa.trusted, sb.trusted = sb.der, sa.der
				switch mode {
				case "untrusted":
					sb.trusted = newTestSigner(t, "rsa", "a").der
				case "bad signature":
					// a's certificate, but another key signs
					other := newTestSigner(t, "rsa", "a")
					sa.key = other.key
				case "wrong key type":
					sa.keyType = "ecdsa-p256"
				}
				ta.Config.Sig, tb.Config.Sig = sa, sb
				ta.Initiate()
				var errs []string
				for len(ha.out)+len(hb.out) > 0 {
					for len(ha.out) > 0 {
						p := ha.out[0]
						ha.out = ha.out[1:]
						if err := tb.Handle(tb.Local, tb.Remote, p); err != nil {
							errs = append(errs, err.Error())
						}
					}
					for len(hb.out) > 0 {
						p := hb.out[0]
						hb.out = hb.out[1:]
						if err := ta.Handle(ta.Local, ta.Remote, p); err != nil {
							errs = append(errs, err.Error())
						}
					}
				}
				if len(ha.in)+len(hb.in) != 0 {
					t.Fatalf("ESP SAs installed: %d %d", len(ha.in), len(hb.in))
				}
				if mode != "wrong key type" && tb.Established() != nil && !aggressive {
					t.Fatal("responder established with a bad initiator")
				}
				if len(errs) == 0 || !strings.Contains(strings.Join(errs, ";"), "ikev1:") {
					t.Fatalf("no error reported: %v", errs)
				}

			})
		}
	}
}

// TestAllowedProxyPairs: a dynamic-endpoint responder accepts proxy
// identities inside any allowed pair, and only those.
func TestAllowedProxyPairs(t *testing.T) {
	c := &Config{Allowed: [][2]message.Selector{{sel("10.2.0.0/24"), sel("10.1.0.0/16")}, {sel("10.3.0.0/24"), sel("10.8.0.0/24")}}}
	for _, tc := range []struct {
		l, r string
		ok   bool
	}{{"10.2.0.0/24", "10.1.5.0/24", true}, {"10.3.0.0/25", "10.8.0.0/24", true}, {"10.2.0.0/24", "10.8.0.0/24", false}, {"10.2.0.0/24", "10.9.0.0/24", false}} {
		if got := c.allowed(sel(tc.l), sel(tc.r)); got != tc.ok {
			t.Errorf("%s-%s: %v, want %v", tc.l, tc.r, got, tc.ok)
		}
	}
}

// sigPair is an aggressive-mode pair authenticating with RSA
// certificates; it returns the initiator after its first message and the
// responder's answer (SA, KE, Nonce, ID, CERT, SIG, CERTREQ in clear).
func sigPair(t *testing.T, sa, sb *testSigner) (*Tunnel, []byte) {
	auth := isakmp.AuthRSA
	if sa.keyType == "ecdsa-p256" {
		auth = isakmp.AuthECDSA256
	}
	p1 := Phase1{Encr: isakmp.EncrAES, KeyBits: 128, Hash: isakmp.HashSHA1, Auth: uint16(auth), Group: 2}
	ta, tb, ha, hb, _ := pair(t, true, p1, Phase2{ESP: isakmp.ESPAES, KeyBits: 128, AuthAlg: isakmp.AuthHMACSHA})
	ta.Config.Sig, tb.Config.Sig = sa, sb
	ta.Initiate()
	tb.Handle(tb.Local, tb.Remote, ha.out[0])
	return ta, hb.out[0]
}

// FuzzSignedAnswer feeds an aggressive-mode initiator waiting for the
// signed answer arbitrary bytes (CERT and SIG payloads from the
// network): nothing may panic, and nothing but the real answer
// establishes it.
func FuzzSignedAnswer(f *testing.F) {
	t0 := &testing.T{}
	// ECDSA and group 2 keep an iteration cheap.
	sa, sb := newTestSigner(t0, "ecdsa-p256", "a"), newTestSigner(t0, "ecdsa-p256", "b")
	sa.trusted, sb.trusted = sb.der, sa.der
	_, answer := sigPair(t0, sa, sb)
	f.Add(answer)
	f.Fuzz(func(t *testing.T, b []byte) {
		ta, _ := sigPair(t, sa, sb)
		ta.Handle(ta.Local, ta.Remote, b)
	})
}

// TestSignedAnswerCorrupted: the responder's signed answer with any
// byte of what the signature covers or carries (KE, nonce, ID,
// certificate, SIG) changed never establishes the initiator.
func TestSignedAnswerCorrupted(t *testing.T) {
	sa, sb := newTestSigner(t, "rsa", "a"), newTestSigner(t, "rsa", "b")
	sa.trusted, sb.trusted = sb.der, sa.der
	ta, answer := sigPair(t, sa, sb)
	h, body, err := isakmp.ParseHeader(answer)
	if err != nil {
		t.Fatal(err)
	}
	ps, _, err := isakmp.ParsePayloads(h.Next, body)
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int
	for _, p := range ps {
		switch p.Type {
		case isakmp.PayloadKE, isakmp.PayloadNonce, isakmp.PayloadID, isakmp.PayloadCert, isakmp.PayloadSig:
			start := cap(answer) - cap(p.Body)
			for i := start; i < start+len(p.Body); i += 5 {
				offsets = append(offsets, i)
			}
		}
	}
	t.Logf("%d offsets from %d of %d bytes", len(offsets), offsets[0], len(answer))
	if len(offsets) < 100 {
		t.Fatalf("only %d offsets", len(offsets))
	}
	for _, i := range offsets {
		bad := append([]byte(nil), answer...)
		bad[i] ^= 0x5a
		ta.Handle(ta.Local, ta.Remote, bad)
		if ta.Established() != nil {
			t.Fatalf("byte %d changed and the initiator established", i)
		}
	}
	if err := ta.Handle(ta.Local, ta.Remote, answer); err != nil || ta.Established() == nil {
		t.Fatalf("the real answer after the corrupted ones: %v", err)
	}
}
