package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitesec/sitesec/tests/e2e"
	"github.com/sitesec/sitesec/tests/harness"
)

// Dynamic endpoints (SPEC section 3, "DEP"): several charons, each in its
// own namespace with its own address, identity and network, connect at
// the same time to one sitesec service set whose only IPsec statement is
// an ike-access-profile.
//
//	dc-ID-N (charon N)                      ds-ID (sitesec)
//	in1 -- in0 10.1.N.1/24  eth0 ======= clN 192.168.(100+N).2   ge-0-0-0 192.168.77.2 (local gateway)
//	           192.168.(100+N).1                                 ge-0-0-1 10.2.0.1/24
//
// Each client reaches the local gateway through its own link (routed),
// so every client has a different source address.

// depClients is how many clients connect at once; depRefused is the index
// of an extra client whose network is outside the allowed proxy pair.
const depClients = 3

// depClient is what testdata/swanctl-dep.conf.tmpl reads.
type depClient struct {
	RunDir              string
	Local, Peer, ID     string
	LocalLAN, RemoteLAN string
	PSK                 string
	V1                  bool   // IKEv1 main mode (charon version = 1)
	Cert, CA            string // certificate authentication: file names under x509, x509ca
	ns                  string
	charon              *Charon
	pki                 *e2e.PKI
}

// depSite is what testdata/sitesec-dep.conf.tmpl reads.
type depSite struct {
	Outside, Inside      string
	LocalLAN, ClientNets string
	PSK                  string
	Cert                 bool
	V1                   bool // the profile's ike-policy negotiates IKEv1
}

func TestDynamicEndpoints(t *testing.T) { runDynamicEndpoints(t, false, false) }

func TestDynamicEndpointsCertificates(t *testing.T) { runDynamicEndpoints(t, true, false) }

// TestDynamicEndpointsIKEv1 runs the same clients with IKEv1 (issue 13):
// main mode with the ike-policy's pre-shared key, quick mode within the
// allowed proxy pair (INVALID-ID-INFORMATION for the fourth).
func TestDynamicEndpointsIKEv1(t *testing.T) { runDynamicEndpoints(t, false, true) }

