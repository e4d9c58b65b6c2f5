package broker

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sitesec/sitesec/proto/subject"
)

var space = subject.Space{Root: "sitesec", Router: "r0"}

var everyone = append([]string{subject.CLI}, subject.Everyone...)

func TestRightsOfUnknownUser(t *testing.T) {
	r := RightsOf(space, "nobody")
	if len(r.PublishAllow) != 0 || !slices.Contains(r.PublishDeny, ">") || !slices.Contains(r.SubscribeDeny, ">") || r.Responses {
		t.Errorf("nobody has rights %+v", r)
	}
}

func TestRightsOtherRouter(t *testing.T) {
	other, _ := subject.New("sitesec", "r1")
	for _, u := range everyone {
		r := RightsOf(other, u)
		for _, s := range slices.Concat(r.PublishAllow, r.PublishDeny, r.SubscribeAllow, r.SubscribeDeny) {
			if strings.HasPrefix(s, "sitesec.r0.") || strings.Contains(s, "sitesec_r0_") {
				t.Errorf("%s on r1 has a right on r0: %q", u, s)
			}
		}
	}
}

// matrixServer starts a server with one user per daemon and the cli, with
// the rights RightsOf gives them, plus "root", which may do anything and
// watches.
func matrixServer(t *testing.T) *Server {
	t.Helper()
	var users []User
	for _, d := range everyone {
		users = append(users, UserFor(space, d, "pw-"+d))
	}
	users = append(users, User{Name: "root", Password: "pw-root"})
	return start(t, Options{StoreDir: filepath.Join(t.TempDir(), "nats"), Users: users})
}

// asyncErrs collects the errors the server reports to one connection.
type asyncErrs struct {
	mu   sync.Mutex
	errs []error
}

func (a *asyncErrs) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	a.mu.Lock()
	a.errs = append(a.errs, err)
	a.mu.Unlock()
}

