package sad

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func ep(s string, port uint32) *pb.Endpoint {
	return &pb.Endpoint{Address: netip.MustParseAddr(s).AsSlice(), Port: port}
}

func sel(prefix string) []*pb.TrafficSelector {
	p := netip.MustParsePrefix(prefix)
	return []*pb.TrafficSelector{{StartAddress: p.Addr().AsSlice(), EndAddress: lastAddr(p).AsSlice()}}
}

func testSA(spi uint32, dir pb.Direction) *pb.SA {
	key := make([]byte, 20)
	key[0] = byte(spi)
	return &pb.SA{
		Spi: spi, Direction: dir, Type: pb.SAType_SA_TYPE_DYNAMIC,
		ServiceSet: "ss1", Rule: "r1", Term: "t1", TunnelIndex: 1,
		Local: ep("192.0.2.1", 0), Remote: ep("198.51.100.1", 0),
		Encapsulation:       pb.Encapsulation_ENCAPSULATION_ESP,
		EncryptionAlgorithm: "aes-128-gcm", EncryptionKey: key,
		ReplayWindow:    128,
		LocalSelectors:  sel("10.0.1.0/24"),
		RemoteSelectors: sel("10.0.2.0/24"),
	}
}

func newDB(t *testing.T, dir string, c *clock) *DB {
	t.Helper()
	o := Options{Dir: dir, Chunk: 100, RolloverMargin: 10}
	if c != nil {
		o.Now = c.Now
	}
	db, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func drain(db *DB) []*pb.SAEvent {
	var out []*pb.SAEvent
	for {
		select {
		case ev := <-db.Events():
			out = append(out, ev)
		default:
			return out
		}
	}
}

func kinds(evs []*pb.SAEvent) []pb.SAEventKind {
	var k []pb.SAEventKind
	for _, e := range evs {
		k = append(k, e.Kind)
	}
	return k
}

func TestInstallLookupDelete(t *testing.T) {
	db := newDB(t, "", nil)
	in := testSA(1000, pb.Direction_DIRECTION_INBOUND)
	out := testSA(2000, pb.Direction_DIRECTION_OUTBOUND)
	if err := db.Install([]*pb.SA{in, out}, 0); err != nil {
		t.Fatal(err)
	}
	local := netip.MustParseAddr("192.0.2.1")
	if sa := db.Inbound(1000, local); sa == nil || !sa.Inbound() {
		t.Fatal("inbound SA not found")
	}
	if db.Inbound(1000, netip.MustParseAddr("192.0.2.9")) != nil {
		t.Fatal("inbound SA found on another local address")
	}
	src, dst := netip.MustParseAddr("10.0.1.5"), netip.MustParseAddr("10.0.2.7")
	if sa := db.Outbound("ss1", src, dst); sa == nil || sa.Config.GetSpi() != 2000 {
		t.Fatal("outbound SA not found")
	}
	if db.Outbound("ss1", src, netip.MustParseAddr("10.0.3.1")) != nil {
		t.Fatal("outbound SA outside its selectors")
	}
	if db.Outbound("ss2", src, dst) != nil {
		t.Fatal("outbound SA of another set")
	}
	// Rekey: a new outbound SA replaces the old one for new packets.
	out2 := testSA(2001, pb.Direction_DIRECTION_OUTBOUND)
	if err := db.Install([]*pb.SA{testSA(1001, pb.Direction_DIRECTION_INBOUND), out2}, 2000); err != nil {
		t.Fatal(err)
	}
	if sa := db.Outbound("ss1", src, dst); sa.Config.GetSpi() != 2001 {
		t.Fatalf("after rekey outbound SPI %d", sa.Config.GetSpi())
	}
	if n := len(db.All()); n != 4 {
		t.Fatalf("%d SAs", n)
	}
	// Delete by key, then by service set.
	n := db.Delete(Filter{Keys: []*pb.SAKey{{Spi: 2000, Direction: pb.Direction_DIRECTION_OUTBOUND, Destination: netip.MustParseAddr("198.51.100.1").AsSlice()}}}, "rekeyed")
	if n != 1 {
		t.Fatalf("deleted %d", n)
	}
	if got := kinds(drain(db)); len(got) != 1 || got[0] != pb.SAEventKind_SA_EVENT_KIND_DELETED {
		t.Fatalf("events %v", got)
	}
	if n := db.Delete(Filter{ServiceSet: "ss1"}, "clear"); n != 3 {
		t.Fatalf("deleted %d", n)
	}
	if db.Outbound("ss1", src, dst) != nil || db.Inbound(1000, local) != nil {
		t.Fatal("SA survived delete")
	}
}

func TestInstallAllOrNothing(t *testing.T) {
	db := newDB(t, "", nil)
	bad := testSA(3000, pb.Direction_DIRECTION_OUTBOUND)
	bad.EncryptionKey = []byte{1, 2, 3}
	tests := []struct {
		name string
		sa   *pb.SA
		want string
	}{
		{"bad key", bad, "needs a 16-byte key"},
		{"reserved SPI", testSA(5, pb.Direction_DIRECTION_INBOUND), "reserved"},
		{"no direction", testSA(3001, 0), "no direction"},
		{"bad window", func() *pb.SA { s := testSA(3002, pb.Direction_DIRECTION_INBOUND); s.ReplayWindow = 10; return s }(), "window size"},
		{"bad address", func() *pb.SA {
			s := testSA(3003, pb.Direction_DIRECTION_INBOUND)
			s.Local.Address = []byte{1}
			return s
		}(), "local gateway"},
	}
	for _, tt := range tests {
		err := db.Install([]*pb.SA{testSA(1000, pb.Direction_DIRECTION_INBOUND), tt.sa}, 0)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", tt.name, err)
		}
		if len(db.All()) != 0 {
			t.Fatalf("%s: partial install", tt.name)
		}
	}
}

