// Package check runs the commit checks of SPEC section 2 over a
// configuration tree. It reports every failure at once, each with the
// hierarchy path Junos prints above it, the offending statement and the
// source position, using Junos's own message where SPEC quotes one.
package check

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/sitesec/sitesec/cfgd/conf"
	"github.com/sitesec/sitesec/cfgd/schema"
)

// Messages Junos prints verbatim (SPEC section 2, [Yx]).
const (
	MsgLocalGatewayRules     = "Local gateway must be configured with IPSec rules"
	MsgLocalGatewayRuleSets  = "Local gateway must be configured with IPSec rule sets"
	MsgRuleUndefined         = "Referenced IPSec VPN rule must be defined under [edit services ipsec-vpn rule]"
	MsgAccessProfile         = "referenced ike access profile must be defined"
	MsgGwInterface           = "gw-interface must be an IFL and Interface with ip address must be defined in the interfaces hierarchy"
	MsgInterfaceOrAddress    = "Either interface or address can be defined for local-gateway"
	MsgRoutingInstance       = "Referenced routing-instance must be defined"
	MsgDFClear               = "'clear' option can not be configured if either of 'copy' or 'set' is already configured"
	MsgDFCopy                = "'copy' option can not be configured if either of 'clear' or 'set' is already configured"
	MsgDFSet                 = "'set' option can not be configured if either of 'clear' or 'copy' is already configured"
	MsgNoAntiReplay          = "no-anti-replay must not be defined"
	MsgAntiReplayWindow      = "anti-replay-window-size must not be defined"
	MsgNATKeepalive          = "no-nat-traversal or disable-natt must not be defined"
	MsgBackupGateway         = "Backup remote gateway can be configured with dynamic security associations only"
	MsgDPDTerm               = "[ edit services ipsec-vpn rule <*> term <*> then initiate-dead-peer-detection ] must be set"
	MsgDPDAccess             = "[ edit access profile <*> client <*> ike initiate-dead-peer-detection ] must be set"
	MsgIKEPolicyUndefined    = "Referenced IKE policy must be defined under [edit services ipsec-vpn ike policy]"
	MsgIKEPolicyAuth         = "Either pre-shared-key or local-certificate must be configured in the referencd ike policy"
	MsgIPsecPolicyUndefined  = "Referenced IPSec policy must be defined under [edit services ipsec-vpn ipsec policy]"
	MsgOutbound              = "Outbound block must be configured"
	MsgInbound               = "Inbound block must be configured"
	MsgTTL                   = "TTL value cannot be configured with copy-ttl-from-inner-ip-header option"
	MsgTOS                   = "TOS value cannot be configured with copy-tos-from-inner-ip-header option"
	MsgProposalUndefined     = "Referenced proposal is not defined"
	MsgAnyRemoteID           = "Specific 'remote-id' statement must not be configured when 'any-remote-id' statement is configured."
	MsgAHEncryption          = "Encryption algorithm must not be defined for AH"
	MsgGCMHMAC               = "HMAC Authentication is not compatible with AES-GCM"
	MsgProposalsAndSet       = "IPSec policy must not have both proposals and proposal-set configured"
	MsgAggressiveDEP         = "Aggressive mode is not supported for dynamic endpoints"
	MsgCheckoutFailed        = "configuration check-out failed"
	MsgRuleSetUndefined      = "Referenced IPSec VPN rule set must be defined under [edit services ipsec-vpn rule-set]"
	MsgPassiveHeaderCheck    = "passive-mode-tunneling can not be configured with header-integrity-check"
	MsgSharedLocalGateway    = "local-gateway of a service set with ike-access-profile must not be used by another service set"
	MsgOneSetPerVRF          = "Only one service set with ike-access-profile is allowed per routing instance"
	MsgInsideVRF             = "ipsec-inside-interface of all terms of a service set must be in the same routing instance"
	MsgInsideInterface       = "ipsec-inside-interface must be the inside-service-interface of the next-hop service set"
	MsgTrustedCA             = "Referenced ca-profile must be defined under [edit security pki ca-profile]"
	MsgDestPort4500          = "udp-encapsulate dest-port must not be 4500 (the NAT-T port)"
	MsgStyle                 = "Either interface-service or next-hop-service must be configured"
	MsgPoolRules             = "service-interface-pool can not be configured with IPSec rules"
	MsgServiceInterface      = "Referenced service interface must be defined under [edit interfaces]"
	MsgAnyRemoteIDStatic     = "any-remote-id is allowed only for dynamic endpoints (ike-access-profile)"
	MsgTooManyProposals      = "A maximum of 5 proposals can be configured in an IKE policy"
	MsgIKEProposalsAndSet    = "IKE policy must not have both proposals and proposal-set configured"
	MsgPSKAndPolicy          = "pre-shared-key and ike-policy can not both be configured"
	MsgBidirectional         = "bidirectional can not be configured with inbound or outbound"
	MsgAHAuthentication      = "Authentication must be configured for AH"
	MsgESPAuthOrEnc          = "Either authentication or encryption must be configured for ESP"
	MsgBundleAuxSPI          = "auxiliary-spi must be configured for bundle"
	MsgBundleAuthEnc         = "Both authentication and encryption must be configured for bundle"
	MsgAuxSPIBundleOnly      = "auxiliary-spi can be configured with bundle only"
	MsgAHUDPEncap            = "udp-encapsulate cannot be used with protocol ah or bundle: AH authenticates the outer IP header, and AH has no UDP encapsulation (RFC 3948 is ESP only)"
	MsgBundleIKEv2           = "protocol bundle needs IKE version 1: IKEv2 negotiates no AH + ESP bundles (RFC 7296)"
	MsgManualSPI             = "spi must be configured"
	MsgManualProtocol        = "protocol must be configured"
	MsgManualKey             = "key must be configured"
	MsgNextHop               = "next-hop must be an IP address or a configured interface unit (name.unit)"
	MsgCAProfileUndefined    = "Referenced ca-profile must be defined"
	MsgInterfaceUndefined    = "Referenced interface must be defined under [edit interfaces]"
	Msg3DESKeys              = "3des key: bytes 1-8 must differ from bytes 9-16, and bytes 9-16 must equal bytes 17-24"
	MsgRemoteGatewayRequired = "remote-gateway must be configured"
	MsgTraceFile             = "Trace file must be a file name (no '/' or '..'): trace files live in /var/log"
	MsgMatchDirection        = "Missing mandatory statement: 'match-direction'"
	MsgServiceSetUndefined   = "Referenced service-set must be defined under [edit services service-set]"
	MsgServiceSetNotIfStyle  = "Referenced service-set must be an interface-service service set"
)

