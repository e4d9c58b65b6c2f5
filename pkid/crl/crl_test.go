package crl

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitesec/sitesec/pkid/internal/testpki"
	"github.com/sitesec/sitesec/pkid/profile"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestCheck(t *testing.T) {
	root := testpki.Root(t, "Root", testpki.Options{})
	other := testpki.Root(t, "Other", testpki.Options{})
	good, _ := root.Leaf(t, "good", testpki.Options{CRLURLs: []string{"http://cdp.example/root.crl"}})
	bad, _ := root.Leaf(t, "bad", testpki.Options{CRLURLs: []string{"http://cdp.example/root.crl"}})
	noCDP, _ := root.Leaf(t, "nocdp", testpki.Options{})
	now := testpki.Now
	crlDER := root.CRL(t, now.Add(-time.Hour), now.Add(24*time.Hour), bad)
	forged := other.CRL(t, now.Add(-time.Hour), now.Add(24*time.Hour))

	tests := []struct {
		name        string
		prof        profile.Profile
		cert        *testpkiCert
		serve       []byte
		fetchErr    error
		wantURL     string
		wantSkipped bool
		wantErr     string
	}{
		{"good via CDP", profile.Profile{Name: "p"}, &testpkiCert{good}, crlDER, nil, "http://cdp.example/root.crl", false, ""},
		{"revoked", profile.Profile{Name: "p"}, &testpkiCert{bad}, crlDER, nil, "", false, "revoked (CRL of ca-profile p, serial " + bad.SerialNumber.Text(16)},
		{"profile url overrides", profile.Profile{Name: "p", CRLURL: "ldap://ldap.example/cn=Root?certificateRevocationList"}, &testpkiCert{good}, crlDER, nil, "ldap://ldap.example/cn=Root?certificateRevocationList", false, ""},
		{"no url", profile.Profile{Name: "p"}, &testpkiCert{noCDP}, crlDER, nil, "", false, "no CRL url configured"},
		{"download fails closed", profile.Profile{Name: "p"}, &testpkiCert{good}, nil, errors.New("connection refused"), "", false, "unavailable: http://cdp.example/root.crl: connection refused"},
		{"download fails open", profile.Profile{Name: "p", DisableOnDownloadFailure: true}, &testpkiCert{bad}, nil, errors.New("connection refused"), "", true, ""},
		{"forged CRL", profile.Profile{Name: "p"}, &testpkiCert{good}, forged, nil, "", false, "not signed by"},
		{"disabled", profile.Profile{Name: "p", Revocation: profile.Disable}, &testpkiCert{bad}, nil, errors.New("never called"), "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(t.TempDir())
			clk := &clock{now}
			c.Now = clk.now
			var asked string
			c.Fetch = func(_ context.Context, u, _ string) ([]byte, error) {
				asked = u
				return tt.serve, tt.fetchErr
			}
			skipped, err := c.Check(context.Background(), &tt.prof, root.Cert, tt.cert.c)
			if skipped != tt.wantSkipped {
				t.Errorf("skipped = %v", skipped)
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
			if tt.wantURL != "" && asked != tt.wantURL {
				t.Errorf("fetched %q, want %q", asked, tt.wantURL)
			}
		})
	}
}

type testpkiCert struct{ c *x509.Certificate }

