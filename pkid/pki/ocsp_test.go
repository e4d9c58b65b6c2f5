package pki

import (
	"context"
	"crypto"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/sitesec/sitesec/pkid/internal/testpki"
	"github.com/sitesec/sitesec/proto/pb"
)

func TestValidateWithOCSP(t *testing.T) {
	f := newFixture(t)
	root := testpki.Root(t, "Root", testpki.Options{})
	good, _ := root.Leaf(t, "good", testpki.Options{})
	bad, _ := root.Leaf(t, "bad", testpki.Options{})
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, err := xocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tmpl := xocsp.Response{SerialNumber: req.SerialNumber, ThisUpdate: testpki.Now.Add(-time.Minute), NextUpdate: testpki.Now.Add(time.Hour), Status: xocsp.Good}
		if req.SerialNumber.Cmp(bad.SerialNumber) == 0 {
			tmpl.Status, tmpl.RevokedAt = xocsp.Revoked, testpki.Now.Add(-time.Hour)
		}
		der, _ := xocsp.CreateResponse(root.Cert, root.Cert, tmpl, root.Key.(crypto.Signer))
		w.Write(der)
	}))
	defer srv.Close()
	f.crls["http://crl/root.crl"] = root.CRL(t, testpki.Now.Add(-time.Hour), testpki.Now.Add(time.Hour))
	f.apply(t, &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "o", RevocationCheck: pb.RevocationCheck_REVOCATION_CHECK_USE_OCSP,
		OcspUrls: []string{srv.URL}, CrlUrl: "http://crl/root.crl"}}})
	os.WriteFile(filepath.Join(f.dir, "root.der"), root.Cert.Raw, 0o644)
	f.ok(t, "request security pki ca-certificate load ca-profile o filename root.der")
	validate := func() *pb.ValidateChainReply {
		return f.app.Validate(context.Background(), &pb.ValidateChainRequest{TrustedCa: []string{"o"}, Certificates: [][]byte{good.Raw}})
	}
	if v := validate(); !v.Valid {
		t.Fatalf("good: %s", v.Reason)
	}
	v := f.app.Validate(context.Background(), &pb.ValidateChainRequest{TrustedCa: []string{"o"}, Certificates: [][]byte{bad.Raw}})
	if v.Valid || !strings.Contains(v.Reason, "revoked (OCSP") {
		t.Errorf("bad: %+v", v)
	}
	// Responder down: the CRL decides (good was cached by OCSP, so use
	// a fresh certificate).
	down.Store(true)
	fresh, _ := root.Leaf(t, "fresh", testpki.Options{})
	v = f.app.Validate(context.Background(), &pb.ValidateChainRequest{TrustedCa: []string{"o"}, Certificates: [][]byte{fresh.Raw}})
	if !v.Valid {
		t.Errorf("CRL fallback: %s", v.Reason)
	}
	delete(f.crls, "http://crl/root.crl")
	f.app.crls.Clear("")
	other, _ := root.Leaf(t, "other", testpki.Options{})
	v = f.app.Validate(context.Background(), &pb.ValidateChainRequest{TrustedCa: []string{"o"}, Certificates: [][]byte{other.Raw}})
	if v.Valid || !strings.Contains(v.Reason, "OCSP unavailable") || !strings.Contains(v.Reason, "CRL of ca-profile o") {
		t.Errorf("both down: %+v", v)
	}
}