// Run checks cfg (inactive statements are ignored) and returns every
// failure, in hierarchy order, or nil.
func Run(cfg *conf.Node) conf.Errors {
	c := &checker{cfg: cfg}
	c.serviceSets()
	c.rules()
	c.ike()
	c.ipsec()
	c.access()
	c.pki()
	c.routing()
	c.traceoptions()
	c.serviceFamily()
	return c.errs
}

// serviceFamily checks family inet service input|output service-set: the
// set must exist and be interface-style (a next-hop set is reached by
// routing to its inside interface, not applied to an interface).
func (c *checker) serviceFamily() {
	for _, ifd := range c.cfg.Get("interfaces").All("interface") {
		for _, u := range ifd.All("unit") {
			svc := u.Get("family", "inet", "service")
			for _, dir := range []string{"input", "output"} {
				at := svc.Get(dir)
				for _, ref := range at.All("service-set") {
					ss := c.cfg.Get("services", "service-set", ref.Key)
					switch {
					case ss == nil:
						c.fail(at, ref, MsgServiceSetUndefined)
					case ss.Get("interface-service") == nil:
						c.fail(at, ref, MsgServiceSetNotIfStyle)
					}
				}
			}
		}
	}
}

// Warnings returns what commit check warns about without failing: the
// statements sitesec accepts but does not act on (schema Inert), each
// once at its highest configured level, and weak transforms (weak.go).
func Warnings(cfg *conf.Node) conf.Errors {
	var out conf.Errors
	var walk func(n *conf.Node)
	walk = func(n *conf.Node) {
		for _, ch := range n.Children {
			if ch.Inactive {
				continue
			}
			if why := ch.Schema.Inert; why != "" {
				out = append(out, &conf.Error{Pos: ch.Pos, Path: n.EditPath(), Stmt: ch.Statement(),
					Msg: "statement is accepted but not acted on by sitesec: " + why})
				continue
			}
			walk(ch)
		}
	}
	walk(cfg)
	return append(out, weakWarnings(cfg)...)
}

