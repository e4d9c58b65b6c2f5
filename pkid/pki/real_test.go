package pki

// Tests against real components: step-ca (SCEP provisioner, HTTP CRL
// endpoint) and slapd (a CRL over LDAP). They skip, saying why, when the
// binaries are missing. CI installs them with:
//
//	CGO_ENABLED=0 go install github.com/smallstep/certificates/cmd/step-ca@v0.30.2
//	CGO_ENABLED=0 go install github.com/smallstep/cli/cmd/step@latest
//	apt-get install -y slapd ldap-utils

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/pkid/crl"
	"github.com/sitesec/sitesec/proto/pb"
)

// findBin looks in PATH, then in the Go install directories.
func findBin(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("GOPATH"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, "go", "bin"))
	}
	dirs = append(dirs, "/usr/sbin")
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects a child's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startProcess(t *testing.T, out *lockedBuffer, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

type stepCA struct {
	dir      string
	scepURL  string
	crlURL   string
	httpsURL string
	rootFile string
	root     *x509.Certificate
}

// startStepCA runs step-ca with an RSA root and intermediate (SCEP needs
// an RSA decrypter), a SCEP provisioner with challenge "s3cret", and CRLs
// served over plain HTTP.
func startStepCA(t *testing.T) *stepCA {
	t.Helper()
	bin := findBin(t, "step-ca")
	if bin == "" {
		t.Skip("step-ca not installed (CGO_ENABLED=0 go install github.com/smallstep/certificates/cmd/step-ca@v0.30.2)")
	}
	dir := t.TempDir()
	now := time.Now()
	rootKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Step Test Root", Organization: []string{"sitesec"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	intKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	intTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Step Test Intermediate", Organization: []string{"sitesec"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	intDER, err := x509.CreateCertificate(rand.Reader, intTmpl, root, intKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	s := &stepCA{dir: dir, root: root, rootFile: filepath.Join(dir, "root.crt")}
	writePEM(t, s.rootFile, "CERTIFICATE", rootDER)
	writePEM(t, filepath.Join(dir, "int.crt"), "CERTIFICATE", intDER)
	writePEM(t, filepath.Join(dir, "int.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(intKey))
	httpsPort, httpPort := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`{
  "root": %[1]q, "crt": %[2]q, "key": %[3]q,
  "address": "127.0.0.1:%[4]d", "insecureAddress": "127.0.0.1:%[5]d",
  "dnsNames": ["127.0.0.1", "localhost"],
  "db": {"type": "badgerv2", "dataSource": %[6]q},
  "crl": {"enabled": true, "generateOnRevoke": true, "cacheDuration": "24h"},
  "authority": {"provisioners": [
    {"type": "SCEP", "name": "scep1", "challenge": "s3cret", "encryptionAlgorithmIdentifier": 2, "includeRoot": true, "minimumPublicKeyLength": 2048}
  ]},
  "tls": {"minVersion": 1.2, "maxVersion": 1.3}
}`, s.rootFile, filepath.Join(dir, "int.crt"), filepath.Join(dir, "int.key"), httpsPort, httpPort, filepath.Join(dir, "db"))
	if err := os.WriteFile(filepath.Join(dir, "ca.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	startProcess(t, out, bin, filepath.Join(dir, "ca.json"))
	s.scepURL = fmt.Sprintf("http://127.0.0.1:%d/scep/scep1", httpPort)
	s.crlURL = fmt.Sprintf("http://127.0.0.1:%d/crl", httpPort)
	s.httpsURL = fmt.Sprintf("https://127.0.0.1:%d", httpsPort)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.scepURL + "?operation=GetCACaps")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("step-ca did not start: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

// TestStepCA enrolls against a real step-ca over SCEP, validates the
// issued certificate against the CA's real CRL, revokes it with the step
// CLI and sees the revocation after the refresh-interval.
func TestStepCA(t *testing.T) {
	if testing.Short() {
		t.Skip("starts step-ca")
	}
	ca := startStepCA(t)
	f := newFixture(t)
	var offset time.Duration
	var mu sync.Mutex
	f.app.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(offset) }
	f.app.crls.Now = f.app.Now
	f.app.FetchCRL = crl.Fetch
	f.app.crls.Fetch = crl.Fetch
	f.apply(t, &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "step", CaIdentity: "step", EnrollmentUrl: ca.scepURL,
		CrlUrl: ca.crlURL, CrlRefreshIntervalHours: proto.Uint32(1), EnrollmentRetry: proto.Uint32(0)}}})

	rep := f.op(t, "request security pki ca-certificate enroll ca-profile step", false, "")
	if rep.Error != "" || rep.ConfirmQuestion == "" {
		t.Fatalf("enroll CA: %+v", rep)
	}
	if !strings.Contains(strings.Join(rep.Lines, "\n"), "CN=Step Test Intermediate") {
		t.Errorf("CA enroll lines: %v", rep.Lines)
	}
	rep = f.op(t, "request security pki ca-certificate enroll ca-profile step", true, "")
	if rep.Error != "" {
		t.Fatal(rep.Error)
	}
	if n := len(f.app.certs.CA("step")); n != 2 {
		t.Fatalf("%d CA certificates loaded, want intermediate and root", n)
	}
	f.ok(t, "request security pki generate-key-pair certificate-id gw1 size 2048")
	rep = f.op(t, "request security pki local-certificate enroll scep ca-profile step certificate-id gw1 challenge-password subject CN=gw1.example.net,O=sitesec domain-name gw1.example.net ip-address 198.51.100.1", false, "s3cret")
	if rep.Error != "" {
		t.Fatalf("local enroll: %s", rep.Error)
	}
	rep = f.op(t, "request security pki local-certificate enroll scep ca-profile step certificate-id gw1 challenge-password subject CN=gw1.example.net", false, "wrong")
	if rep.Error == "" {
		t.Error("enrollment with a wrong challenge password succeeded")
	}
	lc := f.app.LocalCertificate(context.Background(), &pb.LocalCertificateRequest{CertificateId: "gw1"})
	if lc.Error != "" || len(lc.Certificates) != 2 {
		t.Fatalf("local chain: %+v", lc)
	}
	leaf, _ := x509.ParseCertificate(lc.Certificates[0])
	if !strings.Contains(strings.Join(lc.SubjectAltNames, ","), "fqdn:gw1.example.net") {
		t.Errorf("SANs %v", lc.SubjectAltNames)
	}
	f.ok(t, "request security pki local-certificate verify certificate-id gw1")
	v := f.app.Validate(context.Background(), &pb.ValidateChainRequest{TrustedCa: []string{"step"}, Certificates: lc.Certificates, PeerIdentity: "fqdn:gw1.example.net"})
	if !v.Valid {
		t.Fatalf("validate with step-ca CRL: %s", v.Reason)
	}
	crls := f.ok(t, "show security pki crl").GetPkiCrls().GetCrls()
	if len(crls) == 0 || crls[0].Url != ca.crlURL || crls[0].Status != "valid" {
		t.Errorf("show crl: %v", crls)
	}

	step := findBin(t, "step")
	if step == "" {
		t.Skip("step CLI not installed (CGO_ENABLED=0 go install github.com/smallstep/cli/cmd/step@latest): revocation not tested")
	}
	certFile := filepath.Join(f.dir, "gw1.crt")
	writePEM(t, certFile, "CERTIFICATE", leaf.Raw)
	cmd := exec.Command(step, "ca", "revoke", "--cert", certFile, "--key", filepath.Join(f.dir, "certs", "keys", "gw1.key"),
		"--ca-url", ca.httpsURL, "--root", ca.rootFile, "--reason", "test")
	cmd.Env = append(os.Environ(), "STEPPATH="+filepath.Join(f.dir, "steppath"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("step ca revoke: %v\n%s", err, out)
	}
	// The cached CRL still says good until the refresh-interval passes.
	if v := f.app.Validate(context.Background(), &pb.ValidateChainRequest{TrustedCa: []string{"step"}, Certificates: lc.Certificates}); !v.Valid {
		t.Fatalf("before refresh: %s", v.Reason)
	}
	mu.Lock()
	offset = time.Hour
	mu.Unlock()
	f.app.Tick(context.Background())
	v = f.app.Validate(context.Background(), &pb.ValidateChainRequest{TrustedCa: []string{"step"}, Certificates: lc.Certificates})
	if v.Valid || !strings.Contains(v.Reason, "revoked (CRL of ca-profile step, serial "+leaf.SerialNumber.Text(16)) {
		t.Fatalf("after revocation and refresh: %+v", v)
	}
}

// TestLDAPCRL serves a CRL from slapd and checks certificates against it,
// anonymously and with a bind password.
func TestLDAPCRL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts slapd")
	}
	bin := findBin(t, "slapd")
	if bin == "" {
		t.Skip("slapd not installed (apt-get install -y slapd ldap-utils)")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "db"), 0o700)
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
pidfile %[1]s/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
suffix "dc=example,dc=net"
rootdn "cn=admin,dc=example,dc=net"
rootpw secret
directory %[1]s/db
access to * by * read
`, dir)
	os.WriteFile(filepath.Join(dir, "slapd.conf"), []byte(conf), 0o600)
	port := freePort(t)
	url := fmt.Sprintf("ldap://127.0.0.1:%d", port)
	out := &lockedBuffer{}
	startProcess(t, out, bin, "-f", filepath.Join(dir, "slapd.conf"), "-h", url+"/", "-d", "0")
	var conn *ldap.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		conn, err = ldap.DialURL(url)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not start: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer conn.Close()
	if err := conn.Bind("cn=admin,dc=example,dc=net", "secret"); err != nil {
		t.Fatal(err)
	}

	f := newFixture(t)
	f.app.Now, f.app.crls.Now = time.Now, time.Now
	f.app.crls.Fetch = crl.Fetch
	root := rsaRoot(t)
	good, bad := root.leaf(t, "good"), root.leaf(t, "bad")
	crlDER := root.crl(t, bad)
	base := ldap.NewAddRequest("dc=example,dc=net", nil)
	base.Attribute("objectClass", []string{"dcObject", "organization"})
	base.Attribute("dc", []string{"example"})
	base.Attribute("o", []string{"example"})
	if err := conn.Add(base); err != nil {
		t.Fatalf("ldap add base: %v", err)
	}
	add := ldap.NewAddRequest("cn=crl,dc=example,dc=net", nil)
	add.Attribute("objectClass", []string{"cRLDistributionPoint"})
	add.Attribute("cn", []string{"crl"})
	add.Attribute("certificateRevocationList;binary", []string{string(crlDER)})
	if err := conn.Add(add); err != nil {
		t.Fatalf("ldap add: %v", err)
	}
	ldapURL := url + "/cn=crl,dc=example,dc=net?certificateRevocationList;binary"
	f.apply(t, &pb.PKI{CaProfiles: []*pb.CAProfile{
		{Name: "anon", CrlUrl: ldapURL},
		{Name: "bound", CrlUrl: url + "/cn=crl,dc=example,dc=net?certificateRevocationList;binary???bindname=cn%3Dadmin%2Cdc%3Dexample%2Cdc%3Dnet", CrlPassword: "secret"},
		{Name: "wrongpw", CrlUrl: url + "/cn=crl,dc=example,dc=net?certificateRevocationList???bindname=cn%3Dadmin%2Cdc%3Dexample%2Cdc%3Dnet", CrlPassword: "nope"},
		{Name: "missing", CrlUrl: url + "/cn=nothing,dc=example,dc=net"},
	}})
	rootFile := filepath.Join(f.dir, "root.der")
	os.WriteFile(rootFile, root.cert.Raw, 0o644)
	for _, p := range []string{"anon", "bound", "wrongpw", "missing"} {
		f.ok(t, "request security pki ca-certificate load ca-profile "+p+" filename root.der")
	}
	tests := []struct {
		profile string
		cert    *x509.Certificate
		want    string
	}{
		{"anon", good, ""},
		{"anon", bad, "revoked (CRL of ca-profile anon"},
		{"bound", bad, "revoked (CRL of ca-profile bound"},
		{"wrongpw", good, "ldap bind"},
		{"missing", good, "No Such Object"},
	}
	for _, tt := range tests {
		v := f.app.Validate(context.Background(), &pb.ValidateChainRequest{TrustedCa: []string{tt.profile}, Certificates: [][]byte{tt.cert.Raw}})
		if tt.want == "" {
			if !v.Valid {
				t.Errorf("%s %s: %s", tt.profile, tt.cert.Subject.CommonName, v.Reason)
			}
			continue
		}
		if v.Valid || !strings.Contains(v.Reason, tt.want) {
			t.Errorf("%s %s: reason %q, want %q", tt.profile, tt.cert.Subject.CommonName, v.Reason, tt.want)
		}
	}
}

type testCA struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
	n    int64
}

func rsaRoot(t *testing.T) *testCA {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "LDAP Test Root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: k, n: 100}
}

func (ca *testCA) leaf(t *testing.T, cn string) *x509.Certificate {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	ca.n++
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(ca.n), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, k.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func (ca *testCA) crl(t *testing.T, revoked ...*x509.Certificate) []byte {
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Minute),
		NextUpdate: time.Now().Add(time.Hour), RevokedCertificateEntries: entries}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
