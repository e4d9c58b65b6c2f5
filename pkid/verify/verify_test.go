package verify

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/pkid/crl"
	"github.com/sitesec/sitesec/pkid/internal/testpki"
	"github.com/sitesec/sitesec/pkid/profile"
)

// fakeRev revokes by subject CN, or reports the CRL unavailable.
type fakeRev struct {
	revoked     map[string]bool
	unavailable bool
	checked     []string
}

func (f *fakeRev) Check(_ context.Context, p *profile.Profile, ca, cert *x509.Certificate) (bool, error) {
	f.checked = append(f.checked, cert.Subject.CommonName+"<"+ca.Subject.CommonName)
	if p.Revocation == profile.Disable {
		return false, nil
	}
	if f.unavailable {
		if p.DisableOnDownloadFailure {
			return true, nil
		}
		return false, &crl.UnavailableError{Profile: p.Name, Issuer: ca.Subject.String(), Err: errors.New("timeout")}
	}
	if f.revoked[cert.Subject.CommonName] {
		return false, &crl.RevokedError{Profile: p.Name, Serial: cert.SerialNumber, At: testpki.Now}
	}
	return false, nil
}

func ders(cs ...*x509.Certificate) [][]byte {
	var out [][]byte
	for _, c := range cs {
		out = append(out, c.Raw)
	}
	return out
}

