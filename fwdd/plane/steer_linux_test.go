package plane

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSteeringApply applies a steering plan in a network namespace (a
// veth stands in for the set's TUN device, one interface is found by its
// address, another by its name), checks the kernel's rules, table and
// interface group, applies it again (nothing changes) and then an empty
// plan: fwdd's rules, table and the group it gave are gone, the kernel's
// own rules stay.
func TestSteeringApply(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: iproute2 (ip) not installed")
	}
	ns := fmt.Sprintf("fwddS%d", os.Getpid())
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for i, name := range []string{
		"ms-1-2-0u0", // stands in for the set's TUN device
		"ge-0-0-0",   // found by its name
		"eth7",       // ge-0/0/1.0, found by its address
	} {
		peer := fmt.Sprintf("peer%d", i)
		run(t, "ip", "-n", ns, "link", "add", name, "type", "veth", "peer", "name", peer)
		run(t, "ip", "-n", ns, "link", "set", name, "up")
		run(t, "ip", "-n", ns, "link", "set", peer, "up")
	}
	run(t, "ip", "-n", ns, "addr", "add", "192.0.2.1/24", "dev", "ge-0-0-0")
	run(t, "ip", "-n", ns, "addr", "add", "10.0.1.1/24", "dev", "eth7")
	p := netip.MustParsePrefix
	plan := []Steer{{Set: "ifs", Inside: "ms-1/2/0.0", Table: SteerTable("ifs"), Gateway: netip.MustParseAddr("192.0.2.1"),
		Matches: []SteerMatch{
			{Unit: "ge-0/0/1.0", Addresses: []string{"10.0.1.1/24"}, Src: p("10.0.1.0/24"), Dst: p("10.0.2.0/24")},
			{Unit: "ge-0/0/0.0", Output: true, Dst: p("10.0.9.0/24")},
		}}}
	var st Steering
	var rules, routes, group string
	inNS(t, ns, func() {
		if err := st.Apply(plan); err != nil {
			t.Fatal(err)
		}
	})
	show := func() {
		rules = run(t, "ip", "-n", ns, "rule")
		routes = run(t, "ip", "-n", ns, "route", "show", "table", fmt.Sprint(uint32(SteerTable("ifs"))))
		group = run(t, "ip", "-n", ns, "-d", "link", "show", "ge-0-0-0")
	}
	show()
	g := steerGroupBase | indexOf(t, ns, "ge-0-0-0")
	for _, want := range []string{
		"14600:\tfrom all iif ms-1-2-0u0 lookup main proto 146",
		"14600:\tfrom 192.0.2.1 lookup main proto 146",
		fmt.Sprintf("14601:\tfrom 10.0.1.0/24 to 10.0.2.0/24 iif eth7 lookup %d proto 146", uint32(SteerTable("ifs"))),
		fmt.Sprintf("14601:\tfrom all to 10.0.9.0/24 lookup main suppress_ifgroup %d proto 146", g),
		fmt.Sprintf("14602:\tfrom all to 10.0.9.0/24 lookup %d proto 146", uint32(SteerTable("ifs"))),
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("no rule %q in\n%s", want, rules)
		}
	}
	if !strings.Contains(routes, "default dev ms-1-2-0u0") || !strings.Contains(routes, "unreachable default") {
		t.Errorf("table:\n%s", routes)
	}
	if !strings.Contains(group, fmt.Sprintf("group %d", g)) {
		t.Errorf("ge-0-0-0 not in group %d:\n%s", g, group)
	}
	before := rules
	inNS(t, ns, func() {
		if err := st.Apply(plan); err != nil {
			t.Fatal(err)
		}
	})
	show()
	if rules != before {
		t.Errorf("applying the same plan again changed the rules:\n%s\nthen\n%s", before, rules)
	}
	inNS(t, ns, func() {
		if err := st.Apply(nil); err != nil {
			t.Fatal(err)
		}
	})
	show()
	if strings.Contains(rules, "proto 146") || !strings.Contains(rules, "lookup main") {
		t.Errorf("after an empty plan:\n%s", rules)
	}
	if strings.TrimSpace(routes) != "" {
		t.Errorf("table left:\n%s", routes)
	}
	if !strings.Contains(group, "group default") {
		t.Errorf("ge-0-0-0's group not given back:\n%s", group)
	}
}

func indexOf(t *testing.T, ns, dev string) int {
	t.Helper()
	var idx int
	fmt.Sscanf(run(t, "ip", "-n", ns, "-o", "link", "show", dev), "%d:", &idx)
	return idx
}
