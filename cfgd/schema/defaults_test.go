package schema

import "testing"

// TestSchemaDefaults (issue 12 item 8): the defaults the schema declares
// (shown in help, and what kmd runs when a statement is left out) are
// Junos's: the proposal values are the first of Juniper's table "Default
// IKE and IPSec Proposals for Dynamic SA Negotiations" (dh-group group1,
// sha1, 3des-cbc, 3600 s; esp, hmac-sha1-96, 3des-cbc, 28800 s); mode and
// version from the Junos documentation of [edit services ipsec-vpn ike
// policy]. Junos's YANG declares none of these (24.4R1), nor a default
// for perfect-forward-secrecy keys: sitesec's group1 is the first group
// of the same table. kmd/transform's
// TestJunosDefaults holds kmd's runtime defaults to the same table.
func TestSchemaDefaults(t *testing.T) {
	for _, c := range []struct {
		path []string
		want string
	}{
		{[]string{"services", "ipsec-vpn", "ike", "proposal", "dh-group"}, "group1"},
		{[]string{"services", "ipsec-vpn", "ike", "proposal", "authentication-algorithm"}, "sha1"},
		{[]string{"services", "ipsec-vpn", "ike", "proposal", "encryption-algorithm"}, "3des-cbc"},
		{[]string{"services", "ipsec-vpn", "ike", "proposal", "lifetime-seconds"}, "3600"},
		{[]string{"services", "ipsec-vpn", "ike", "policy", "mode"}, "main"},
		{[]string{"services", "ipsec-vpn", "ike", "policy", "version"}, "1"},
		{[]string{"services", "ipsec-vpn", "ipsec", "proposal", "protocol"}, "esp"},
		{[]string{"services", "ipsec-vpn", "ipsec", "proposal", "authentication-algorithm"}, "hmac-sha1-96"},
		{[]string{"services", "ipsec-vpn", "ipsec", "proposal", "encryption-algorithm"}, "3des-cbc"},
		{[]string{"services", "ipsec-vpn", "ipsec", "policy", "perfect-forward-secrecy", "keys"}, "group1"},
		{[]string{"services", "ipsec-vpn", "ipsec", "proposal", "lifetime-seconds"}, "28800"},
		{[]string{"services", "ipsec-vpn", "establish-tunnels"}, "on-traffic"},
	} {
		n := Root
		for _, w := range c.path {
			if n = n.Child(w); n == nil {
				t.Fatalf("%v: no %s", c.path, w)
			}
		}
		if n.Default != c.want {
			t.Errorf("%v: default %q, want Junos's %q", c.path, n.Default, c.want)
		}
	}
}
