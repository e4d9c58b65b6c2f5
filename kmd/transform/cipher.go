package transform

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/sitesec/sitesec/kmd/message"
	"golang.org/x/crypto/chacha20poly1305"
)

var errAuth = errors.New("transform: integrity check failed")

// integ describes an integrity transform (RFC 7296 section 3.3.2 type 3).
type integ struct {
	hash   func() hash.Hash
	keyLen int
	icvLen int
	name   string
}

var integs = map[uint16]integ{
	message.IntegHMACSHA196:    {sha1.New, 20, 12, "hmac-sha1-96"},
	message.IntegHMACSHA256128: {sha256.New, 32, 16, "hmac-sha-256-128"},
	message.IntegHMACSHA384192: {sha512.New384, 48, 24, "hmac-sha-384-192"},
	message.IntegHMACSHA512256: {sha512.New, 64, 32, "hmac-sha-512-256"},
}

// cbcHMAC is AES-CBC or 3DES-CBC with an HMAC integrity transform, the SK layout of
// RFC 7296 section 3.14: IV | ciphertext (padding, Pad Length) | ICV, the
// ICV covering the message from the header through the ciphertext.
type cbcHMAC struct {
	block  cipher.Block
	integ  integ
	macKey []byte
	rand   io.Reader
}

func (c *cbcHMAC) BodyLen(n int) int {
	bs := c.block.BlockSize()
	return bs + (n/bs+1)*bs + c.integ.icvLen
}

func (c *cbcHMAC) Seal(aad, plaintext []byte) ([]byte, error) {
	n, bs := len(plaintext), c.block.BlockSize()
	padded := (n/bs + 1) * bs
	body := make([]byte, bs+padded, bs+padded+c.integ.icvLen)
	iv := body[:bs]
	if _, err := io.ReadFull(c.rand, iv); err != nil {
		return nil, fmt.Errorf("transform: IV: %w", err)
	}
	ct := body[bs:]
	copy(ct, plaintext)
	// Padding octets are zero; the last octet is the Pad Length.
	ct[padded-1] = byte(padded - n - 1)
	cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(ct, ct)
	m := hmac.New(c.integ.hash, c.macKey)
	m.Write(aad)
	m.Write(body)
	return m.Sum(body)[:len(body)+c.integ.icvLen], nil
}

func (c *cbcHMAC) Open(aad, body []byte) ([]byte, error) {
	bs := c.block.BlockSize()
	if len(body) < 2*bs+c.integ.icvLen || (len(body)-c.integ.icvLen)%bs != 0 {
		return nil, errors.New("transform: SK body has a bad length")
	}
	data, icv := body[:len(body)-c.integ.icvLen], body[len(body)-c.integ.icvLen:]
	m := hmac.New(c.integ.hash, c.macKey)
	m.Write(aad)
	m.Write(data)
	if !hmac.Equal(m.Sum(nil)[:c.integ.icvLen], icv) {
		return nil, errAuth
	}
	pt := make([]byte, len(data)-bs)
	cipher.NewCBCDecrypter(c.block, data[:bs]).CryptBlocks(pt, data[bs:])
	pad := int(pt[len(pt)-1])
	if pad+1 > len(pt) {
		return nil, errors.New("transform: bad pad length")
	}
	return pt[:len(pt)-1-pad], nil
}

// aeadCipher is AES-GCM with a 16-octet ICV (RFC 5282 section 5) or
// ChaCha20-Poly1305 (RFC 7634 section 3): IV (8) | ciphertext | ICV (16),
// nonce = salt (4) | IV, associated data from the header through the SK
// payload header.
type aeadCipher struct {
	aead cipher.AEAD
	salt []byte
	rand io.Reader
}

const aeadIVLen = 8

func (c *aeadCipher) BodyLen(n int) int { return aeadIVLen + n + 1 + c.aead.Overhead() }

func (c *aeadCipher) Seal(aad, plaintext []byte) ([]byte, error) {
	iv := make([]byte, aeadIVLen, c.BodyLen(len(plaintext)))
	if _, err := io.ReadFull(c.rand, iv); err != nil {
		return nil, fmt.Errorf("transform: IV: %w", err)
	}
	nonce := append(append(make([]byte, 0, 12), c.salt...), iv...)
	// No padding is needed for these ciphers; Pad Length is 0.
	pt := append(append(make([]byte, 0, len(plaintext)+1), plaintext...), 0)
	return c.aead.Seal(iv, nonce, pt, aad), nil
}

func (c *aeadCipher) Open(aad, body []byte) ([]byte, error) {
	if len(body) < aeadIVLen+1+c.aead.Overhead() {
		return nil, errors.New("transform: SK body too short")
	}
	nonce := append(append(make([]byte, 0, 12), c.salt...), body[:aeadIVLen]...)
	pt, err := c.aead.Open(nil, nonce, body[aeadIVLen:], aad)
	if err != nil {
		return nil, errAuth
	}
	pad := int(pt[len(pt)-1])
	if pad+1 > len(pt) {
		return nil, errors.New("transform: bad pad length")
	}
	return pt[:len(pt)-1-pad], nil
}

// NewCipher returns the SK cipher of suite s for one direction: encKey is
// SK_ei or SK_er (with the salt for AEAD), integKey SK_ai or SK_ar (nil for
// AEAD). rand supplies IVs.
func (s Suite) NewCipher(encKey, integKey []byte, rand io.Reader) (message.Cipher, error) {
	if len(encKey) != s.EncrKeyLen() {
		return nil, fmt.Errorf("transform: encryption key of %d bytes, want %d", len(encKey), s.EncrKeyLen())
	}
	switch s.Encr {
	case message.EncrAESCBC, message.Encr3DES:
		in, ok := integs[s.Integ]
		if !ok {
			return nil, fmt.Errorf("transform: unsupported integrity %d", s.Integ)
		}
		if len(integKey) != in.keyLen {
			return nil, fmt.Errorf("transform: integrity key of %d bytes, want %d", len(integKey), in.keyLen)
		}
		newBlock := aes.NewCipher
		if s.Encr == message.Encr3DES {
			newBlock = des.NewTripleDESCipher
		}
		b, err := newBlock(encKey)
		if err != nil {
			return nil, err
		}
		return &cbcHMAC{block: b, integ: in, macKey: integKey, rand: rand}, nil
	case message.EncrAESGCM16:
		k, salt := encKey[:len(encKey)-4], encKey[len(encKey)-4:]
		b, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		a, err := cipher.NewGCM(b)
		if err != nil {
			return nil, err
		}
		return &aeadCipher{aead: a, salt: salt, rand: rand}, nil
	case message.EncrChaCha20Poly1305:
		a, err := chacha20poly1305.New(encKey[:32])
		if err != nil {
			return nil, err
		}
		return &aeadCipher{aead: a, salt: encKey[32:], rand: rand}, nil
	}
	return nil, fmt.Errorf("transform: unsupported encryption %d", s.Encr)
}
