package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/redact"
	"github.com/sitesec/sitesec/proto/subject"
)

// The configuration's secrets (fields marked [(sitesec.v1.secret) = true]:
// pre-shared keys, manual SA keys, CRL and challenge passwords) do not go
// into the configuration bucket every daemon reads. PutConfig splits them
// out, by the daemon that needs each one (subject.SecretFieldOwners), into that
// daemon's own bucket Space.SecretsBucket(daemon), which only it may read
// (broker.RightsOf); GetConfig and WatchConfig join a daemon's own secrets
// back in. So fwdd never sees an IKE pre-shared key, kmd never sees the
// CRL server's password, and the cli sees none. The secrets of revision N
// are stored before the configuration of revision N, so a reader of N
// finds them.
//
// A secrets value is a ConfigSnapshot of the same revision holding the
// secret fields alone, at their places: the messages on the way to a
// secret, and in a list every element up to the last one with a secret
// (empty where there is none), so that indexes line up.

// secretsHistory is how many revisions a secrets bucket keeps.
const secretsHistory = 4

// secretsKey is the key of a secrets bucket.
const secretsKey = subject.ConfigKey

// errSecretsAhead: the secrets bucket holds a newer revision than the
// configuration being read; the newer configuration is on its way.
var errSecretsAhead = errors.New("secrets of a newer revision")

// ForDaemon returns s as daemon may see it: without the secrets other
// daemons own (cfgd's prepare round sends each daemon the candidate this
// way, as the configuration buckets do). The result shares with s every
// message that holds no secret of another daemon: both are read only.
func ForDaemon(s *pb.ConfigSnapshot, daemon string) (*pb.ConfigSnapshot, error) {
	m, err := keepOwn(s.ProtoReflect(), daemon, "")
	if err != nil {
		return nil, err
	}
	return m.Interface().(*pb.ConfigSnapshot), nil
}

// ForDaemons is ForDaemon for each of daemons.
func ForDaemons(s *pb.ConfigSnapshot, daemons []string) (map[string]*pb.ConfigSnapshot, error) {
	out := make(map[string]*pb.ConfigSnapshot, len(daemons))
	for _, d := range daemons {
		own, err := ForDaemon(s, d)
		if err != nil {
			return nil, err
		}
		out[d] = own
	}
	return out, nil
}

// splitSecrets returns s without its secrets, and the secrets of each
// owner (only owners that have some). It fails on a secret field nobody
// owns, rather than hand it to everyone. The first result shares with s
// every message that holds no secret (read only).
func splitSecrets(s *pb.ConfigSnapshot) (*pb.ConfigSnapshot, map[string]*pb.ConfigSnapshot, error) {
	shared, err := ForDaemon(s, "")
	if err != nil {
		return nil, nil, err
	}
	bySecret := map[string]*pb.ConfigSnapshot{}
	for _, d := range subject.SecretOwners {
		sec := &pb.ConfigSnapshot{Revision: s.GetRevision(), Config: &pb.Config{}}
		has, err := extract(s.GetConfig().ProtoReflect(), sec.Config.ProtoReflect(), d, "")
		if err != nil {
			return nil, nil, err
		}
		if has {
			bySecret[d] = sec
		}
	}
	return shared, bySecret, nil
}

