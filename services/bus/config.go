package bus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
)

// The committed configuration lives in the JetStream KV bucket
// Space.ConfigBucket() under subject.ConfigKey, as a marshalled
// pb.ConfigSnapshot (DESIGN.md, "Data flows" 1). Only the latest value is
// kept: rollback history is cfgd's, on disk.
//
// No message may outgrow the server's maximum payload (1 MiB by default),
// and a router with 10,000 service sets has a snapshot of several MiB. A
// snapshot larger than chunkMax is therefore stored in pieces: the chunks
// first, each under its own key (ConfigKey-chunk.GEN.I), then ConfigKey
// with a head naming them (chunkedMagic GEN N SIZE SHA256), then the
// previous generation's chunks are purged. A reader that follows the head
// finds every chunk in place, or finds one purged because a newer head was
// written meanwhile, which it then reads instead.

// chunkMax is the largest snapshot stored inline, and the chunk size.
const chunkMax = 256 << 10

const chunkedMagic = "sitesec-chunked-config/1"

// chunkedHead is the value of ConfigKey for a snapshot stored in chunks.
type chunkedHead struct {
	gen  uint64
	n    int
	size int
	sum  [sha256.Size]byte
}

func (h chunkedHead) String() string {
	return fmt.Sprintf("%s %d %d %d %x", chunkedMagic, h.gen, h.n, h.size, h.sum)
}

func (h chunkedHead) key(i int) string {
	return fmt.Sprintf("%s-chunk.%d.%d", subject.ConfigKey, h.gen, i)
}

// parseHead reads a chunked head; ok is false for an inline snapshot.
func parseHead(v []byte) (h chunkedHead, ok bool, err error) {
	if !bytes.HasPrefix(v, []byte(chunkedMagic+" ")) {
		return h, false, nil
	}
	var sum []byte
	if _, err := fmt.Sscanf(string(v), chunkedMagic+" %d %d %d %x", &h.gen, &h.n, &h.size, &sum); err != nil {
		return h, true, fmt.Errorf("bad chunked head: %v", err)
	}
	if len(sum) != sha256.Size || h.n < 1 || h.size < 0 || h.n > h.size/chunkMax+1 {
		return h, true, errors.New("bad chunked head")
	}
	copy(h.sum[:], sum)
	return h, true, nil
}

// readSnapshot decodes the value of ConfigKey, fetching its chunks.
func readSnapshot(ctx context.Context, kv jetstream.KeyValue, v []byte) (*pb.ConfigSnapshot, error) {
	h, chunked, err := parseHead(v)
	if err != nil {
		return nil, err
	}
	if chunked {
		data := make([]byte, 0, h.size)
		for i := 0; i < h.n; i++ {
			e, err := kv.Get(ctx, h.key(i))
			if err != nil {
				return nil, fmt.Errorf("chunk %d of %d: %w", i+1, h.n, err)
			}
			data = append(data, e.Value()...)
		}
		if len(data) != h.size || sha256.Sum256(data) != h.sum {
			return nil, fmt.Errorf("chunks of generation %d do not add up", h.gen)
		}
		v = data
	}
	s := new(pb.ConfigSnapshot)
	if err := proto.Unmarshal(v, s); err != nil {
		return nil, err
	}
	return s, nil
}

func kvContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, kvTimeout)
}

