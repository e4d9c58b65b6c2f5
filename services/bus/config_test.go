package bus

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
)

func snapshot(rev uint64) *pb.ConfigSnapshot {
	return &pb.ConfigSnapshot{
		Revision:    rev,
		CommittedBy: "admin",
		Config:      &pb.Config{System: &pb.System{HostName: "gw-" + string(rune('a'+rev%26))}},
	}
}

// watcher records what WatchConfig delivers.
type watcher struct {
	mu   sync.Mutex
	revs []uint64
	ch   chan uint64
	done chan error
}

func watch(t *testing.T, ctx context.Context, c *Conn) *watcher {
	t.Helper()
	w := &watcher{ch: make(chan uint64, 64), done: make(chan error, 1)}
	go func() {
		w.done <- c.WatchConfig(ctx, func(s *pb.ConfigSnapshot) {
			w.mu.Lock()
			w.revs = append(w.revs, s.GetRevision())
			w.mu.Unlock()
			w.ch <- s.GetRevision()
		})
	}()
	return w
}

func (w *watcher) next(t *testing.T, want uint64) {
	t.Helper()
	select {
	case got := <-w.ch:
		if got != want {
			t.Fatalf("watched revision %d, want %d (all %v)", got, want, w.all())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no revision %d within 10s (all %v)", want, w.all())
	}
}

func (w *watcher) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-w.ch:
		t.Fatalf("unexpected revision %d (all %v)", got, w.all())
	case <-time.After(d):
	}
}

// waitDropped waits (10 s at most) until c has dropped want messages.
// The bucket keeps one value per key: a value the server has not yet
// pushed to a watcher when the next one lands is never pushed, so a test
// writes the next value only once the watchers saw the bad one.
func waitDropped(t *testing.T, c *Conn, want uint64, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); c.Dropped() < want && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if d := c.Dropped(); d != want {
		t.Errorf("Dropped = %d, want %d (%s)", d, want, what)
	}
}

func (w *watcher) all() []uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]uint64(nil), w.revs...)
}

func TestConfigKV(t *testing.T) {
	eachTransport(t, func(t *testing.T, s *broker.Server, o Options) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfgd := connect(t, o)
		kmd := connect(t, o)

		if got, err := kmd.GetConfig(ctx); got != nil || err != nil {
			t.Fatalf("GetConfig before any commit = %v, %v; want nil, nil", got, err)
		}
		// Watch before the bucket exists.
		early := watch(t, ctx, kmd)
		time.Sleep(50 * time.Millisecond)

		if err := cfgd.PutConfig(ctx, snapshot(1)); err != nil {
			t.Fatalf("PutConfig: %v", err)
		}
		early.next(t, 1)
		if err := cfgd.PutConfig(ctx, snapshot(2)); err != nil {
			t.Fatal(err)
		}
		early.next(t, 2)

		got, err := kmd.GetConfig(ctx)
		if err != nil || !proto.Equal(got, snapshot(2)) {
			t.Fatalf("GetConfig = %v, %v; want revision 2", got, err)
		}

		// A late watcher starts with the current snapshot.
		late := watch(t, ctx, kmd)
		late.next(t, 2)

		// Never backwards, and a malformed value is dropped and counted.
		if err := cfgd.PutConfig(ctx, snapshot(1)); err != nil {
			t.Fatal(err)
		}
		js, _ := jetstream.New(cfgd.NC)
		kv, err := js.KeyValue(ctx, space.ConfigBucket())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, subject.ConfigKey, []byte{0x0a, 0xff}); err != nil {
			t.Fatal(err)
		}
		waitDropped(t, kmd, 2, "one malformed value, two watchers")
		if err := cfgd.PutConfig(ctx, snapshot(3)); err != nil {
			t.Fatal(err)
		}
		early.next(t, 3)
		late.next(t, 3)
		if _, err := kv.Put(ctx, subject.ConfigKey, []byte{0x0a, 0xff}); err != nil {
			t.Fatal(err)
		}
		if _, err := kmd.GetConfig(ctx); err == nil {
			t.Error("GetConfig of a malformed value succeeded")
		}

		cancel()
		for _, w := range []*watcher{early, late} {
			select {
			case err := <-w.done:
				if err != nil {
					t.Errorf("WatchConfig returned %v after ctx ended, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("WatchConfig did not return after ctx ended")
			}
		}
		if err := cfgd.PutConfig(context.Background(), nil); err == nil {
			t.Error("PutConfig(nil) succeeded")
		}
	})
}

