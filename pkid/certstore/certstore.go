// Package certstore keeps pkid's certificates on disk under
// <root>/var/db/certs: the CA certificates of each ca-profile (ca/P.pem),
// the local certificates with their chains (local/ID.pem) and the pending
// certificate requests (request/ID.csr). Everything is reloaded at start.
package certstore

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/smallstep/pkcs7"

	"github.com/sitesec/sitesec/pkid/keystore"
)

// ErrNotFound is returned for a profile or certificate-id with nothing stored.
var ErrNotFound = errors.New("certstore: not found")

const (
	kindCA      = "ca"
	kindLocal   = "local"
	kindRequest = "request"
)

// Store is safe for concurrent use.
type Store struct {
	dir string

	mu       sync.RWMutex
	cas      map[string][]*x509.Certificate
	locals   map[string][]*x509.Certificate
	requests map[string][]byte
}

// Open loads everything kept under dir. Unreadable files are reported
// together but do not stop the others from loading.
func Open(dir string) (*Store, error) {
	s := &Store{dir: dir, cas: map[string][]*x509.Certificate{}, locals: map[string][]*x509.Certificate{}, requests: map[string][]byte{}}
	var errs []error
	for _, kind := range []string{kindCA, kindLocal, kindRequest} {
		ents, err := os.ReadDir(filepath.Join(dir, kind))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("certstore: %w", err))
			continue
		}
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, kind, name))
			if err != nil {
				errs = append(errs, fmt.Errorf("certstore: %w", err))
				continue
			}
			id := strings.TrimSuffix(strings.TrimSuffix(name, ".pem"), ".csr")
			if kind == kindRequest {
				b, _ := pem.Decode(data)
				if b == nil {
					errs = append(errs, fmt.Errorf("certstore: %s/%s: no PEM", kind, name))
					continue
				}
				s.requests[id] = b.Bytes
				continue
			}
			certs, err := ParseCertificates(data)
			if err != nil {
				errs = append(errs, fmt.Errorf("certstore: %s/%s: %w", kind, name, err))
				continue
			}
			if kind == kindCA {
				s.cas[id] = certs
			} else {
				s.locals[id] = certs
			}
		}
	}
	return s, errors.Join(errs...)
}

// ParseCertificates accepts PEM (any number of CERTIFICATE blocks, other
// blocks skipped), a single DER certificate, or a PKCS#7 degenerate
// certs-only message in DER or PEM (what SCEP GetCACert returns).
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	sawPEM := false
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		sawPEM = true
		switch b.Type {
		case "CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certstore: parse certificate %d: %w", len(certs)+1, err)
			}
			certs = append(certs, c)
		case "PKCS7":
			cs, err := parsePKCS7(b.Bytes)
			if err != nil {
				return nil, err
			}
			certs = append(certs, cs...)
		}
	}
	if sawPEM {
		if len(certs) == 0 {
			return nil, errors.New("certstore: no certificate in PEM data")
		}
		return certs, nil
	}
	if c, err := x509.ParseCertificate(data); err == nil {
		return []*x509.Certificate{c}, nil
	}
	if cs, err := parsePKCS7(data); err == nil && len(cs) > 0 {
		return cs, nil
	}
	return nil, errors.New("certstore: data is neither PEM, DER nor PKCS#7 certificates")
}

func parsePKCS7(der []byte) (certs []*x509.Certificate, err error) {
	defer func() {
		// The PKCS#7 parser is third-party code fed with untrusted bytes.
		if r := recover(); r != nil {
			certs, err = nil, fmt.Errorf("certstore: malformed PKCS#7: %v", r)
		}
	}()
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("certstore: parse PKCS#7: %w", err)
	}
	return p7.Certificates, nil
}

// EncodePEM renders certificates as concatenated PEM blocks.
func EncodePEM(certs []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}

func (s *Store) write(kind, name string, data []byte) error {
	d := filepath.Join(s.dir, kind)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return fmt.Errorf("certstore: %w", err)
	}
	if err := keystore.WriteFile(filepath.Join(d, name), data, 0o600); err != nil {
		return fmt.Errorf("certstore: %w", err)
	}
	return nil
}

func (s *Store) remove(kind, name string) error {
	err := os.Remove(filepath.Join(s.dir, kind, name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("certstore: %w", err)
	}
	return nil
}

// SetCA stores the CA certificates of a ca-profile, replacing any.
func (s *Store) SetCA(profile string, certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return errors.New("certstore: no CA certificate")
	}
	if err := keystore.CheckID(profile); err != nil {
		return fmt.Errorf("certstore: ca-profile %q: %w", profile, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(kindCA, profile+".pem", EncodePEM(certs)); err != nil {
		return err
	}
	s.cas[profile] = certs
	return nil
}

// CA returns the CA certificates of a ca-profile.
func (s *Store) CA(profile string) []*x509.Certificate {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cas[profile]
}

// ClearCA forgets a ca-profile's certificates.
func (s *Store) ClearCA(profile string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cas[profile]; !ok {
		return fmt.Errorf("%w: ca-profile %q has no CA certificate", ErrNotFound, profile)
	}
	delete(s.cas, profile)
	return s.remove(kindCA, profile+".pem")
}

// CAProfiles lists the profiles with CA certificates, sorted.
func (s *Store) CAProfiles() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedKeys(s.cas)
}

// SetLocal stores a local certificate and its chain (end entity first).
func (s *Store) SetLocal(id string, chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return errors.New("certstore: no certificate")
	}
	if err := keystore.CheckID(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(kindLocal, id+".pem", EncodePEM(chain)); err != nil {
		return err
	}
	s.locals[id] = chain
	return nil
}

// Local returns a local certificate and its chain, end entity first.
func (s *Store) Local(id string) []*x509.Certificate {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.locals[id]
}

// ClearLocal forgets a local certificate.
func (s *Store) ClearLocal(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.locals[id]; !ok {
		return fmt.Errorf("%w: no local certificate %q", ErrNotFound, id)
	}
	delete(s.locals, id)
	return s.remove(kindLocal, id+".pem")
}

// LocalIDs lists the local certificate ids, sorted.
func (s *Store) LocalIDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedKeys(s.locals)
}

// SetRequest stores a certificate request DER for id.
func (s *Store) SetRequest(id string, der []byte) error {
	if err := keystore.CheckID(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(kindRequest, id+".csr", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})); err != nil {
		return err
	}
	s.requests[id] = der
	return nil
}

// Request returns the certificate request DER of id.
func (s *Store) Request(id string) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.requests[id]
}

// ClearRequest forgets id's certificate request.
func (s *Store) ClearRequest(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.requests[id]; !ok {
		return fmt.Errorf("%w: no certificate request %q", ErrNotFound, id)
	}
	delete(s.requests, id)
	return s.remove(kindRequest, id+".csr")
}

// RequestIDs lists the ids with a certificate request, sorted.
func (s *Store) RequestIDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedKeys(s.requests)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
