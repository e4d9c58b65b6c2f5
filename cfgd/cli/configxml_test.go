package cli

import (
	"strings"
	"testing"
)

// TestConfigXML: configuration mode's show | display xml prints the set
// lines cfgd answers as Junos's XML configuration (issue 12 item 7).
func TestConfigXML(t *testing.T) {
	got, err := configXML([]string{
		"set services ipsec-vpn rule r1 term t1 from source-address 10.0.0.0/24",
		"set services ipsec-vpn rule r1 match-direction input",
		"set services ipsec-vpn ike policy p1 pre-shared-key ascii-text \"$9$eILW7Vg4Zji.goDkqm3nSrl\" ## SECRET-DATA",
		"set services ipsec-vpn ipsec policy e1 proposals [ a b ]",
		"set services ipsec-vpn establish-tunnels immediately",
		"deactivate services ipsec-vpn establish-tunnels",
		"set security pki ca-profile ca1 revocation-check disable",
	}, "[edit]")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<rpc-reply xmlns:junos="http://xml.juniper.net/junos/24.4R1/junos">` + "\n    <configuration>\n        <services>\n            <ipsec-vpn>\n                <rule>\n                    <name>r1</name>\n",
		"<source-address>\n                                <name>10.0.0.0/24</name>\n",
		"<match-direction>input</match-direction>",
		"<ascii-text>$9$eILW7Vg4Zji.goDkqm3nSrl</ascii-text>",
		"<proposals>a</proposals>\n                        <proposals>b</proposals>",
		`<establish-tunnels inactive="inactive">immediately</establish-tunnels>`,
		"<revocation-check>\n                        <disable/>",
		"    <cli>\n        <banner>[edit]</banner>\n    </cli>\n</rpc-reply>",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "secret1") || strings.Contains(got, "SECRET-DATA") {
		t.Errorf("secret or comment in\n%s", got)
	}
}
