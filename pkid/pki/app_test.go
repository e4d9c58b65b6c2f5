package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/pkid/internal/testpki"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/opfile"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	app    *App
	clk    *clock
	ca     *testpki.SCEPCA
	dir    string
	events []*pb.CertificateEvent
	crls   map[string][]byte
	mu     sync.Mutex
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clk: &clock{t: testpki.Now}, ca: testpki.NewSCEPCA(t, "s3cret"), dir: t.TempDir(), crls: map[string][]byte{}}
	f.app = New()
	f.app.Now = f.clk.now
	f.app.FetchCRL = func(_ context.Context, url, _ string) ([]byte, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if d, ok := f.crls[url]; ok {
			return d, nil
		}
		return nil, errors.New("HTTP 404")
	}
	f.app.Publish = func(ev *pb.CertificateEvent) {
		f.mu.Lock()
		f.events = append(f.events, ev)
		f.mu.Unlock()
	}
	if err := f.app.Open(filepath.Join(f.dir, "certs")); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) apply(t *testing.T, c *pb.PKI) {
	t.Helper()
	if err := f.app.Apply(context.Background(), nil, &pb.Config{Pki: c}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) op(t *testing.T, cmd string, confirmed bool, secret string) *pb.OpReply {
	t.Helper()
	req := &pb.OpRequest{Words: strings.Fields(cmd), Confirmed: confirmed, SecretArgument: secret}
	// As the cli does: the files a load names travel in the request
	// (relative names are in f.dir), a file in the reply is written out.
	for i, w := range req.Words {
		if (w == "filename" || w == "key") && i+1 < len(req.Words) && slices.Contains(req.Words, "load") {
			name := req.Words[i+1]
			if b, err := os.ReadFile(f.path(name)); err == nil {
				req.Files = append(req.Files, &pb.OpFile{Name: name, Data: b})
			}
		}
	}
	rep := f.app.Op(context.Background(), req)
	if rep.FileName != "" && rep.Error == "" {
		if err := opfile.WriteNew(f.path(rep.FileName), rep.FileData, 0o644); err != nil {
			rep.Error = err.Error()
		}
	}
	return rep
}

func (f *fixture) path(name string) string { return opfile.Resolve(f.dir, name) }

func (f *fixture) ok(t *testing.T, cmd string) *pb.OpReply {
	t.Helper()
	rep := f.op(t, cmd, false, "")
	if rep.Error != "" {
		t.Fatalf("%s: %s", cmd, rep.Error)
	}
	return rep
}

func (f *fixture) kinds() []pb.CertificateEventKind {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []pb.CertificateEventKind
	for _, e := range f.events {
		out = append(out, e.Kind)
	}
	return out
}

func (f *fixture) config(extra func(*pb.PKI)) *pb.PKI {
	c := &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "ca1", CaIdentity: "ca1", EnrollmentUrl: f.ca.URL(), EnrollmentRetry: proto.Uint32(0)}}}
	if extra != nil {
		extra(c)
	}
	return c
}

