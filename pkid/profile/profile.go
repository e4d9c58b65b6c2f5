// Package profile turns the committed `security pki` configuration (SPEC
// section 1) into the CA profiles, trusted-ca-groups and auto-re-enrollment
// entries pkid works with, with Junos defaults filled in.
package profile

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
)

// Revocation is a profile's revocation-check.
type Revocation int

const (
	// UseCRL is the default: CRL checking is on (SPEC section 3, pkid 1).
	UseCRL Revocation = iota
	// UseOCSP asks the OCSP responder first and falls back to the CRL
	// when no responder answers.
	UseOCSP
	// Disable turns revocation checking off.
	Disable
)

// Defaults (SPEC section 1 and 5).
const (
	DefaultRetry           = 1000
	DefaultRetryInterval   = 600 * time.Second
	DefaultRefreshInterval = 24 * time.Hour
	DefaultTriggerPercent  = 60
)

// Profile is one `security pki ca-profile`.
type Profile struct {
	Name          string
	CAIdentity    string
	EnrollmentURL string
	Retry         int
	RetryInterval time.Duration
	Revocation    Revocation
	// CRLURL overrides the certificates' CRL distribution points.
	CRLURL          string
	CRLPassword     string
	RefreshInterval time.Duration
	// DisableOnDownloadFailure: when no CRL can be had, accept certificates
	// instead of failing them.
	DisableOnDownloadFailure bool
	// OCSPURLs override the certificates' AIA OCSP servers.
	OCSPURLs []string
}

// AutoReEnroll is one `auto-re-enrollment scep certificate-id` entry.
type AutoReEnroll struct {
	Protocol          string
	CertificateID     string
	CAProfile         string
	TriggerPercent    int
	RegenerateKeypair bool
	ChallengePassword string
	// SCEPEncryption is "des" or "des3" (the default).
	SCEPEncryption string
	// SCEPDigest is "md5" or "sha1" (the default).
	SCEPDigest string
}

// Set is the whole PKI configuration.
type Set struct {
	Profiles map[string]*Profile
	Groups   map[string][]string
	Enroll   map[string]*AutoReEnroll
}

// CheckName reports whether name is a valid ca-profile name (SPEC section
// 2, rule 28): 1..32 characters, no '/', '%', '.' or space.
func CheckName(name string) error {
	if name == "" || len(name) > 32 {
		return fmt.Errorf("profile: ca-profile name %q must be 1 to 32 characters", name)
	}
	if strings.ContainsAny(name, "/%. \t") {
		return fmt.Errorf("profile: ca-profile name %q must not contain '/', '%%', '.' or a space", name)
	}
	return nil
}