func TestLifetimes(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	db := newDB(t, "", c)
	out := testSA(2000, pb.Direction_DIRECTION_OUTBOUND)
	out.Lifetime = &pb.Lifetime{SoftBytes: 1000, HardBytes: 2000}
	in := testSA(1000, pb.Direction_DIRECTION_INBOUND)
	in.Lifetime = &pb.Lifetime{SoftSeconds: 60, HardSeconds: 100, SoftPackets: 5}
	if err := db.Install([]*pb.SA{in, out}, 0); err != nil {
		t.Fatal(err)
	}
	osa := db.Outbound("ss1", netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("10.0.2.1"))
	for i := 0; i < 9; i++ {
		osa.Account(100)
	}
	if ev := drain(db); len(ev) != 0 {
		t.Fatalf("early events %v", kinds(ev))
	}
	osa.Account(100) // 1000 bytes: soft
	osa.Account(100)
	if got := kinds(drain(db)); len(got) != 1 || got[0] != pb.SAEventKind_SA_EVENT_KIND_SOFT_LIFETIME {
		t.Fatalf("events %v", got)
	}
	for i := 0; i < 9; i++ {
		osa.Account(100)
	}
	if got := kinds(drain(db)); len(got) != 1 || got[0] != pb.SAEventKind_SA_EVENT_KIND_HARD_LIFETIME {
		t.Fatalf("events %v", got)
	}
	if db.Outbound("ss1", netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("10.0.2.1")) != nil {
		t.Fatal("hard-expired SA still used")
	}
	isa := db.Inbound(1000, netip.MustParseAddr("192.0.2.1"))
	for i := 0; i < 5; i++ {
		isa.Account(10)
	}
	// The first packet on a new inbound SA is reported at once (kmd's
	// responder make-before-break waits for it), the others are not.
	// (The fifth packet reaches the soft packet lifetime.)
	if got := kinds(drain(db)); len(got) != 2 || got[0] != pb.SAEventKind_SA_EVENT_KIND_INBOUND_ACTIVITY || got[1] != pb.SAEventKind_SA_EVENT_KIND_SOFT_LIFETIME {
		t.Fatalf("first inbound packet: events %v", got)
	}
	c.Add(61 * time.Second)
	db.Sweep() // removes the expired outbound SA; soft packets fired already
	got := kinds(drain(db))
	want := []pb.SAEventKind{pb.SAEventKind_SA_EVENT_KIND_INBOUND_ACTIVITY, pb.SAEventKind_SA_EVENT_KIND_DELETED}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	c.Add(40 * time.Second)
	db.Sweep()
	got = kinds(drain(db))
	if len(got) != 2 || got[0] != pb.SAEventKind_SA_EVENT_KIND_HARD_LIFETIME || got[1] != pb.SAEventKind_SA_EVENT_KIND_DELETED {
		t.Fatalf("events %v", got)
	}
	if len(db.All()) != 0 {
		t.Fatal("SAs left")
	}
	// The deleted SAs' counters stay in the service set totals.
	if tot := db.ServiceSetTotals("ss1"); tot.Get(EncryptedBytes) != 2000 || tot.Get(DecryptedPackets) != 5 {
		t.Fatalf("totals %v", tot.Proto())
	}
	db.ClearStatistics("ss1")
	if tot := db.ServiceSetTotals("ss1"); tot.Get(EncryptedBytes) != 0 {
		t.Fatal("clear statistics")
	}
}

