package broker_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
	"github.com/sitesec/sitesec/services/bus"
)

// TestSubscribePermissions runs the launcher's full permission set and
// checks that SA keys reach fwdd only, replies reach only who asked, and
// the configuration watch still works for everyone.
func TestSubscribePermissions(t *testing.T) {
	space, _ := subject.New("", "p1")
	names := append([]string{subject.Sitesecd, subject.CLI}, subject.Daemons...)
	var users []broker.User
	for _, n := range names {
		users = append(users, broker.UserFor(space, n, "pw-"+n))
	}
	srv, err := broker.Start(broker.Options{StoreDir: filepath.Join(t.TempDir(), "nats"), Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	errs := make(chan error, 16)
	conns := map[string]*bus.Conn{}
	for _, n := range names {
		c, err := bus.Connect(context.Background(), space, bus.Options{URL: srv.ClientURL(), User: n, Password: "pw-" + n, Name: n,
			OnError: func(err error) { errs <- err }})
		if err != nil {
			t.Fatalf("connect %s: %v", n, err)
		}
		t.Cleanup(c.Close)
		conns[n] = c
	}

	// A tap by the cli on everything of the router.
	tap := make(chan *nats.Msg, 64)
	if _, err := conns[subject.CLI].NC.ChanSubscribe(space.All(), tap); err != nil {
		t.Fatal(err)
	}
	conns[subject.CLI].NC.Flush()

	installs := make(chan *pb.SAInstall, 1)
	if _, err := conns[subject.Fwdd].Handle(subject.Fwdd, subject.VerbSAInstall, func(_ context.Context, m proto.Message) (proto.Message, error) {
		installs <- m.(*pb.SAInstall)
		return &pb.SAInstallReply{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	var rep pb.SAInstallReply
	err = conns[subject.Kmd].Request(context.Background(), subject.Fwdd, subject.VerbSAInstall,
		&pb.SAInstall{Sas: []*pb.SA{{Spi: 9, EncryptionKey: []byte("k")}}}, &rep)
	if err != nil {
		t.Fatalf("kmd -> fwdd sa.install: %v", err)
	}
	<-installs
	if err := conns[subject.Kmd].Publish(subject.Kmd, subject.VerbHealth, &pb.Health{Daemon: "kmd"}); err != nil {
		t.Fatal(err)
	}
	// The tap sees health but never the SA install.
	deadline := time.After(2 * time.Second)
	sawHealth := false
	for !sawHealth {
		select {
		case m := <-tap:
			if strings.Contains(m.Subject, "sa.install") {
				t.Fatalf("cli tap received %s", m.Subject)
			}
			sawHealth = strings.HasSuffix(m.Subject, ".kmd.health")
		case <-deadline:
			t.Fatal("tap saw no health message")
		}
	}
	// Nobody but kmd reads kmd's inbox.
	if _, err := conns[subject.CLI].NC.SubscribeSync(broker.InboxPrefix(subject.Kmd) + ".>"); err != nil {
		t.Fatal(err)
	}
	conns[subject.CLI].NC.Flush()
	select {
	case err := <-errs:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("want a permissions violation, got %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("cli could subscribe to kmd's inbox")
	}

	// Configuration: sitesecd creates the bucket, cfgd writes, every
	// daemon watches.
	if err := conns[subject.Sitesecd].SetupBuckets(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := conns[subject.Cfgd].PutConfig(context.Background(), &pb.ConfigSnapshot{Revision: 4}); err != nil {
		t.Fatal(err)
	}
	for _, n := range subject.Daemons {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got := make(chan uint64, 1)
		go conns[n].WatchConfig(ctx, func(s *pb.ConfigSnapshot) {
			select {
			case got <- s.GetRevision():
			default:
			}
		})
		select {
		case r := <-got:
			if r != 4 {
				t.Errorf("%s watched revision %d", n, r)
			}
		case <-ctx.Done():
			t.Errorf("%s: watch delivered nothing", n)
		}
		cancel()
	}
}
