package transform

import (
	"testing"

	"github.com/sitesec/sitesec/kmd/message"
)

// TestJunosDefaults (issue 12 item 8): a proposal that leaves a statement
// out runs Junos's default, the one cfgd's schema declares (Junos
// documentation, [edit services ipsec-vpn ike proposal] and [... ipsec
// proposal]: authentication-algorithm sha1, dh-group group1,
// encryption-algorithm aes-256-cbc, lifetime-seconds 3600; ESP,
// hmac-sha1-96, aes-256-cbc, 28800), not a stronger stand-in.
// cfgd/check's TestSchemaDefaults holds the schema to the same table.
func TestJunosDefaults(t *testing.T) {
	ike, err := IKESuite("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	want := Suite{Protocol: message.ProtocolIKE, Encr: message.Encr3DES, PRF: message.PRFHMACSHA1, Integ: message.IntegHMACSHA196, DH: 1}
	if ike != want {
		t.Errorf("IKE proposal defaults %+v, want %+v", ike, want)
	}
	if gcm, err := IKESuite("aes-256-gcm", "", ""); err != nil || gcm.PRF != message.PRFHMACSHA2256 || gcm.Integ != message.IntegNone || gcm.DH != 1 {
		t.Errorf("AEAD IKE proposal defaults %+v, %v (PRF sha-256, no integrity, group1)", gcm, err)
	}
	esp, err := ESPSuite("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if esp.Encr != message.Encr3DES || esp.EncrKeyBits != 0 || esp.Integ != message.IntegHMACSHA196 || esp.DH != 0 {
		t.Errorf("IPsec proposal defaults %+v (want 3des-cbc, hmac-sha1-96, no PFS)", esp)
	}
	if DefaultIKELifetime != 3600 || DefaultIPsecLifetime != 28800 {
		t.Errorf("lifetimes %d, %d", DefaultIKELifetime, DefaultIPsecLifetime)
	}
}
