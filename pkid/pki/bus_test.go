package pki

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/pkid/internal/testpki"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
	"github.com/sitesec/sitesec/services/bus"
	"github.com/sitesec/sitesec/services/daemon"
)

// TestOverBus runs pkid under the shared daemon runtime on an embedded NATS
// server and talks to it as kmd and cli do.
func TestOverBus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server")
	}
	srv, err := broker.Start(broker.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	space, _ := subject.New("", "t1")
	ctl, err := bus.Connect(context.Background(), space, bus.Options{URL: srv.ClientURL(), Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Close)
	events := make(chan *pb.CertificateEvent, 16)
	if _, err := bus.Listen(ctl, subject.Pkid, subject.VerbCertEvents, func(e *pb.CertificateEvent) { events <- e }); err != nil {
		t.Fatal(err)
	}

	root := t.TempDir()
	app := New()
	app.Now = func() time.Time { return testpki.Now }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, "pkid", app, []string{"--root", root, "--bus", srv.ClientURL(), "--name", "t1"})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("pkid did not stop")
		}
	})
	scepCA := testpki.NewSCEPCA(t, "s3cret-challenge")
	if err := ctl.PutConfig(context.Background(), &pb.ConfigSnapshot{Revision: 1, Config: &pb.Config{Pki: &pb.PKI{
		CaProfiles: []*pb.CAProfile{
			{Name: "ca1", RevocationCheck: pb.RevocationCheck_REVOCATION_CHECK_DISABLE},
			{Name: "scep", EnrollmentUrl: scepCA.URL(), RevocationCheck: pb.RevocationCheck_REVOCATION_CHECK_DISABLE},
		},
		Traceoptions: &pb.Traceoptions{Flags: []string{"all"}, Level: "all"},
	}}}); err != nil {
		t.Fatal(err)
	}

	call := func(words string, files ...*pb.OpFile) *pb.OpReply {
		t.Helper()
		var rep *pb.OpReply
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r, err := bus.Call[*pb.OpReply](c, ctl, subject.Pkid, subject.VerbOp, &pb.OpRequest{Words: strings.Fields(words), Files: files})
			cancel()
			if err == nil {
				rep = r
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", words, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return rep
	}
	if rep := call("request security pki generate-key-pair certificate-id vpn1 type ecdsa"); rep.Error != "" {
		t.Fatal(rep.Error)
	}
	if fi, err := os.Stat(filepath.Join(root, "var/db/certs/keys/vpn1.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file under the root: %v %v", fi, err)
	}
	// A CA and a peer certificate, loaded once the configuration has
	// been applied.
	ca := testpki.Root(t, "Root", testpki.Options{})
	peer, _ := ca.Leaf(t, "peer", testpki.Options{DNSNames: []string{"peer.example.net"}})
	// The cli sends the file's content; pkid opens no file the operator
	// names.
	deadline := time.Now().Add(5 * time.Second)
	for {
		rep := call("request security pki ca-certificate load ca-profile ca1 filename ca.der", &pb.OpFile{Name: "ca.der", Data: ca.Cert.Raw})
		if rep.Error == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(rep.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case e := <-events:
		if e.Kind != pb.CertificateEventKind_CERTIFICATE_EVENT_KIND_CA_LOADED || e.CaProfile != "ca1" {
			t.Errorf("event %v", e)
		}
	case <-time.After(5 * time.Second):
		t.Error("no CA_LOADED event")
	}

	c, cancelCall := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelCall()
	v, err := bus.Call[*pb.ValidateChainReply](c, ctl, subject.Pkid, subject.VerbValidate, &pb.ValidateChainRequest{
		ServiceSet: "ss1", TrustedCa: []string{"ca1"}, Certificates: [][]byte{peer.Raw}, PeerIdentity: "fqdn:peer.example.net"})
	if err != nil || !v.Valid || v.CaProfile != "ca1" {
		t.Fatalf("validate: %+v %v", v, err)
	}
	s, err := bus.Call[*pb.SignReply](c, ctl, subject.Pkid, subject.VerbSign, &pb.SignRequest{CertificateId: "vpn1", Data: []byte("x")})
	if err != nil || s.Error != "" || len(s.Signature) == 0 {
		t.Fatalf("sign: %+v %v", s, err)
	}
	l, err := bus.Call[*pb.LocalCertificateReply](c, ctl, subject.Pkid, subject.VerbLocalCert, &pb.LocalCertificateRequest{CertificateId: "vpn1"})
	if err != nil || !strings.Contains(l.Error, "no local certificate") {
		t.Fatalf("local: %+v %v", l, err)
	}
	cas, err := bus.Call[*pb.CAReply](c, ctl, subject.Pkid, subject.VerbCAs, &pb.CARequest{TrustedCa: []string{"ca1"}})
	if err != nil || len(cas.KeyHashes) != 1 {
		t.Fatalf("cas: %+v %v", cas, err)
	}
	if rep := call("show security pki ca-certificate"); len(rep.GetPkiCertificates().GetCertificates()) != 1 {
		t.Errorf("show: %v", rep)
	}
	// Enrollment with the challenge password in secret_argument; the
	// password must not reach the trace file.
	if rep := call("request security pki generate-key-pair certificate-id gw"); rep.Error != "" {
		t.Fatal(rep.Error)
	}
	if rep := call("request security pki ca-certificate enroll ca-profile scep yes"); rep.Error != "" {
		t.Fatal(rep.Error)
	}
	c2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	rep, err := bus.Call[*pb.OpReply](c2, ctl, subject.Pkid, subject.VerbOp, &pb.OpRequest{
		Words:          strings.Fields("request security pki local-certificate enroll scep ca-profile scep certificate-id gw challenge-password subject CN=gw"),
		SecretArgument: "s3cret-challenge"})
	if err != nil || rep.Error != "" {
		t.Fatalf("enroll: %v %v", rep, err)
	}
	tr, err := os.ReadFile(filepath.Join(root, "var/log/pkid"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"peer certificate validation", "SCEP enrollment succeeded", "CA certificate loaded"} {
		if !strings.Contains(string(tr), want) {
			t.Errorf("trace file lacks %q", want)
		}
	}
	if strings.Contains(string(tr), "s3cret-challenge") {
		t.Error("challenge password in the trace file")
	}
}

// BenchmarkSignOverBus measures pkid.sign round trips through NATS with
// parallel callers, as kmd signs AUTH payloads.
func BenchmarkSignOverBus(b *testing.B) {
	srv, err := broker.Start(broker.Options{StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	space, _ := subject.New("", "b1")
	ctl, err := bus.Connect(context.Background(), space, bus.Options{URL: srv.ClientURL(), Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer ctl.Close()
	app := New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, "pkid", app, []string{"--root", b.TempDir(), "--bus", srv.ClientURL(), "--name", "b1"})
	}()
	defer func() { cancel(); <-done }()
	op := &pb.OpRequest{Words: strings.Fields("request security pki generate-key-pair certificate-id k type ecdsa")}
	for {
		c, cc := context.WithTimeout(context.Background(), time.Second)
		rep, err := bus.Call[*pb.OpReply](c, ctl, subject.Pkid, subject.VerbOp, op)
		cc()
		if err == nil && rep.Error == "" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	data := make([]byte, 600)
	b.ResetTimer()
	b.RunParallel(func(pb_ *testing.PB) {
		for pb_.Next() {
			c, cc := context.WithTimeout(context.Background(), 5*time.Second)
			rep, err := bus.Call[*pb.SignReply](c, ctl, subject.Pkid, subject.VerbSign, &pb.SignRequest{CertificateId: "k", Data: data})
			cc()
			if err != nil || rep.Error != "" {
				b.Fatal(err, rep)
			}
		}
	})
}
