package cli

// Text of `show security pki (ca-certificate | local-certificate)
// [brief|detail]`, `show security pki certificate-request` and `show
// security pki crl` (SPEC section 4, PKI commands).
//
// Times: absolute, UTC, in the Junos PKI form "11-27-2026 21:15 UTC"
// (junosDate). now decides whether a certificate or CRL pkid did not
// already label is shown as expired or not yet valid.

import (
	"strings"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
)

// dnLabels are the words Junos uses for the attributes of a DN in the
// Issuer:/Subject: blocks of detail output, in the order it prints them.
// Attributes not listed follow in certificate order under their own name.
var dnLabels = []struct{ attr, label string }{
	{"O", "Organization"},
	{"OU", "Organizational unit"},
	{"C", "Country"},
	{"ST", "State"},
	{"L", "Locality"},
	{"CN", "Common name"},
	{"DC", "Domain component"},
	{"emailAddress", "Email address"},
	{"serialNumber", "Serial number"},
}

type dnAttr struct{ attr, value string }

// parseDN splits a DN as pkid formats it, "C=US, O=Example, CN=vpn1",
// into its attributes in order. A part with no '=' belonged to the value
// before it (a comma inside a value).
func parseDN(dn string) []dnAttr {
	var out []dnAttr
	for _, part := range strings.Split(dn, ", ") {
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || strings.ContainsAny(k, " ") || k == "" {
			if len(out) > 0 {
				out[len(out)-1].value += ", " + part
				continue
			}
			out = append(out, dnAttr{"", part})
			continue
		}
		out = append(out, dnAttr{k, v})
	}
	return out
}

// commonName is the CN of a DN, or the whole DN when it has none: what
// Junos shows after "Issued to:" and "Issued by:".
func commonName(dn string) string {
	for _, a := range parseDN(dn) {
		if strings.EqualFold(a.attr, "CN") {
			return a.value
		}
	}
	return dash(dn)
}

