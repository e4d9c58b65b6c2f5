package server

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sitesec/sitesec/kmd/ikesa"
	"github.com/sitesec/sitesec/kmd/ikev1"
	"github.com/sitesec/sitesec/kmd/isakmp"
	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/transform"
	"github.com/sitesec/sitesec/proto/pb"
)

// Junos's IKEv1 defaults (SPEC section 5): an IKE proposal field left out
// takes the schema's default (group1 (weak; commit check warns), sha1,
// 3des-cbc, pre-shared keys); an IPsec proposal ESP with hmac-sha1-96
// and 3des-cbc. A policy naming no proposal offers Junos's "standard"
// set: pre-g2-aes128-sha and pre-g2-3des-sha for IKE, g2-esp-3des-sha and
// g2-esp-aes128-sha for IPsec (without PFS unless the policy sets it).
const (
	v1DefaultGroup     = "group1"
	v1DefaultHash      = "sha1"
	v1DefaultIKEEnc    = "3des-cbc"
	v1DefaultIPsecAuth = "hmac-sha1-96"
	v1DefaultIPsecEnc  = "3des-cbc"
)

func v1Encryption(name string) (id, bits uint16, err error) {
	switch name {
	case "des-cbc":
		return isakmp.EncrDES, 0, nil
	case "3des-cbc":
		return isakmp.Encr3DES, 0, nil
	case "aes-128-cbc":
		return isakmp.EncrAES, 128, nil
	case "aes-192-cbc":
		return isakmp.EncrAES, 192, nil
	case "aes-256-cbc":
		return isakmp.EncrAES, 256, nil
	}
	return 0, 0, fmt.Errorf("encryption-algorithm %s is not available with IKEv1", name)
}

// V1Phase1 maps a Junos IKE proposal onto an IKEv1 phase 1 transform.
func V1Phase1(method, group, auth, enc string) (ikev1.Phase1, error) {
	s := ikev1.Phase1{Auth: isakmp.AuthPSK}
	switch method {
	case "", "pre-shared-keys":
	case "rsa-signatures":
		s.Auth = isakmp.AuthRSA // RFC 2409 section 5.1
	case "ecdsa-signatures-256":
		s.Auth = isakmp.AuthECDSA256 // RFC 4754 section 3
	case "ecdsa-signatures-384":
		s.Auth = isakmp.AuthECDSA384
	default:
		return s, fmt.Errorf("authentication-method %s is not supported with IKEv1 yet", method)
	}
	if group == "" {
		group = v1DefaultGroup
	}
	if auth == "" {
		auth = v1DefaultHash
	}
	if enc == "" {
		enc = v1DefaultIKEEnc
	}
	var err error
	if s.Group, err = transform.DHGroup(group); err != nil {
		return s, err
	}
	h, ok := map[string]uint16{"md5": isakmp.HashMD5, "sha1": isakmp.HashSHA1, "sha-256": isakmp.HashSHA256, "sha-384": isakmp.HashSHA384, "sha-512": isakmp.HashSHA512}[auth]
	if !ok {
		return s, fmt.Errorf("authentication-algorithm %s is not supported", auth)
	}
	s.Hash = h
	if s.Encr, s.KeyBits, err = v1Encryption(enc); err != nil {
		return s, err
	}
	return s, s.Valid()
}

// V1Phase2 maps a Junos IPsec proposal and PFS group onto an ESP
// transform of quick mode.
func V1Phase2(auth, enc, pfs string) (ikev1.Phase2, error) {
	var s ikev1.Phase2
	if enc == "" {
		enc = v1DefaultIPsecEnc
	}
	switch enc {
	case "des-cbc":
		s.ESP = isakmp.ESPDES
	case "3des-cbc":
		s.ESP = isakmp.ESP3DES
	case "aes-128-cbc", "aes-192-cbc", "aes-256-cbc":
		s.ESP, s.KeyBits = isakmp.ESPAES, map[string]uint16{"aes-128-cbc": 128, "aes-192-cbc": 192, "aes-256-cbc": 256}[enc]
	case "aes-128-gcm", "aes-192-gcm", "aes-256-gcm":
		s.ESP, s.KeyBits = isakmp.ESPAESGCM16, map[string]uint16{"aes-128-gcm": 128, "aes-192-gcm": 192, "aes-256-gcm": 256}[enc]
	default:
		return s, fmt.Errorf("encryption-algorithm %s is not available with IKEv1", enc)
	}
	if s.ESP != isakmp.ESPAESGCM16 {
		if auth == "" {
			auth = v1DefaultIPsecAuth
		}
		a, ok := map[string]uint16{"hmac-md5-96": isakmp.AuthHMACMD5, "hmac-sha1-96": isakmp.AuthHMACSHA, "hmac-sha-256-128": isakmp.AuthHMACSHA256, "hmac-sha2-256": isakmp.AuthHMACSHA256, "hmac-sha-384-192": isakmp.AuthHMACSHA384, "hmac-sha-512-256": isakmp.AuthHMACSHA512}[auth]
		if !ok {
			return s, fmt.Errorf("authentication-algorithm %s is not available with IKEv1", auth)
		}
		s.AuthAlg = a
	} else if auth != "" {
		return s, fmt.Errorf("HMAC Authentication is not compatible with %s", enc)
	}
	if pfs != "" {
		g, err := transform.DHGroup(pfs)
		if err != nil {
			return s, err
		}
		s.Group = g
	}
	return s, s.Valid()
}