func TestRefreshRestoreAndEvents(t *testing.T) {
	root := testpki.Root(t, "Root", testpki.Options{})
	a, _ := root.Leaf(t, "a", testpki.Options{})
	b, _ := root.Leaf(t, "b", testpki.Options{})
	now := testpki.Now
	clk := &clock{now}
	serve := root.CRL(t, now.Add(-time.Hour), now.Add(48*time.Hour), a)
	fetches := 0
	dir := t.TempDir()
	c := New(dir)
	c.Now = clk.now
	c.Fetch = func(context.Context, string, string) ([]byte, error) { fetches++; return serve, nil }
	p := &profile.Profile{Name: "p", CRLURL: "http://ca/crl", RefreshInterval: 2 * time.Hour}
	profiles := map[string]*profile.Profile{"p": p}

	added, err := c.Update(context.Background(), p, root.Cert, root.Cert)
	if err != nil || strings.Join(added, ",") != a.SerialNumber.Text(16) {
		t.Fatalf("first update: %v %v", added, err)
	}
	if len(c.Due(profiles)) != 0 {
		t.Error("due right after fetch")
	}
	clk.t = now.Add(2 * time.Hour)
	due := c.Due(profiles)
	if len(due) != 1 {
		t.Fatalf("due after refresh-interval: %d", len(due))
	}
	serve = root.CRL(t, now, now.Add(48*time.Hour), a, b)
	added, err = c.Update(context.Background(), p, due[0].Issuer, due[0].Issuer)
	if err != nil || strings.Join(added, ",") != b.SerialNumber.Text(16) {
		t.Fatalf("second update added %v, %v; want only b", added, err)
	}
	// Interval 0: only nextUpdate triggers.
	p0 := &profile.Profile{Name: "p"}
	if len(c.Due(map[string]*profile.Profile{"p": p0})) != 0 {
		t.Error("due with refresh-interval 0 before nextUpdate")
	}
	clk.t = now.Add(49 * time.Hour)
	if len(c.Due(map[string]*profile.Profile{"p": p0})) != 1 {
		t.Error("not due after nextUpdate")
	}

	// A fresh cache restores from disk without fetching.
	fetches = 0
	clk.t = now.Add(3 * time.Hour)
	c2 := New(dir)
	c2.Now = clk.now
	c2.Fetch = func(context.Context, string, string) ([]byte, error) { fetches++; return nil, errors.New("offline") }
	if err := c2.Restore("p", []*x509.Certificate{root.Cert}); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Check(context.Background(), p, root.Cert, b); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("restored check of b: %v", err)
	}
	if fetches != 0 {
		t.Errorf("restore fetched %d times", fetches)
	}
	ents := c2.Entries()
	if len(ents) != 1 || ents[0].Status(clk.t) != "valid" || len(ents[0].List.RevokedCertificateEntries) != 2 {
		t.Errorf("entries %+v", ents)
	}
	// Restore rejects a cached CRL that does not verify.
	other := testpki.Root(t, "Other", testpki.Options{})
	if err := New(dir).Restore("p", []*x509.Certificate{other.Cert}); err != nil {
		t.Errorf("restore with other CA found a file: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.crl"))
	os.WriteFile(files[0], []byte("junk"), 0o644)
	if err := New(dir).Restore("p", []*x509.Certificate{root.Cert}); err == nil {
		t.Error("corrupt cache accepted")
	}
	if n := c2.Clear(""); n != 1 {
		t.Errorf("Clear = %d", n)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.crl")); len(files) != 0 {
		t.Errorf("Clear left %v", files)
	}
}

func TestFailureBackoffAndLoad(t *testing.T) {
	root := testpki.Root(t, "Root", testpki.Options{})
	other := testpki.Root(t, "Other", testpki.Options{})
	leaf, _ := root.Leaf(t, "a", testpki.Options{})
	clk := &clock{testpki.Now}
	c := New(t.TempDir())
	c.Now = clk.now
	fetches := 0
	c.Fetch = func(context.Context, string, string) ([]byte, error) { fetches++; return nil, errors.New("timeout") }
	p := &profile.Profile{Name: "p", CRLURL: "http://ca/crl"}
	for range 3 {
		if _, err := c.Check(context.Background(), p, root.Cert, leaf); err == nil {
			t.Fatal("check passed with no CRL")
		}
	}
	if fetches != 1 {
		t.Errorf("fetched %d times within RetryAfterFailure, want 1", fetches)
	}
	if st := c.Entries()[0].Status(clk.t); !strings.HasPrefix(st, "download failed: http://ca/crl: timeout") {
		t.Errorf("status %q", st)
	}
	clk.t = clk.t.Add(RetryAfterFailure)
	c.Check(context.Background(), p, root.Cert, leaf)
	if fetches != 2 {
		t.Errorf("no retry after RetryAfterFailure")
	}
	// The operator loads one by hand (PEM), which must be signed by a CA of the profile.
	pemCRL := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: root.CRL(t, clk.t, clk.t.Add(time.Hour), leaf)})
	if _, err := c.Load("p", []*x509.Certificate{other.Cert}, pemCRL); err == nil {
		t.Error("Load accepted a CRL of another CA")
	}
	if _, err := c.Load("p", nil, pemCRL); err == nil {
		t.Error("Load accepted with no CA")
	}
	if _, err := c.Load("p", []*x509.Certificate{other.Cert, root.Cert}, pemCRL); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(context.Background(), p, root.Cert, leaf); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("after load: %v", err)
	}
	if _, err := c.Load("p", []*x509.Certificate{root.Cert}, []byte("nonsense")); err == nil {
		t.Error("Load accepted junk")
	}
}

