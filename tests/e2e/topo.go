// Package e2e holds sitesec's end-to-end tests: the seed's four routers in
// network namespaces, the docker compose example, restarts under traffic
// and tracing. This file is the topology helper the tests share.
//
//	r1 ---------- r2 ============ r3 ---------- r4
//	   10.0.1.0/24    192.168.255.0/24  10.0.0.0/24
//	.2        .1 ge-0-0-1   .2 ge-0-0-0 .3   ge-0-0-1 .1       .2
//
// r1 and r4 are plain hosts (default routes towards r2 and r3); r2 and r3
// forward (ip_forward on) and run sitesecd. With Plain set, r2 and r3 also
// get kernel routes to each other's LAN, so traffic flows with no tunnel;
// without it, the only way from 10.0.1.0/24 to 10.0.0.0/24 is the routes
// fwdd installs to its inside interfaces, so a ping that works went
// through the tunnel.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitesec/sitesec/tests/harness"
)

// Addresses of the topology.
const (
	R1        = "10.0.1.2"
	R2Inside  = "10.0.1.1"
	R2Outside = "192.168.255.2"
	R3Outside = "192.168.255.3"
	R3Inside  = "10.0.0.1"
	R4        = "10.0.0.2"
	LAN1      = "10.0.1.0/24"
	LAN4      = "10.0.0.0/24"
	// InsideIfl is the inside service interface the templates configure,
	// and InsideTun the Linux name fwdd gives its TUN device.
	InsideIfl = "sp-1/2/0.1"
	InsideTun = "sp-1-2-0u1"
)

// Need fails the test with the reason when ok is false: a capability of
// sitesec the test depends on. Every capability exists now, so a missing one
// is a regression and fails (issue 10: no skip for our own failures).
func Need(t testing.TB, ok bool, format string, a ...any) {
	t.Helper()
	if !ok {
		t.Fatalf("sitesec cannot: "+format, a...)
	}
}

// check fails the test (and goes on) when ok is false.
func check(t testing.TB, ok bool, format string, a ...any) {
	t.Helper()
	if !ok {
		t.Errorf(format, a...)
	}
}

// Topology is the four namespaces and, once started, the two routers.
type Topology struct {
	t testing.TB
	// NS maps r1..r4 to the namespace names (unique per test).
	NS     map[string]string
	R2, R3 *harness.Router
	// Tool is the path of the nettool binary.
	Tool string
	// Plain is whether r2 and r3 have kernel routes to the far LAN.
	Plain bool
	// Dir is a scratch directory of the test.
	Dir string
}

// RequireNetns skips unless this process can make network namespaces.
func RequireNetns(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2) for network namespaces")
	}
	name := "sse2e-probe-" + harness.RandHex(3)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add does not work here: %v: %s", err, out)
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
}

// NewTopology makes the namespaces, links, addresses and routes (removed in
// t.Cleanup, even when the test fails). It does not start the routers.
func NewTopology(t testing.TB, plain bool) *Topology {
	t.Helper()
	RequireNetns(t)
	tp := &Topology{t: t, NS: map[string]string{}, Plain: plain, Tool: NetTool(t), Dir: t.TempDir()}
	id := harness.RandHex(3)
	for _, r := range []string{"r1", "r2", "r3", "r4"} {
		tp.NS[r] = "sse2e-" + id + "-" + r
		harness.AddNetns(t, tp.NS[r])
	}
	link := func(a, aif, b, bif string) { harness.Veth(t, tp.NS[a], aif, tp.NS[b], bif) }
	link("r1", "eth0", "r2", "ge-0-0-1")
	link("r2", "ge-0-0-0", "r3", "ge-0-0-0")
	link("r3", "ge-0-0-1", "r4", "eth0")
	addrs := []struct{ r, ifc, addr string }{
		{"r1", "eth0", R1 + "/24"},
		{"r2", "ge-0-0-1", R2Inside + "/24"},
		{"r2", "ge-0-0-0", R2Outside + "/24"},
		{"r3", "ge-0-0-0", R3Outside + "/24"},
		{"r3", "ge-0-0-1", R3Inside + "/24"},
		{"r4", "eth0", R4 + "/24"},
	}
	for _, a := range addrs {
		tp.IP(a.r, "addr", "add", a.addr, "dev", a.ifc)
		tp.IP(a.r, "link", "set", a.ifc, "up")
	}
	for _, r := range []string{"r1", "r2", "r3", "r4"} {
		tp.IP(r, "link", "set", "lo", "up")
	}
	tp.IP("r1", "route", "add", "default", "via", R2Inside)
	tp.IP("r4", "route", "add", "default", "via", R3Inside)
	for _, r := range []string{"r2", "r3"} {
		for _, k := range []string{"net/ipv4/ip_forward", "net/ipv4/conf/all/rp_filter", "net/ipv4/conf/default/rp_filter"} {
			v := "0"
			if strings.HasSuffix(k, "ip_forward") {
				v = "1"
			}
			tp.Sh(r, "echo "+v+" > /proc/sys/"+k)
		}
	}
	if plain {
		tp.IP("r2", "route", "add", LAN4, "via", R3Outside)
		tp.IP("r3", "route", "add", LAN1, "via", R2Outside)
	}
	return tp
}

