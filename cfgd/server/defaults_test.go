package server

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/cfgd/conf"
	"github.com/sitesec/sitesec/cfgd/schema"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/services/trace"
)

// defaultsBase leaves out every defaulted statement the plan resolves,
// keeping only the containers that make them apply (an empty IKE and IPsec
// proposal, perfect-forward-secrecy without keys, udp-encapsulate and
// dead-peer-detection without values).
const defaultsBase = `
interfaces {
    sp-1/2/0 {
        unit 0 { family inet; }
        unit 1 { family inet; service-domain inside; }
        unit 2 { family inet; service-domain outside; }
    }
    ge-0/0/0 { unit 0 { family inet { address 192.0.2.1/24; } } }
}
services {
    service-set ss1 {
        next-hop-service { inside-service-interface sp-1/2/0.1; outside-service-interface sp-1/2/0.2; }
        ipsec-vpn-options { local-gateway 192.0.2.1; udp-encapsulate; }
        ipsec-vpn-rules r1;
    }
    ipsec-vpn {
        rule r1 {
            term t1 {
                then {
                    remote-gateway 192.0.2.2;
                    dynamic { ike-policy ike1; ipsec-policy ipsec1; }
                    initiate-dead-peer-detection;
                    dead-peer-detection;
                }
            }
            match-direction input;
        }
        ike {
            proposal p1 { authentication-method pre-shared-keys; }
            policy ike1 { proposals p1; pre-shared-key ascii-text secret; }
        }
        ipsec {
            proposal p2 { description "nothing else"; }
            policy ipsec1 { perfect-forward-secrecy; proposals p2; }
        }
    }
}
`

