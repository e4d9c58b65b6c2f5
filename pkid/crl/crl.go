// Package crl keeps the certificate revocation lists pkid checks
// certificates against (RFC 5280 sections 5 and 6.3).
//
// One CRL is kept per (ca-profile, issuing CA). It comes from the
// profile's `revocation-check crl url` when set, else from the
// certificate's CRL distribution point, over HTTP or LDAP. It is verified
// against the issuing CA, cached on disk under <dir>/<profile>-<issuer>.crl,
// reloaded at start, and refreshed every refresh-interval or when its
// nextUpdate has passed. When no usable CRL can be had, the check fails
// unless the profile says `disable on-download-failure`.
package crl

import (
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sitesec/sitesec/pkid/keystore"
	"github.com/sitesec/sitesec/pkid/profile"
)

// RetryAfterFailure is how long a failed download is remembered before
// the next validation tries again.
const RetryAfterFailure = time.Minute

// RevokedError says a certificate is on its issuer's CRL.
type RevokedError struct {
	Profile string
	Serial  *big.Int
	At      time.Time
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("revoked (CRL of ca-profile %s, serial %s, since %s)", e.Profile, SerialString(e.Serial), e.At.UTC().Format(time.RFC3339))
}

// UnavailableError says no usable CRL could be had.
type UnavailableError struct {
	Profile string
	Issuer  string
	Err     error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("CRL of ca-profile %s for %q unavailable: %v", e.Profile, e.Issuer, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// SerialString renders a serial number as Junos does: lower-case hex.
func SerialString(n *big.Int) string {
	if n == nil {
		return ""
	}
	return n.Text(16)
}

// Entry is one cached CRL.
type Entry struct {
	Profile     string
	Issuer      *x509.Certificate
	URL         string
	List        *x509.RevocationList
	Fetched     time.Time
	LastErr     error
	LastAttempt time.Time
	revoked     map[string]time.Time
}

// Status is "valid", "expired", or the last error.
func (e *Entry) Status(now time.Time) string {
	switch {
	case e.List == nil && e.LastErr != nil:
		return "download failed: " + e.LastErr.Error()
	case e.List == nil:
		return "not loaded"
	case !e.List.NextUpdate.IsZero() && now.After(e.List.NextUpdate):
		return "expired"
	case e.LastErr != nil:
		return "valid (last refresh failed: " + e.LastErr.Error() + ")"
	}
	return "valid"
}

// FetchFunc downloads a CRL and returns DER.
type FetchFunc func(ctx context.Context, url, password string) ([]byte, error)

// Cache is safe for concurrent use.
type Cache struct {
	Dir   string
	Now   func() time.Time
	Fetch FetchFunc
	// Traced, when set, hears of every download: its profile, URL, the
	// number of revoked entries and the error.
	Traced func(profile, url string, revoked int, err error)

	mu       sync.Mutex
	entries  map[string]*Entry
	inflight map[string]chan struct{}
}

// New returns a cache keeping its files in dir.
func New(dir string) *Cache {
	return &Cache{Dir: dir, Now: time.Now, Fetch: Fetch, entries: map[string]*Entry{}}
}

func issuerKey(profileName string, issuer *x509.Certificate) string {
	sum := sha1.Sum(issuer.RawSubjectPublicKeyInfo)
	return profileName + "-" + hex.EncodeToString(sum[:8])
}

// Restore loads the cached CRLs of a profile from disk, checking each
// against the profile's CA certificates. Call it at start and whenever a
// profile's CA certificates change.
func (c *Cache) Restore(profileName string, cas []*x509.Certificate) error {
	var errs []error
	for _, ca := range cas {
		key := issuerKey(profileName, ca)
		der, err := os.ReadFile(filepath.Join(c.Dir, key+".crl"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("crl: %w", err))
			continue
		}
		rl, err := parseAndCheck(der, ca)
		if err != nil {
			errs = append(errs, fmt.Errorf("crl: cached %s: %w", key, err))
			continue
		}
		fi, _ := os.Stat(filepath.Join(c.Dir, key+".crl"))
		c.mu.Lock()
		e := c.entry(profileName, ca)
		e.set(rl, fi.ModTime())
		c.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (c *Cache) entry(profileName string, ca *x509.Certificate) *Entry {
	key := issuerKey(profileName, ca)
	e := c.entries[key]
	if e == nil {
		e = &Entry{Profile: profileName, Issuer: ca}
		c.entries[key] = e
	}
	return e
}

func (e *Entry) set(rl *x509.RevocationList, at time.Time) (added []string) {
	old := e.revoked
	e.List = rl
	e.Fetched = at
	e.LastErr = nil
	e.revoked = make(map[string]time.Time, len(rl.RevokedCertificateEntries))
	for _, r := range rl.RevokedCertificateEntries {
		s := SerialString(r.SerialNumber)
		e.revoked[s] = r.RevocationTime
		if _, was := old[s]; !was {
			added = append(added, s)
		}
	}
	sort.Strings(added)
	return added
}

func parseAndCheck(der []byte, issuer *x509.Certificate) (*x509.RevocationList, error) {
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	// RFC 5280 section 6.3.3 (f): the CRL must be signed by the issuer.
	if err := rl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("not signed by %q: %w", issuer.Subject.String(), err)
	}
	return rl, nil
}

// Load installs a CRL given by the operator (request security pki crl
// load): DER or PEM, which must be signed by one of the profile's CA
// certificates. It returns the serials revoked since the previous CRL.
func (c *Cache) Load(profileName string, cas []*x509.Certificate, data []byte) ([]string, error) {
	der, err := toDER(data)
	if err != nil {
		return nil, err
	}
	var lastErr error = errors.New("crl: ca-profile has no CA certificate")
	for _, ca := range cas {
		rl, err := parseAndCheck(der, ca)
		if err != nil {
			lastErr = fmt.Errorf("crl: %w", err)
			continue
		}
		return c.install(profileName, ca, "", der, rl)
	}
	return nil, lastErr
}

func (c *Cache) install(profileName string, ca *x509.Certificate, url string, der []byte, rl *x509.RevocationList) ([]string, error) {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("crl: %w", err)
	}
	if err := keystore.WriteFile(filepath.Join(c.Dir, issuerKey(profileName, ca)+".crl"), der, 0o644); err != nil {
		return nil, fmt.Errorf("crl: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entry(profileName, ca)
	if url != "" {
		e.URL = url
	}
	return e.set(rl, c.Now()), nil
}

// urls lists where the CRL of cert's issuer may be had: the profile's URL
// overrides the distribution points (SPEC section 3, pkid 1).
func urls(p *profile.Profile, cert *x509.Certificate) []string {
	if p.CRLURL != "" {
		return []string{p.CRLURL}
	}
	if cert == nil {
		return nil
	}
	var out []string
	for _, u := range cert.CRLDistributionPoints {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "ldap://") || strings.HasPrefix(u, "ldaps://") {
			out = append(out, u)
		}
	}
	return out
}

// Update downloads the CRL of ca for profile p, from p's URL or the
// distribution points of cert (any certificate ca issued, or ca itself).
func (c *Cache) Update(ctx context.Context, p *profile.Profile, ca, cert *x509.Certificate) ([]string, error) {
	us := urls(p, cert)
	if len(us) == 0 {
		c.mu.Lock()
		if u := c.entry(p.Name, ca).URL; u != "" {
			us = []string{u}
		}
		c.mu.Unlock()
	}
	if len(us) == 0 && cert != ca {
		us = ca.CRLDistributionPoints
	}
	if len(us) == 0 {
		err := errors.New("no CRL url configured and no distribution point in the certificate")
		c.fail(p.Name, ca, "", err)
		return nil, err
	}
	var errs []error
	for _, u := range us {
		// The LDAP bind password goes only to the URL the operator
		// configured, never to one a certificate names (issue 14, low).
		pw := ""
		if p.CRLURL != "" && u == p.CRLURL {
			pw = p.CRLPassword
		}
		der, err := c.Fetch(ctx, u, pw)
		if err == nil {
			var rl *x509.RevocationList
			rl, err = parseAndCheck(der, ca)
			if err == nil {
				if c.Traced != nil {
					c.Traced(p.Name, u, len(rl.RevokedCertificateEntries), nil)
				}
				return c.install(p.Name, ca, u, der, rl)
			}
		}
		if c.Traced != nil {
			c.Traced(p.Name, u, 0, err)
		}
		err = fmt.Errorf("%s: %w", u, err)
		errs = append(errs, err)
		c.fail(p.Name, ca, u, err)
	}
	return nil, errors.Join(errs...)
}

func (c *Cache) fail(profileName string, ca *x509.Certificate, url string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entry(profileName, ca)
	if url != "" && e.URL == "" {
		e.URL = url
	}
	e.LastErr = err
	e.LastAttempt = c.Now()
}

// Track makes sure a CRL entry exists for ca in profile p, so that Due
// reports it until it is downloaded.
func (c *Cache) Track(profileName string, ca *x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entry(profileName, ca)
}

// Check tells whether cert, issued by ca (a certificate of profile p), is
// revoked. A missing or expired CRL is downloaded first. The result is nil
// (good, or checking disabled), a *RevokedError, or an *UnavailableError
// (only when p fails closed). skipped reports that the check was skipped
// because of `disable on-download-failure`.
func (c *Cache) Check(ctx context.Context, p *profile.Profile, ca, cert *x509.Certificate) (skipped bool, err error) {
	if p.Revocation == profile.Disable {
		return false, nil
	}
	now := c.Now()
	c.mu.Lock()
	e := c.entry(p.Name, ca)
	usable := e.List != nil && (e.List.NextUpdate.IsZero() || !now.After(e.List.NextUpdate))
	recentFail := e.LastErr != nil && now.Sub(e.LastAttempt) < RetryAfterFailure
	c.mu.Unlock()
	if !usable {
		var ferr error
		if recentFail {
			c.mu.Lock()
			ferr = e.LastErr
			c.mu.Unlock()
		} else {
			ferr = c.download(ctx, p, ca, cert, e)
		}
		if ferr != nil {
			if p.DisableOnDownloadFailure {
				return true, nil
			}
			return false, &UnavailableError{Profile: p.Name, Issuer: ca.Subject.String(), Err: ferr}
		}
	}
	c.mu.Lock()
	at, revoked := e.revoked[SerialString(cert.SerialNumber)]
	c.mu.Unlock()
	if revoked {
		return false, &RevokedError{Profile: p.Name, Serial: cert.SerialNumber, At: at}
	}
	return false, nil
}

// download fetches the CRL of ca once however many validations ask at the
// same time. The download is not tied to the caller: when the caller (kmd,
// with its short request deadline) gives up, it goes on, and the next
// validation finds the CRL in the cache.
func (c *Cache) download(ctx context.Context, p *profile.Profile, ca, cert *x509.Certificate, e *Entry) error {
	key := issuerKey(p.Name, ca)
	c.mu.Lock()
	if c.inflight == nil {
		c.inflight = map[string]chan struct{}{}
	}
	ch, busy := c.inflight[key]
	if !busy {
		ch = make(chan struct{})
		c.inflight[key] = ch
		go func() {
			defer close(ch)
			c.Update(context.WithoutCancel(ctx), p, ca, cert)
			c.mu.Lock()
			delete(c.inflight, key)
			c.mu.Unlock()
		}()
	}
	c.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return fmt.Errorf("download still in progress: %w", ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.List != nil && (e.List.NextUpdate.IsZero() || !c.Now().After(e.List.NextUpdate)) {
		return nil
	}
	if e.LastErr != nil {
		return e.LastErr
	}
	return errors.New("no usable CRL")
}

// Due lists the CRLs whose refresh-interval has elapsed or whose
// nextUpdate has passed, for the refresh loop. A refresh-interval of 0
// refreshes only on nextUpdate.
func (c *Cache) Due(profiles map[string]*profile.Profile) []*Entry {
	now := c.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var due []*Entry
	for _, e := range c.entries {
		p := profiles[e.Profile]
		if p == nil || p.Revocation == profile.Disable {
			continue
		}
		if e.LastErr != nil && now.Sub(e.LastAttempt) < RetryAfterFailure {
			continue
		}
		switch {
		case e.List == nil:
			due = append(due, e)
		case !e.List.NextUpdate.IsZero() && now.After(e.List.NextUpdate):
			due = append(due, e)
		case p.RefreshInterval > 0 && now.Sub(e.Fetched) >= p.RefreshInterval:
			due = append(due, e)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].Profile < due[j].Profile })
	return due
}

// Entries returns copies of the cached CRLs, sorted by profile.
func (c *Cache) Entries() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Entry, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Profile != out[j].Profile {
			return out[i].Profile < out[j].Profile
		}
		return out[i].Issuer.Subject.String() < out[j].Issuer.Subject.String()
	})
	return out
}

// Clear forgets the CRLs of a profile (all profiles when name is empty),
// in memory and on disk.
func (c *Cache) Clear(profileName string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, e := range c.entries {
		if profileName == "" || e.Profile == profileName {
			delete(c.entries, k)
			os.Remove(filepath.Join(c.Dir, k+".crl"))
			n++
		}
	}
	return n
}