func TestSequenceRollover(t *testing.T) {
	db := newDB(t, "", nil)
	out := testSA(2000, pb.Direction_DIRECTION_OUTBOUND)
	out.InitialSequence = 1<<32 - 15
	if err := db.Install([]*pb.SA{out}, 0); err != nil {
		t.Fatal(err)
	}
	sa := db.All()[0]
	var last uint64
	var err error
	n := 0
	for {
		var s uint64
		s, err = sa.NextSeq()
		if err != nil {
			break
		}
		if s <= last {
			t.Fatalf("sequence went back: %d after %d", s, last)
		}
		last = s
		n++
	}
	if !errors.Is(err, ErrSequenceExhausted) || last != 1<<32-1 || n != 15 {
		t.Fatalf("err %v last %#x n %d", err, last, n)
	}
	if _, err := sa.NextSeq(); !errors.Is(err, ErrSequenceExhausted) {
		t.Fatal("sent after exhaustion")
	}
	got := kinds(drain(db))
	if len(got) != 1 || got[0] != pb.SAEventKind_SA_EVENT_KIND_SEQUENCE_ROLLOVER_NEAR {
		t.Fatalf("events %v", got)
	}
}

// TestRestartNeverRewinds runs an SA, abandons the DB as a kill -9 would,
// and checks that the same SA installed again (with the initial sequence
// kmd would send without marks) starts past every number used.
func TestRestartNeverRewinds(t *testing.T) {
	dir := t.TempDir()
	for _, used := range []int{1, 99, 100, 101, 250, 1000} {
		db := newDB(t, dir, nil)
		out := testSA(2000, pb.Direction_DIRECTION_OUTBOUND)
		out.InitialSequence = 1
		out.Type = pb.SAType_SA_TYPE_MANUAL
		out.EncryptionKey[5] = byte(used)
		if err := db.Install([]*pb.SA{out}, 0); err != nil {
			t.Fatal(err)
		}
		sa := db.All()[0]
		var last uint64
		for i := 0; i < used; i++ {
			last, _ = sa.NextSeq()
		}
		// "kill -9": a new DB reads the same directory. (Close only waits
		// for the old DB's background write, which a dead process would
		// not do: in the test it must not race the new DB's file.)
		db.Close()
		db2 := newDB(t, dir, nil)
		if err := db2.Install([]*pb.SA{out}, 0); err != nil {
			t.Fatal(err)
		}
		s, err := db2.All()[0].NextSeq()
		if err != nil {
			t.Fatal(err)
		}
		if s <= last {
			t.Fatalf("used %d: after restart sequence %d, last used %d", used, s, last)
		}
		if s > last+2*100+1 {
			t.Fatalf("used %d: skipped too far: %d after %d", used, s, last)
		}
		// The marks are reported for the sync request.
		if m := db2.Marks(); len(m) == 0 {
			t.Fatal("no marks")
		}
	}
	fi, err := os.Stat(filepath.Join(dir, MarksFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("marks file mode %v", fi.Mode())
	}
}

func TestDynamicMarksForgotten(t *testing.T) {
	dir := t.TempDir()
	db := newDB(t, dir, nil)
	out := testSA(2000, pb.Direction_DIRECTION_OUTBOUND)
	if err := db.Install([]*pb.SA{out}, 0); err != nil {
		t.Fatal(err)
	}
	db.All()[0].NextSeq()
	if len(db.Marks()) != 1 {
		t.Fatal("no mark")
	}
	db.Delete(Filter{ServiceSet: "ss1"}, "")
	if len(db.Marks()) != 0 {
		t.Fatal("mark of a deleted dynamic SA kept")
	}
}

func TestMarksFileErrors(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"fields", "1 2 3\n", ":1: want 4 fields"},
		{"spi", "x 192.0.2.1 0011223344556677 5\n", ":1: spi"},
		{"addr", "300 nope 0011223344556677 5\n", ":1: destination"},
		{"fingerprint", "300 192.0.2.1 zz 5\n", ":1: fingerprint"},
		{"mark", "300 192.0.2.1 0011223344556677 -1\n300 192.0.2.1 0011223344556677 5\n", ":1: mark"},
		{"second line", "300 192.0.2.1 0011223344556677 5\nbad\n", ":2: want 4"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, MarksFile), []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(Options{Dir: dir})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestUpdate(t *testing.T) {
	db := newDB(t, "", nil)
	out := testSA(2000, pb.Direction_DIRECTION_OUTBOUND)
	if err := db.Install([]*pb.SA{out}, 0); err != nil {
		t.Fatal(err)
	}
	key := &pb.SAKey{Spi: 2000, Direction: pb.Direction_DIRECTION_OUTBOUND, Destination: netip.MustParseAddr("198.51.100.1").AsSlice()}
	if err := db.Update(&pb.SAUpdate{Sa: key, Remote: ep("198.51.100.1", 4500), Encapsulation: pb.Encapsulation_ENCAPSULATION_UDP_NATT}); err != nil {
		t.Fatal(err)
	}
	p := db.All()[0].Peer()
	if p.Addr.Port() != 4500 || p.Encap != pb.Encapsulation_ENCAPSULATION_UDP_NATT {
		t.Fatalf("peer %+v", p)
	}
	if err := db.Update(&pb.SAUpdate{Sa: key, NotInstalled: true}); err != nil {
		t.Fatal(err)
	}
	if db.Outbound("ss1", netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("10.0.2.1")) != nil {
		t.Fatal("Not Installed SA used")
	}
	if err := db.Update(&pb.SAUpdate{Sa: &pb.SAKey{Spi: 9999}}); err == nil {
		t.Fatal("update of a missing SA")
	}
}

func TestRangePrefixes(t *testing.T) {
	tests := []struct {
		s, e string
		want []string
	}{
		{"10.0.0.0", "10.0.0.255", []string{"10.0.0.0/24"}},
		{"0.0.0.0", "255.255.255.255", []string{"0.0.0.0/0"}},
		{"10.0.0.1", "10.0.0.1", []string{"10.0.0.1/32"}},
		{"10.0.0.1", "10.0.0.4", []string{"10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/32"}},
		{"::", "::ffff", []string{"::/112"}},
		{"10.0.0.5", "10.0.0.1", nil},
	}
	for _, tt := range tests {
		got := RangePrefixes(netip.MustParseAddr(tt.s), netip.MustParseAddr(tt.e))
		var gs []string
		for _, p := range got {
			gs = append(gs, p.String())
		}
		if strings.Join(gs, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s-%s: %v, want %v", tt.s, tt.e, gs, tt.want)
		}
	}
}

func BenchmarkNextSeq(b *testing.B) {
	db, _ := Open(Options{Dir: b.TempDir()})
	out := testSA(2000, pb.Direction_DIRECTION_OUTBOUND)
	out.ExtendedSequenceNumbers = true
	if err := db.Install([]*pb.SA{out}, 0); err != nil {
		b.Fatal(err)
	}
	sa := db.All()[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sa.NextSeq(); err != nil {
			b.Fatal(err)
		}
		sa.Account(1400)
	}
}

func BenchmarkOutboundLookup(b *testing.B) {
	db, _ := Open(Options{})
	for i := uint32(0); i < 16; i++ {
		s := testSA(3000+i, pb.Direction_DIRECTION_OUTBOUND)
		s.Term = string(rune('a' + i))
		s.RemoteSelectors = sel(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16).String())
		if err := db.Install([]*pb.SA{s}, 0); err != nil {
			b.Fatal(err)
		}
	}
	src, dst := netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("10.0.0.9")
	b.ReportAllocs()
	for b.Loop() {
		if db.Outbound("ss1", src, dst) == nil {
			b.Fatal("not found")
		}
	}
}

