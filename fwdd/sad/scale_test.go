package sad

import (
	"net/netip"
	"testing"

	"github.com/sitesec/sitesec/proto/pb"
)

// depTunnel is the CHILD SA pair of dynamic-endpoint client i: its own
// remote address, the set's shared selectors (as in tests/bench TestScale).
func depTunnel(i int) []*pb.SA {
	remote := netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})
	in, out := testSA(uint32(0x10000+2*i), pb.Direction_DIRECTION_INBOUND), testSA(uint32(0x10001+2*i), pb.Direction_DIRECTION_OUTBOUND)
	for _, s := range []*pb.SA{in, out} {
		s.Rule, s.Term, s.TunnelIndex = "", "", 0
		s.Remote = &pb.Endpoint{Address: remote.AsSlice(), Port: 500}
		s.EncryptionAlgorithm = "aes-256-gcm"
		s.EncryptionKey = make([]byte, 36)
	}
	return []*pb.SA{in, out}
}

// BenchmarkInstallAtScale installs and deletes one dynamic-endpoint
// tunnel (both directions) in a SAD that holds 10,000 others: the cost of
// one CHILD SA's arrival and departure at issue 15 goal 3's scale. It
// copied every SA twice per install before the SAD's maps were cut into
// pieces.
func BenchmarkInstallAtScale(b *testing.B) {
	db, err := Open(Options{})
	if err != nil {
		b.Fatal(err)
	}
	const n = 10000
	for i := 0; i < n; i++ {
		if err := db.Install(depTunnel(i), 0); err != nil {
			b.Fatal(err)
		}
	}
	extra := depTunnel(n)
	keys := []*pb.SAKey{
		{Spi: extra[0].Spi, Direction: pb.Direction_DIRECTION_INBOUND, Destination: extra[0].Local.Address},
		{Spi: extra[1].Spi, Direction: pb.Direction_DIRECTION_OUTBOUND, Destination: extra[1].Remote.Address},
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := db.Install(extra, 0); err != nil {
			b.Fatal(err)
		}
		if got := db.Delete(Filter{Keys: keys}, "bench"); got != 2 {
			b.Fatalf("deleted %d", got)
		}
		drain(db)
	}
}

// TestInstallDeleteAtScale: at 2,000 tunnels every SA is still found by
// its key, and a delete by key removes exactly its pair, from the
// lookups and the outbound order.
func TestInstallDeleteAtScale(t *testing.T) {
	db := newDB(t, "", nil)
	const n = 2000
	for i := 0; i < n; i++ {
		if err := db.Install(depTunnel(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(db.All()); got != 2*n {
		t.Fatalf("%d SAs, want %d", got, 2*n)
	}
	for i := 0; i < n; i += 97 {
		p := depTunnel(i)
		if db.Inbound(p[0].Spi, netip.MustParseAddr("192.0.2.1")) == nil {
			t.Fatalf("inbound SA of tunnel %d not found", i)
		}
	}
	gone := depTunnel(500)
	if got := db.Delete(Filter{Keys: []*pb.SAKey{
		{Spi: gone[0].Spi, Direction: pb.Direction_DIRECTION_INBOUND, Destination: gone[0].Local.Address},
		{Spi: gone[1].Spi, Destination: gone[1].Remote.Address}, // any direction
		{Spi: 12345, Destination: gone[1].Remote.Address},       // none such
	}}, "test"); got != 2 {
		t.Fatalf("deleted %d, want 2", got)
	}
	if db.Inbound(gone[0].Spi, netip.MustParseAddr("192.0.2.1")) != nil {
		t.Error("deleted inbound SA still found")
	}
	if got := len(db.All()); got != 2*n-2 {
		t.Errorf("%d SAs after the delete, want %d", got, 2*n-2)
	}
	for _, sa := range (*db.bySet.Load())["ss1"].live() {
		if sa.Config.GetSpi() == gone[1].Spi {
			t.Error("deleted outbound SA still in the outbound order")
		}
	}
	if got := len((*db.bySet.Load())["ss1"].live()); got != n-1 {
		t.Errorf("%d outbound SAs in the set's order, want %d", got, n-1)
	}
	// The newest tunnel's SA answers the shared selectors; once it is
	// gone, the one before it.
	src, dst := netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("10.0.2.1")
	last := depTunnel(n - 1)
	if sa := db.Outbound("ss1", src, dst); sa == nil || sa.Config.GetSpi() != last[1].Spi {
		t.Fatalf("outbound lookup: %v, want SPI %d", sa, last[1].Spi)
	}
	db.Delete(Filter{Keys: []*pb.SAKey{{Spi: last[1].Spi}}}, "test")
	if sa := db.Outbound("ss1", src, dst); sa == nil || sa.Config.GetSpi() != depTunnel(n - 2)[1].Spi {
		t.Fatalf("outbound lookup after the delete: %v", sa)
	}
	// A key without destination finds the SA by its SPI alone.
	other := depTunnel(7)
	if got := db.Delete(Filter{Keys: []*pb.SAKey{{Spi: other[1].Spi}}}, "test"); got != 1 {
		t.Errorf("delete by SPI alone: %d, want 1", got)
	}
}

// TestInstallOwned: InstallOwned keeps the caller's SA messages, Install
// copies them (the caller may change its own afterwards).
func TestInstallOwned(t *testing.T) {
	db := newDB(t, "", nil)
	owned, copied := depTunnel(1), depTunnel(2)
	if err := db.InstallOwned(owned, 0); err != nil {
		t.Fatal(err)
	}
	if err := db.Install(copied, 0); err != nil {
		t.Fatal(err)
	}
	local := netip.MustParseAddr("192.0.2.1")
	if sa := db.Inbound(owned[0].Spi, local); sa == nil || sa.Config != owned[0] {
		t.Error("InstallOwned copied the SA")
	}
	copied[0].ServiceSet = "changed"
	if sa := db.Inbound(copied[0].Spi, local); sa == nil || sa.Config == copied[0] || sa.Config.GetServiceSet() != "ss1" {
		t.Error("Install kept the caller's SA")
	}
}
