package bus

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/redact"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
)

// The secrets of secretConfig, by the daemon that needs each.
var (
	pskA, pskB   = "psk-of-vpn-a-0123", "psk-of-vpn-b-4567"
	pskClient    = "psk-of-dynamic-clients"
	manualEnc    = "manual-sa-encryption-key"
	manualAuth   = "manual-sa-authentication-k"
	crlPassword  = "ldap-bind-password"
	challengePW  = "scep-challenge-password"
	secretsOwned = map[string][]string{
		subject.Kmd:  {pskA, pskB, pskClient},
		subject.Fwdd: {manualEnc, manualAuth},
		subject.Pkid: {crlPassword, challengePW},
	}
)

func b64(s string) string { return `"` + base64.StdEncoding.EncodeToString([]byte(s)) + `"` }

// secretConfig is a configuration with every kind of secret: pre-shared
// keys in the second and fourth IKE policies (not the first: indexes must
// line up), a dynamic-endpoint client key, manual SA keys and the PKI
// passwords.
func secretConfig(t testing.TB, rev uint64) *pb.ConfigSnapshot {
	t.Helper()
	key := func(s string) string { return `{"value":` + b64(s) + `}` }
	js := `{
	  "system": {"host_name": "r1"},
	  "ipsec_vpn": {
	    "ike": {"policies": [
	      {"name": "cert-pol"},
	      {"name": "a", "pre_shared_key": ` + key(pskA) + `},
	      {"name": "c"},
	      {"name": "b", "pre_shared_key": ` + key(pskB) + `}
	    ]},
	    "rules": [{"name": "r", "terms": [{"name": "t", "then": {"manual": {"directions": [
	      {"spi": 4096, "encryption_key": ` + key(manualEnc) + `, "authentication_key": ` + key(manualAuth) + `}
	    ]}}}]}]
	  },
	  "access_profiles": [{"name": "dyn", "client_ike": {"pre_shared_key": ` + key(pskClient) + `}}],
	  "pki": {
	    "ca_profiles": [{"name": "ca1", "crl_password": "` + crlPassword + `"}],
	    "auto_re_enrollment": [{"challenge_password": "` + challengePW + `"}]
	  }
	}`
	c := new(pb.Config)
	if err := protojson.Unmarshal([]byte(js), c); err != nil {
		t.Fatal(err)
	}
	return &pb.ConfigSnapshot{Revision: rev, Config: c}
}

func holds(t testing.TB, m proto.Message, secret string) bool {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(secret))
}

// TestSecretFieldsHaveOwners walks the configuration's schema: every
// secret field has a daemon to go to.
func TestSecretFieldsHaveOwners(t *testing.T) {
	seen := map[string]bool{}
	var walk func(md protoreflect.MessageDescriptor, owner, path string)
	walk = func(md protoreflect.MessageDescriptor, owner, path string) {
		if seen[string(md.FullName())+owner] {
			return
		}
		seen[string(md.FullName())+owner] = true
		for i := 0; i < md.Fields().Len(); i++ {
			fd := md.Fields().Get(i)
			own := owner
			if o, ok := subject.SecretFieldOwners[fd.FullName()]; ok {
				own = o
			}
			if redact.IsSecret(fd) && own == "" {
				t.Errorf("secret %s (%s) has no owner daemon", fd.FullName(), path+"."+string(fd.Name()))
			}
			if fd.Message() != nil {
				md := fd.Message()
				if fd.IsMap() {
					md = fd.MapValue().Message()
				}
				if md != nil {
					walk(md, own, path+"."+string(fd.Name()))
				}
			}
		}
	}
	walk((&pb.Config{}).ProtoReflect().Descriptor(), "", "config")
}

