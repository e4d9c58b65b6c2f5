package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/proto/pb"
)

// subjectID issues a real certificate for subject and returns the
// ID_DER_ASN1_DN a peer holding it sends (its RawSubject, RFC 7296
// section 3.5).
func subjectID(t *testing.T, subject pkix.Name) *message.ID {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: subject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &message.ID{IDType: message.IDDERASN1DN, Data: c.RawSubject}
}

// Issue 14 item 2: remote-id distinguished-name compares parsed RDNs, so
// a certificate with CN="vpn, OU=Sales", O=Test is not CN=vpn,OU=Sales,O=Test.
func TestRemoteIDDistinguishedName(t *testing.T) {
	forged := subjectID(t, pkix.Name{CommonName: "vpn, OU=Sales", Organization: []string{"Test"}})
	real := subjectID(t, pkix.Name{CommonName: "vpn", OrganizationalUnit: []string{"Sales"}, Organization: []string{"Test"}})
	other := subjectID(t, pkix.Name{CommonName: "vpn", OrganizationalUnit: []string{"Sales"}, Organization: []string{"Other"}})
	for _, tt := range []struct {
		want                 *pb.DistinguishedName
		forged, real, others bool
	}{
		{&pb.DistinguishedName{Name: "CN=vpn,OU=Sales,O=Test"}, false, true, false},
		{&pb.DistinguishedName{Name: "o=test, ou=SALES, cn=VPN"}, false, true, false},
		{&pb.DistinguishedName{Name: `CN=vpn\, OU=Sales,O=Test`}, true, false, false},
		{&pb.DistinguishedName{Container: "OU=Sales, O=Test"}, false, true, false},
		{&pb.DistinguishedName{Container: "OU=Sales"}, false, true, true},
		{&pb.DistinguishedName{Wildcard: "CN=*, OU=Sales, O=Test"}, false, true, false},
		{&pb.DistinguishedName{Wildcard: "OU=*"}, false, true, true},
		{&pb.DistinguishedName{Wildcard: "CN=*, O=Test"}, true, true, false},
	} {
		m, err := remoteID(&pb.RemoteIdentity{DistinguishedName: tt.want})
		if err != nil {
			t.Fatalf("%v: %v", tt.want, err)
		}
		if got := m(forged); got != tt.forged {
			t.Errorf("%v matches CN=\"vpn, OU=Sales\",O=Test: %v", tt.want, got)
		}
		if got := m(real); got != tt.real {
			t.Errorf("%v matches CN=vpn,OU=Sales,O=Test: %v", tt.want, got)
		}
		if got := m(other); got != tt.others {
			t.Errorf("%v matches CN=vpn,OU=Sales,O=Other: %v", tt.want, got)
		}
		if m(&message.ID{IDType: message.IDDERASN1DN, Data: []byte{0x30, 0x03, 0x31, 0x01}}) {
			t.Errorf("%v matches a malformed DN", tt.want)
		}
	}
	// What kmd asks pkid to check against the certificate keeps the comma
	// inside the CN.
	if got := identity(forged); got != `dn:CN=vpn\, OU=Sales,O=Test` {
		t.Errorf("identity = %s", got)
	}
	if got := identity(real); got != "dn:CN=vpn,OU=Sales,O=Test" {
		t.Errorf("identity = %s", got)
	}
	// A pattern that does not parse is refused at commit.
	for _, bad := range []*pb.DistinguishedName{{Name: "CN=a,O"}, {Container: `CN=a\`}, {Wildcard: "XX=*"}} {
		if _, err := remoteID(&pb.RemoteIdentity{DistinguishedName: bad}); err == nil || !strings.Contains(err.Error(), "distinguished-name") {
			t.Errorf("%v: err = %v", bad, err)
		}
	}
}
