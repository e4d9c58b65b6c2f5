package transform

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sitesec/sitesec/kmd/message"
)

// Junos proposal names (SPEC section 1) mapped onto IKEv2 transforms.
//
// Defaults where a statement is omitted are Junos's, as cfgd's schema
// declares them (issue 12 item 8): the first values of Juniper's table of
// implicit proposals ("Default IKE and IPsec Proposals for Dynamic SA
// Negotiations": IKE group1, sha1, 3des-cbc, 3600 s; IPsec ESP,
// hmac-sha1-96, 3des-cbc, 28800 s). PFS is off unless configured;
// perfect-forward-secrecy without keys is group1. group1, sha1 and 3DES
// are weak: commit check warns when a proposal leaves them to the default
// (cfgd/check weak.go), and kmd runs them, as Junos does, rather than
// something else.
const (
	DefaultIKEEncryption    = "3des-cbc"
	DefaultIKEAuthAlgorithm = "sha1"
	DefaultIKEDHGroup       = "group1"
	DefaultIPsecAuth        = "hmac-sha1-96"
	DefaultIPsecEncryption  = "3des-cbc"
	DefaultIKELifetime      = 3600
	DefaultIPsecLifetime    = 28800
)

// Encryption maps a Junos encryption-algorithm name.
func Encryption(name string) (id, bits uint16, err error) {
	switch name {
	case "3des-cbc":
		return message.Encr3DES, 0, nil
	case "aes-128-cbc":
		return message.EncrAESCBC, 128, nil
	case "aes-192-cbc":
		return message.EncrAESCBC, 192, nil
	case "aes-256-cbc":
		return message.EncrAESCBC, 256, nil
	case "aes-128-gcm":
		return message.EncrAESGCM16, 128, nil
	case "aes-256-gcm":
		return message.EncrAESGCM16, 256, nil
	case "chacha20-poly1305":
		return message.EncrChaCha20Poly1305, 256, nil
	}
	return 0, 0, fmt.Errorf("encryption-algorithm %s is not supported", name)
}

// IKEAuthentication maps an IKE proposal authentication-algorithm onto
// the PRF and integrity transforms.
func IKEAuthentication(name string) (prf, integ uint16, err error) {
	switch name {
	case "sha1":
		return message.PRFHMACSHA1, message.IntegHMACSHA196, nil
	case "sha-256":
		return message.PRFHMACSHA2256, message.IntegHMACSHA256128, nil
	case "sha-384":
		return message.PRFHMACSHA2384, message.IntegHMACSHA384192, nil
	case "sha-512":
		return message.PRFHMACSHA2512, message.IntegHMACSHA512256, nil
	}
	return 0, 0, fmt.Errorf("authentication-algorithm %s is not supported", name)
}

// IPsecAuthentication maps an IPsec proposal authentication-algorithm.
func IPsecAuthentication(name string) (uint16, error) {
	switch name {
	case "hmac-sha1-96":
		return message.IntegHMACSHA196, nil
	case "hmac-sha-256-128", "hmac-sha2-256":
		return message.IntegHMACSHA256128, nil
	case "hmac-sha-384-192":
		return message.IntegHMACSHA384192, nil
	case "hmac-sha-512-256":
		return message.IntegHMACSHA512256, nil
	}
	return 0, fmt.Errorf("authentication-algorithm %s is not supported", name)
}

// DHGroup maps "groupN" onto N.
func DHGroup(name string) (uint16, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(name, "group"))
	if err != nil || !strings.HasPrefix(name, "group") || !SupportedGroup(uint16(n)) {
		return 0, fmt.Errorf("dh-group %s is not supported (use group1, 2, 5, 14, 15, 16, 19, 20, 21, 24 or 31)", name)
	}
	return uint16(n), nil
}

// IKESuite builds the IKE suite of a Junos IKE proposal's fields, applying
// the defaults for empty ones.
func IKESuite(encryption, authentication, dhGroup string) (Suite, error) {
	if encryption == "" {
		encryption = DefaultIKEEncryption
	}
	if authentication == "" {
		authentication = DefaultIKEAuthAlgorithm
		if encryption == "aes-128-gcm" || encryption == "aes-256-gcm" || encryption == "chacha20-poly1305" {
			// An AEAD suite has no integrity algorithm for the default
			// to name; its PRF (RFC 5282 section 7) stays sha-256.
			authentication = "sha-256"
		}
	}
	if dhGroup == "" {
		dhGroup = DefaultIKEDHGroup
	}
	s := Suite{Protocol: message.ProtocolIKE}
	var err error
	if s.Encr, s.EncrKeyBits, err = Encryption(encryption); err != nil {
		return s, err
	}
	if s.PRF, s.Integ, err = IKEAuthentication(authentication); err != nil {
		return s, err
	}
	if s.AEAD() {
		s.Integ = message.IntegNone
	}
	if s.DH, err = DHGroup(dhGroup); err != nil {
		return s, err
	}
	return s, s.Valid()
}