// keepOwn returns m without the secrets that are not daemon's ("": every
// secret), copying only the messages on the way to a removed secret and
// sharing the rest with m: a 10,000-tunnel configuration was cloned whole
// for every commit's prepare round (issue 15 goal 5). owner is the owner
// inherited from the enclosing fields. It fails on a secret field nobody
// owns.
func keepOwn(m protoreflect.Message, daemon, owner string) (protoreflect.Message, error) {
	var cp protoreflect.Message // m's shallow copy, once a field changes
	copied := func() protoreflect.Message {
		if cp == nil {
			cp = m.Type().New()
			m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
				cp.Set(fd, v)
				return true
			})
		}
		return cp
	}
	var err error
	for _, f := range secretFields(m.Descriptor()) {
		fd := f.fd
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		own := owner
		if f.owner != "" {
			own = f.owner
		}
		switch {
		case f.secret:
			if own == "" {
				return nil, fmt.Errorf("bus: secret field %s has no owner daemon (subject.SecretFieldOwners)", fd.FullName())
			}
			if own != daemon {
				copied().Clear(fd)
			}
		case fd.IsMap():
			var nm protoreflect.Map
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				var sub protoreflect.Message
				if sub, err = keepOwn(mv.Message(), daemon, own); err != nil {
					return false
				}
				if sub.Interface() != mv.Message().Interface() {
					if nm == nil {
						nm = copied().NewField(fd).Map()
						v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
							nm.Set(k, mv)
							return true
						})
					}
					nm.Set(k, protoreflect.ValueOfMessage(sub))
				}
				return true
			})
			if nm != nil {
				cp.Set(fd, protoreflect.ValueOfMap(nm))
			}
		case fd.IsList():
			l := v.List()
			var nl protoreflect.List
			for i := 0; i < l.Len() && err == nil; i++ {
				el := l.Get(i).Message()
				var sub protoreflect.Message
				if sub, err = keepOwn(el, daemon, own); err != nil {
					break
				}
				if nl == nil && sub.Interface() != el.Interface() {
					nl = copied().NewField(fd).List()
					for j := 0; j < i; j++ {
						nl.Append(l.Get(j))
					}
				}
				if nl != nil {
					nl.Append(protoreflect.ValueOfMessage(sub))
				}
			}
			if nl != nil {
				cp.Set(fd, protoreflect.ValueOfList(nl))
			}
		default:
			var sub protoreflect.Message
			if sub, err = keepOwn(v.Message(), daemon, own); err != nil {
				return nil, err
			}
			if sub.Interface() != v.Message().Interface() {
				copied().Set(fd, protoreflect.ValueOfMessage(sub))
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	if cp == nil {
		return m, nil
	}
	return cp, nil
}

// secretField is a field of a message type that is a secret or may hold
// one, with the owner it names (subject.SecretFieldOwners), if any.
type secretField struct {
	fd     protoreflect.FieldDescriptor
	secret bool
	owner  string
}

// secretFieldsOf caches secretFields by message type.
var secretFieldsOf sync.Map // protoreflect.FullName -> []secretField

// secretFields returns the fields of md that keepOwn must look at: the
// secrets and the messages (lists, maps of messages) that may hold one.
// Looking options up per field and message was most of a 10,000-tunnel
// prepare round.
func secretFields(md protoreflect.MessageDescriptor) []secretField {
	if v, ok := secretFieldsOf.Load(md.FullName()); ok {
		return v.([]secretField)
	}
	var out []secretField
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		secret := redact.IsSecret(fd)
		if !secret && !fieldMayHoldSecret(fd) {
			continue
		}
		out = append(out, secretField{fd: fd, secret: secret, owner: subject.SecretFieldOwners[fd.FullName()]})
	}
	secretFieldsOf.Store(md.FullName(), out)
	return out
}

// holdsSecrets caches, by message type, whether a message of that type can
// hold a secret field at any depth: extract, clearSecrets and joinSecrets
// skip the rest (service sets, rules, interfaces: most of a large
// configuration) without walking them.
var holdsSecrets sync.Map // protoreflect.FullName -> bool

func mayHoldSecret(md protoreflect.MessageDescriptor) bool {
	if v, ok := holdsSecrets.Load(md.FullName()); ok {
		return v.(bool)
	}
	found := scanSecret(md, map[protoreflect.FullName]bool{})
	holdsSecrets.Store(md.FullName(), found)
	return found
}

func scanSecret(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) bool {
	if seen[md.FullName()] {
		return false
	}
	seen[md.FullName()] = true
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if redact.IsSecret(fd) {
			return true
		}
		if fd.IsMap() {
			fd = fd.MapValue()
		}
		if m := fd.Message(); m != nil && scanSecret(m, seen) {
			return true
		}
	}
	return false
}

// fieldMayHoldSecret is mayHoldSecret for a field's message (or map value).
func fieldMayHoldSecret(fd protoreflect.FieldDescriptor) bool {
	if fd.IsMap() {
		fd = fd.MapValue()
	}
	return fd.Message() != nil && mayHoldSecret(fd.Message())
}

