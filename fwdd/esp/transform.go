package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// saltLen is the salt that follows the key of an AEAD transform (RFC 4106
// section 8.1, RFC 7634 section 2).
const saltLen = 4

type encKind uint8

const (
	encNull encKind = iota // RFC 2410: no confidentiality
	encCBC                 // RFC 3602 (AES), RFC 2451 (3DES), RFC 2405 (DES)
	encAEAD                // RFC 4106 (AES-GCM), RFC 7634 (ChaCha20-Poly1305)
)

// encryption describes an encryption transform by its Junos name.
type encryption struct {
	kind   encKind
	keyLen int // without the salt
	block  int // cipher block size, 1 for stream and AEAD modes
	ivLen  int
	icvLen int // AEAD only
	newCBC func(key []byte) (cipher.Block, error)
	newAE  func(key []byte) (cipher.AEAD, error)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	// RFC 4106 section 3: 8-byte explicit IV, 16-byte ICV.
	return cipher.NewGCM(b)
}

var encryptions = map[string]encryption{
	"":                  {kind: encNull, block: 1},
	"null":              {kind: encNull, block: 1},
	"des-cbc":           {kind: encCBC, keyLen: 8, block: 8, ivLen: 8, newCBC: des.NewCipher},
	"3des-cbc":          {kind: encCBC, keyLen: 24, block: 8, ivLen: 8, newCBC: des.NewTripleDESCipher},
	"aes-128-cbc":       {kind: encCBC, keyLen: 16, block: 16, ivLen: 16, newCBC: aes.NewCipher},
	"aes-192-cbc":       {kind: encCBC, keyLen: 24, block: 16, ivLen: 16, newCBC: aes.NewCipher},
	"aes-256-cbc":       {kind: encCBC, keyLen: 32, block: 16, ivLen: 16, newCBC: aes.NewCipher},
	"aes-128-gcm":       {kind: encAEAD, keyLen: 16, block: 1, ivLen: 8, icvLen: 16, newAE: newGCM},
	"aes-192-gcm":       {kind: encAEAD, keyLen: 24, block: 1, ivLen: 8, icvLen: 16, newAE: newGCM},
	"aes-256-gcm":       {kind: encAEAD, keyLen: 32, block: 1, ivLen: 8, icvLen: 16, newAE: newGCM},
	"chacha20-poly1305": {kind: encAEAD, keyLen: 32, block: 1, ivLen: 8, icvLen: 16, newAE: chacha20poly1305.New},
}

// authentication describes an integrity transform by its Junos name.
type authentication struct {
	keyLen int
	icvLen int
	hash   func() hash.Hash
}

var authentications = map[string]authentication{
	"":                 {},
	"hmac-md5-96":      {keyLen: 16, icvLen: 12, hash: md5.New},    // RFC 2403
	"hmac-sha1-96":     {keyLen: 20, icvLen: 12, hash: sha1.New},   // RFC 2404
	"hmac-sha-256-128": {keyLen: 32, icvLen: 16, hash: sha256.New}, // RFC 4868
	"hmac-sha2-256":    {keyLen: 32, icvLen: 16, hash: sha256.New}, // Junos manual-SA name of the same
	"hmac-sha-256-96":  {keyLen: 32, icvLen: 12, hash: sha256.New}, // pre-RFC 4868 truncation, interop only
	"hmac-sha-384-192": {keyLen: 48, icvLen: 24, hash: sha512.New384},
	"hmac-sha-512-256": {keyLen: 64, icvLen: 32, hash: sha512.New},
}

// KeyLengths returns the encryption key length (salt included for AEAD
// transforms) and the authentication key length the named transforms need,
// so that key material can be cut from a KEYMAT stream (RFC 7296 section
// 2.17) or a manual key checked.
func KeyLengths(enc, auth string) (encLen, authLen int, err error) {
	e, ok := encryptions[enc]
	if !ok {
		return 0, 0, fmt.Errorf("esp: unknown encryption algorithm %q", enc)
	}
	a, ok := authentications[auth]
	if !ok {
		return 0, 0, fmt.Errorf("esp: unknown authentication algorithm %q", auth)
	}
	encLen = e.keyLen
	if e.kind == encAEAD {
		encLen += saltLen
	}
	return encLen, a.keyLen, nil
}

func newMAC(a authentication, key []byte) func() hash.Hash {
	k := append([]byte(nil), key...)
	return func() hash.Hash { return hmac.New(a.hash, k) }
}

// Integrity returns the HMAC of a Junos authentication algorithm name
// with its key and ICV lengths, for AH (fwdd/ah) as for ESP.
func Integrity(name string) (h func() hash.Hash, keyLen, icvLen int, ok bool) {
	a, ok := authentications[name]
	if !ok || a.hash == nil {
		return nil, 0, 0, false
	}
	return a.hash, a.keyLen, a.icvLen, true
}
