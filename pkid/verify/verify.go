// Package verify validates a peer's certificate chain against a service
// set's trusted-ca (RFC 5280 section 6, RFC 4945 section 5) and says
// precisely why it fails: validity, path, key usage, revocation, identity.
package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/sitesec/sitesec/pkid/csr"
	"github.com/sitesec/sitesec/pkid/profile"
	"github.com/sitesec/sitesec/services/dn"
)

// MaxChain bounds the certificates a peer may send.
const MaxChain = 10

// Revocation checks one certificate against its issuer's CRL; crl.Cache
// implements it.
type Revocation interface {
	Check(ctx context.Context, p *profile.Profile, ca, cert *x509.Certificate) (skipped bool, err error)
}

// Anchor is one trusted ca-profile with its CA certificates.
type Anchor struct {
	Profile *profile.Profile
	CAs     []*x509.Certificate
}

// Request is one validation.
type Request struct {
	// Chain is DER, end entity first.
	Chain [][]byte
	// Anchors are tried in order; the first that validates wins.
	Anchors []Anchor
	// Identity is "fqdn:NAME", "ipv4:ADDR", "ipv6:ADDR", "email:ADDR",
	// "dn:DN", or empty to skip the identity check.
	Identity string
	// PolicyOIDs: when set, the end entity must assert one of them.
	PolicyOIDs []string
	Now        time.Time
}

// Result is the outcome. Reason is empty when Valid.
type Result struct {
	Valid     bool
	Reason    string
	Leaf      *x509.Certificate
	Path      []*x509.Certificate // end entity to anchor
	CAProfile string
	// RevocationSkipped names the profiles whose CRL could not be had and
	// whose `disable on-download-failure` let the chain through.
	RevocationSkipped bool
}

func fail(format string, args ...any) *Result {
	return &Result{Reason: fmt.Sprintf(format, args...)}
}