func TestChain(t *testing.T) {
	now := testpki.Now
	root := testpki.Root(t, "Root", testpki.Options{})
	mid := root.Intermediate(t, "Mid", testpki.Options{})
	otherRoot := testpki.Root(t, "Other", testpki.Options{})
	leaf, _ := mid.Leaf(t, "vpn1", testpki.Options{DNSNames: []string{"vpn1.example.net"}, IPs: []net.IP{net.ParseIP("192.0.2.1")}})
	direct, _ := root.Leaf(t, "direct", testpki.Options{})
	expired, _ := mid.Leaf(t, "old", testpki.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	future, _ := mid.Leaf(t, "new", testpki.Options{NotBefore: now.Add(time.Hour)})
	encOnly, _ := mid.Leaf(t, "enc", testpki.Options{KeyUsage: x509.KeyUsageKeyEncipherment})
	notCA := root.Intermediate(t, "NotCA", testpki.Options{NoBasicConstraints: true})
	underNotCA, _ := notCA.Leaf(t, "under", testpki.Options{})
	noSign := root.Intermediate(t, "NoSign", testpki.Options{KeyUsage: x509.KeyUsageCRLSign})
	underNoSign, _ := noSign.Leaf(t, "under2", testpki.Options{})
	expiredMid := root.Intermediate(t, "OldMid", testpki.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	underExpiredMid, _ := expiredMid.Leaf(t, "under3", testpki.Options{})
	forged, _ := mid.Leaf(t, "vpn, OU=Sales", testpki.Options{})
	realOU, _ := mid.Leaf(t, "vpn", testpki.Options{OU: "Sales"})

	p1 := &profile.Profile{Name: "ca1"}
	p2 := &profile.Profile{Name: "ca2"}
	pOpen := &profile.Profile{Name: "ca1", DisableOnDownloadFailure: true}
	pOff := &profile.Profile{Name: "ca1", Revocation: profile.Disable}
	anchors := []Anchor{{Profile: p2, CAs: []*x509.Certificate{otherRoot.Cert}}, {Profile: p1, CAs: []*x509.Certificate{root.Cert}}}

	tests := []struct {
		name        string
		chain       [][]byte
		anchors     []Anchor
		identity    string
		policies    []string
		rev         *fakeRev
		wantProfile string
		wantSkipped bool
		wantErr     string
	}{
		{"good via second profile", ders(leaf, mid.Cert), anchors, "fqdn:VPN1.example.net", nil, &fakeRev{}, "ca1", false, ""},
		{"good ip identity", ders(leaf, mid.Cert), anchors, "ipv4:192.0.2.1", nil, &fakeRev{}, "ca1", false, ""},
		{"good dn identity", ders(leaf, mid.Cert), anchors, "dn:o=Test, CN=vpn1", nil, &fakeRev{}, "ca1", false, ""},
		{"anchor is intermediate", ders(leaf), []Anchor{{Profile: p1, CAs: []*x509.Certificate{mid.Cert}}}, "", nil, &fakeRev{}, "ca1", false, ""},
		{"direct", ders(direct), anchors, "", nil, &fakeRev{}, "ca1", false, ""},
		{"no certificate", nil, anchors, "", nil, &fakeRev{}, "", false, "no certificate"},
		{"too many", make([][]byte, 11), anchors, "", nil, &fakeRev{}, "", false, "11 certificates in the chain, at most 10"},
		{"malformed", [][]byte{{0x30, 0x01}}, anchors, "", nil, &fakeRev{}, "", false, "certificate 1 is malformed"},
		{"no anchors", ders(leaf, mid.Cert), nil, "", nil, &fakeRev{}, "", false, "no trusted-ca"},
		{"anchor without CA", ders(leaf, mid.Cert), []Anchor{{Profile: p1}}, "", nil, &fakeRev{}, "", false, "ca-profile ca1 has no CA certificate"},
		{"missing intermediate", ders(leaf), anchors, "", nil, &fakeRev{}, "", false, `no path to trusted-ca (ca-profile ca2: issuer "O=Test, CN=Mid" of "O=Test, CN=vpn1" is not trusted`},
		{"wrong trusted-ca", ders(leaf, mid.Cert), anchors[:1], "", nil, &fakeRev{}, "", false, "no path to trusted-ca (ca-profile ca2:"},
		{"expired", ders(expired, mid.Cert), anchors, "", nil, &fakeRev{}, "", false, `certificate "O=Test, CN=old" expired at 2026-06-01T11:00:00Z`},
		{"not yet valid", ders(future, mid.Cert), anchors, "", nil, &fakeRev{}, "", false, "is not valid before 2026-06-01T13:00:00Z"},
		{"key usage", ders(encOnly, mid.Cert), anchors, "", nil, &fakeRev{}, "", false, "key usage does not allow digitalSignature"},
		{"issuer not CA", ders(underNotCA, notCA.Cert), anchors, "", nil, &fakeRev{}, "", false, `certificate "O=Test, CN=NotCA" is not a CA`},
		{"issuer no keyCertSign", ders(underNoSign, noSign.Cert), anchors, "", nil, &fakeRev{}, "", false, "does not allow keyCertSign"},
		{"intermediate expired", ders(underExpiredMid, expiredMid.Cert), anchors, "", nil, &fakeRev{}, "", false, `"O=Test, CN=OldMid" is expired or not yet valid`},
		{"leaf revoked", ders(leaf, mid.Cert), anchors, "", nil, &fakeRev{revoked: map[string]bool{"vpn1": true}}, "ca1", false, `certificate "O=Test, CN=vpn1": revoked (CRL of ca-profile ca1, serial ` + leaf.SerialNumber.Text(16)},
		{"intermediate revoked", ders(leaf, mid.Cert), anchors, "", nil, &fakeRev{revoked: map[string]bool{"Mid": true}}, "ca1", false, `certificate "O=Test, CN=Mid": revoked`},
		{"crl unavailable", ders(leaf, mid.Cert), anchors, "", nil, &fakeRev{unavailable: true}, "ca1", false, "CRL of ca-profile ca1"},
		{"crl unavailable open", ders(leaf, mid.Cert), []Anchor{{Profile: pOpen, CAs: []*x509.Certificate{root.Cert}}}, "", nil, &fakeRev{unavailable: true}, "ca1", true, ""},
		{"revocation disabled", ders(leaf, mid.Cert), []Anchor{{Profile: pOff, CAs: []*x509.Certificate{root.Cert}}}, "", nil, &fakeRev{revoked: map[string]bool{"vpn1": true}}, "ca1", false, ""},
		{"identity fqdn", ders(leaf, mid.Cert), anchors, "fqdn:other.example.net", nil, &fakeRev{}, "ca1", false, "does not match peer identity fqdn:other.example.net: no dNSName"},
		{"identity ip", ders(leaf, mid.Cert), anchors, "ipv4:192.0.2.9", nil, &fakeRev{}, "ca1", false, "no iPAddress 192.0.2.9"},
		{"identity dn", ders(leaf, mid.Cert), anchors, "dn:CN=vpn2,O=Test", nil, &fakeRev{}, "ca1", false, `subject is "O=Test, CN=vpn1"`},
		// Issue 14: a CA-issued CN="vpn, OU=Sales", O=Test is not CN=vpn,OU=Sales,O=Test.
		{"identity dn comma forgery", ders(forged, mid.Cert), anchors, "dn:CN=vpn,OU=Sales,O=Test", nil, &fakeRev{}, "ca1", false, `subject is "O=Test, CN=vpn\\, OU=Sales"`},
		{"identity dn comma forgery unordered", ders(forged, mid.Cert), anchors, "dn:O=Test,OU=Sales,CN=vpn", nil, &fakeRev{}, "ca1", false, `subject is`},
		{"identity dn escaped comma", ders(forged, mid.Cert), anchors, `dn:CN=vpn\, OU=Sales,O=Test`, nil, &fakeRev{}, "ca1", false, ""},
		{"identity dn real three RDNs", ders(realOU, mid.Cert), anchors, "dn:CN=vpn,OU=Sales,O=Test", nil, &fakeRev{}, "ca1", false, ""},
		{"identity dn unparsable", ders(leaf, mid.Cert), anchors, "dn:CN", nil, &fakeRev{}, "ca1", false, "bad distinguished name"},
		{"identity keyid", ders(leaf, mid.Cert), anchors, "key-id:abc", nil, &fakeRev{}, "ca1", false, "cannot be checked"},
		{"policy", ders(leaf, mid.Cert), anchors, "", []string{"1.2.3.4"}, &fakeRev{}, "ca1", false, "asserts none of the certificate-policy-oids 1.2.3.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Chain(context.Background(), tt.rev, Request{Chain: tt.chain, Anchors: tt.anchors, Identity: tt.identity, PolicyOIDs: tt.policies, Now: now})
			if res.RevocationSkipped != tt.wantSkipped {
				t.Errorf("RevocationSkipped = %v", res.RevocationSkipped)
			}
			if tt.wantErr != "" {
				if res.Valid || !strings.Contains(res.Reason, tt.wantErr) {
					t.Fatalf("valid=%v reason %q, want %q", res.Valid, res.Reason, tt.wantErr)
				}
				return
			}
			if !res.Valid {
				t.Fatalf("invalid: %s", res.Reason)
			}
			if res.CAProfile != tt.wantProfile {
				t.Errorf("profile %q, want %q", res.CAProfile, tt.wantProfile)
			}
		})
	}
}

func TestChainChecksEveryLevel(t *testing.T) {
	root := testpki.Root(t, "Root", testpki.Options{})
	mid := root.Intermediate(t, "Mid", testpki.Options{})
	leaf, _ := mid.Leaf(t, "vpn1", testpki.Options{})
	rev := &fakeRev{}
	res := Chain(context.Background(), rev, Request{Chain: ders(leaf, mid.Cert), Anchors: []Anchor{{Profile: &profile.Profile{Name: "p"}, CAs: []*x509.Certificate{root.Cert}}}, Now: testpki.Now})
	if !res.Valid || strings.Join(rev.checked, ",") != "vpn1<Mid,Mid<Root" {
		t.Errorf("valid=%v checked %v", res.Valid, rev.checked)
	}
	if len(res.Path) != 3 {
		t.Errorf("path length %d", len(res.Path))
	}
}

func TestPolicyMatch(t *testing.T) {
	c := &x509.Certificate{PolicyIdentifiers: []asn1.ObjectIdentifier{{1, 2, 3}}}
	if !hasPolicy(c, []string{"9.9", "1.2.3"}) || hasPolicy(c, []string{"1.2"}) {
		t.Error("hasPolicy")
	}
}

func BenchmarkChain(b *testing.B) {
	root := testpki.Root(b, "Root", testpki.Options{})
	mid := root.Intermediate(b, "Mid", testpki.Options{})
	leaf, _ := mid.Leaf(b, "vpn1", testpki.Options{DNSNames: []string{"vpn1"}})
	req := Request{Chain: ders(leaf, mid.Cert), Anchors: []Anchor{{Profile: &profile.Profile{Name: "p"}, CAs: []*x509.Certificate{root.Cert}}}, Identity: "fqdn:vpn1", Now: testpki.Now}
	rev := &fakeRev{}
	for b.Loop() {
		rev.checked = rev.checked[:0]
		if res := Chain(context.Background(), rev, req); !res.Valid {
			b.Fatal(res.Reason)
		}
	}
}