func FuzzParseMark(f *testing.F) {
	f.Add("300 192.0.2.1 0011223344556677 5")
	f.Add("1 ::1 ffffffffffffffff 18446744073709551615")
	f.Fuzz(func(t *testing.T, line string) {
		k, v, err := parseMark(line)
		if err != nil {
			return
		}
		// What parses must print back to something that parses the same.
		k2, v2, err := parseMark(strings.Join([]string{
			strconv.FormatUint(uint64(k.SPI), 10), k.Dst.String(), k.Fingerprint, strconv.FormatUint(v, 10)}, " "))
		if err != nil || k2 != k || v2 != v {
			t.Fatalf("%q: round trip %v %v %v", line, k2, v2, err)
		}
	})
}

// Issue 14, low: a deleted SA's keys do not stay in fwdd's memory.
func TestDeleteZeroizesKeys(t *testing.T) {
	db := newDB(t, t.TempDir(), nil)
	in, out := testSA(3000, pb.Direction_DIRECTION_INBOUND), testSA(4000, pb.Direction_DIRECTION_OUTBOUND)
	out.AuthenticationKey = []byte{1, 2, 3}
	if err := db.Install([]*pb.SA{in, out}, 0); err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for _, sa := range db.All() {
		keys = append(keys, sa.Config.GetEncryptionKey(), sa.Config.GetAuthenticationKey())
	}
	if len(keys) != 4 || len(keys[0]) == 0 {
		t.Fatalf("keys %x", keys)
	}
	if n := db.Delete(Filter{ServiceSet: "ss1"}, "clear"); n != 2 {
		t.Fatalf("deleted %d", n)
	}
	for i, k := range keys {
		for _, b := range k {
			if b != 0 {
				t.Fatalf("key %d not zeroized: %x", i, k)
			}
		}
	}
}