// Chain validates r. It never returns nil.
func Chain(ctx context.Context, rev Revocation, r Request) *Result {
	if len(r.Chain) == 0 {
		return fail("no certificate")
	}
	if len(r.Chain) > MaxChain {
		return fail("%d certificates in the chain, at most %d accepted", len(r.Chain), MaxChain)
	}
	certs := make([]*x509.Certificate, 0, len(r.Chain))
	for i, der := range r.Chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fail("certificate %d is malformed: %v", i+1, err)
		}
		certs = append(certs, c)
	}
	leaf := certs[0]
	name := csr.FormatDN(leaf.Subject)
	res := &Result{Leaf: leaf}
	reason := func(format string, args ...any) *Result {
		res.Reason = fmt.Sprintf(format, args...)
		return res
	}
	if len(r.Anchors) == 0 {
		return reason("no trusted-ca with a CA certificate loaded")
	}
	// RFC 5280 section 6.1.3 (a)(2): validity, reported for the end entity
	// before path building so the reason names it.
	if r.Now.Before(leaf.NotBefore) {
		return reason("certificate %q is not valid before %s", name, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if r.Now.After(leaf.NotAfter) {
		return reason("certificate %q expired at %s", name, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	// RFC 4945 section 5.1.3.2: if keyUsage is present, digitalSignature or
	// nonRepudiation must be set to sign IKE AUTH.
	if leaf.KeyUsage != 0 && leaf.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return reason("certificate %q key usage does not allow digitalSignature", name)
	}
	if leaf.IsCA && leaf.BasicConstraintsValid && len(certs) > 1 {
		return reason("certificate %q is a CA certificate, not an end entity", name)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	var pathErrs []string
	for _, a := range r.Anchors {
		if len(a.CAs) == 0 {
			pathErrs = append(pathErrs, fmt.Sprintf("ca-profile %s has no CA certificate", a.Profile.Name))
			continue
		}
		roots := x509.NewCertPool()
		for _, c := range a.CAs {
			roots.AddCert(c)
		}
		// RFC 4945 section 5.1.3.12: extended key usage is not enforced.
		chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: r.Now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			pathErrs = append(pathErrs, fmt.Sprintf("ca-profile %s: %s", a.Profile.Name, explain(err, leaf, certs[1:], a.CAs)))
			continue
		}
		path := chains[0]
		for _, c := range path[1:] {
			if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0 {
				return reason("CA certificate %q key usage does not allow keyCertSign", csr.FormatDN(c.Subject))
			}
		}
		res.Path = path
		res.CAProfile = a.Profile.Name
		// RFC 5280 section 6.3: every certificate below the anchor.
		for i := 0; i+1 < len(path); i++ {
			skipped, err := rev.Check(ctx, a.Profile, path[i+1], path[i])
			if skipped {
				res.RevocationSkipped = true
			}
			if err != nil {
				return reason("certificate %q: %v", csr.FormatDN(path[i].Subject), err)
			}
		}
		if len(r.PolicyOIDs) > 0 && !hasPolicy(leaf, r.PolicyOIDs) {
			return reason("certificate %q asserts none of the certificate-policy-oids %s", name, strings.Join(r.PolicyOIDs, ", "))
		}
		if err := matchIdentity(leaf, r.Identity); err != nil {
			return reason("certificate %q does not match peer identity %s: %v", name, r.Identity, err)
		}
		res.Valid = true
		return res
	}
	return reason("no path to trusted-ca (%s)", strings.Join(pathErrs, "; "))
}

// explain turns a crypto/x509 verification error into an operator's words.
func explain(err error, leaf *x509.Certificate, inter, anchors []*x509.Certificate) string {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		subj := csr.FormatDN(inv.Cert.Subject)
		switch inv.Reason {
		case x509.Expired:
			return fmt.Sprintf("certificate %q is expired or not yet valid (%s to %s)", subj,
				inv.Cert.NotBefore.UTC().Format(time.RFC3339), inv.Cert.NotAfter.UTC().Format(time.RFC3339))
		case x509.NotAuthorizedToSign:
			return fmt.Sprintf("certificate %q is not a CA (basic constraints)", subj)
		case x509.TooManyIntermediates:
			return fmt.Sprintf("path length constraint of %q exceeded", subj)
		case x509.IncompatibleUsage:
			return fmt.Sprintf("certificate %q has an incompatible key usage", subj)
		case x509.CANotAuthorizedForThisName:
			return fmt.Sprintf("name constraints of %q forbid this certificate", subj)
		}
		return inv.Error()
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		if why := diagnose(leaf, inter, anchors); why != "" {
			return why
		}
		if ua.Cert != nil {
			return fmt.Sprintf("issuer %q of %q is not trusted", csr.FormatDN(ua.Cert.Issuer), csr.FormatDN(ua.Cert.Subject))
		}
		return "issuer not trusted"
	}
	return err.Error()
}

// diagnose walks up from leaf by issuer name to say why crypto/x509 found
// no path: an issuer that is not a CA, lacks keyCertSign, or whose
// signature does not verify. It returns "" when it finds nothing better
// than "not trusted".
func diagnose(leaf *x509.Certificate, inter, anchors []*x509.Certificate) string {
	cur := leaf
	for depth := 0; depth < 10; depth++ {
		var cands []*x509.Certificate
		for _, c := range append(append([]*x509.Certificate(nil), anchors...), inter...) {
			if c != cur && bytes.Equal(c.RawSubject, cur.RawIssuer) {
				cands = append(cands, c)
			}
		}
		if len(cands) == 0 {
			return ""
		}
		var why string
		var next *x509.Certificate
		for _, c := range cands {
			err := cur.CheckSignatureFrom(c)
			if err == nil {
				next = c
				break
			}
			subj := csr.FormatDN(c.Subject)
			switch {
			case c.Version == 3 && !c.BasicConstraintsValid || c.BasicConstraintsValid && !c.IsCA:
				why = fmt.Sprintf("certificate %q is not a CA (basic constraints)", subj)
			case c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0:
				why = fmt.Sprintf("CA certificate %q key usage does not allow keyCertSign", subj)
			default:
				why = fmt.Sprintf("signature of %q does not verify with the key of %q", csr.FormatDN(cur.Subject), subj)
			}
		}
		if next == nil {
			return why
		}
		if slices.Contains(anchors, next) {
			return ""
		}
		cur = next
	}
	return ""
}

func hasPolicy(c *x509.Certificate, oids []string) bool {
	for _, p := range c.PolicyIdentifiers {
		if slices.Contains(oids, p.String()) {
			return true
		}
	}
	return false
}

// matchIdentity checks the IKE identity against the certificate (RFC 4945
// section 3.1): FQDN and addresses against subjectAltName, DN against the
// subject.
func matchIdentity(c *x509.Certificate, id string) error {
	if id == "" {
		return nil
	}
	kind, v, ok := strings.Cut(id, ":")
	if !ok {
		return fmt.Errorf("identity %q has no type", id)
	}
	switch kind {
	case "fqdn":
		for _, d := range c.DNSNames {
			if strings.EqualFold(d, v) {
				return nil
			}
		}
		return fmt.Errorf("no dNSName %s in subjectAltName %v", v, c.DNSNames)
	case "ipv4", "ipv6":
		ip := net.ParseIP(v)
		if ip == nil {
			return fmt.Errorf("bad address %q", v)
		}
		for _, a := range c.IPAddresses {
			if a.Equal(ip) {
				return nil
			}
		}
		return fmt.Errorf("no iPAddress %s in subjectAltName", v)
	case "email", "user-fqdn":
		for _, e := range c.EmailAddresses {
			if strings.EqualFold(e, v) {
				return nil
			}
		}
		return fmt.Errorf("no rfc822Name %s in subjectAltName", v)
	case "dn":
		// Structurally (RFC 5280 section 7.1, services/dn): the
		// identity is an RFC 4514 string whose escaped commas stay
		// inside their value (issue 14).
		want, err := dn.Parse(v)
		if err != nil || len(want) == 0 {
			return fmt.Errorf("bad distinguished name %q: %v", v, err)
		}
		have, err := dn.ParseDER(c.RawSubject)
		if err == nil && dn.EqualEitherOrder(want, have) {
			return nil
		}
		return fmt.Errorf("subject is %q", csr.FormatDN(c.Subject))
	}
	return fmt.Errorf("identity type %q cannot be checked against a certificate", kind)
}
