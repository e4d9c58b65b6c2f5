package ikev1

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
	"time"

	"github.com/sitesec/sitesec/kmd/isakmp"
	"github.com/sitesec/sitesec/kmd/transform"
)

// Phase1 is one ISAKMP SA transform (RFC 2409 appendix A): cipher, hash
// (also the PRF, RFC 2409 section 4), authentication method and group.
type Phase1 struct {
	Encr     uint16 // isakmp.EncrDES, Encr3DES, EncrAES
	KeyBits  uint16 // AES only
	Hash     uint16
	Auth     uint16
	Group    uint16
	Lifetime time.Duration // 0: not sent, the peer's default
}

// Phase2 is one offer of a quick mode (RFC 2407 section 4.4.4 and
// 4.5): an ESP transform, an AH transform (AH set, ESP 0), or an AH + ESP
// bundle (RFC 2409 section 9: one proposal number, an AH and an ESP
// proposal; AH authenticates, ESP only encrypts, Junos `protocol bundle`).
type Phase2 struct {
	ESP      uint8  // isakmp.ESPAES, ESP3DES, ESPDES, ESPAESGCM16, ESPNull; 0 for AH alone
	KeyBits  uint16 // AES only
	AuthAlg  uint16 // isakmp.AuthHMAC*: ESP's, or AH's with AH; 0 with AES-GCM
	AH       bool
	Group    uint16 // PFS group, 0 for none
	Lifetime time.Duration
}

// Bundle reports an AH + ESP bundle.
func (s Phase2) Bundle() bool { return s.AH && s.ESP != 0 }

// ahIDs maps the AH transform IDs onto the authentication algorithm
// attribute each must carry (RFC 2407 section 4.5: the same algorithm).
var ahIDs = map[uint8]uint16{isakmp.AHMD5: isakmp.AuthHMACMD5, isakmp.AHSHA: isakmp.AuthHMACSHA,
	isakmp.AHSHA256: isakmp.AuthHMACSHA256, isakmp.AHSHA384: isakmp.AuthHMACSHA384, isakmp.AHSHA512: isakmp.AuthHMACSHA512}

// ahID is the AH transform ID of an authentication algorithm, 0 if none.
func ahID(auth uint16) uint8 {
	for id, a := range ahIDs {
		if a == auth {
			return id
		}
	}
	return 0
}

func (s Phase1) same(o Phase1) bool {
	return s.Encr == o.Encr && s.KeyBits == o.KeyBits && s.Hash == o.Hash && s.Auth == o.Auth && s.Group == o.Group
}

func (s Phase2) same(o Phase2) bool {
	return s.ESP == o.ESP && s.KeyBits == o.KeyBits && s.AuthAlg == o.AuthAlg && s.Group == o.Group && s.AH == o.AH
}

// Valid checks that s is implemented.
func (s Phase1) Valid() error {
	if _, _, err := s.cipher(); err != nil {
		return err
	}
	if s.newHash() == nil {
		return fmt.Errorf("ikev1: hash %d", s.Hash)
	}
	if !transform.SupportedGroup(s.Group) {
		return fmt.Errorf("ikev1: group %d", s.Group)
	}
	if s.Auth != isakmp.AuthPSK && !signatureAuth(s.Auth) {
		return fmt.Errorf("ikev1: authentication method %d is not supported", s.Auth)
	}
	return nil
}

