package trace

import (
	"fmt"
	"strings"
)

// Level is the severity of a trace message, ordered from the most to the
// least important: Error < Warning < Notice < Info < Verbose < All. A message
// is written when its level is <= the configured level. The zero Level is
// Error, which is also the Junos default for `traceoptions level`.
type Level int

// Levels, named by the Junos words of `traceoptions level`.
const (
	Error Level = iota
	Warning
	Notice
	Info
	Verbose
	All
)

var levelNames = [...]string{
	Error:   "error",
	Warning: "warning",
	Notice:  "notice",
	Info:    "info",
	Verbose: "verbose",
	All:     "all",
}

// String returns the Junos word for l.
func (l Level) String() string {
	if l >= Error && l <= All {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// ParseLevel parses a Junos level word. The empty string is the default,
// Error.
func ParseLevel(s string) (Level, error) {
	if s == "" {
		return Error, nil
	}
	for l, n := range levelNames {
		if s == n {
			return Level(l), nil
		}
	}
	return Error, fmt.Errorf("trace: unknown level %q (valid: %s)", s, strings.Join(levelNames[:], ", "))
}

// Flag is a Junos traceoptions flag: the subsystem a message belongs to.
type Flag string

// Flags of kmd, cfgd and fwdd (SPEC section 1, [edit services ipsec-vpn
// traceoptions]).
const (
	FlagAll           Flag = "all"
	FlagCertificates  Flag = "certificates"
	FlagDatabase      Flag = "database"
	FlagGeneral       Flag = "general"
	FlagIKE           Flag = "ike"
	FlagParse         Flag = "parse"
	FlagPolicyManager Flag = "policy-manager"
	FlagRoutingSocket Flag = "routing-socket"
	FlagSNMP          Flag = "snmp"
	FlagTimer         Flag = "timer"
	// Junos accepts these for MS-MPC AMS and licensing; sitesec accepts
	// them so pasted configurations commit, and writes nothing under them.
	FlagAMS Flag = "ams"
	FlagLIC Flag = "lic"
)

// Flags of the daemons Junos has no traceoptions for (cfgd, fwdd and the
// launcher), under [edit system processes NAME traceoptions].
const (
	FlagCommit Flag = "commit"
	FlagConfig Flag = "config"
	FlagBus    Flag = "bus"
	FlagESP    Flag = "esp"
	FlagPacket Flag = "packet"
	FlagSA     Flag = "sa"
	FlagSocket Flag = "socket"
	FlagTUN    Flag = "tun"
	FlagRoute  Flag = "route"
)

// Flags of pkid (SPEC section 1, [edit security pki traceoptions]).
const (
	FlagCertificateVerification Flag = "certificate-verification"
	FlagOnlineCRLCheck          Flag = "online-crl-check"
	FlagEnrollment              Flag = "enrollment"
	FlagACMEEnrollment          Flag = "acme-enrollment"
)

// KMDFlags are the flags kmd accepts.
var KMDFlags = []Flag{
	FlagAll, FlagCertificates, FlagDatabase, FlagGeneral, FlagIKE,
	FlagParse, FlagPolicyManager, FlagRoutingSocket, FlagSNMP, FlagTimer,
	FlagAMS, FlagLIC,
}

// ProcessFlags are the flags cfgd, fwdd and sitesecd accept.
var ProcessFlags = []Flag{
	FlagAll, FlagGeneral, FlagCommit, FlagConfig, FlagBus, FlagESP,
	FlagPacket, FlagSA, FlagSocket, FlagTUN, FlagRoute,
}

// PKIDFlags are the flags pkid accepts.
var PKIDFlags = []Flag{
	FlagCertificateVerification, FlagOnlineCRLCheck, FlagEnrollment,
	FlagACMEEnrollment, FlagAll,
}

func flagList(fs []Flag) string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(f))
	}
	return b.String()
}
