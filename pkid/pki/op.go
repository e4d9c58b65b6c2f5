package pki

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sitesec/sitesec/pkid/certstore"
	"github.com/sitesec/sitesec/pkid/crl"
	"github.com/sitesec/sitesec/pkid/csr"
	"github.com/sitesec/sitesec/pkid/keystore"
	"github.com/sitesec/sitesec/pkid/verify"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/trace"
)

// ConfirmCAQuestion is Junos's question after `ca-certificate enroll`.
const ConfirmCAQuestion = "Do you want to load the above CA certificate ? [yes,no] (no)"

// pendingCATTL bounds how long fetched CA certificates wait for the
// operator's confirmation.
const pendingCATTL = 5 * time.Minute

// args is a command's keyword arguments: "certificate-id ID" pairs, and
// flags (brief, detail, ...) with an empty value.
type args map[string][]string

func (a args) one(k string) string {
	if v := a[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (a args) has(k string) bool { _, ok := a[k]; return ok }

// parseArgs reads words as keyword/value pairs. Keywords in valued take a
// value; those in flags stand alone; anything else is an error.
func parseArgs(words []string, valued, flags []string) (args, error) {
	out := args{}
	isKW := func(w string) bool {
		for _, k := range append(valued, flags...) {
			if w == k {
				return true
			}
		}
		return false
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case contains(flags, w):
			out[w] = nil
		case contains(valued, w):
			if i+1 >= len(words) || (isKW(words[i+1]) && w == "challenge-password") {
				if w == "challenge-password" {
					// The value travels in secret_argument.
					out[w] = nil
					continue
				}
				return nil, fmt.Errorf("syntax error, expecting value for %s", w)
			}
			out[w] = append(out[w], words[i+1])
			i++
		default:
			return nil, fmt.Errorf("syntax error, unexpected %q", w)
		}
	}
	return out, nil
}

func contains(list []string, w string) bool {
	for _, x := range list {
		if x == w {
			return true
		}
	}
	return false
}

func errReply(format string, a ...any) *pb.OpReply {
	return &pb.OpReply{Error: fmt.Sprintf(format, a...)}
}

// Op answers `show|clear|request security pki ...` and `show|clear
// services ipsec-vpn certificates`. Errors read as operator messages:
// without the package prefixes of pkid's own errors, and without the
// bulk of an over-long word (a SCEP URL carries a whole PKCS#7 message).
func (a *App) Op(ctx context.Context, req *pb.OpRequest) *pb.OpReply {
	rep := a.op(ctx, req)
	if rep.Error != "" {
		rep.Error = operatorText(rep.Error)
	}
	return rep
}

// internalPrefixes are the package prefixes of pkid's errors ("keystore:
// no such key pair"), which mean nothing to an operator.
var internalPrefixes = []string{"keystore: ", "certstore: ", "csr: ", "crl: ", "ocsp: ", "scep: ", "verify: ", "profile: "}

// maxWord bounds one word of an operator message.
const maxWord = 200

func operatorText(s string) string {
	for _, p := range internalPrefixes {
		s = strings.ReplaceAll(s, p, "")
	}
	f := strings.Split(s, " ")
	for i, w := range f {
		if len(w) > maxWord {
			f[i] = w[:maxWord] + fmt.Sprintf("...(%d bytes)", len(w))
		}
	}
	return strings.Join(f, " ")
}

func (a *App) op(ctx context.Context, req *pb.OpRequest) *pb.OpReply {
	w := req.GetWords()
	if len(w) >= 4 && w[1] == "services" && w[2] == "ipsec-vpn" && w[3] == "certificates" {
		return a.servicesCertificates(w[0], w[4:])
	}
	if len(w) < 4 || w[1] != "security" || w[2] != "pki" {
		return errReply("syntax error: %s", strings.Join(w, " "))
	}
	rest := w[4:]
	switch w[0] + " " + w[3] {
	case "show ca-certificate":
		return a.showCertificates(rest, true)
	case "show local-certificate":
		return a.showCertificates(rest, false)
	case "show certificate-request":
		return a.showRequests(rest)
	case "show crl":
		return a.showCRLs(rest)
	case "clear ca-certificate", "clear local-certificate", "clear certificate-request", "clear key-pair", "clear crl":
		return a.clear(w[3], rest)
	case "request generate-key-pair":
		return a.generateKeyPair(rest)
	case "request generate-certificate-request":
		return a.generateRequest(rest)
	case "request ca-certificate", "request local-certificate", "request crl":
		if len(rest) == 0 {
			return errReply("syntax error, expecting <command>.")
		}
		switch w[3] + " " + rest[0] {
		case "ca-certificate enroll":
			return a.enrollCA(ctx, rest[1:], req.GetConfirmed())
		case "ca-certificate load":
			return a.loadCA(rest[1:], req.GetFiles())
		case "ca-certificate verify":
			return a.verifyCA(rest[1:])
		case "local-certificate enroll":
			return a.enrollLocal(ctx, rest[1:], req.GetSecretArgument())
		case "local-certificate generate-self-signed":
			return a.generateSelfSigned(rest[1:])
		case "local-certificate load":
			return a.loadLocal(rest[1:], req.GetFiles())
		case "local-certificate verify":
			return a.verifyLocal(ctx, rest[1:])
		case "crl load":
			return a.loadCRL(rest[1:], req.GetFiles())
		}
	}
	return errReply("syntax error: %s", strings.Join(w, " "))
}

// fileData returns the content of the file name a load command names, as
// the cli read it with the operator's permissions (OpRequest.files). pkid
// runs as root and never opens a path the operator typed (issue 14 item 5).
func fileData(files []*pb.OpFile, name string) ([]byte, error) {
	for _, f := range files {
		if f.GetName() == name {
			if len(f.GetData()) > maxFile {
				return nil, fmt.Errorf("cannot read %s: more than %d bytes", name, maxFile)
			}
			return f.GetData(), nil
		}
	}
	return nil, fmt.Errorf("cannot read %s: the cli did not send its content", name)
}

// maxFile bounds a certificate, key or CRL file (services/opfile.MaxPKI).
const maxFile = 1 << 20

func (a *App) generateKeyPair(words []string) *pb.OpReply {
	ar, err := parseArgs(words, []string{"certificate-id", "type", "size"}, nil)
	if err != nil {
		return errReply("%v", err)
	}
	id := ar.one("certificate-id")
	if id == "" {
		return errReply("certificate-id is required")
	}
	size := 0
	if s := ar.one("size"); s != "" {
		if size, err = strconv.Atoi(s); err != nil {
			return errReply("size %q is not a number", s)
		}
	}
	if _, err := a.keys.Generate(id, ar.one("type"), size); err != nil {
		return errReply("%v", err)
	}
	a.trace(trace.FlagAll, trace.Info).Str("certificate_id", id).Msg("key pair generated")
	var lines []string
	switch typ := ar.one("type"); {
	case (typ == "" || typ == keystore.TypeRSA) && size == 1024:
		// NIST SP 800-131A disallows 1024-bit RSA for signatures.
		lines = append(lines, "warning: a 1024-bit RSA key is weak (NIST SP 800-131A disallows it for signatures); use 2048 bits or more")
	case typ == keystore.TypeDSA:
		// FIPS 186-5 no longer approves DSA signatures.
		lines = append(lines, "warning: DSA keys sign certificate requests and self-signed certificates only; IKE authentication needs an rsa or ecdsa key pair")
		if size == 1024 {
			lines = append(lines, "warning: a 1024-bit DSA key is weak (NIST SP 800-131A disallows it for signatures); use 2048 bits")
		}
	}
	return &pb.OpReply{Lines: append(lines, "Generated key pair "+id+", key size "+describeSize(ar.one("type"), size)+" bits")}
}

func describeSize(typ string, size int) string {
	if size != 0 {
		return strconv.Itoa(size)
	}
	if typ == "ecdsa" {
		return "256"
	}
	return "2048"
}

func (a *App) csrRequest(ar args) (csr.Request, error) {
	r := csr.Request{Subject: ar.one("subject"), DomainNames: ar["domain-name"], Emails: ar["email"], Digest: ar.one("digest")}
	if r.Subject == "" {
		return r, errors.New("subject is required")
	}
	for _, s := range ar["ip-address"] {
		ip := net.ParseIP(s)
		if ip == nil {
			return r, fmt.Errorf("ip-address %q is not an address", s)
		}
		r.IPAddresses = append(r.IPAddresses, ip)
	}
	return r, nil
}

func (a *App) generateRequest(words []string) *pb.OpReply {
	ar, err := parseArgs(words, []string{"certificate-id", "subject", "domain-name", "ip-address", "email", "digest", "filename"}, nil)
	if err != nil {
		return errReply("%v", err)
	}
	id := ar.one("certificate-id")
	key, err := a.keys.Signer(id)
	if err != nil {
		return errReply("%v", err)
	}
	r, err := a.csrRequest(ar)
	if err != nil {
		return errReply("%v", err)
	}
	der, err := csr.Create(a.Rand, key, r)
	if err != nil {
		return errReply("%v", err)
	}
	if err := a.certs.SetRequest(id, der); err != nil {
		return errReply("%v", err)
	}
	pemText := string(csr.PEM(der))
	lines := strings.Split(strings.TrimSpace(pemText), "\n")
	lines = append(lines, fingerprintLinesDER(der)...)
	rep := &pb.OpReply{Lines: lines}
	if f := ar.one("filename"); f != "" {
		// The cli writes it, as the operator, never over an existing file.
		rep.FileName, rep.FileData = f, []byte(pemText)
		rep.Lines = append(rep.Lines, "The certificate request is saved in "+f)
	}
	return rep
}

// generateSelfSigned answers `request security pki local-certificate
// generate-self-signed certificate-id ID subject DN [domain-name D]
// [email E] [ip-address A]`: a certificate for ID's key pair signed by
// that key, stored as local certificate ID, so `local-certificate ID` in
// an IKE policy uses it at once.
func (a *App) generateSelfSigned(words []string) *pb.OpReply {
	ar, err := parseArgs(words, []string{"certificate-id", "subject", "domain-name", "ip-address", "email", "digest"}, nil)
	if err != nil {
		return errReply("%v", err)
	}
	id := ar.one("certificate-id")
	if id == "" {
		return errReply("certificate-id is required")
	}
	if err := keystore.CheckID(id); err != nil {
		return errReply("%v", err)
	}
	r, err := a.csrRequest(ar)
	if err != nil {
		return errReply("%v", err)
	}
	key, err := a.keys.Signer(id)
	if errors.Is(err, keystore.ErrNotFound) {
		return errReply("no key pair %s: generate it first (request security pki generate-key-pair certificate-id %s)", id, id)
	}
	if err != nil {
		return errReply("%v", err)
	}
	if len(a.certs.Local(id)) > 0 {
		return errReply("local certificate %s already exists: clear it first (clear security pki local-certificate certificate-id %s)", id, id)
	}
	der, err := csr.SelfSigned(a.Rand, key, r, a.Now())
	if err != nil {
		return errReply("%v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return errReply("%v", err)
	}
	if err := a.certs.SetLocal(id, []*x509.Certificate{c}); err != nil {
		return errReply("%v", err)
	}
	a.certs.ClearRequest(id)
	a.publish(pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_LOCAL_LOADED, id, "", csr.FormatDN(c.Subject), nil)
	a.trace(trace.FlagAll, trace.Info).Str("certificate_id", id).Msg("self-signed certificate generated")
	return &pb.OpReply{Lines: []string{"Self-signed certificate generated and loaded successfully"}}
}

func fingerprintLinesDER(der []byte) []string {
	c := &x509.Certificate{Raw: der}
	return fingerprintLines(c)
}

func (a *App) showCertificates(words []string, ca bool) *pb.OpReply {
	valued := []string{"certificate-id"}
	if ca {
		valued = []string{"ca-profile"}
	}
	ar, err := parseArgs(words, valued, []string{"brief", "detail", "system-generated"})
	if err != nil {
		return errReply("%v", err)
	}
	now := a.Now()
	out := &pb.PKICertificates{Detail: ar.has("detail"), Kind: "local-certificate"}
	if ca {
		out.Kind = "ca-certificate"
		for _, p := range a.certs.CAProfiles() {
			if want := ar.one("ca-profile"); want != "" && want != p {
				continue
			}
			for _, c := range a.certs.CA(p) {
				out.Certificates = append(out.Certificates, describe(c, p, p, now))
			}
		}
		if want := ar.one("ca-profile"); want != "" && len(out.Certificates) == 0 {
			return errReply("no CA certificate for ca-profile %s", want)
		}
	} else {
		set := a.profiles()
		for _, id := range a.certs.LocalIDs() {
			if want := ar.one("certificate-id"); want != "" && want != id {
				continue
			}
			c := a.certs.Local(id)[0]
			d := describe(c, id, "", now)
			d.AutoReEnrollment = "Disabled"
			if e := set.Enroll[id]; e != nil {
				d.CaProfile = e.CAProfile
				d.AutoReEnrollment = fmt.Sprintf("Enabled (scep, ca-profile %s, at %d%% of validity: %s)", e.CAProfile, e.TriggerPercent,
					triggerTime(c, e.TriggerPercent).UTC().Format(time.RFC3339))
				a.mu.Lock()
				if r := a.renew[id]; r != nil && r.lastErr != "" {
					d.AutoReEnrollment += "; last attempt failed: " + r.lastErr
				}
				a.mu.Unlock()
			}
			out.Certificates = append(out.Certificates, d)
		}
		if want := ar.one("certificate-id"); want != "" && len(out.Certificates) == 0 {
			return errReply("no local certificate %s", want)
		}
	}
	return &pb.OpReply{Body: &pb.OpReply_PkiCertificates{PkiCertificates: out}}
}

func (a *App) showRequests(words []string) *pb.OpReply {
	ar, err := parseArgs(words, []string{"certificate-id"}, []string{"brief", "detail"})
	if err != nil {
		return errReply("%v", err)
	}
	out := &pb.PKICertificateRequests{}
	for _, id := range a.certs.RequestIDs() {
		if want := ar.one("certificate-id"); want != "" && want != id {
			continue
		}
		der := a.certs.Request(id)
		r := &pb.PKICertificateRequests_Request{CertificateId: id, Pem: string(csr.PEM(der)), FingerprintSha1: csr.Fingerprint(der)}
		if cr, err := x509.ParseCertificateRequest(der); err == nil {
			r.Subject = csr.FormatDN(cr.Subject)
			r.PublicKeyAlgorithm = keystore.Describe(cr.PublicKey)
			r.AlternateSubject = altNames(&x509.Certificate{DNSNames: cr.DNSNames, IPAddresses: cr.IPAddresses, EmailAddresses: cr.EmailAddresses, URIs: cr.URIs})
		}
		out.Requests = append(out.Requests, r)
	}
	return &pb.OpReply{Body: &pb.OpReply_PkiCertificateRequests{PkiCertificateRequests: out}}
}

func (a *App) showCRLs(words []string) *pb.OpReply {
	ar, err := parseArgs(words, []string{"ca-profile"}, []string{"brief", "detail"})
	if err != nil {
		return errReply("%v", err)
	}
	now := a.Now()
	out := &pb.PKICRLs{}
	for _, e := range a.crls.Entries() {
		if want := ar.one("ca-profile"); want != "" && want != e.Profile {
			continue
		}
		c := &pb.PKICRLs_CRL{CaProfile: e.Profile, Issuer: csr.FormatDN(e.Issuer.Subject), Url: e.URL, Status: e.Status(now)}
		if e.List != nil {
			c.ThisUpdateUnix = e.List.ThisUpdate.Unix()
			if !e.List.NextUpdate.IsZero() {
				c.NextUpdateUnix = e.List.NextUpdate.Unix()
			}
			c.FetchedUnix = e.Fetched.Unix()
			for _, r := range e.List.RevokedCertificateEntries {
				c.RevokedSerials = append(c.RevokedSerials, crl.SerialString(r.SerialNumber))
			}
		}
		out.Crls = append(out.Crls, c)
	}
	return &pb.OpReply{Body: &pb.OpReply_PkiCrls{PkiCrls: out}}
}

func (a *App) clear(what string, words []string) *pb.OpReply {
	ar, err := parseArgs(words, []string{"ca-profile", "certificate-id"}, []string{"all"})
	if err != nil {
		return errReply("%v", err)
	}
	prof, id := ar.one("ca-profile"), ar.one("certificate-id")
	var ids []string
	switch what {
	case "ca-certificate", "crl":
		ids = []string{prof}
		if prof == "" || prof == "all" || ar.has("all") {
			ids = a.certs.CAProfiles()
			if what == "crl" {
				n := a.crls.Clear("")
				return &pb.OpReply{Lines: []string{fmt.Sprintf("%d CRLs cleared", n)}}
			}
		}
	default:
		ids = []string{id}
		if id == "" || id == "all" || ar.has("all") {
			switch what {
			case "local-certificate":
				ids = a.certs.LocalIDs()
			case "certificate-request":
				ids = a.certs.RequestIDs()
			case "key-pair":
				ids, _ = a.keys.List()
			}
		}
	}
	var lines []string
	for _, x := range ids {
		var err error
		switch what {
		case "ca-certificate":
			err = a.certs.ClearCA(x)
			if err == nil {
				a.crls.Clear(x)
				a.publish(pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_CA_CLEARED, "", x, "cleared by operator", nil)
			}
		case "crl":
			if a.crls.Clear(x) == 0 {
				err = fmt.Errorf("no CRL for ca-profile %s", x)
			}
		case "local-certificate":
			err = a.certs.ClearLocal(x)
			if err == nil {
				a.publish(pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_LOCAL_CLEARED, x, "", "cleared by operator", nil)
			}
		case "certificate-request":
			err = a.certs.ClearRequest(x)
		case "key-pair":
			err = a.keys.Delete(x)
		}
		if err != nil {
			return &pb.OpReply{Lines: lines, Error: err.Error()}
		}
		lines = append(lines, fmt.Sprintf("%s %s cleared", what, x))
	}
	return &pb.OpReply{Lines: lines}
}

func (a *App) loadCA(words []string, files []*pb.OpFile) *pb.OpReply {
	ar, err := parseArgs(words, []string{"ca-profile", "filename"}, nil)
	if err != nil {
		return errReply("%v", err)
	}
	prof := ar.one("ca-profile")
	p := a.profiles().Profiles[prof]
	if p == nil {
		return errReply("ca-profile %q is not configured", prof)
	}
	data, err := fileData(files, ar.one("filename"))
	if err != nil {
		return errReply("%v", err)
	}
	certs, err := certstore.ParseCertificates(data)
	if err != nil {
		return errReply("%v", err)
	}
	return a.installCA(p.Name, certs)
}

func (a *App) installCA(prof string, certs []*x509.Certificate) *pb.OpReply {
	var lines []string
	for _, c := range certs {
		if !c.IsCA || !c.BasicConstraintsValid {
			// SCEP RA certificates are kept: the CA encrypts to them.
			lines = append(lines, "warning: "+csr.FormatDN(c.Subject)+" is not a CA certificate")
		}
	}
	if err := a.certs.SetCA(prof, certs); err != nil {
		return errReply("%v", err)
	}
	var errs []error
	if p := a.profiles().Profiles[prof]; p != nil {
		a.restoreCRLs(prof, p, &errs)
	}
	a.publish(pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_CA_LOADED, "", prof, fmt.Sprintf("%d certificates", len(certs)), nil)
	a.trace(trace.FlagAll, trace.Info).Str("ca_profile", prof).Int("certificates", len(certs)).Msg("CA certificate loaded")
	return &pb.OpReply{Lines: append(lines, "CA certificate for profile "+prof+" loaded successfully")}
}

func (a *App) verifyCA(words []string) *pb.OpReply {
	ar, err := parseArgs(words, []string{"ca-profile"}, nil)
	if err != nil {
		return errReply("%v", err)
	}
	prof := ar.one("ca-profile")
	certs := a.certs.CA(prof)
	if len(certs) == 0 {
		return errReply("CA certificate for profile %s not found", prof)
	}
	now := a.Now()
	for _, c := range certs {
		if v := validity(c, now); v != "valid" {
			return errReply("CA certificate %s of profile %s is %s (%s to %s)", csr.FormatDN(c.Subject), prof, v,
				c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
		}
		if string(c.RawSubject) == string(c.RawIssuer) {
			if err := c.CheckSignatureFrom(c); err != nil {
				return errReply("CA certificate %s of profile %s: self-signature does not verify: %v", csr.FormatDN(c.Subject), prof, err)
			}
		}
	}
	return &pb.OpReply{Lines: []string{"CA certificate " + prof + " verified successfully"}}
}

func (a *App) loadLocal(words []string, files []*pb.OpFile) *pb.OpReply {
	ar, err := parseArgs(words, []string{"certificate-id", "filename", "key", "passphrase"}, nil)
	if err != nil {
		return errReply("%v", err)
	}
	id := ar.one("certificate-id")
	if err := keystore.CheckID(id); err != nil {
		return errReply("%v", err)
	}
	if ar.has("passphrase") {
		return errReply("encrypted key files are not supported; load an unencrypted key")
	}
	data, err := fileData(files, ar.one("filename"))
	if err != nil {
		return errReply("%v", err)
	}
	certs, err := certstore.ParseCertificates(data)
	if err != nil {
		return errReply("%v", err)
	}
	if k := ar.one("key"); k != "" {
		kd, err := fileData(files, k)
		if err != nil {
			return errReply("%v", err)
		}
		key, err := keystore.ParsePrivateKey(kd)
		if err != nil {
			return errReply("%v", err)
		}
		if !samePublic(key.Public(), certs[0].PublicKey) {
			return errReply("key %s does not match certificate %s", k, csr.FormatDN(certs[0].Subject))
		}
		if err := a.keys.Put(id, key); err != nil {
			return errReply("%v", err)
		}
	} else {
		pub, err := a.keys.Public(id)
		if err != nil {
			return errReply("no key pair %s: generate it first, or give key", id)
		}
		if !samePublic(pub, certs[0].PublicKey) {
			return errReply("certificate %s does not match key pair %s", csr.FormatDN(certs[0].Subject), id)
		}
	}
	if err := a.certs.SetLocal(id, certs); err != nil {
		return errReply("%v", err)
	}
	a.certs.ClearRequest(id)
	a.publish(pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_LOCAL_LOADED, id, "", csr.FormatDN(certs[0].Subject), nil)
	return &pb.OpReply{Lines: []string{"Local certificate " + id + " loaded successfully"}}
}

func samePublic(a, b crypto.PublicKey) bool { return keystore.SamePublic(a, b) }

func (a *App) verifyLocal(ctx context.Context, words []string) *pb.OpReply {
	ar, err := parseArgs(words, []string{"certificate-id"}, nil)
	if err != nil {
		return errReply("%v", err)
	}
	id := ar.one("certificate-id")
	chain, err := a.chain(id)
	if err != nil {
		return errReply("%v", err)
	}
	anchors, err := a.anchors(nil)
	if err != nil {
		return errReply("%v", err)
	}
	var ders [][]byte
	for _, c := range chain {
		ders = append(ders, c.Raw)
	}
	res := verify.Chain(ctx, revocation{a}, verify.Request{Chain: ders, Anchors: anchors, Now: a.Now()})
	if !res.Valid {
		return errReply("Local certificate %s verification failed: %s", id, res.Reason)
	}
	return &pb.OpReply{Lines: []string{"Local certificate " + id + " verification success (ca-profile " + res.CAProfile + ")"}}
}

func (a *App) loadCRL(words []string, files []*pb.OpFile) *pb.OpReply {
	ar, err := parseArgs(words, []string{"ca-profile", "filename"}, nil)
	if err != nil {
		return errReply("%v", err)
	}
	prof := ar.one("ca-profile")
	if a.profiles().Profiles[prof] == nil {
		return errReply("ca-profile %q is not configured", prof)
	}
	data, err := fileData(files, ar.one("filename"))
	if err != nil {
		return errReply("%v", err)
	}
	added, err := a.crls.Load(prof, a.certs.CA(prof), data)
	if err != nil {
		return errReply("%v", err)
	}
	a.publish(pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_CRL_UPDATED, "", prof, "loaded by operator", added)
	return &pb.OpReply{Lines: []string{"CRL for CA profile " + prof + " loaded successfully"}}
}
