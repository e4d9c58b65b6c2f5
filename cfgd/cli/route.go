package cli

import (
	"strings"

	"github.com/sitesec/sitesec/proto/subject"
)

// route names the daemon that owns an operational command's data
// (DESIGN.md, "Operational commands"). The first matching prefix wins.
var routes = []struct {
	prefix string
	daemon string
}{
	{"show system processes", subject.Sitesecd},
	{"restart", subject.Sitesecd},
	{"show configuration", subject.Cfgd},
	{"show system commit", subject.Cfgd},
	{"show services ipsec-vpn ike", subject.Kmd},
	{"clear services ipsec-vpn ike", subject.Kmd},
	{"clear services ipsec-vpn ipsec security-associations", subject.Kmd},
	{"show services ipsec-vpn ipsec", subject.Fwdd},
	{"clear services ipsec-vpn ipsec statistics", subject.Fwdd},
	{"show services ipsec-vpn interfaces", subject.Fwdd},
	{"show services service-sets summary", subject.Fwdd},
	{"show services ipsec-vpn certificates", subject.Pkid},
	{"clear services ipsec-vpn certificates", subject.Pkid},
	{"show security pki", subject.Pkid},
	{"request security pki", subject.Pkid},
	{"clear security pki", subject.Pkid},
}

func route(words []string) (string, bool) {
	line := strings.Join(words, " ")
	for _, r := range routes {
		if line == r.prefix || strings.HasPrefix(line, r.prefix+" ") {
			return r.daemon, true
		}
	}
	return "", false
}