// FormatWarnings renders warnings the way Junos prints commit warnings:
//
//	[edit protocols]
//	  'ospf'
//	    warning: statement is accepted but not acted on by sitesec: ...
func FormatWarnings(ws conf.Errors) []string {
	var out []string
	for _, w := range ws {
		if w.Path != "" {
			out = append(out, w.Path)
		}
		if w.Stmt != "" {
			out = append(out, "  '"+w.Stmt+"'")
		}
		out = append(out, "    warning: "+w.Msg)
	}
	return out
}

// Format renders errors the way Junos prints a failed commit:
//
//	[edit services service-set ss1 ipsec-vpn-options]
//	  'local-gateway'
//	    Local gateway must be configured with IPSec rules
//	error: configuration check-out failed
func Format(errs conf.Errors) string {
	var b strings.Builder
	for _, e := range errs {
		if e.Path != "" {
			b.WriteString(e.Path + "\n")
		}
		if e.Stmt != "" {
			b.WriteString("  '" + e.Stmt + "'\n")
		}
		msg := e.Msg
		if e.Pos.Line > 0 {
			if e.Pos.File != "" {
				msg += fmt.Sprintf(" (%s line %d)", e.Pos.File, e.Pos.Line)
			} else {
				msg += fmt.Sprintf(" (line %d)", e.Pos.Line)
			}
		}
		b.WriteString("    " + msg + "\n")
	}
	b.WriteString("error: " + MsgCheckoutFailed + "\n")
	return b.String()
}

type checker struct {
	cfg  *conf.Node
	errs conf.Errors
}

// fail records msg for statement stmt (a node, or a string naming a
// statement that is missing) at the level of node at.
func (c *checker) fail(at *conf.Node, stmt any, msg string) {
	e := &conf.Error{Path: at.EditPath(), Pos: at.Pos, Msg: msg}
	switch s := stmt.(type) {
	case *conf.Node:
		e.Stmt = s.Statement()
		e.Pos = s.Pos
	case string:
		e.Stmt = s
	}
	c.errs = append(c.errs, e)
}

// failBelow is fail for a level that may not exist: path words below at.
func (c *checker) failBelow(at *conf.Node, below []string, stmt, msg string) {
	path := strings.TrimSuffix(at.EditPath(), "]")
	if path == "[edit" && len(below) == 0 {
		path += "]"
	} else {
		path += " " + strings.Join(below, " ") + "]"
	}
	c.errs = append(c.errs, &conf.Error{Path: path, Pos: at.Pos, Stmt: stmt, Msg: msg})
}

func (c *checker) services() *conf.Node { return c.cfg.Get("services") }
func (c *checker) ipsecVPN() *conf.Node { return c.cfg.Get("services", "ipsec-vpn") }
func (c *checker) rule(n string) *conf.Node {
	return c.cfg.Get("services", "ipsec-vpn", "rule", n)
}
func (c *checker) ikePolicy(n string) *conf.Node {
	return c.cfg.Get("services", "ipsec-vpn", "ike", "policy", n)
}
func (c *checker) ipsecPolicy(n string) *conf.Node {
	return c.cfg.Get("services", "ipsec-vpn", "ipsec", "policy", n)
}

// ifl returns the interfaces unit for "name.unit", or nil.
func (c *checker) ifl(name string) *conf.Node {
	i := strings.LastIndexByte(name, '.')
	if i < 0 { // a service interface written without its unit: unit 0
		name, i = name+".0", len(name)
	}
	return c.cfg.Get("interfaces", name[:i], "unit", name[i+1:])
}

// vrf returns the routing instance that holds interface ifl ("" for the
// default instance).
func (c *checker) vrf(ifl string) string {
	for _, ri := range c.cfg.Get("routing-instances").All("instance") {
		for _, i := range ri.All("interface") {
			if i.Key == ifl {
				return ri.Key
			}
		}
	}
	return ""
}

func (c *checker) routingInstance(n string) bool {
	return n == "default" || c.cfg.Get("routing-instances", n) != nil
}

// dfAndAntiReplay checks rules 11 and 12 at one level.
func (c *checker) dfAndAntiReplay(at *conf.Node) {
	df := []struct{ name, msg string }{
		{"clear-dont-fragment-bit", MsgDFClear},
		{"copy-dont-fragment-bit", MsgDFCopy},
		{"set-dont-fragment-bit", MsgDFSet},
	}
	n := 0
	for _, d := range df {
		if at.Has(d.name) {
			n++
		}
	}
	if n > 1 {
		for _, d := range df {
			if x := at.All(d.name); len(x) > 0 {
				c.fail(at, x[0], d.msg)
			}
		}
	}
	if w, no := at.All("anti-replay-window-size"), at.All("no-anti-replay"); len(w) > 0 && len(no) > 0 {
		c.fail(at, w[0], MsgNoAntiReplay)
		c.fail(at, no[0], MsgAntiReplayWindow)
	}
}