func TestEnrollmentFlow(t *testing.T) {
	f := newFixture(t)
	f.apply(t, f.config(nil))

	f.ok(t, "request security pki generate-key-pair certificate-id vpn1 type rsa size 2048")
	rep := f.ok(t, "request security pki generate-certificate-request certificate-id vpn1 subject CN=vpn1,O=Example domain-name vpn1.example.net ip-address 192.0.2.1 filename vpn1.csr")
	if rep.Lines[0] != "-----BEGIN CERTIFICATE REQUEST-----" {
		t.Errorf("CSR lines start %q", rep.Lines[0])
	}
	if _, err := os.Stat(filepath.Join(f.dir, "vpn1.csr")); err != nil {
		t.Errorf("CSR file: %v", err)
	}
	reqs := f.ok(t, "show security pki certificate-request").GetPkiCertificateRequests().GetRequests()
	if len(reqs) != 1 || reqs[0].Subject != "CN=vpn1, O=Example" || reqs[0].PublicKeyAlgorithm != "rsaEncryption(2048 bits)" ||
		strings.Join(reqs[0].AlternateSubject, ",") != "fqdn:vpn1.example.net,ipv4:192.0.2.1" {
		t.Errorf("show certificate-request: %v", reqs)
	}

	// Local enrollment needs the CA certificate first.
	rep = f.op(t, "request security pki local-certificate enroll scep ca-profile ca1 certificate-id vpn1 challenge-password subject CN=vpn1", false, "s3cret")
	if !strings.Contains(rep.Error, "has no CA certificate") {
		t.Errorf("enroll before CA: %q", rep.Error)
	}

	rep = f.op(t, "request security pki ca-certificate enroll ca-profile ca1", false, "")
	s1 := sha1.Sum(f.ca.Cert.Raw)
	if rep.ConfirmQuestion != ConfirmCAQuestion || !strings.Contains(strings.Join(rep.Lines, "\n"), "Fingerprint:\n"+colon(s1[:])+" (sha1)") {
		t.Fatalf("enroll CA: %+v", rep)
	}
	if len(f.app.certs.CA("ca1")) != 0 {
		t.Fatal("CA loaded before confirmation")
	}
	rep = f.op(t, "request security pki ca-certificate enroll ca-profile ca1", true, "")
	if rep.Error != "" || !strings.Contains(strings.Join(rep.Lines, "\n"), "CA certificate for profile ca1 loaded successfully") {
		t.Fatalf("confirmed: %+v", rep)
	}
	f.ok(t, "request security pki ca-certificate verify ca-profile ca1")
	cas := f.ok(t, "show security pki ca-certificate detail").GetPkiCertificates()
	if len(cas.Certificates) != 1 || !cas.Detail || cas.Kind != "ca-certificate" || cas.Certificates[0].Subject != "O=Test, CN=SCEP Root" ||
		cas.Certificates[0].PublicKeyAlgorithm != "rsaEncryption(2048 bits)" || cas.Certificates[0].Status != "valid" {
		t.Errorf("show ca-certificate: %v", cas)
	}

	rep = f.op(t, "request security pki local-certificate enroll ca-profile ca1 certificate-id vpn1 challenge-password wrong subject CN=vpn1,O=Example", false, "")
	if !strings.Contains(rep.Error, "CA rejected the request") {
		t.Errorf("bad password: %q", rep.Error)
	}
	rep = f.op(t, "request security pki local-certificate enroll scep ca-profile ca1 certificate-id vpn1 challenge-password subject CN=vpn1,O=Example domain-name vpn1.example.net", false, "s3cret")
	if rep.Error != "" {
		t.Fatalf("enroll: %s", rep.Error)
	}
	locals := f.ok(t, "show security pki local-certificate certificate-id vpn1").GetPkiCertificates()
	if len(locals.Certificates) != 1 || locals.Certificates[0].Issuer != "O=Test, CN=SCEP Root" || locals.Certificates[0].AutoReEnrollment != "Disabled" {
		t.Fatalf("show local-certificate: %v", locals)
	}
	// CRL checking is on by default and this CA publishes none.
	if rep := f.op(t, "request security pki local-certificate verify certificate-id vpn1", false, ""); !strings.Contains(rep.Error, "verification failed") || !strings.Contains(rep.Error, "unavailable") {
		t.Errorf("verify: %q", rep.Error)
	}

	// kmd's view: chain, signing, CERTREQ hashes.
	lc := f.app.LocalCertificate(context.Background(), &pb.LocalCertificateRequest{CertificateId: "vpn1"})
	if lc.Error != "" || len(lc.Certificates) != 1 || lc.KeyType != "rsa" || lc.Subject != "CN=vpn1, O=Example" {
		t.Fatalf("LocalCertificate: %+v", lc)
	}
	rootHash := sha1.Sum(f.ca.Cert.RawSubjectPublicKeyInfo)
	if string(lc.IssuerKeyHash) != string(rootHash[:]) {
		t.Error("issuer key hash")
	}
	cas2 := f.app.CAs(context.Background(), &pb.CARequest{TrustedCa: []string{"ca1"}})
	if len(cas2.KeyHashes) != 1 || string(cas2.KeyHashes[0]) != string(rootHash[:]) {
		t.Errorf("CAs: %+v", cas2)
	}
	if e := f.app.CAs(context.Background(), &pb.CARequest{TrustedCa: []string{"nope"}}).Error; e == "" {
		t.Error("CAs with unknown trusted-ca")
	}
	leaf, _ := x509.ParseCertificate(lc.Certificates[0])
	data := []byte("signed octets")
	sr := f.app.Sign(context.Background(), &pb.SignRequest{CertificateId: "vpn1", Scheme: pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_SHA256, Data: data})
	h := sha256.Sum256(data)
	if sr.Error != "" || rsa.VerifyPKCS1v15(leaf.PublicKey.(*rsa.PublicKey), crypto.SHA256, h[:], sr.Signature) != nil {
		t.Errorf("Sign: %q", sr.Error)
	}
	if sr := f.app.Sign(context.Background(), &pb.SignRequest{CertificateId: "missing"}); sr.Error == "" {
		t.Error("Sign with a missing key")
	}
	// The peer validates against ca1 (same CA issued it).
	v := f.app.Validate(context.Background(), &pb.ValidateChainRequest{ServiceSet: "ss1", TrustedCa: []string{"ca1"}, Certificates: lc.Certificates, PeerIdentity: "fqdn:vpn1.example.net"})
	// No CRL URL and no distribution point: fails closed.
	if v.Valid || !strings.Contains(v.Reason, "no CRL url configured") {
		t.Errorf("validate without CRL: %+v", v)
	}
	want := []pb.CertificateEventKind{
		pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_ENROLLMENT_FAILED,
		pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_CA_LOADED,
		pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_ENROLLMENT_FAILED,
		pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_LOCAL_LOADED,
	}
	if got := f.kinds(); !equalKinds(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}

	// Everything survives a restart.
	g := New()
	g.Now = f.clk.now
	if err := g.Open(filepath.Join(f.dir, "certs")); err != nil {
		t.Fatal(err)
	}
	if lc2 := g.LocalCertificate(context.Background(), &pb.LocalCertificateRequest{CertificateId: "vpn1"}); lc2.Error != "" || string(lc2.Certificates[0]) != string(lc.Certificates[0]) {
		t.Errorf("after restart: %+v", lc2)
	}
	fi, _ := os.Stat(filepath.Join(f.dir, "certs", "keys", "vpn1.key"))
	if fi == nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file %v", fi)
	}
}

