package ikev1

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"hash"
)

// prf is HMAC with the negotiated hash (RFC 2409 section 4: "the HMAC
// version of the negotiated hash algorithm is used as a pseudo-random
// function").
func prf(h func() hash.Hash, key []byte, data ...[]byte) []byte {
	m := hmac.New(h, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

func digest(h func() hash.Hash, data ...[]byte) []byte {
	m := h()
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

// keys is the phase 1 key schedule (RFC 2409 section 5 for pre-shared
// keys).
type keys struct {
	skeyid, d, a, e []byte
	enc             []byte // the cipher key, appendix B expansion
	iv              []byte // phase 1 IV chain: last CBC block (section 5, appendix B)
}

// deriveKeys computes SKEYID = prf(pre-shared-key, Ni_b | Nr_b), or
// prf(Ni_b | Nr_b, g^xy) for signatures (section 5.1), and
// SKEYID_d, _a, _e = prf(SKEYID, [previous |] g^xy | CKY-I | CKY-R | 0/1/2),
// the encryption key (appendix B: expanded with prf(SKEYID_e, K(n-1))
// when SKEYID_e is too short) and the first IV, hash(g^xi | g^xr).
func deriveKeys(s Phase1, psk, ni, nr, gxy, gxi, gxr []byte, ci, cr [8]byte) (*keys, error) {
	h := s.newHash()
	keyLen, block, err := s.cipher()
	if err != nil {
		return nil, err
	}
	k := &keys{skeyid: prf(h, psk, ni, nr)}
	if signatureAuth(s.Auth) {
		k.skeyid = prf(h, append(append([]byte(nil), ni...), nr...), gxy)
	}
	k.d = prf(h, k.skeyid, gxy, ci[:], cr[:], []byte{0})
	k.a = prf(h, k.skeyid, k.d, gxy, ci[:], cr[:], []byte{1})
	k.e = prf(h, k.skeyid, k.a, gxy, ci[:], cr[:], []byte{2})
	if len(k.e) >= keyLen {
		k.enc = append([]byte(nil), k.e[:keyLen]...)
	} else {
		kn := prf(h, k.e, []byte{0})
		for len(k.enc) < keyLen {
			k.enc = append(k.enc, kn...)
			kn = prf(h, k.e, kn)
		}
		k.enc = k.enc[:keyLen]
	}
	k.iv = digest(h, gxi, gxr)[:block]
	return k, nil
}

func blockCipher(s Phase1, key []byte) (cipher.Block, error) {
	switch s.Encr {
	case 1:
		return des.NewCipher(key)
	case 5:
		return des.NewTripleDESCipher(key)
	}
	return aes.NewCipher(key)
}

// encrypt pads plaintext to the block size with zeros and a final pad
// length octet (RFC 2408 section 3.5 leaves the padding to the
// implementation; RFC 2409 appendix B; strongSwan and Junos ignore its
// value) and returns the ciphertext; iv is the chain value, replaced by
// the last ciphertext block.
func encrypt(b cipher.Block, iv []byte, plaintext []byte) (ct, next []byte) {
	bs := b.BlockSize()
	pad := bs - len(plaintext)%bs
	ct = make([]byte, len(plaintext)+pad)
	copy(ct, plaintext)
	ct[len(ct)-1] = byte(pad - 1)
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(ct, ct)
	return ct, append([]byte(nil), ct[len(ct)-bs:]...)
}

var errCiphertext = errors.New("ikev1: ciphertext not a multiple of the block size")

// decrypt returns the plaintext (with its padding) and the next IV.
func decrypt(b cipher.Block, iv []byte, ct []byte) (pt, next []byte, err error) {
	bs := b.BlockSize()
	if len(ct) == 0 || len(ct)%bs != 0 {
		return nil, nil, errCiphertext
	}
	pt = make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(pt, ct)
	return pt, append([]byte(nil), ct[len(ct)-bs:]...), nil
}

// messageIV is the first IV of a phase 2 or informational exchange:
// hash(last phase 1 CBC block | M-ID) (RFC 2409 appendix B).
func messageIV(h func() hash.Hash, p1iv []byte, mid uint32) []byte {
	return digest(h, p1iv, binary.BigEndian.AppendUint32(nil, mid))[:len(p1iv)]
}

// keymat is RFC 2409 section 5.5: KEYMAT = K1 | K2 | ..., K1 =
// prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b), Kn =
// prf(SKEYID_d, K(n-1) | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b).
func keymat(h func() hash.Hash, skeyidD, gxy []byte, protocol uint8, spi uint32, ni, nr []byte, n int) []byte {
	spib := binary.BigEndian.AppendUint32(nil, spi)
	var out, k []byte
	for len(out) < n {
		k = prf(h, skeyidD, k, gxy, []byte{protocol}, spib, ni, nr)
		out = append(out, k...)
	}
	return out[:n]
}
