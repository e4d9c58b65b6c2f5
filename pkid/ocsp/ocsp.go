// Package ocsp checks certificates with an OCSP responder (RFC 6960) for
// ca-profiles with `revocation-check use-ocsp`: the profile's ocsp urls,
// else the certificate's AIA OCSP server. Good answers are cached until
// their nextUpdate.
package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
)

// MaxResponse bounds an OCSP response.
const MaxResponse = 64 << 10

// DefaultValidity is how long an answer without nextUpdate is reused.
const DefaultValidity = time.Hour

// RevokedError says the responder answered revoked.
type RevokedError struct {
	URL    string
	Serial string
	At     time.Time
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("revoked (OCSP %s, serial %s, since %s)", e.URL, e.Serial, e.At.UTC().Format(time.RFC3339))
}

// UnavailableError says no responder gave a usable answer.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "OCSP unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Checker is safe for concurrent use.
type Checker struct {
	HTTP *http.Client
	Now  func() time.Time

	mu    sync.Mutex
	cache map[string]time.Time // issuer key hash + serial -> good until
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Checker) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// Check asks the responders (urls, else cert.OCSPServer) about cert,
// issued by issuer. It returns nil for good, *RevokedError, or
// *UnavailableError (no URL, network error, unknown status, bad or stale
// response).
func (c *Checker) Check(ctx context.Context, urls []string, issuer, cert *x509.Certificate) error {
	key := string(issuer.RawSubjectPublicKeyInfo) + "|" + cert.SerialNumber.String()
	now := c.now()
	c.mu.Lock()
	until, ok := c.cache[key]
	c.mu.Unlock()
	if ok && now.Before(until) {
		return nil
	}
	if len(urls) == 0 {
		urls = cert.OCSPServer
	}
	if len(urls) == 0 {
		return &UnavailableError{errors.New("no ocsp url configured and no OCSP server in the certificate")}
	}
	req, err := xocsp.CreateRequest(cert, issuer, &xocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return &UnavailableError{fmt.Errorf("build request: %w", err)}
	}
	var errs []error
	for _, u := range urls {
		resp, err := c.ask(ctx, u, req, issuer, cert)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		// RFC 6960 section 3.2: thisUpdate not in the future, nextUpdate
		// (when present) not in the past.
		if resp.ThisUpdate.After(now.Add(5 * time.Minute)) {
			errs = append(errs, fmt.Errorf("%s: response thisUpdate %s is in the future", u, resp.ThisUpdate.UTC().Format(time.RFC3339)))
			continue
		}
		if !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate) {
			errs = append(errs, fmt.Errorf("%s: response expired at %s", u, resp.NextUpdate.UTC().Format(time.RFC3339)))
			continue
		}
		switch resp.Status {
		case xocsp.Good:
			until := resp.NextUpdate
			if until.IsZero() {
				until = now.Add(DefaultValidity)
			}
			c.mu.Lock()
			if c.cache == nil {
				c.cache = map[string]time.Time{}
			}
			c.cache[key] = until
			c.mu.Unlock()
			return nil
		case xocsp.Revoked:
			return &RevokedError{URL: u, Serial: cert.SerialNumber.Text(16), At: resp.RevokedAt}
		default:
			errs = append(errs, fmt.Errorf("%s: status unknown", u))
		}
	}
	return &UnavailableError{errors.Join(errs...)}
}

func (c *Checker) ask(ctx context.Context, url string, req []byte, issuer, cert *x509.Certificate) (*xocsp.Response, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/ocsp-request")
	res, err := c.client().Do(hr)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", res.Status)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxResponse+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxResponse {
		return nil, fmt.Errorf("response larger than %d bytes", MaxResponse)
	}
	// Checks the signature: by the issuer, or by a responder certificate
	// the issuer signed (RFC 6960 section 4.2.2.2).
	resp, err := xocsp.ParseResponseForCert(body, cert, issuer)
	if err != nil {
		return nil, fmt.Errorf("bad response: %w", err)
	}
	return resp, nil
}
