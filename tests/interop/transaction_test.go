package interop

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/tests/e2e"
)

// spis are the SPIs of `show services ipsec-vpn ipsec security-associations`.
var spiRe = regexp.MustCompile(`(?m)^\s+(inbound|outbound)\s+(\d+)`)

func spis(show string) string {
	var out []string
	for _, m := range spiRe.FindAllStringSubmatch(show, -1) {
		out = append(out, m[1]+" "+m[2])
	}
	return strings.Join(out, ", ")
}

// TestCommitIsOneTransaction: with a tunnel to charon up, a candidate kmd
// cannot run (a des-cbc proposal for an IKEv2 CHILD SA, which kmd's
// IKEv2 does not offer; commit check only warns about des) fails commit
// check and commit with an error naming the statement; nothing is recorded
// and the SAs stay. A candidate every daemon accepts but fwdd cannot apply
// (its inside TUN device's name is taken by another link) fails the
// commit, and every daemon goes back to the previous configuration.
func TestCommitIsOneTransaction(t *testing.T) {
	t.Parallel()
	k := newCase(t, Sets[0], true, 0)
	k.up("initial")
	commits := func() string { return k.r.MustCLI("show system commit") }
	before, ipsecBefore := commits(), k.r.MustCLI(showIPsec)
	t.Logf("before:\n--- show system commit\n%s--- %s\n%s", before, showIPsec, ipsecBefore)

	refused := "configure\n" +
		"set services ipsec-vpn ipsec proposal des-prop protocol esp\n" +
		"set services ipsec-vpn ipsec proposal des-prop authentication-algorithm hmac-sha1-96\n" +
		"set services ipsec-vpn ipsec proposal des-prop encryption-algorithm des-cbc\n" +
		"set services ipsec-vpn ipsec policy ipsec-charon proposals des-prop\n"
	for _, cmd := range []string{"commit check", "commit"} {
		out, err := e2e.CLIScript(k.r, refused+cmd+"\n", 30*time.Second)
		t.Logf("%s of a candidate kmd refuses:\n%s", cmd, out)
		if err == nil || !strings.Contains(out, "[edit services ipsec-vpn ipsec proposal des-prop]") ||
			!strings.Contains(out, "kmd: encryption-algorithm des-cbc is not supported") || !strings.Contains(out, "error: configuration check-out failed") ||
			strings.Contains(out, "commit complete") || strings.Contains(out, "check succeeds") {
			t.Fatalf("%s: want the kmd refusal naming the proposal and no success (cli error %v)", cmd, err)
		}
	}
	if after := commits(); after != before {
		t.Fatalf("a refused commit was recorded:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if after := k.r.MustCLI(showIPsec); spis(after) != spis(ipsecBefore) || spis(after) == "" {
		t.Fatalf("the SAs changed after a refused commit:\nbefore:\n%s\nafter:\n%s", ipsecBefore, after)
	}

	// fwdd cannot create ms-0/0/0.3's TUN device: a link has its name.
	k.tp.IP(k.tp.Site, "link", "add", "ms-0-0-0u3", "type", "veth", "peer", "name", "ms-taken")
	failing := "configure\n" +
		"set interfaces ms-0/0/0 unit 3 service-domain inside\n" +
		"set services service-set second interface-service service-interface ms-0/0/0.3\n" +
		"set services service-set second ipsec-vpn-rules to-charon-2\n" +
		"set services service-set second ipsec-vpn-options local-gateway " + SiteOutside + "\n" +
		"set services ipsec-vpn rule to-charon-2 term t from destination-address 10.77.0.0/24\n" +
		"set services ipsec-vpn rule to-charon-2 term t then remote-gateway 192.168.77.9\n" +
		"set services ipsec-vpn rule to-charon-2 term t then dynamic ike-policy ike-charon\n" +
		"set services ipsec-vpn rule to-charon-2 match-direction input\n" +
		"commit\n"
	out, err := e2e.CLIScript(k.r, failing, 30*time.Second)
	t.Logf("commit of a candidate fwdd cannot apply:\n%s", out)
	if err == nil || !strings.Contains(out, "error: fwdd:") || strings.Contains(out, "commit complete") ||
		!strings.Contains(out, "the previous configuration is running again") {
		t.Fatalf("want fwdd's apply error, the revert and no commit complete (cli error %v)", err)
	}
	after := commits()
	t.Logf("after:\n--- show system commit\n%s", after)
	if !strings.Contains(after, "not applied: reverted") {
		t.Errorf("show system commit does not show the revert:\n%s", after)
	}
	conf := k.r.MustCLI("show configuration services")
	if strings.Contains(conf, "service-set second") {
		t.Errorf("the configuration not applied is still the committed one:\n%s", conf)
	}
	if !k.tp.WaitPing(10 * time.Second) {
		t.Errorf("the tunnel carries no traffic after the revert\n%s", k.r.MustCLI(showIPsec))
	}
}
