// Package esp seals and opens ESP packets in tunnel mode (RFC 4303) for
// the transforms a Junos service set can negotiate or configure: AES-GCM
// (RFC 4106), ChaCha20-Poly1305 (RFC 7634), AES/3DES/DES-CBC (RFC 3602,
// RFC 2451) with HMAC integrity (RFC 2404, RFC 4868), and NULL encryption
// (RFC 2410).
//
// A Cipher holds one SA's keys and is safe for concurrent use, so that the
// data plane's crypto workers can share it. Seal and Open work in place on
// the caller's buffer and do not allocate.
//
// Initialization vectors never repeat under one key:
//   - AEAD transforms use the 64-bit sequence number as the explicit IV
//     (RFC 4106 section 3.1, RFC 7634 section 2), so IV uniqueness is
//     sequence number uniqueness, which the SAD guarantees across restarts.
//   - CBC transforms need unpredictable IVs (RFC 3602 section 2.4). Each
//     IV is the encryption of (sequence number, 64 random bits) under a
//     random AES key drawn when the Cipher is made: a CSPRNG in counter
//     mode that costs one block encryption and no system call per packet.
package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
)

// HeaderLen is the SPI and sequence number fields (RFC 4303 section 2).
const HeaderLen = 8

// MaxOverhead bounds what Seal adds around a payload: header, the longest
// IV (16), padding to the largest block (15), pad length and next header
// (2) and the longest ICV (32).
const MaxOverhead = HeaderLen + 16 + 15 + 2 + 32

// MaxIVLen is the longest IV of any transform: the headroom Seal needs
// before the payload beyond HeaderLen.
const MaxIVLen = 16

// Errors Open returns. Each maps to a counter of `show services ipsec-vpn
// ipsec statistics`.
var (
	ErrShort   = errors.New("esp: packet too short")                       // bad headers
	ErrAuth    = errors.New("esp: authentication failed")                  // ESP authentication failures
	ErrDecrypt = errors.New("esp: ciphertext not a multiple of the block") // ESP decryption failures
	ErrPadding = errors.New("esp: bad padding")                            // bad trailers
	ErrBuffer  = errors.New("esp: buffer too small")
)

// Config is what makes a Cipher: one direction of an SA.
type Config struct {
	SPI uint32
	// Junos transform names: aes-128-gcm, aes-256-gcm, chacha20-poly1305,
	// aes-128-cbc, 3des-cbc, ... ("" or "null" for ESP-NULL);
	// hmac-sha1-96, hmac-sha-256-128, ... ("" for AEAD or none).
	Encryption     string
	Authentication string
	// EncryptionKey is the key followed by the 4-byte salt for AEAD.
	EncryptionKey     []byte
	AuthenticationKey []byte
	// ESN: extended (64-bit) sequence numbers, RFC 4303 section 2.2.1.
	ESN bool
	// Rand seeds the CBC IV generator; nil means crypto/rand.
	Rand io.Reader
}

// Cipher is one SA's ESP transform.
type Cipher struct {
	spi    uint32
	esn    bool
	kind   encKind
	block  int // padding alignment block (at least 4)
	ivLen  int
	icvLen int

	aead cipher.AEAD
	salt [saltLen]byte

	cbc    cipher.Block
	ivGen  cipher.Block
	ivSalt [8]byte

	mac     func() hash.Hash
	macPool sync.Pool // *macState
	cbcPool sync.Pool // *cbcState
}

