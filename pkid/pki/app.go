// Package pki is the pkid daemon: it owns the key pairs, certificates,
// certificate requests and CRLs under <root>/var/db/certs, answers the
// `security pki` operational commands, and serves kmd over the bus:
// chain validation (pkid.validate), signing with a key that never leaves
// pkid (pkid.sign), the local certificate and its chain (pkid.local) and
// the trusted CA key hashes for CERTREQ (pkid.cas). It publishes
// CertificateEvents on pkid.events.
package pki

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sitesec/sitesec/pkid/certstore"
	"github.com/sitesec/sitesec/pkid/crl"
	"github.com/sitesec/sitesec/pkid/keystore"
	"github.com/sitesec/sitesec/pkid/ocsp"
	"github.com/sitesec/sitesec/pkid/profile"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/bus"
	"github.com/sitesec/sitesec/services/daemon"
	"github.com/sitesec/sitesec/services/trace"
)

// ExpiryWarning is how long before a local certificate expires pkid
// publishes LOCAL_EXPIRING (once per certificate).
const ExpiryWarning = 7 * 24 * time.Hour

// DefaultCommandWait is App.CommandWait's default, under cli's 30 s
// timeout for request commands.
const DefaultCommandWait = 20 * time.Second

// TickInterval is how often CRL refresh and auto-re-enrollment are looked at.
const TickInterval = time.Minute

