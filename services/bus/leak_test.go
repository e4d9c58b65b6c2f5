package bus

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
)

// TestNoGoroutineLeak: a connection that served, subscribed and watched
// leaves nothing running once it is closed.
func TestNoGoroutineLeak(t *testing.T) {
	s := startServer(t, broker.Options{Port: broker.DontListen})
	o := Options{InProcess: s.InProcess()}
	cfgd := connect(t, o)
	if err := cfgd.PutConfig(context.Background(), snapshot(1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()

	c, err := Connect(context.Background(), space, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Serve(c, subject.Kmd, subject.VerbStatus, func(context.Context, *pb.StatusRequest) (*pb.ProcessStatus, error) {
		return &pb.ProcessStatus{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(c, subject.Kmd, subject.VerbHealth, func(*pb.Health) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := Call[*pb.ProcessStatus](context.Background(), c, subject.Kmd, subject.VerbStatus, &pb.StatusRequest{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := watch(t, ctx, c)
	w.next(t, 1)
	cancel()
	<-w.done
	c.Close()

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