// FromConfig converts the configuration. nil gives an empty Set. Every
// error names the statement it is about.
func FromConfig(c *pb.PKI) (*Set, error) {
	s := &Set{Profiles: map[string]*Profile{}, Groups: map[string][]string{}, Enroll: map[string]*AutoReEnroll{}}
	if c == nil {
		return s, nil
	}
	for _, cp := range c.GetCaProfiles() {
		at := "[edit security pki ca-profile " + cp.GetName() + "]"
		if err := CheckName(cp.GetName()); err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		if _, dup := s.Profiles[cp.GetName()]; dup {
			return nil, fmt.Errorf("%s: duplicate ca-profile", at)
		}
		p := &Profile{
			Name:                     cp.GetName(),
			CAIdentity:               cp.GetCaIdentity(),
			EnrollmentURL:            cp.GetEnrollmentUrl(),
			Retry:                    DefaultRetry,
			RetryInterval:            DefaultRetryInterval,
			CRLURL:                   cp.GetCrlUrl(),
			CRLPassword:              cp.GetCrlPassword(),
			RefreshInterval:          DefaultRefreshInterval,
			DisableOnDownloadFailure: cp.GetCrlDisableOnDownloadFailure(),
			OCSPURLs:                 cp.GetOcspUrls(),
		}
		if p.CAIdentity == "" {
			p.CAIdentity = p.Name
		}
		if cp.EnrollmentRetry != nil {
			if cp.GetEnrollmentRetry() > 1080 {
				return nil, fmt.Errorf("%s enrollment retry: %d is not within 0..1080", at, cp.GetEnrollmentRetry())
			}
			p.Retry = int(cp.GetEnrollmentRetry())
		}
		if cp.EnrollmentRetryInterval != nil {
			if cp.GetEnrollmentRetryInterval() > 3600 {
				return nil, fmt.Errorf("%s enrollment retry-interval: %d is not within 0..3600", at, cp.GetEnrollmentRetryInterval())
			}
			p.RetryInterval = time.Duration(cp.GetEnrollmentRetryInterval()) * time.Second
		}
		if cp.CrlRefreshIntervalHours != nil {
			if cp.GetCrlRefreshIntervalHours() > 8784 {
				return nil, fmt.Errorf("%s revocation-check crl refresh-interval: %d is not within 0..8784", at, cp.GetCrlRefreshIntervalHours())
			}
			// 0 means fetch only at start and on demand.
			p.RefreshInterval = time.Duration(cp.GetCrlRefreshIntervalHours()) * time.Hour
		}
		switch cp.GetRevocationCheck() {
		case pb.RevocationCheck_REVOCATION_CHECK_UNSPECIFIED, pb.RevocationCheck_REVOCATION_CHECK_USE_CRL:
			p.Revocation = UseCRL
		case pb.RevocationCheck_REVOCATION_CHECK_USE_OCSP:
			p.Revocation = UseOCSP
		case pb.RevocationCheck_REVOCATION_CHECK_DISABLE:
			p.Revocation = Disable
		}
		for _, u := range []struct{ stmt, v string }{{"enrollment url", p.EnrollmentURL}, {"revocation-check crl url", p.CRLURL}} {
			if u.v == "" {
				continue
			}
			pu, err := url.Parse(u.v)
			if err != nil || pu.Host == "" && pu.Scheme != "ldap" {
				return nil, fmt.Errorf("%s %s: %q is not a URL", at, u.stmt, u.v)
			}
			switch pu.Scheme {
			case "http", "https", "ldap", "ldaps":
			default:
				return nil, fmt.Errorf("%s %s: scheme %q not supported (http, https, ldap)", at, u.stmt, pu.Scheme)
			}
		}
		s.Profiles[p.Name] = p
	}
	for _, g := range c.GetTrustedCaGroups() {
		at := "[edit security pki trusted-ca-group " + g.GetName() + "]"
		if len(g.GetCaProfiles()) > 20 {
			return nil, fmt.Errorf("%s: at most 20 ca-profiles", at)
		}
		for _, n := range g.GetCaProfiles() {
			if s.Profiles[n] == nil {
				return nil, fmt.Errorf("%s ca-profiles: %q is not a ca-profile", at, n)
			}
		}
		s.Groups[g.GetName()] = append([]string(nil), g.GetCaProfiles()...)
	}
	for _, a := range c.GetAutoReEnrollment() {
		at := "[edit security pki auto-re-enrollment " + a.GetProtocol() + " certificate-id " + a.GetCertificateId() + "]"
		proto := a.GetProtocol()
		if proto == "" {
			proto = "scep"
		}
		if proto != "scep" {
			return nil, fmt.Errorf("%s: only scep re-enrollment is supported", at)
		}
		if s.Profiles[a.GetCaProfileName()] == nil {
			return nil, fmt.Errorf("%s ca-profile-name: %q is not a ca-profile", at, a.GetCaProfileName())
		}
		e := &AutoReEnroll{
			Protocol:          proto,
			CertificateID:     a.GetCertificateId(),
			CAProfile:         a.GetCaProfileName(),
			TriggerPercent:    DefaultTriggerPercent,
			RegenerateKeypair: a.GetReGenerateKeypair(),
			ChallengePassword: a.GetChallengePassword(),
			SCEPEncryption:    a.GetScepEncryptionAlgorithm(),
			SCEPDigest:        a.GetScepDigestAlgorithm(),
		}
		if a.ReEnrollTriggerTimePercentage != nil {
			pct := a.GetReEnrollTriggerTimePercentage()
			if pct < 1 || pct > 99 {
				return nil, fmt.Errorf("%s re-enroll-trigger-time-percentage: %d is not within 1..99", at, pct)
			}
			e.TriggerPercent = int(pct)
		}
		if e.SCEPEncryption == "" {
			e.SCEPEncryption = "des3"
		}
		if e.SCEPDigest == "" {
			e.SCEPDigest = "sha1"
		}
		s.Enroll[e.CertificateID] = e
	}
	return s, nil
}

// Resolve expands trusted-ca names (ca-profiles or trusted-ca-groups) into
// ca-profile names, without duplicates, in order. An empty list means every
// profile, sorted.
func (s *Set) Resolve(names []string) ([]string, error) {
	if len(names) == 0 {
		all := make([]string, 0, len(s.Profiles))
		for n := range s.Profiles {
			all = append(all, n)
		}
		sort.Strings(all)
		return all, nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, n := range names {
		switch {
		case s.Profiles[n] != nil:
			add(n)
		case s.Groups[n] != nil:
			for _, m := range s.Groups[n] {
				add(m)
			}
		default:
			return nil, fmt.Errorf("profile: trusted-ca %q is neither a ca-profile nor a trusted-ca-group", n)
		}
	}
	return out, nil
}
