package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
)

var space = subject.Space{Root: subject.DefaultRoot, Router: subject.DefaultRouter}

// startServer runs an embedded server on a random loopback port, so tests
// can connect both in-process and over TCP.
func startServer(t testing.TB, o broker.Options) *broker.Server {
	t.Helper()
	if o.StoreDir == "" {
		o.StoreDir = filepath.Join(t.TempDir(), "nats")
	}
	s, err := broker.Start(o)
	if err != nil {
		t.Fatalf("broker: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

type transport struct {
	name string
	opts func(s *broker.Server) Options
}

var transports = []transport{
	{"InProcess", func(s *broker.Server) Options { return Options{InProcess: s.InProcess()} }},
	{"TCP", func(s *broker.Server) Options { return Options{URL: s.ClientURL()} }},
}

// eachTransport runs f once in-process and once over TCP loopback, each
// with its own server.
func eachTransport(t *testing.T, f func(t *testing.T, s *broker.Server, o Options)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := startServer(t, broker.Options{})
			f(t, s, tr.opts(s))
		})
	}
}

func connect(t testing.TB, o Options) *Conn {
	t.Helper()
	c, err := Connect(context.Background(), space, o)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// processList is a typical op reply: `show system processes` with 5 rows.
func processList() *pb.OpReply {
	pl := &pb.ProcessList{Router: "r0", Bus: "embedded", BusServerVersion: "2.15.2"}
	for i, d := range append([]string{subject.Sitesecd}, subject.Daemons...) {
		pl.Processes = append(pl.Processes, &pb.ProcessStatus{
			Name:          d,
			Pid:           int32(1000 + i),
			State:         pb.DaemonState(1),
			StartedAt:     timestamppb.New(time.Unix(1700000000, 0)),
			UptimeSeconds: 3600,
			Restarts:      uint32(i),
			BusStatus:     "connected",
		})
	}
	return &pb.OpReply{Body: &pb.OpReply_Processes{Processes: pl}}
}

func opRequest() *pb.OpRequest {
	return &pb.OpRequest{Words: []string{"show", "system", "processes"}, User: "admin"}
}

func TestRequestReply(t *testing.T) {
	eachTransport(t, func(t *testing.T, s *broker.Server, o Options) {
		srv := connect(t, o)
		cli := connect(t, o)
		want := processList()
		var deadline time.Duration
		if _, err := Serve(srv, subject.Kmd, subject.VerbOp, func(ctx context.Context, req *pb.OpRequest) (*pb.OpReply, error) {
			if dl, ok := ctx.Deadline(); ok {
				deadline = time.Until(dl)
			}
			if req.GetUser() != "admin" || len(req.GetWords()) != 3 {
				return nil, fmt.Errorf("bad request %v", req)
			}
			return want, nil
		}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := Call[*pb.OpReply](ctx, cli, subject.Kmd, subject.VerbOp, opRequest())
		if err != nil {
			t.Fatalf("Call: %v", err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("reply %v, want %v", got, want)
		}
		if deadline <= 3*time.Second || deadline > 5*time.Second {
			t.Errorf("handler deadline %v, want the caller's ~5s", deadline)
		}

		// Request with an explicit reply, and a nil reply from the handler.
		if _, err := srv.Handle(subject.Kmd, subject.VerbStatus, func(context.Context, proto.Message) (proto.Message, error) {
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
		st := &pb.ProcessStatus{Name: "stale"}
		if err := cli.Request(ctx, subject.Kmd, subject.VerbStatus, &pb.StatusRequest{}, st); err != nil {
			t.Fatal(err)
		}
		if st.GetName() != "" {
			t.Errorf("empty reply decoded as %v", st)
		}
		if v := cli.ServerVersion(); v != s.Version() || !cli.Connected() {
			t.Errorf("ServerVersion %q (server %q), Connected %v", v, s.Version(), cli.Connected())
		}
	})
}

func TestQueueGroup(t *testing.T) {
	s := startServer(t, broker.Options{Port: broker.DontListen})
	o := Options{InProcess: s.InProcess()}
	var mu sync.Mutex
	served := map[string]int{}
	for _, name := range []string{"a", "b"} {
		c := connect(t, o)
		if _, err := Serve(c, subject.Pkid, subject.VerbStatus, func(context.Context, *pb.StatusRequest) (*pb.ProcessStatus, error) {
			mu.Lock()
			served[name]++
			mu.Unlock()
			return &pb.ProcessStatus{Name: name}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	cli := connect(t, o)
	for i := 0; i < 40; i++ {
		if _, err := Call[*pb.ProcessStatus](context.Background(), cli, subject.Pkid, subject.VerbStatus, &pb.StatusRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	// Each request answered once (Call would have returned the first of two
	// answers, so count), and both instances took a share.
	if served["a"]+served["b"] != 40 || served["a"] == 0 || served["b"] == 0 {
		t.Errorf("served %v, want 40 shared by a and b", served)
	}
}

func TestHandlerErrors(t *testing.T) {
	eachTransport(t, func(t *testing.T, s *broker.Server, o Options) {
		var mu sync.Mutex
		var reported []error
		o.OnError = func(err error) {
			mu.Lock()
			reported = append(reported, err)
			mu.Unlock()
		}
		srv := connect(t, o)
		cli := connect(t, Options{URL: o.URL, InProcess: o.InProcess})
		tests := []struct {
			name    string
			handler Handler
			want    string
		}{
			{"error", func(context.Context, proto.Message) (proto.Message, error) {
				return nil, errors.New("gateway gw1 not found")
			}, "gateway gw1 not found"},
			{"multi-line error", func(context.Context, proto.Message) (proto.Message, error) {
				return nil, errors.New("line one\nline two")
			}, "line one line two"},
			{"empty error", func(context.Context, proto.Message) (proto.Message, error) {
				return nil, errors.New("")
			}, "error"},
			{"panic", func(context.Context, proto.Message) (proto.Message, error) {
				var m map[string]int
				m["boom"]++
				return nil, nil
			}, "bus: handler of sitesec.r0.fwdd.op panicked: assignment to entry in nil map"},
			{"wrong reply type", func(context.Context, proto.Message) (proto.Message, error) {
				return &pb.SAInstallReply{}, nil
			}, "bus: fwdd.op reply is sitesec.v1.OpReply, not sitesec.v1.SAInstallReply"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				sub, err := srv.Handle(subject.Fwdd, subject.VerbOp, tt.handler)
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Unsubscribe()
				srv.NC.Flush()
				err = cli.Request(context.Background(), subject.Fwdd, subject.VerbOp, opRequest(), &pb.OpReply{})
				var re *RemoteError
				if !errors.As(err, &re) {
					t.Fatalf("error %v (%T), want a *RemoteError", err, err)
				}
				if re.Error() != tt.want || re.Daemon != subject.Fwdd || re.Subject != "sitesec.r0.fwdd.op" {
					t.Errorf("RemoteError %+v, want message %q", re, tt.want)
				}
			})
		}
		mu.Lock()
		defer mu.Unlock()
		if len(reported) != 1 || !strings.Contains(reported[0].Error(), "panicked") || !strings.Contains(reported[0].Error(), "goroutine") {
			t.Errorf("OnError got %v, want the panic with its stack", reported)
		}
	})
}

func TestMalformedRequest(t *testing.T) {
	s := startServer(t, broker.Options{Port: broker.DontListen})
	c := connect(t, Options{InProcess: s.InProcess()})
	called := false
	if _, err := c.Handle(subject.Fwdd, subject.VerbSAInstall, func(context.Context, proto.Message) (proto.Message, error) {
		called = true
		return &pb.SAInstallReply{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	m, err := c.NC.Request(space.Subject(subject.Fwdd, subject.VerbSAInstall), []byte{0xff, 0xff, 0xff}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if e := m.Header.Get(HeaderError); !strings.HasPrefix(e, "bus: malformed sitesec.v1.SAInstall request on sitesec.r0.fwdd.sa.install: ") || len(m.Data) != 0 {
		t.Errorf("reply error %q body %d bytes", e, len(m.Data))
	}
	if called {
		t.Error("handler called with a malformed request")
	}
}

func TestNoResponders(t *testing.T) {
	eachTransport(t, func(t *testing.T, s *broker.Server, o Options) {
		c := connect(t, o)
		err := c.Request(context.Background(), subject.Kmd, subject.VerbOp, opRequest(), &pb.OpReply{})
		const want = "bus: no kmd answers on sitesec.r0.kmd.op (is kmd running?)"
		if err == nil || err.Error() != want {
			t.Fatalf("error %v, want %q", err, want)
		}
		if !errors.Is(err, ErrNoResponders) {
			t.Error("not errors.Is ErrNoResponders")
		}
	})
}

func TestTimeout(t *testing.T) {
	s := startServer(t, broker.Options{})
	o := Options{URL: s.ClientURL()}
	srv, cli := connect(t, o), connect(t, o)
	handlerDone := make(chan error, 4)
	if _, err := srv.Handle(subject.Kmd, subject.VerbOp, func(ctx context.Context, _ proto.Message) (proto.Message, error) {
		select {
		case <-ctx.Done():
			handlerDone <- ctx.Err()
		case <-time.After(5 * time.Second):
			handlerDone <- errors.New("handler context did not end")
		}
		return nil, ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		timeout time.Duration // 0: no deadline on ctx
		want    string
	}{
		{"default", 0, "bus: kmd did not answer sitesec.r0.kmd.op within 2s"},
		{"ctx deadline", 300 * time.Millisecond, "bus: kmd did not answer sitesec.r0.kmd.op within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			start := time.Now()
			err := cli.Request(ctx, subject.Kmd, subject.VerbOp, opRequest(), &pb.OpReply{})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
				t.Error("not errors.Is ErrTimeout and context.DeadlineExceeded")
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("took %v", el)
			}
			if err := <-handlerDone; !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("handler context: %v", err)
			}
		})
	}
}

func TestCanceled(t *testing.T) {
	s := startServer(t, broker.Options{Port: broker.DontListen})
	c := connect(t, Options{InProcess: s.InProcess()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Request(ctx, subject.Kmd, subject.VerbOp, opRequest(), &pb.OpReply{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestConnectErrors(t *testing.T) {
	port := strconv.Itoa(freePort(t))
	s := startServer(t, broker.Options{Users: []broker.User{{Name: "kmd", Password: "right"}}})
	tests := []struct {
		name  string
		space subject.Space
		o     Options
		want  string
	}{
		{"refused", space, Options{URL: "nats://127.0.0.1:" + port},
			"bus: cannot reach nats://127.0.0.1:" + port + ": connection refused"},
		{"password not shown", space, Options{URL: "nats://u:secret@127.0.0.1:" + port},
			"bus: cannot reach nats://u:xxxxx@127.0.0.1:" + port + ": connection refused"},
		{"wrong password", space, Options{URL: s.ClientURL(), User: "kmd", Password: "wrong"},
			"bus: " + s.ClientURL() + ` refused user "kmd": authorization violation`},
		{"no user", space, Options{URL: s.ClientURL()},
			"bus: " + s.ClientURL() + ` refused user "": authorization violation`},
		{"no URL", space, Options{}, "bus: no server URL"},
		{"bad space", subject.Space{Root: "a.b", Router: "r0"}, Options{URL: s.ClientURL()}, `bus: bad space "a.b"."r0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Connect(context.Background(), tt.space, tt.o)
			if err == nil {
				c.Close()
				t.Fatalf("connected, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n %q\nwant\n %q", err, tt.want)
			}
		})
	}
	c, err := Connect(context.Background(), space, Options{URL: s.ClientURL(), User: "kmd", Password: "right"})
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	c.Close()
}

func TestConnectTimeout(t *testing.T) {
	// A peer that accepts and then says nothing.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	u := "nats://" + l.Addr().String()
	start := time.Now()
	_, err = Connect(context.Background(), space, Options{URL: u, ConnectTimeout: 300 * time.Millisecond})
	if want := "bus: cannot reach " + u + ": no answer within 300ms"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Connect took %v with a 300ms timeout", el)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Connect(ctx, space, Options{URL: u}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled ctx: %v", err)
	}
}

func TestTypeChecks(t *testing.T) {
	s := startServer(t, broker.Options{Port: broker.DontListen})
	c := connect(t, Options{InProcess: s.InProcess()})
	ctx := context.Background()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"unknown verb", c.Request(ctx, subject.Kmd, "nope", opRequest(), &pb.OpReply{}), "bus: kmd.nope is not in the subject registry"},
		{"request on publish subject", c.Request(ctx, subject.Kmd, subject.VerbPunt, &pb.IKEDatagram{}, &pb.OpReply{}), "bus: kmd.punt is a publish subject"},
		{"wrong request type", c.Request(ctx, subject.Kmd, subject.VerbOp, &pb.StatusRequest{}, &pb.OpReply{}), "bus: kmd.op request is sitesec.v1.OpRequest, not sitesec.v1.StatusRequest"},
		{"wrong reply type", c.Request(ctx, subject.Kmd, subject.VerbOp, opRequest(), &pb.ProcessStatus{}), "bus: kmd.op reply is sitesec.v1.OpReply, not sitesec.v1.ProcessStatus"},
		{"nil request", c.Request(ctx, subject.Kmd, subject.VerbOp, nil, &pb.OpReply{}), "bus: kmd.op: nil request"},
		{"publish on request subject", c.Publish(subject.Kmd, subject.VerbOp, opRequest()), "bus: kmd.op is a request subject"},
		{"wrong publish type", c.Publish(subject.Fwdd, subject.VerbSAEvents, &pb.GatewayEvent{}), "bus: fwdd.events.sa message is sitesec.v1.SAEvent, not sitesec.v1.GatewayEvent"},
	}
	_, err := c.Handle(subject.Fwdd, subject.VerbSAEvents, func(context.Context, proto.Message) (proto.Message, error) { return nil, nil })
	tests = append(tests, struct {
		name string
		err  error
		want string
	}{"handle publish subject", err, "bus: fwdd.events.sa is a publish subject"})
	_, err = Serve(c, subject.Fwdd, subject.VerbSAInstall, func(context.Context, *pb.SADelete) (*pb.SAInstallReply, error) { return nil, nil })
	tests = append(tests, struct {
		name string
		err  error
		want string
	}{"serve wrong type", err, "bus: fwdd.sa.install request is sitesec.v1.SAInstall, not *pb.SADelete"})
	_, err = Listen(c, subject.Fwdd, subject.VerbSAEvents, func(*pb.GatewayEvent) {})
	tests = append(tests, struct {
		name string
		err  error
		want string
	}{"listen wrong type", err, "bus: fwdd.events.sa carries sitesec.v1.SAEvent, not *pb.GatewayEvent"})
	_, err = Call[*pb.SAInstallReply](ctx, c, subject.Kmd, subject.VerbOp, opRequest())
	tests = append(tests, struct {
		name string
		err  error
		want string
	}{"call wrong type", err, "bus: kmd.op reply is sitesec.v1.OpReply, not *pb.SAInstallReply"})
	for _, tt := range tests {
		if tt.err == nil || tt.err.Error() != tt.want {
			t.Errorf("%s: error %v, want %q", tt.name, tt.err, tt.want)
		}
	}
}

func TestPublishSubscribe(t *testing.T) {
	eachTransport(t, func(t *testing.T, s *broker.Server, o Options) {
		var mu sync.Mutex
		var reported []error
		o.OnError = func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }
		sub := connect(t, o)
		pub := connect(t, o)
		got := make(chan *pb.SAEvent, 4)
		if _, err := Listen(sub, subject.Fwdd, subject.VerbSAEvents, func(m *pb.SAEvent) {
			if m.GetServiceSet() == "panic" {
				panic("subscriber bug")
			}
			got <- m
		}); err != nil {
			t.Fatal(err)
		}
		sub.NC.Flush()
		subj := space.Subject(subject.Fwdd, subject.VerbSAEvents)
		if err := pub.NC.Publish(subj, []byte{0x0a, 0xff}); err != nil { // truncated field
			t.Fatal(err)
		}
		if err := pub.Publish(subject.Fwdd, subject.VerbSAEvents, &pb.SAEvent{ServiceSet: "panic"}); err != nil {
			t.Fatal(err)
		}
		want := &pb.SAEvent{ServiceSet: "ss1", Sa: &pb.SAKey{Spi: 0x1234}, Bytes: 99}
		if err := pub.Publish(subject.Fwdd, subject.VerbSAEvents, want); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if !proto.Equal(m, want) {
				t.Errorf("got %v, want %v", m, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
		if d := sub.Dropped(); d != 1 {
			t.Errorf("Dropped = %d, want 1", d)
		}
		select {
		case m := <-got:
			t.Errorf("extra event %v", m)
		default:
		}
		mu.Lock()
		defer mu.Unlock()
		if len(reported) != 1 || !strings.Contains(reported[0].Error(), "subscriber of sitesec.r0.fwdd.events.sa panicked: subscriber bug") {
			t.Errorf("OnError got %v", reported)
		}
	})
}

func TestBackoff(t *testing.T) {
	const ms = time.Millisecond
	mid := func(n int64) int64 { return n / 2 }
	zero := func(int64) int64 { return 0 }
	tests := []struct {
		n         int
		wait, max time.Duration
		rnd       func(int64) int64
		want      time.Duration
	}{
		{1, 100 * ms, 2000 * ms, mid, 100 * ms},
		{2, 100 * ms, 2000 * ms, mid, 200 * ms},
		{3, 100 * ms, 2000 * ms, mid, 400 * ms},
		{5, 100 * ms, 2000 * ms, mid, 1600 * ms},
		{6, 100 * ms, 2000 * ms, mid, 2000 * ms},
		{1000, 100 * ms, 2000 * ms, mid, 2000 * ms},
		{1, 100 * ms, 2000 * ms, zero, 80 * ms},
		{6, 100 * ms, 2000 * ms, zero, 1600 * ms},
		{0, 100 * ms, 2000 * ms, mid, 100 * ms},
		{3, 0, 0, mid, 0},
	}
	for _, tt := range tests {
		if got := backoff(tt.n, tt.wait, tt.max, tt.rnd); got != tt.want {
			t.Errorf("backoff(%d, %v, %v) = %v, want %v", tt.n, tt.wait, tt.max, got, tt.want)
		}
	}
}
