// Package scep is a SCEP client (RFC 8894): GetCACaps, GetCACert and
// PKCSReq enrollment with polling while the CA answers PENDING.
//
// Message encoding (PKCS#7 signed and enveloped data) comes from
// github.com/smallstep/scep; the HTTP transport, the CA certificate
// handling and the polling are here.
package scep

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/smallstep/pkcs7"
	sscep "github.com/smallstep/scep"

	"github.com/sitesec/sitesec/pkid/certstore"
)

// MaxResponse bounds a SCEP HTTP response.
const MaxResponse = 1 << 20

// Client talks to one SCEP server.
type Client struct {
	// URL is the CA profile's enrollment url.
	URL string
	// HTTP defaults to a client with a 30 s timeout.
	HTTP *http.Client
	// Now and Sleep are injectable for tests.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand is used for the self-signed signer certificate.
	Rand io.Reader
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) get(ctx context.Context, op, message string) ([]byte, string, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, "", fmt.Errorf("scep: bad url %q: %w", c.URL, err)
	}
	q := u.Query()
	q.Set("operation", op)
	if message != "" {
		q.Set("message", message)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", fmt.Errorf("scep: %w", err)
	}
	return c.do(req, op)
}

func (c *Client) do(req *http.Request, op string) ([]byte, string, error) {
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("scep: %s: %w", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return nil, "", fmt.Errorf("scep: %s: %w", op, err)
	}
	if len(body) > MaxResponse {
		return nil, "", fmt.Errorf("scep: %s: response larger than %d bytes", op, MaxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("scep: %s: HTTP %s: %s", op, resp.Status, strings.TrimSpace(string(firstLine(body))))
	}
	return body, resp.Header.Get("Content-Type"), nil
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return b
}

// Caps is the answer to GetCACaps (RFC 8894 section 3.5.2).
type Caps map[string]bool

// Has reports whether the CA advertises capability name (case-insensitive).
func (c Caps) Has(name string) bool { return c[strings.ToUpper(name)] }

// GetCACaps asks the CA what it supports. A CA that does not answer it is
// treated as having no capabilities (RFC 8894 section 3.5.2).
func (c *Client) GetCACaps(ctx context.Context, caIdentity string) (Caps, error) {
	body, _, err := c.get(ctx, "GetCACaps", caIdentity)
	if err != nil {
		return Caps{}, err
	}
	caps := Caps{}
	for _, l := range strings.Fields(string(body)) {
		caps[strings.ToUpper(l)] = true
	}
	return caps, nil
}

// GetCACert fetches the CA certificate, or the CA and RA certificates
// (RFC 8894 section 4.2).
func (c *Client) GetCACert(ctx context.Context, caIdentity string) ([]*x509.Certificate, error) {
	body, ctype, err := c.get(ctx, "GetCACert", caIdentity)
	if err != nil {
		return nil, err
	}
	certs, err := certstore.ParseCertificates(body)
	if err != nil {
		return nil, fmt.Errorf("scep: GetCACert (%s): %w", ctype, err)
	}
	return certs, nil
}

// Enrollment is one PKCSReq.
type Enrollment struct {
	CAIdentity string
	// CACerts are the profile's CA (and RA) certificates from GetCACert.
	CACerts []*x509.Certificate
	// CSR is the PKCS#10 request DER, challengePassword included.
	CSR []byte
	// Key is the request's private key; SCEP needs RSA (RFC 8894 section
	// 2.3: the CA encrypts the reply to it).
	Key crypto.Signer
	// Encryption is "des" or "des3"; des3 uses AES-256-CBC when the CA
	// advertises AES (the PKCS#7 library does not encrypt with 3DES) and
	// DES otherwise.
	Encryption string
	// Retry and RetryInterval bound the polling while PENDING.
	Retry         int
	RetryInterval time.Duration
}

// FailError is a CertRep with pkiStatus FAILURE.
type FailError struct{ Info string }

func (e *FailError) Error() string { return "scep: CA rejected the request: " + e.Info }

// pkcs7.ContentEncryptionAlgorithm is a package variable; hold this while
// setting it and encrypting.
var encMu sync.Mutex

// Enroll sends the request and waits for the certificate, polling while
// the CA says PENDING (by re-sending the same transaction, RFC 8894
// section 3.3.3 allows either that or CertPoll). It returns the issued
// certificate.
func (c *Client) Enroll(ctx context.Context, e Enrollment) (*x509.Certificate, error) {
	key, ok := e.Key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("scep: the key pair must be RSA, not %T", e.Key)
	}
	csr, err := x509.ParseCertificateRequest(e.CSR)
	if err != nil {
		return nil, fmt.Errorf("scep: %w", err)
	}
	if len(e.CACerts) == 0 {
		return nil, errors.New("scep: no CA certificate; enroll or load the CA certificate of the ca-profile first")
	}
	caps, _ := c.GetCACaps(ctx, e.CAIdentity)
	signer, err := c.selfSigned(csr, key)
	if err != nil {
		return nil, err
	}
	recipients := sscep.EnciphermentCertsSelector().SelectCerts(e.CACerts)
	if len(recipients) == 0 {
		for _, ca := range e.CACerts {
			if _, ok := ca.PublicKey.(*rsa.PublicKey); ok {
				recipients = append(recipients, ca)
			}
		}
	}
	if len(recipients) == 0 {
		return nil, errors.New("scep: no RSA CA or RA certificate to encrypt the request to")
	}
	alg := pkcs7.EncryptionAlgorithmDESCBC
	if e.Encryption != "des" && (caps.Has("AES") || caps.Has("SCEPStandard")) {
		alg = pkcs7.EncryptionAlgorithmAES256CBC
	}
	encMu.Lock()
	pkcs7.ContentEncryptionAlgorithm = alg
	msg, err := sscep.NewCSRRequest(csr, &sscep.PKIMessage{
		MessageType: sscep.PKCSReq,
		Recipients:  recipients,
		SignerKey:   key,
		SignerCert:  signer,
	})
	encMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("scep: build PKCSReq: %w", err)
	}
	retry := e.Retry
	for attempt := 0; ; attempt++ {
		body, err := c.pkiOperation(ctx, caps, msg.Raw)
		if err != nil {
			return nil, err
		}
		rep, err := parseReply(body)
		if err != nil {
			return nil, err
		}
		if string(rep.TransactionID) != string(msg.TransactionID) {
			return nil, fmt.Errorf("scep: reply transaction %q is not ours (%q)", rep.TransactionID, msg.TransactionID)
		}
		// RFC 8894 section 3.2.1.5: the recipientNonce echoes our senderNonce.
		if string(rep.RecipientNonce) != string(msg.SenderNonce) {
			return nil, errors.New("scep: reply recipientNonce does not match our senderNonce")
		}
		switch rep.PKIStatus {
		case sscep.SUCCESS:
			if err := rep.DecryptPKIEnvelope(signer, key); err != nil {
				return nil, fmt.Errorf("scep: decrypt CertRep: %w", err)
			}
			if rep.Certificate == nil {
				return nil, errors.New("scep: CertRep has no certificate")
			}
			if !issuedBy(rep.Certificate, e.CACerts) {
				return nil, fmt.Errorf("scep: issued certificate %q is not signed by a CA certificate of the profile", rep.Certificate.Subject)
			}
			if pk, ok := rep.Certificate.PublicKey.(*rsa.PublicKey); !ok || !pk.Equal(key.Public()) {
				return nil, errors.New("scep: issued certificate does not carry the requested public key")
			}
			return rep.Certificate, nil
		case sscep.FAILURE:
			return nil, &FailError{Info: rep.FailInfo.String()}
		case sscep.PENDING:
			if attempt >= retry {
				return nil, fmt.Errorf("scep: still pending after %d retries", retry)
			}
			if err := c.sleep(ctx, e.RetryInterval); err != nil {
				return nil, fmt.Errorf("scep: waiting for the CA: %w", err)
			}
		default:
			return nil, fmt.Errorf("scep: unknown pkiStatus %q", rep.PKIStatus)
		}
	}
}