func TestSplitAndJoinSecrets(t *testing.T) {
	s := secretConfig(t, 7)
	shared, secrets, err := splitSecrets(s)
	if err != nil {
		t.Fatal(err)
	}
	for d, list := range secretsOwned {
		for _, sec := range list {
			if holds(t, shared, sec) {
				t.Errorf("the shared configuration holds %s's %q", d, sec)
			}
			for other, o := range secrets {
				if holds(t, o, sec) != (other == d) {
					t.Errorf("%s's secrets hold %q: %v", other, sec, other != d)
				}
			}
		}
	}
	if shared.GetConfig().GetSystem().GetHostName() != "r1" || len(shared.GetConfig().GetIpsecVpn().GetIke().GetPolicies()) != 4 {
		t.Errorf("the shared configuration lost its non-secret part: %v", shared)
	}
	all := proto.Clone(shared).(*pb.ConfigSnapshot)
	for _, d := range subject.SecretOwners {
		if secrets[d].GetRevision() != 7 {
			t.Errorf("%s's secrets have revision %d", d, secrets[d].GetRevision())
		}
		if err := joinSecrets(all.Config.ProtoReflect(), secrets[d].Config.ProtoReflect()); err != nil {
			t.Fatal(err)
		}
	}
	if !proto.Equal(all, s) {
		t.Errorf("joined back:\n%v\nwant\n%v", all, s)
	}
	// A secrets value that does not fit is refused, not half applied.
	short := proto.Clone(shared).(*pb.ConfigSnapshot)
	short.Config.IpsecVpn.Ike.Policies = short.Config.IpsecVpn.Ike.Policies[:1]
	if err := joinSecrets(short.Config.ProtoReflect(), secrets[subject.Kmd].Config.ProtoReflect()); err == nil {
		t.Error("secrets joined into a configuration with fewer policies")
	}
}

// TestSecretsReachOnlyTheirDaemon (issue 14 item 1): on a locked-down bus
// each daemon's configuration has its own secrets and no other's, the
// configuration bucket every daemon reads holds none, and no other user
// can read a daemon's secrets bucket.
func TestSecretsReachOnlyTheirDaemon(t *testing.T) {
	s := startServer(t, broker.Options{Users: daemonUsers()})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	as := func(d string) *Conn {
		return connect(t, Options{URL: s.ClientURL(), User: d, Password: "pw-" + d, Name: d})
	}
	if err := as(subject.Sitesecd).SetupBuckets(ctx); err != nil {
		t.Fatal(err)
	}
	cfgd := as(subject.Cfgd)
	if err := cfgd.PutConfig(ctx, secretConfig(t, 1)); err != nil {
		t.Fatal(err)
	}
	for _, d := range subject.Daemons {
		c := as(d)
		got, err := c.GetConfig(ctx)
		if err != nil {
			t.Fatalf("%s GetConfig: %v", d, err)
		}
		wctx, stop := context.WithCancel(ctx)
		snaps := make(chan *pb.ConfigSnapshot, 4)
		go c.WatchConfig(wctx, func(s *pb.ConfigSnapshot) { snaps <- s })
		next := func(rev uint64) *pb.ConfigSnapshot {
			t.Helper()
			select {
			case s := <-snaps:
				if s.GetRevision() != rev {
					t.Fatalf("%s watched revision %d, want %d", d, s.GetRevision(), rev)
				}
				return s
			case <-ctx.Done():
				t.Fatalf("%s watched nothing", d)
			}
			return nil
		}
		watched := next(1)
		for owner, list := range secretsOwned {
			for _, sec := range list {
				if holds(t, got, sec) != (owner == d) || holds(t, watched, sec) != (owner == d) {
					t.Errorf("%s's configuration holds %q (of %s): %v", d, sec, owner, owner != d)
				}
			}
		}
		// The raw configuration bucket holds no secret at all.
		js, _ := jetstream.New(c.NC)
		kv, err := js.KeyValue(ctx, space.ConfigBucket())
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(ctx, subject.ConfigKey)
		if err != nil {
			t.Fatal(err)
		}
		for _, list := range secretsOwned {
			for _, sec := range list {
				if bytes.Contains(e.Value(), []byte(sec)) {
					t.Errorf("configuration bucket holds %q", sec)
				}
			}
		}
		if err := cfgd.PutConfig(ctx, secretConfig(t, 2)); err != nil {
			t.Fatal(err)
		}
		if got := next(2); len(secretsOwned[d]) > 0 && !holds(t, got, secretsOwned[d][0]) {
			t.Errorf("%s's revision 2 lacks its secrets", d)
		}
		stop()
		if err := cfgd.PutConfig(ctx, secretConfig(t, 1)); err != nil { // back to 1 for the next
			t.Fatal(err)
		}
	}
	// Nobody reads another's secrets bucket: not the other daemons, not
	// the cli, not the one who writes it.
	for _, u := range append([]string{subject.CLI}, subject.Everyone...) {
		js, _ := jetstream.New(as(u).NC)
		for _, owner := range subject.SecretOwners {
			if u == owner {
				continue
			}
			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			kv, err := js.KeyValue(short, space.SecretsBucket(owner))
			if err == nil {
				_, err = kv.Get(short, subject.ConfigKey)
			}
			cancel()
			if err == nil {
				t.Errorf("%s read %s's secrets", u, owner)
			}
		}
	}
}