// PutConfig stores s as the committed configuration, creating the bucket
// if it is missing and the user may (sitesecd creates it, SetupBuckets).
// Only cfgd may store (broker.RightsOf).
func (c *Conn) PutConfig(ctx context.Context, s *pb.ConfigSnapshot) error {
	if s == nil {
		return errors.New("bus: nil configuration snapshot")
	}
	ctx, cancel := kvContext(ctx)
	defer cancel()
	cfg := c.configBucket()
	bucket := cfg.Bucket
	// The chunks of the snapshot being replaced, purged once the new head
	// is in place; looked up while the secrets are stored.
	var old *chunkedHead
	lookup := func() {
		kv, _, err := c.kvOf(ctx, cfg, true)
		if err != nil {
			return // kvPut below says why
		}
		if e, err := kv.Get(ctx, subject.ConfigKey); err == nil {
			if h, ok, err := parseHead(e.Value()); ok && err == nil {
				old = &h
			}
		}
	}
	// The secrets first, into their owners' buckets (secrets.go): a
	// reader of this revision then finds them.
	s, err := c.putSecrets(ctx, s, lookup)
	if err != nil {
		return err
	}
	data, err := proto.Marshal(s)
	if err != nil {
		return fmt.Errorf("bus: marshal configuration: %w", err)
	}
	value := data
	if len(data) > chunkMax {
		h := chunkedHead{gen: uint64(time.Now().UnixNano()), n: (len(data) + chunkMax - 1) / chunkMax,
			size: len(data), sum: sha256.Sum256(data)}
		for i := 0; i < h.n; i++ {
			if err := c.kvPut(ctx, cfg, true, h.key(i), data[i*chunkMax:min((i+1)*chunkMax, len(data))]); err != nil {
				return fmt.Errorf("bus: store configuration revision %d in %s (chunk %d of %d): %w", s.GetRevision(), bucket, i+1, h.n, err)
			}
		}
		value = []byte(h.String())
	}
	if err := c.kvPut(ctx, cfg, true, subject.ConfigKey, value); err != nil {
		return fmt.Errorf("bus: store configuration revision %d in %s: %w", s.GetRevision(), bucket, err)
	}
	if old != nil {
		if kv, _, err := c.kvOf(ctx, cfg, true); err == nil {
			for i := 0; i < old.n; i++ {
				_ = kv.Purge(ctx, old.key(i))
			}
		}
	}
	return nil
}

// GetConfig returns the committed configuration, or (nil, nil) when none
// has been committed yet.
func (c *Conn) GetConfig(ctx context.Context) (*pb.ConfigSnapshot, error) {
	ctx, cancel := kvContext(ctx)
	defer cancel()
	bucket := c.Space.ConfigBucket()
	kv, err := c.js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bus: configuration bucket %s: %w", bucket, err)
	}
	// A second try: the chunks of the head just read can be purged by a
	// commit that replaced it meanwhile.
	for try := 0; ; try++ {
		e, err := kv.Get(ctx, subject.ConfigKey)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("bus: read configuration from %s: %w", bucket, err)
		}
		s, err := readSnapshot(ctx, kv, e.Value())
		if err != nil && try == 0 && errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bus: malformed configuration in %s (KV revision %d): %w", bucket, e.Revision(), err)
		}
		return c.withSecrets(ctx, s)
	}
}

// WatchConfig calls fn with the current configuration (if any) and then
// with each new one, in order, until ctx ends; then it returns nil. It
// returns an error only when the connection is closed. The bucket keeps
// one value per key, so a snapshot replaced before the server pushed it
// to this watcher is skipped: fn always ends up with the latest.
//
// It outlives reconnects, a restart of the server, and a bucket that is
// created after the watch started: it then watches again, with a backoff
// from Options.ReconnectWait to Options.MaxReconnectWait. fn never sees a
// revision lower than or equal to one it already saw, so a snapshot seen
// again after a reconnect is not delivered twice. Malformed snapshots are
// dropped and counted (Dropped). fn runs on WatchConfig's goroutine.
func (c *Conn) WatchConfig(ctx context.Context, fn func(*pb.ConfigSnapshot)) error {
	w := &configWatch{c: c, ctx: ctx, fn: fn}
	wait := c.opts.ReconnectWait
	for attempt := 1; ; {
		if ctx.Err() != nil {
			return nil
		}
		progressed, err := w.once(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if c.NC.IsClosed() {
			return errors.New("bus: watch configuration: connection closed")
		}
		if err == nil || progressed {
			attempt = 1
		}
		if err == nil {
			continue // reconnected: watch again at once
		}
		d := backoff(attempt, wait, c.opts.MaxReconnectWait, rand.Int64N)
		attempt++
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-c.closed:
			t.Stop()
		case <-t.C:
		}
	}
}

