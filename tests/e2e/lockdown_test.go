package e2e

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/bus"
	"github.com/sitesec/sitesec/tests/harness"
)

// TestComposeBusIsLockedDown (issue 14 item 1, external bus): the compose
// example's bus is TLS only with a verified server certificate, each
// container holds only its own password, and a daemon's credentials get
// no further than its job.
func TestComposeBusIsLockedDown(t *testing.T) {
	cmd := RequireDocker(t)
	bin := harness.Bin(t)
	LockCompose(t, 4*time.Minute)
	BuildImages(t)
	c := NewCompose(t, cmd, filepath.Join(Repo(), "deploy", "compose.yaml"), bin)
	c.Single = true
	c.Up()
	waitProcesses(t, c, "r1", 60*time.Second)
	url := c.BusURL("r1")
	space, _ := subject.New("", "r1")
	ctx := context.Background()
	dial := func(user, ca string) (*bus.Conn, *[]error, error) {
		var mu sync.Mutex
		errs := &[]error{}
		cn, err := bus.Connect(ctx, space, bus.Options{URL: url, User: user, Password: c.Passwords[strings.ToUpper(user)], CAFile: ca,
			ConnectTimeout: 3 * time.Second, OnError: func(err error) { mu.Lock(); *errs = append(*errs, err); mu.Unlock() }})
		if err == nil {
			t.Cleanup(cn.Close)
		}
		return cn, errs, err
	}

	// No TLS, no bus; another CA's certificate, no bus.
	if _, _, err := dial(subject.CLI, ""); err == nil {
		t.Error("connected to the compose bus without TLS")
	}
	other := filepath.Join(t.TempDir(), "other.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		"-days", "1", "-subj", "/CN=other", "-keyout", filepath.Join(t.TempDir(), "k.pem"), "-out", other).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v %s", err, out)
	}
	if _, _, err := dial(subject.CLI, other); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a server certificate of another CA: %v", err)
	}

	// fwdd's credentials: no signing by pkid, no SA sync answers for
	// others, no configuration secrets of kmd, no stream changes.
	fwdd, errs, err := dial(subject.Fwdd, c.CA)
	if err != nil {
		t.Fatalf("fwdd's own credentials: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = bus.Call[*pb.SignReply](short, fwdd, subject.Pkid, subject.VerbSign, &pb.SignRequest{Data: []byte("AUTH")})
	cancel()
	if err == nil {
		t.Error("fwdd had pkid sign")
	}
	if _, err := fwdd.NC.SubscribeSync(space.Subject(subject.Pkid, subject.VerbValidate)); err != nil {
		t.Fatal(err)
	}
	fwdd.NC.Flush()
	js, _ := jetstream.New(fwdd.NC)
	short, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
	if kv, err := js.KeyValue(short, space.SecretsBucket(subject.Kmd)); err == nil {
		if _, err := kv.Get(short, subject.ConfigKey); err == nil {
			t.Error("fwdd read kmd's secrets")
		}
	}
	if _, err := js.CreateStream(short, jetstream.StreamConfig{Name: "CAPTURE", Subjects: []string{space.Subject(subject.Fwdd, "sa.>")}}); err == nil {
		t.Error("fwdd created a stream")
	}
	cancel()
	time.Sleep(300 * time.Millisecond)
	violations := 0
	for _, err := range *errs {
		if errors.Is(err, nats.ErrPermissionViolation) {
			violations++
		}
	}
	if violations < 2 {
		t.Errorf("want permission violations for pkid.sign and pkid.validate, got %v", *errs)
	}

	// Each container holds its own password and no other.
	for _, svc := range []string{"cfgd", "kmd", "pkid", "fwdd"} {
		out, err := exec.Command("docker", "inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}{{range .Config.Cmd}}{{println .}}{{end}}", c.Container(svc)).Output()
		if err != nil {
			t.Fatal(err)
		}
		for u, pw := range c.Passwords {
			if strings.Contains(string(out), pw) != (u == strings.ToUpper(svc)) {
				t.Errorf("%s's container and %s's password: holds it %v", svc, u, u != strings.ToUpper(svc))
			}
		}
	}
}
