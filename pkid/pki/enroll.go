package pki

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/sitesec/sitesec/pkid/csr"
	"github.com/sitesec/sitesec/pkid/profile"
	"github.com/sitesec/sitesec/pkid/scep"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/trace"
)

// EnrollTimeout bounds one enrollment started by a command.
const EnrollTimeout = 25 * time.Second

func (a *App) scepClient(p *profile.Profile) *scep.Client {
	return &scep.Client{URL: p.EnrollmentURL, HTTP: a.HTTP, Now: a.Now, Rand: a.Rand, Sleep: a.Sleep}
}

// enrollCA is `request security pki ca-certificate enroll ca-profile P`:
// GetCACert, show the fingerprints, load on confirmation. The certificates
// shown are the ones loaded: they are kept until the confirmation comes.
func (a *App) enrollCA(ctx context.Context, words []string, confirmed bool) *pb.OpReply {
	if n := len(words); n > 0 && words[n-1] == "yes" {
		// Scripts confirm by adding "yes" to the command.
		confirmed, words = true, words[:n-1]
	}
	ar, err := parseArgs(words, []string{"ca-profile"}, nil)
	if err != nil {
		return errReply("%v", err)
	}
	prof := ar.one("ca-profile")
	p := a.profiles().Profiles[prof]
	if p == nil {
		return errReply("ca-profile %q is not configured", prof)
	}
	if p.EnrollmentURL == "" {
		return errReply("ca-profile %s has no enrollment url", prof)
	}
	a.mu.Lock()
	pend, ok := a.pendingCA[prof]
	if ok && a.Now().Sub(pend.at) > pendingCATTL {
		ok = false
	}
	a.mu.Unlock()
	if confirmed && ok {
		a.mu.Lock()
		delete(a.pendingCA, prof)
		a.mu.Unlock()
		return a.installCA(prof, pend.certs)
	}
	ctx, cancel := context.WithTimeout(ctx, EnrollTimeout)
	defer cancel()
	certs, err := a.scepClient(p).GetCACert(ctx, p.CAIdentity)
	if err != nil {
		a.trace(trace.FlagEnrollment, trace.Error).Str("ca_profile", prof).Err(err).Msg("GetCACert failed")
		return errReply("%v", err)
	}
	a.trace(trace.FlagEnrollment, trace.Info).Str("ca_profile", prof).Int("certificates", len(certs)).Msg("GetCACert")
	if confirmed {
		return a.installCA(prof, certs)
	}
	var lines []string
	for _, c := range certs {
		lines = append(lines, summary(c)...)
		lines = append(lines, fingerprintLines(c)...)
	}
	a.mu.Lock()
	a.pendingCA[prof] = pendingCA{certs: certs, at: a.Now()}
	a.mu.Unlock()
	return &pb.OpReply{Lines: lines, ConfirmQuestion: ConfirmCAQuestion}
}

// enrollLocal is `request security pki local-certificate enroll [scep]
// ca-profile P certificate-id ID challenge-password PW subject DN ...`.
func (a *App) enrollLocal(ctx context.Context, words []string, secret string) *pb.OpReply {
	if len(words) > 0 && words[0] == "scep" {
		words = words[1:]
	}
	ar, err := parseArgs(words, []string{"ca-profile", "certificate-id", "challenge-password", "subject", "domain-name",
		"ip-address", "email", "digest", "scep-encryption-algorithm", "scep-digest-algorithm"}, nil)
	if err != nil {
		return errReply("%v", err)
	}
	prof, id := ar.one("ca-profile"), ar.one("certificate-id")
	p := a.profiles().Profiles[prof]
	if p == nil {
		return errReply("ca-profile %q is not configured", prof)
	}
	pw := ar.one("challenge-password")
	if secret != "" {
		pw = secret
	}
	r, err := a.csrRequest(ar)
	if err != nil {
		return errReply("%v", err)
	}
	r.ChallengePassword = pw
	key, err := a.keys.Signer(id)
	if err != nil {
		return errReply("%v", err)
	}
	a.mu.Lock()
	if a.enrolling[id] {
		a.mu.Unlock()
		return errReply("enrollment of %s is already in progress", id)
	}
	a.enrolling[id] = true
	a.mu.Unlock()
	type result struct {
		crt *x509.Certificate
		err error
	}
	done := make(chan result, 1)
	enc := ar.one("scep-encryption-algorithm")
	// The enrollment runs under pkid's lifetime, not the command's: a CA
	// that answers PENDING is polled retry times every retry-interval.
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ctx, cancel := context.WithTimeout(a.bg, enrollDeadline(p))
		defer cancel()
		crt, err := a.enroll(ctx, p, id, key, r, enc)
		if err == nil {
			err = a.storeEnrolled(id, crt, nil)
		}
		a.mu.Lock()
		delete(a.enrolling, id)
		a.mu.Unlock()
		if err != nil {
			a.publish(pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_ENROLLMENT_FAILED, id, prof, err.Error(), nil)
		} else {
			a.publish(pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_LOCAL_LOADED, id, prof, csr.FormatDN(crt.Subject), nil)
		}
		done <- result{crt, err}
	}()
	wait := time.NewTimer(a.CommandWait)
	defer wait.Stop()
	select {
	case res := <-done:
		if res.err != nil {
			return errReply("%v", res.err)
		}
		lines := []string{"Received following certificates:", "  Certificate: " + csr.FormatDN(res.crt.Subject)}
		lines = append(lines, fingerprintLines(res.crt)...)
		return &pb.OpReply{Lines: append(lines, "Certificate "+id+" loaded successfully")}
	case <-wait.C:
	case <-ctx.Done():
	}
	return &pb.OpReply{Lines: []string{
		"Certificate enrollment has started. To view the certificate enrollment status, check the pkid trace file",
		"at /var/log/pkid (flag enrollment) or run show security pki local-certificate certificate-id " + id + ".",
	}}
}