type configWatch struct {
	c    *Conn
	ctx  context.Context
	kv   jetstream.KeyValue
	fn   func(*pb.ConfigSnapshot)
	seen bool
	last uint64
}

// errWatchEnded: the server ended the watch (consumer or bucket gone).
var errWatchEnded = errors.New("bus: configuration watch ended")

// once watches until ctx ends, the connection comes back after a drop
// (nil error), or something fails. progressed says whether the watch got
// as far as receiving.
func (w *configWatch) once(ctx context.Context) (progressed bool, err error) {
	reconnected := w.c.reconnectSignal()
	if !w.c.NC.IsConnected() {
		select {
		case <-reconnected:
			return false, nil
		case <-w.c.closed:
			return false, nats.ErrConnectionClosed
		case <-ctx.Done():
			return false, nil
		}
	}
	kw, stop, err := w.start(ctx)
	if err != nil {
		return false, err
	}
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case <-reconnected:
			return true, nil
		case <-w.c.closed:
			return true, nats.ErrConnectionClosed
		case e, ok := <-kw.Updates():
			if !ok {
				return true, errWatchEnded
			}
			w.deliver(ctx, e)
		}
	}
}

// start looks the bucket up and watches the configuration key; stop
// ends the watch.
//
// The watch gets a context of its own: nats.go ties the watch's
// subscription to it, and would otherwise keep a goroutine per watch until
// WatchConfig's ctx ends. Creating the consumer is bounded by kvTimeout,
// since a request caught by a disconnect is never answered.
func (w *configWatch) start(ctx context.Context) (kw jetstream.KeyWatcher, stop func(), err error) {
	bucket := w.c.Space.ConfigBucket()
	lctx, cancel := kvContext(ctx)
	kv, err := w.c.js.KeyValue(lctx, bucket)
	cancel()
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil, err // nothing committed yet: not worth a report
	}
	if err == nil {
		wctx, wcancel := context.WithCancel(ctx)
		type result struct {
			kw  jetstream.KeyWatcher
			err error
		}
		done := make(chan result, 1)
		go func() {
			kw, err := kv.Watch(wctx, subject.ConfigKey)
			done <- result{kw, err}
		}()
		t := time.NewTimer(kvTimeout)
		var r result
		select {
		case r = <-done:
			t.Stop()
		case <-t.C:
			wcancel()
			if r = <-done; r.err == nil {
				stopWatcher(r.kw)
			}
			r.err = context.DeadlineExceeded
		}
		if r.err == nil {
			w.kv = kv
			return r.kw, func() { stopWatcher(r.kw); wcancel() }, nil
		}
		wcancel()
		err = r.err
	}
	err = fmt.Errorf("bus: watch configuration bucket %s: %w", bucket, err)
	w.c.report(err)
	return nil, nil, err
}

// stopWatcher stops kw and drains it: the watcher's callback blocks on a
// full channel, which would keep the subscription's goroutine alive.
func stopWatcher(kw jetstream.KeyWatcher) {
	kw.Stop()
	go func() {
		for range kw.Updates() {
		}
	}()
}

func (w *configWatch) deliver(ctx context.Context, e jetstream.KeyValueEntry) {
	if e == nil || e.Operation() != jetstream.KeyValuePut {
		return // end of initial values, or a delete
	}
	rctx, cancel := kvContext(ctx)
	s, err := readSnapshot(rctx, w.kv, e.Value())
	cancel()
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return // a newer head replaced it meanwhile: the watch brings it next
	}
	if err != nil {
		w.c.dropped.Add(1)
		w.c.report(fmt.Errorf("bus: malformed configuration in %s (KV revision %d): %w", e.Bucket(), e.Revision(), err))
		return
	}
	if w.seen && s.GetRevision() <= w.last {
		return
	}
	s, err = w.c.withSecrets(w.ctx, s)
	if errors.Is(err, errSecretsAhead) {
		return // a newer revision is on its way
	}
	if err != nil {
		w.c.report(err)
		return
	}
	w.seen, w.last = true, s.GetRevision()
	w.fn(s)
}