func equalKinds(a, b []pb.CertificateEventKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func colon(b []byte) string {
	var sb strings.Builder
	for i, x := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(strings.ToLower(string("0123456789abcdef"[x>>4]) + string("0123456789abcdef"[x&15])))
	}
	return sb.String()
}

func TestValidateWithCRL(t *testing.T) {
	f := newFixture(t)
	root := testpki.Root(t, "Peer Root", testpki.Options{})
	good, _ := root.Leaf(t, "peer1", testpki.Options{DNSNames: []string{"peer1.example.net"}, CRLURLs: []string{"http://crl.example/root.crl"}})
	bad, _ := root.Leaf(t, "peer2", testpki.Options{CRLURLs: []string{"http://crl.example/root.crl"}})
	f.crls["http://crl.example/root.crl"] = root.CRL(t, testpki.Now.Add(-time.Hour), testpki.Now.Add(24*time.Hour), bad)
	f.apply(t, &pb.PKI{
		CaProfiles:      []*pb.CAProfile{{Name: "peers"}, {Name: "open", CrlDisableOnDownloadFailure: true}},
		TrustedCaGroups: []*pb.TrustedCAGroup{{Name: "grp", CaProfiles: []string{"peers"}}},
	})
	os.WriteFile(filepath.Join(f.dir, "root.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert.Raw}), 0o644)
	f.ok(t, "request security pki ca-certificate load ca-profile peers filename root.pem")
	f.ok(t, "request security pki ca-certificate load ca-profile open filename "+filepath.Join(f.dir, "root.pem"))

	tests := []struct {
		name    string
		trusted []string
		cert    *x509.Certificate
		id      string
		want    string
	}{
		{"good via group", []string{"grp"}, good, "fqdn:peer1.example.net", ""},
		{"revoked", []string{"peers"}, bad, "", "revoked (CRL of ca-profile peers, serial " + bad.SerialNumber.Text(16)},
		{"identity", []string{"peers"}, good, "fqdn:other", "does not match peer identity"},
		{"unknown trusted-ca", []string{"zz"}, good, "", `trusted-ca "zz" is neither`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := f.app.Validate(context.Background(), &pb.ValidateChainRequest{TrustedCa: tt.trusted, Certificates: [][]byte{tt.cert.Raw}, PeerIdentity: tt.id})
			if tt.want == "" {
				if !v.Valid || v.CaProfile != "peers" || string(v.PublicKey) != string(tt.cert.RawSubjectPublicKeyInfo) || v.SubjectAltNames[0] != "fqdn:peer1.example.net" {
					t.Fatalf("%+v", v)
				}
				return
			}
			if v.Valid || !strings.Contains(v.Reason, tt.want) {
				t.Fatalf("reason %q, want %q", v.Reason, tt.want)
			}
		})
	}
	crls := f.ok(t, "show security pki crl ca-profile peers").GetPkiCrls().GetCrls()
	if len(crls) != 1 || crls[0].Url != "http://crl.example/root.crl" || crls[0].Status != "valid" || crls[0].RevokedSerials[0] != bad.SerialNumber.Text(16) {
		t.Errorf("show crl: %v", crls)
	}

	// The CRL server goes away and the cached CRL expires: fail closed
	// for "peers", open for "open" (disable on-download-failure).
	delete(f.crls, "http://crl.example/root.crl")
	f.clk.add(25 * time.Hour)
	v := f.app.Validate(context.Background(), &pb.ValidateChainRequest{TrustedCa: []string{"peers"}, Certificates: [][]byte{good.Raw}})
	if v.Valid || !strings.Contains(v.Reason, "unavailable") {
		t.Errorf("expired CRL, fail closed: %+v", v)
	}
	v = f.app.Validate(context.Background(), &pb.ValidateChainRequest{TrustedCa: []string{"open"}, Certificates: [][]byte{good.Raw}})
	if !v.Valid {
		t.Errorf("expired CRL, fail open: %+v", v)
	}
	// A valid peer certificate is listed under its service set by show
	// services ipsec-vpn certificates, once however often it is seen, and
	// clear forgets it.
	for range 2 {
		f.app.Validate(context.Background(), &pb.ValidateChainRequest{ServiceSet: "ss1", TrustedCa: []string{"open"}, Certificates: [][]byte{good.Raw}})
	}
	sc := f.ok(t, "show services ipsec-vpn certificates").GetPkiCertificates()
	if c := sc.GetCertificates(); sc.GetKind() != "services-certificates" || len(c) != 1 || c[0].ServiceSet != "ss1" || c[0].CertificateId != "1" || c[0].FingerprintMd5 == "" || len(c[0].Der) != 0 {
		t.Errorf("show services ipsec-vpn certificates: %v", sc)
	}
	if n := len(f.ok(t, "show services ipsec-vpn certificates service-set other").GetPkiCertificates().GetCertificates()); n != 0 {
		t.Errorf("other set lists %d", n)
	}
	for cmd, want := range map[string]string{
		"clear services ipsec-vpn certificates":                                           "expecting service-set",
		"clear services ipsec-vpn certificates service-set other":                         "no cached certificates",
		"clear services ipsec-vpn certificates service-set ss1 certificate-cache-entry 9": "not found",
		"clear services ipsec-vpn certificates all service-set ss1":                       "unexpected \"all\"",
		"show services ipsec-vpn certificates all":                                        "unexpected \"all\"",
	} {
		if rep := f.op(t, cmd, false, ""); !strings.Contains(rep.Error, want) {
			t.Errorf("%s: %q, want %q", cmd, rep.Error, want)
		}
	}
	f.ok(t, "clear services ipsec-vpn certificates service-set ss1 certificate-cache-entry 1")
	if c := f.ok(t, "show services ipsec-vpn certificates").GetPkiCertificates().GetCertificates(); len(c) != 0 {
		t.Errorf("cached after clear: %v", c)
	}
	// Junos's other form: the flag all (clear-ipsec-certificates-service-set).
	f.app.Validate(context.Background(), &pb.ValidateChainRequest{ServiceSet: "ss1", TrustedCa: []string{"open"}, Certificates: [][]byte{good.Raw}})
	if c := f.ok(t, "show services ipsec-vpn certificates").GetPkiCertificates().GetCertificates(); len(c) != 1 {
		t.Fatalf("cached before clear all: %v", c)
	}
	f.ok(t, "clear services ipsec-vpn certificates all")
	if c := f.ok(t, "show services ipsec-vpn certificates").GetPkiCertificates().GetCertificates(); len(c) != 0 {
		t.Errorf("cached after clear all: %v", c)
	}
	// The operator loads a CRL by hand.
	os.WriteFile(filepath.Join(f.dir, "new.crl"), root.CRL(t, f.clk.now(), f.clk.now().Add(time.Hour), bad, good), 0o644)
	f.ok(t, "request security pki crl load ca-profile peers filename new.crl")
	v = f.app.Validate(context.Background(), &pb.ValidateChainRequest{TrustedCa: []string{"peers"}, Certificates: [][]byte{good.Raw}})
	if v.Valid || !strings.Contains(v.Reason, "revoked") {
		t.Errorf("after crl load: %+v", v)
	}
	f.ok(t, "clear security pki crl ca-profile peers")
	if n := len(f.ok(t, "show security pki crl ca-profile peers").GetPkiCrls().GetCrls()); n != 0 {
		t.Errorf("%d CRLs after clear", n)
	}
}

func TestCRLRefreshTick(t *testing.T) {
	f := newFixture(t)
	root := testpki.Root(t, "Root", testpki.Options{})
	leaf, _ := root.Leaf(t, "x", testpki.Options{})
	url := "http://crl.example/r.crl"
	f.crls[url] = root.CRL(t, testpki.Now, testpki.Now.Add(72*time.Hour))
	f.apply(t, &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "p", CrlUrl: url, CrlRefreshIntervalHours: proto.Uint32(1)}}})
	os.WriteFile(filepath.Join(f.dir, "root.der"), root.Cert.Raw, 0o644)
	f.ok(t, "request security pki ca-certificate load ca-profile p filename root.der")
	f.app.Tick(context.Background())
	f.clk.add(time.Hour)
	f.crls[url] = root.CRL(t, f.clk.now(), f.clk.now().Add(72*time.Hour), leaf)
	f.app.Tick(context.Background())
	f.mu.Lock()
	var updates []*pb.CertificateEvent
	for _, e := range f.events {
		if e.Kind == pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_CRL_UPDATED {
			updates = append(updates, e)
		}
	}
	f.mu.Unlock()
	if len(updates) != 2 || len(updates[1].RevokedSerials) != 1 || updates[1].RevokedSerials[0] != leaf.SerialNumber.Text(16) {
		t.Fatalf("CRL updates %v", updates)
	}
	// Failure is published.
	delete(f.crls, url)
	f.clk.add(time.Hour)
	f.app.Tick(context.Background())
	if k := f.kinds(); k[len(k)-1] != pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_CRL_FAILED {
		t.Errorf("last event %v", k[len(k)-1])
	}
	// A restarted pkid has the cached CRL without fetching.
	g := New()
	g.Now = f.clk.now
	g.FetchCRL = func(context.Context, string, string) ([]byte, error) { return nil, errors.New("offline") }
	g.Open(filepath.Join(f.dir, "certs"))
	if err := g.Apply(context.Background(), nil, &pb.Config{Pki: &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "p", CrlUrl: url}}}}); err != nil {
		t.Fatal(err)
	}
	v := g.Validate(context.Background(), &pb.ValidateChainRequest{Certificates: [][]byte{leaf.Raw}})
	if v.Valid || !strings.Contains(v.Reason, "revoked") {
		t.Errorf("after restart: %+v", v)
	}
}

