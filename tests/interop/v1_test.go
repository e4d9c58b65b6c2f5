package interop

import (
	"strings"
	"testing"

	"github.com/sitesec/sitesec/tests/e2e"
	"github.com/sitesec/sitesec/tests/harness"
)

// V1Sets are the IKEv1 proposal sets of the IKEv1 issue (13): main mode
// and aggressive mode with a pre-shared key, with and without PFS.
var V1Sets = []Set{
	{Name: "v1-main-aes128-sha1-modp2048", IKE: "aes128-sha1-modp2048", ESP: "aes128-sha1-modp2048",
		IKEEnc: "aes-128-cbc", IKEAuth: "sha1", DHGroup: "group14", ESPEnc: "aes-128-cbc", ESPAuth: "hmac-sha1-96", V1: true},
	{Name: "v1-main-3des-sha1-modp1024-nopfs", IKE: "3des-sha1-modp1024", ESP: "3des-sha1",
		IKEEnc: "3des-cbc", IKEAuth: "sha1", DHGroup: "group2", ESPEnc: "3des-cbc", ESPAuth: "hmac-sha1-96", V1: true, NoPFS: true},
	{Name: "v1-aggressive-aes256-sha256-modp2048", IKE: "aes256-sha256-modp2048", ESP: "aes256-sha256-modp2048",
		IKEEnc: "aes-256-cbc", IKEAuth: "sha-256", DHGroup: "group14", ESPEnc: "aes-256-cbc", ESPAuth: "hmac-sha-256-128", V1: true, Aggressive: true},
	// RSA certificates (RFC 2409 section 5.1), distinguished-name
	// identities.
	{Name: "v1-main-rsa-aes128-sha1-modp2048", IKE: "aes128-sha1-modp2048", ESP: "aes128-sha1-modp2048",
		IKEEnc: "aes-128-cbc", IKEAuth: "sha1", DHGroup: "group14", ESPEnc: "aes-128-cbc", ESPAuth: "hmac-sha1-96", V1: true, Cert: true},
	{Name: "v1-aggressive-rsa-aes256-sha256-modp2048", IKE: "aes256-sha256-modp2048", ESP: "aes256-sha256-modp2048",
		IKEEnc: "aes-256-cbc", IKEAuth: "sha-256", DHGroup: "group14", ESPEnc: "aes-256-cbc", ESPAuth: "hmac-sha-256-128", V1: true, Aggressive: true, Cert: true},
	// ECDSA P-256 certificates (RFC 4754 method 9).
	{Name: "v1-main-ecdsa256-aes128-sha256-modp2048", IKE: "aes128-sha256-modp2048", ESP: "aes128-sha256-modp2048",
		IKEEnc: "aes-128-cbc", IKEAuth: "sha-256", DHGroup: "group14", ESPEnc: "aes-128-cbc", ESPAuth: "hmac-sha-256-128", V1: true, Cert: true, CertKey: "ecdsa-p256"},
}

// TestStrongSwanIKEv1 runs the IKEv1 sets with sitesec as initiator and
// as responder against charon (kernel-libipsec, so always NAT-T with
// UDP-encapsulated ESP): establishment, ping and TCP, phase 2 and phase 1
// rekeys by charon under traffic, deletes from both sides, DPD.
func TestStrongSwanIKEv1(t *testing.T) {
	for _, set := range V1Sets {
		for _, role := range []string{"initiator", "responder"} {
			t.Run(set.Name+"/"+role, func(t *testing.T) {
				t.Parallel()
				if set.Cert {
					set.PKI = e2e.NewPKIKeys(t, []string{SiteOutside, SwanOutside}, set.CertKey)
				}
				runCase(t, set, role == "initiator")
			})
		}
	}
}

// TestStrongSwanIKEv1NAT runs main mode with sitesec behind a source NAT
// (RFC 3947, RFC 3948): sitesec finds itself behind the NAT, floats to
// port 4500, sends ESP in UDP and NAT keepalives, and traffic crosses.
func TestStrongSwanIKEv1NAT(t *testing.T) {
	set := V1Sets[0]
	set.Name, set.NAT = "v1-main-aes128-sha1-modp2048-nat", true
	tp := NewTopo(t)
	tp.NATSite()
	k := &Case{t: t, tp: tp, set: set, init: true}
	k.r = harness.StartIn(t, tp.Site, "--name", "ss")
	k.c = tp.StartCharon(set)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log (end):\n%s", k.c.Log(40))
			k.r.LogTraces(t, "", 40, "kmd")
		}
	})
	k.commit(0, 0)
	k.up("behind NAT")
	k.traffic()
	k.evidence("behind NAT")
	sas := k.c.ListSAs()
	if !strings.Contains(sas, "remote '"+SiteOutside+"' @ "+SiteNAT+"[") {
		t.Errorf("charon does not see sitesec at the NAT's address %s:\n%s", SiteNAT, sas)
	}
	ike, _ := k.r.CLI(showIKE + " detail")
	ipsec, _ := k.r.CLI(showIPsec + " detail")
	t.Logf("sitesec: %s detail\n%s\nsitesec: %s detail\n%s", showIKE, ike, showIPsec, ipsec)
	if !strings.Contains(ike, "NAT traversal: Detected") || !strings.Contains(ipsec, "NATT keepalive interval: 5") {
		t.Errorf("sitesec does not show itself behind the NAT (keepalives every 5 s)")
	}
	if !strings.Contains(sas, "TUNNEL-in-UDP") {
		t.Errorf("charon's CHILD SA is not UDP-encapsulated:\n%s", sas)
	}
}