func runDynamicEndpoints(t *testing.T, cert, v1 bool) {
	e2e.RequireNetns(t)
	requireCharon(t)
	t.Parallel()
	id := harness.RandHex(3)
	tp := &Topo{t: t, Site: "ds-" + id, Tool: e2e.NetTool(t)}
	addNS := func(ns string) {
		harness.AddNetns(t, ns)
		tp.IP(ns, "link", "set", "lo", "up")
	}
	addNS(tp.Site)
	harness.Veth(t, tp.Site, "ge-0-0-0", "", "gw0")
	harness.Veth(t, tp.Site, "ge-0-0-1", "", "lan1")
	tp.IP(tp.Site, "addr", "add", SiteOutside+"/24", "dev", "ge-0-0-0")
	tp.IP(tp.Site, "addr", "add", SiteInside+"/24", "dev", "ge-0-0-1")
	for _, d := range []string{"ge-0-0-0", "gw0", "ge-0-0-1", "lan1"} {
		tp.IP(tp.Site, "link", "set", d, "up")
	}
	// Clients 0..depClients-1 are within the allowed proxy pair
	// (10.1.0.0/16); the last one (10.9.0.0/24) is not.
	var clients []*depClient
	for i := 0; i <= depClients; i++ {
		ns := fmt.Sprintf("dc-%s-%d", id, i)
		addNS(ns)
		local, gw := fmt.Sprintf("192.168.%d.1", 100+i), fmt.Sprintf("192.168.%d.2", 100+i)
		lan := fmt.Sprintf("10.1.%d", i)
		if i == depClients {
			lan = "10.9.0"
		}
		harness.Veth(t, ns, "eth0", tp.Site, fmt.Sprintf("cl%d", i))
		harness.Veth(t, ns, "in0", "", "in1")
		tp.IP(ns, "addr", "add", local+"/24", "dev", "eth0")
		tp.IP(ns, "addr", "add", lan+".1/24", "dev", "in0")
		for _, d := range []string{"eth0", "in0", "in1"} {
			tp.IP(ns, "link", "set", d, "up")
		}
		tp.IP(ns, "route", "add", SiteOutside+"/32", "via", gw)
		tp.IP(tp.Site, "addr", "add", gw+"/24", "dev", fmt.Sprintf("cl%d", i))
		tp.IP(tp.Site, "link", "set", fmt.Sprintf("cl%d", i), "up")
		clients = append(clients, &depClient{Local: local, Peer: SiteOutside, ID: fmt.Sprintf("client%d.sitesec.test", i),
			LocalLAN: lan + ".0/24", RemoteLAN: SiteLAN, PSK: psk, V1: v1, ns: ns})
	}

	r := harness.StartIn(t, tp.Site, "--name", "dep")
	t.Cleanup(func() {
		if t.Failed() {
			r.LogTraces(t, "", 60, "kmd")
			r.LogTraces(t, "", 20, "fwdd")
			for _, c := range clients {
				if c.charon != nil {
					t.Logf("charon %s log (end):\n%s", c.Local, c.charon.Log(30))
				}
			}
		}
	})
	site := depSite{Outside: SiteOutside, Inside: SiteInside, LocalLAN: SiteLAN, ClientNets: "10.1.0.0/16", PSK: psk, Cert: cert, V1: v1}
	file := filepath.Join(r.Root, "dep.conf")
	if err := render("sitesec-dep.conf.tmpl", file, site); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(file)
	if cert {
		// The ca-profile exists before its certificate is loaded.
		addrs := []string{SiteOutside}
		for _, c := range clients {
			addrs = append(addrs, c.Local)
		}
		pki := e2e.NewPKI(t, addrs)
		commitOK(t, r, string(conf))
		files := pki.Files(t, r.Root, SiteOutside)
		// pkid may still be applying the commit: retry a few seconds.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			out, err := r.CLI("request security pki ca-certificate load ca-profile ca1 filename " + files.CA)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("CA certificate load: %v\n%s", err, out)
			}
		}
		r.MustCLI("request security pki local-certificate load certificate-id gw filename " + files.Cert + " key " + files.Key)
		for _, c := range clients {
			c.pki = pki
		}
	} else {
		commitOK(t, r, string(conf))
	}

	// Every client initiates at the same time.
	var wg sync.WaitGroup
	errs := make([]error, len(clients))
	for i, c := range clients {
		c.charon = startDEPCharon(tp, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := c.charon.Swanctl("--initiate", "--child", "net", "--timeout", "20")
			if err != nil {
				errs[i] = fmt.Errorf("%v\n%s", err, harness.LastLines(out, 8))
			}
		}()
	}
	wg.Wait()
	for i, c := range clients[:depClients] {
		if errs[i] != nil {
			t.Fatalf("client %s (%s, %s): swanctl --initiate: %v", c.Local, c.ID, c.LocalLAN, errs[i])
		}
	}
	// The client outside the allowed proxy pair is refused (RFC 7296
	// section 2.9: TS_UNACCEPTABLE); it has no CHILD SA.
	refused := clients[depClients]
	if errs[depClients] == nil || strings.Contains(refused.charon.ListSAs(), "INSTALLED") {
		t.Errorf("client %s with network %s outside the allowed proxy pair got a CHILD SA:\n%s", refused.Local, refused.LocalLAN, refused.charon.ListSAs())
	}

	ike, _ := r.CLI(showIKE)
	ipsec, _ := r.CLI(showIPsec)
	t.Logf("--- sitesec: %s\n%s--- sitesec: %s\n%s", showIKE, ike, showIPsec, ipsec)
	for _, c := range clients[:depClients] {
		if !strings.Contains(ike, c.Local) || !strings.Contains(ipsec, c.Local) {
			t.Errorf("client %s is not in sitesec's SA tables", c.Local)
		}
		sas := c.charon.ListSAs()
		if !strings.Contains(sas, "ESTABLISHED") || !strings.Contains(sas, "INSTALLED") {
			t.Errorf("client %s: no IKE and CHILD SA:\n%s", c.Local, sas)
		}
		t.Logf("--- client %s (%s): swanctl --list-sas\n%s", c.Local, c.LocalLAN, sas)
	}
	if strings.Contains(ipsec, refused.Local) {
		t.Errorf("the refused client %s has SAs on sitesec:\n%s", refused.Local, ipsec)
	}
	if t.Failed() {
		return
	}
	// Traffic from every client at once, each through its own CHILD SA
	// (sitesec answers each through the reverse route of its network).
	res := make([]PingResult, depClients)
	for i, c := range clients[:depClients] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := Run(c.ns, 40*time.Second, tp.Tool, "ping", "-json", "-c", "20", "-i", "50ms", "-w", "1s", SiteInside)
			res[i], errs[i] = parsePing(out, err)
		}()
	}
	wg.Wait()
	for i, c := range clients[:depClients] {
		t.Logf("client %s: %d of %d pings answered", c.Local, res[i].Received, res[i].Sent)
		if errs[i] != nil || res[i].Sent == 0 || res[i].Received != res[i].Sent {
			t.Errorf("client %s: %d of %d pings answered: %v", c.Local, res[i].Received, res[i].Sent, errs[i])
		}
	}
	// Nothing from the refused client crosses.
	if out, err := Run(refused.ns, 20*time.Second, tp.Tool, "ping", "-json", "-c", "2", "-i", "100ms", "-w", "1s", SiteInside); err == nil {
		if pr, _ := parsePing(out, nil); pr.Received > 0 {
			t.Errorf("the refused client's pings are answered: %s", out)
		}
	}
	// One client leaves: the others keep their tunnels.
	if out, err := clients[0].charon.Swanctl("--terminate", "--ike", "sitesec", "--timeout", "10"); err != nil {
		t.Fatalf("swanctl --terminate: %v\n%s", err, out)
	}
	if !gone(5*time.Second, func() bool { s, _ := r.CLI(showIPsec); return !strings.Contains(s, clients[0].Local) }) {
		t.Errorf("client %s left, its SAs are still on sitesec", clients[0].Local)
	}
	for _, c := range clients[1:depClients] {
		out, err := Run(c.ns, 20*time.Second, tp.Tool, "ping", "-json", "-c", "5", "-i", "50ms", "-w", "1s", SiteInside)
		if pr, perr := parsePing(out, err); perr != nil || pr.Received != pr.Sent {
			t.Errorf("client %s after another client left: %d of %d pings answered: %v", c.Local, pr.Received, pr.Sent, perr)
		}
	}
}

