package server

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/kmd/ikesa"
	"github.com/sitesec/sitesec/kmd/isakmp"
	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/dn"
)

// certAuth authenticates with a local certificate through pkid, which
// holds the private key, signs, and validates the peer's chain against the
// service set's trusted-ca (DESIGN.md, "Certificates").
type certAuth struct {
	s             *Server
	serviceSet    string
	certificateID string
	trustedCA     []string
	endEntityOnly bool
	policyOIDs    []string
	subjectID     bool
}

func (s *Server) newCertAuth(c *certAuth) *ikesa.SignatureAuth {
	c.s = s
	return &ikesa.SignatureAuth{Local: c.local, SignData: c.sign, Validate: c.validate, CAKeyHashes: c.caHashes, SubjectID: c.subjectID}
}

func (c *certAuth) request(verb string, req, rep proto.Message) error {
	ctx, cancel := context.WithTimeout(c.s.ctx, 5*time.Second)
	defer cancel()
	return c.s.Bus.Request(ctx, subject.Pkid, verb, req, rep)
}

func (c *certAuth) local() ([][]byte, string, error) {
	rep := &pb.LocalCertificateReply{}
	if err := c.request(subject.VerbLocalCert, &pb.LocalCertificateRequest{CertificateId: c.certificateID, EndEntityOnly: c.endEntityOnly}, rep); err != nil {
		return nil, "", err
	}
	if rep.GetError() != "" {
		return nil, "", errors.New(rep.GetError())
	}
	return rep.GetCertificates(), rep.GetKeyType(), nil
}

var schemes = map[ikesa.Scheme]pb.SignatureScheme{
	ikesa.RSAPKCS1SHA1:    pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_SHA1,
	ikesa.RSAPKCS1SHA256:  pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_SHA256,
	ikesa.RSAPKCS1SHA384:  pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_SHA384,
	ikesa.RSAPKCS1SHA512:  pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_SHA512,
	ikesa.ECDSAP256SHA256: pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_P256_SHA256,
	ikesa.ECDSAP384SHA384: pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_P384_SHA384,
	ikesa.ECDSAP521SHA512: pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_P521_SHA512,
}

func (c *certAuth) sign(s ikesa.Scheme, raw bool, data []byte) ([]byte, error) {
	sig, err := c.signScheme(schemes[s], data)
	if err != nil || !raw {
		return sig, err
	}
	// pkid signs DER (RFC 7427); the RFC 4754 methods carry r|s.
	return rawECDSA(sig, map[ikesa.Scheme]int{ikesa.ECDSAP256SHA256: 32, ikesa.ECDSAP384SHA384: 48, ikesa.ECDSAP521SHA512: 66}[s])
}

func (c *certAuth) signScheme(s pb.SignatureScheme, data []byte) ([]byte, error) {
	rep := &pb.SignReply{}
	if err := c.request(subject.VerbSign, &pb.SignRequest{CertificateId: c.certificateID, Scheme: s, Data: data}, rep); err != nil {
		return nil, err
	}
	if rep.GetError() != "" {
		return nil, errors.New(rep.GetError())
	}
	return rep.GetSignature(), nil
}

// rawECDSA turns a DER Ecdsa-Sig-Value into r|s, each n octets (RFC
// 4754 section 7).
func rawECDSA(der []byte, n int) ([]byte, error) {
	var v struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &v); err != nil || len(rest) != 0 || n == 0 {
		return nil, errors.New("kmd: pkid's ECDSA signature is not DER")
	}
	if v.R.Sign() < 0 || v.S.Sign() < 0 || len(v.R.Bytes()) > n || len(v.S.Bytes()) > n {
		return nil, errors.New("kmd: pkid's ECDSA signature does not fit the curve")
	}
	out := make([]byte, 2*n)
	v.R.FillBytes(out[:n])
	v.S.FillBytes(out[n:])
	return out, nil
}

// v1Signer is certificate authentication for IKEv1 (kmd/ikev1): the
// same local certificate, pkid signing and chain validation as IKEv2's,
// with RFC 2409 section 5.1's signatures over HASH_I or HASH_R.
type v1Signer struct{ *certAuth }

func (c v1Signer) Local() ([][]byte, string, error) { return c.local() }

func (c v1Signer) SignHash(keyType string, hash []byte) ([]byte, error) {
	if keyType == "rsa" {
		return c.signScheme(pb.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1_NONE, hash)
	}
	n, ok := map[string]int{"ecdsa-p256": 32, "ecdsa-p384": 48, "ecdsa-p521": 66}[keyType]
	if !ok {
		return nil, fmt.Errorf("kmd: key type %q", keyType)
	}
	sig, err := c.signScheme(pb.SignatureScheme_SIGNATURE_SCHEME_ECDSA_NONE, hash)
	if err != nil {
		return nil, err
	}
	return rawECDSA(sig, n)
}

func (c v1Signer) Validate(certs [][]byte, id isakmp.ID) (crypto.PublicKey, error) {
	// IKEv1 and IKEv2 share the identification type numbers.
	return c.validate(certs, &message.ID{IDType: message.IDType(id.Type), Data: id.Data})
}

func (c v1Signer) LocalID() (*isakmp.ID, error) {
	if !c.subjectID {
		return nil, nil
	}
	certs, _, err := c.local()
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("kmd: local certificate for the identity: %v", err)
	}
	x, err := x509.ParseCertificate(certs[0])
	if err != nil {
		return nil, err
	}
	return &isakmp.ID{Type: isakmp.IDDERASN1DN, Data: x.RawSubject}, nil
}

func (c *certAuth) validate(certs [][]byte, id *message.ID) (crypto.PublicKey, error) {
	rep := &pb.ValidateChainReply{}
	req := &pb.ValidateChainRequest{ServiceSet: c.serviceSet, TrustedCa: c.trustedCA, Certificates: certs, PeerIdentity: identity(id), PolicyOids: c.policyOIDs}
	if err := c.request(subject.VerbValidate, req, rep); err != nil {
		return nil, err
	}
	if !rep.GetValid() {
		return nil, fmt.Errorf("pkid: %s", rep.GetReason())
	}
	return x509.ParsePKIXPublicKey(rep.GetPublicKey())
}

func (c *certAuth) caHashes() ([]byte, error) {
	rep := &pb.CAReply{}
	if err := c.request(subject.VerbCAs, &pb.CARequest{TrustedCa: c.trustedCA}, rep); err != nil {
		return nil, err
	}
	var out []byte
	for _, h := range rep.GetKeyHashes() {
		out = append(out, h...)
	}
	return out, nil
}

// identity renders an IKE identity the way pkid matches it against a
// certificate: "ipv4:ADDR", "ipv6:ADDR", "fqdn:NAME", "email:ADDR",
// "dn:DN".
func identity(id *message.ID) string {
	switch id.IDType {
	case message.IDIPv4Addr, message.IDIPv6Addr:
		a, ok := netip.AddrFromSlice(id.Data)
		if !ok {
			return ""
		}
		if a.Is4() {
			return "ipv4:" + a.String()
		}
		return "ipv6:" + a.String()
	case message.IDFQDN:
		return "fqdn:" + string(id.Data)
	case message.IDRFC822:
		return "email:" + string(id.Data)
	case message.IDDERASN1DN:
		// RFC 4514 with every separator inside a value escaped; pkid
		// parses it back to RDNs (services/dn).
		n, err := dn.ParseDER(id.Data)
		if err != nil || len(n) == 0 {
			return ""
		}
		return "dn:" + n.String()
	}
	return ""
}