// IP runs `ip -n NS args...` in r's namespace and fails the test on
// error.
func (tp *Topology) IP(r string, args ...string) string {
	tp.t.Helper()
	return harness.IP(tp.t, tp.NS[r], args...)
}

// Sh runs a shell command inside r's namespace and fails the test on error.
func (tp *Topology) Sh(r, script string) string {
	tp.t.Helper()
	out, err := tp.Run(r, 30*time.Second, "sh", "-c", script)
	if err != nil {
		tp.t.Fatalf("%s: %s: %v", r, script, err)
	}
	return out
}

// Run runs a command in r's namespace with a timeout and returns its
// combined output.
func (tp *Topology) Run(r string, timeout time.Duration, args ...string) (string, error) {
	var out bytes.Buffer
	err := harness.Run(tp.NS[r], timeout, &out, &out, args...)
	return out.String(), err
}

// Nettool runs nettool in r's namespace.
func (tp *Topology) Nettool(r string, timeout time.Duration, args ...string) (string, error) {
	return tp.Run(r, timeout, append([]string{tp.Tool}, args...)...)
}

// Background starts a command in r's namespace; it is killed in cleanup.
// Wait returns its output once it exits.
func (tp *Topology) Background(r string, args ...string) *Proc {
	tp.t.Helper()
	p := tp.Spawn(r, args...)
	tp.t.Cleanup(p.Kill)
	return p
}

// Spawn is Background without the cleanup: the caller kills the process
// (it is still killed if the test binary dies).
func (tp *Topology) Spawn(r string, args ...string) *Proc {
	tp.t.Helper()
	return harness.Spawn(tp.t, tp.NS[r], args...)
}

// Proc is a background process (harness.Proc).
type Proc = harness.Proc

// StartRouters runs sitesecd in r2 and r3 with args.
func (tp *Topology) StartRouters(args ...string) {
	tp.t.Helper()
	tp.R2 = harness.StartIn(tp.t, tp.NS["r2"], append([]string{"--name", "r2"}, args...)...)
	tp.R3 = harness.StartIn(tp.t, tp.NS["r3"], append([]string{"--name", "r3"}, args...)...)
}

// Ping sends count probes from r to dst, 200 ms apart, and reports whether
// any was answered.
func (tp *Topology) Ping(r, dst string, count int) bool {
	_, err := tp.Nettool(r, time.Duration(count)*time.Second+10*time.Second, "ping", "-c", fmt.Sprint(count), "-i", "200ms", "-w", "1s", dst)
	return err == nil
}

// WaitPing pings once a second until dst answers or d has passed.
func (tp *Topology) WaitPing(r, dst string, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; {
		if tp.Ping(r, dst, 1) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// HasLink reports whether interface name exists in r's namespace.
func (tp *Topology) HasLink(r, name string) bool {
	_, err := tp.Run(r, 10*time.Second, "ip", "link", "show", "dev", name)
	return err == nil
}

// WaitLink waits up to d for interface name to appear in r's namespace.
func (tp *Topology) WaitLink(r, name string, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if tp.HasLink(r, name) {
			return true
		}
	}
	return false
}

// Trace runs nettool trace from r to dst and returns the hops (the address
// answering at each TTL, "*" for none).
func (tp *Topology) Trace(r, dst string) ([]string, error) {
	out, err := tp.Nettool(r, 60*time.Second, "trace", "-m", "8", "-w", "1s", "-q", "3", dst)
	var hops []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			hops = append(hops, f[1])
		}
	}
	return hops, err
}

var (
	natsOnce sync.Once
	natsPath string
	natsErr  error
)

// NATSServer builds nats-server (static, from the module services requires)
// once per test binary and returns its path.
func NATSServer(t testing.TB) string {
	t.Helper()
	NetTool(t) // makes toolDir
	natsOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		natsPath = filepath.Join(toolDir, "nats-server")
		c := exec.Command("go", "build", "-trimpath", "-o", natsPath, "github.com/nats-io/nats-server/v2")
		c.Dir = filepath.Join(filepath.Dir(file), "..", "..", "services")
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := c.CombinedOutput(); err != nil {
			natsErr = fmt.Errorf("go build nats-server: %v: %s", err, out)
		}
	})
	if natsErr != nil {
		t.Fatal(natsErr)
	}
	return natsPath
}

var (
	toolOnce sync.Once
	toolPath string
	toolErr  error
	toolDir  string
)

// NetTool builds tests/cmd/nettool (static) once per test binary and
// returns its path.
func NetTool(t testing.TB) string {
	t.Helper()
	toolOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		mod := filepath.Join(filepath.Dir(file), "..")
		toolDir, toolErr = os.MkdirTemp("", "sitesec-e2e-")
		if toolErr != nil {
			return
		}
		toolPath = filepath.Join(toolDir, "nettool")
		c := exec.Command("go", "build", "-trimpath", "-o", toolPath, "./cmd/nettool")
		c.Dir = mod
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := c.CombinedOutput(); err != nil {
			toolErr = fmt.Errorf("go build ./cmd/nettool: %v: %s", err, out)
		}
	})
	if toolErr != nil {
		t.Fatal(toolErr)
	}
	return toolPath
}

// CleanupTool removes the nettool build; TestMain calls it.
func CleanupTool() {
	if toolDir != "" {
		os.RemoveAll(toolDir)
	}
}