func TestAutoReEnrollment(t *testing.T) {
	for _, regen := range []bool{false, true} {
		t.Run(map[bool]string{false: "same key", true: "re-generate-keypair"}[regen], func(t *testing.T) {
			f := newFixture(t)
			f.apply(t, f.config(func(c *pb.PKI) {
				c.CaProfiles[0].EnrollmentRetryInterval = proto.Uint32(60)
				c.AutoReEnrollment = []*pb.AutoReEnrollment{{Protocol: "scep", CertificateId: "vpn1", CaProfileName: "ca1",
					ReEnrollTriggerTimePercentage: proto.Uint32(50), ReGenerateKeypair: regen, ChallengePassword: "s3cret"}}
			}))
			f.ok(t, "request security pki generate-key-pair certificate-id vpn1")
			f.op(t, "request security pki ca-certificate enroll ca-profile ca1 yes", false, "")
			rep := f.op(t, "request security pki local-certificate enroll ca-profile ca1 certificate-id vpn1 challenge-password s3cret subject CN=vpn1,O=Example ip-address 192.0.2.1", false, "")
			if rep.Error != "" {
				t.Fatal(rep.Error)
			}
			first := f.app.certs.Local("vpn1")[0]
			pub1, _ := f.app.keys.Public("vpn1")
			if s := f.ok(t, "show security pki local-certificate").GetPkiCertificates().Certificates[0].AutoReEnrollment; !strings.HasPrefix(s, "Enabled (scep, ca-profile ca1, at 50%") {
				t.Errorf("auto-re-enrollment %q", s)
			}
			f.app.Tick(context.Background())
			if !f.app.certs.Local("vpn1")[0].Equal(first) {
				t.Fatal("re-enrolled before the trigger time")
			}
			// The CA issues for 30 days: 50% is 15 days after NotBefore.
			f.clk.add(15 * 24 * time.Hour)
			f.ca.Challenge = "rotated"
			f.app.Tick(context.Background())
			if !f.app.certs.Local("vpn1")[0].Equal(first) {
				t.Fatal("re-enrolled with a wrong challenge")
			}
			if s := f.ok(t, "show security pki local-certificate").GetPkiCertificates().Certificates[0].AutoReEnrollment; !strings.Contains(s, "last attempt failed") {
				t.Errorf("after failure: %q", s)
			}
			f.ca.Challenge = "s3cret"
			f.app.Tick(context.Background()) // within retry-interval: no attempt
			if !f.app.certs.Local("vpn1")[0].Equal(first) {
				t.Fatal("retried before retry-interval")
			}
			f.clk.add(time.Minute)
			f.app.Tick(context.Background())
			second := f.app.certs.Local("vpn1")[0]
			if second.Equal(first) {
				t.Fatal("not re-enrolled")
			}
			if second.Subject.CommonName != "vpn1" || len(second.IPAddresses) != 1 {
				t.Errorf("renewed subject %v %v", second.Subject, second.IPAddresses)
			}
			pub2, _ := f.app.keys.Public("vpn1")
			samekey := pub1.(*rsa.PublicKey).Equal(pub2)
			if samekey == regen {
				t.Errorf("key changed = %v, want %v", !samekey, regen)
			}
			if !samePublic(pub2, second.PublicKey) {
				t.Error("stored key does not match the renewed certificate")
			}
			k := f.kinds()
			if k[len(k)-1] != pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_LOCAL_RENEWED {
				t.Errorf("events %v", k)
			}
		})
	}
}

