package dn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

// certSubject issues a real self-signed certificate with subject n and
// returns its parsed RawSubject, as kmd and pkid see a peer's.
func certSubject(t testing.TB, n pkix.Name) (Name, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: n, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	name, err := ParseDER(c.RawSubject)
	if err != nil {
		t.Fatalf("ParseDER(subject of %v): %v", n, err)
	}
	return name, c.RawSubject
}

func mustParse(t testing.TB, s string) Name {
	t.Helper()
	n, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return n
}

// The forgery of issue 14 item 2: a CA-issued certificate whose CN
// contains ", OU=Sales" must not pass as CN=vpn,OU=Sales,O=Test.
func TestCommaInValueIsNotASeparator(t *testing.T) {
	forged, _ := certSubject(t, pkix.Name{CommonName: "vpn, OU=Sales", Organization: []string{"Test"}})
	real, _ := certSubject(t, pkix.Name{CommonName: "vpn", OrganizationalUnit: []string{"Sales"}, Organization: []string{"Test"}})
	want := mustParse(t, "CN=vpn,OU=Sales,O=Test")
	if EqualEitherOrder(want, forged) || Equal(want, forged) {
		t.Errorf("forged subject %s equals %s", forged, want)
	}
	if !EqualEitherOrder(want, real) {
		t.Errorf("real subject %s does not equal %s", real, want)
	}
	if forged.Matches(mustParse(t, "OU=Sales")) || forged.Matches(mustParse(t, "OU=*")) {
		t.Errorf("forged subject %s contains OU=Sales", forged)
	}
	if !real.Matches(mustParse(t, "OU=Sales")) || !real.Matches(mustParse(t, "CN=*, O=test")) {
		t.Errorf("real subject %s does not contain OU=Sales", real)
	}
	// Rendered by RFC 4514 the comma is escaped, and the rendering parses
	// back to the same structure.
	if s := forged.String(); s != `CN=vpn\, OU=Sales,O=Test` {
		t.Errorf("String() = %s", s)
	}
	if back := mustParse(t, forged.String()); !Equal(back, forged) {
		t.Errorf("%s does not round-trip", forged)
	}
	if !Equal(mustParse(t, `CN=vpn\2C OU=Sales,O=Test`), forged) || !Equal(mustParse(t, `CN="vpn, OU=Sales", O=Test`), forged) {
		t.Error("escaped and quoted forms of the comma differ")
	}
}

func TestEqual(t *testing.T) {
	subj, _ := certSubject(t, pkix.Name{
		Country: []string{"US"}, Organization: []string{"Example Corp"}, OrganizationalUnit: []string{"VPN"},
		CommonName: "gw1.example.net",
	})
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"CN=gw1.example.net,OU=VPN,O=Example Corp,C=US", true},
		{"cn=GW1.example.NET, ou=vpn , o=example   corp,c=us", true}, // RFC 4518 case and space
		{"C=US, O=Example Corp, OU=VPN, CN=gw1.example.net", true},   // certificate order
		{"2.5.4.3=gw1.example.net,OU=VPN,O=Example Corp,C=US", true}, // numeric OID
		{"commonName=gw1.example.net,OU=VPN,O=Example Corp,C=US", true},
		{"CN=#0c0f6777312e6578616d706c652e6e6574,OU=VPN,O=Example Corp,C=US", true}, // hex UTF8String
		{"CN=gw1.example.net,OU=VPN,O=Example Corp", false},                         // one RDN fewer
		{"CN=gw1.example.net,OU=VPN,O=Example Corp,C=US,DC=x", false},
		{"CN=gw1.example.net+OU=VPN,O=Example Corp,C=US", false}, // multi-valued is not two RDNs
		{"CN=gw1.example.net,OU=VPN,C=US,O=Example Corp", false}, // order matters otherwise
		{"L=gw1.example.net,OU=VPN,O=Example Corp,C=US", false},  // type matters
		{"CN=gw1.example.ne,OU=VPN,O=Example Corp,C=US", false},
	} {
		if got := EqualEitherOrder(mustParse(t, tt.s), subj); got != tt.want {
			t.Errorf("EqualEitherOrder(%q, %s) = %v", tt.s, subj, got)
		}
	}
}