// V1Phase2Protocol is V1Phase2 for an IPsec proposal's protocol: esp,
// ah (authentication only: an AH transform) or bundle (AH with the
// authentication algorithm, ESP with the encryption algorithm and no
// authentication of its own, RFC 2409 section 9).
func V1Phase2Protocol(proto pb.IPsecProtocol, auth, enc, pfs string) (ikev1.Phase2, error) {
	switch proto {
	case pb.IPsecProtocol_IPSEC_PROTOCOL_AH, pb.IPsecProtocol_IPSEC_PROTOCOL_BUNDLE:
	default:
		return V1Phase2(auth, enc, pfs)
	}
	if auth == "" {
		auth = v1DefaultIPsecAuth
	}
	if proto == pb.IPsecProtocol_IPSEC_PROTOCOL_AH {
		enc = "aes-128-cbc" // only to read auth and pfs below; AH encrypts nothing
	} else if enc == "" {
		enc = v1DefaultIPsecEnc
	}
	if strings.HasSuffix(enc, "-gcm") {
		return ikev1.Phase2{}, fmt.Errorf("encryption-algorithm %s cannot be used in a bundle: AH authenticates, ESP only encrypts", enc)
	}
	s, err := V1Phase2(auth, enc, pfs)
	if err != nil {
		return s, err
	}
	s.AH = true
	if proto == pb.IPsecProtocol_IPSEC_PROTOCOL_AH {
		s.ESP, s.KeyBits = 0, 0
	}
	return s, s.Valid()
}

// v1Config builds the IKEv1 tunnel configuration of a resolved IKE (the
// plan filled Junos's IKEv1 defaults in: group1, sha1, aes-256-cbc; the
// "standard" sets when a policy names no proposal) and the
// version-independent parts of cfg (identities, DPD, NAT-T). The caller
// sets the selectors.
func v1Config(ike *pb.PlanIKE, cfg *ikesa.Config, key []byte) (*ikev1.Config, error) {
	path := "services ipsec-vpn ike policy " + ike.GetIkePolicy()
	out := &ikev1.Config{
		Name: cfg.Name, ServiceSet: cfg.ServiceSet, Aggressive: ike.GetMode() == "aggressive",
		PSK:           key,
		Lifetime:      time.Duration(ike.GetIkeLifetime()) * time.Second,
		ChildLifetime: time.Duration(ike.GetIpsecLifetime()) * time.Second,
		NATTraversal:  cfg.NATTraversal, NATKeepalive: cfg.NATKeepalive,
		DPDInterval: cfg.DPDInterval, DPDThreshold: cfg.DPDThreshold,
	}
	var errs []error
	if cfg.LocalID != nil {
		out.LocalID = isakmp.ID{Type: uint8(cfg.LocalID.IDType), Data: cfg.LocalID.Data}
	}
	if m := cfg.RemoteID; m != nil {
		// IKEv1 and IKEv2 share the identification type numbers.
		out.RemoteID = func(id isakmp.ID) bool { return m(&message.ID{IDType: message.IDType(id.Type), Data: id.Data}) }
	}
	for _, p := range ike.GetIkeProposals() {
		s, err := V1Phase1(p.GetAuthenticationMethod(), p.GetDhGroup(), p.GetAuthenticationAlgorithm(), p.GetEncryptionAlgorithm())
		if err != nil {
			errs = append(errs, confError("services ipsec-vpn ike proposal "+p.GetName(), "%v", err))
			continue
		}
		s.Lifetime = out.Lifetime
		out.Proposals = append(out.Proposals, s)
	}
	for _, s := range out.Proposals {
		if s.Auth == isakmp.AuthPSK && len(out.PSK) == 0 {
			// (the plan already requires local-certificate for the
			// signature methods.)
			errs = append(errs, confError(path, "Either pre-shared-key or local-certificate must be configured in the referencd ike policy"))
			break
		}
	}
	for _, p := range ike.GetIpsecProposals() {
		ppath := "services ipsec-vpn ipsec proposal " + p.GetName()
		s, err := V1Phase2Protocol(p.GetProtocol(), p.GetAuthenticationAlgorithm(), p.GetEncryptionAlgorithm(), ike.GetPfsGroup())
		if err != nil {
			errs = append(errs, confError(ppath, "%v", err))
			continue
		}
		out.ESP = append(out.ESP, s)
	}
	return out, errors.Join(errs...)
}
