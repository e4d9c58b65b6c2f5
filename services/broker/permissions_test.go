package broker

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sitesec/sitesec/proto/subject"
)

var space = subject.Space{Root: "sitesec", Router: "r0"}

func TestPermissionsTable(t *testing.T) {
	sa := space.Subject(subject.Fwdd, subject.VerbSAInstall)
	tests := []struct {
		daemon               string
		allowHas, allowLacks []string
		denyHas, denyLacks   []string
	}{
		{subject.Kmd, []string{space.All(), "_INBOX.>"}, []string{"$KV.sitesec_r0_config.>"},
			[]string{space.Subject(subject.Kmd, subject.VerbPunt), "sitesec.r0.fwdd.events.>"}, []string{"sitesec.r0.fwdd.sa.>"}},
		{subject.Fwdd, []string{space.All()}, nil,
			[]string{"sitesec.r0.fwdd.sa.>", space.Subject(subject.Fwdd, subject.VerbTransmit)}, []string{"sitesec.r0.fwdd.events.>"}},
		{subject.Pkid, nil, nil,
			[]string{"sitesec.r0.fwdd.sa.>"}, []string{space.Subject(subject.Pkid, subject.VerbCertEvents)}},
		{subject.Cfgd, []string{"$KV.sitesec_r0_config.>", "$JS.API.STREAM.CREATE.KV_sitesec_r0_config"}, nil,
			[]string{"sitesec.r0.fwdd.sa.>", space.Subject(subject.Pkid, subject.VerbCertEvents)}, nil},
		{subject.Sitesecd, []string{"_INBOX.>"}, []string{"$KV.sitesec_r0_config.>"},
			[]string{"sitesec.r0.fwdd.sa.>", space.Subject(subject.Kmd, subject.VerbPunt)}, nil},
		{subject.CLI, []string{space.Subject(subject.Kmd, subject.VerbOp), space.Subject(subject.Sitesecd, subject.VerbRestart), space.Subject(subject.Cfgd, subject.VerbConfig)},
			[]string{space.All(), "_INBOX.>", sa, "$JS.API.INFO"}, nil, nil},
		{"nobody", nil, []string{space.All()}, []string{">"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.daemon, func(t *testing.T) {
			allow, deny := Permissions(space, tt.daemon)
			for _, s := range tt.allowHas {
				if !slices.Contains(allow, s) {
					t.Errorf("allow %q lacks %q", allow, s)
				}
			}
			for _, s := range tt.allowLacks {
				if slices.Contains(allow, s) {
					t.Errorf("allow %q has %q", allow, s)
				}
			}
			for _, s := range tt.denyHas {
				if !slices.Contains(deny, s) {
					t.Errorf("deny %q lacks %q", deny, s)
				}
			}
			for _, s := range tt.denyLacks {
				if slices.Contains(deny, s) {
					t.Errorf("deny %q has %q", deny, s)
				}
			}
			if len(allow) == 0 && !slices.Contains(deny, ">") {
				t.Errorf("empty allow list means everything, deny %q", deny)
			}
		})
	}
}

func TestPermissionsOtherRouter(t *testing.T) {
	other, _ := subject.New("sitesec", "r1")
	allow, deny := Permissions(other, subject.Fwdd)
	for _, s := range append(allow, deny...) {
		if strings.HasPrefix(s, "sitesec.r0.") || strings.Contains(s, "sitesec_r0_") {
			t.Errorf("r1 permission %q names r0", s)
		}
	}
}

var everyone = append([]string{subject.Sitesecd, subject.CLI}, subject.Daemons...)

// permServer starts a server with one user per daemon and the cli.
func permServer(t *testing.T) *Server {
	t.Helper()
	var users []User
	for _, d := range everyone {
		allow, deny := Permissions(space, d)
		users = append(users, User{Name: d, Password: "pw-" + d, PublishAllow: allow, PublishDeny: deny})
	}
	return start(t, Options{StoreDir: filepath.Join(t.TempDir(), "nats"), Users: users})
}

func connectAs(t *testing.T, s *Server, name string, ec *errCollector) *nats.Conn {
	t.Helper()
	opts := []nats.Option{nats.UserInfo(name, "pw-"+name), nats.Name(name)}
	if ec != nil {
		opts = append(opts, nats.ErrorHandler(ec.handler))
	}
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestPermissionsEnforced(t *testing.T) {
	s := permServer(t)
	fwdd := connectAs(t, s, subject.Fwdd, nil)
	sa := space.Subject(subject.Fwdd, subject.VerbSAInstall)
	sub, err := fwdd.SubscribeSync(sa)
	if err != nil {
		t.Fatal(err)
	}
	fwdd.Flush()

	tests := []struct {
		user, subject string
		ok            bool
	}{
		{subject.Kmd, sa, true},
		{subject.Kmd, space.Subject(subject.Fwdd, subject.VerbTransmit), true},
		{subject.Fwdd, sa, false},
		{subject.Pkid, sa, false},
		{subject.Cfgd, sa, false},
		{subject.CLI, sa, false},
		{subject.Fwdd, space.Subject(subject.Kmd, subject.VerbPunt), true},
		{subject.Kmd, space.Subject(subject.Kmd, subject.VerbPunt), false},
		{subject.Kmd, space.Subject(subject.Fwdd, subject.VerbSAEvents), false},
		{subject.Pkid, space.Subject(subject.Pkid, subject.VerbCertEvents), true},
		{subject.Fwdd, space.Subject(subject.Pkid, subject.VerbCertEvents), false},
		{subject.Kmd, space.Subject(subject.Kmd, subject.VerbHealth), true},
		{subject.CLI, space.Subject(subject.Kmd, subject.VerbOp), true},
		{subject.CLI, space.Subject(subject.Kmd, subject.VerbHealth), false},
		{subject.Kmd, "sitesec.r1.kmd.health", false},
		{subject.Pkid, "$KV." + space.ConfigBucket() + "." + subject.ConfigKey, false},
		{subject.Cfgd, "$KV." + space.ConfigBucket() + "." + subject.ConfigKey, true},
	}
	for _, tt := range tests {
		t.Run(tt.user+" "+tt.subject, func(t *testing.T) {
			ec := newErrCollector()
			nc := connectAs(t, s, tt.user, ec)
			watch, err := fwdd.SubscribeSync(tt.subject)
			if err != nil {
				t.Fatal(err)
			}
			defer watch.Unsubscribe()
			fwdd.Flush()
			if err := nc.Publish(tt.subject, []byte("x")); err != nil {
				t.Fatal(err)
			}
			nc.Flush()
			if tt.ok {
				if _, err := watch.NextMsg(time.Second); err != nil {
					t.Errorf("%s could not publish %s: %v (async %v)", tt.user, tt.subject, err, ec.all())
				}
				return
			}
			if err := ec.wait(2 * time.Second); !errors.Is(err, nats.ErrPermissionViolation) {
				t.Errorf("async error %v, want a permissions violation", err)
			}
			if _, err := watch.NextMsg(50 * time.Millisecond); err == nil {
				t.Errorf("%s published %s", tt.user, tt.subject)
			}
		})
	}
	if m, err := sub.NextMsg(10 * time.Millisecond); err != nil || string(m.Data) != "x" {
		t.Errorf("fwdd did not get kmd's sa.install: %v", err)
	}
	if _, err := sub.NextMsg(10 * time.Millisecond); err == nil {
		t.Error("fwdd got a second sa.install: someone else was allowed")
	}
}

func TestPermissionsKVWatch(t *testing.T) {
	s := permServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bucket := space.ConfigBucket()

	cfgd := connectAs(t, s, subject.Cfgd, nil)
	js, _ := jetstream.New(cfgd)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatalf("cfgd creates the bucket: %v", err)
	}
	if _, err := kv.Put(ctx, subject.ConfigKey, []byte("rev1")); err != nil {
		t.Fatalf("cfgd puts: %v", err)
	}

	last := "rev1"
	for _, d := range append([]string{subject.Sitesecd}, subject.Daemons...) {
		t.Run(d, func(t *testing.T) {
			ec := newErrCollector()
			nc := connectAs(t, s, d, ec)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			kv, err := js.KeyValue(ctx, bucket)
			if err != nil {
				t.Fatalf("look up bucket: %v", err)
			}
			e, err := kv.Get(ctx, subject.ConfigKey)
			if err != nil || string(e.Value()) != last {
				t.Fatalf("Get: %v, want %q", err, last)
			}
			w, err := kv.Watch(ctx, subject.ConfigKey)
			if err != nil {
				t.Fatalf("Watch: %v", err)
			}
			defer w.Stop()
			next := func() jetstream.KeyValueEntry {
				for {
					select {
					case e := <-w.Updates():
						if e != nil {
							return e
						}
					case <-ctx.Done():
						t.Fatal("watch timed out")
					}
				}
			}
			if e := next(); string(e.Value()) != last {
				t.Fatalf("first watched value %q", e.Value())
			}
			if d != subject.Cfgd {
				// A denied publish is never acknowledged, so give up soon.
				short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				if _, err := kv.Put(short, subject.ConfigKey, []byte("forged")); err == nil {
					t.Errorf("%s could put into the configuration bucket", d)
				}
				if err := kv.Delete(short, subject.ConfigKey); err == nil {
					t.Errorf("%s could delete from the configuration bucket", d)
				}
				cancel()
			}
			val := "by-cfgd-for-" + d
			cjs, _ := jetstream.New(cfgd)
			ckv, err := cjs.KeyValue(ctx, bucket)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ckv.Put(ctx, subject.ConfigKey, []byte(val)); err != nil {
				t.Fatal(err)
			}
			if e := next(); string(e.Value()) != val {
				t.Fatalf("watched %q, want %q", e.Value(), val)
			}
			last = val
			for _, err := range ec.all() {
				if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "$KV.") {
					t.Errorf("unexpected async error while watching: %v", err)
				}
			}
		})
	}
}
