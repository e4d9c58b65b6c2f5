package conf

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

func load(t testing.TB, name string) (*Node, string) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(name, string(b))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return cfg, string(b)
}

func TestSeedRoundTrip(t *testing.T) {
	cfg, _ := load(t, "seed.conf")
	text := cfg.Render()
	again, err := Parse("rendered", text)
	if err != nil {
		t.Fatalf("parse rendered: %v\n%s", err, text)
	}
	if !Equal(cfg, again) {
		t.Fatalf("curly round trip differs:\n%s\n---\n%s", text, again.Render())
	}
	if again.Render() != text {
		t.Fatalf("render not stable")
	}
	set := cfg.RenderSet()
	fromSet := New()
	if err := ParseSet(fromSet, "set", set); err != nil {
		t.Fatalf("parse set: %v\n%s", err, set)
	}
	// Set syntax carries no comments.
	noComments := cfg.Clone()
	noComments.Walk(func(n *Node) { n.Comments = nil })
	if !Equal(noComments, fromSet) {
		t.Fatalf("set round trip differs:\n%s\n---\n%s", noComments.Render(), fromSet.Render())
	}
	if d := Diff(noComments, fromSet); d != "" {
		t.Fatalf("diff of equal trees: %s", d)
	}
}

func TestJunosSecret(t *testing.T) {
	cfg, err := Parse("", `services { ipsec-vpn { ike { policy p { pre-shared-key ascii-text "$9$1HFIyKXxdsgJ-VH.Pfn6lKMXdsZUi5Qnikfz"; ## SECRET-DATA
	} } } }`)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ToPB(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(c.GetIpsecVpn().GetIke().GetPolicies()[0].GetPreSharedKey().GetValue()); got != "testPassWord" {
		t.Fatalf("decoded %q", got)
	}
	if !strings.Contains(cfg.Render(), "$9$1HFIyKXxdsgJ") {
		t.Fatal("rendering changed the secret")
	}
	if _, err := Parse("", `services { ipsec-vpn { ike { policy p { pre-shared-key hexadecimal "$9$1HFIyKXxdsgJ-VH.Pfn6lKMXdsZUi5Qnikfz"; } } } }`); err == nil {
		t.Fatal("$9$ of a non-hex value accepted as hexadecimal")
	}
}

func TestMasked(t *testing.T) {
	cfg, _ := load(t, "seed.conf")
	m := cfg.Masked()
	text := m.Render()
	for _, clear := range []string{"TEST;", "1234567890123456", "s3cret pass", "00112233445566778899aabbccddeeff00112233"} {
		if strings.Contains(text, clear) {
			t.Errorf("masked rendering shows %q", clear)
		}
	}
	if !strings.Contains(text, `pre-shared-key ascii-text "$9$`) && !strings.Contains(text, "pre-shared-key ascii-text $9$") {
		t.Errorf("no $9$ key in\n%s", text)
	}
	if Diff(cfg.Masked(), cfg.Masked()) != "" {
		t.Error("masking is not deterministic")
	}
	back, err := Parse("masked", text)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := ToPB(cfg)
	b, err := ToPB(back)
	if err != nil || !proto.Equal(a, b) {
		t.Fatalf("masked text loads differently: %v", err)
	}
	if !strings.Contains(cfg.Render(), "TEST;") {
		t.Error("Masked changed its receiver")
	}
}

func TestSeedToPB(t *testing.T) {
	cfg, _ := load(t, "seed.conf")
	c, err := ToPB(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ss := c.GetServiceSets()
	if len(ss) != 2 || ss[0].GetName() != "ss1" || ss[0].GetNextHopService().GetInsideServiceInterface() != "sp-1/2/0.1" {
		t.Fatalf("service sets: %v", ss)
	}
	if got := ss[1].GetIpsecVpnOptions().GetLocalGateway().GetRoutingInstance(); got != "default" {
		t.Errorf("local-gateway routing-instance = %q", got)
	}
	if got := ss[1].GetIpsecVpnOptions().GetUdpEncapsulate().GetDestPort(); got != 4565 {
		t.Errorf("dest-port = %d", got)
	}
	if got := ss[1].GetIpsecVpnOptions().GetDontFragment().String(); got != "DF_BIT_COPY" {
		t.Errorf("df = %s", got)
	}
	pol := c.GetIpsecVpn().GetIke().GetPolicies()[0]
	if string(pol.GetPreSharedKey().GetValue()) != "TEST" || pol.GetLocalId().GetIpv4Addr() != "192.168.255.2" {
		t.Errorf("ike policy: %v", pol)
	}
	man := c.GetIpsecVpn().GetRules()[1].GetTerms()[1].GetThen().GetManual().GetDirections()[0]
	if man.GetDirection().String() != "MANUAL_DIRECTION_BIDIRECTIONAL" || len(man.GetAuthenticationKey().GetValue()) != 20 || !man.GetAuthenticationKey().GetHexadecimal() {
		t.Errorf("manual: %v", man)
	}
	ap := c.GetAccessProfiles()[0].GetClientIke()
	if ap.GetAllowedProxyPairs()[0].GetRemote() != "10.0.0.0/24" || ap.GetInterfaceId() != "TEST-intf" {
		t.Errorf("access: %v", ap)
	}
	ca := c.GetPki().GetCaProfiles()
	if ca[0].GetCrlRefreshIntervalHours() != 24 || ca[0].GetEnrollmentUrl() == "" || ca[1].GetRevocationCheck() != 0 {
		t.Errorf("ca profiles (inactive revocation-check must be skipped): %v", ca)
	}
	re := c.GetPki().GetAutoReEnrollment()[0]
	if re.GetProtocol() != "scep" || re.GetCertificateId() != "gw1" || re.GetChallengePassword() != "s3cret pass" {
		t.Errorf("auto-re-enrollment: %v", re)
	}
	if tr := c.GetSystem().GetProcesses()[0]; tr.GetName() != "fwdd" || tr.GetTraceoptions().GetSize() != 10<<20 || tr.GetTraceoptions().GetFile() != "fwdd.log" {
		t.Errorf("processes: %v", tr)
	}
	if r := c.GetRoutingOptions().GetStaticRoutes(); len(r) != 2 || len(r[1].GetNextHops()) != 2 {
		t.Errorf("routes: %v", r)
	}
	if u := c.GetInterfaces()[2].GetUnits(); u[1].GetServiceDomain().String() != "SERVICE_DOMAIN_INSIDE" {
		t.Errorf("units: %v", u)
	}
	if !strings.Contains(cfg.Render(), "## SECRET-DATA") {
		t.Error("secret not flagged")
	}
}

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGolden pins show configuration and | display set output of the seed:
// the rendering is the contract with operators.
func TestGolden(t *testing.T) {
	cfg, _ := load(t, "seed.conf")
	for _, g := range []struct{ file, got string }{
		{"testdata/seed.curly.golden", cfg.Render()},
		{"testdata/seed.set.golden", cfg.RenderSet()},
	} {
		if *update {
			if err := os.WriteFile(g.file, []byte(g.got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(g.file)
		if err != nil {
			t.Fatal(err)
		}
		if g.got != string(want) {
			t.Errorf("%s differs (go test -update to accept):\n%s", g.file, g.got)
		}
	}
}

// TestRenderMasked: what the commit database writes (RenderMasked, no
// copy) is exactly Masked().Render(), for the Junos documentation's
// examples with their secrets.
func TestRenderMasked(t *testing.T) {
	files, err := filepath.Glob("../server/testdata/juniper/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n, err := Parse(f, string(b))
		if err != nil {
			t.Fatal(err)
		}
		got, want := n.RenderMasked(), n.Masked().Render()
		if got != want {
			t.Errorf("%s: RenderMasked differs from Masked().Render():\n%s\n----\n%s", f, got, want)
		}
		var buf bytes.Buffer
		w := bufio.NewWriterSize(&buf, 64) // smaller than the text: written in pieces
		w.WriteString("## header\n")
		n.WriteMasked(w)
		if err := w.Flush(); err != nil || buf.String() != "## header\n"+want {
			t.Errorf("%s: WriteMasked differs from Masked().Render()", f)
		}
		if strings.Contains(string(b), "ascii-text \"") && got == n.Render() {
			t.Errorf("%s: nothing masked", f)
		}
	}
}