// Valid checks that s is implemented by fwdd's ESP and AH.
func (s Phase2) Valid() error {
	if s.AH {
		if ahID(s.AuthAlg) == 0 {
			return fmt.Errorf("ikev1: AH authentication %d", s.AuthAlg)
		}
		if s.ESP != 0 && (s.ESP == isakmp.ESPAESGCM16 || s.ESP == isakmp.ESPNull || s.EncryptionName() == "") {
			return fmt.Errorf("ikev1: bundle ESP transform %d/%d", s.ESP, s.KeyBits)
		}
		if s.Group != 0 && !transform.SupportedGroup(s.Group) {
			return fmt.Errorf("ikev1: PFS group %d", s.Group)
		}
		return nil
	}
	if s.EncryptionName() == "" {
		return fmt.Errorf("ikev1: ESP transform %d/%d", s.ESP, s.KeyBits)
	}
	if s.ESP != isakmp.ESPAESGCM16 && s.IntegrityName() == "" {
		return fmt.Errorf("ikev1: ESP authentication %d", s.AuthAlg)
	}
	if s.Group != 0 && !transform.SupportedGroup(s.Group) {
		return fmt.Errorf("ikev1: PFS group %d", s.Group)
	}
	return nil
}

func (s Phase1) newHash() func() hash.Hash {
	switch s.Hash {
	case isakmp.HashMD5:
		return md5.New
	case isakmp.HashSHA1:
		return sha1.New
	case isakmp.HashSHA256:
		return sha256.New
	case isakmp.HashSHA384:
		return sha512.New384
	case isakmp.HashSHA512:
		return sha512.New
	}
	return nil
}

// cipher returns the key length and block size of the phase 1 cipher.
func (s Phase1) cipher() (keyLen, block int, err error) {
	switch s.Encr {
	case isakmp.EncrDES:
		return 8, 8, nil
	case isakmp.Encr3DES:
		return 24, 8, nil
	case isakmp.EncrAES:
		if s.KeyBits == 128 || s.KeyBits == 192 || s.KeyBits == 256 {
			return int(s.KeyBits) / 8, 16, nil
		}
	}
	return 0, 0, fmt.Errorf("ikev1: phase 1 cipher %d/%d", s.Encr, s.KeyBits)
}

// String is the Junos-like name, "aes-128-cbc/sha1/group14".
func (s Phase1) String() string {
	enc := map[uint16]string{isakmp.EncrDES: "des-cbc", isakmp.Encr3DES: "3des-cbc"}[s.Encr]
	if s.Encr == isakmp.EncrAES {
		enc = fmt.Sprintf("aes-%d-cbc", s.KeyBits)
	}
	h := map[uint16]string{isakmp.HashMD5: "md5", isakmp.HashSHA1: "sha1", isakmp.HashSHA256: "sha-256", isakmp.HashSHA384: "sha-384", isakmp.HashSHA512: "sha-512"}[s.Hash]
	return fmt.Sprintf("%s/%s/group%d", enc, h, s.Group)
}

// AuthName is how Junos shows the authentication method.
func (s Phase1) AuthName() string {
	switch s.Auth {
	case isakmp.AuthRSA:
		return "RSA-signatures"
	case isakmp.AuthECDSA256:
		return "ECDSA-signatures-256"
	case isakmp.AuthECDSA384:
		return "ECDSA-signatures-384"
	case isakmp.AuthECDSA521:
		return "ECDSA-signatures-521"
	}
	return "Pre-shared-keys"
}

// EncryptionName is the Junos name fwdd's ESP knows.
func (s Phase2) EncryptionName() string {
	switch s.ESP {
	case isakmp.ESPDES:
		return "des-cbc"
	case isakmp.ESP3DES:
		return "3des-cbc"
	case isakmp.ESPAES:
		switch s.KeyBits {
		case 128, 192, 256:
			return fmt.Sprintf("aes-%d-cbc", s.KeyBits)
		}
	case isakmp.ESPAESGCM16:
		switch s.KeyBits {
		case 128, 192, 256:
			return fmt.Sprintf("aes-%d-gcm", s.KeyBits)
		}
	case isakmp.ESPNull:
		return "null"
	}
	return ""
}

// IntegrityName is the Junos name of the ESP authentication algorithm.
func (s Phase2) IntegrityName() string {
	return map[uint16]string{
		isakmp.AuthHMACMD5: "hmac-md5-96", isakmp.AuthHMACSHA: "hmac-sha1-96",
		isakmp.AuthHMACSHA256: "hmac-sha-256-128", isakmp.AuthHMACSHA384: "hmac-sha-384-192",
		isakmp.AuthHMACSHA512: "hmac-sha-512-256",
	}[s.AuthAlg]
}

