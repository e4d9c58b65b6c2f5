package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/sitesec/sitesec/tests/e2e"
	"github.com/sitesec/sitesec/tests/harness"
)

// Addresses of the two namespaces (doc.go).
const (
	SwanOutside = "192.168.77.1"
	SiteOutside = "192.168.77.2"
	SwanInside  = "10.1.0.1"
	SiteInside  = "10.2.0.1"
	SwanLAN     = "10.1.0.0/24"
	SiteLAN     = "10.2.0.0/24"
	// InsideTun is the Linux name fwdd gives ms-0/0/0.1.
	InsideTun = "ms-0-0-0u1"
	psk       = "interop-pre-shared-key"
)

// Set is one proposal set: charon's words and the same in Junos words.
type Set struct {
	Name            string
	IKE, ESP        string // charon proposals
	IKEEnc, IKEAuth string // Junos ike proposal
	DHGroup         string // ike dh-group and ipsec pfs keys
	ESPEnc, ESPAuth string // Junos ipsec proposal (no ESPAuth for AEAD)
	// V1 runs IKEv1 (charon version = 1, sitesec without a version
	// statement, Junos's default); Aggressive its aggressive mode; NoPFS
	// leaves perfect-forward-secrecy out (charon's ESP proposal then has
	// no group).
	V1, Aggressive, NoPFS bool
	// NAT puts sitesec behind a source NAT (Topo.NATSite): charon then
	// accepts its IKE from any address.
	NAT bool
	// Cert authenticates both sides with RSA certificates of one CA
	// (tests/e2e PKI, made per case in PKI) and distinguished-name
	// identities instead of the pre-shared key.
	Cert bool
	// CertKey is the end entities' key type: "" (RSA) or "ecdsa-p256".
	CertKey string
	PKI     *e2e.PKI
}

// Sets are the four proposal sets of the kmd interop issue.
var Sets = []Set{
	{Name: "aes256gcm16-prfsha256-ecp256", IKE: "aes256gcm16-prfsha256-ecp256", ESP: "aes256gcm16-ecp256",
		IKEEnc: "aes-256-gcm", IKEAuth: "sha-256", DHGroup: "group19", ESPEnc: "aes-256-gcm"},
	{Name: "aes128-sha256-modp2048", IKE: "aes128-sha256-modp2048", ESP: "aes128-sha256-modp2048",
		IKEEnc: "aes-128-cbc", IKEAuth: "sha-256", DHGroup: "group14", ESPEnc: "aes-128-cbc", ESPAuth: "hmac-sha-256-128"},
	{Name: "aes256-sha384-ecp384", IKE: "aes256-sha384-ecp384", ESP: "aes256-sha384-ecp384",
		IKEEnc: "aes-256-cbc", IKEAuth: "sha-384", DHGroup: "group20", ESPEnc: "aes-256-cbc", ESPAuth: "hmac-sha-384-192"},
	{Name: "chacha20poly1305-prfsha256-x25519", IKE: "chacha20poly1305-prfsha256-x25519", ESP: "chacha20poly1305-x25519",
		IKEEnc: "chacha20-poly1305", IKEAuth: "sha-256", DHGroup: "group31", ESPEnc: "chacha20-poly1305"},
}

// Topo is the two namespaces of one case, charon and the sitesec router.
type Topo struct {
	t      *testing.T
	Swan   string // charon's namespace
	Site   string // sitesec's namespace
	Tool   string // nettool
	Router *harness.Router
	Charon *Charon
}

// requireCharon skips unless charon, swanctl and the kernel-libipsec plugin
// are installed.
func requireCharon(t *testing.T) {
	t.Helper()
	for _, p := range []string{"/usr/lib/ipsec/charon", "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs strongswan-charon and libcharon-extra-plugins (kernel-libipsec): %v", err)
		}
	}
	for _, p := range []string{"swanctl", "unshare", "mount"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s (strongswan-swanctl, util-linux): %v", p, err)
		}
	}
}

// NewTopo makes the namespaces, links and addresses (removed in cleanup).
func NewTopo(t *testing.T) *Topo {
	t.Helper()
	e2e.RequireNetns(t)
	requireCharon(t)
	id := harness.RandHex(3)
	tp := &Topo{t: t, Swan: "sw-" + id, Site: "ss-" + id, Tool: e2e.NetTool(t)}
	for _, ns := range []string{tp.Swan, tp.Site} {
		harness.AddNetns(t, ns)
		tp.IP(ns, "link", "set", "lo", "up")
	}
	harness.Veth(t, tp.Swan, "eth0", tp.Site, "ge-0-0-0")
	harness.Veth(t, tp.Swan, "in0", "", "in1")
	harness.Veth(t, tp.Site, "ge-0-0-1", "", "lan1")
	for _, a := range []struct{ ns, dev, addr string }{
		{tp.Swan, "eth0", SwanOutside + "/24"},
		{tp.Swan, "in0", SwanInside + "/24"},
		{tp.Swan, "in1", ""},
		{tp.Site, "ge-0-0-0", SiteOutside + "/24"},
		{tp.Site, "ge-0-0-1", SiteInside + "/24"},
		{tp.Site, "lan1", ""},
	} {
		if a.addr != "" {
			tp.IP(a.ns, "addr", "add", a.addr, "dev", a.dev)
		}
		tp.IP(a.ns, "link", "set", a.dev, "up")
	}
	return tp
}