func TestOpErrors(t *testing.T) {
	f := newFixture(t)
	f.apply(t, f.config(nil))
	f.ok(t, "request security pki generate-key-pair certificate-id e1 type ecdsa size 384")
	leafOther, _ := testpki.Root(t, "X", testpki.Options{}).Leaf(t, "y", testpki.Options{})
	os.WriteFile(filepath.Join(f.dir, "other.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafOther.Raw}), 0o644)
	os.WriteFile(filepath.Join(f.dir, "junk"), []byte("junk"), 0o644)
	tests := []struct{ cmd, want string }{
		{"show security pki", "syntax error"},
		{"show security pki bogus", "syntax error"},
		{"request security pki generate-key-pair certificate-id e1", "already exists"},
		{"request security pki generate-key-pair certificate-id", "expecting value for certificate-id"},
		{"request security pki generate-key-pair type rsa", "certificate-id is required"},
		{"request security pki generate-key-pair certificate-id x size big", "not a number"},
		{"request security pki generate-key-pair certificate-id x size 512", "rsa size 512 not supported (1024, 2048, 3072, 4096)"},
		{"request security pki generate-key-pair certificate-id x type dsa size 4096", "dsa size 4096 not supported (1024, 2048)"},
		{"request security pki generate-key-pair certificate-id x type ecdsa size 1024", "ecdsa size 1024 not supported (256, 384, 521)"},
		{"request security pki generate-key-pair certificate-id x color red", `unexpected "color"`},
		{"request security pki generate-certificate-request certificate-id none subject CN=a", "no such key pair"},
		{"request security pki generate-certificate-request certificate-id e1", "subject is required"},
		{"request security pki generate-certificate-request certificate-id e1 subject CN=a ip-address 999", "not an address"},
		{"request security pki generate-certificate-request certificate-id e1 subject CN=a digest md5", "digest"},
		{"request security pki ca-certificate load ca-profile nope filename x", "not configured"},
		{"request security pki ca-certificate load ca-profile ca1 filename missing", "cannot read missing"},
		{"request security pki ca-certificate load ca-profile ca1 filename junk", "neither PEM"},
		{"request security pki ca-certificate verify ca-profile ca1", "not found"},
		{"request security pki ca-certificate enroll ca-profile nope", "not configured"},
		{"request security pki local-certificate load certificate-id e1 filename other.pem", "does not match key pair e1"},
		{"request security pki local-certificate load certificate-id zz filename other.pem", "generate it first"},
		{"request security pki local-certificate load certificate-id e1 filename other.pem passphrase x", "not supported"},
		{"request security pki local-certificate enroll ca-profile ca1 certificate-id e1 challenge-password x subject CN=a", "no CA certificate"},
		{"request security pki local-certificate verify certificate-id e1", "no local certificate"},
		{"request security pki crl load ca-profile ca1 filename junk", "neither DER nor PEM"},
		{"request security pki ca-certificate", "syntax error"},
		{"clear security pki local-certificate certificate-id nope", "not found"},
		{"show security pki local-certificate certificate-id nope", "no local certificate nope"},
		{"show security pki ca-certificate ca-profile nope", "no CA certificate"},
	}
	for _, tt := range tests {
		rep := f.op(t, tt.cmd, false, "")
		if !strings.Contains(rep.Error, tt.want) {
			t.Errorf("%s: error %q, want %q", tt.cmd, rep.Error, tt.want)
		}
	}
}

func TestLoadLocalWithKeyAndClear(t *testing.T) {
	f := newFixture(t)
	f.apply(t, &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "ca1"}}})
	root := testpki.Root(t, "Root", testpki.Options{})
	mid := root.Intermediate(t, "Mid", testpki.Options{})
	leaf, key := mid.Leaf(t, "vpn2", testpki.Options{})
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	var chain []byte
	for _, c := range []*x509.Certificate{leaf, mid.Cert} {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	os.WriteFile(filepath.Join(f.dir, "vpn2.pem"), chain, 0o644)
	os.WriteFile(filepath.Join(f.dir, "vpn2.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	os.WriteFile(filepath.Join(f.dir, "root.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert.Raw}), 0o644)
	f.ok(t, "request security pki local-certificate load certificate-id vpn2 filename vpn2.pem key vpn2.key")
	f.ok(t, "request security pki ca-certificate load ca-profile ca1 filename root.pem")
	lc := f.app.LocalCertificate(context.Background(), &pb.LocalCertificateRequest{CertificateId: "vpn2"})
	if lc.Error != "" || len(lc.Certificates) != 2 || lc.KeyType != "ecdsa-p256" {
		t.Fatalf("chain: %+v", lc)
	}
	midHash := sha1.Sum(mid.Cert.RawSubjectPublicKeyInfo)
	if string(lc.IssuerKeyHash) != string(midHash[:]) {
		t.Error("issuer key hash is not the intermediate's")
	}
	lc = f.app.LocalCertificate(context.Background(), &pb.LocalCertificateRequest{CertificateId: "vpn2", EndEntityOnly: true})
	if len(lc.Certificates) != 1 {
		t.Errorf("end entity only: %d", len(lc.Certificates))
	}
	sr := f.app.Sign(context.Background(), &pb.SignRequest{CertificateId: "vpn2", Data: []byte("x")})
	h := sha256.Sum256([]byte("x"))
	if !ecdsa.VerifyASN1(leaf.PublicKey.(*ecdsa.PublicKey), h[:], sr.Signature) {
		t.Error("ECDSA signature does not verify")
	}
	f.ok(t, "clear security pki local-certificate certificate-id vpn2")
	f.ok(t, "clear security pki key-pair certificate-id vpn2")
	f.ok(t, "clear security pki ca-certificate ca-profile ca1")
	if lc := f.app.LocalCertificate(context.Background(), &pb.LocalCertificateRequest{CertificateId: "vpn2"}); lc.Error == "" {
		t.Error("local certificate after clear")
	}
	if _, err := os.Stat(filepath.Join(f.dir, "certs", "keys", "vpn2.key")); !os.IsNotExist(err) {
		t.Errorf("key file after clear: %v", err)
	}
}

