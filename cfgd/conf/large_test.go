package conf

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// large builds a gateway with n DEP and n static service sets in set
// syntax: what a busy concentrator carries.
func large(n int) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("set system host-name big-gw")
	p("set services ipsec-vpn ike proposal p1 authentication-method pre-shared-keys")
	p("set services ipsec-vpn ike proposal p1 dh-group group14")
	p("set services ipsec-vpn ipsec proposal ip1 protocol esp")
	p("set services ipsec-vpn ipsec policy ipol perfect-forward-secrecy keys group14")
	p("set services ipsec-vpn ipsec policy ipol proposals ip1")
	for i := 0; i < n; i++ {
		p("set interfaces ms-1/2/0 unit %d service-domain inside", 2*i+1)
		p("set interfaces ms-1/2/0 unit %d service-domain outside", 2*i+2)
		p("set interfaces ge-0/0/%d unit 0 family inet address 10.%d.%d.1/24", i%48, i/250, i%250)
		p("set services ipsec-vpn ike policy pol%d proposals p1", i)
		p("set services ipsec-vpn ike policy pol%d pre-shared-key ascii-text \"key %d\"", i, i)
		p("set services ipsec-vpn rule r%d match-direction input", i)
		p("set services ipsec-vpn rule r%d term t1 from destination-address 172.%d.%d.0/24", i, i/250, i%250)
		p("set services ipsec-vpn rule r%d term t1 then remote-gateway 192.0.%d.%d", i, i/250, 1+i%250)
		p("set services ipsec-vpn rule r%d term t1 then dynamic ike-policy pol%d", i, i)
		p("set services ipsec-vpn rule r%d term t1 then dynamic ipsec-policy ipol", i)
		p("set services service-set ss%d next-hop-service inside-service-interface ms-1/2/0.%d", i, 2*i+1)
		p("set services service-set ss%d next-hop-service outside-service-interface ms-1/2/0.%d", i, 2*i+2)
		p("set services service-set ss%d ipsec-vpn-rules r%d", i, i)
		p("set services service-set ss%d ipsec-vpn-options local-gateway 10.%d.%d.1", i, i/250, i%250)
		p("set routing-options static route 172.%d.%d.0/24 next-hop ms-1/2/0.%d", i/250, i%250, 2*i+1)
	}
	return b.String()
}

func TestLargeRoundTrip(t *testing.T) {
	cfg := New()
	if err := ParseSet(cfg, "large", large(300)); err != nil {
		t.Fatal(err)
	}
	again, err := Parse("rendered", cfg.Render())
	if err != nil || !Equal(cfg, again) {
		t.Fatalf("curly round trip: %v", err)
	}
	fromSet := New()
	if err := ParseSet(fromSet, "set", cfg.RenderSet()); err != nil || !Equal(cfg, fromSet) {
		t.Fatalf("set round trip: %v", err)
	}
	c, err := ToPB(cfg)
	if err != nil || len(c.GetServiceSets()) != 300 || len(c.GetIpsecVpn().GetRules()) != 300 {
		t.Fatalf("ToPB: %v", err)
	}
}

func BenchmarkParseLarge(b *testing.B) {
	cfg := New()
	if err := ParseSet(cfg, "large", large(300)); err != nil {
		b.Fatal(err)
	}
	text := cfg.Render()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := Parse("large", text); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRenderSize: the buffer the renderers reserve holds the whole text
// (no doubling of a multi-MB buffer) and is not far over it (clearing
// fresh memory costs as much), masked secrets and comments included.
func TestRenderSize(t *testing.T) {
	seed, err := os.ReadFile("testdata/seed.conf")
	if err != nil {
		t.Fatal(err)
	}
	big := New()
	if err := ParseSet(big, "large", large(300)); err != nil {
		t.Fatal(err)
	}
	seedCfg, err := Parse("seed", string(seed))
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]*Node{"seed": seedCfg, "large": big} {
		for _, text := range []string{cfg.Render(), cfg.RenderMasked()} {
			size := cfg.renderSize()
			if size < len(text) || 2*size > 3*len(text) {
				t.Errorf("%s: renderSize %d for %d bytes of text", name, size, len(text))
			}
			t.Logf("%s: renderSize %d for %d bytes of text", name, size, len(text))
		}
	}
}
