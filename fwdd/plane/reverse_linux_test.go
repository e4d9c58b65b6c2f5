package plane

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/fwdd/sad"
)

// TestReverseRouteSparesOutside: a dynamic-endpoint client whose
// selectors cover its own outside address (a road warrior without a
// virtual IP: TS = its address) keeps its IKE and ESP on the outside
// interface. The reverse route for its selectors takes the router's
// other traffic to it into the inside (TUN) device; fwdd's own outside
// sockets skip it (before, the reverse route was in main and IKE replies
// to the client went into the TUN device: the client lost its tunnel).
func TestReverseRouteSparesOutside(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root for network namespaces, TUN devices and raw sockets")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: iproute2 (ip) not installed")
	}
	gw := fmt.Sprintf("fwddRg%d", os.Getpid())
	cl := fmt.Sprintf("fwddRc%d", os.Getpid())
	for _, ns := range []string{gw, cl} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", "fwrg", "netns", gw, "type", "veth", "peer", "name", "fwrc", "netns", cl)
	run(t, "ip", "-n", gw, "addr", "add", "192.0.2.1/24", "dev", "fwrg")
	run(t, "ip", "-n", cl, "addr", "add", "192.0.2.2/24", "dev", "fwrc")
	run(t, "ip", "-n", gw, "link", "set", "fwrg", "up")
	run(t, "ip", "-n", cl, "link", "set", "fwrc", "up")

	db, err := sad.Open(sad.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := New(db)
	var w *LinuxWire
	var in *Inside
	inNS(t, gw, func() {
		if w, err = OpenLinuxWire(p); err != nil {
			t.Fatal(err)
		}
		if in, err = CreateTUN("ms-1/2/0.1", 1400); err != nil {
			t.Fatal(err)
		}
	})
	p.SetWire(w)
	p.AddInside(in)
	t.Cleanup(func() { w.Close(); p.Close() })
	run(t, "ip", "-n", gw, "link", "set", in.Linux, "up")
	// The reverse routes of a client at 192.0.2.2 whose selector is its
	// own address, and of one whose selector is 192.0.2.0/25 (covers it).
	inNS(t, gw, func() {
		if err := SetRoutes([]Route{
			{Prefix: netip.MustParsePrefix("192.0.2.2/32"), Linux: in.Linux, Reverse: true},
			{Prefix: netip.MustParsePrefix("192.0.2.0/25"), Linux: in.Linux, Reverse: true},
		}); err != nil {
			t.Fatal(err)
		}
		if err := w.Listen(map[netip.AddrPort]Kind{netip.MustParseAddrPort("192.0.2.1:500"): KindIKE}); err != nil {
			t.Fatal(err)
		}
	})
	// The router's own traffic to the client goes into the tunnel; fwdd's
	// (marked) goes out of the outside interface.
	if got := run(t, "ip", "-n", gw, "route", "get", "192.0.2.2"); !strings.Contains(got, "dev "+in.Linux) {
		t.Fatalf("traffic to the client does not take the reverse route: %s", got)
	}
	if got := run(t, "ip", "-n", gw, "route", "get", "192.0.2.2", "mark", fmt.Sprint(OutsideMark)); !strings.Contains(got, "dev fwrg") {
		t.Fatalf("fwdd's traffic to the client is not routed outside: %s", got)
	}
	var c *net.UDPConn
	inNS(t, cl, func() {
		if c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.2:500"))); err != nil {
			t.Fatal(err)
		}
	})
	defer c.Close()
	// An IKE answer from fwdd's socket reaches the client.
	if err := w.SendUDP(netip.MustParseAddrPort("192.0.2.1:500"), netip.MustParseAddrPort("192.0.2.2:500"), []byte("IKE answer")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b := make([]byte, 100)
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil || string(b[:n]) != "IKE answer" || from.String() != "192.0.2.1:500" {
		t.Fatalf("the client got %q from %v (%v): fwdd's IKE went elsewhere", b[:n], from, err)
	}
	// ChangeRoutes adds and removes only what it is given.
	inNS(t, gw, func() {
		if err := ChangeRoutes([]Route{{Prefix: netip.MustParsePrefix("192.0.2.128/25"), Linux: in.Linux, Reverse: true}},
			[]Route{{Prefix: netip.MustParsePrefix("192.0.2.2/32"), Linux: in.Linux, Reverse: true}}); err != nil {
			t.Fatal(err)
		}
	})
	if got := run(t, "ip", "-n", gw, "route", "show", "table", fmt.Sprint(ReverseTable)); !strings.Contains(got, "192.0.2.128/25") || !strings.Contains(got, "192.0.2.0/25") || strings.Contains(got, "192.0.2.2 ") {
		t.Fatalf("reverse routes after ChangeRoutes:\n%s", got)
	}
	// The rule stays with no reverse route, and a second SetRoutes keeps
	// one rule.
	inNS(t, gw, func() {
		if err := SetRoutes(nil); err != nil {
			t.Fatal(err)
		}
		if err := SetRoutes(nil); err != nil {
			t.Fatal(err)
		}
	})
	if rules := run(t, "ip", "-n", gw, "rule"); strings.Count(rules, fmt.Sprintf("lookup %d", ReverseTable)) != 1 {
		t.Fatalf("reverse-route rules:\n%s", rules)
	}
	if got := run(t, "ip", "-n", gw, "route", "show", "table", fmt.Sprint(ReverseTable)); strings.TrimSpace(got) != "" {
		t.Fatalf("reverse routes left: %s", got)
	}
}