// A multi-valued RDN is a set (RFC 4512 section 2.3.1).
func TestMultiValuedRDN(t *testing.T) {
	cn, ou := asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.ObjectIdentifier{2, 5, 4, 11}
	rdns := pkix.RDNSequence{
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 10}, Value: "Test"}},
		{{Type: ou, Value: "Sales"}, {Type: cn, Value: "vpn"}},
	}
	subj, _ := certSubject(t, pkix.Name{ExtraNames: rdnsToNames(rdns)})
	// x509 puts ExtraNames one per RDN; build the multi-valued one by DER.
	der, err := asn1.Marshal(rdns)
	if err != nil {
		t.Fatal(err)
	}
	mv, err := ParseDER(der)
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(mustParse(t, "CN=vpn+OU=Sales,O=Test"), mv) || !Equal(mustParse(t, "OU=sales + CN=VPN, O=Test"), mv) {
		t.Errorf("multi-valued RDN %s: order inside the RDN matters", mv)
	}
	if Equal(subj, mv) || Equal(mustParse(t, "CN=vpn,OU=Sales,O=Test"), mv) {
		t.Errorf("multi-valued RDN %s equals three single RDNs", mv)
	}
	if !mv.Matches(mustParse(t, "CN=*+OU=Sales")) || mv.Matches(mustParse(t, "CN=vpn")) {
		t.Errorf("Matches on the multi-valued RDN %s", mv)
	}
}

func rdnsToNames(rdns pkix.RDNSequence) []pkix.AttributeTypeAndValue {
	var out []pkix.AttributeTypeAndValue
	for _, r := range rdns {
		out = append(out, r...)
	}
	return out
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{
		"CN", "CN=a,O", "=a", "XX=a", "CN=a\\", `CN=a\x`, `CN=a\4`, `CN="a`, "CN=#zz", "CN=#0c05",
		"CN=a<b", "1.2..3=a", "CN=\xff", "CN=a,,O=b",
	} {
		if n, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", s, n)
		}
	}
	if n, err := Parse(""); err != nil || len(n) != 0 {
		t.Errorf("Parse(\"\") = %v, %v", n, err)
	}
}

func TestParseDERErrors(t *testing.T) {
	_, good := certSubject(t, pkix.Name{CommonName: "x"})
	for i := range good {
		if _, err := ParseDER(good[:i]); err == nil {
			t.Errorf("truncation to %d bytes parsed", i)
		}
	}
	if _, err := ParseDER(append(append([]byte{}, good...), 0)); err == nil {
		t.Error("trailing byte parsed")
	}
	empty, _ := asn1.Marshal(pkix.RDNSequence{{}})
	if _, err := ParseDER(empty); err == nil {
		t.Error("an empty RDN parsed")
	}
}

// Values of non-string type render as #hex and compare by DER.
func TestRawValue(t *testing.T) {
	rdns := pkix.RDNSequence{{{Type: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: 42}}}
	der, _ := asn1.Marshal(rdns)
	n, err := ParseDER(der)
	if err != nil {
		t.Fatal(err)
	}
	if s := n.String(); s != "1.2.3.4=#02012a" {
		t.Errorf("String() = %s", s)
	}
	if !Equal(mustParse(t, n.String()), n) || Equal(mustParse(t, "1.2.3.4=42"), n) {
		t.Error("a raw value compares as a string")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`CN=vpn\, OU=Sales,O=Test`, `CN="a,b"+OU=c;O=#0c0161`, "cn= a  b ,dc=x", `UID=\00\ \#`, "1.2.3=#02012a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		back, err := Parse(n.String())
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, n.String(), err)
		}
		if !Equal(back, n) {
			t.Fatalf("%q: %q parses to %v, not %v", s, n.String(), back, n)
		}
	})
}

func FuzzParseDER(f *testing.F) {
	for _, n := range []pkix.Name{{CommonName: "vpn, OU=Sales", Organization: []string{"Test"}}, {Country: []string{"US"}, SerialNumber: "1"}} {
		_, der := certSubject(f, n)
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		n, err := ParseDER(der)
		if err != nil {
			return
		}
		back, err := Parse(n.String())
		if err != nil {
			t.Fatalf("%x renders as %q, which does not parse: %v", der, n.String(), err)
		}
		if !Equal(back, n) {
			t.Fatalf("%x renders as %q, which parses to %v, not %v", der, n.String(), back, n)
		}
	})
}