func (c *checker) serviceSets() {
	svc := c.services()
	if svc == nil {
		return
	}
	sets := svc.All("service-set")
	type dep struct {
		set *conf.Node
		gw  string
		ri  string
	}
	var gateways []dep
	for _, ss := range sets {
		opts := ss.Get("ipsec-vpn-options")
		lg := opts.Get("local-gateway")
		rules, ruleSets := ss.All("ipsec-vpn-rules"), ss.All("ipsec-vpn-rule-sets")
		ifs, nhs := ss.Get("interface-service"), ss.Get("next-hop-service")

		// Rule 26: interface style or next-hop style.
		if ifs == nil && nhs == nil && (len(rules) > 0 || len(ruleSets) > 0) {
			c.fail(ss, "", MsgStyle)
		}
		if nhs != nil && nhs.Value("service-interface-pool") != "" && (len(rules) > 0 || len(ruleSets) > 0) {
			c.fail(nhs, nhs.All("service-interface-pool")[0], MsgPoolRules)
		}
		// Service interfaces must exist.
		for _, st := range []struct {
			at   *conf.Node
			leaf string
		}{{ifs, "service-interface"}, {nhs, "inside-service-interface"}, {nhs, "outside-service-interface"}} {
			if st.at == nil {
				continue
			}
			if l := st.at.All(st.leaf); len(l) > 0 && c.ifl(l[0].Key) == nil {
				c.fail(st.at, l[0], MsgServiceInterface)
			}
		}
		// Rule 9: rules need a local gateway, and must exist.
		if lg == nil || (lg.Value("address") == "" && lg.Value("interface") == "") {
			if len(rules) > 0 {
				c.failBelow(ss, []string{"ipsec-vpn-options"}, "local-gateway", MsgLocalGatewayRules)
			} else if len(ruleSets) > 0 {
				c.failBelow(ss, []string{"ipsec-vpn-options"}, "local-gateway", MsgLocalGatewayRuleSets)
			}
		}
		for _, r := range rules {
			if c.rule(r.Key) == nil {
				c.fail(ss, r, MsgRuleUndefined)
			}
		}
		for _, r := range ruleSets {
			if c.cfg.Get("services", "ipsec-vpn", "rule-set", r.Key) == nil {
				c.fail(ss, r, MsgRuleSetUndefined)
			}
		}
		// Rule 1.
		if opts.Has("passive-mode-tunneling") && ss.Get("service-set-options", "header-integrity-check") != nil {
			c.fail(opts, opts.All("passive-mode-tunneling")[0], MsgPassiveHeaderCheck)
		}
		if opts != nil {
			c.dfAndAntiReplay(opts)
			// Rule 13.
			if ka := opts.All("nat-keepalive"); len(ka) > 0 && (opts.Has("no-nat-traversal") || c.ipsecVPN().Has("disable-natt")) {
				c.fail(opts, ka[0], MsgNATKeepalive)
			}
			// Rule 7.
			if p := opts.All("udp-encapsulate"); len(p) > 0 && p[0].Value("dest-port") == "4500" {
				c.fail(p[0], p[0].All("dest-port")[0], MsgDestPort4500)
			}
			// AH covers the outer addresses: no UDP around it.
			if p := opts.All("udp-encapsulate"); len(p) > 0 {
			ahRules:
				for _, r := range rules {
					if rule := c.rule(r.Key); rule != nil {
						for _, t := range rule.All("term") {
							if c.termProtocol(t) != "" {
								c.fail(opts, p[0], MsgAHUDPEncap)
								break ahRules
							}
						}
					}
				}
			}
			// Rule 6.
			if tca := opts.All("trusted-ca"); len(tca) > 0 {
				for _, ca := range tca[0].Values {
					if c.cfg.Get("security", "pki", "ca-profile", ca) == nil && c.cfg.Get("security", "pki", "trusted-ca-group", ca) == nil {
						c.fail(opts, "trusted-ca "+ca, MsgTrustedCA)
					}
				}
			}
			// Rule 3.
			if ap := opts.All("ike-access-profile"); len(ap) > 0 && c.cfg.Get("access", "profile", ap[0].Key) == nil {
				c.fail(opts, ap[0], MsgAccessProfile)
			}
		}
		if lg != nil {
			c.localGateway(lg)
			if opts.Has("ike-access-profile") || lg.Value("address") != "" {
				ri := lg.Value("routing-instance")
				if ri == "" {
					ri = "default"
				}
				gateways = append(gateways, dep{ss, lg.Value("address"), ri})
			}
		}
		c.insideInterfaces(ss, nhs, rules)
	}
	// Rules 2 and 4: a DEP set owns its gateway address, one DEP set per VRF.
	for i, a := range gateways {
		if !a.set.Get("ipsec-vpn-options").Has("ike-access-profile") {
			continue
		}
		for j, b := range gateways {
			if i == j {
				continue
			}
			if b.gw != "" && b.gw == a.gw && b.ri == a.ri {
				c.fail(a.set.Get("ipsec-vpn-options"), a.set.Get("ipsec-vpn-options", "local-gateway"), MsgSharedLocalGateway+" (service-set "+b.set.Key+")")
			}
			if j > i && b.set.Get("ipsec-vpn-options").Has("ike-access-profile") && a.ri == b.ri {
				c.fail(b.set, "", MsgOneSetPerVRF)
			}
		}
	}
}

