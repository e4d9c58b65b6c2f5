package pki

import (
	"context"
	"crypto/sha1"
	"crypto/x509"
	"fmt"

	"github.com/sitesec/sitesec/pkid/csr"
	"github.com/sitesec/sitesec/pkid/keystore"
	"github.com/sitesec/sitesec/pkid/verify"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/trace"
)

// anchors resolves trusted-ca names into the profiles with their CA
// certificates.
func (a *App) anchors(trusted []string) ([]verify.Anchor, error) {
	set := a.profiles()
	names, err := set.Resolve(trusted)
	if err != nil {
		return nil, err
	}
	var out []verify.Anchor
	for _, n := range names {
		out = append(out, verify.Anchor{Profile: set.Profiles[n], CAs: a.certs.CA(n)})
	}
	return out, nil
}

// Validate checks a peer's chain for kmd (pkid.validate).
func (a *App) Validate(ctx context.Context, r *pb.ValidateChainRequest) *pb.ValidateChainReply {
	anchors, err := a.anchors(r.GetTrustedCa())
	if err != nil {
		a.trace(trace.FlagCertificateVerification, trace.Error).Str("service_set", r.GetServiceSet()).Err(err).Msg("validation failed")
		return &pb.ValidateChainReply{Reason: err.Error()}
	}
	res := verify.Chain(ctx, revocation{a}, verify.Request{
		Chain:      r.GetCertificates(),
		Anchors:    anchors,
		Identity:   r.GetPeerIdentity(),
		PolicyOIDs: r.GetPolicyOids(),
		Now:        a.Now(),
	})
	rep := &pb.ValidateChainReply{Valid: res.Valid, Reason: res.Reason, CaProfile: res.CAProfile}
	if res.Leaf != nil {
		rep.Subject = csr.FormatDN(res.Leaf.Subject)
		rep.Issuer = csr.FormatDN(res.Leaf.Issuer)
		rep.SubjectAltNames = altNames(res.Leaf)
		if res.Valid {
			rep.PublicKey = res.Leaf.RawSubjectPublicKeyInfo
			a.peers.add(r.GetServiceSet(), r.GetCertificates())
		}
	}
	ev := a.trace(trace.FlagCertificateVerification, trace.Info)
	if !res.Valid {
		ev = a.trace(trace.FlagCertificateVerification, trace.Error)
	}
	ev.Str("service_set", r.GetServiceSet()).Str("subject", rep.Subject).Str("ca_profile", res.CAProfile).
		Bool("valid", res.Valid).Str("reason", res.Reason).Bool("revocation_skipped", res.RevocationSkipped).Msg("peer certificate validation")
	return rep
}

// altNames renders subjectAltName entries as IKE identities.
func altNames(c *x509.Certificate) []string {
	var out []string
	for _, d := range c.DNSNames {
		out = append(out, "fqdn:"+d)
	}
	for _, ip := range c.IPAddresses {
		if ip.To4() != nil {
			out = append(out, "ipv4:"+ip.String())
		} else {
			out = append(out, "ipv6:"+ip.String())
		}
	}
	for _, e := range c.EmailAddresses {
		out = append(out, "email:"+e)
	}
	for _, u := range c.URIs {
		out = append(out, "uri:"+u.String())
	}
	return out
}

// Sign signs for kmd with a local certificate's key (pkid.sign). The data
// and the signature are not traced.
func (a *App) Sign(_ context.Context, r *pb.SignRequest) *pb.SignReply {
	sig, err := a.keys.Sign(r.GetCertificateId(), r.GetScheme(), r.GetData())
	if err != nil {
		a.trace(trace.FlagAll, trace.Error).Str("certificate_id", r.GetCertificateId()).Err(err).Msg("sign")
		return &pb.SignReply{Error: err.Error()}
	}
	return &pb.SignReply{Signature: sig}
}

// chain builds the local certificate's chain for CERT payloads: the end
// entity, then each issuer found among the stored chain and the CA
// profiles' certificates, stopping before a self-signed root (RFC 7296
// section 3.6 lets the peer have its trust anchor).
func (a *App) chain(id string) ([]*x509.Certificate, error) {
	stored := a.certs.Local(id)
	if len(stored) == 0 {
		return nil, fmt.Errorf("no local certificate %q", id)
	}
	pool := append([]*x509.Certificate(nil), stored[1:]...)
	for _, p := range a.certs.CAProfiles() {
		pool = append(pool, a.certs.CA(p)...)
	}
	out := []*x509.Certificate{stored[0]}
	cur := stored[0]
	for len(out) < 8 {
		var next *x509.Certificate
		for _, c := range pool {
			if string(c.RawSubject) == string(cur.RawIssuer) && cur.CheckSignatureFrom(c) == nil {
				next = c
				break
			}
		}
		if next == nil || string(next.RawSubject) == string(next.RawIssuer) {
			break
		}
		out = append(out, next)
		cur = next
	}
	return out, nil
}

// issuerOf finds the certificate that signed c among the stored chain and
// the CA profiles.
func (a *App) issuerOf(id string, c *x509.Certificate) *x509.Certificate {
	pool := a.certs.Local(id)
	for _, p := range a.certs.CAProfiles() {
		pool = append(pool, a.certs.CA(p)...)
	}
	for _, ca := range pool {
		if ca != c && string(ca.RawSubject) == string(c.RawIssuer) && c.CheckSignatureFrom(ca) == nil {
			return ca
		}
	}
	return nil
}

// LocalCertificate returns a local certificate and its chain (pkid.local).
func (a *App) LocalCertificate(_ context.Context, r *pb.LocalCertificateRequest) *pb.LocalCertificateReply {
	id := r.GetCertificateId()
	chain, err := a.chain(id)
	if err != nil {
		return &pb.LocalCertificateReply{Error: err.Error()}
	}
	pub, err := a.keys.Public(id)
	if err != nil {
		return &pb.LocalCertificateReply{Error: fmt.Sprintf("local certificate %q has no key pair: %v", id, err)}
	}
	leaf := chain[0]
	if !samePublic(pub, leaf.PublicKey) {
		return &pb.LocalCertificateReply{Error: fmt.Sprintf("local certificate %q does not match its key pair", id)}
	}
	if r.GetEndEntityOnly() {
		chain = chain[:1]
	}
	rep := &pb.LocalCertificateReply{
		KeyType:         keystore.KeyType(pub),
		Subject:         csr.FormatDN(leaf.Subject),
		SubjectAltNames: altNames(leaf),
	}
	for _, c := range chain {
		rep.Certificates = append(rep.Certificates, c.Raw)
	}
	if iss := a.issuerOf(id, leaf); iss != nil {
		h := sha1.Sum(iss.RawSubjectPublicKeyInfo)
		rep.IssuerKeyHash = h[:]
	}
	return rep
}

// CAs returns the SHA-1 hashes of the trusted CAs' SubjectPublicKeyInfo
// for CERTREQ payloads (RFC 7296 section 3.7), pkid.cas.
func (a *App) CAs(_ context.Context, r *pb.CARequest) *pb.CAReply {
	anchors, err := a.anchors(r.GetTrustedCa())
	if err != nil {
		return &pb.CAReply{Error: err.Error()}
	}
	rep := &pb.CAReply{}
	seen := map[[20]byte]bool{}
	for _, an := range anchors {
		for _, c := range an.CAs {
			h := sha1.Sum(c.RawSubjectPublicKeyInfo)
			if !seen[h] {
				seen[h] = true
				rep.KeyHashes = append(rep.KeyHashes, h[:])
			}
		}
	}
	return rep
}
