package e2e

import (
	"path/filepath"
	"runtime"
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
		{name: "routing-instance", check: func(t *testing.T, tp *Topology) {
			wantShow(t, tp.R2, "show services ipsec-vpn ike security-associations detail", "wan-vrf")
		}},
		{name: "manual-sa", check: func(t *testing.T, tp *Topology) {
			wantShow(t, tp.R2, "show services ipsec-vpn ipsec security-associations", "16000")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runExample(t, c) })
	}
}

func runExample(t *testing.T, c exampleCase) {
	tp := NewTopology(t, false)
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
		for _, d := range []string{"kmd", "fwdd"} {
			t.Logf("r2 %s trace (end):\n%s", d, lastLines(tp.R2.Trace(d), 10))
		}
		sas, _ := tp.R2.CLI("show services ipsec-vpn ipsec security-associations")
		ike, _ := tp.R2.CLI("show services ipsec-vpn ike security-associations")
		stats, _ := tp.R2.CLI("show services ipsec-vpn ipsec statistics")
		t.Fatalf("example %s: r1 does not reach r4 through the tunnel\nr2 IKE SAs:\n%s\nr2 IPsec SAs:\n%s\nr2 statistics:\n%s\nr2 routes:\n%s\nr2 rules:\n%s",
			c.name, ike, sas, stats, tp.IP("r2", "route"), tp.IP("r2", "rule"))
	}
	checkTraffic(t, tp)
	stats := tp.R2.MustCLI("show services ipsec-vpn ipsec statistics")
	if !strings.Contains(stats, "Encrypted packets") {
		t.Errorf("r2 statistics do not show ESP counters:\n%s", stats)
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