// localGateway checks rules 8 and 10.
func (c *checker) localGateway(lg *conf.Node) {
	at := lg.Parent
	if lg.Value("address") != "" && lg.Value("interface") != "" {
		c.fail(at, lg, MsgInterfaceOrAddress)
	}
	if ri := lg.Value("routing-instance"); ri != "" && !c.routingInstance(ri) {
		c.fail(at, lg, MsgRoutingInstance)
	}
	if ifn := lg.Value("interface"); ifn != "" && c.ifl(ifn) == nil {
		c.fail(at, lg, MsgInterfaceUndefined)
	}
	gw := lg.Value("gw-interface")
	if gw == "" {
		return
	}
	unit := c.ifl(gw)
	ok := false
	if unit != nil {
		addr, _ := netip.ParseAddr(lg.Value("address"))
		for _, fam := range []string{"inet", "inet6"} {
			for _, a := range unit.Get("family", fam).All("address") {
				if p, err := schema.ParsePrefix(a.Key); err == nil && (!addr.IsValid() || p.Addr() == addr) {
					ok = true
				}
			}
		}
	}
	if !ok {
		c.fail(at, lg, MsgGwInterface)
	}
}

// insideInterfaces checks rules 4 and 5 for one set.
func (c *checker) insideInterfaces(ss, nhs *conf.Node, rules []*conf.Node) {
	vrfs := map[string]bool{}
	inside := nhs.Value("inside-service-interface")
	for _, r := range rules {
		rule := c.rule(r.Key)
		for _, t := range rule.All("term") {
			iif := t.All("from")
			if len(iif) == 0 || !iif[0].Has("ipsec-inside-interface") {
				continue
			}
			stmt := iif[0].All("ipsec-inside-interface")[0]
			vrfs[c.vrf(stmt.Key)] = true
			if nhs != nil && inside != "" && stmt.Key != inside {
				c.fail(iif[0], stmt, MsgInsideInterface+" (service-set "+ss.Key+": "+inside+")")
			}
		}
	}
	if len(vrfs) > 1 {
		c.fail(ss, "", MsgInsideVRF)
	}
}

