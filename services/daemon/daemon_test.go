package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
	"github.com/sitesec/sitesec/services/bus"
)

// recorder is an App that records what the runtime asks of it.
type recorder struct {
	mu      sync.Mutex
	started bool
	applied []*pb.Config
	olds    []*pb.Config
	stopped bool
	fail    string
	panics  bool
}

func (r *recorder) Start(context.Context, *Daemon) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = true
	return nil
}

func (r *recorder) Apply(_ context.Context, old, new *pb.Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.olds = append(r.olds, old)
	r.applied = append(r.applied, new)
	if r.panics {
		panic("boom")
	}
	if r.fail != "" {
		return errors.New(r.fail)
	}
	return nil
}

func (r *recorder) Stop(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	return nil
}

func (r *recorder) Op(_ context.Context, req *pb.OpRequest) *pb.OpReply {
	return &pb.OpReply{Lines: []string{"echo " + strings.Join(req.Words, " ")}}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.applied)
}

type fixture struct {
	srv   *broker.Server
	ctl   *bus.Conn
	root  string
	acks  chan *pb.ApplyAck
	space subject.Space
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv, err := broker.Start(broker.Options{StoreDir: t.TempDir(), Port: 0})
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
	f := &fixture{srv: srv, ctl: ctl, root: t.TempDir(), acks: make(chan *pb.ApplyAck, 16), space: space}
	if _, err := ctl.Subscribe(subject.Cfgd, subject.VerbAck, func(m proto.Message) { f.acks <- m.(*pb.ApplyAck) }); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) run(t *testing.T, name string, app App) (cancel func(), done chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() {
		done <- Run(ctx, name, app, []string{"--root", f.root, "--bus", f.srv.ClientURL(), "--name", "t1"})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	return cancel, done
}

func (f *fixture) commit(t *testing.T, rev uint64, c *pb.Config) {
	t.Helper()
	if err := f.ctl.PutConfig(context.Background(), &pb.ConfigSnapshot{Revision: rev, Config: c}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) ack(t *testing.T) *pb.ApplyAck {
	t.Helper()
	select {
	case a := <-f.acks:
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("no ApplyAck")
		return nil
	}
}

func waitStatus(t *testing.T, c *bus.Conn, daemon string) *pb.ProcessStatus {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st pb.ProcessStatus
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Request(ctx, daemon, subject.VerbStatus, &pb.StatusRequest{}, &st)
		cancel()
		if err == nil && st.State == pb.DaemonState_DAEMON_STATE_RUNNING {
			return &st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s status: %v %v", daemon, err, st.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLifecycleAppliesOnlyChanges(t *testing.T) {
	f := newFixture(t)
	app := &recorder{}
	cancel, done := f.run(t, "kmd", app)
	st := waitStatus(t, f.ctl, "kmd")
	if st.Pid != int32(os.Getpid()) || st.Supervisor == "" {
		t.Errorf("status = %v", st)
	}

	c1 := &pb.Config{System: &pb.System{HostName: "r1"}}
	f.commit(t, 1, c1)
	if a := f.ack(t); a.Revision != 1 || !a.Ok || a.Daemon != "kmd" {
		t.Fatalf("ack = %v", a)
	}
	// The same configuration again under a new revision: acknowledged,
	// not re-applied.
	f.commit(t, 2, proto.Clone(c1).(*pb.Config))
	if a := f.ack(t); a.Revision != 2 || !a.Ok {
		t.Fatalf("ack = %v", a)
	}
	c3 := &pb.Config{System: &pb.System{HostName: "r3"}}
	f.commit(t, 3, c3)
	f.ack(t)
	if n := app.count(); n != 2 {
		t.Fatalf("Apply called %d times, want 2", n)
	}
	app.mu.Lock()
	if app.olds[0] != nil || !proto.Equal(app.olds[1], c1) || !proto.Equal(app.applied[1], c3) {
		t.Errorf("old/new wrong: %v %v", app.olds, app.applied)
	}
	app.mu.Unlock()

	// Op is served because recorder implements Operator.
	var rep pb.OpReply
	if err := f.ctl.Request(context.Background(), "kmd", subject.VerbOp, &pb.OpRequest{Words: []string{"show", "x"}}, &rep); err != nil || rep.Lines[0] != "echo show x" {
		t.Fatalf("op: %v %v", err, rep.Lines)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for the cleanup
	if !app.stopped {
		t.Error("Stop not called")
	}
	tr, _ := os.ReadFile(filepath.Join(f.root, "var", "log", "kmd"))
	for _, w := range []string{"starting", "running", "configuration applied", "stopped"} {
		if !strings.Contains(string(tr), w) {
			t.Errorf("trace lacks %q:\n%s", w, tr)
		}
	}
}

func TestApplyErrorAndPanicAreAcked(t *testing.T) {
	f := newFixture(t)
	app := &recorder{fail: "no such interface ms-1/2/0"}
	f.run(t, "fwdd", app)
	waitStatus(t, f.ctl, "fwdd")
	f.commit(t, 5, &pb.Config{System: &pb.System{HostName: "a"}})
	a := f.ack(t)
	if a.Ok || len(a.Errors) != 1 || a.Errors[0] != "no such interface ms-1/2/0" {
		t.Fatalf("ack = %v", a)
	}
	app.mu.Lock()
	app.fail, app.panics = "", true
	app.mu.Unlock()
	f.commit(t, 6, &pb.Config{System: &pb.System{HostName: "b"}})
	a = f.ack(t)
	if a.Ok || !strings.Contains(a.Errors[0], "boom") {
		t.Fatalf("ack = %v", a)
	}
	// Still alive.
	waitStatus(t, f.ctl, "fwdd")
}

func TestRestartedDaemonPicksUpCurrentRevision(t *testing.T) {
	f := newFixture(t)
	f.commit(t, 7, &pb.Config{System: &pb.System{HostName: "before-start"}})
	app := &recorder{}
	f.run(t, "pkid", app)
	if a := f.ack(t); a.Revision != 7 || !a.Ok {
		t.Fatalf("ack = %v", a)
	}
	if app.count() != 1 {
		t.Fatal("not applied")
	}
}

func TestTraceoptionsFollowCommits(t *testing.T) {
	f := newFixture(t)
	f.run(t, "kmd", &recorder{})
	waitStatus(t, f.ctl, "kmd")
	f.commit(t, 1, &pb.Config{IpsecVpn: &pb.IPsecVPN{Traceoptions: &pb.Traceoptions{File: "ipsec.log", Flags: []string{"all"}, Level: "all"}}})
	f.ack(t)
	if _, err := os.Stat(filepath.Join(f.root, "var", "log", "ipsec.log")); err != nil {
		t.Fatalf("trace file not renamed: %v", err)
	}
	// An unknown flag is a warning in the ack; the daemon keeps running.
	f.commit(t, 2, &pb.Config{IpsecVpn: &pb.IPsecVPN{Traceoptions: &pb.Traceoptions{Flags: []string{"frobnicate"}}}})
	a := f.ack(t)
	if len(a.Warnings) == 0 || !strings.Contains(a.Warnings[0], "frobnicate") {
		t.Fatalf("ack = %v", a)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{{"--nope"}, {"extra"}, {"--root", t.TempDir(), "--name", "a.b", "--bus", "nats://127.0.0.1:1"}} {
		err := Run(context.Background(), "kmd", Idle{}, args)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
	err := Run(context.Background(), "kmd", Idle{}, []string{"--root", t.TempDir(), "--bus", "nats://127.0.0.1:1", "--bus-wait", "0s"})
	if err == nil || !strings.Contains(err.Error(), "cannot reach") || strings.Contains(err.Error(), "\n") {
		t.Errorf("unreachable bus: %v", err)
	}
	err = Run(context.Background(), "kmd", Idle{}, []string{"--root", t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no bus") {
		t.Errorf("no bus file: %v", err)
	}
}
