package testpki

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	sscep "github.com/smallstep/scep"
)

// SCEPCA is an in-memory SCEP server (RFC 8894) for tests: an RSA CA that
// issues whatever it is asked when the challenge password matches.
type SCEPCA struct {
	*Issuer
	Server    *httptest.Server
	Challenge string
	// Validity of issued certificates.
	Validity time.Duration
	// Caps is the GetCACaps answer.
	Caps string
	// Pending is how many PENDING replies come before the certificate.
	Pending int

	mu     sync.Mutex
	Issued []*x509.Certificate
	Ops    []string
}

// NewSCEPCA starts a SCEP CA with an RSA root.
func NewSCEPCA(t testing.TB, challenge string) *SCEPCA {
	ca := &SCEPCA{
		Issuer:    Root(t, "SCEP Root", Options{RSA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}),
		Challenge: challenge,
		Validity:  30 * 24 * time.Hour,
		Caps:      "POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\n",
	}
	ca.Server = httptest.NewServer(http.HandlerFunc(ca.serve))
	t.Cleanup(ca.Server.Close)
	return ca
}

// URL is the enrollment url.
func (ca *SCEPCA) URL() string { return ca.Server.URL + "/scep" }

func (ca *SCEPCA) serve(w http.ResponseWriter, r *http.Request) {
	op := r.URL.Query().Get("operation")
	ca.mu.Lock()
	ca.Ops = append(ca.Ops, op)
	ca.mu.Unlock()
	switch op {
	case "GetCACaps":
		w.Write([]byte(ca.Caps))
	case "GetCACert":
		w.Header().Set("Content-Type", "application/x-x509-ca-cert")
		w.Write(ca.Cert.Raw)
	case "PKIOperation":
		var body []byte
		if r.Method == http.MethodPost {
			body, _ = io.ReadAll(r.Body)
		} else {
			body, _ = base64.StdEncoding.DecodeString(r.URL.Query().Get("message"))
		}
		rep, err := ca.pkiOperation(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-pki-message")
		w.Write(rep)
	default:
		http.Error(w, "unknown operation", http.StatusBadRequest)
	}
}

func (ca *SCEPCA) pkiOperation(body []byte) ([]byte, error) {
	msg, err := sscep.ParsePKIMessage(body)
	if err != nil {
		return nil, err
	}
	key := ca.Key.(*rsa.PrivateKey)
	if err := msg.DecryptPKIEnvelope(ca.Cert, key); err != nil {
		return nil, err
	}
	if msg.CSRReqMessage.ChallengePassword != ca.Challenge {
		rep, err := msg.Fail(ca.Cert, key, sscep.BadRequest)
		if err != nil {
			return nil, err
		}
		return rep.Raw, nil
	}
	ca.mu.Lock()
	pending := ca.Pending > 0
	if pending {
		ca.Pending--
	}
	ca.mu.Unlock()
	if pending {
		return pendingReply(msg, ca.Cert, key)
	}
	csr := msg.CSRReqMessage.CSR
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		RawSubject:   csr.RawSubject,
		NotBefore:    Now.Add(-time.Minute),
		NotAfter:     Now.Add(ca.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:     csr.DNSNames,
		IPAddresses:  csr.IPAddresses,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, key)
	if err != nil {
		return nil, err
	}
	crt, _ := x509.ParseCertificate(der)
	ca.mu.Lock()
	ca.Issued = append(ca.Issued, crt)
	ca.mu.Unlock()
	rep, err := msg.Success(ca.Cert, key, crt)
	if err != nil {
		return nil, err
	}
	return rep.Raw, nil
}

var (
	oidMessageType    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 2}
	oidPKIStatus      = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 3}
	oidSenderNonce    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 5}
	oidRecipientNonce = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 6}
	oidTransactionID  = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 7}
)

// pendingReply is a CertRep with pkiStatus PENDING (RFC 8894 section
// 3.3.2), which the scep library cannot build.
func pendingReply(msg *sscep.PKIMessage, cert *x509.Certificate, key *rsa.PrivateKey) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(nil)
	if err != nil {
		return nil, err
	}
	err = sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{
		{Type: oidTransactionID, Value: msg.TransactionID},
		{Type: oidPKIStatus, Value: sscep.PENDING},
		{Type: oidMessageType, Value: sscep.CertRep},
		{Type: oidSenderNonce, Value: msg.SenderNonce},
		{Type: oidRecipientNonce, Value: msg.SenderNonce},
	}})
	if err != nil {
		return nil, err
	}
	return sd.Finish()
}