// violation waits (bounded) for a permissions violation of op ("Publish"
// or "Subscription") naming subj.
func (a *asyncErrs) violation(op, subj string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		a.mu.Lock()
		for _, err := range a.errs {
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), op+` to "`+subj+`"`) {
				a.mu.Unlock()
				return true
			}
		}
		a.mu.Unlock()
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dial(t *testing.T, s *Server, user string, errs *asyncErrs) *nats.Conn {
	t.Helper()
	opts := []nats.Option{nats.UserInfo(user, "pw-"+user), nats.Name(user), nats.CustomInboxPrefix(InboxPrefix(user))}
	if errs != nil {
		opts = append(opts, nats.ErrorHandler(errs.handler))
	}
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestPermissionMatrix tries every (user × subject × publish/subscribe)
// on a server with the rights RightsOf gives, and expects exactly what
// subject.AccessTable allows: allowed publishes arrive, allowed
// subscriptions receive, everything else is a permissions violation and
// delivers nothing.
func TestPermissionMatrix(t *testing.T) {
	s := matrixServer(t)
	root := dial(t, s, "root", nil)
	for _, u := range everyone {
		t.Run(u, func(t *testing.T) {
			errs := &asyncErrs{}
			nc := dial(t, s, u, errs)
			for _, a := range subject.AccessTable {
				e, _ := subject.Find(a.Daemon, a.Verb)
				subj := a.Subject(space)

				// Publish (a request is a publish with a reply subject).
				mayPub := slices.Contains(a.From, u)
				watch, err := root.SubscribeSync(subj)
				if err != nil {
					t.Fatal(err)
				}
				root.Flush()
				if err := nc.PublishRequest(subj, InboxPrefix(u)+".matrix", []byte("m")); err != nil {
					t.Fatal(err)
				}
				nc.Flush()
				if mayPub {
					if _, err := watch.NextMsg(2 * time.Second); err != nil {
						t.Errorf("%s may publish %s, but it did not arrive: %v", u, subj, err)
					}
				} else {
					if !errs.violation("Publish", subj, 2*time.Second) {
						t.Errorf("%s published %s without a permissions violation", u, subj)
					}
					if _, err := watch.NextMsg(20 * time.Millisecond); err == nil {
						t.Errorf("%s published %s", u, subj)
					}
				}
				watch.Unsubscribe()

				// Subscribe.
				maySub := (e.Kind == subject.Request && a.Daemon == u) ||
					(e.Kind == subject.Publish && slices.Contains(a.To, u)) ||
					(u == subject.CLI && !a.Secret)
				sub, err := nc.SubscribeSync(subj)
				if err != nil {
					t.Fatal(err)
				}
				nc.Flush()
				if err := root.Publish(subj, []byte("s")); err != nil {
					t.Fatal(err)
				}
				root.Flush()
				if maySub {
					if _, err := sub.NextMsg(2 * time.Second); err != nil {
						t.Errorf("%s may subscribe to %s, but got nothing: %v", u, subj, err)
					}
				} else {
					if !errs.violation("Subscription", subj, 2*time.Second) {
						t.Errorf("%s subscribed to %s without a permissions violation", u, subj)
					}
					if _, err := sub.NextMsg(20 * time.Millisecond); err == nil {
						t.Errorf("%s received %s", u, subj)
					}
				}
				sub.Unsubscribe()
			}

			// Nobody reads or writes another's inbox.
			for _, other := range everyone {
				if other == u {
					continue
				}
				inbox := InboxPrefix(other) + ".x"
				nc.Publish(inbox, []byte("forged reply"))
				if _, err := nc.SubscribeSync(InboxPrefix(other) + ".>"); err != nil {
					t.Fatal(err)
				}
				nc.Flush()
				if !errs.violation("Publish", inbox, 2*time.Second) {
					t.Errorf("%s published to %s's inbox", u, other)
				}
				if !errs.violation("Subscription", InboxPrefix(other)+".>", 2*time.Second) {
					t.Errorf("%s subscribed to %s's inbox", u, other)
				}
			}
			// Not another router's subjects, nor everything.
			for _, subj := range []string{"sitesec.r1.kmd.punt", ">"} {
				nc.Publish(subj, []byte("x"))
				nc.Flush()
				if !errs.violation("Publish", subj, 2*time.Second) {
					t.Errorf("%s published %s", u, subj)
				}
			}
		})
	}
}

// TestPermissionMatrixJetStream: only cfgd writes the buckets, only
// sitesecd creates or changes their streams, nobody creates or deletes
// another stream, and every daemon reads and watches the configuration.
func TestPermissionMatrixJetStream(t *testing.T) {
	s := matrixServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bucket := space.ConfigBucket()
	stream := "KV_" + bucket

	sjs, _ := jetstream.New(dial(t, s, subject.Sitesecd, nil))
	cfg := jetstream.KeyValueConfig{Bucket: bucket, History: 1, Storage: jetstream.FileStorage}
	if _, err := sjs.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
		t.Fatalf("sitesecd creates the bucket: %v", err)
	}
	cjs, _ := jetstream.New(dial(t, s, subject.Cfgd, nil))
	ckv, err := cjs.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatalf("cfgd looks the bucket up: %v", err)
	}
	if _, err := ckv.Put(ctx, subject.ConfigKey, []byte("rev1")); err != nil {
		t.Fatalf("cfgd puts: %v", err)
	}

	for _, u := range everyone {
		t.Run(u, func(t *testing.T) {
			errs := &asyncErrs{}
			nc := dial(t, s, u, errs)
			denied := []string{
				// Point the bucket's stream at SA installs, or make a
				// stream that captures or republishes them.
				"$JS.API.STREAM.CREATE.CAPTURE",
				"$JS.API.STREAM.UPDATE.CAPTURE",
				"$JS.API.STREAM.DELETE." + stream,
				"$JS.API.STREAM.PURGE." + stream,
				"$JS.API.STREAM.MSG.DELETE." + stream,
			}
			if u != subject.Sitesecd {
				denied = append(denied, "$JS.API.STREAM.CREATE."+stream, "$JS.API.STREAM.UPDATE."+stream)
			}
			if u != subject.Cfgd {
				denied = append(denied, "$KV."+bucket+"."+subject.ConfigKey)
			}
			if u == subject.CLI || u == subject.Sitesecd {
				denied = append(denied, "$JS.API.DIRECT.GET."+stream, "$JS.API.CONSUMER.CREATE."+stream)
			}
			for _, subj := range denied {
				nc.Publish(subj, []byte("{}"))
				nc.Flush()
				if !errs.violation("Publish", subj, 2*time.Second) {
					t.Errorf("%s may publish %s", u, subj)
				}
			}
			if u == subject.CLI || u == subject.Sitesecd {
				return
			}
			js, _ := jetstream.New(nc)
			kv, err := js.KeyValue(ctx, bucket)
			if err != nil {
				t.Fatalf("look up bucket: %v", err)
			}
			w, err := kv.Watch(ctx, subject.ConfigKey)
			if err != nil {
				t.Fatalf("watch: %v", err)
			}
			defer w.Stop()
			for {
				select {
				case e := <-w.Updates():
					if e == nil {
						continue
					}
					if string(e.Value()) != "rev1" {
						t.Errorf("watched %q", e.Value())
					}
				case <-ctx.Done():
					t.Fatal("watch delivered nothing")
				}
				break
			}
		})
	}
}