func TestWatchConfigClosed(t *testing.T) {
	tests := []struct {
		name       string
		serverDown bool // stop the server before closing the connection
	}{
		{"while watching", false},
		{"while waiting for the server", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, broker.Options{})
			c := connect(t, Options{URL: s.ClientURL()})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			w := watch(t, ctx, c)
			time.Sleep(100 * time.Millisecond)
			if tt.serverDown {
				s.Shutdown()
				waitFor(t, "disconnect", func() bool { return !c.Connected() })
				time.Sleep(100 * time.Millisecond)
			}
			c.Close()
			select {
			case err := <-w.done:
				if err == nil {
					t.Error("WatchConfig returned nil after Close, want an error")
				}
			case <-ctx.Done():
				t.Fatal("WatchConfig did not return after Close")
			}
		})
	}
}

// restartable is a server on a fixed port and store that a test can stop
// and start again.
type restartable struct {
	t    *testing.T
	o    broker.Options
	srv  *broker.Server
	opts Options
}

func newRestartable(t *testing.T, users []broker.User) *restartable {
	r := &restartable{t: t, o: broker.Options{
		StoreDir: filepath.Join(t.TempDir(), "nats"),
		Port:     freePort(t),
		Users:    users,
	}}
	r.start()
	t.Cleanup(func() { r.srv.Shutdown() })
	return r
}