func TestFetchHTTP(t *testing.T) {
	root := testpki.Root(t, "Root", testpki.Options{})
	der := root.CRL(t, testpki.Now, testpki.Now.Add(time.Hour))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/der":
			w.Write(der)
		case "/pem":
			pem.Encode(w, &pem.Block{Type: "X509 CRL", Bytes: der})
		case "/junk":
			w.Write([]byte("<html>"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	tests := []struct {
		path    string
		wantErr string
	}{
		{"/der", ""}, {"/pem", ""}, {"/junk", "neither DER nor PEM"}, {"/missing", "HTTP 404"},
	}
	for _, tt := range tests {
		got, err := Fetch(context.Background(), srv.URL+tt.path, "")
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want %q", tt.path, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(got) != string(der) {
			t.Errorf("%s: %v", tt.path, err)
		}
	}
	if _, err := Fetch(context.Background(), "ftp://x/y", ""); err == nil {
		t.Error("ftp accepted")
	}
	if _, err := Fetch(context.Background(), "ldap://127.0.0.1:1/", ""); err == nil || !strings.Contains(err.Error(), "no DN") {
		t.Errorf("ldap without DN: %v", err)
	}
}

func TestSlowDownloadOutlivesCaller(t *testing.T) {
	root := testpki.Root(t, "Root", testpki.Options{})
	leaf, _ := root.Leaf(t, "a", testpki.Options{})
	c := New(t.TempDir())
	clk := &clock{testpki.Now}
	c.Now = clk.now
	release := make(chan struct{})
	calls := 0
	var mu sync.Mutex
	c.Fetch = func(context.Context, string, string) ([]byte, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		<-release
		return root.CRL(t, testpki.Now.Add(-time.Minute), testpki.Now.Add(time.Hour)), nil
	}
	p := &profile.Profile{Name: "p", CRLURL: "http://slow/crl"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Check(ctx, p, root.Cert, leaf)
	if err == nil || !strings.Contains(err.Error(), "download still in progress") {
		t.Fatalf("impatient caller: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Check(context.Background(), p, root.Cert, leaf); done <- err }()
	time.Sleep(10 * time.Millisecond)
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("patient caller: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("%d downloads, want 1", calls)
	}
}

func FuzzLoad(f *testing.F) {
	root := testpki.Root(f, "Root", testpki.Options{})
	der := root.CRL(f, testpki.Now, testpki.Now.Add(time.Hour))
	f.Add(der)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		c := New(dir)
		c.Load("p", []*x509.Certificate{root.Cert}, data)
	})
}

// Issue 14, low: an HTTP CRL fetch follows no redirect (before, a CRL
// server could send pkid anywhere), and the LDAP bind password goes only to
// the configured URL, never to a distribution point a certificate names.
func TestNoRedirectAndPasswordOnlyToConfiguredURL(t *testing.T) {
	root := testpki.Root(t, "Root", testpki.Options{})
	der := root.CRL(t, testpki.Now.Add(-time.Hour), testpki.Now.Add(time.Hour))
	hit := false
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit = true; w.Write(der) }))
	defer target.Close()
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/crl", http.StatusFound)
	}))
	defer redir.Close()
	if _, err := Fetch(context.Background(), redir.URL+"/crl", ""); err == nil || hit {
		t.Fatalf("redirect followed: err %v, target hit %v", err, hit)
	}
	if _, err := Fetch(context.Background(), target.URL+"/crl", ""); err != nil {
		t.Fatal(err)
	}

	leaf, _ := root.Leaf(t, "leaf", testpki.Options{CRLURLs: []string{"ldap://evil.example/cn=x"}})
	got := map[string]string{}
	c := New(t.TempDir())
	c.Now = func() time.Time { return testpki.Now }
	c.Fetch = func(_ context.Context, u, pw string) ([]byte, error) { got[u] = pw; return der, nil }
	p := &profile.Profile{Name: "p", CRLPassword: "bind-secret"}
	c.Update(context.Background(), p, root.Cert, leaf)
	if pw, ok := got["ldap://evil.example/cn=x"]; !ok || pw != "" {
		t.Fatalf("distribution point fetched with password %q (fetched %v)", pw, ok)
	}
	p.CRLURL = "ldap://ca.example/cn=crl"
	c.Update(context.Background(), p, root.Cert, leaf)
	if got[p.CRLURL] != "bind-secret" {
		t.Fatalf("configured URL fetched without its password: %q", got[p.CRLURL])
	}
}
