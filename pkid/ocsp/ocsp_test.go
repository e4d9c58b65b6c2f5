package ocsp

import (
	"context"
	"crypto"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/sitesec/sitesec/pkid/internal/testpki"
)

func TestCheck(t *testing.T) {
	root := testpki.Root(t, "Root", testpki.Options{})
	other := testpki.Root(t, "Other", testpki.Options{})
	good, _ := root.Leaf(t, "good", testpki.Options{})
	bad, _ := root.Leaf(t, "bad", testpki.Options{})
	now := testpki.Now
	var hits atomic.Int32
	// status per serial; "forged" signs with the wrong key, "stale" is expired.
	mode := map[string]string{good.SerialNumber.String(): "good", bad.SerialNumber.String(): "revoked"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		req, err := xocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		m := mode[req.SerialNumber.String()]
		tmpl := xocsp.Response{SerialNumber: req.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour), Status: xocsp.Good}
		signer, signerCert := root.Key, root.Cert
		switch m {
		case "revoked":
			tmpl.Status, tmpl.RevokedAt = xocsp.Revoked, now.Add(-time.Hour)
		case "unknown":
			tmpl.Status = xocsp.Unknown
		case "forged":
			signer, signerCert = other.Key, other.Cert
		case "stale":
			tmpl.NextUpdate = now.Add(-time.Minute)
			tmpl.ThisUpdate = now.Add(-time.Hour)
		case "error":
			http.Error(w, "down", 503)
			return
		}
		der, err := xocsp.CreateResponse(signerCert, signerCert, tmpl, signer.(crypto.Signer))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(der)
	}))
	defer srv.Close()
	c := &Checker{Now: func() time.Time { return now }}
	ctx := context.Background()
	if err := c.Check(ctx, []string{srv.URL}, root.Cert, good); err != nil {
		t.Fatalf("good: %v", err)
	}
	c.Check(ctx, []string{srv.URL}, root.Cert, good)
	if hits.Load() != 1 {
		t.Errorf("good answer not cached: %d requests", hits.Load())
	}
	err := c.Check(ctx, []string{srv.URL}, root.Cert, bad)
	if _, ok := err.(*RevokedError); !ok || !strings.Contains(err.Error(), "revoked (OCSP "+srv.URL+", serial "+bad.SerialNumber.Text(16)) {
		t.Errorf("revoked: %v", err)
	}
	for _, m := range []struct{ mode, want string }{
		{"unknown", "status unknown"}, {"forged", "bad response"}, {"stale", "response expired"}, {"error", "HTTP 503"},
	} {
		leaf, _ := root.Leaf(t, m.mode, testpki.Options{})
		mode[leaf.SerialNumber.String()] = m.mode
		err := c.Check(ctx, []string{srv.URL}, root.Cert, leaf)
		if _, ok := err.(*UnavailableError); !ok || !strings.Contains(err.Error(), m.want) {
			t.Errorf("%s: %v, want %q", m.mode, err, m.want)
		}
	}
	// Without a URL the certificate's AIA is used.
	aia, _ := root.Leaf(t, "aia", testpki.Options{})
	aia.OCSPServer = []string{srv.URL}
	mode[aia.SerialNumber.String()] = "good"
	if err := c.Check(ctx, nil, root.Cert, aia); err != nil {
		t.Errorf("AIA: %v", err)
	}
	noAIA, _ := root.Leaf(t, "noaia", testpki.Options{})
	if err := c.Check(ctx, nil, root.Cert, noAIA); err == nil || !strings.Contains(err.Error(), "no ocsp url") {
		t.Error("no URL accepted")
	}
}
