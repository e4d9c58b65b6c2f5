package sad

import (
	"sync/atomic"

	"github.com/sitesec/sitesec/proto/pb"
)

// Counter names one counter of `show services ipsec-vpn ipsec statistics`
// (SPEC section 4; the XML tags of ipsec-total-statistics-information).
type Counter int

// The counters, in the order of pb.IPsecCounters.
const (
	EncryptedBytes Counter = iota
	DecryptedBytes
	EncryptedPackets
	DecryptedPackets
	AuthFailures       // ESP authentication failures
	DecryptFailures    // ESP decryption failures
	BadHeaders         // truncated or malformed ESP
	BadTrailers        // padding or next header wrong
	ReplayBeforeWindow // replay-before-window drops
	Replayed           // replayed packets
	RuleLookupFailures
	NoSA
	IPIntegrity // header-integrity-check and active IP checks
	ExceedsTunnelMTU
	FlowErrors
	MiscErrors
	InvalidSPI
	TSCheckFailures
	Discards
	AHInputBytes
	AHOutputBytes
	AHInputPackets
	AHOutputPackets
	AHAuthFailures // AH ICV did not verify
	numCounters
)

// Counters are updated with atomic adds from the data-plane workers.
type Counters struct {
	c [numCounters]atomic.Uint64
}

// Add adds n to counter k.
func (cs *Counters) Add(k Counter, n uint64) { cs.c[k].Add(n) }

// Get returns counter k.
func (cs *Counters) Get(k Counter) uint64 { return cs.c[k].Load() }

// AddTo adds every counter into sum.
func (cs *Counters) AddTo(sum *Counters) {
	for i := range cs.c {
		if v := cs.c[i].Load(); v != 0 {
			sum.c[i].Add(v)
		}
	}
}

// Reset zeroes every counter (clear services ipsec-vpn ipsec statistics).
func (cs *Counters) Reset() {
	for i := range cs.c {
		cs.c[i].Store(0)
	}
}

// Proto returns the counters as the show command reply carries them.
func (cs *Counters) Proto() *pb.IPsecCounters {
	g := cs.Get
	return &pb.IPsecCounters{
		EspEncryptedBytes:         g(EncryptedBytes),
		EspDecryptedBytes:         g(DecryptedBytes),
		EspEncryptedPackets:       g(EncryptedPackets),
		EspDecryptedPackets:       g(DecryptedPackets),
		EspAuthenticationFailures: g(AuthFailures),
		EspDecryptionFailures:     g(DecryptFailures),
		BadHeaders:                g(BadHeaders),
		BadTrailers:               g(BadTrailers),
		ReplayErrors:              g(ReplayBeforeWindow) + g(Replayed),
		ReplayBeforeWindowDrops:   g(ReplayBeforeWindow),
		ReplayedPackets:           g(Replayed),
		RuleLookupFailures:        g(RuleLookupFailures),
		NoSa:                      g(NoSA),
		IpIntegrityFailures:       g(IPIntegrity),
		ExceedsTunnelMtu:          g(ExceedsTunnelMTU),
		FlowErrors:                g(FlowErrors),
		MiscErrors:                g(MiscErrors),
		InvalidSpi:                g(InvalidSPI),
		TsCheckFailures:           g(TSCheckFailures),
		Discards:                  g(Discards),
		AhInputBytes:              g(AHInputBytes),
		AhOutputBytes:             g(AHOutputBytes),
		AhInputPackets:            g(AHInputPackets),
		AhOutputPackets:           g(AHOutputPackets),
		AhAuthenticationFailures:  g(AHAuthFailures),
	}
}
