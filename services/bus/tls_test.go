package bus

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sitesec/sitesec/services/broker"
)

// testCA makes a CA and a server certificate for 127.0.0.1 signed by it;
// it returns the CA's PEM file and the server's TLS configuration.
func testCA(t *testing.T, dir, name string) (string, *tls.Config) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

// TestTLSVerifiesTheServer: with a CA file the connection is TLS and the
// server's certificate must chain to that CA; without TLS, or to a server
// with another CA's certificate, a daemon does not connect (and so sends
// no password in clear).
func TestTLSVerifiesTheServer(t *testing.T) {
	dir := t.TempDir()
	caFile, tc := testCA(t, dir, "ca")
	otherCA, _ := testCA(t, dir, "other")
	user := broker.UserFor(space, "kmd", "pw-kmd")
	so := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		TLS: true, TLSConfig: tc, TLSTimeout: 2,
		Users: []*server.User{{Username: user.Name, Password: user.Password}}}
	ns, err := server.NewServer(so)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("server not ready")
	}
	url := ns.ClientURL()
	ctx := context.Background()
	o := Options{URL: url, User: "kmd", Password: "pw-kmd", CAFile: caFile, ConnectTimeout: 2 * time.Second}
	c, err := Connect(ctx, space, o)
	if err != nil {
		t.Fatalf("TLS with the right CA: %v", err)
	}
	if !c.NC.TLSRequired() {
		t.Error("connection not over TLS")
	}
	c.Close()

	o.CAFile = otherCA
	if c, err := Connect(ctx, space, o); err == nil {
		c.Close()
		t.Error("connected to a server whose certificate another CA signed")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("wrong CA: %v", err)
	}
	o.CAFile = filepath.Join(dir, "missing.pem")
	if _, err := Connect(ctx, space, o); err == nil || !strings.Contains(err.Error(), "CA file") {
		t.Errorf("missing CA file: %v", err)
	}

	// A CA file and a server without TLS: refused before any password.
	plain := startServer(t, broker.Options{Users: []broker.User{user}})
	o = Options{URL: plain.ClientURL(), User: "kmd", Password: "pw-kmd", CAFile: caFile, ConnectTimeout: 2 * time.Second}
	if c, err := Connect(ctx, space, o); err == nil {
		c.Close()
		t.Error("connected without TLS although a CA file was given")
	}
}