func (r *restartable) start() {
	r.t.Helper()
	var err error
	for i := 0; i < 50; i++ { // the old listener may linger a moment
		if r.srv, err = broker.Start(r.o); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("restart broker: %v", err)
}

func (r *restartable) restart() {
	r.srv.Shutdown()
	r.start()
}

func (r *restartable) url() string { return r.srv.ClientURL() }

func TestReconnect(t *testing.T) {
	r := newRestartable(t, nil)
	var mu sync.Mutex
	var statuses []bool
	o := Options{URL: r.url(), ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 200 * time.Millisecond}
	so := o
	so.OnStatus = func(up bool) { mu.Lock(); statuses = append(statuses, up); mu.Unlock() }
	srv := connect(t, so)
	cli := connect(t, o)

	if _, err := Serve(srv, subject.Cfgd, subject.VerbStatus, func(context.Context, *pb.StatusRequest) (*pb.ProcessStatus, error) {
		return &pb.ProcessStatus{Name: subject.Cfgd}, nil
	}); err != nil {
		t.Fatal(err)
	}
	events := make(chan *pb.Health, 8)
	if _, err := Listen(srv, subject.Kmd, subject.VerbHealth, func(m *pb.Health) { events <- m }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := cli.PutConfig(ctx, snapshot(1)); err != nil {
		t.Fatal(err)
	}
	w := watch(t, ctx, srv)
	w.next(t, 1)

	r.restart()

	waitFor(t, "both connections back", func() bool { return srv.Connected() && cli.Connected() })
	// Requests and events work again.
	var err error
	for i := 0; i < 50; i++ {
		if _, err = Call[*pb.ProcessStatus](ctx, cli, subject.Cfgd, subject.VerbStatus, &pb.StatusRequest{}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("request after restart: %v", err)
	}
	if err := cli.Publish(subject.Kmd, subject.VerbHealth, &pb.Health{Daemon: subject.Kmd}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-events:
		if m.GetDaemon() != subject.Kmd {
			t.Errorf("event %v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscription lost across the restart")
	}
	// The configuration survived in the store, the watch goes on, and
	// revision 1 is not delivered again.
	if got, err := cli.GetConfig(ctx); err != nil || got.GetRevision() != 1 {
		t.Fatalf("GetConfig after restart = %v, %v", got, err)
	}
	if err := cli.PutConfig(ctx, snapshot(2)); err != nil {
		t.Fatal(err)
	}
	w.next(t, 2)
	w.quiet(t, 200*time.Millisecond)

	if srv.Reconnects() < 1 {
		t.Errorf("Reconnects = %d", srv.Reconnects())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(statuses) < 2 || statuses[0] || !statuses[len(statuses)-1] {
		t.Errorf("OnStatus calls %v, want false ... true", statuses)
	}
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bigSnapshot is a configuration with n service sets, each with its rule
// and local gateway: 10,000 of them marshal to several MiB, past the
// server's 1 MiB maximum payload.
func bigSnapshot(rev uint64, n int) *pb.ConfigSnapshot {
	s := snapshot(rev)
	for i := range n {
		s.Config.ServiceSets = append(s.Config.ServiceSets, &pb.ServiceSet{
			Name:          fmt.Sprintf("ss%d-rev%d", i, rev),
			IpsecVpnRules: []string{fmt.Sprintf("rule-%d-for-a-concentrator-with-long-names", i), fmt.Sprintf("rule-%d-second", i)},
			IpsecVpnOptions: &pb.IPsecVPNOptions{
				LocalGateway: &pb.LocalGateway{Address: fmt.Sprintf("10.%d.%d.1", i/250, i%250)},
			},
		})
	}
	return s
}

// configKeys lists the keys of the configuration bucket.
func configKeys(t *testing.T, ctx context.Context, c *Conn) []string {
	t.Helper()
	js, _ := jetstream.New(c.NC)
	kv, err := js.KeyValue(ctx, space.ConfigBucket())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestConfigKVLarge stores snapshots bigger than a NATS message: a
// watcher and GetConfig get them whole, a replaced snapshot's chunks are
// purged, and a chunk that does not add up is refused, not applied.
func TestConfigKVLarge(t *testing.T) {
	eachTransport(t, func(t *testing.T, s *broker.Server, o Options) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfgd := connect(t, o)
		kmd := connect(t, o)
		w := watch(t, ctx, kmd)

		big := bigSnapshot(1, 20000)
		if size := proto.Size(big); size < 1<<20 {
			t.Fatalf("snapshot is only %d bytes", size)
		}
		if err := cfgd.PutConfig(ctx, big); err != nil {
			t.Fatalf("PutConfig of %d bytes: %v", proto.Size(big), err)
		}
		w.next(t, 1)
		got, err := kmd.GetConfig(ctx)
		if err != nil || !proto.Equal(got, big) {
			t.Fatalf("GetConfig = %d service sets, %v; want the 20,000 put", len(got.GetConfig().GetServiceSets()), err)
		}
		n1 := len(configKeys(t, ctx, cfgd))
		if n1 < 9 {
			t.Fatalf("%d keys for a %d-byte snapshot: not chunked", n1, proto.Size(big))
		}

		// A second large snapshot replaces the first generation's chunks.
		big2 := bigSnapshot(2, 20000)
		if err := cfgd.PutConfig(ctx, big2); err != nil {
			t.Fatal(err)
		}
		w.next(t, 2)
		if got, err := kmd.GetConfig(ctx); err != nil || !proto.Equal(got, big2) {
			t.Fatalf("GetConfig after the second = %v", err)
		}
		if n2 := len(configKeys(t, ctx, cfgd)); n2 != n1 {
			t.Errorf("%d keys after a second snapshot of the same size, want %d: old chunks left", n2, n1)
		}

		// A small snapshot after a large one: only the head is left.
		if err := cfgd.PutConfig(ctx, snapshot(3)); err != nil {
			t.Fatal(err)
		}
		w.next(t, 3)
		if keys := configKeys(t, ctx, cfgd); len(keys) != 1 || keys[0] != subject.ConfigKey {
			t.Errorf("keys after an inline snapshot: %v", keys)
		}

		// A chunk that does not match its head is dropped and counted.
		js, _ := jetstream.New(cfgd.NC)
		kv, _ := js.KeyValue(ctx, space.ConfigBucket())
		h := chunkedHead{gen: 7, n: 1, size: 3}
		if _, err := kv.Put(ctx, h.key(0), []byte("abc")); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, subject.ConfigKey, []byte(h.String())); err != nil {
			t.Fatal(err)
		}
		if _, err := kmd.GetConfig(ctx); err == nil {
			t.Error("GetConfig of chunks with the wrong sum succeeded")
		}
		waitDropped(t, kmd, 1, "the bad chunks")
		if err := cfgd.PutConfig(ctx, snapshot(4)); err != nil {
			t.Fatal(err)
		}
		w.next(t, 4)
	})
}

// FuzzChunkedHead feeds arbitrary values of the configuration key to the
// head parser: it never panics and accepts only well-formed heads.
func FuzzChunkedHead(f *testing.F) {
	f.Add([]byte(chunkedHead{gen: 1, n: 2, size: chunkMax + 1}.String()))
	f.Add([]byte(chunkedMagic + " 1 99999999 1 00"))
	f.Add([]byte{0x0a, 0x01})
	f.Fuzz(func(t *testing.T, v []byte) {
		h, ok, err := parseHead(v)
		if ok && err == nil && (h.n < 1 || h.n > h.size/chunkMax+1) {
			t.Fatalf("accepted head %+v", h)
		}
	})
}