func (c *checker) rules() {
	vpn := c.ipsecVPN()
	for _, r := range vpn.All("rule") {
		if !r.Has("match-direction") {
			c.fail(r, "match-direction", MsgMatchDirection)
		}
		for _, t := range r.All("term") {
			then := t.Get("then")
			if then == nil {
				continue
			}
			c.dfAndAntiReplay(then)
			dyn, man := then.Get("dynamic"), then.Get("manual")
			if b := then.All("backup-remote-gateway"); len(b) > 0 && dyn == nil {
				c.fail(then, b[0], MsgBackupGateway)
			}
			if d := then.All("dead-peer-detection"); len(d) > 0 && !then.Has("initiate-dead-peer-detection") {
				c.fail(then, d[0], MsgDPDTerm)
			}
			if x := then.All("ttl"); len(x) > 0 && then.Has("copy-ttl-from-inner-ip-header") {
				c.fail(then, x[0], MsgTTL)
			}
			if x := then.All("tos"); len(x) > 0 && then.Has("copy-tos-from-inner-ip-header") {
				c.fail(then, x[0], MsgTOS)
			}
			if man != nil && !then.Has("remote-gateway") {
				c.fail(then, "remote-gateway", MsgRemoteGatewayRequired)
			}
			if dyn != nil {
				if p := dyn.All("ike-policy"); len(p) > 0 {
					pol := c.ikePolicy(p[0].Key)
					switch {
					case pol == nil:
						c.fail(dyn, p[0], MsgIKEPolicyUndefined)
					case !pol.Has("pre-shared-key") && !pol.Has("local-certificate"):
						c.fail(dyn, p[0], MsgIKEPolicyAuth)
					case pol.Get("remote-id") != nil && pol.Get("remote-id").Has("any-remote-id"):
						c.fail(dyn, p[0], MsgAnyRemoteIDStatic)
					}
				}
				if p := dyn.All("ipsec-policy"); len(p) > 0 && c.ipsecPolicy(p[0].Key) == nil {
					c.fail(dyn, p[0], MsgIPsecPolicyUndefined)
				}
				if p := dyn.All("ike-policy"); len(p) > 0 && c.termProtocol(t) == "bundle" {
					if pol := c.ikePolicy(p[0].Key); pol != nil && pol.Value("version") == "2" {
						c.fail(dyn, p[0], MsgBundleIKEv2)
					}
				}
			}
			if man != nil {
				c.manual(man)
			}
		}
	}
	for _, rs := range vpn.All("rule-set") {
		for _, r := range rs.All("rule") {
			if c.rule(r.Key) == nil {
				c.fail(rs, r, MsgRuleUndefined)
			}
		}
	}
}

// termProtocol is "ah" or "bundle" when a term's SAs may use AH (a
// manual direction, or a proposal of its dynamic ipsec-policy, says so;
// bundle wins), else "".
func (c *checker) termProtocol(t *conf.Node) string {
	var protos []string
	then := t.Get("then")
	if man := then.Get("manual"); man != nil {
		for _, d := range man.All("direction") {
			protos = append(protos, d.Value("protocol"))
		}
	}
	if dyn := then.Get("dynamic"); dyn != nil {
		if p := dyn.All("ipsec-policy"); len(p) > 0 {
			if pol := c.ipsecPolicy(p[0].Key); pol != nil {
				for _, pr := range pol.All("proposals") {
					for _, v := range pr.Values {
						if prop := c.cfg.Get("services", "ipsec-vpn", "ipsec", "proposal", v); prop != nil {
							protos = append(protos, prop.Value("protocol"))
						}
					}
				}
			}
		}
	}
	out := ""
	for _, p := range protos {
		if p == "bundle" {
			return p
		}
		if p == "ah" {
			out = p
		}
	}
	return out
}

// Key sizes in bytes (SPEC section 5, manual SA key length).
var (
	encKeyLen  = map[string]int{"des-cbc": 8, "3des-cbc": 24, "aes-128-cbc": 16, "aes-192-cbc": 24, "aes-256-cbc": 32}
	authKeyLen = map[string]int{"hmac-md5-96": 16, "hmac-sha1-96": 20, "hmac-sha2-256": 32, "hmac-sha-256-128": 32}
)

// manual checks rule 18 and the key lengths of section 5.
func (c *checker) manual(man *conf.Node) {
	dirs := map[string]*conf.Node{}
	for _, d := range man.All("direction") {
		dirs[d.Key] = d
	}
	in, out, bi := dirs["inbound"], dirs["outbound"], dirs["bidirectional"]
	if in != nil && out == nil {
		c.failBelow(man, []string{"direction", "outbound"}, "", MsgOutbound)
	}
	if out != nil && in == nil {
		c.failBelow(man, []string{"direction", "inbound"}, "", MsgInbound)
	}
	if bi != nil && (in != nil || out != nil) {
		c.fail(man, bi, MsgBidirectional)
	}
	for _, d := range man.All("direction") {
		proto := d.Value("protocol")
		auth, enc := d.Get("authentication"), d.Get("encryption")
		if proto == "" {
			c.fail(d, "protocol", MsgManualProtocol)
		}
		if !d.Has("spi") {
			c.fail(d, "spi", MsgManualSPI)
		}
		switch proto {
		case "ah":
			if enc != nil {
				c.fail(d, enc, MsgAHEncryption)
			}
			if auth == nil {
				c.fail(d, "authentication", MsgAHAuthentication)
			}
		case "esp":
			if auth == nil && enc == nil {
				c.fail(d, "", MsgESPAuthOrEnc)
			}
		case "bundle":
			if !d.Has("auxiliary-spi") {
				c.fail(d, "auxiliary-spi", MsgBundleAuxSPI)
			}
			if auth == nil || enc == nil {
				c.fail(d, "", MsgBundleAuthEnc)
			}
		}
		if x := d.All("auxiliary-spi"); len(x) > 0 && proto != "bundle" {
			c.fail(d, x[0], MsgAuxSPIBundleOnly)
		}
		c.manualKey(auth, authKeyLen, false)
		c.manualKey(enc, encKeyLen, true)
	}
}

