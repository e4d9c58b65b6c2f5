package server

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
	"github.com/sitesec/sitesec/services/bus"
	"github.com/sitesec/sitesec/services/daemon"
)

// refuser is a daemon that cannot run service set ss9999.
type refuser struct {
	daemon.Idle
	applied  atomic.Int32
	prepared atomic.Int32 // candidates seen whole (10,000 sets)
}

func (r *refuser) Apply(context.Context, *pb.Config, *pb.Config) error {
	r.applied.Add(1)
	return nil
}

func (r *refuser) Prepare(_ context.Context, _, c *pb.Config) error {
	if len(c.GetServiceSets()) == 10000 {
		r.prepared.Add(1)
	}
	for _, s := range c.GetServiceSets() {
		if s.GetName() == "ss9999" {
			return errors.New("[edit services service-set ss9999] cannot run this service set")
		}
	}
	return nil
}

// TestPrepareTenThousandOverBus: the prepare round of a 10,000-service-set
// candidate (several MiB, over the bus's 1 MiB maximum payload) reaches
// the daemon, whose refusal fails commit check and commit atomically: the
// revision, the stored snapshot and the daemon's configuration stay those
// of the previous commit (before, the request did not fit, the round went
// on with a warning and the commit was recorded and applied).
func TestPrepareTenThousandOverBus(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded bus and a 10,000-set commit")
	}
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
	root := t.TempDir()
	start := func(name string, app daemon.App) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- daemon.Run(ctx, name, app, []string{"--root", root, "--bus", srv.ClientURL(), "--name", "t1"})
		}()
		var once sync.Once
		t.Cleanup(func() {
			once.Do(func() {
				cancel()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Errorf("%s did not stop", name)
				}
			})
		})
	}
	edit := func(words []string, text string, wait time.Duration) *pb.ConfigEditReply {
		t.Helper()
		var rep pb.ConfigEditReply
		var err error
		for i := 0; i < 20; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			err = ctl.Request(ctx, subject.Cfgd, subject.VerbConfig, &pb.ConfigEditRequest{Session: "s1", Words: words, Text: text, User: "admin"}, &rep)
			cancel()
			if err == nil {
				return &rep
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%v: %v", words, err)
		return nil
	}
	app := NewApp()
	start("cfgd", app)
	edit([]string{"status"}, "", 2*time.Second)
	fwdd := &refuser{}
	start("fwdd", fwdd)
	deadline := time.Now().Add(10 * time.Second)
	for {
		app.Server.mu.Lock()
		_, ok := app.alive["fwdd"]
		app.Server.mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cfgd never saw fwdd's heartbeat")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := edit([]string{"load", "override", "terminal"}, concentrator(10), 10*time.Second); len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	if r := edit([]string{"commit"}, "", 30*time.Second); len(r.Errors) > 0 || r.Revision != 1 || r.Lines[len(r.Lines)-1] != "commit complete" {
		t.Fatalf("first commit: %v %v", r.Errors, r.Lines)
	}
	applied := fwdd.applied.Load()

	big := concentrator(10000)
	t.Logf("candidate text %d bytes", len(big))
	if r := edit([]string{"load", "override", "terminal"}, big, 120*time.Second); len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	for _, cmd := range []string{"check", ""} {
		words := []string{"commit"}
		if cmd != "" {
			words = append(words, cmd)
		}
		r := edit(words, "", 120*time.Second)
		lines := strings.Join(r.Lines, "\n")
		var errs []string
		for _, e := range r.Errors {
			errs = append(errs, e.GetPath()+" "+e.GetMessage())
		}
		all := strings.Join(errs, "\n") + "\n" + lines
		t.Logf("%v: %s", words, all)
		if !strings.Contains(all, "[edit services service-set ss9999]") || !strings.Contains(all, "fwdd: cannot run this service set") ||
			strings.Contains(all, "commit complete") || strings.Contains(all, "check succeeds") || strings.Contains(all, "did not answer") {
			t.Fatalf("%v: want fwdd's refusal and no success", words)
		}
	}
	if fwdd.prepared.Load() != 2 {
		t.Fatalf("fwdd prepared the whole 10,000-set candidate %d times, want 2", fwdd.prepared.Load())
	}
	if got := app.Server.DB.Meta().Revision; got != 1 {
		t.Fatalf("revision %d after the refused commit", got)
	}
	snap, err := ctl.GetConfig(context.Background())
	if err != nil || snap.GetRevision() != 1 || len(snap.GetConfig().GetServiceSets()) != 10 {
		t.Fatalf("stored snapshot revision %d with %d sets (%v)", snap.GetRevision(), len(snap.GetConfig().GetServiceSets()), err)
	}
	time.Sleep(500 * time.Millisecond)
	if fwdd.applied.Load() != applied {
		t.Fatalf("fwdd applied %d configurations after the refused commit", fwdd.applied.Load()-applied)
	}
}
