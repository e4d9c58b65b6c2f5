// Package keystore keeps the key pairs of pkid under <root>/var/db/certs.
//
// Each key pair is one PEM file (PKCS#8) named after its certificate-id and
// written with mode 0600 in a 0700 directory. Private keys never leave this
// package: callers get the public half, or a signature made with the key
// (SPEC section 1 "security pki", issue 6 item 1).
package keystore

import (
	"crypto"
	"crypto/dsa" //nolint:staticcheck // DSA key pairs, see dsa.go
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Key types, as `request security pki generate-key-pair ... type` names them.
const (
	TypeRSA   = "rsa"
	TypeECDSA = "ecdsa"
)

// ErrNotFound is returned for a certificate-id with no key pair.
var ErrNotFound = errors.New("keystore: no such key pair")

// Store holds key pairs on disk and caches them in memory. Its zero value
// is not usable; set Dir. Rand defaults to crypto/rand.
type Store struct {
	Dir  string
	Rand io.Reader

	mu   sync.Mutex
	keys map[string]crypto.Signer
}

// New returns a Store keeping its files in dir.
func New(dir string) *Store { return &Store{Dir: dir} }

func (s *Store) rand() io.Reader {
	if s.Rand != nil {
		return s.Rand
	}
	return rand.Reader
}

// CheckID reports whether id is usable as a certificate-id and file name:
// 1 to 32 characters, letters, digits, '-', '_' and '.', not starting with '.'.
func CheckID(id string) error {
	if id == "" || len(id) > 32 {
		return fmt.Errorf("keystore: certificate-id %q must be 1 to 32 characters", id)
	}
	if id[0] == '.' {
		return fmt.Errorf("keystore: certificate-id %q must not start with '.'", id)
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("keystore: certificate-id %q has invalid character %q", id, c)
		}
	}
	return nil
}

func (s *Store) path(id string) string { return filepath.Join(s.Dir, id+".key") }

// Generate creates a key pair for id and stores it, replacing none: an
// existing key pair for id is an error, as on Junos. typ is "rsa" (size
// 2048, 3072 or 4096; 0 means 2048) or "ecdsa" (size 256 or 384; 0 means
// 256).
func (s *Store) Generate(id, typ string, size int) (crypto.PublicKey, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	if typ == "" {
		typ = TypeRSA
	}
	var key crypto.Signer
	var err error
	switch typ {
	case TypeRSA:
		if size == 0 {
			size = 2048
		}
		// Junos offers 1024 too (with a warning, see pki's
		// generateKeyPair); 512 is refused: it is factored in hours.
		if size != 1024 && size != 2048 && size != 3072 && size != 4096 {
			return nil, fmt.Errorf("keystore: rsa size %d not supported (1024, 2048, 3072, 4096)", size)
		}
		key, err = rsa.GenerateKey(s.rand(), size)
	case TypeECDSA:
		var c elliptic.Curve
		switch size {
		case 0, 256:
			c = elliptic.P256()
		case 384:
			c = elliptic.P384()
		case 521:
			c = elliptic.P521()
		default:
			return nil, fmt.Errorf("keystore: ecdsa size %d not supported (256, 384, 521)", size)
		}
		key, err = ecdsa.GenerateKey(c, s.rand())
	case TypeDSA:
		// Junos offers dsa. A DSA key signs requests and self-signed
		// certificates; IKE authentication with it is refused (dsa.go).
		key, err = generateDSA(s.rand(), size)
	default:
		return nil, fmt.Errorf("keystore: key type %q not supported (rsa, ecdsa, dsa)", typ)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: generate %s key: %w", typ, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Stat(s.path(id)); err == nil {
		return nil, fmt.Errorf("keystore: key pair %q already exists", id)
	}
	if err := s.write(id, key); err != nil {
		return nil, err
	}
	return key.Public(), nil
}

// Replace generates a fresh key pair of the same type and size as id's and
// stores it in place of the old one (auto-re-enrollment re-generate-keypair).
func (s *Store) Replace(id string) (crypto.PublicKey, error) {
	old, err := s.signer(id)
	if err != nil {
		return nil, err
	}
	var key crypto.Signer
	switch k := old.(type) {
	case *rsa.PrivateKey:
		key, err = rsa.GenerateKey(s.rand(), k.N.BitLen())
	case *ecdsa.PrivateKey:
		key, err = ecdsa.GenerateKey(k.Curve, s.rand())
	case *DSAKey:
		key, err = generateDSA(s.rand(), k.Key.P.BitLen())
	default:
		return nil, fmt.Errorf("keystore: cannot regenerate %T key", old)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: regenerate %q: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(id, key); err != nil {
		return nil, err
	}
	return key.Public(), nil
}

// Import stores a private key given as PEM (PKCS#8, PKCS#1 or SEC 1) under
// id, replacing any key pair id had.
func (s *Store) Import(id string, data []byte) (crypto.PublicKey, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	key, err := ParsePrivateKey(data)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(id, key); err != nil {
		return nil, err
	}
	return key.Public(), nil
}

// ParsePrivateKey decodes the first private key PEM block of data.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("keystore: no private key PEM block")
		}
		var k any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			if dk, ok, derr := parseDSA(b.Bytes); ok {
				if derr != nil {
					return nil, derr
				}
				return dk, nil
			}
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("keystore: encrypted private keys are not supported")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("keystore: parse %s: %w", b.Type, err)
		}
		switch sk := k.(type) {
		case *rsa.PrivateKey:
			return sk, nil
		case *ecdsa.PrivateKey:
			return sk, nil
		case ed25519.PrivateKey:
			return nil, errors.New("keystore: ed25519 keys are not supported")
		default:
			return nil, fmt.Errorf("keystore: %T keys are not supported", k)
		}
	}
}

