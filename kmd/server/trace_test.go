package server

import (
	"os"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/trace"
)

// TestTrace: with flag ike and level verbose every exchange is traced,
// and the pre-shared key and SA keys never are.
func TestTrace(t *testing.T) {
	l, r, lb, _ := pair(t)
	tr, err := trace.New(t.TempDir(), "kmd", trace.KMDFlags)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Configure(&pb.Traceoptions{Flags: []string{"ike"}, Level: "verbose"}); err != nil {
		t.Fatal(err)
	}
	l.Trace = tr
	ctx := t.Context()
	r.Apply(ctx, nil, config("198.51.100.1", "192.0.2.1", "pre-shared-s3cret", 0, "10.1.0.0/24", "10.0.0.0/24"))
	l.Apply(ctx, nil, config("192.0.2.1", "198.51.100.1", "pre-shared-s3cret", pb.EstablishTunnels_ESTABLISH_TUNNELS_IMMEDIATELY, "10.0.0.0/24", "10.1.0.0/24"))
	waitFor(t, "install", func() bool { a, _ := lb.count(); return a == 1 })
	b, err := os.ReadFile(tr.Path())
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{"sending IKE_SA_INIT request 0 [ SA KE Ni/Nr N(16388) N(16389) N(16430) N(16431) ]", "received IKE_AUTH response 1 [ IDr AUTH SA TSi TSr ]", "IKE SA established", "CHILD SA installed"} {
		if !strings.Contains(text, want) {
			t.Errorf("trace lacks %q:\n%s", want, text)
		}
	}
	key := string(lb.installs[0].Sas[0].EncryptionKey)
	if strings.Contains(text, "pre-shared-s3cret") || strings.Contains(text, key) {
		t.Fatal("secret in the trace")
	}
}
