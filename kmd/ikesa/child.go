package ikesa

import (
	"time"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/transform"
)

type childState int

const (
	childCreating childState = iota
	childInstalled
	childRekeying
	childRekeyed // replaced, waiting for its deletion
	childDeleted
)

// ChildSA is one ESP CHILD SA: its two directions.
type ChildSA struct {
	// SPIIn is this side's inbound SPI (chosen here); SPIOut the peer's.
	SPIIn, SPIOut uint32
	Suite         transform.Suite
	// Keys for the inbound and outbound directions.
	EncrIn, IntegIn, EncrOut, IntegOut []byte
	LocalTS, RemoteTS                  []message.Selector
	// Reqid is shared by both directions and kept across rekeys.
	Reqid uint32
	// Initiator is true when this side created the CHILD SA.
	Initiator bool

	CreatedAt, RekeyAt, ExpireAt time.Time

	state     childState
	installed bool
}

// Installed reports whether the CHILD SA is in fwdd.
func (c *ChildSA) Installed() bool { return c.installed }

// wipe zeroes the CHILD SA's keys once it is gone (deleted, or its IKE SA
// died): fwdd deleted its copy, and kmd keeps none (issue 14).
func (c *ChildSA) wipe() {
	for _, k := range [][]byte{c.EncrIn, c.IntegIn, c.EncrOut, c.IntegOut} {
		clear(k)
	}
}

// Rekeyed reports whether the CHILD SA has been replaced.
func (c *ChildSA) Rekeyed() bool { return c.state == childRekeyed }

// schedule sets the CHILD rekey (90% of the lifetime, jittered) and the
// hard expiry.
func (sa *SA) scheduleChild(c *ChildSA) {
	lt := sa.Config.ChildLifetime
	c.CreatedAt = sa.now()
	if lt <= 0 {
		return
	}
	c.ExpireAt = c.CreatedAt.Add(lt)
	c.RekeyAt = c.CreatedAt.Add(sa.jitter(lt * 9 / 10))
}

// protocol is the CHILD SA's protocol, ESP or AH (RFC 7296 section
// 3.3.1).
func (c *ChildSA) protocol() message.ProtocolID {
	if c.Suite.Protocol == message.ProtocolAH {
		return message.ProtocolAH
	}
	return message.ProtocolESP
}