// enrollDeadline bounds a background enrollment: every retry, plus a
// minute.
func enrollDeadline(p *profile.Profile) time.Duration {
	return time.Duration(p.Retry+1)*p.RetryInterval + time.Minute
}

// enroll runs one SCEP PKCSReq with key for profile p.
func (a *App) enroll(ctx context.Context, p *profile.Profile, id string, key crypto.Signer, r csr.Request, enc string) (*x509.Certificate, error) {
	if p.EnrollmentURL == "" {
		return nil, fmt.Errorf("ca-profile %s has no enrollment url", p.Name)
	}
	cas := a.certs.CA(p.Name)
	if len(cas) == 0 {
		return nil, fmt.Errorf("ca-profile %s has no CA certificate; run request security pki ca-certificate enroll ca-profile %s first", p.Name, p.Name)
	}
	der, err := csr.Create(a.Rand, key, r)
	if err != nil {
		return nil, err
	}
	a.trace(trace.FlagEnrollment, trace.Info).Str("certificate_id", id).Str("ca_profile", p.Name).Str("subject", r.Subject).Msg("SCEP enrollment started")
	crt, err := a.scepClient(p).Enroll(ctx, scep.Enrollment{
		CAIdentity: p.CAIdentity, CACerts: cas, CSR: der, Key: key, Encryption: enc,
		Retry: p.Retry, RetryInterval: p.RetryInterval,
	})
	if err != nil {
		a.trace(trace.FlagEnrollment, trace.Error).Str("certificate_id", id).Err(err).Msg("SCEP enrollment failed")
		return nil, err
	}
	a.trace(trace.FlagEnrollment, trace.Info).Str("certificate_id", id).Str("serial", fmt.Sprintf("%x", crt.SerialNumber)).Msg("SCEP enrollment succeeded")
	return crt, nil
}

// storeEnrolled stores an enrolled certificate (and its new key, when the
// key pair was regenerated) in one step.
func (a *App) storeEnrolled(id string, crt *x509.Certificate, newKey crypto.Signer) error {
	if newKey != nil {
		if err := a.keys.Put(id, newKey); err != nil {
			return err
		}
	}
	chain := []*x509.Certificate{crt}
	if err := a.certs.SetLocal(id, chain); err != nil {
		return err
	}
	a.certs.ClearRequest(id)
	return nil
}

// triggerTime is when re-enrollment starts: pct percent into the
// certificate's validity.
func triggerTime(c *x509.Certificate, pct int) time.Time {
	life := c.NotAfter.Sub(c.NotBefore)
	return c.NotBefore.Add(life / 100 * time.Duration(pct))
}

// autoReEnroll re-enrolls every configured local certificate whose
// trigger time has passed, retrying per the profile's retry-interval.
func (a *App) autoReEnroll(ctx context.Context, set *profile.Set) {
	now := a.Now()
	for id, e := range set.Enroll {
		chain := a.certs.Local(id)
		if len(chain) == 0 {
			continue
		}
		cur := chain[0]
		if now.Before(triggerTime(cur, e.TriggerPercent)) {
			continue
		}
		p := set.Profiles[e.CAProfile]
		a.mu.Lock()
		st := a.renew[id]
		if st == nil {
			st = &renewal{}
			a.renew[id] = st
		}
		wait := now.Before(st.next)
		a.mu.Unlock()
		if wait {
			continue
		}
		err := a.reEnroll(ctx, id, e, p, cur)
		a.mu.Lock()
		if err != nil {
			st.attempts++
			st.lastErr = err.Error()
			interval := p.RetryInterval
			if interval <= 0 {
				interval = profile.DefaultRetryInterval
			}
			st.next = now.Add(interval)
		} else {
			delete(a.renew, id)
		}
		a.mu.Unlock()
		if err != nil {
			a.publish(pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_ENROLLMENT_FAILED, id, p.Name, err.Error(), nil)
		}
	}
}

func (a *App) reEnroll(ctx context.Context, id string, e *profile.AutoReEnroll, p *profile.Profile, cur *x509.Certificate) error {
	key, err := a.keys.Signer(id)
	if err != nil {
		return err
	}
	var newKey crypto.Signer
	if e.RegenerateKeypair {
		newKey, err = a.keys.Fresh(id)
		if err != nil {
			return err
		}
		key = newKey
	}
	r := csr.Request{
		Subject:           dnString(cur),
		DomainNames:       cur.DNSNames,
		Emails:            cur.EmailAddresses,
		ChallengePassword: e.ChallengePassword,
	}
	for _, ip := range cur.IPAddresses {
		r.IPAddresses = append(r.IPAddresses, net.IP(ip))
	}
	ctx, cancel := context.WithTimeout(ctx, EnrollTimeout)
	defer cancel()
	crt, err := a.enroll(ctx, p, id, key, r, e.SCEPEncryption)
	if err != nil {
		return err
	}
	if err := a.storeEnrolled(id, crt, newKey); err != nil {
		return err
	}
	a.publish(pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_LOCAL_RENEWED, id, p.Name,
		fmt.Sprintf("serial %x valid until %s", crt.SerialNumber, crt.NotAfter.UTC().Format(time.RFC3339)), nil)
	return nil
}

// dnString renders a certificate subject back into the operator's input
// form ("CN=a,O=b"), for re-enrollment.
func dnString(c *x509.Certificate) string {
	s := csr.FormatDN(c.Subject)
	parts := strings.Split(s, ", ")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, ",", `\,`)
	}
	return strings.Join(parts, ",")
}