// keyLens are the ESP encryption (with the 4-byte salt of RFC 4106
// section 8.1) and integrity key lengths cut from KEYMAT. With AH the
// integrity key is AH's (its own KEYMAT); a bundle's ESP has none.
func (s Phase2) keyLens() (enc, integ int) {
	switch s.ESP {
	case isakmp.ESPDES:
		enc = 8
	case isakmp.ESP3DES:
		enc = 24
	case isakmp.ESPAES:
		enc = int(s.KeyBits) / 8
	case isakmp.ESPAESGCM16:
		enc = int(s.KeyBits)/8 + 4
	}
	integ = map[uint16]int{isakmp.AuthHMACMD5: 16, isakmp.AuthHMACSHA: 20, isakmp.AuthHMACSHA256: 32, isakmp.AuthHMACSHA384: 48, isakmp.AuthHMACSHA512: 64}[s.AuthAlg]
	return enc, integ
}

// transform1 renders s as a phase 1 transform numbered n.
func (s Phase1) transform(n uint8) isakmp.Transform {
	as := []isakmp.Attr{isakmp.Basic(isakmp.AttrEncryption, s.Encr)}
	if s.Encr == isakmp.EncrAES {
		as = append(as, isakmp.Basic(isakmp.AttrKeyLength, s.KeyBits))
	}
	as = append(as, isakmp.Basic(isakmp.AttrHash, s.Hash), isakmp.Basic(isakmp.AttrAuthMethod, s.Auth), isakmp.Basic(isakmp.AttrGroup, s.Group))
	if s.Lifetime > 0 {
		as = append(as, isakmp.Basic(isakmp.AttrLifeType, isakmp.LifeSeconds), isakmp.Long(isakmp.AttrLifeDuration, uint32(s.Lifetime/time.Second)))
	}
	return isakmp.Transform{Number: n, ID: isakmp.TransformKeyIKE, Attrs: as}
}

// phase1Of reads a phase 1 transform.
func phase1Of(t isakmp.Transform) (Phase1, error) {
	var s Phase1
	if t.ID != isakmp.TransformKeyIKE {
		return s, fmt.Errorf("ikev1: phase 1 transform ID %d", t.ID)
	}
	lifeType := uint64(isakmp.LifeSeconds)
	for _, a := range t.Attrs {
		v, ok := a.Uint()
		if !ok {
			return s, fmt.Errorf("ikev1: attribute %d too long", a.Type)
		}
		switch a.Type {
		case isakmp.AttrEncryption:
			s.Encr = uint16(v)
		case isakmp.AttrKeyLength:
			s.KeyBits = uint16(v)
		case isakmp.AttrHash:
			s.Hash = uint16(v)
		case isakmp.AttrAuthMethod:
			s.Auth = uint16(v)
		case isakmp.AttrGroup:
			s.Group = uint16(v)
		case isakmp.AttrLifeType:
			lifeType = v
		case isakmp.AttrLifeDuration:
			if lifeType == isakmp.LifeSeconds && v < 1<<31 {
				s.Lifetime = time.Duration(v) * time.Second
			}
		}
	}
	if s.Encr == isakmp.EncrAES && s.KeyBits == 0 {
		s.KeyBits = 128 // RFC 3602 section 5.3 for IKE: no attribute is 128
	}
	return s, s.Valid()
}

