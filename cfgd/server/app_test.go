package server

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
	"github.com/sitesec/sitesec/services/bus"
	"github.com/sitesec/sitesec/services/daemon"
)

// TestAppOverBus runs cfgd and an idle kmd on an embedded bus: a commit
// reaches kmd and reports its ack, and a restarted cfgd serves the last
// committed configuration and keeps counting revisions.
func TestAppOverBus(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded bus")
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
	start := func(name string, app daemon.App) func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- daemon.Run(ctx, name, app, []string{"--root", root, "--bus", srv.ClientURL(), "--name", "t1"})
		}()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("%s: %v", name, err)
					}
				case <-time.After(10 * time.Second):
					t.Errorf("%s did not stop", name)
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}
	edit := func(words []string, text string) *pb.ConfigEditReply {
		t.Helper()
		var rep pb.ConfigEditReply
		var err error
		// cfgd may still be starting, and right after a restart the
		// server may still route to the old connection.
		for i := 0; i < 20; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
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
	stopCfgd := start("cfgd", app)
	edit([]string{"status"}, "")
	start("kmd", daemon.Idle{})
	deadline := time.Now().Add(10 * time.Second)
	for {
		app.Server.mu.Lock()
		_, ok := app.alive["kmd"]
		app.Server.mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cfgd never saw kmd's heartbeat")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := edit([]string{"load", "override", "terminal"}, seedText(t)); len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	r := edit([]string{"commit", "comment", "over the bus"}, "")
	if len(r.Errors) > 0 || r.Revision != 1 || r.Lines[len(r.Lines)-1] != "commit complete" {
		t.Fatalf("commit: %v %v", r.Errors, r.Lines)
	}
	found := false
	for _, a := range r.Acks {
		found = found || (a.Daemon == "kmd" && a.Ok && a.Revision == 1)
	}
	if !found {
		t.Fatalf("no kmd ack in %v (lines %v)", r.Acks, r.Lines)
	}
	snap, err := ctl.GetConfig(context.Background())
	if err != nil || snap.GetRevision() != 1 || snap.GetConfig().GetSystem().GetHostName() != "vpn-gw1" {
		t.Fatalf("bucket: %v %v", snap, err)
	}

	stopCfgd()
	app2 := NewApp()
	start("cfgd", app2)
	edit([]string{"status"}, "")
	var op pb.OpReply
	if err := ctl.Request(context.Background(), subject.Cfgd, subject.VerbOp, &pb.OpRequest{Words: []string{"show", "configuration", "system", "host-name"}}, &op); err != nil {
		t.Fatal(err)
	}
	if got := op.GetConfigText().GetText(); got != "host-name vpn-gw1;\n" {
		t.Fatalf("after restart: %q", got)
	}
	edit([]string{"set", "system", "host-name", "gw2"}, "")
	r = edit([]string{"commit"}, "")
	if r.Revision != 2 || !strings.Contains(strings.Join(r.Lines, "\n"), "commit complete") {
		t.Fatalf("commit after restart: %v %v", r.Errors, r.Lines)
	}
}
