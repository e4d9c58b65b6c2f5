package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// The router's JetStream KV buckets are created by sitesecd, the only bus
// user with the right to create or change a stream (broker.RightsOf): a
// daemon that could change a stream's subjects could point it at
// fwdd.sa.> and capture SA keys, or republish forged messages. cfgd only
// puts keys into buckets that exist.

// configBucket is the settings of the configuration bucket.
func (c *Conn) configBucket() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      c.Space.ConfigBucket(),
		Description: "sitesec committed configuration of router " + c.Space.Router,
		History:     1,
		Storage:     jetstream.FileStorage,
	}
}

// SetupBuckets creates the router's buckets, or brings their settings up
// to date; it is idempotent. sitesecd calls it before it starts the
// daemons, and `sitesecd --setup-bus` does it once for a standalone
// server (docker compose).
func (c *Conn) SetupBuckets(ctx context.Context) error {
	ctx, cancel := kvContext(ctx)
	defer cancel()
	for _, cfg := range append([]jetstream.KeyValueConfig{c.configBucket()}, c.secretsBuckets()...) {
		if _, err := c.js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return fmt.Errorf("bus: set up bucket %s: %w", cfg.Bucket, err)
		}
	}
	return nil
}

// kvOf returns the handle of bucket cfg.Bucket, creating the bucket when
// it is missing and create is set (only on a bus without users: sitesecd
// creates them). A handle is looked up once per connection: each lookup
// is a round trip to the server, and a commit stored a configuration and
// every owner's secrets, each after a lookup of its own (issue 15 goal 4:
// commit to first packet). cached says the handle came from a lookup
// before; forget drops it when it stops working (a bus restarted without
// its store).
func (c *Conn) kvOf(ctx context.Context, cfg jetstream.KeyValueConfig, create bool) (kv jetstream.KeyValue, cached bool, err error) {
	if v, ok := c.kvs.Load(cfg.Bucket); ok {
		return v.(jetstream.KeyValue), true, nil
	}
	kv, err = c.js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) && create {
		kv, err = c.js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = c.js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, false, err
	}
	c.kvs.Store(cfg.Bucket, kv)
	return kv, false, nil
}

// forget drops the handle of bucket (kvOf).
func (c *Conn) forget(bucket string) { c.kvs.Delete(bucket) }

// kvPut stores data under key in bucket cfg.Bucket (kvOf), looking the
// bucket up again once if a remembered handle fails.
func (c *Conn) kvPut(ctx context.Context, cfg jetstream.KeyValueConfig, create bool, key string, data []byte) error {
	kv, cached, err := c.kvOf(ctx, cfg, create)
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, key, data)
	if err != nil && cached {
		c.forget(cfg.Bucket)
		if kv, _, err = c.kvOf(ctx, cfg, create); err != nil {
			return err
		}
		_, err = kv.Put(ctx, key, data)
	}
	return err
}
