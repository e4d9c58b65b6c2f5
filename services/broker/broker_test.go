package broker

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func start(t *testing.T, o Options) *Server {
	t.Helper()
	if o.StoreDir == "" {
		o.StoreDir = filepath.Join(t.TempDir(), "nats")
	}
	s, err := Start(o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func TestStartTCP(t *testing.T) {
	s := start(t, Options{})
	u := s.ClientURL()
	if !strings.HasPrefix(u, "nats://127.0.0.1:") || s.Port() == 0 {
		t.Fatalf("ClientURL = %q, Port = %d", u, s.Port())
	}
	nc, err := nats.Connect(u)
	if err != nil {
		t.Fatalf("connect %s: %v", u, err)
	}
	defer nc.Close()
	if got := nc.ConnectedServerVersion(); got != s.Version() {
		t.Errorf("server version %q, Version() %q", got, s.Version())
	}
}

func TestStartInProcessOnly(t *testing.T) {
	s := start(t, Options{Port: DontListen})
	if u := s.ClientURL(); u != "" {
		t.Errorf("ClientURL = %q, want empty with DontListen", u)
	}
	nc, err := nats.Connect("", nats.InProcessServer(s.InProcess()))
	if err != nil {
		t.Fatalf("in-process connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(context.Background()); err != nil {
		t.Fatalf("JetStream not usable: %v", err)
	}
}

func TestStartStoreDirMode(t *testing.T) {
	fresh := filepath.Join(t.TempDir(), "var", "db", "nats")
	open := filepath.Join(t.TempDir(), "nats")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{fresh, open} {
		s := start(t, Options{StoreDir: dir, Port: DontListen})
		s.Shutdown()
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o700 {
			t.Errorf("%s: mode %o, want 0700", dir, m)
		}
	}
}

func TestStartErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"port in use", Options{StoreDir: t.TempDir(), Port: busy}, "broker: cannot listen on 127.0.0.1:" + strconv.Itoa(busy) + ": address already in use"},
		{"port out of range", Options{StoreDir: t.TempDir(), Port: 70000}, "broker: port 70000 out of range"},
		{"no store", Options{}, "broker: no JetStream store directory"},
		{"store is a file", Options{StoreDir: file}, "broker: JetStream store"},
		{"store below a file", Options{StoreDir: filepath.Join(file, "nats")}, "broker: JetStream store"},
		{"user without name", Options{StoreDir: t.TempDir(), Users: []User{{Password: "x"}}}, "broker: user without a name"},
		{"beyond the loopback without TLS", Options{StoreDir: t.TempDir(), Host: "0.0.0.0"}, "needs TLS"},
		{"missing TLS key", Options{StoreDir: t.TempDir(), Host: "0.0.0.0", TLSCert: file, TLSKey: file + ".none"}, "broker: TLS"},
	}
	if os.Geteuid() != 0 { // root writes anywhere
		tests = append(tests, struct {
			name string
			o    Options
			want string
		}{"store read-only", Options{StoreDir: ro}, "is not writable"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(tt.o)
			if err == nil {
				s.Shutdown()
				t.Fatalf("Start succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, tt.want)
			}
		})
	}
}

func TestShutdownTwice(t *testing.T) {
	s := start(t, Options{Port: DontListen})
	s.Shutdown()
	s.Shutdown()
	if _, err := s.InProcess().InProcessConn(); err == nil {
		t.Error("in-process connection to a stopped server succeeded")
	}
}

func TestRestartKeepsStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	s := start(t, Options{StoreDir: dir, Port: DontListen})
	nc, err := nats.Connect("", nats.InProcessServer(s.InProcess()))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	s.Shutdown()

	s = start(t, Options{StoreDir: dir, Port: DontListen})
	nc, err = nats.Connect("", nats.InProcessServer(s.InProcess()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	kv, err = js.KeyValue(ctx, "b")
	if err != nil {
		t.Fatalf("bucket lost across restart: %v", err)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil || string(e.Value()) != "v" {
		t.Fatalf("Get = %v, %v", e, err)
	}
}

func TestLogf(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	start(t, Options{Port: DontListen, Logf: func(f string, a ...any) {
		mu.Lock()
		lines = append(lines, f)
		mu.Unlock()
	}})
	mu.Lock()
	defer mu.Unlock()
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "nats: ") {
		t.Errorf("log lines %q", lines)
	}
}

// errCollector records the asynchronous errors of a connection, which is
// how NATS reports a permissions violation.
type errCollector struct {
	mu   sync.Mutex
	errs []error
	ch   chan error
}

func newErrCollector() *errCollector { return &errCollector{ch: make(chan error, 16)} }

func (c *errCollector) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.mu.Unlock()
	select {
	case c.ch <- err:
	default:
	}
}

func (c *errCollector) all() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.errs...)
}

var errTimeout = errors.New("timeout")

func (c *errCollector) wait(d time.Duration) error {
	select {
	case err := <-c.ch:
		return err
	case <-time.After(d):
		return errTimeout
	}
}