// commitOK commits conf on r and fails the test unless it completes.
func commitOK(t *testing.T, r *harness.Router, conf string) {
	t.Helper()
	out, err := e2e.Commit(r, conf)
	if err != nil || !strings.Contains(out, "commit complete") {
		t.Fatalf("commit: %v\n%s", err, out)
	}
}

// startDEPCharon starts charon in c's namespace with
// testdata/swanctl-dep.conf.tmpl and loads it; it initiates nothing.
func startDEPCharon(tp *Topo, c *depClient) *Charon {
	t := tp.t
	t.Helper()
	dir, err := os.MkdirTemp("", "swan-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c.RunDir = dir
	if c.pki != nil {
		// swanctl loads credentials from the directories beside its
		// swanctl.conf: x509 (own certificate), x509ca, private.
		f := c.pki.Files(t, dir, c.Local)
		for _, m := range []struct{ from, dir, name string }{{f.Cert, "x509", "client.pem"}, {f.CA, "x509ca", "ca.pem"}, {f.Key, "private", "client.key"}} {
			if err := os.MkdirAll(filepath.Join(dir, m.dir), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(m.from, filepath.Join(dir, m.dir, m.name)); err != nil {
				t.Fatal(err)
			}
		}
		c.Cert, c.CA = "client.pem", "ca.pem"
	}
	if err := render("strongswan.conf.tmpl", filepath.Join(dir, "strongswan.conf"), charonData{RunDir: dir}); err != nil {
		t.Fatal(err)
	}
	if err := render("swanctl-dep.conf.tmpl", filepath.Join(dir, "swanctl.conf"), c); err != nil {
		t.Fatal(err)
	}
	ch := &Charon{t: t, Dir: dir}
	ch.proc = tp.Spawn(c.ns, "env", "STRONGSWAN_CONF="+filepath.Join(dir, "strongswan.conf"),
		"unshare", "--mount", "sh", "-c", "mount --bind "+dir+" /run && exec /usr/lib/ipsec/charon")
	t.Cleanup(ch.Stop)
	sock := filepath.Join(dir, "charon.vici")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("charon %s did not open its vici socket", c.Local)
		}
	}
	if out, err := ch.Swanctl("--load-all", "--file", filepath.Join(dir, "swanctl.conf")); err != nil {
		t.Fatalf("swanctl --load-all: %v\n%s", err, out)
	}
	return ch
}
