package bus

import (
	"context"
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