// TestForDaemonSharesAndKeepsOwn: each daemon's view holds its own
// secrets and no other's, equals the split-and-join result, leaves the
// original untouched, and shares the messages that hold no secret.
func TestForDaemonSharesAndKeepsOwn(t *testing.T) {
	s := secretConfig(t, 9)
	orig := proto.Clone(s).(*pb.ConfigSnapshot)
	shared, secrets, err := splitSecrets(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range append([]string{"cfgd"}, subject.SecretOwners...) {
		got, err := ForDaemon(s, d)
		if err != nil {
			t.Fatal(err)
		}
		want := proto.Clone(shared).(*pb.ConfigSnapshot)
		if own := secrets[d]; own != nil {
			if err := joinSecrets(want.ProtoReflect(), own.ProtoReflect()); err != nil {
				t.Fatal(err)
			}
		}
		if !proto.Equal(got, want) {
			t.Errorf("%s sees\n%v\nwant\n%v", d, got, want)
		}
		for owner, list := range secretsOwned {
			for _, sec := range list {
				if holds(t, got, sec) != (owner == d) {
					t.Errorf("%s's view holds %s's %q: %v", d, owner, sec, owner != d)
				}
			}
		}
		if got.GetConfig().GetSystem() != s.GetConfig().GetSystem() {
			t.Errorf("%s's view copied a message without secrets", d)
		}
	}
	if !proto.Equal(s, orig) {
		t.Error("ForDaemon changed its input")
	}
}

// TestPutConfigBucketsGone: a connection remembers its bucket handles
// (kvOf); when the buckets are gone (a bus restarted without its store),
// the next PutConfig looks them up again, creates them on a bus without
// users, and a reader gets the revision with its secrets.
func TestPutConfigBucketsGone(t *testing.T) {
	s := startServer(t, broker.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := connect(t, Options{URL: s.ClientURL(), Name: "cfgd"})
	if err := w.PutConfig(ctx, secretConfig(t, 1)); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.kvs.Load(space.ConfigBucket()); !ok {
		t.Fatal("configuration bucket handle not remembered")
	}
	js, _ := jetstream.New(w.NC)
	for _, b := range append([]string{space.ConfigBucket()}, space.SecretsBucket(subject.Kmd), space.SecretsBucket(subject.Pkid)) {
		if err := js.DeleteKeyValue(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.PutConfig(ctx, secretConfig(t, 2)); err != nil {
		t.Fatalf("after the buckets were deleted: %v", err)
	}
	got, err := connect(t, Options{URL: s.ClientURL(), Name: "kmd"}).GetConfig(ctx)
	if err != nil || got.GetRevision() != 2 {
		t.Fatalf("read back: revision %d, %v", got.GetRevision(), err)
	}
}