func (c *checker) manualKey(at *conf.Node, lens map[string]int, enc bool) {
	if at == nil {
		return
	}
	alg := at.Value("algorithm")
	k := at.Get("key")
	if k == nil {
		c.fail(at, "key", MsgManualKey)
		return
	}
	key, ok := KeyBytes(k)
	if !ok {
		c.fail(at, "key", "invalid hexadecimal key")
		return
	}
	if want, ok := lens[alg]; ok && len(key) != want {
		c.fail(at, "key", fmt.Sprintf("Key length must be %d bytes (%d ASCII characters or %d hexadecimal digits) for %s", want, want, 2*want, alg))
		return
	}
	if enc && alg == "3des-cbc" && (slices.Equal(key[0:8], key[8:16]) || !slices.Equal(key[8:16], key[16:24])) {
		// SPEC section 5 states the 9.5 page's rule as written.
		c.fail(at, "key", Msg3DESKeys)
	}
}

// KeyBytes decodes a key statement (ascii-text or hexadecimal).
func KeyBytes(k *conf.Node) ([]byte, bool) {
	plain := func(name string) (string, bool) {
		l := k.All(name)
		if len(l) == 0 {
			return "", true
		}
		p, err := l[0].Schema.Plain(l[0].Key)
		return p, err == nil
	}
	if v, ok := plain("ascii-text"); !ok || v != "" {
		return []byte(v), ok
	}
	hx, ok := plain("hexadecimal")
	if !ok {
		return nil, false
	}
	h := strings.TrimPrefix(strings.TrimPrefix(hx, "0x"), "0X")
	if len(h)%2 != 0 {
		return nil, false
	}
	b := make([]byte, len(h)/2)
	for i := range b {
		var x byte
		if _, err := fmt.Sscanf(h[2*i:2*i+2], "%02x", &x); err != nil {
			return nil, false
		}
		b[i] = x
	}
	return b, true
}

func (c *checker) ike() {
	ike := c.cfg.Get("services", "ipsec-vpn", "ike")
	for _, p := range ike.All("policy") {
		props := p.All("proposals")
		for _, pr := range props {
			for _, v := range pr.Values {
				if ike.Get("proposal", v) == nil {
					c.fail(p, "proposals "+v, MsgProposalUndefined)
				}
			}
			if len(pr.Values) > 5 {
				c.fail(p, pr, MsgTooManyProposals)
			}
		}
		if len(props) > 0 && p.Has("proposal-set") {
			c.fail(p, p.All("proposal-set")[0], MsgIKEProposalsAndSet)
		}
		if rid := p.Get("remote-id"); rid != nil && rid.Has("any-remote-id") {
			for _, x := range rid.Children {
				if !x.Inactive && x.Schema.Name != "any-remote-id" {
					c.fail(rid, x, MsgAnyRemoteID)
				}
			}
		}
	}
}

func (c *checker) ipsec() {
	ips := c.cfg.Get("services", "ipsec-vpn", "ipsec")
	for _, p := range ips.All("proposal") {
		if p.Value("protocol") == "ah" && p.Has("encryption-algorithm") {
			c.fail(p, p.All("encryption-algorithm")[0], MsgAHEncryption)
		}
		enc := p.Value("encryption-algorithm")
		if (strings.HasSuffix(enc, "-gcm") || enc == "chacha20-poly1305") && p.Has("authentication-algorithm") {
			c.fail(p, p.All("authentication-algorithm")[0], MsgGCMHMAC)
		}
	}
	for _, p := range ips.All("policy") {
		props := p.All("proposals")
		for _, pr := range props {
			for _, v := range pr.Values {
				if ips.Get("proposal", v) == nil {
					c.fail(p, "proposals "+v, MsgProposalUndefined)
				}
			}
		}
		if len(props) > 0 && p.Has("proposal-set") {
			c.fail(p, p.All("proposal-set")[0], MsgProposalsAndSet)
		}
	}
}

