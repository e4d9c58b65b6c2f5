package bus

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
)

func daemonUsers() []broker.User {
	var users []broker.User
	for _, d := range append([]string{subject.Sitesecd, subject.CLI}, subject.Daemons...) {
		users = append(users, broker.UserFor(space, d, "pw-"+d))
	}
	return users
}

// errLog collects Options.OnError reports.
type errLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errLog) add(err error) { l.mu.Lock(); l.errs = append(l.errs, err); l.mu.Unlock() }

func (l *errLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

func TestPermissions(t *testing.T) {
	eachUserTransport(t, func(t *testing.T, s *broker.Server, base Options) {
		as := func(name string, log *errLog) *Conn {
			o := base
			o.User, o.Password, o.Name = name, "pw-"+name, name
			if log != nil {
				o.OnError = log.add
			}
			return connect(t, o)
		}
		fwdd := as(subject.Fwdd, nil)
		installs := 0
		if _, err := Serve(fwdd, subject.Fwdd, subject.VerbSAInstall, func(context.Context, *pb.SAInstall) (*pb.SAInstallReply, error) {
			installs++
			return &pb.SAInstallReply{}, nil
		}); err != nil {
			t.Fatalf("fwdd serves sa.install: %v", err)
		}

		kmd := as(subject.Kmd, nil)
		if _, err := Call[*pb.SAInstallReply](context.Background(), kmd, subject.Fwdd, subject.VerbSAInstall, saInstall()); err != nil {
			t.Fatalf("kmd installs an SA: %v", err)
		}
		for _, d := range []string{subject.Fwdd, subject.Pkid, subject.Cfgd, subject.Sitesecd, subject.CLI} {
			log := &errLog{}
			c := as(d, log)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			_, err := Call[*pb.SAInstallReply](ctx, c, subject.Fwdd, subject.VerbSAInstall, saInstall())
			cancel()
			if !errors.Is(err, ErrTimeout) {
				t.Errorf("%s installs an SA: %v, want a timeout", d, err)
			}
			waitFor(t, d+"'s permissions violation", func() bool { return len(log.all()) > 0 })
			if err := log.all()[0]; !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "sitesec.r0.fwdd.sa.install") {
				t.Errorf("%s: OnError %v, want a permissions violation on sa.install", d, err)
			}
		}
		if installs != 1 {
			t.Errorf("fwdd served %d installs, want 1", installs)
		}

		// Only cfgd writes the configuration; every daemon watches it.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
		if err := kmd.PutConfig(short, snapshot(1)); err == nil {
			t.Error("kmd stored a configuration")
		}
		cancelShort()
		cfgd := as(subject.Cfgd, nil)
		short, cancelShort = context.WithTimeout(ctx, 300*time.Millisecond)
		if err := cfgd.PutConfig(short, snapshot(1)); err == nil {
			t.Error("cfgd created the configuration bucket")
		}
		cancelShort()
		if err := as(subject.Sitesecd, nil).SetupBuckets(ctx); err != nil {
			t.Fatalf("sitesecd sets the buckets up: %v", err)
		}
		if err := cfgd.PutConfig(ctx, snapshot(1)); err != nil {
			t.Fatalf("cfgd PutConfig: %v", err)
		}
		var ws []*watcher
		var logs []*errLog
		for _, d := range subject.Daemons {
			log := &errLog{}
			c := as(d, log)
			if got, err := c.GetConfig(ctx); err != nil || got.GetRevision() != 1 {
				t.Errorf("%s GetConfig = %v, %v", d, got, err)
			}
			ws = append(ws, watch(t, ctx, c))
			logs = append(logs, log)
		}
		for _, w := range ws {
			w.next(t, 1)
		}
		if err := cfgd.PutConfig(ctx, snapshot(2)); err != nil {
			t.Fatal(err)
		}
		for i, w := range ws {
			w.next(t, 2)
			if errs := logs[i].all(); len(errs) > 0 {
				t.Errorf("watcher %d: errors %v", i, errs)
			}
		}
	})
}

// eachUserTransport is eachTransport with a server that has a user per
// daemon.
func eachUserTransport(t *testing.T, f func(t *testing.T, s *broker.Server, o Options)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := startServer(t, broker.Options{Users: daemonUsers()})
			f(t, s, tr.opts(s))
		})
	}
}

// saInstall is a typical install: the inbound and outbound halves of one
// CHILD SA.
func saInstall() *pb.SAInstall {
	sa := func(spi uint32, dir pb.Direction) *pb.SA {
		return &pb.SA{
			Spi:                     spi,
			Direction:               dir,
			ServiceSet:              "ss-vpn1",
			Rule:                    "vpn-rule1",
			Term:                    "term1",
			Local:                   &pb.Endpoint{Address: []byte{192, 0, 2, 1}, Port: 4500},
			Remote:                  &pb.Endpoint{Address: []byte{198, 51, 100, 7}, Port: 4500},
			EncryptionAlgorithm:     "aes-256-gcm",
			EncryptionKey:           make([]byte, 36),
			ReplayWindow:            64,
			ExtendedSequenceNumbers: true,
			InsideInterface:         "ms-1/0/0.1",
			IkeSa:                   "0123456789abcdef:fedcba9876543210",
			Reqid:                   77,
		}
	}
	return &pb.SAInstall{Sas: []*pb.SA{sa(0xc0ffee01, pb.Direction(1)), sa(0xc0ffee02, pb.Direction(2))}}
}
