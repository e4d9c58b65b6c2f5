package ikesa

import (
	"crypto/rand"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/sitesec/sitesec/kmd/message"
	"github.com/sitesec/sitesec/kmd/transform"
)

// udpHost plays fwdd for the interop test: real UDP sockets on 127.0.0.2,
// ports 1500 and 14500 standing for 500 and 4500 (charon owns the real
// ones on this loopback), with the non-ESP marker on 4500 (RFC 3948).
type udpHost struct {
	t           *testing.T
	s500, s4500 *net.UDPConn
	in          chan datagramIn
	installed   map[uint32]*ChildSA
	installs    int
	events      []Event
	table       *Table
}

type datagramIn struct {
	local, remote netip.AddrPort
	raw           []byte
}

func (h *udpHost) Send(sa *SA, pkts [][]byte, keepalive bool) {
	if keepalive {
		h.s4500.WriteToUDPAddrPort([]byte{0xff}, netip.AddrPortFrom(sa.Remote.Addr(), 4500))
		return
	}
	for _, p := range pkts {
		var err error
		if sa.Remote.Port() == 4500 {
			_, err = h.s4500.WriteToUDPAddrPort(append([]byte{0, 0, 0, 0}, p...), sa.Remote)
		} else {
			_, err = h.s500.WriteToUDPAddrPort(p, sa.Remote)
		}
		if err != nil {
			h.t.Errorf("send: %v", err)
		}
	}
}

func (h *udpHost) Install(sa *SA, c *ChildSA, replaces *ChildSA) error {
	h.installed[c.SPIIn] = c
	h.installs++
	return nil
}

func (h *udpHost) Uninstall(sa *SA, c *ChildSA) { delete(h.installed, c.SPIIn) }

func (h *udpHost) Event(sa *SA, e Event) {
	h.events = append(h.events, e)
	switch e.Kind {
	case EventIKERekeyed:
		h.table.Add(e.New)
	case EventDead:
		h.table.Remove(sa)
	}
}

func (h *udpHost) read(c *net.UDPConn, port uint16, marker bool) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := append([]byte(nil), buf[:n]...)
		if marker {
			if len(b) < 4 || b[0]|b[1]|b[2]|b[3] != 0 {
				continue // ESP or keepalive
			}
			b = b[4:]
		}
		h.in <- datagramIn{local: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port), remote: netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), raw: b}
	}
}

// TestStrongSwan negotiates with a real charon: IKE_SA_INIT, IKE_AUTH with
// a CHILD SA, a CHILD SA rekey with PFS, an IKE SA rekey and a delete.
// testdata/strongswan/run.sh starts charon and runs it.
func TestStrongSwan(t *testing.T) {
	if os.Getenv("SITESEC_STRONGSWAN") == "" {
		t.Skip("needs charon: sh testdata/strongswan/run.sh")
	}
	s500, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.2:1500")))
	if err != nil {
		t.Fatal(err)
	}
	s4500, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.2:14500")))
	if err != nil {
		t.Fatal(err)
	}
	defer s500.Close()
	defer s4500.Close()
	h := &udpHost{t: t, s500: s500, s4500: s4500, in: make(chan datagramIn, 64), installed: map[uint32]*ChildSA{}}
	go h.read(s500, 500, false)
	go h.read(s4500, 4500, true)
	h.table = &Table{Options: Options{Rand: rand.Reader, Now: time.Now, Host: h}}

	ike, _ := transform.IKESuite("aes-256-gcm", "sha-256", "group19")
	esp, _ := transform.ESPSuite("aes-128-gcm", "", "group19")
	cfg := &Config{
		Name:          "interop",
		IKEProposals:  transform.Proposals([]transform.Suite{ike}, nil),
		ESPProposals:  transform.Proposals([]transform.Suite{esp}, nil),
		PFSGroup:      19,
		LocalID:       IPID(netip.MustParseAddr("127.0.0.2")),
		RemoteID:      MatchIDs(IPID(netip.MustParseAddr("127.0.0.1"))),
		Auth:          PSK("interop-s3cret"),
		LocalTS:       []message.Selector{PrefixSelector(netip.MustParsePrefix("10.0.0.0/16"))},
		RemoteTS:      []message.Selector{PrefixSelector(netip.MustParsePrefix("10.1.0.0/16"))},
		IKELifetime:   time.Hour,
		ChildLifetime: time.Hour,
		NATTraversal:  true,
		NATKeepalive:  20 * time.Second,
	}
	sa, err := NewInitiator(cfg, netip.MustParseAddrPort("127.0.0.2:500"), netip.MustParseAddrPort("127.0.0.1:500"), h.table.Options)
	if err != nil {
		t.Fatal(err)
	}
	h.table.Add(sa)
	pump := func(what string, done func() bool) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for !done() {
			tick := time.Second
			for _, x := range h.table.All() {
				if d := x.Deadline(); !d.IsZero() && time.Until(d) < tick {
					tick = max(time.Until(d), 0)
				}
			}
			select {
			case d := <-h.in:
				x, pkt, _, err := h.table.Route(d.local, d.remote, d.raw)
				if err != nil {
					t.Logf("route: %v", err)
					continue
				}
				if err := x.Handle(d.local, d.remote, pkt); err != nil {
					t.Logf("handle: %v", err)
				}
			case <-time.After(tick):
				for _, x := range h.table.All() {
					x.Tick()
				}
			case <-deadline:
				t.Fatalf("timed out: %s", what)
			}
		}
	}
	if err := sa.Start(); err != nil {
		t.Fatal(err)
	}
	pump("IKE SA", func() bool { return sa.State == StateEstablished && len(sa.Children) == 1 || sa.State == StateDead })
	if sa.State != StateEstablished {
		t.Fatalf("IKE SA: %v", sa.Err)
	}
	t.Logf("established %s, NAT local %v remote %v, %s", sa.Name(), sa.NATLocal, sa.NATRemote, sa.Suite.EncryptionName())

	old := sa.Children[0]
	if err := sa.RekeyChild(old); err != nil {
		t.Fatal(err)
	}
	pump("CHILD rekey", func() bool { return h.installs == 2 && len(sa.Children) == 1 && sa.Child(old.SPIIn) == nil })
	if sa.Children[0].Suite.DH != 19 {
		t.Fatal("CHILD rekey without PFS")
	}

	if err := sa.Rekey(); err != nil {
		t.Fatal(err)
	}
	pump("IKE rekey", func() bool { return sa.State == StateDead })
	var n *SA
	for _, x := range h.table.All() {
		if x.State == StateEstablished {
			n = x
		}
	}
	if n == nil || len(n.Children) != 1 {
		t.Fatal("no new IKE SA with the CHILD SA")
	}
	// The new IKE SA works: create one more CHILD SA on it.
	if err := n.CreateChild(); err != nil {
		t.Fatal(err)
	}
	pump("CHILD on rekeyed IKE SA", func() bool { return len(n.Children) == 2 })
	if err := n.Delete(); err != nil {
		t.Fatal(err)
	}
	pump("delete", func() bool { return n.State == StateDead })
	if len(h.installed) != 0 {
		t.Fatalf("%d CHILD SAs left", len(h.installed))
	}
}
