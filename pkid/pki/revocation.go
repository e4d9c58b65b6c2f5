package pki

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/sitesec/sitesec/pkid/crl"
	"github.com/sitesec/sitesec/pkid/ocsp"
	"github.com/sitesec/sitesec/pkid/profile"
	"github.com/sitesec/sitesec/services/trace"
)

// revocation is what verify.Chain checks certificates with: OCSP for
// profiles with use-ocsp (falling back to the CRL when no responder
// answers), the CRL otherwise.
type revocation struct{ a *App }

func (r revocation) Check(ctx context.Context, p *profile.Profile, ca, cert *x509.Certificate) (bool, error) {
	if p.Revocation != profile.UseOCSP {
		return r.a.crls.Check(ctx, p, ca, cert)
	}
	err := r.a.ocsp.Check(ctx, p.OCSPURLs, ca, cert)
	var un *ocsp.UnavailableError
	if !errors.As(err, &un) {
		return false, err
	}
	r.a.trace(trace.FlagOnlineCRLCheck, trace.Warning).Str("ca_profile", p.Name).Err(err).Msg("OCSP unavailable, falling back to the CRL")
	skipped, cerr := r.a.crls.Check(ctx, p, ca, cert)
	var cu *crl.UnavailableError
	if errors.As(cerr, &cu) {
		return skipped, fmt.Errorf("%v; %w", err, cerr)
	}
	return skipped, cerr
}