// dnWords prints a DN the Junos detail way: "Organization: Example,
// Country: US, Common name: vpn1".
func dnWords(dn string) string {
	attrs := parseDN(dn)
	used := make([]bool, len(attrs))
	var parts []string
	for _, l := range dnLabels {
		for i, a := range attrs {
			if !used[i] && strings.EqualFold(a.attr, l.attr) {
				used[i] = true
				parts = append(parts, l.label+": "+a.value)
			}
		}
	}
	for i, a := range attrs {
		if used[i] {
			continue
		}
		if a.attr == "" {
			parts = append(parts, a.value)
		} else {
			parts = append(parts, a.attr+": "+a.value)
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// alternateSubject prints the subjectAltName entries pkid sends
// ("email:a@b", "fqdn:x", "ipv4:a", "ipv6:a", "uri:u") the Junos way:
// `"a@b", x, a` with "email empty", "fqdn empty", "ip empty" for what
// is missing.
func alternateSubject(alt []string) string {
	var email, fqdn, ip, other []string
	for _, a := range alt {
		kind, v, ok := strings.Cut(a, ":")
		if !ok {
			other = append(other, a)
			continue
		}
		switch kind {
		case "email":
			email = append(email, `"`+v+`"`)
		case "fqdn":
			fqdn = append(fqdn, v)
		case "ipv4", "ipv6", "ip":
			ip = append(ip, v)
		default:
			other = append(other, a)
		}
	}
	part := func(vals []string, empty string) string {
		if len(vals) == 0 {
			return empty
		}
		return strings.Join(vals, ", ")
	}
	out := []string{part(email, "email empty"), part(fqdn, "fqdn empty"), part(ip, "ip empty")}
	return strings.Join(append(out, other...), ", ")
}

// certStatus is pkid's validity label, or one derived from now when pkid
// left it empty; "" for a valid certificate.
func certStatus(c *pb.PKICertificate, now time.Time) string {
	s := c.GetStatus()
	if s == "" {
		switch {
		case c.GetNotBeforeUnix() != 0 && now.Unix() < c.GetNotBeforeUnix():
			s = "not yet valid"
		case c.GetNotAfterUnix() != 0 && now.Unix() > c.GetNotAfterUnix():
			s = "expired"
		}
	}
	if s == "valid" {
		return ""
	}
	return s
}

// renderPKICertificates prints CA or local certificates.
//
// Brief:
//
//	Certificate identifier: vpn1
//	  Issued to: vpn1.example.net, Issued by: Example CA
//	  Validity:
//	    Not before: 11-27-2025 21:15 UTC
//	    Not after: 11-27-2026 21:15 UTC
//	  Public key algorithm: rsaEncryption(2048 bits)
//	  Keypair Location: Keypair generated locally
//
// Detail adds version, serial, the Issuer and Subject DNs, alternate
// subject, signature algorithm, CRL distribution points, key usage,
// fingerprints and (local certificates) auto-re-enrollment.
func renderPKICertificates(m *pb.PKICertificates, now time.Time) []string {
	if m.GetKind() == "services-certificates" {
		return renderServicesCertificates(m, now)
	}
	local := m.GetKind() != "ca-certificate"
	var l showLines
	for i, c := range m.GetCertificates() {
		if i > 0 {
			l.blank()
		}
		l.add("Certificate identifier: %s", dash(c.GetCertificateId()))
		if p := c.GetCaProfile(); p != "" && p != c.GetCertificateId() && m.GetDetail() {
			l.add("  CA profile: %s", p)
		}
		if !m.GetDetail() {
			l.add("  Issued to: %s, Issued by: %s", commonName(c.GetSubject()), commonName(c.GetIssuer()))
			addValidity(&l, c, now)
			l.add("  Public key algorithm: %s", dash(c.GetPublicKeyAlgorithm()))
			if local {
				// pkid only lists a local certificate whose key pair it
				// holds; key pairs are made by generate-key-pair or
				// loaded with the certificate, both into its key store.
				l.add("  Keypair Location: Keypair generated locally")
			}
			continue
		}
		if v := c.GetVersion(); v != 0 {
			l.add("  Certificate version: %d", v)
		}
		l.add("  Serial number: %s", dash(c.GetSerial()))
		l.add("  Issuer:")
		l.add("    %s", dnWords(c.GetIssuer()))
		l.add("  Subject:")
		l.add("    %s", dnWords(c.GetSubject()))
		l.add("  Subject string:")
		l.add("    %s", dash(c.GetSubject()))
		l.add("  Alternate subject: %s", alternateSubject(c.GetAlternateSubject()))
		addValidity(&l, c, now)
		l.add("  Public key algorithm: %s", dash(c.GetPublicKeyAlgorithm()))
		if local {
			l.add("  Keypair Location: Keypair generated locally")
		}
		l.add("  Signature algorithm: %s", dash(c.GetSignatureAlgorithm()))
		if d := c.GetDistributionCrl(); len(d) > 0 {
			l.add("  Distribution CRL:")
			for _, u := range d {
				l.add("    %s", u)
			}
		}
		if u := c.GetKeyUsage(); len(u) > 0 {
			l.add("  Use for key: %s", strings.Join(u, ", "))
		}
		addFingerprints(&l, c.GetFingerprintSha1(), c.GetFingerprintMd5())
		if local {
			a := c.GetAutoReEnrollment()
			if a == "" {
				a = "Disabled"
			}
			l.add("  Auto-re-enrollment: %s", a)
		}
	}
	return l
}

// addFingerprints prints the Fingerprint: block as Junos does, sha1 then
// md5, leaving out the digests pkid did not send (the SHA-256 one is in
// `| display json`).
func addFingerprints(l *showLines, sha1, md5 string) {
	if sha1 == "" && md5 == "" {
		return
	}
	l.add("  Fingerprint:")
	if sha1 != "" {
		l.add("    %s (sha1)", sha1)
	}
	if md5 != "" {
		l.add("    %s (md5)", md5)
	}
}

// renderServicesCertificates prints `show services ipsec-vpn
// certificates`: per service set, the certificates its IKE peers
// presented and pkid validated.
//
//	Service set: ss1, Total entries: 2
//	  Certificate cache entry: 1
//	    Flags: Non-root Trusted
//	    Issued to: vpn2.example.net, Issued by: Example CA
//	    Alternate subject: vpn2.example.net
//	    Validity:
//	      Not before: 11-27-2025 21:15 UTC
//	      Not after: 11-27-2026 21:15 UTC
func renderServicesCertificates(m *pb.PKICertificates, now time.Time) []string {
	var l showLines
	count := map[string]int{}
	for _, c := range m.GetCertificates() {
		count[c.GetServiceSet()]++
	}
	set := "\x00"
	for _, c := range m.GetCertificates() {
		if c.GetServiceSet() != set {
			if set != "\x00" {
				l.blank()
			}
			set = c.GetServiceSet()
			l.add("Service set: %s, Total entries: %d", dash(set), count[set])
		}
		l.add("  Certificate cache entry: %s", dash(c.GetCertificateId()))
		flags := "Non-root"
		if strings.HasPrefix(c.GetStatus(), "root") {
			flags = "Root"
		}
		l.add("    Flags: %s Trusted", flags)
		l.add("    Issued to: %s, Issued by: %s", commonName(c.GetSubject()), commonName(c.GetIssuer()))
		l.add("    Alternate subject: %s", alternateSubject(c.GetAlternateSubject()))
		l.add("    Validity:")
		l.add("      Not before: %s", junosDate(c.GetNotBeforeUnix()))
		l.add("      Not after: %s", junosDate(c.GetNotAfterUnix()))
		if m.GetDetail() {
			l.add("    Serial number: %s", dash(c.GetSerial()))
			l.add("    Public key algorithm: %s", dash(c.GetPublicKeyAlgorithm()))
			addFingerprints(&l, c.GetFingerprintSha1(), c.GetFingerprintMd5())
		}
	}
	return l
}

func addValidity(l *showLines, c *pb.PKICertificate, now time.Time) {
	l.add("  Validity:")
	l.add("    Not before: %s", junosDate(c.GetNotBeforeUnix()))
	l.add("    Not after: %s", junosDate(c.GetNotAfterUnix()))
	if s := certStatus(c, now); s != "" {
		l.add("    Status: %s", s)
	}
}

// renderPKICertificateRequests prints the certificate requests pkid holds:
//
//	Certificate identifier: vpn1
//	  Issued to: vpn1.example.net
//	  Subject string:
//	    CN=vpn1.example.net, O=Example
//	  Alternate subject: email empty, vpn1.example.net, 192.0.2.1
//	  Public key algorithm: rsaEncryption(2048 bits)
//	  Fingerprint:
//	    3c:...:9a (sha1)
//
// The PEM is in the JSON output only.
func renderPKICertificateRequests(m *pb.PKICertificateRequests, now time.Time) []string {
	var l showLines
	for i, r := range m.GetRequests() {
		if i > 0 {
			l.blank()
		}
		l.add("Certificate identifier: %s", dash(r.GetCertificateId()))
		l.add("  Issued to: %s", commonName(r.GetSubject()))
		l.add("  Subject string:")
		l.add("    %s", dash(r.GetSubject()))
		l.add("  Alternate subject: %s", alternateSubject(r.GetAlternateSubject()))
		l.add("  Public key algorithm: %s", dash(r.GetPublicKeyAlgorithm()))
		addFingerprints(&l, r.GetFingerprintSha1(), "")
	}
	return l
}

// renderPKICRLs prints the CRLs pkid holds, per CA profile:
//
//	CA profile: ca1
//	  CRL issuer: C=US, O=Example, CN=Example CA
//	  Effective date: 11-27-2025 21:15 UTC
//	  Next update: 12-04-2025 21:15 UTC
//	  Revoked certificates:
//	    Serial number: 1a2b
//
// followed by where it came from and whether it is usable.
func renderPKICRLs(m *pb.PKICRLs, now time.Time) []string {
	var l showLines
	for i, c := range m.GetCrls() {
		if i > 0 {
			l.blank()
		}
		l.add("CA profile: %s", dash(c.GetCaProfile()))
		l.add("  CRL issuer: %s", dash(c.GetIssuer()))
		l.add("  Effective date: %s", junosDate(c.GetThisUpdateUnix()))
		l.add("  Next update: %s", junosDate(c.GetNextUpdateUnix()))
		if r := c.GetRevokedSerials(); len(r) > 0 {
			l.add("  Revoked certificates:")
			for _, s := range r {
				l.add("    Serial number: %s", s)
			}
		} else {
			l.add("  Revoked certificates: none")
		}
		if u := c.GetUrl(); u != "" {
			l.add("  URL: %s", u)
		}
		if f := c.GetFetchedUnix(); f != 0 {
			l.add("  Downloaded: %s", junosDate(f))
		}
		status := c.GetStatus()
		if status == "" && c.GetNextUpdateUnix() != 0 && now.Unix() > c.GetNextUpdateUnix() {
			status = "expired"
		}
		if status != "" {
			l.add("  Status: %s", status)
		}
	}
	return l
}