// write stores key atomically with mode 0600. s.mu is held.
func (s *Store) write(id string, key crypto.Signer) error {
	var der []byte
	var err error
	if dk, ok := key.(*DSAKey); ok {
		der, err = marshalDSA(dk)
	} else {
		der, err = x509.MarshalPKCS8PrivateKey(key)
	}
	if err != nil {
		return fmt.Errorf("keystore: marshal %q: %w", id, err)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	if err := WriteFile(s.path(id), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("keystore: store %q: %w", id, err)
	}
	if s.keys == nil {
		s.keys = make(map[string]crypto.Signer)
	}
	s.keys[id] = key
	return nil
}

// WriteFile writes data to name through a temporary file in the same
// directory, synced and renamed, so a crash leaves the old or the new file.
func WriteFile(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

func (s *Store) signer(id string) (crypto.Signer, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[id]; ok {
		return k, nil
	}
	data, err := os.ReadFile(s.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("keystore: %q: %w", id, err)
	}
	if s.keys == nil {
		s.keys = make(map[string]crypto.Signer)
	}
	s.keys[id] = k
	return k, nil
}

// Public returns the public key of id.
func (s *Store) Public(id string) (crypto.PublicKey, error) {
	k, err := s.signer(id)
	if err != nil {
		return nil, err
	}
	return k.Public(), nil
}

// Has reports whether id has a key pair.
func (s *Store) Has(id string) bool {
	_, err := s.signer(id)
	return err == nil
}

// Signer returns a crypto.Signer for id that signs with the stored key but
// does not expose it. It is meant for code inside pkid (CSR and SCEP
// messages); nothing carries it outside the process.
func (s *Store) Signer(id string) (crypto.Signer, error) {
	k, err := s.signer(id)
	if err != nil {
		return nil, err
	}
	return k, nil
}

// Delete removes id's key pair (clear security pki key-pair).
func (s *Store) Delete(id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, id)
	err := os.Remove(s.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}

// List returns the certificate-ids that have a key pair, sorted.
func (s *Store) List() ([]string, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	var ids []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(n, ".key") && CheckID(strings.TrimSuffix(n, ".key")) == nil {
			ids = append(ids, strings.TrimSuffix(n, ".key"))
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// KeyType names a public key as LocalCertificateReply.key_type does: "rsa",
// "ecdsa-p256", "ecdsa-p384", "ecdsa-p521".
func KeyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "rsa"
	case *ecdsa.PublicKey:
		return "ecdsa-p" + strings.TrimPrefix(k.Curve.Params().Name, "P-")
	case ed25519.PublicKey:
		return "ed25519"
	case *dsa.PublicKey:
		return "dsa"
	}
	return "unknown"
}

// Describe names a public key as the show commands do:
// "rsaEncryption(2048 bits)", "ecdsa(P-256)".
func Describe(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("rsaEncryption(%d bits)", k.N.BitLen())
	case *ecdsa.PublicKey:
		return fmt.Sprintf("ecdsaEncryption(%s)", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return "ed25519"
	case *dsa.PublicKey:
		return fmt.Sprintf("dsaEncryption(%d bits)", k.P.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}

// Fresh generates a key of the same type and size as id's without storing
// it, for re-enrollment: the old key keeps signing until Put installs the
// new one with its certificate.
func (s *Store) Fresh(id string) (crypto.Signer, error) {
	old, err := s.signer(id)
	if err != nil {
		return nil, err
	}
	switch k := old.(type) {
	case *rsa.PrivateKey:
		return rsa.GenerateKey(s.rand(), k.N.BitLen())
	case *ecdsa.PrivateKey:
		return ecdsa.GenerateKey(k.Curve, s.rand())
	case *DSAKey:
		return generateDSA(s.rand(), k.Key.P.BitLen())
	}
	return nil, fmt.Errorf("keystore: cannot regenerate %T key", old)
}

// Put stores key under id, replacing id's key pair.
func (s *Store) Put(id string, key crypto.Signer) error {
	if err := CheckID(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(id, key)
}
