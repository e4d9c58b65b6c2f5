package check

import "github.com/sitesec/sitesec/cfgd/conf"

// weak lists the transforms Junos still offers (and defaults to) that
// are no longer safe: single DES (56-bit key), MD5, and the 768- and
// 1024-bit MODP groups 1 and 2 (RFC 8247 section 2.4 and RFC 8221
// section 5 mark them MUST NOT / SHOULD NOT). sitesec runs them, because
// peers still need them, but commit check warns (issue 13).
var weak = map[string]map[string]bool{
	"dh-group":                 {"group1": true, "group2": true},
	"keys":                     {"group1": true, "group2": true},
	"authentication-algorithm": {"md5": true, "hmac-md5-96": true},
	"encryption-algorithm":     {"des-cbc": true},
}

// weakWarnings names every weak transform configured in an IKE or IPsec
// proposal or as a PFS group.
func weakWarnings(cfg *conf.Node) conf.Errors {
	var out conf.Errors
	warn := func(n *conf.Node, names ...string) {
		for _, name := range names {
			for _, v := range n.All(name) {
				if weak[name][v.Key] {
					out = append(out, &conf.Error{Pos: v.Pos, Path: n.EditPath(), Stmt: v.Statement(),
						Msg: v.Key + " is weak (kept for older peers); prefer aes-cbc or aes-gcm, sha-256 and group14 or stronger"})
				}
			}
		}
	}
	v := cfg.Get("services", "ipsec-vpn")
	// kmd runs Junos's defaults, as the schema declares them (issue 12
	// item 8): say so when they are weak.
	unset := func(n *conf.Node, name, def, better string) {
		if n != nil && len(n.All(name)) == 0 {
			out = append(out, &conf.Error{Pos: n.Pos, Path: n.EditPath(), Stmt: name,
				Msg: "not set: the default, " + def + ", is weak (kept for older peers); set " + better})
		}
	}
	for _, p := range v.Get("ike").All("proposal") {
		warn(p, "dh-group", "authentication-algorithm", "encryption-algorithm")
		unset(p, "dh-group", "group1", "group14 or stronger")
		unset(p, "encryption-algorithm", "3des-cbc", "aes-cbc or aes-gcm")
	}
	for _, p := range v.Get("ipsec").All("proposal") {
		warn(p, "authentication-algorithm", "encryption-algorithm")
		unset(p, "encryption-algorithm", "3des-cbc", "aes-cbc or aes-gcm")
	}
	for _, p := range v.Get("ipsec").All("policy") {
		warn(p.Get("perfect-forward-secrecy"), "keys")
		unset(p.Get("perfect-forward-secrecy"), "keys", "group1", "group14 or stronger")
	}
	return out
}
