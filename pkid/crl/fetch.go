package crl

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// MaxSize bounds a downloaded CRL.
const MaxSize = 16 << 20

// FetchTimeout bounds one download.
const FetchTimeout = 15 * time.Second

// Fetch downloads the CRL at rawURL: http(s) GET, or an LDAP base-object
// search (RFC 4516 URL: ldap://host:port/DN?attribute), binding with
// password when one is given (the bind DN is the URL's "bindname"
// extension, else anonymous bind is skipped and a simple bind with the
// search DN is used). It returns DER.
func Fetch(ctx context.Context, rawURL, password string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("crl: bad url %q: %w", rawURL, err)
	}
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	var data []byte
	switch u.Scheme {
	case "http", "https":
		data, err = fetchHTTP(ctx, u)
	case "ldap", "ldaps":
		data, err = fetchLDAP(ctx, u, password)
	default:
		return nil, fmt.Errorf("crl: url scheme %q not supported", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return toDER(data)
}

// toDER accepts DER or PEM "X509 CRL".
func toDER(data []byte) ([]byte, error) {
	if len(data) > 0 && data[0] == 0x30 {
		return data, nil
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "X509 CRL" {
			return b.Bytes, nil
		}
	}
	return nil, errors.New("crl: data is neither DER nor PEM X509 CRL")
}

// httpClient follows no redirect: a CRL is fetched from the URL configured
// or named in the certificate, not from wherever its server points (issue
// 14, low); a 3xx answer is an error.
var httpClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func fetchHTTP(ctx context.Context, u *url.URL) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("crl: %w", err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("crl: fetch %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("crl: fetch %s: HTTP %s", u.Redacted(), resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("crl: fetch %s: %w", u.Redacted(), err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("crl: fetch %s: larger than %d bytes", u.Redacted(), MaxSize)
	}
	return data, nil
}

// fetchLDAP reads the CRL attribute of the entry the URL names (RFC 4516
// section 2: ldap://host/dn?attributes?scope?filter?extensions).
func fetchLDAP(ctx context.Context, u *url.URL, password string) ([]byte, error) {
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "ldaps" {
			host += ":636"
		} else {
			host += ":389"
		}
	}
	dn, err := url.PathUnescape(strings.TrimPrefix(u.EscapedPath(), "/"))
	if err != nil || dn == "" {
		return nil, fmt.Errorf("crl: ldap url %s has no DN", u.Redacted())
	}
	parts := strings.Split(u.RawQuery, "?")
	attr := "certificateRevocationList;binary"
	if len(parts) > 0 && parts[0] != "" {
		attr, _ = url.QueryUnescape(parts[0])
	}
	bindDN := ""
	if len(parts) > 3 {
		for _, ext := range strings.Split(parts[3], ",") {
			ext, _ = url.QueryUnescape(ext)
			if v, ok := strings.CutPrefix(strings.TrimPrefix(ext, "!"), "bindname="); ok {
				bindDN = v
			}
		}
	}
	d := ldap.DialURL
	conn, err := d(u.Scheme + "://" + host)
	if err != nil {
		return nil, fmt.Errorf("crl: ldap %s: %w", host, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetTimeout(time.Until(dl))
	}
	if password != "" {
		if bindDN == "" {
			bindDN = dn
		}
		if err := conn.Bind(bindDN, password); err != nil {
			return nil, fmt.Errorf("crl: ldap bind as %q: %w", bindDN, err)
		}
	}
	// Both the ";binary" and the plain attribute names are asked for:
	// servers differ in which they return.
	base := strings.TrimSuffix(attr, ";binary")
	res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(FetchTimeout/time.Second), false,
		"(objectClass=*)", []string{base + ";binary", base}, nil))
	if err != nil {
		return nil, fmt.Errorf("crl: ldap search %q: %w", dn, err)
	}
	for _, e := range res.Entries {
		for _, a := range e.Attributes {
			if strings.EqualFold(strings.TrimSuffix(a.Name, ";binary"), base) && len(a.ByteValues) > 0 {
				if len(a.ByteValues[0]) > MaxSize {
					return nil, fmt.Errorf("crl: ldap %q: CRL larger than %d bytes", dn, MaxSize)
				}
				return a.ByteValues[0], nil
			}
		}
	}
	return nil, fmt.Errorf("crl: ldap entry %q has no %s", dn, base)
}