func TestEnrollmentContinuesInBackground(t *testing.T) {
	f := newFixture(t)
	f.apply(t, f.config(func(c *pb.PKI) {
		c.CaProfiles[0].EnrollmentRetry = proto.Uint32(5)
		c.CaProfiles[0].EnrollmentRetryInterval = proto.Uint32(60)
	}))
	release := make(chan struct{})
	f.app.Sleep = func(ctx context.Context, d time.Duration) error {
		if d != time.Minute {
			t.Errorf("poll interval %v, want retry-interval 60s", d)
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.app.CommandWait = 50 * time.Millisecond
	f.ok(t, "request security pki generate-key-pair certificate-id vpn1")
	f.op(t, "request security pki ca-certificate enroll ca-profile ca1", true, "")
	f.ca.Pending = 1
	enroll := "request security pki local-certificate enroll ca-profile ca1 certificate-id vpn1 challenge-password s3cret subject CN=vpn1"
	rep := f.ok(t, enroll)
	if !strings.HasPrefix(rep.Lines[0], "Certificate enrollment has started") {
		t.Fatalf("reply %v", rep.Lines)
	}
	if rep := f.op(t, enroll, false, ""); !strings.Contains(rep.Error, "already in progress") {
		t.Errorf("second enrollment: %q", rep.Error)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for f.app.certs.Local("vpn1") == nil {
		if time.Now().After(deadline) {
			t.Fatal("background enrollment did not finish")
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.app.Stop(context.Background())
	k := f.kinds()
	if k[len(k)-1] != pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_LOCAL_LOADED {
		t.Errorf("events %v", k)
	}
}

func TestExpiringWarnedOnce(t *testing.T) {
	f := newFixture(t)
	f.apply(t, &pb.PKI{})
	root := testpki.Root(t, "Root", testpki.Options{})
	leaf, key := root.Leaf(t, "gw", testpki.Options{NotAfter: testpki.Now.Add(10 * 24 * time.Hour)})
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(f.dir, "gw.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o644)
	os.WriteFile(filepath.Join(f.dir, "gw.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	f.ok(t, "request security pki local-certificate load certificate-id gw filename gw.pem key gw.key")
	count := func() int {
		n := 0
		for _, k := range f.kinds() {
			if k == pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_LOCAL_EXPIRING {
				n++
			}
		}
		return n
	}
	f.app.Tick(context.Background())
	if count() != 0 {
		t.Fatal("warned 10 days before expiry")
	}
	f.clk.add(3*24*time.Hour + time.Second)
	f.app.Tick(context.Background())
	f.app.Tick(context.Background())
	if count() != 1 {
		t.Fatalf("%d LOCAL_EXPIRING events, want 1", count())
	}
}

// Junos offers RSA 1024 with a warning; operator messages carry no
// package prefixes and no kilobyte words.
func TestKeySizesAndMessages(t *testing.T) {
	f := newFixture(t)
	f.apply(t, f.config(nil))
	rep := f.ok(t, "request security pki generate-key-pair certificate-id weak size 1024")
	if len(rep.Lines) != 2 || !strings.HasPrefix(rep.Lines[0], "warning: a 1024-bit RSA key is weak") || rep.Lines[1] != "Generated key pair weak, key size 1024 bits" {
		t.Errorf("1024: %q", rep.Lines)
	}
	rep = f.ok(t, "request security pki generate-key-pair certificate-id p521 type ecdsa size 521")
	if len(rep.Lines) != 1 {
		t.Errorf("521: %q", rep.Lines)
	}
	if rep := f.op(t, "request security pki generate-key-pair certificate-id weak", false, ""); strings.Contains(rep.Error, "keystore:") || !strings.Contains(rep.Error, "already exists") {
		t.Errorf("prefix kept: %q", rep.Error)
	}
	long := "http://ca.example/scep?operation=PKIOperation&message=" + strings.Repeat("QUJD", 1000)
	got := operatorText("certstore: GET " + long + ": 500 Internal Server Error")
	if len(got) > 300 || strings.Contains(got, "certstore:") || !strings.HasSuffix(got, "bytes) 500 Internal Server Error") {
		t.Errorf("operatorText: %q", got)
	}
}

// Issue 14 item 5: pkid runs as root and opens no file the operator names.
// Before, `ca-certificate load ... filename /any/path` read the file and
// generate-certificate-request ... filename wrote (and overwrote) any path.
func TestOperatorFilesNeverOpenedByPkid(t *testing.T) {
	f := newFixture(t)
	f.apply(t, f.config(nil))
	ca := testpki.Root(t, "Root", testpki.Options{})
	onDisk := filepath.Join(t.TempDir(), "root.der")
	if err := os.WriteFile(onDisk, ca.Cert.Raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{
		"request security pki ca-certificate load ca-profile ca1 filename " + onDisk,
		"request security pki crl load ca-profile ca1 filename " + onDisk,
		"request security pki local-certificate load certificate-id x filename " + onDisk,
	} {
		rep := f.app.Op(context.Background(), &pb.OpRequest{Words: strings.Fields(cmd)})
		if !strings.Contains(rep.Error, "the cli did not send its content") {
			t.Errorf("%s: pkid read the file itself: %q", cmd, rep.Error)
		}
	}
	big := &pb.OpFile{Name: "big", Data: make([]byte, maxFile+1)}
	if rep := f.app.Op(context.Background(), &pb.OpRequest{Words: strings.Fields("request security pki ca-certificate load ca-profile ca1 filename big"), Files: []*pb.OpFile{big}}); !strings.Contains(rep.Error, "more than") {
		t.Errorf("oversized file: %q", rep.Error)
	}

	f.ok(t, "request security pki generate-key-pair certificate-id vpn1 type ecdsa")
	out := filepath.Join(t.TempDir(), "vpn1.csr")
	rep := f.app.Op(context.Background(), &pb.OpRequest{Words: strings.Fields("request security pki generate-certificate-request certificate-id vpn1 subject CN=vpn1 filename " + out)})
	if rep.Error != "" || rep.FileName != out || !strings.HasPrefix(string(rep.FileData), "-----BEGIN CERTIFICATE REQUEST-----") {
		t.Fatalf("request: %q %q", rep.Error, rep.FileName)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("pkid wrote the request file itself: %v", err)
	}
	// The writer the cli uses never overwrites.
	os.WriteFile(out, []byte("keep"), 0o600)
	rep = f.op(t, "request security pki generate-certificate-request certificate-id vpn1 subject CN=vpn1 filename "+out, false, "")
	if b, _ := os.ReadFile(out); string(b) != "keep" || !strings.Contains(rep.Error, "exists") {
		t.Fatalf("existing file overwritten: %q %q", b, rep.Error)
	}
}
