package bus

import (
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go"
	_ "github.com/rs/zerolog"
	_ "github.com/sitesec/sitesec/proto/pb"
)