// ESPSuite builds the CHILD SA suite of a Junos IPsec proposal and the
// policy's PFS group ("" for none). With AES-GCM the authentication
// algorithm must be empty (SPEC section 2 rule 22).
func ESPSuite(encryption, authentication, pfs string) (Suite, error) {
	if encryption == "" {
		encryption = DefaultIPsecEncryption
	}
	s := Suite{Protocol: message.ProtocolESP}
	var err error
	if s.Encr, s.EncrKeyBits, err = Encryption(encryption); err != nil {
		return s, err
	}
	if !s.AEAD() {
		if authentication == "" {
			authentication = DefaultIPsecAuth
		}
		if s.Integ, err = IPsecAuthentication(authentication); err != nil {
			return s, err
		}
	} else if authentication != "" {
		return s, fmt.Errorf("HMAC Authentication is not compatible with %s", encryption)
	}
	if pfs != "" {
		if s.DH, err = DHGroup(pfs); err != nil {
			return s, err
		}
	}
	return s, s.Valid()
}

// AHSuite builds the CHILD SA suite of a Junos IPsec proposal with
// protocol ah: integrity only (RFC 7296 section 3.3.1, protocol ID 2).
func AHSuite(authentication, pfs string) (Suite, error) {
	if authentication == "" {
		authentication = DefaultIPsecAuth
	}
	s := Suite{Protocol: message.ProtocolAH}
	var err error
	if s.Integ, err = IPsecAuthentication(authentication); err != nil {
		return s, err
	}
	if pfs != "" {
		if s.DH, err = DHGroup(pfs); err != nil {
			return s, err
		}
	}
	return s, s.Valid()
}

// AllIKE is every supported IKE transform, as two proposals (non-AEAD and
// AEAD). It is what a responder accepts for dynamic endpoints ("implicit
// proposals accept every supported transform", SPEC section 3) and the
// default when a policy names no proposal.
func AllIKE() []message.Proposal {
	dh := func() []message.Transform {
		var ts []message.Transform
		for _, g := range Groups {
			ts = append(ts, message.NewTransform(message.TransformDH, g, 0))
		}
		return ts
	}
	prfs := []message.Transform{
		message.NewTransform(message.TransformPRF, message.PRFHMACSHA2256, 0),
		message.NewTransform(message.TransformPRF, message.PRFHMACSHA2384, 0),
		message.NewTransform(message.TransformPRF, message.PRFHMACSHA2512, 0),
		message.NewTransform(message.TransformPRF, message.PRFHMACSHA1, 0),
	}
	cbc := message.Proposal{Number: 1, Protocol: message.ProtocolIKE}
	for _, b := range []uint16{256, 128, 192} {
		cbc.Transforms = append(cbc.Transforms, message.NewTransform(message.TransformENCR, message.EncrAESCBC, b))
	}
	// Junos's implicit proposals start with 3des-cbc: last here.
	cbc.Transforms = append(cbc.Transforms, message.NewTransform(message.TransformENCR, message.Encr3DES, 0))
	cbc.Transforms = append(cbc.Transforms, prfs...)
	for _, i := range []uint16{message.IntegHMACSHA256128, message.IntegHMACSHA384192, message.IntegHMACSHA512256, message.IntegHMACSHA196} {
		cbc.Transforms = append(cbc.Transforms, message.NewTransform(message.TransformINTEG, i, 0))
	}
	cbc.Transforms = append(cbc.Transforms, dh()...)
	aead := message.Proposal{Number: 2, Protocol: message.ProtocolIKE, Transforms: []message.Transform{
		message.NewTransform(message.TransformENCR, message.EncrAESGCM16, 256),
		message.NewTransform(message.TransformENCR, message.EncrAESGCM16, 128),
		message.NewTransform(message.TransformENCR, message.EncrChaCha20Poly1305, 0),
	}}
	aead.Transforms = append(aead.Transforms, prfs...)
	aead.Transforms = append(aead.Transforms, dh()...)
	return []message.Proposal{cbc, aead}
}

// AllESP is every supported ESP transform, with the given PFS groups
// (none: no PFS accepted).
func AllESP(pfs ...uint16) []message.Proposal {
	esn := message.NewTransform(message.TransformESN, message.ESNNone, 0)
	esn1 := message.NewTransform(message.TransformESN, message.ESNUsed, 0)
	cbc := message.Proposal{Number: 1, Protocol: message.ProtocolESP}
	for _, b := range []uint16{256, 128, 192} {
		cbc.Transforms = append(cbc.Transforms, message.NewTransform(message.TransformENCR, message.EncrAESCBC, b))
	}
	cbc.Transforms = append(cbc.Transforms, message.NewTransform(message.TransformENCR, message.Encr3DES, 0))
	for _, i := range []uint16{message.IntegHMACSHA256128, message.IntegHMACSHA384192, message.IntegHMACSHA512256, message.IntegHMACSHA196} {
		cbc.Transforms = append(cbc.Transforms, message.NewTransform(message.TransformINTEG, i, 0))
	}
	aead := message.Proposal{Number: 2, Protocol: message.ProtocolESP, Transforms: []message.Transform{
		message.NewTransform(message.TransformENCR, message.EncrAESGCM16, 256),
		message.NewTransform(message.TransformENCR, message.EncrAESGCM16, 128),
		message.NewTransform(message.TransformENCR, message.EncrChaCha20Poly1305, 0),
	}}
	for _, p := range []*message.Proposal{&cbc, &aead} {
		for _, g := range pfs {
			p.Transforms = append(p.Transforms, message.NewTransform(message.TransformDH, g, 0))
		}
		p.Transforms = append(p.Transforms, esn, esn1)
	}
	return []message.Proposal{cbc, aead}
}