// TestRuntimeDefaults (issue 12 item 8): for every statement the schema
// declares a default for, what runs when the statement is left out is that
// default. Statements the plan resolves are read from the plan kmd and
// fwdd run; the others name where they are applied or that nothing acts
// on them. A new defaulted statement fails the test until it is listed.
func TestRuntimeDefaults(t *testing.T) {
	n, err := conf.Parse("defaults.conf", defaultsBase)
	if err != nil {
		t.Fatal(err)
	}
	c, err := validate(n)
	if err != nil {
		t.Fatal(err)
	}
	set := c.GetPlan().GetSets()[0]
	tn := set.GetTunnels()[0]
	ike := tn.GetIke()
	if len(ike.GetIkeProposals()) != 1 || len(ike.GetIpsecProposals()) != 1 {
		t.Fatalf("plan %v", ike)
	}
	ikeP, ipsecP := ike.GetIkeProposals()[0], ike.GetIpsecProposals()[0]
	ri := set.GetRoutingInstance()
	if ri == "" {
		ri = "default"
	}
	runtime := map[string]string{
		"services service-set ipsec-vpn-options local-gateway routing-instance": ri,
		"services service-set ipsec-vpn-options tunnel-mtu":                     fmt.Sprint(tn.GetOptions().GetTunnelMtu()),
		"services service-set ipsec-vpn-options udp-encapsulate dest-port":      fmt.Sprint(set.GetUdpEncapPort()),
		"services ipsec-vpn rule term then dead-peer-detection interval":        fmt.Sprint(ike.GetDpdInterval()),
		"services ipsec-vpn rule term then dead-peer-detection threshold":       fmt.Sprint(ike.GetDpdThreshold()),
		"services ipsec-vpn rule term then ttl":                                 fmt.Sprint(tn.GetOptions().GetTtl()),
		"services ipsec-vpn rule term then tos":                                 fmt.Sprint(tn.GetOptions().GetTos()),
		"services ipsec-vpn ike proposal dh-group":                              ikeP.GetDhGroup(),
		"services ipsec-vpn ike proposal authentication-algorithm":              ikeP.GetAuthenticationAlgorithm(),
		"services ipsec-vpn ike proposal encryption-algorithm":                  ikeP.GetEncryptionAlgorithm(),
		"services ipsec-vpn ike proposal lifetime-seconds":                      fmt.Sprint(ike.GetIkeLifetime()),
		"services ipsec-vpn ike policy mode":                                    ike.GetMode(),
		"services ipsec-vpn ike policy version":                                 fmt.Sprint(ike.GetVersion()),
		"services ipsec-vpn ipsec proposal protocol":                            strings.ToLower(strings.TrimPrefix(ipsecP.GetProtocol().String(), "IPSEC_PROTOCOL_")),
		"services ipsec-vpn ipsec proposal authentication-algorithm":            ipsecP.GetAuthenticationAlgorithm(),
		"services ipsec-vpn ipsec proposal encryption-algorithm":                ipsecP.GetEncryptionAlgorithm(),
		"services ipsec-vpn ipsec proposal lifetime-seconds":                    fmt.Sprint(ike.GetIpsecLifetime()),
		"services ipsec-vpn ipsec policy perfect-forward-secrecy keys":          ike.GetPfsGroup(),
		"services ipsec-vpn establish-tunnels":                                  strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(tn.GetEstablish().String(), "PLAN_ESTABLISH_")), "_", "-"),
		// services/trace applies every daemon's traceoptions.
		"system processes process traceoptions file files": fmt.Sprint(trace.DefaultFiles),
		"services ipsec-vpn traceoptions file files":       fmt.Sprint(trace.DefaultFiles),
		"security pki traceoptions file files":             fmt.Sprint(trace.DefaultFiles),
	}
	// The access profile's dead-peer-detection, in a dynamic-endpoint set.
	dep, err := os.ReadFile("testdata/juniper/dynamic-endpoints.conf")
	if err != nil {
		t.Fatal(err)
	}
	dn, err := conf.Parse("dep.conf", strings.Replace(string(dep), "## SECRET-DATA", "## SECRET-DATA\ninitiate-dead-peer-detection;\ndead-peer-detection;", 1))
	if err != nil {
		t.Fatal(err)
	}
	dc, err := validate(dn)
	if err != nil {
		t.Fatal(err)
	}
	depIKE := dc.GetPlan().GetSets()[0].GetDynamicEndpoints().GetIke()
	runtime["access profile client ike dead-peer-detection interval"] = fmt.Sprint(depIKE.GetDpdInterval())
	runtime["access profile client ike dead-peer-detection threshold"] = fmt.Sprint(depIKE.GetDpdThreshold())
	levelOf := func(o *pb.Traceoptions) string {
		l, err := trace.ParseLevel(o.GetLevel())
		if err != nil {
			t.Fatal(err)
		}
		return l.String()
	}
	for _, p := range []string{"system processes process traceoptions level", "services ipsec-vpn traceoptions level", "security pki traceoptions level"} {
		runtime[p] = levelOf(nil)
	}
	// Applied outside the plan and services, by a daemon cfgd cannot
	// import; each names the constant and the test holding it.
	elsewhere := map[string]string{
		"security pki ca-profile enrollment retry":          "pkid/profile DefaultRetry",
		"security pki ca-profile enrollment retry-interval": "pkid/profile DefaultRetryInterval",
	}
	for _, kind := range []string{"scep", "cmpv2", "acme"} {
		elsewhere["security pki auto-re-enrollment "+kind+" certificate-id scep-encryption-algorithm"] = "pkid/profile (SCEPEncryption: des3 when empty)"
		elsewhere["security pki auto-re-enrollment "+kind+" certificate-id scep-digest-algorithm"] = "pkid/profile (sha1 when empty)"
	}
	// Accepted, with their Junos defaults shown in help, but not acted on.
	unused := map[string]bool{
		"services ipsec-vpn rule term then dynamic natt-install-interval": true,
		"services ipsec-vpn ike policy peer-certificate-type":             true,
		"services ipsec-vpn ike policy respond-bad-spi max-responses":     true,
		"access profile client ike respond-bad-spi max-responses":         true,
	}
	seen := 0
	var walk func(*schema.Node)
	walk = func(s *schema.Node) {
		for _, ch := range s.Children {
			walk(ch)
		}
		if s.Default == "" {
			return
		}
		seen++
		p := s.Path()
		if got, ok := runtime[p]; ok {
			if got != s.Default {
				t.Errorf("%s: runs %q, the schema declares %q", p, got, s.Default)
			}
			return
		}
		if elsewhere[p] == "" && !unused[p] {
			t.Errorf("%s (default %q): not in this table; say what runs when it is left out", p, s.Default)
		}
	}
	walk(schema.Root)
	if seen < len(runtime) {
		t.Fatalf("%d defaulted statements, %d probed", seen, len(runtime))
	}
}