// SiteNAT is the address sitesec's outside packets leave with behind
// NATSite.
const SiteNAT = "192.168.77.9"

// NATSite puts sitesec behind a NAT, as a router behind a home gateway:
// its UDP from the outside address leaves with SiteNAT and another port
// (iptables SNAT in its namespace, conntrack maps the answers back), so
// the NAT-D hashes (RFC 3947 section 3.2) find it behind a NAT.
func (tp *Topo) NATSite() {
	tp.t.Helper()
	tp.IP(tp.Site, "addr", "add", SiteNAT+"/24", "dev", "ge-0-0-0")
	out, err := exec.Command("ip", "netns", "exec", tp.Site, "iptables", "-t", "nat", "-A", "POSTROUTING",
		"-o", "ge-0-0-0", "-s", SiteOutside, "-p", "udp", "-j", "SNAT", "--to-source", SiteNAT+":40000-40999").CombinedOutput()
	if err != nil {
		tp.t.Fatalf("iptables SNAT in %s: %v: %s", tp.Site, err, out)
	}
}

// IP runs `ip -n NS args...` and fails the test on error.
func (tp *Topo) IP(ns string, args ...string) string {
	tp.t.Helper()
	return harness.IP(tp.t, ns, args...)
}

// Run runs a command in namespace ns with a timeout; it returns standard
// output, and an error with standard error when it fails.
func Run(ns string, timeout time.Duration, args ...string) (string, error) {
	var out, errb bytes.Buffer
	err := harness.Run(ns, timeout, &out, &errb, args...)
	return out.String(), err
}

// Spawn starts a command in ns (standard error in its output), killed in
// cleanup.
func (tp *Topo) Spawn(ns string, args ...string) *Proc {
	tp.t.Helper()
	p := harness.SpawnCombined(tp.t, ns, args...)
	tp.t.Cleanup(p.Kill)
	return p
}

// Proc is a background process (harness.Proc).
type Proc = harness.Proc

// PingResult is the part of `nettool ping -json` the tests read.
type PingResult struct {
	Sent            int     `json:"sent"`
	Received        int     `json:"received"`
	Lost            []int   `json:"lost"`
	LongestOutageMs float64 `json:"longest_outage_ms"`
}

// StreamResult is what `nettool stream -json` prints.
type StreamResult struct {
	Sent       int     `json:"sent"`
	Echoed     int     `json:"echoed"`
	MaxStallMs float64 `json:"max_stall_ms"`
	Error      string  `json:"error,omitempty"`
}

// Ping sends count probes from charon's namespace (source SwanInside, from
// the route kernel-libipsec installs) to sitesec's inner address and
// returns the result; every probe crosses the tunnel both ways.
func (tp *Topo) Ping(count int, interval time.Duration) (PingResult, error) {
	out, err := Run(tp.Swan, time.Duration(count)*interval+20*time.Second, tp.Tool, "ping", "-json",
		"-c", fmt.Sprint(count), "-i", interval.String(), "-w", "1s", SiteInside)
	return parsePing(out, err)
}

// PingSized is Ping with size-byte payloads.
func (tp *Topo) PingSized(count, size int, interval time.Duration) (PingResult, error) {
	out, err := Run(tp.Swan, time.Duration(count)*interval+20*time.Second, tp.Tool, "ping", "-json",
		"-c", fmt.Sprint(count), "-s", fmt.Sprint(size), "-i", interval.String(), "-w", "1s", SiteInside)
	return parsePing(out, err)
}

func parsePing(out string, err error) (PingResult, error) {
	var r PingResult
	if jerr := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); jerr != nil {
		if err == nil {
			err = fmt.Errorf("nettool ping output %q: %v", out, jerr)
		}
		return r, err
	}
	return r, nil
}

// WaitPing pings until a probe is answered or d has passed.
func (tp *Topo) WaitPing(d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		if r, err := tp.Ping(2, 200*time.Millisecond); err == nil && r.Received > 0 {
			return true
		}
	}
	return false
}

// testdata returns the path of a file in tests/interop/testdata.
func testdata(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", name)
}

// render executes the template testdata/name with data into dst (0600:
// the files hold the pre-shared key).
func render(name, dst string, data any) error {
	tm, err := template.ParseFiles(testdata(name))
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	var b bytes.Buffer
	if err := tm.Execute(&b, data); err != nil {
		return fmt.Errorf("interop: render %s: %w", name, err)
	}
	return os.WriteFile(dst, b.Bytes(), 0o600)
}
