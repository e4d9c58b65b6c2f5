package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/tests/e2e"
	"github.com/sitesec/sitesec/tests/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	e2e.CleanupTool()
	os.Exit(code)
}

// siteData is what testdata/sitesec.conf.tmpl reads.
type siteData struct {
	Outside, Peer, Inside     string
	LocalLAN, RemoteLAN       string
	PSK                       string
	Set                       Set
	Establish                 string // immediately or responder-only
	DPDInterval, DPDThreshold int
	Trace                     bool
}

// Commands whose output is the evidence of each case.
const (
	showIKE   = "show services ipsec-vpn ike security-associations"
	showIPsec = "show services ipsec-vpn ipsec security-associations"
)

// Case is one proposal set with sitesec in one role.
type Case struct {
	t    *testing.T
	tp   *Topo
	r    *harness.Router
	c    *Charon
	set  Set
	init bool // sitesec initiates
}

// TestStrongSwan runs every proposal set of the kmd interop issue with
// sitesec as initiator and as responder against charon.
func TestStrongSwan(t *testing.T) {
	for _, set := range Sets {
		for _, role := range []string{"initiator", "responder"} {
			t.Run(set.Name+"/"+role, func(t *testing.T) {
				runCase(t, set, role == "initiator")
			})
		}
	}
}

func runCase(t *testing.T, set Set, initiator bool) {
	tp := NewTopo(t)
	k := &Case{t: t, tp: tp, set: set, init: initiator}
	k.r = harness.StartIn(t, tp.Site, "--name", "ss")
	k.c = tp.StartCharon(set)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log (end):\n%s", k.c.Log(40))
			t.Logf("kmd trace (end):\n%s", lastLines(k.r.Trace("kmd"), 40))
			t.Logf("fwdd trace (end):\n%s", lastLines(k.r.Trace("fwdd"), 20))
		}
	})
	k.commit()
	k.up("initial")
	k.evidence("up")
	k.traffic()
}

// commit renders testdata/sitesec.conf.tmpl for the case and commits it.
func (k *Case) commit() {
	t := k.t
	t.Helper()
	est := "responder-only"
	if k.init {
		est = "immediately"
	}
	d := siteData{Outside: SiteOutside, Peer: SwanOutside, Inside: SiteInside, LocalLAN: SiteLAN, RemoteLAN: SwanLAN,
		PSK: psk, Set: k.set, Establish: est, DPDInterval: 2, DPDThreshold: 2, Trace: true}
	file := filepath.Join(k.r.Root, "interop.conf")
	if err := render("sitesec.conf.tmpl", file, d); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e2e.Commit(k.r, string(conf))
	if err != nil || !strings.Contains(out, "commit complete") {
		t.Fatalf("commit of the interop configuration: %v\n%s", err, out)
	}
}

// up waits until both sides have the IKE SA and the CHILD SA and a ping
// crosses; as responder, charon initiates first.
func (k *Case) up(when string) {
	t := k.t
	t.Helper()
	if !k.init {
		if out, err := k.c.Swanctl("--initiate", "--child", "net", "--timeout", "20"); err != nil {
			t.Fatalf("%s: swanctl --initiate: %v\n%s", when, err, out)
		}
	}
	var sas, ike, ipsec string
	for deadline := time.Now().Add(25 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		sas = k.c.ListSAs()
		ike, _ = k.r.CLI(showIKE)
		ipsec, _ = k.r.CLI(showIPsec)
		if strings.Contains(sas, "ESTABLISHED") && strings.Contains(sas, "INSTALLED") &&
			strings.Contains(ike, SwanOutside) && strings.Contains(ipsec, SwanOutside) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: SAs not up within 25s\nswanctl --list-sas:\n%s\n%s:\n%s\n%s:\n%s", when, sas, showIKE, ike, showIPsec, ipsec)
		}
	}
	if !k.tp.WaitPing(10 * time.Second) {
		t.Fatalf("%s: SAs up but no ping crosses\nswanctl --list-sas:\n%s\n%s:\n%s", when, sas, showIPsec, ipsec)
	}
}

// evidence logs both sides' view of the SAs.
func (k *Case) evidence(when string) {
	ike, _ := k.r.CLI(showIKE)
	ipsec, _ := k.r.CLI(showIPsec)
	k.t.Logf("=== %s, sitesec %s: %s\n--- charon: swanctl --list-sas\n%s--- sitesec: %s\n%s--- sitesec: %s\n%s",
		k.set.Name, role(k.init), when, k.c.ListSAs(), showIKE, ike, showIPsec, ipsec)
}

func role(init bool) string {
	if init {
		return "initiator"
	}
	return "responder"
}

// traffic checks a ping and a 1 MiB TCP echo across the tunnel.
func (k *Case) traffic() {
	t := k.t
	t.Helper()
	r, err := k.tp.Ping(10, 50*time.Millisecond)
	if err != nil || r.Received != r.Sent {
		t.Errorf("ping across: %d of %d answered: %v", r.Received, r.Sent, err)
	}
	k.tp.Spawn(k.tp.Site, k.tp.Tool, "serve", "-l", SiteInside+":5001")
	var out string
	for i := 0; i < 5; i++ {
		out, err = Run(k.tp.Swan, 30*time.Second, k.tp.Tool, "tcp", "-n", fmt.Sprint(1<<20), "-w", "20s", SiteInside+":5001")
		if err == nil {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("TCP transfer across: %v %s", err, out)
	}
	t.Logf("TCP %s -> %s: %s", SwanInside, SiteInside, strings.TrimSpace(out))
}