func (c *checker) access() {
	for _, prof := range c.cfg.Get("access").All("profile") {
		for _, cl := range prof.All("client") {
			ike := cl.Get("ike")
			if ike == nil {
				continue
			}
			psk, pol := ike.All("pre-shared-key"), ike.All("ike-policy")
			if len(psk) > 0 && len(pol) > 0 {
				c.fail(ike, pol[0], MsgPSKAndPolicy)
			}
			if len(pol) > 0 {
				p := c.ikePolicy(pol[0].Key)
				switch {
				case p == nil:
					c.fail(ike, pol[0], MsgIKEPolicyUndefined)
				case p.Value("mode") == "aggressive":
					c.fail(ike, pol[0], MsgAggressiveDEP)
				case !p.Has("pre-shared-key") && !p.Has("local-certificate"):
					c.fail(ike, pol[0], MsgIKEPolicyAuth)
				}
			}
			if p := ike.All("ipsec-policy"); len(p) > 0 && c.ipsecPolicy(p[0].Key) == nil {
				c.fail(ike, p[0], MsgIPsecPolicyUndefined)
			}
			if d := ike.All("dead-peer-detection"); len(d) > 0 && !ike.Has("initiate-dead-peer-detection") {
				c.fail(ike, d[0], MsgDPDAccess)
			}
		}
	}
}

func (c *checker) pki() {
	pki := c.cfg.Get("security", "pki")
	for _, ca := range pki.All("ca-profile") {
		if ri := ca.All("routing-instance"); len(ri) > 0 && !c.routingInstance(ri[0].Key) {
			c.fail(ca, ri[0], MsgRoutingInstance)
		}
	}
	for _, g := range pki.All("trusted-ca-group") {
		for _, l := range g.All("ca-profiles") {
			for _, v := range l.Values {
				if pki.Get("ca-profile", v) == nil {
					c.fail(g, "ca-profiles "+v, MsgCAProfileUndefined)
				}
			}
		}
	}
	for _, proto := range []string{"scep", "cmpv2", "acme"} {
		for _, id := range pki.Get("auto-re-enrollment", proto).All("certificate-id") {
			if n := id.All("ca-profile-name"); len(n) > 0 && pki.Get("ca-profile", n[0].Key) == nil {
				c.fail(id, n[0], MsgCAProfileUndefined)
			}
		}
	}
}

// traceoptions refuses a trace file that is not a plain name: Junos writes
// trace files under /var/log only, and the daemons open them as root, so a
// path would let the operator create or append to any file (issue 14 item 5).
func (c *checker) traceoptions() {
	c.cfg.Walk(func(n *conf.Node) {
		if n.Inactive || n.Schema.Name != "traceoptions" {
			return
		}
		for _, f := range n.Get("file").All("filename") {
			if !TraceFileName(f.Key) {
				c.fail(n.Get("file"), f, MsgTraceFile)
			}
		}
	})
}

// TraceFileName reports whether name is a trace file name traceoptions
// accepts: not empty, no '/' or NUL, not "." or "..", no "..".
func TraceFileName(name string) bool {
	return name != "" && name != "." && !strings.ContainsAny(name, "/\\\x00") && !strings.Contains(name, "..")
}

func (c *checker) routing() {
	check := func(ro *conf.Node) {
		for _, r := range ro.Get("static").All("route") {
			for _, nh := range r.All("next-hop") {
				for _, v := range nh.Values {
					if _, err := netip.ParseAddr(v); err == nil {
						continue
					}
					if schema.TIFL.Check(v) != nil || c.ifl(v) == nil {
						c.fail(r, "next-hop "+v, MsgNextHop)
					}
				}
			}
		}
	}
	check(c.cfg.Get("routing-options"))
	for _, ri := range c.cfg.Get("routing-instances").All("instance") {
		check(ri.Get("routing-options"))
		for _, i := range ri.All("interface") {
			if c.ifl(i.Key) == nil {
				c.fail(ri, i, MsgInterfaceUndefined)
			}
		}
	}
}