func issuedBy(c *x509.Certificate, cas []*x509.Certificate) bool {
	for _, ca := range cas {
		if c.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

func parseReply(body []byte) (rep *sscep.PKIMessage, err error) {
	defer func() {
		// Third-party PKCS#7 code parsing bytes from the network.
		if r := recover(); r != nil {
			rep, err = nil, fmt.Errorf("scep: malformed CertRep: %v", r)
		}
	}()
	rep, err = sscep.ParsePKIMessage(body)
	if err != nil {
		return nil, fmt.Errorf("scep: parse CertRep: %w", err)
	}
	if rep.MessageType != sscep.CertRep {
		return nil, fmt.Errorf("scep: reply is message type %s, not CertRep", rep.MessageType)
	}
	if rep.CertRepMessage == nil {
		return nil, errors.New("scep: reply has no pkiStatus")
	}
	return rep, nil
}

func (c *Client) pkiOperation(ctx context.Context, caps Caps, raw []byte) ([]byte, error) {
	if caps.Has("POSTPKIOperation") || caps.Has("SCEPStandard") {
		u, err := url.Parse(c.URL)
		if err != nil {
			return nil, fmt.Errorf("scep: bad url %q: %w", c.URL, err)
		}
		q := u.Query()
		q.Set("operation", "PKIOperation")
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("scep: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-pki-message")
		body, _, err := c.do(req, "PKIOperation")
		return body, err
	}
	body, _, err := c.get(ctx, "PKIOperation", base64.StdEncoding.EncodeToString(raw))
	return body, err
}

// selfSigned makes the transient signer certificate of RFC 8894 section
// 2.3: the request's subject and key, self-signed.
func (c *Client) selfSigned(csr *x509.CertificateRequest, key *rsa.PrivateKey) (*x509.Certificate, error) {
	// The PKCS#7 library stamps signingTime from the wall clock, so the
	// validity covers both the injected and the wall clock.
	now, wall := c.now(), time.Now()
	from, to := now, now
	if wall.Before(from) {
		from = wall
	}
	if wall.After(to) {
		to = wall
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{},
		RawSubject:   csr.RawSubject,
		NotBefore:    from.Add(-time.Hour),
		NotAfter:     to.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	r := c.Rand
	if r == nil {
		r = rand.Reader
	}
	der, err := x509.CreateCertificate(r, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("scep: signer certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}
