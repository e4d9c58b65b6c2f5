package e2e

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/tests/harness"
)

// exampleFile returns the path of deploy/examples/NAME/FILE.
func exampleFile(name, file string) string {
	_, src, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(src), "..", "..", "deploy", "examples", name, file)
}

// exampleCase is one scenario of deploy/examples (issue 11 item 5): its
// router2.conf runs on r2 and router3.conf on r3 of the topology (the
// files use the topology's addresses and interface names, so they run
// unchanged), each router started as an operator starts one, with
// `sitesecd --root DIR --config FILE`.
type exampleCase struct {
	name string
	// certs, when set, is the certificate identifier of each router's
	// local certificate: before the router starts with the example, it
	// runs once in the same root to take the CA profile and load the CA
	// certificate and its own certificate (the seed's "Requesting and
	// installing digital certificates" steps), as an operator does before
	// committing a configuration that names them.
	certs map[string]string
	// plain gives r2 and r3 kernel routes to each other's LAN through the
	// outside link (the example's static route with an address next hop,
	// which sitesec leaves to the host). A ping then works without the
	// tunnel too, so the test also requires fwdd's ESP counters on both
	// routers to have counted the traffic.
	plain bool
	// check runs after the traffic checks.
	check func(t *testing.T, tp *Topology)
}

func TestExamples(t *testing.T) {
	cases := []exampleCase{
		{name: "next-hop-psk", check: func(t *testing.T, tp *Topology) {
			wantShow(t, tp.R2, "show services ipsec-vpn ike security-associations", R3Outside)
		}},
		{name: "certificates", certs: map[string]string{"r2": "local-entrust2", "r3": "local-entrust3"}, check: func(t *testing.T, tp *Topology) {
			wantShow(t, tp.R2, "show services ipsec-vpn ike security-associations detail", "RSA")
		}},
		{name: "dynamic-endpoints", check: func(t *testing.T, tp *Topology) {
			wantShow(t, tp.R2, "show services ipsec-vpn ipsec security-associations", "dep-ss")
		}},
		{name: "interface-style", check: checkInterfaceStyle},
		{name: "routing-instance", check: func(t *testing.T, tp *Topology) {
			wantShow(t, tp.R2, "show services ipsec-vpn ike security-associations detail", "wan-vrf")
		}},
		{name: "manual-sa", plain: true, check: func(t *testing.T, tp *Topology) {
			wantShow(t, tp.R2, "show services ipsec-vpn ipsec security-associations", "16000")
			rules := tp.IP("r2", "rule")
			if !strings.Contains(rules, "suppress_ifgroup") {
				t.Errorf("r2 has no output steering rule for ge-0-0-0:\n%s", rules)
			}
			t.Logf("r2 rules:\n%s", rules)
			checkRouterTraffic(t, tp)
			checkSteeringRestart(t, tp)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runExample(t, c) })
	}
}

func runExample(t *testing.T, c exampleCase) {
	tp := NewTopology(t, c.plain)
	var pki *PKI
	if c.certs != nil {
		pki = NewPKI(t, []string{R2Outside, R3Outside})
	}
	start := func(r, addr string) *harness.Router {
		root := t.TempDir()
		if pki != nil {
			loadCertificates(t, tp, r, root, pki.Files(t, root, addr), c.certs[r])
		}
		file := exampleFile(c.name, "router"+strings.TrimPrefix(r, "r")+".conf")
		return harness.StartInRoot(t, tp.NS[r], root, "--name", r, "--config", file)
	}
	tp.R2 = start("r2", R2Outside)
	tp.R3 = start("r3", R3Outside)
	if !tp.WaitPing("r1", R4, 30*time.Second) {
		tp.R2.LogTraces(t, "r2", 10, "kmd", "fwdd")
		sas, _ := tp.R2.CLI("show services ipsec-vpn ipsec security-associations")
		ike, _ := tp.R2.CLI("show services ipsec-vpn ike security-associations")
		stats, _ := tp.R2.CLI("show services ipsec-vpn ipsec statistics")
		t.Fatalf("example %s: r1 does not reach r4 through the tunnel\nr2 IKE SAs:\n%s\nr2 IPsec SAs:\n%s\nr2 statistics:\n%s\nr2 routes:\n%s\nr2 rules:\n%s",
			c.name, ike, sas, stats, tp.IP("r2", "route"), tp.IP("r2", "rule"))
	}
	checkTraffic(t, tp)
	// The traffic went through the tunnel: each router encrypted and
	// decrypted at least the 20 echoes and replies of checkTraffic's ping.
	for _, r := range []*harness.Router{tp.R2, tp.R3} {
		stats := r.MustCLI("show services ipsec-vpn ipsec statistics")
		enc, dec := counter(stats, "Encrypted packets:"), counter(stats, "Decrypted packets:")
		if enc < 20 || dec < 20 {
			t.Errorf("%s: %d packets encrypted and %d decrypted, want at least 20 each:\n%s", r.Root, enc, dec, stats)
		}
	}
	if c.check != nil {
		c.check(t, tp)
	}
}