// App implements daemon.App and daemon.Operator.
type App struct {
	// Now, Rand and HTTP are injectable for tests; New sets the defaults.
	Now  func() time.Time
	Rand io.Reader
	HTTP *http.Client
	// FetchCRL downloads CRLs; crl.Fetch by default.
	FetchCRL crl.FetchFunc
	// Publish sends a CertificateEvent; set by Start to the bus.
	Publish func(*pb.CertificateEvent)
	// Tracer is set by Start; nil traces nothing.
	Tracer *trace.Tracer
	// Sleep waits between SCEP polls; nil sleeps for real.
	Sleep func(ctx context.Context, d time.Duration) error
	// CommandWait is how long an enrollment command waits for the CA
	// before answering that the enrollment goes on in the background.
	CommandWait time.Duration

	keys  *keystore.Store
	certs *certstore.Store
	peers peerCache // show services ipsec-vpn certificates
	crls  *crl.Cache
	ocsp  *ocsp.Checker

	mu    sync.Mutex
	set   *profile.Set
	renew map[string]*renewal // auto-re-enrollment state per certificate-id
	// pendingCA holds CA certificates fetched by `ca-certificate enroll`
	// awaiting the operator's confirmation.
	pendingCA map[string]pendingCA
	// enrolling holds the certificate-ids with an enrollment running.
	enrolling map[string]bool
	// warned holds, per certificate-id, the serial already reported as
	// expiring.
	warned map[string]string

	// bg lives from Open to Stop: the refresh loop and enrollments that
	// outlive their command run under it.
	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type pendingCA struct {
	certs []*x509.Certificate
	at    time.Time
}

type renewal struct {
	attempts int
	next     time.Time
	lastErr  string
}

// New returns an App with real clock, randomness and network.
func New() *App {
	return &App{Now: time.Now, Rand: rand.Reader, FetchCRL: crl.Fetch}
}

// Open loads the stores kept under dir. Start calls it with
// <root>/var/db/certs; tests call it directly.
func (a *App) Open(dir string) error {
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.Rand == nil {
		a.Rand = rand.Reader
	}
	if a.FetchCRL == nil {
		a.FetchCRL = crl.Fetch
	}
	a.keys = keystore.New(dir + "/keys")
	a.keys.Rand = a.Rand
	var err error
	a.certs, err = certstore.Open(dir)
	if a.certs == nil {
		return fmt.Errorf("pkid: %w", err)
	}
	if err != nil {
		// Some files did not load; the rest is usable.
		a.trace(trace.FlagAll, trace.Error).Err(err).Msg("certificate store")
	}
	a.crls = crl.New(dir + "/crl")
	a.crls.Now = a.Now
	a.crls.Fetch = a.FetchCRL
	a.crls.Traced = func(prof, url string, revoked int, err error) {
		if err != nil {
			a.trace(trace.FlagOnlineCRLCheck, trace.Warning).Str("ca_profile", prof).Str("url", redactURL(url)).Err(err).Msg("CRL download failed")
			return
		}
		a.trace(trace.FlagOnlineCRLCheck, trace.Info).Str("ca_profile", prof).Str("url", redactURL(url)).Int("revoked", revoked).Msg("CRL downloaded")
	}
	a.ocsp = &ocsp.Checker{HTTP: a.HTTP, Now: a.Now}
	a.set, _ = profile.FromConfig(nil)
	a.renew = map[string]*renewal{}
	a.pendingCA = map[string]pendingCA{}
	a.enrolling = map[string]bool{}
	a.warned = map[string]string{}
	if a.CommandWait == 0 {
		a.CommandWait = DefaultCommandWait
	}
	a.bg, a.cancel = context.WithCancel(context.Background())
	return nil
}

// Start opens the stores, registers the bus services and starts the
// refresh loop.
func (a *App) Start(ctx context.Context, d *daemon.Daemon) error {
	a.Tracer = d.Trace
	if err := a.Open(d.Path("var", "db", "certs")); err != nil {
		return err
	}
	a.Publish = func(ev *pb.CertificateEvent) {
		if err := d.Bus.Publish(subject.Pkid, subject.VerbCertEvents, ev); err != nil {
			a.trace(trace.FlagAll, trace.Warning).Err(err).Msg("publish certificate event")
		}
	}
	// The bus serves the requests of one subscription one at a time; a
	// queue group of several subscriptions lets signatures and
	// validations (with their CRL downloads) run in parallel.
	workers := max(2, runtime.GOMAXPROCS(0))
	for range workers {
		if _, err := bus.Serve(d.Bus, subject.Pkid, subject.VerbValidate, func(ctx context.Context, r *pb.ValidateChainRequest) (*pb.ValidateChainReply, error) {
			return a.Validate(ctx, r), nil
		}); err != nil {
			return err
		}
		if _, err := bus.Serve(d.Bus, subject.Pkid, subject.VerbSign, func(ctx context.Context, r *pb.SignRequest) (*pb.SignReply, error) {
			return a.Sign(ctx, r), nil
		}); err != nil {
			return err
		}
	}
	if _, err := bus.Serve(d.Bus, subject.Pkid, subject.VerbLocalCert, func(ctx context.Context, r *pb.LocalCertificateRequest) (*pb.LocalCertificateReply, error) {
		return a.LocalCertificate(ctx, r), nil
	}); err != nil {
		return err
	}
	if _, err := bus.Serve(d.Bus, subject.Pkid, subject.VerbCAs, func(ctx context.Context, r *pb.CARequest) (*pb.CAReply, error) {
		return a.CAs(ctx, r), nil
	}); err != nil {
		return err
	}
	a.wg.Add(1)
	go a.run(a.bg)
	return nil
}

func (a *App) run(ctx context.Context) {
	defer a.wg.Done()
	t := time.NewTicker(TickInterval)
	defer t.Stop()
	for {
		a.Tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Apply takes a new `security pki` configuration.
func (a *App) Apply(ctx context.Context, old, cfg *pb.Config) error {
	set, err := profile.FromConfig(cfg.GetPki())
	if err != nil {
		return fmt.Errorf("pkid: %w", err)
	}
	a.mu.Lock()
	a.set = set
	for id := range a.renew {
		if set.Enroll[id] == nil {
			delete(a.renew, id)
		}
	}
	a.mu.Unlock()
	var errs []error
	for name, p := range set.Profiles {
		a.restoreCRLs(name, p, &errs)
	}
	return errors.Join(errs...)
}

// Prepare implements daemon.Preparer: an IKE policy whose
// local-certificate has a DSA key pair fails commit check, since pkid does
// not sign IKE AUTH payloads with DSA (keystore/dsa.go); without this the
// tunnel would only fail at its first exchange. A certificate-id without a
// key pair yet is left alone: it may be loaded after the commit.
func (a *App) Prepare(_ context.Context, _, candidate *pb.Config) error {
	var errs []error
	for _, p := range candidate.GetIpsecVpn().GetIke().GetPolicies() {
		id := p.GetLocalCertificate()
		if id == "" || keystore.CheckID(id) != nil {
			continue
		}
		pub, err := a.keys.Public(id)
		if err != nil {
			continue
		}
		if keystore.KeyType(pub) == keystore.TypeDSA {
			errs = append(errs, fmt.Errorf("[edit services ipsec-vpn ike policy %s] 'local-certificate %s': key pair %s is a DSA key: IKE authentication with DSA signatures is not supported; use an rsa or ecdsa key pair",
				p.GetName(), id, id))
		}
	}
	return errors.Join(errs...)
}

func (a *App) restoreCRLs(name string, p *profile.Profile, errs *[]error) {
	cas := a.certs.CA(name)
	if err := a.crls.Restore(name, cas); err != nil {
		a.trace(trace.FlagOnlineCRLCheck, trace.Warning).Err(err).Str("ca_profile", name).Msg("cached CRL not usable")
	}
	if p.Revocation != profile.Disable && p.CRLURL != "" {
		for _, ca := range cas {
			a.crls.Track(name, ca)
		}
	}
}

// Stop ends the refresh loop.
func (a *App) Stop(ctx context.Context) error {
	if a.cancel != nil {
		a.cancel()
	}
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *App) profiles() *profile.Set {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.set
}

func (a *App) trace(f trace.Flag, l trace.Level) *zerolog.Event {
	if a.Tracer == nil {
		return nil
	}
	return a.Tracer.Event(f, l)
}

func (a *App) publish(kind pb.CertificateEventKind, id, prof, detail string, serials []string) {
	ev := &pb.CertificateEvent{Kind: kind, CertificateId: id, CaProfile: prof, Detail: detail, At: timestamppb.New(a.Now()), RevokedSerials: serials}
	if a.Publish != nil {
		a.Publish(ev)
	}
}

// Tick refreshes due CRLs and re-enrolls local certificates whose
// re-enroll-trigger-time-percentage has passed. The loop calls it every
// TickInterval; tests call it with an injected clock.
func (a *App) Tick(ctx context.Context) {
	set := a.profiles()
	for _, e := range a.crls.Due(set.Profiles) {
		p := set.Profiles[e.Profile]
		added, err := a.crls.Update(ctx, p, e.Issuer, nil)
		if err != nil {
			a.trace(trace.FlagOnlineCRLCheck, trace.Warning).Str("ca_profile", p.Name).Err(err).Msg("CRL refresh failed")
			a.publish(pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_CRL_FAILED, "", p.Name, err.Error(), nil)
			continue
		}
		a.trace(trace.FlagOnlineCRLCheck, trace.Info).Str("ca_profile", p.Name).Int("newly_revoked", len(added)).Msg("CRL refreshed")
		a.publish(pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_CRL_UPDATED, "", p.Name, "refreshed", added)
	}
	a.autoReEnroll(ctx, set)
	a.warnExpiring()
}

// warnExpiring publishes LOCAL_EXPIRING once for each local certificate
// within ExpiryWarning of its notAfter, so kmd and operators hear of it.
func (a *App) warnExpiring() {
	now := a.Now()
	for _, id := range a.certs.LocalIDs() {
		chain := a.certs.Local(id)
		if len(chain) == 0 {
			continue
		}
		c := chain[0]
		if now.Before(c.NotAfter.Add(-ExpiryWarning)) {
			continue
		}
		serial := c.SerialNumber.Text(16)
		a.mu.Lock()
		done := a.warned[id] == serial
		a.warned[id] = serial
		a.mu.Unlock()
		if done {
			continue
		}
		detail := "expires at " + c.NotAfter.UTC().Format(time.RFC3339)
		if now.After(c.NotAfter) {
			detail = "expired at " + c.NotAfter.UTC().Format(time.RFC3339)
		}
		a.trace(trace.FlagAll, trace.Warning).Str("certificate_id", id).Msg("local certificate " + detail)
		a.publish(pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_LOCAL_EXPIRING, id, "", detail, nil)
	}
}

// redactURL drops any password in a URL's user information.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}