// extract copies into dst the secrets of src that belong to daemon, and
// reports whether there were any. owner is the owner inherited from the
// enclosing fields.
func extract(src, dst protoreflect.Message, daemon, owner string) (bool, error) {
	if !src.IsValid() {
		return false, nil
	}
	found := false
	var err error
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if !redact.IsSecret(fd) && !fieldMayHoldSecret(fd) {
			return true
		}
		own := owner
		if o, ok := subject.SecretFieldOwners[fd.FullName()]; ok {
			own = o
		}
		switch {
		case redact.IsSecret(fd):
			if own == "" {
				err = fmt.Errorf("bus: secret field %s has no owner daemon (subject.SecretFieldOwners)", fd.FullName())
				return false
			}
			if own == daemon {
				dst.Set(fd, v)
				found = true
			}
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.MessageKind {
				return true
			}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				sub := dst.NewField(fd).Map().NewValue()
				var has bool
				if has, err = extract(mv.Message(), sub.Message(), daemon, own); err != nil {
					return false
				}
				if has {
					dst.Mutable(fd).Map().Set(k, sub)
					found = true
				}
				return true
			})
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			out := dst.NewField(fd).List()
			last := -1
			for i := 0; i < l.Len(); i++ {
				sub := out.NewElement()
				var has bool
				if has, err = extract(l.Get(i).Message(), sub.Message(), daemon, own); err != nil {
					return false
				}
				out.Append(sub)
				if has {
					last = i
				}
			}
			if last >= 0 {
				out.Truncate(last + 1)
				dst.Set(fd, protoreflect.ValueOfList(out))
				found = true
			}
		case fd.Message() != nil && !fd.IsList():
			sub := dst.NewField(fd)
			var has bool
			if has, err = extract(v.Message(), sub.Message(), daemon, own); err != nil {
				return false
			}
			if has {
				dst.Set(fd, sub)
				found = true
			}
		}
		return err == nil
	})
	return found, err
}

// joinSecrets sets into dst the fields of src (a secrets value), which has
// dst's shape.
func joinSecrets(dst, src protoreflect.Message) error {
	var err error
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case redact.IsSecret(fd):
			dst.Set(fd, v)
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				dm := dst.Mutable(fd).Map()
				if !dm.Has(k) {
					err = fmt.Errorf("%s[%v] is not in the configuration", fd.FullName(), k.Interface())
					return false
				}
				err = joinSecrets(dm.Mutable(k).Message(), mv.Message())
				return err == nil
			})
		case fd.IsList():
			sl, dl := v.List(), dst.Mutable(fd).List()
			if sl.Len() > dl.Len() {
				err = fmt.Errorf("%s has %d elements, the configuration %d", fd.FullName(), sl.Len(), dl.Len())
				return false
			}
			for i := 0; i < sl.Len() && err == nil; i++ {
				err = joinSecrets(dl.Get(i).Message(), sl.Get(i).Message())
			}
		case fd.Message() != nil:
			err = joinSecrets(dst.Mutable(fd).Message(), v.Message())
		}
		return err == nil
	})
	return err
}

// secretsOf is the daemon whose secrets this connection reads: Options.
// Daemon, or the user it authenticates as; "" when it has none.
func (c *Conn) secretsOf() string {
	d := c.opts.Daemon
	if d == "" {
		d = userOf(c.opts)
	}
	if slices.Contains(subject.SecretOwners, d) {
		return d
	}
	return ""
}

// secretsBuckets are the settings of the secrets buckets.
func (c *Conn) secretsBuckets() []jetstream.KeyValueConfig {
	var out []jetstream.KeyValueConfig
	for _, d := range subject.SecretOwners {
		out = append(out, jetstream.KeyValueConfig{
			Bucket:      c.Space.SecretsBucket(d),
			Description: "sitesec configuration secrets of " + d + " on router " + c.Space.Router,
			// A reader may be a revision behind the writer (readSecrets).
			History: secretsHistory,
			Storage: jetstream.FileStorage,
		})
	}
	return out
}