// loadCertificates prepares root for router r: a first run of sitesecd
// commits the CA profile, loads the CA certificate and r's certificate
// with its key under certID, and stops.
func loadCertificates(t *testing.T, tp *Topology, r, root string, files PKIFiles, certID string) {
	t.Helper()
	rt := harness.StartInRoot(t, tp.NS[r], root, "--name", r)
	pre := "security { pki { ca-profile entrust { ca-identity entrust; revocation-check { disable; } } } }\n"
	out, err := Commit(rt, pre)
	if err != nil || !strings.Contains(out, "commit complete") {
		t.Fatalf("%s: commit of the CA profile: %v %s", r, err, lastLines(out, 4))
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err = rt.CLI("request security pki ca-certificate load ca-profile entrust filename " + files.CA)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("%s: load the CA certificate: %v %s", r, err, out)
	}
	if out, err := rt.CLI("request security pki local-certificate load certificate-id " + certID + " filename " + files.Cert + " key " + files.Key); err != nil {
		t.Fatalf("%s: load the local certificate: %v %s", r, err, out)
	}
	rt.Stop()
}

// wantShow runs cmd on r and fails the test unless its output has want.
func wantShow(t *testing.T, r *harness.Router, cmd, want string) {
	t.Helper()
	out, err := r.CLI(cmd)
	if err != nil || !strings.Contains(out, want) {
		t.Errorf("%s: want %q in:\n%s (%v)", cmd, want, out, err)
	}
	t.Logf("%s\n%s", cmd, out)
}

// checkInterfaceStyle checks what makes the interface-style example work:
// no route sends the far LAN anywhere (r2 has no route to it at all), fwdd
// steers what the LAN interface receives with a policy rule, and traffic
// the set's rule does not match still goes where the routes say.
func checkInterfaceStyle(t *testing.T, tp *Topology) {
	wantShow(t, tp.R2, "show services ipsec-vpn ipsec security-associations", "ipsec-if-ss")
	if out, _ := tp.Run("r2", 10*time.Second, "ip", "route", "show", LAN4); strings.TrimSpace(out) != "" {
		t.Errorf("r2 has a route to %s (%q): the example must not need one", LAN4, out)
	}
	rules := tp.IP("r2", "rule")
	if !strings.Contains(rules, "iif ge-0-0-1") || !strings.Contains(rules, "from "+LAN1+" to "+LAN4) {
		t.Errorf("r2 has no steering rule for ge-0-0-1:\n%s", rules)
	}
	t.Logf("r2 rules:\n%s", rules)
	// r1 reaches r2's outside address directly, not through the tunnel
	// (the term matches 10.0.0.0/24 only).
	if !tp.Ping("r1", R2Outside, 2) {
		t.Errorf("r1 cannot reach %s (not matched by the set's rule, must be forwarded as usual)", R2Outside)
	}
}

// counter returns the number after label in show output (0 if absent).
func counter(out, label string) int {
	_, rest, ok := strings.Cut(out, label)
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(strings.Fields(rest)[0])
	return n
}

// checkSteeringRestart: the steering table keeps an unreachable default
// behind its TUN route, so steered traffic is dropped, not sent in the
// clear over r2's plain route, while fwdd is away; after a kill -9 the
// restarted fwdd takes its rules and table over (no duplicates) and the
// traffic goes through the tunnel again.
func checkSteeringRestart(t *testing.T, tp *Topology) {
	routes := tp.IP("r2", "route", "show", "table", "all", "proto", "146")
	if !strings.Contains(routes, "unreachable default") {
		t.Errorf("r2's steering table has no unreachable default:\n%s", routes)
	}
	before := tp.IP("r2", "rule")
	act, back := restartBy(t, tp.R2, "fwdd", "kill -9")
	if note := act(); note != "" {
		t.Fatal(note)
	}
	for deadline := time.Now().Add(20 * time.Second); !back(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("fwdd not back within 20 s of kill -9")
		}
	}
	if !tp.WaitPing("r1", R4, 20*time.Second) {
		t.Fatalf("no ping through the tunnel after fwdd's restart; rules:\n%s", tp.IP("r2", "rule"))
	}
	out, err := tp.Nettool("r1", 30*time.Second, "ping", "-c", "20", "-i", "20ms", "-json", R4)
	if err != nil {
		t.Fatalf("ping after the restart: %v", err)
	}
	if r := parsePing(t, out); r.Received != r.Sent {
		t.Errorf("ping after fwdd's restart: %d of %d answered", r.Received, r.Sent)
	}
	stats := tp.R2.MustCLI("show services ipsec-vpn ipsec statistics")
	if enc := counter(stats, "Encrypted packets:"); enc < 20 {
		t.Errorf("after fwdd's restart r2 encrypted %d packets, want at least 20 (the traffic went in the clear?):\n%s", enc, stats)
	}
	if after := tp.IP("r2", "rule"); after != before {
		t.Errorf("r2's rules changed across fwdd's restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// checkRouterTraffic: an interface-style set also sees the router's own
// packets (the seed: it monitors Routing Engine traffic). r2 pings r4 from
// its LAN address; the echoes leave ge-0-0-0 through the tunnel (r2's ESP
// counter grows by them) and the replies come back decrypted.
func checkRouterTraffic(t *testing.T, tp *Topology) {
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("needs iputils ping to ping from a chosen source address")
	}
	enc := func() int {
		return counter(tp.R2.MustCLI("show services ipsec-vpn ipsec statistics"), "Encrypted packets:")
	}
	before := enc()
	if out, err := tp.Run("r2", 20*time.Second, "ping", "-I", R2Inside, "-c", "5", "-i", "0.2", "-W", "2", R4); err != nil {
		t.Fatalf("r2's own ping from %s to %s: %v\n%s", R2Inside, R4, err, out)
	}
	if after := enc(); after < before+5 {
		t.Errorf("r2's own pings were not encrypted: %d packets before, %d after", before, after)
	}
}
