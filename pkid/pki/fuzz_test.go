package pki

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/proto/pb"
)

// FuzzOp feeds arbitrary command words to the command parser: every
// input gets a reply, none crashes pkid.
func FuzzOp(f *testing.F) {
	for _, s := range []string{
		"show security pki local-certificate detail certificate-id a",
		"request security pki generate-key-pair certificate-id x type ecdsa size 256",
		"request security pki local-certificate enroll scep ca-profile ca1 certificate-id x challenge-password",
		"clear security pki crl ca-profile all",
		"request security pki ca-certificate enroll ca-profile ca1 yes",
		"request security pki local-certificate generate-self-signed certificate-id x subject CN=x domain-name x.example email a@b ip-address 192.0.2.1",
	} {
		f.Add(s)
	}
	app := New()
	if err := app.Open(filepath.Join(f.TempDir(), "certs")); err != nil {
		f.Fatal(err)
	}
	app.Apply(context.Background(), nil, &pb.Config{Pki: &pb.PKI{CaProfiles: []*pb.CAProfile{{Name: "ca1", EnrollmentUrl: "http://127.0.0.1:1/scep"}}}})
	f.Fuzz(func(t *testing.T, line string) {
		words := strings.Fields(line)
		if len(words) > 2 && words[0] == "request" && (strings.Contains(line, "size") || strings.Contains(line, "dsa")) {
			// Large RSA sizes are rejected, DSA parameters take seconds:
			// keep the run quick.
			return
		}
		if rep := app.Op(context.Background(), &pb.OpRequest{Words: words}); rep == nil {
			t.Fatal("nil reply")
		}
	})
}