// putSecrets stores the secrets of s in their owners' buckets and returns
// s without them, for the configuration bucket. Every owner's bucket gets
// the revision, with no secret at all if it has none, so that a reader
// always finds its secrets of the revision it reads. The owners' puts go
// at once (each is a round trip to the server), and also also(), the
// configuration's own lookup: putSecrets returns when all are done.
func (c *Conn) putSecrets(ctx context.Context, s *pb.ConfigSnapshot, also func()) (*pb.ConfigSnapshot, error) {
	shared, secrets, err := splitSecrets(s)
	if err != nil {
		return nil, err
	}
	buckets := c.secretsBuckets()
	data := make([][]byte, len(buckets))
	for i := range buckets {
		sec := secrets[subject.SecretOwners[i]]
		if sec == nil {
			sec = &pb.ConfigSnapshot{Revision: s.GetRevision()}
		}
		if data[i], err = proto.Marshal(sec); err != nil {
			return nil, fmt.Errorf("bus: marshal secrets: %w", err)
		}
	}
	errs := make([]error, len(buckets))
	var wg sync.WaitGroup
	for i, cfg := range buckets {
		wg.Go(func() { errs[i] = c.kvPut(ctx, cfg, true, secretsKey, data[i]) })
	}
	if also != nil {
		wg.Go(also)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("bus: store the secrets of revision %d in %s: %w", s.GetRevision(), buckets[i].Bucket, err)
		}
	}
	return shared, nil
}

// secretsWait bounds how long a reader waits for its secrets to catch up
// with the configuration it read.
const secretsWait = 2 * time.Second

// withSecrets returns s with this connection's own secrets joined in, or
// s itself when the connection has none to read. errSecretsAhead says the
// secrets are of a newer revision than s.
func (c *Conn) withSecrets(ctx context.Context, s *pb.ConfigSnapshot) (*pb.ConfigSnapshot, error) {
	d := c.secretsOf()
	if s == nil || d == "" {
		return s, nil
	}
	ctx, cancel := kvContext(ctx)
	defer cancel()
	bucket := c.Space.SecretsBucket(d)
	deadline := time.Now().Add(secretsWait)
	for {
		sec, err := c.readSecrets(ctx, bucket, s.GetRevision())
		switch {
		case err != nil:
		case sec.GetRevision() == s.GetRevision():
			out := proto.Clone(s).(*pb.ConfigSnapshot)
			if sec.GetConfig() != nil {
				if out.Config == nil {
					out.Config = &pb.Config{}
				}
				if err := joinSecrets(out.Config.ProtoReflect(), sec.Config.ProtoReflect()); err != nil {
					return nil, fmt.Errorf("bus: secrets of revision %d in %s do not fit the configuration: %w", s.GetRevision(), bucket, err)
				}
			}
			return out, nil
		case sec.GetRevision() > s.GetRevision():
			return nil, errSecretsAhead
		default:
			err = fmt.Errorf("it holds revision %d", sec.GetRevision())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("bus: no secrets of revision %d in %s: %w", s.GetRevision(), bucket, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readSecrets returns the secrets of revision rev from bucket, or the
// newest it holds when none is of rev: a commit can have stored its
// secrets and not yet its configuration, so the bucket keeps a few.
func (c *Conn) readSecrets(ctx context.Context, bucket string, rev uint64) (*pb.ConfigSnapshot, error) {
	kv, cached, err := c.kvOf(ctx, jetstream.KeyValueConfig{Bucket: bucket}, false)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, secretsKey)
	if err != nil {
		if cached && !errors.Is(err, jetstream.ErrKeyNotFound) {
			c.forget(bucket) // looked up again on the caller's next try
		}
		return nil, err
	}
	newest, err := decodeSecrets(e.Value())
	if err != nil || newest.GetRevision() <= rev {
		return newest, err
	}
	hist, err := kv.History(ctx, secretsKey)
	if err != nil {
		return newest, nil
	}
	for _, h := range hist {
		if sec, err := decodeSecrets(h.Value()); err == nil && sec.GetRevision() == rev {
			return sec, nil
		}
	}
	return newest, nil
}

func decodeSecrets(b []byte) (*pb.ConfigSnapshot, error) {
	sec := new(pb.ConfigSnapshot)
	if err := proto.Unmarshal(b, sec); err != nil {
		return nil, fmt.Errorf("malformed: %w", err)
	}
	return sec, nil
}
