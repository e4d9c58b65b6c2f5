package interop

import "testing"

// V1Sets are the IKEv1 proposal sets of the IKEv1 issue (13): main mode
// and aggressive mode with a pre-shared key, with and without PFS.
var V1Sets = []Set{
	{Name: "v1-main-aes128-sha1-modp2048", IKE: "aes128-sha1-modp2048", ESP: "aes128-sha1-modp2048",
		IKEEnc: "aes-128-cbc", IKEAuth: "sha1", DHGroup: "group14", ESPEnc: "aes-128-cbc", ESPAuth: "hmac-sha1-96", V1: true},
	{Name: "v1-main-3des-sha1-modp1024-nopfs", IKE: "3des-sha1-modp1024", ESP: "3des-sha1",
		IKEEnc: "3des-cbc", IKEAuth: "sha1", DHGroup: "group2", ESPEnc: "3des-cbc", ESPAuth: "hmac-sha1-96", V1: true, NoPFS: true},
	{Name: "v1-aggressive-aes256-sha256-modp2048", IKE: "aes256-sha256-modp2048", ESP: "aes256-sha256-modp2048",
		IKEEnc: "aes-256-cbc", IKEAuth: "sha-256", DHGroup: "group14", ESPEnc: "aes-256-cbc", ESPAuth: "hmac-sha-256-128", V1: true, Aggressive: true},
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
				runCase(t, set, role == "initiator")
			})
		}
	}
}