type scratch struct {
	nonce [12]byte
	aad   [12]byte
	iv    [16]byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

type macState struct {
	h   hash.Hash
	sum [64]byte
	hi  [4]byte
}

type ivSetter interface{ SetIV([]byte) }

type cbcState struct {
	enc, dec cipher.BlockMode
	iv       [16]byte
}

// New checks the transform names and key lengths and returns the Cipher.
func New(c Config) (*Cipher, error) {
	e, ok := encryptions[c.Encryption]
	if !ok {
		return nil, fmt.Errorf("esp: unknown encryption algorithm %q", c.Encryption)
	}
	a, ok := authentications[c.Authentication]
	if !ok {
		return nil, fmt.Errorf("esp: unknown authentication algorithm %q", c.Authentication)
	}
	if e.kind == encAEAD && c.Authentication != "" {
		return nil, fmt.Errorf("esp: %s takes no separate authentication algorithm (%s)", c.Encryption, c.Authentication)
	}
	if e.kind == encNull && c.Authentication == "" {
		return nil, errors.New("esp: neither encryption nor authentication")
	}
	x := &Cipher{spi: c.SPI, esn: c.ESN, kind: e.kind, block: max(e.block, 4), ivLen: e.ivLen}
	switch e.kind {
	case encAEAD:
		if len(c.EncryptionKey) != e.keyLen+saltLen {
			return nil, fmt.Errorf("esp: %s needs a %d-byte key and %d-byte salt, got %d bytes", c.Encryption, e.keyLen, saltLen, len(c.EncryptionKey))
		}
		aead, err := e.newAE(c.EncryptionKey[:e.keyLen])
		if err != nil {
			return nil, fmt.Errorf("esp: %s: %w", c.Encryption, err)
		}
		x.aead = aead
		copy(x.salt[:], c.EncryptionKey[e.keyLen:])
		x.icvLen = e.icvLen
	case encCBC:
		if len(c.EncryptionKey) != e.keyLen {
			return nil, fmt.Errorf("esp: %s needs a %d-byte key, got %d bytes", c.Encryption, e.keyLen, len(c.EncryptionKey))
		}
		b, err := e.newCBC(c.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("esp: %s: %w", c.Encryption, err)
		}
		x.cbc = b
		r := c.Rand
		if r == nil {
			r = rand.Reader
		}
		var seed [16 + 8]byte
		if _, err := io.ReadFull(r, seed[:]); err != nil {
			return nil, fmt.Errorf("esp: seeding the IV generator: %w", err)
		}
		x.ivGen, _ = aes.NewCipher(seed[:16])
		copy(x.ivSalt[:], seed[16:])
		x.cbcPool.New = func() any {
			var s cbcState
			s.enc = cipher.NewCBCEncrypter(x.cbc, s.iv[:x.ivLen])
			s.dec = cipher.NewCBCDecrypter(x.cbc, s.iv[:x.ivLen])
			return &s
		}
	}
	if c.Authentication != "" {
		if len(c.AuthenticationKey) != a.keyLen {
			return nil, fmt.Errorf("esp: %s needs a %d-byte key, got %d bytes", c.Authentication, a.keyLen, len(c.AuthenticationKey))
		}
		x.mac = newMAC(a, c.AuthenticationKey)
		x.icvLen = a.icvLen
		x.macPool.New = func() any { return &macState{h: x.mac()} }
	}
	return x, nil
}

// SPI returns the SPI the Cipher was made for.
func (c *Cipher) SPI() uint32 { return c.spi }

// ESN reports whether the SA uses extended sequence numbers.
func (c *Cipher) ESN() bool { return c.esn }

// IVLen is the length of the IV that follows the ESP header.
func (c *Cipher) IVLen() int { return c.ivLen }

// ICVLen is the length of the integrity check value.
func (c *Cipher) ICVLen() int { return c.icvLen }

// Headroom is what Seal writes before the payload: header and IV.
func (c *Cipher) Headroom() int { return HeaderLen + c.ivLen }

// Overhead is what Seal adds to a payload of n bytes in total.
func (c *Cipher) Overhead(n int) int {
	return c.Headroom() + c.padLen(n) + 2 + c.icvLen
}

// padLen is the padding that aligns payload, pad length and next header to
// the block size and 4 bytes (RFC 4303 section 2.4).
func (c *Cipher) padLen(n int) int {
	return (c.block - (n+2)%c.block) % c.block
}

// SPIOf returns the SPI of an ESP packet.
func SPIOf(pkt []byte) (uint32, error) {
	if len(pkt) < HeaderLen {
		return 0, ErrShort
	}
	return binary.BigEndian.Uint32(pkt), nil
}

// SeqOf returns the low 32 bits of the sequence number of an ESP packet.
func SeqOf(pkt []byte) uint32 { return binary.BigEndian.Uint32(pkt[4:]) }

// Seal encrypts the payload buf[start:end] in place into an ESP packet and
// returns it: buf[start-Headroom() : end+trailer]. The caller leaves
// Headroom() bytes before start and Overhead(end-start)-Headroom() bytes of
// capacity after end. seq is the full sequence number, which the SAD hands
// out once per packet; nextHeader is 4 for IPv4 and 41 for IPv6 in tunnel
// mode.
func (c *Cipher) Seal(buf []byte, start, end int, seq uint64, nextHeader byte) ([]byte, error) {
	if c.kind != encAEAD {
		return c.seal(buf, start, end, seq, nextHeader, nil)
	}
	// RFC 4106 section 3.1: the IV is the sequence number.
	var iv [8]byte
	binary.BigEndian.PutUint64(iv[:], seq)
	return c.seal(buf, start, end, seq, nextHeader, iv[:])
}

func (c *Cipher) seal(buf []byte, start, end int, seq uint64, nh byte, fixedIV []byte) ([]byte, error) {
	n := end - start
	pad := c.padLen(n)
	hdr := start - c.Headroom()
	tail := end + pad + 2 + c.icvLen
	if hdr < 0 || end < start || tail > cap(buf) {
		return nil, ErrBuffer
	}
	buf = buf[:tail]
	p := buf[hdr:tail]
	binary.BigEndian.PutUint32(p[0:], c.spi)
	binary.BigEndian.PutUint32(p[4:], uint32(seq))
	// Padding 1, 2, 3, ... (RFC 4303 section 2.4), pad length, next header.
	t := buf[end : end+pad+2]
	for i := 0; i < pad; i++ {
		t[i] = byte(i + 1)
	}
	t[pad] = byte(pad)
	t[pad+1] = nh
	ivAt := p[HeaderLen : HeaderLen+c.ivLen]
	body := buf[start : end+pad+2] // what gets encrypted
	if fixedIV != nil && len(fixedIV) != c.ivLen {
		return nil, ErrBuffer
	}
	switch c.kind {
	case encAEAD:
		copy(ivAt, fixedIV)
		s := scratchPool.Get().(*scratch)
		copy(s.nonce[:4], c.salt[:])
		copy(s.nonce[4:], ivAt)
		ct := c.aead.Seal(body[:0], s.nonce[:], body, c.aad(s, p, seq))
		scratchPool.Put(s)
		if len(ct) != len(body)+c.icvLen {
			return nil, ErrBuffer
		}
	case encCBC:
		if fixedIV != nil {
			copy(ivAt, fixedIV)
		} else {
			c.nextIV(ivAt, seq)
		}
		s := c.cbcPool.Get().(*cbcState)
		if sv, ok := s.enc.(ivSetter); ok {
			sv.SetIV(ivAt)
			s.enc.CryptBlocks(body, body)
		} else {
			cipher.NewCBCEncrypter(c.cbc, ivAt).CryptBlocks(body, body)
		}
		c.cbcPool.Put(s)
	}
	if c.mac != nil {
		c.icv(p[:len(p)-c.icvLen], seq, p[len(p)-c.icvLen:])
	}
	return p, nil
}

// aad is the additional data of RFC 4106 section 5 / RFC 7634 section 2.1:
// SPI and 32-bit sequence number, or SPI and the 64-bit ESN in full.
func (c *Cipher) aad(s *scratch, p []byte, seq uint64) []byte {
	if !c.esn {
		return p[:HeaderLen]
	}
	copy(s.aad[:4], p[:4])
	binary.BigEndian.PutUint32(s.aad[4:], uint32(seq>>32))
	copy(s.aad[8:], p[4:8]) // the low half as sent
	return s.aad[:]
}

// nextIV writes an unpredictable CBC IV: AES under a random key of the
// sequence number and a random salt, never repeating within the SA.
func (c *Cipher) nextIV(dst []byte, seq uint64) {
	s := scratchPool.Get().(*scratch)
	binary.BigEndian.PutUint64(s.iv[:8], seq)
	copy(s.iv[8:], c.ivSalt[:])
	c.ivGen.Encrypt(s.iv[:], s.iv[:])
	copy(dst, s.iv[:])
	scratchPool.Put(s)
}

// icv computes the HMAC ICV over header, IV and ciphertext, followed by
// the high-order ESN bits, which are authenticated but never sent (RFC
// 4303 section 2.2.1 and appendix A).
func (c *Cipher) icv(data []byte, seq uint64, out []byte) {
	m := c.macPool.Get().(*macState)
	m.h.Reset()
	m.h.Write(data)
	if c.esn {
		binary.BigEndian.PutUint32(m.hi[:], uint32(seq>>32))
		m.h.Write(m.hi[:])
	}
	sum := m.h.Sum(m.sum[:0])
	copy(out, sum[:c.icvLen])
	c.macPool.Put(m)
}

// Open authenticates and decrypts the ESP packet pkt in place, with seq
// the full sequence number (with ESN, its high half inferred by the replay
// window). It returns the inner packet, a slice of pkt, and the next
// header. The caller records seq in the replay window only after Open
// succeeded (RFC 4303 section 3.4.3).
func (c *Cipher) Open(pkt []byte, seq uint64) (payload []byte, nextHeader byte, err error) {
	min := c.Headroom() + 2 + c.icvLen
	if len(pkt) < min {
		return nil, 0, ErrShort
	}
	body := pkt[c.Headroom():]
	switch c.kind {
	case encAEAD:
		s := scratchPool.Get().(*scratch)
		copy(s.nonce[:4], c.salt[:])
		copy(s.nonce[4:], pkt[HeaderLen:HeaderLen+c.ivLen])
		pt, err := c.aead.Open(body[:0], s.nonce[:], body, c.aad(s, pkt, seq))
		scratchPool.Put(s)
		if err != nil {
			return nil, 0, ErrAuth
		}
		body = pt
	default:
		if c.mac != nil {
			m := c.macPool.Get().(*macState)
			var ok bool
			at := len(pkt) - c.icvLen
			m.h.Reset()
			m.h.Write(pkt[:at])
			if c.esn {
				binary.BigEndian.PutUint32(m.hi[:], uint32(seq>>32))
				m.h.Write(m.hi[:])
			}
			sum := m.h.Sum(m.sum[:0])
			ok = subtle.ConstantTimeCompare(sum[:c.icvLen], pkt[at:]) == 1
			c.macPool.Put(m)
			if !ok {
				return nil, 0, ErrAuth
			}
			body = body[:len(body)-c.icvLen]
		}
		if c.kind == encCBC {
			if len(body)%c.block != 0 || len(body) == 0 {
				return nil, 0, ErrDecrypt
			}
			s := c.cbcPool.Get().(*cbcState)
			iv := pkt[HeaderLen : HeaderLen+c.ivLen]
			if sv, ok := s.dec.(ivSetter); ok {
				sv.SetIV(iv)
				s.dec.CryptBlocks(body, body)
			} else {
				cipher.NewCBCDecrypter(c.cbc, iv).CryptBlocks(body, body)
			}
			c.cbcPool.Put(s)
		}
	}
	return trailer(body)
}

// trailer strips and checks pad, pad length and next header. The padding
// must be 1, 2, 3, ... (RFC 4303 section 2.4: the receiver may check it).
func trailer(body []byte) ([]byte, byte, error) {
	if len(body) < 2 {
		return nil, 0, ErrPadding
	}
	nh := body[len(body)-1]
	pad := int(body[len(body)-2])
	if pad+2 > len(body) {
		return nil, 0, ErrPadding
	}
	p := body[len(body)-2-pad : len(body)-2]
	var bad byte
	for i, b := range p {
		bad |= b ^ byte(i+1)
	}
	if bad != 0 {
		return nil, 0, ErrPadding
	}
	return body[:len(body)-2-pad], nh, nil
}
