package ikesa

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/transform"
)

type testPKI struct {
	ca    *x509.Certificate
	caKey crypto.Signer
}

func newPKI(t *testing.T) *testPKI {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca1"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return &testPKI{ca: ca, caKey: key}
}

// auth issues a certificate for ip with a key of keyType and returns the
// SignatureAuth of its holder, validating peers against the same CA.
func (p *testPKI) auth(t *testing.T, ip string, keyType string) *SignatureAuth {
	var key crypto.Signer
	switch keyType {
	case "rsa":
		key, _ = rsa.GenerateKey(rand.Reader, 2048)
	case "ecdsa-p384":
		key, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: ip}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP(ip)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &SignatureAuth{
		Local: func() ([][]byte, string, error) { return [][]byte{der}, keyType, nil },
		SignData: func(s Scheme, raw bool, data []byte) ([]byte, error) {
			h := map[Scheme]crypto.Hash{RSAPKCS1SHA1: crypto.SHA1, RSAPKCS1SHA256: crypto.SHA256, ECDSAP256SHA256: crypto.SHA256, ECDSAP384SHA384: crypto.SHA384}[s]
			sig, err := key.Sign(rand.Reader, hashOf(h, data), h)
			if err != nil || !raw {
				return sig, err
			}
			k := key.(*ecdsa.PrivateKey)
			n := (k.Curve.Params().BitSize + 7) / 8
			r, s2, _ := ecdsa.Sign(rand.Reader, k, hashOf(h, data))
			return append(r.FillBytes(make([]byte, n)), s2.FillBytes(make([]byte, n))...), nil
		},
		Validate: func(certs [][]byte, id *message.ID) (crypto.PublicKey, error) {
			c, err := x509.ParseCertificate(certs[0])
			if err != nil {
				return nil, err
			}
			roots := x509.NewCertPool()
			roots.AddCert(p.ca)
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots}); err != nil {
				return nil, err
			}
			if id.IDType == message.IDDERASN1DN {
				if string(id.Data) != string(c.RawSubject) {
					return nil, errors.New("DN does not match the certificate")
				}
			} else if a, ok := netip.AddrFromSlice(id.Data); !ok || len(c.IPAddresses) == 0 || !c.IPAddresses[0].Equal(net.IP(a.AsSlice())) {
				return nil, errors.New("identity does not match the certificate")
			}
			return c.PublicKey, nil
		},
		CAKeyHashes: func() ([]byte, error) { return make([]byte, 20), nil },
	}
}

func TestCertificates(t *testing.T) {
	for _, kt := range []string{"rsa", "ecdsa-p256", "ecdsa-p384"} {
		t.Run(kt, func(t *testing.T) {
			p := newPKI(t)
			l := testConfig("")
			l.Auth = p.auth(t, "192.0.2.1", kt)
			r := mirror(testConfig(""))
			r.Auth = p.auth(t, "198.51.100.1", kt)
			w := newWorld(t, 100, l, r)
			sa := w.initiate(l)
			w.run()
			if sa.State != StateEstablished {
				t.Fatalf("state %v: %v", sa.State, sa.Err)
			}
			w.checkChildren(t, 1)
		})
	}
	// local-id distinguished-name: the identity is the certificate subject.
	p := newPKI(t)
	l := testConfig("")
	l.LocalID = nil
	sig := p.auth(t, "192.0.2.1", "ecdsa-p256")
	sig.SubjectID = true
	l.Auth = sig
	r := mirror(testConfig(""))
	r.Auth = p.auth(t, "198.51.100.1", "ecdsa-p256")
	w := newWorld(t, 102, l, r)
	sa := w.initiate(l)
	w.run()
	if sa.State != StateEstablished || w.r.only(t).PeerID.IDType != message.IDDERASN1DN {
		t.Fatalf("DN identity: %v", sa.Err)
	}
	// A certificate from another CA is refused.
	l = testConfig("")
	l.Auth = newPKI(t).auth(t, "192.0.2.1", "rsa")
	r = mirror(testConfig(""))
	r.Auth = newPKI(t).auth(t, "198.51.100.1", "rsa")
	w = newWorld(t, 101, l, r)
	sa = w.initiate(l)
	w.run()
	if sa.State != StateDead {
		t.Fatal("foreign certificate accepted")
	}
}

// TestClassicSignatures: without SIGNATURE_HASH_ALGORITHMS from the peer,
// RSA uses auth method 1 and ECDSA methods 9 and 10.
func TestClassicSignatures(t *testing.T) {
	prf, _ := transform.NewPRF(message.PRFHMACSHA2256)
	p := newPKI(t)
	for _, kt := range []struct {
		keyType string
		method  message.AuthMethod
	}{{"rsa", message.AuthRSASignature}, {"ecdsa-p256", message.AuthECDSA256}, {"ecdsa-p384", message.AuthECDSA384}} {
		a := p.auth(t, "192.0.2.1", kt.keyType)
		ps, err := a.Sign(AuthContext{PRF: prf, Octets: []byte("octets")})
		if err != nil {
			t.Fatal(err)
		}
		auth := ps[len(ps)-1].(*message.Auth)
		cert := ps[0].(*message.Cert)
		if auth.Method != kt.method {
			t.Fatalf("%s: method %d", kt.keyType, auth.Method)
		}
		c := AuthContext{PRF: prf, Octets: []byte("octets"), PeerID: IPID(netip.MustParseAddr("192.0.2.1")), PeerCerts: [][]byte{cert.Data}}
		if err := a.Verify(c, auth); err != nil {
			t.Fatalf("%s: %v", kt.keyType, err)
		}
		c.Octets = []byte("other")
		if err := a.Verify(c, auth); err == nil {
			t.Fatalf("%s: signature over other octets verified", kt.keyType)
		}
	}
}
