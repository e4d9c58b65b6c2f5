package check

import (
	"os"
	"strings"
	"testing"

	"github.com/sitesec/sitesec/cfgd/conf"
)

func seed(t *testing.T) *conf.Node {
	t.Helper()
	b, err := os.ReadFile("../conf/testdata/seed.conf")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.Parse("seed.conf", string(b))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestSeedPasses(t *testing.T) {
	if errs := Run(seed(t)); len(errs) > 0 {
		t.Fatalf("seed config fails:\n%s", Format(errs))
	}
}

// Each case applies set lines to the seed and expects exactly the listed
// messages (as path + message substrings).
func TestRules(t *testing.T) {
	const ss2 = "[edit services service-set ss2 ipsec-vpn-options]"
	const then = "[edit services ipsec-vpn rule static-rule term t1 then]"
	const man = "[edit services ipsec-vpn rule static-rule term manual-sa then manual direction bidirectional]"
	cases := []struct {
		name  string
		lines string
		want  []string // "path|message"
	}{
		{"trace file is a name", `
set services ipsec-vpn traceoptions file ipsec.log
set security pki traceoptions file pki-trace
set system processes cfgd traceoptions file cfgd.log`, nil},
		{"trace file path refused (issue 14 item 5)", `
set services ipsec-vpn traceoptions file /etc/cron.d/x
set security pki traceoptions file ../../etc/shadow
set system processes fwdd traceoptions file sub/fwdd`,
			[]string{"[edit services ipsec-vpn traceoptions file]|" + MsgTraceFile,
				"[edit security pki traceoptions file]|" + MsgTraceFile,
				"[edit system processes fwdd traceoptions file]|" + MsgTraceFile}},
		{"1 passive and header check", `
set services service-set ss2 ipsec-vpn-options passive-mode-tunneling
set services service-set ss2 service-set-options header-integrity-check enable-all`,
			[]string{ss2 + "|" + MsgPassiveHeaderCheck}},
		{"2 shared DEP gateway", `
set services service-set ss2 ipsec-vpn-options local-gateway 192.168.255.2`,
			[]string{"[edit services service-set ss1 ipsec-vpn-options]|" + MsgSharedLocalGateway}},
		{"3 access profile must exist", `
set services service-set ss1 ipsec-vpn-options ike-access-profile nope`,
			[]string{"[edit services service-set ss1 ipsec-vpn-options]|" + MsgAccessProfile}},
		{"4 one DEP set per VRF", `
set routing-instances vrf1 interface sp-1/2/0.1
set services service-set ss1 ipsec-vpn-options local-gateway 192.168.255.2 routing-instance vrf1
set services service-set ss2 ipsec-vpn-options local-gateway 10.0.1.9 routing-instance vrf1
set services service-set ss2 ipsec-vpn-options ike-access-profile ike-profile`,
			[]string{"[edit services service-set ss2]|" + MsgOneSetPerVRF}},
		{"4 one DEP set in the default instance too", `
set services service-set ss2 ipsec-vpn-options local-gateway 10.0.1.9
set services service-set ss2 ipsec-vpn-options ike-access-profile ike-profile`,
			[]string{"[edit services service-set ss2]|" + MsgOneSetPerVRF}},
		{"match-direction is mandatory", `
delete services ipsec-vpn rule static-rule match-direction`,
			[]string{"[edit services ipsec-vpn rule static-rule]|" + MsgMatchDirection}},
		{"family inet service names an interface-style set", `
set interfaces ge-0/0/0 unit 0 family inet service input service-set nope
set interfaces ge-0/0/0 unit 0 family inet service output service-set ss1`,
			[]string{"[edit interfaces ge-0/0/0 unit 0 family inet service input]|" + MsgServiceSetUndefined,
				"[edit interfaces ge-0/0/0 unit 0 family inet service output]|" + MsgServiceSetNotIfStyle}},
		{"4 inside interfaces in one VRF", `
set interfaces sp-1/2/0 unit 3 service-domain inside
set services ipsec-vpn rule static-rule term t1 from ipsec-inside-interface ms-1/2/0.1
set services ipsec-vpn rule static-rule term manual-sa from ipsec-inside-interface sp-1/2/0.3`,
			[]string{"[edit services service-set ss2]|" + MsgInsideVRF}},
		{"5 inside interface of next-hop set", `
set services ipsec-vpn rule rule1 term term1 from ipsec-inside-interface sp-1/2/0.2`,
			[]string{"[edit services ipsec-vpn rule rule1 term term1 from]|" + MsgInsideInterface}},
		{"6 trusted-ca must exist", `
set services service-set ss2 ipsec-vpn-options trusted-ca ca9`,
			[]string{ss2 + "|" + MsgTrustedCA}},
		{"7 dest-port 4500", `
set services service-set ss2 ipsec-vpn-options udp-encapsulate dest-port 4500`,
			[]string{ss2 + " udp-encapsulate]|" + MsgDestPort4500}},
		{"8 gw-interface without the address", `
set services service-set ss2 ipsec-vpn-options local-gateway gw-interface ge-0/0/0.0`,
			[]string{ss2 + "|" + MsgGwInterface}},
		{"8 gw-interface holding the address", `
set services service-set ss2 ipsec-vpn-options local-gateway gw-interface ge-0/0/1.0`, nil},
		{"8 interface or address", `
set services service-set ss2 ipsec-vpn-options local-gateway interface ge-0/0/1.0`,
			[]string{ss2 + "|" + MsgInterfaceOrAddress}},
		{"9 local gateway with rules", `
delete services service-set ss2 ipsec-vpn-options local-gateway`,
			[]string{ss2 + "|" + MsgLocalGatewayRules}},
		{"9 local gateway with rule sets", `
delete services service-set ss2 ipsec-vpn-options local-gateway
delete services service-set ss2 ipsec-vpn-rules
set services ipsec-vpn rule-set rs1 rule static-rule
set services service-set ss2 ipsec-vpn-rule-sets rs1`,
			[]string{ss2 + "|" + MsgLocalGatewayRuleSets}},
		{"9 rule must exist", `
set services service-set ss2 ipsec-vpn-rules nope`,
			[]string{"[edit services service-set ss2]|" + MsgRuleUndefined}},
		{"10 routing instance must exist", `
set services service-set ss2 ipsec-vpn-options local-gateway routing-instance nope`,
			[]string{ss2 + "|" + MsgRoutingInstance}},
		{"11 DF knobs", `
set services service-set ss2 ipsec-vpn-options clear-dont-fragment-bit`,
			[]string{ss2 + "|" + MsgDFClear, ss2 + "|" + MsgDFCopy}},
		{"11 DF knobs in a term", `
set services ipsec-vpn rule static-rule term t1 then set-dont-fragment-bit
set services ipsec-vpn rule static-rule term t1 then copy-dont-fragment-bit`,
			[]string{then + "|" + MsgDFCopy, then + "|" + MsgDFSet}},
		{"12 anti-replay", `
set services service-set ss2 ipsec-vpn-options no-anti-replay`,
			[]string{ss2 + "|" + MsgNoAntiReplay, ss2 + "|" + MsgAntiReplayWindow}},
		{"12 across levels is precedence", `
set services ipsec-vpn rule static-rule term t1 then no-anti-replay`, nil},
		{"13 nat-keepalive with no-nat-traversal", `
set services service-set ss2 ipsec-vpn-options no-nat-traversal`,
			[]string{ss2 + "|" + MsgNATKeepalive}},
		{"13 nat-keepalive with disable-natt", `
set services ipsec-vpn disable-natt`,
			[]string{ss2 + "|" + MsgNATKeepalive}},
		{"14 backup gateway needs dynamic", `
set services ipsec-vpn rule static-rule term manual-sa then backup-remote-gateway 192.0.2.99`,
			[]string{"[edit services ipsec-vpn rule static-rule term manual-sa then]|" + MsgBackupGateway}},
		{"15 DPD needs initiate", `
delete services ipsec-vpn rule static-rule term t1 then initiate-dead-peer-detection`,
			[]string{then + "|" + MsgDPDTerm}},
		{"15 DPD in access profile", `
set access profile ike-profile client * ike dead-peer-detection interval 5`,
			[]string{"[edit access profile ike-profile client * ike]|" + MsgDPDAccess}},
		{"16 IKE policy must exist", `
set services ipsec-vpn rule static-rule term t1 then dynamic ike-policy nope`,
			[]string{then + " dynamic]|" + MsgIKEPolicyUndefined}},
		{"16 IKE policy needs PSK or cert", `
delete services ipsec-vpn ike policy ike-policy1 pre-shared-key`,
			[]string{"[edit services ipsec-vpn rule rule1 term term1 then dynamic]|" + MsgIKEPolicyAuth,
				then + " dynamic]|" + MsgIKEPolicyAuth,
				"[edit access profile ike-profile client * ike]|" + MsgIKEPolicyAuth}},
		{"16 any-remote-id only for DEP", `
set services ipsec-vpn ike policy ike-policy1 remote-id any-remote-id`,
			[]string{"[edit services ipsec-vpn rule rule1 term term1 then dynamic]|" + MsgAnyRemoteIDStatic,
				then + " dynamic]|" + MsgAnyRemoteIDStatic}},
		{"17 IPsec policy must exist", `
set services ipsec-vpn rule static-rule term t1 then dynamic ipsec-policy nope`,
			[]string{then + " dynamic]|" + MsgIPsecPolicyUndefined}},
		{"18 inbound needs outbound", `
delete services ipsec-vpn rule static-rule term manual-sa then manual
set services ipsec-vpn rule static-rule term manual-sa then manual direction inbound protocol esp
set services ipsec-vpn rule static-rule term manual-sa then manual direction inbound spi 300
set services ipsec-vpn rule static-rule term manual-sa then manual direction inbound encryption algorithm des-cbc
set services ipsec-vpn rule static-rule term manual-sa then manual direction inbound encryption key ascii-text 12345678`,
			[]string{"[edit services ipsec-vpn rule static-rule term manual-sa then manual direction outbound]|" + MsgOutbound}},
		{"18 bidirectional excludes", `
set services ipsec-vpn rule static-rule term manual-sa then manual direction outbound protocol esp`,
			[]string{"direction outbound]|" + MsgManualSPI, "direction outbound]|" + MsgESPAuthOrEnc,
				"manual]|" + MsgBidirectional, "direction inbound]|" + MsgInbound}},
		{"18 AH", `
set services ipsec-vpn rule static-rule term manual-sa then manual direction bidirectional protocol ah`,
			[]string{man + "|" + MsgAHEncryption, ss2 + "|" + MsgAHUDPEncap}},
		{"18 bundle", `
set services ipsec-vpn rule static-rule term manual-sa then manual direction bidirectional protocol bundle`,
			[]string{man + "|" + MsgBundleAuxSPI, ss2 + "|" + MsgAHUDPEncap}},
		{"manual AH without udp-encapsulate (issue 13)", `
delete services service-set ss2 ipsec-vpn-options udp-encapsulate
delete services ipsec-vpn rule static-rule term manual-sa then manual direction bidirectional encryption
set services ipsec-vpn rule static-rule term manual-sa then manual direction bidirectional protocol ah`, nil},
		{"manual bundle without udp-encapsulate (issue 13)", `
delete services service-set ss2 ipsec-vpn-options udp-encapsulate
set services ipsec-vpn rule static-rule term manual-sa then manual direction bidirectional protocol bundle
set services ipsec-vpn rule static-rule term manual-sa then manual direction bidirectional auxiliary-spi 16001`, nil},
		{"dynamic AH and udp-encapsulate (issue 13)", `
set services ipsec-vpn ipsec proposal ipsec-proposal1 protocol ah
delete services ipsec-vpn ipsec proposal ipsec-proposal1 encryption-algorithm`,
			[]string{ss2 + "|" + MsgAHUDPEncap}},
		{"dynamic AH over IKEv2 (issue 13)", `
delete services service-set ss2 ipsec-vpn-options udp-encapsulate
set services ipsec-vpn ike policy ike-policy1 version 2
set services ipsec-vpn ipsec proposal ipsec-proposal1 protocol ah
delete services ipsec-vpn ipsec proposal ipsec-proposal1 encryption-algorithm`, nil},
		{"bundle needs IKEv1 (issue 13)", `
delete services service-set ss2 ipsec-vpn-options udp-encapsulate
set services ipsec-vpn ike policy ike-policy1 version 2
set services ipsec-vpn ipsec proposal ipsec-proposal1 protocol bundle`,
			[]string{then + " dynamic]|" + MsgBundleIKEv2, "[edit services ipsec-vpn rule rule1 term term1 then dynamic]|" + MsgBundleIKEv2}},
		{"18 auxiliary-spi with bundle only", `
set services ipsec-vpn rule static-rule term manual-sa then manual direction bidirectional auxiliary-spi 400`,
			[]string{man + "|" + MsgAuxSPIBundleOnly}},
		{"5 key length", `
set services ipsec-vpn rule static-rule term manual-sa then manual direction bidirectional encryption key ascii-text short`,
			[]string{man + " encryption]|Key length must be 16 bytes"}},
		{"5 3des keys", `
set services ipsec-vpn rule static-rule term manual-sa then manual direction bidirectional encryption algorithm 3des-cbc
set services ipsec-vpn rule static-rule term manual-sa then manual direction bidirectional encryption key ascii-text aaaaaaaaaaaaaaaaaaaaaaaa`,
			[]string{man + " encryption]|" + Msg3DESKeys}},
		{"19 ttl and copy", `
set services ipsec-vpn rule static-rule term t1 then copy-ttl-from-inner-ip-header
set services ipsec-vpn rule static-rule term t1 then tos 4
set services ipsec-vpn rule static-rule term t1 then copy-tos-from-inner-ip-header`,
			[]string{then + "|" + MsgTTL, then + "|" + MsgTOS}},
		{"20 proposal must exist", `
set services ipsec-vpn ike policy ike-policy1 proposals nope
set services ipsec-vpn ipsec policy ipsec-policy1 proposals nope`,
			[]string{"[edit services ipsec-vpn ike policy ike-policy1]|" + MsgProposalUndefined,
				"[edit services ipsec-vpn ipsec policy ipsec-policy1]|" + MsgProposalUndefined}},
		{"20 at most 5 IKE proposals", `
set services ipsec-vpn ike proposal p2
set services ipsec-vpn ike proposal p3
set services ipsec-vpn ike proposal p4
set services ipsec-vpn ike proposal p5
set services ipsec-vpn ike proposal p6
set services ipsec-vpn ike policy ike-policy1 proposals [ p2 p3 p4 p5 p6 ]`,
			[]string{"[edit services ipsec-vpn ike policy ike-policy1]|" + MsgTooManyProposals}},
		{"21 any-remote-id", `
set services ipsec-vpn ike policy p9 remote-id any-remote-id
set services ipsec-vpn ike policy p9 remote-id fqdn vpn.example.net`,
			[]string{"[edit services ipsec-vpn ike policy p9 remote-id]|" + MsgAnyRemoteID}},
		{"22 AH encryption", `
set services ipsec-vpn ipsec proposal ipsec-proposal1 protocol ah`,
			[]string{"[edit services ipsec-vpn ipsec proposal ipsec-proposal1]|" + MsgAHEncryption, ss2 + "|" + MsgAHUDPEncap}},
		{"22 GCM and HMAC", `
set services ipsec-vpn ipsec proposal ipsec-proposal1 encryption-algorithm aes-128-gcm`,
			[]string{"[edit services ipsec-vpn ipsec proposal ipsec-proposal1]|" + MsgGCMHMAC}},
		{"23 proposals and proposal-set", `
set services ipsec-vpn ipsec policy ipsec-policy1 proposal-set standard`,
			[]string{"[edit services ipsec-vpn ipsec policy ipsec-policy1]|" + MsgProposalsAndSet}},
		{"25 aggressive DEP", `
set services ipsec-vpn ike policy ike-policy1 mode aggressive`,
			[]string{"[edit access profile ike-profile client * ike]|" + MsgAggressiveDEP}},
		{"25 PSK and ike-policy", `
set access profile ike-profile client * ike pre-shared-key ascii-text secret`,
			[]string{"[edit access profile ike-profile client * ike]|" + MsgPSKAndPolicy}},
		{"25 ipsec-policy must exist", `
set access profile ike-profile client * ike ipsec-policy nope`,
			[]string{"[edit access profile ike-profile client * ike]|" + MsgIPsecPolicyUndefined}},
		{"26 style", `
delete services service-set ss2 interface-service`,
			[]string{"[edit services service-set ss2]|" + MsgStyle}},
		{"26 pool allows no rules", `
set services service-set ss1 next-hop-service service-interface-pool pool1`,
			[]string{"[edit services service-set ss1 next-hop-service]|" + MsgPoolRules}},
		{"28 ca-profile routing-instance", `
set security pki ca-profile ca1 routing-instance nope`,
			[]string{"[edit security pki ca-profile ca1]|" + MsgRoutingInstance}},
		{"service interface must exist", `
set services service-set ss2 interface-service service-interface sp-9/9/9.0`,
			[]string{"[edit services service-set ss2 interface-service]|" + MsgServiceInterface}},
		{"static route next hop", `
set routing-options static route 10.8.0.0/16 next-hop ms-7/0/0.1`,
			[]string{"[edit routing-options static route 10.8.0.0/16]|" + MsgNextHop}},
		{"inactive statements are not checked", `
set services service-set ss2 ipsec-vpn-rules nope
deactivate services service-set ss2 ipsec-vpn-rules nope`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := seed(t)
			if err := conf.ParseSet(cfg, "case", tc.lines); err != nil {
				t.Fatalf("set: %v", err)
			}
			errs := Run(cfg)
			var got []string
			for _, e := range errs {
				got = append(got, e.Path+"|"+e.Msg)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for _, w := range tc.want {
				p, m, _ := strings.Cut(w, "|")
				p = strings.ReplaceAll(p, "] ", " ")
				found := false
				for _, g := range got {
					gp, gm, _ := strings.Cut(g, "|")
					if strings.HasSuffix(gp, p) && strings.HasPrefix(gm, m) {
						found = true
					}
				}
				if !found {
					t.Errorf("missing %q in:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}

func TestFormat(t *testing.T) {
	cfg := seed(t)
	if err := conf.ParseSet(cfg, "", "delete services service-set ss2 ipsec-vpn-options local-gateway"); err != nil {
		t.Fatal(err)
	}
	got := Format(Run(cfg))
	want := "[edit services service-set ss2 ipsec-vpn-options]\n  'local-gateway'\n    Local gateway must be configured with IPSec rules (seed.conf line 93)\nerror: configuration check-out failed\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func BenchmarkCheckSeed(b *testing.B) {
	text, _ := os.ReadFile("../conf/testdata/seed.conf")
	cfg, err := conf.Parse("seed", string(text))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if errs := Run(cfg); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

// Statements accepted but not acted on are named in a warning, once at
// their highest level; a configuration without them has none.
func TestWarnings(t *testing.T) {
	// The seed's only warnings are its group1 IKE and PFS groups.
	wantSeed := "[edit services ipsec-vpn ike proposal ike-proposal1]\n  'dh-group group1'\n    warning: group1 is weak (kept for older peers); prefer aes-cbc or aes-gcm, sha-256 and group14 or stronger\n" +
		"[edit services ipsec-vpn ipsec policy ipsec-policy1 perfect-forward-secrecy]\n  'keys group1'\n    warning: group1 is weak (kept for older peers); prefer aes-cbc or aes-gcm, sha-256 and group14 or stronger"
	if got := strings.Join(FormatWarnings(Warnings(seed(t))), "\n"); got != wantSeed {
		t.Fatalf("seed warns:\n%s\nwant\n%s", got, wantSeed)
	}
	cfg := seed(t)
	if err := conf.ParseSet(cfg, "w.set", "delete services ipsec-vpn ike proposal ike-proposal1 dh-group\ndelete services ipsec-vpn ipsec policy ipsec-policy1 perfect-forward-secrecy"); err != nil {
		t.Fatal(err)
	}
	if err := conf.ParseSet(cfg, "w.set", `set routing-options router-id 10.0.0.2
set protocols ospf area 0.0.0.0 interface lo0.0
set protocols ospf area 0.0.0.0 interface so-0/0/0.0 passive`); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(FormatWarnings(Warnings(cfg)), "\n")
	want := "[edit routing-options]\n  'router-id 10.0.0.2'\n    warning: statement is accepted but not acted on by sitesec: no routing protocol runs\n" +
		"[edit]\n  'protocols'\n    warning: statement is accepted but not acted on by sitesec: sitesec runs no routing protocol; the host's routing reaches the networks\n" +
		"[edit services ipsec-vpn ike proposal ike-proposal1]\n  'dh-group'\n    warning: not set: the default, group1, is weak (kept for older peers); set group14 or stronger"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if errs := Run(cfg); len(errs) > 0 {
		t.Errorf("inert statements fail the commit: %s", Format(errs))
	}
}

// The IKE statements Junos has and no daemon acts on are named in a
// warning (issue 12 item 3); they still commit.
func TestWarningsUnusedIKEStatements(t *testing.T) {
	cfg := seed(t)
	if err := conf.ParseSet(cfg, "w.set", `set services ipsec-vpn rule rule1 term term1 then dynamic natt-install-interval 5
set services ipsec-vpn ike policy ike-policy1 peer-certificate-type pkcs7
set services ipsec-vpn ike policy ike-policy1 respond-bad-spi max-responses 10`); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(FormatWarnings(Warnings(cfg)), "\n")
	for _, want := range []string{
		"[edit services ipsec-vpn rule rule1 term term1 then dynamic]\n  'natt-install-interval 5'\n    warning: statement is accepted but not acted on by sitesec: kmd installs a NAT-T SA at once",
		"[edit services ipsec-vpn ike policy ike-policy1]\n  'peer-certificate-type pkcs7'\n    warning: statement is accepted but not acted on by sitesec: kmd takes X.509 signature certificates only",
		"[edit services ipsec-vpn ike policy ike-policy1]\n  'respond-bad-spi'\n    warning: statement is accepted but not acted on by sitesec: ESP with an unknown SPI is dropped and counted (invalid SPI), never answered with INVALID_SPI",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack\n%s\ngot\n%s", want, got)
		}
	}
	if errs := Run(cfg); len(errs) > 0 {
		t.Errorf("unused statements fail the commit: %s", Format(errs))
	}
}
