package plane

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/vishvananda/netns"
)

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNS runs f with the calling thread in the named network namespace, so
// that the sockets and TUN devices f creates live there.
func inNS(t *testing.T, name string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer netns.Set(orig)
	f()
}

// TestNamespacePing runs two data planes in two network namespaces joined
// by a veth pair, each with a real TUN inside interface and raw ESP
// sockets, configured with the same manual SA, and pings through them.
func TestNamespacePing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root for network namespaces, TUN devices and raw sockets")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: iproute2 (ip) not installed")
	}
	nsA := fmt.Sprintf("fwddA%d", os.Getpid())
	nsB := fmt.Sprintf("fwddB%d", os.Getpid())
	for _, ns := range []string{nsA, nsB} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", "fwva", "netns", nsA, "type", "veth", "peer", "name", "fwvb", "netns", nsB)
	run(t, "ip", "-n", nsA, "addr", "add", "192.0.2.1/24", "dev", "fwva")
	run(t, "ip", "-n", nsB, "addr", "add", "192.0.2.2/24", "dev", "fwvb")
	run(t, "ip", "-n", nsA, "link", "set", "fwva", "up")
	run(t, "ip", "-n", nsB, "link", "set", "fwvb", "up")

	type side struct {
		ns, local, remote, src, dst, addr string
		p                                 *Plane
		w                                 *LinuxWire
	}
	sides := []*side{
		{ns: nsA, local: "192.0.2.1", remote: "192.0.2.2", src: "10.0.1.0/24", dst: "10.0.2.0/24", addr: "10.0.1.1/24"},
		{ns: nsB, local: "192.0.2.2", remote: "192.0.2.1", src: "10.0.2.0/24", dst: "10.0.1.0/24", addr: "10.0.2.1/24"},
	}
	for _, s := range sides {
		db, err := sad.Open(sad.Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		s.p = New(db)
		cfg := manualConfig(s.local, s.remote, s.src, s.dst)
		if s.ns == nsA {
			// A's term has a small tunnel MTU: fwdd answers DF packets
			// that do not fit with ICMP fragmentation needed.
			cfg.IpsecVpn.Rules[0].Terms[0].Then.TunnelMtu = u32(1200)
		}
		if err := s.p.Configure(cfg); err != nil {
			t.Fatal(err)
		}
		var in *Inside
		inNS(t, s.ns, func() {
			s.w, err = OpenLinuxWire(s.p)
			if err != nil {
				t.Fatal(err)
			}
			in, err = CreateTUN("ms-1/2/0.1", 1500)
			if err != nil {
				t.Fatal(err)
			}
		})
		s.p.SetWire(s.w)
		s.p.AddInside(in)
		t.Cleanup(func() { s.w.Close(); s.p.Close() })
		run(t, "ip", "-n", s.ns, "addr", "add", s.addr, "dev", in.Linux)
		run(t, "ip", "-n", s.ns, "link", "set", in.Linux, "up")
		run(t, "ip", "-n", s.ns, "route", "add", s.dst, "dev", in.Linux)
	}
	out := run(t, "ip", "netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", "10.0.1.1", "10.0.2.1")
	if !strings.Contains(out, "3 received") {
		t.Fatalf("ping:\n%s", out)
	}
	// A big ping with DF is answered with fragmentation needed; without
	// DF it is fragmented before encapsulation and still arrives.
	out = run(t, "ip", "netns", "exec", nsA, "ping", "-c", "1", "-W", "2", "-M", "dont", "-s", "1472", "-I", "10.0.1.1", "10.0.2.1")
	if !strings.Contains(out, "1 received") {
		t.Fatalf("big ping:\n%s", out)
	}
	// DF set and too big for tunnel-mtu 1200: the kernel of A accepts
	// fwdd's ICMP fragmentation needed (source: the destination, so not
	// a martian), learns the path MTU, and ping reports it.
	df, _ := exec.Command("ip", "netns", "exec", nsA, "ping", "-c", "2", "-i", "0.3", "-W", "1", "-M", "do", "-s", "1300", "-I", "10.0.1.1", "10.0.2.1").CombinedOutput()
	if !strings.Contains(string(df), "mtu = ") && !strings.Contains(string(df), "message too long") {
		t.Fatalf("DF ping over a small tunnel MTU:\n%s", df)
	}
	if route := run(t, "ip", "-n", nsA, "route", "get", "10.0.2.1"); !strings.Contains(route, "mtu") {
		t.Fatalf("no path MTU learned: %s", route)
	}
	// NAT-T: dynamic AES-GCM SAs in UDP on port 4500 (RFC 3948) take
	// over; the UDP sockets are opened in each namespace.
	for i, s := range sides {
		inNS(t, s.ns, func() {
			if err := s.w.Listen(map[netip.AddrPort]Kind{netip.AddrPortFrom(netip.MustParseAddr(s.local), 4500): KindNATT}); err != nil {
				t.Fatal(err)
			}
		})
		in, out := uint32(0x5001), uint32(0x5002)
		if i == 1 {
			in, out = out, in
		}
		sas := dynamicSAs("aes-256-gcm", "", make([]byte, 36), nil, s.local, s.remote, in, out, pb.Encapsulation_ENCAPSULATION_UDP_NATT, 4500)
		sas[1].RemoteSelectors = sel(s.dst)
		if err := s.p.DB.Install(sas, 0); err != nil {
			t.Fatal(err)
		}
	}
	out = run(t, "ip", "netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", "10.0.1.1", "10.0.2.1")
	if !strings.Contains(out, "3 received") {
		t.Fatalf("ping over NAT-T:\n%s", out)
	}
	for _, sa := range sides[1].p.DB.All() {
		if sa.Config.GetSpi() == 0x5002 && sa.Counters.Get(sad.DecryptedPackets) < 3 {
			t.Fatalf("NAT-T SA decrypted %d packets", sa.Counters.Get(sad.DecryptedPackets))
		}
	}
	// IPv6 gateways: raw ESP over IPv6 (local address from IPV6_PKTINFO),
	// then ESP in UDP over IPv6 (with the UDP checksum IPv6 requires).
	run(t, "ip", "-n", nsA, "addr", "add", "2001:db8::1/64", "dev", "fwva", "nodad")
	run(t, "ip", "-n", nsB, "addr", "add", "2001:db8::2/64", "dev", "fwvb", "nodad")
	v6 := []string{"2001:db8::1", "2001:db8::2"}
	for step, encap := range []pb.Encapsulation{pb.Encapsulation_ENCAPSULATION_ESP, pb.Encapsulation_ENCAPSULATION_UDP_NATT} {
		port := uint32(0)
		if encap == pb.Encapsulation_ENCAPSULATION_UDP_NATT {
			port = 4500
		}
		base := uint32(0x6000 + 0x100*step)
		for i, s := range sides {
			local, remote := v6[i], v6[1-i]
			if port != 0 {
				inNS(t, s.ns, func() {
					if err := s.w.Listen(map[netip.AddrPort]Kind{
						netip.AddrPortFrom(netip.MustParseAddr(s.local), 4500): KindNATT,
						netip.AddrPortFrom(netip.MustParseAddr(local), 4500):   KindNATT,
					}); err != nil {
						t.Fatal(err)
					}
				})
			}
			in, out := base+1, base+2
			if i == 1 {
				in, out = out, in
			}
			sas := dynamicSAs("aes-128-gcm", "", make([]byte, 20), nil, local, remote, in, out, encap, port)
			sas[1].RemoteSelectors = sel(s.dst)
			if err := s.p.DB.Install(sas, 0); err != nil {
				t.Fatal(err)
			}
		}
		out = run(t, "ip", "netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", "10.0.1.1", "10.0.2.1")
		if !strings.Contains(out, "3 received") {
			t.Fatalf("ping over IPv6 %v:\n%s", encap, out)
		}
		for _, sa := range sides[1].p.DB.All() {
			if sa.Config.GetSpi() == base+2 && sa.Counters.Get(sad.DecryptedPackets) < 3 {
				t.Fatalf("IPv6 %v SA decrypted %d packets", encap, sa.Counters.Get(sad.DecryptedPackets))
			}
		}
	}
	a := sides[0].p.DB.ServiceSetTotals("ss1")
	b := sides[1].p.DB.ServiceSetTotals("ss1")
	if a.Get(sad.EncryptedPackets) < 4 || b.Get(sad.DecryptedPackets) < 4 || a.Get(sad.ExceedsTunnelMTU) == 0 {
		t.Fatalf("A %v\nB %v", a.Proto(), b.Proto())
	}
	if a.Get(sad.AuthFailures)+b.Get(sad.AuthFailures) != 0 {
		t.Fatal("authentication failures")
	}
}

func sel(prefix string) []*pb.TrafficSelector {
	p := netip.MustParsePrefix(prefix)
	end := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		end[i/8] |= 0x80 >> (i % 8)
	}
	return []*pb.TrafficSelector{{StartAddress: p.Addr().AsSlice(), EndAddress: end[:]}}
}