// proposals renders s as the proposals numbered n of a quick mode
// offer or answer: ESP, AH, or AH then ESP under one number (RFC 2408
// section 4.2); spi is ESP's or AH's, aux ESP's in a bundle.
func (s Phase2) proposals(n uint8, spi, aux uint32, encap uint16) []isakmp.Proposal {
	b := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	if !s.AH {
		return []isakmp.Proposal{{Number: n, Protocol: isakmp.ProtoESP, SPI: b(spi), Transforms: []isakmp.Transform{s.transform(1, encap)}}}
	}
	out := []isakmp.Proposal{{Number: n, Protocol: isakmp.ProtoAH, SPI: b(spi), Transforms: []isakmp.Transform{s.ahTransform(1, encap)}}}
	if s.ESP != 0 {
		e := s
		e.AH, e.AuthAlg = false, 0
		out = append(out, isakmp.Proposal{Number: n, Protocol: isakmp.ProtoESP, SPI: b(aux), Transforms: []isakmp.Transform{e.transform(1, encap)}})
	}
	return out
}

// ahTransform renders the AH half of s (RFC 2407 section 4.4.3): the
// transform ID names the algorithm, the authentication attribute repeats
// it.
func (s Phase2) ahTransform(n uint8, encap uint16) isakmp.Transform {
	e := s
	e.ESP, e.KeyBits = 0, 0
	t := e.transform(n, encap)
	t.ID = ahID(s.AuthAlg)
	return t
}

// ahPhase2Of reads an AH transform.
func ahPhase2Of(t isakmp.Transform) (Phase2, uint16, error) {
	id := t.ID
	t.ID = 0
	s, encap, _ := phase2Of(t)
	s.ESP, s.KeyBits, s.AH = 0, 0, true
	if a, ok := ahIDs[id]; !ok || a != s.AuthAlg {
		return s, 0, fmt.Errorf("ikev1: AH transform %d with authentication %d", id, s.AuthAlg)
	}
	return s, encap, s.Valid()
}

// transform renders s as an ESP transform numbered n with encapsulation
// mode encap.
func (s Phase2) transform(n uint8, encap uint16) isakmp.Transform {
	var as []isakmp.Attr
	if s.Lifetime > 0 {
		as = append(as, isakmp.Basic(isakmp.AttrSALifeType, isakmp.LifeSeconds), isakmp.Long(isakmp.AttrSALifeDuration, uint32(s.Lifetime/time.Second)))
	}
	if s.Group != 0 {
		as = append(as, isakmp.Basic(isakmp.AttrGroupDesc, s.Group))
	}
	as = append(as, isakmp.Basic(isakmp.AttrEncapMode, encap))
	if s.AuthAlg != 0 {
		as = append(as, isakmp.Basic(isakmp.AttrAuthAlg, s.AuthAlg))
	}
	if s.ESP == isakmp.ESPAES || s.ESP == isakmp.ESPAESGCM16 {
		as = append(as, isakmp.Basic(isakmp.AttrKeyLen, s.KeyBits))
	}
	return isakmp.Transform{Number: n, ID: s.ESP, Attrs: as}
}

// phase2Of reads an ESP transform and its encapsulation mode.
func phase2Of(t isakmp.Transform) (Phase2, uint16, error) {
	s := Phase2{ESP: t.ID}
	encap := uint16(isakmp.EncapTunnel)
	lifeType := uint64(isakmp.LifeSeconds)
	for _, a := range t.Attrs {
		v, ok := a.Uint()
		if !ok {
			return s, 0, fmt.Errorf("ikev1: attribute %d too long", a.Type)
		}
		switch a.Type {
		case isakmp.AttrSALifeType:
			lifeType = v
		case isakmp.AttrSALifeDuration:
			if lifeType == isakmp.LifeSeconds && v < 1<<31 {
				s.Lifetime = time.Duration(v) * time.Second
			}
		case isakmp.AttrGroupDesc:
			s.Group = uint16(v)
		case isakmp.AttrEncapMode:
			encap = uint16(v)
		case isakmp.AttrAuthAlg:
			s.AuthAlg = uint16(v)
		case isakmp.AttrKeyLen:
			s.KeyBits = uint16(v)
		}
	}
	if s.ESP == isakmp.ESPAES && s.KeyBits == 0 {
		s.KeyBits = 128
	}
	return s, encap, s.Valid()
}
