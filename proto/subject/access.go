package subject

import (
	"slices"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Access is one row of the bus's ownership table (DESIGN.md, "The bus"):
// who may put messages on a subject and who may read them. The broker
// turns the table into each bus user's permissions (broker.RightsOf), for
// the embedded server and for the configuration of a standalone
// nats-server alike, so least privilege is one table, not a convention.
//
// A Request subject is served by its Daemon alone, called by From, and
// answered only to the caller's own inbox (_INBOX.<caller>.>); its server
// may publish nothing but replies to the requests it received. A Publish
// subject is published by From and read by To.
type Access struct {
	Daemon, Verb string
	// From publishes a Publish subject or calls a Request subject.
	From []string
	// To subscribes to a Publish subject (ignored for a Request).
	To []string
	// Secret messages carry key material: no tap (cli monitor bus) sees
	// them, whatever the pattern.
	Secret bool
}

// Subject is the row's subject in space.
func (a Access) Subject(space Space) string { return space.Subject(a.Daemon, a.Verb) }

// Everyone are the bus users that run as daemons: the launcher and the
// four daemons. The cli is an operator, not one of them.
var Everyone = append([]string{Sitesecd}, Daemons...)

// AccessTable is the ownership table. Every subject of Registry has
// exactly one row (TestAccessCoversRegistry); a new subject gets its row
// here, next to the registry entry, or nobody can use it.
var AccessTable = func() []Access {
	var t []Access
	for _, d := range Everyone {
		op := []string{CLI}
		if d == Fwdd {
			// kmd reads fwdd's SA counters for its own show output.
			op = append(op, Kmd)
		}
		t = append(t,
			Access{Daemon: d, Verb: VerbHealth, From: []string{d}, To: []string{Sitesecd, Cfgd}},
			Access{Daemon: d, Verb: VerbStatus, From: []string{CLI}},
			Access{Daemon: d, Verb: VerbOp, From: op},
		)
	}
	return append(t,
		Access{Daemon: Sitesecd, Verb: VerbRestart, From: []string{CLI}},
		Access{Daemon: Sitesecd, Verb: VerbProcesses, From: []string{CLI}},

		// sitesecd --config commits through cfgd like an operator.
		Access{Daemon: Cfgd, Verb: VerbConfig, From: []string{CLI, Sitesecd}},
		Access{Daemon: Cfgd, Verb: VerbAck, From: Daemons, To: []string{Cfgd}},
		// cfgd's prepare round: each daemon is sent the candidate with its
		// own secrets only (bus.ForDaemon), so no tap sees it.
		Access{Daemon: Kmd, Verb: VerbPrepare, From: []string{Cfgd}, Secret: true},
		Access{Daemon: Fwdd, Verb: VerbPrepare, From: []string{Cfgd}, Secret: true},
		Access{Daemon: Pkid, Verb: VerbPrepare, From: []string{Cfgd}, Secret: true},

		// fwdd owns the wire: it hands IKE datagrams to kmd, sends what kmd
		// gives it, and asks kmd which SAs should exist after a restart.
		Access{Daemon: Kmd, Verb: VerbPunt, From: []string{Fwdd}, To: []string{Kmd}},
		Access{Daemon: Kmd, Verb: VerbSASync, From: []string{Fwdd}},
		Access{Daemon: Fwdd, Verb: VerbTransmit, From: []string{Kmd}, To: []string{Fwdd}},

		// Only kmd installs SAs and only fwdd receives their keys.
		Access{Daemon: Fwdd, Verb: VerbSAInstall, From: []string{Kmd}, Secret: true},
		Access{Daemon: Fwdd, Verb: VerbSADelete, From: []string{Kmd}, Secret: true},
		Access{Daemon: Fwdd, Verb: VerbSAUpdate, From: []string{Kmd}, Secret: true},
		// kmd, restarted, asks which dynamic SAs fwdd still runs (no key
		// material in the reply; only kmd may ask).
		Access{Daemon: Fwdd, Verb: VerbSAList, From: []string{Kmd}},
		Access{Daemon: Fwdd, Verb: VerbSAEvents, From: []string{Fwdd}, To: []string{Kmd}},
		Access{Daemon: Fwdd, Verb: VerbGatewayEvents, From: []string{Fwdd}, To: []string{Kmd}},

		// Only kmd asks pkid to validate or sign (DESIGN.md, data flow 4).
		Access{Daemon: Pkid, Verb: VerbValidate, From: []string{Kmd}},
		Access{Daemon: Pkid, Verb: VerbSign, From: []string{Kmd}},
		Access{Daemon: Pkid, Verb: VerbLocalCert, From: []string{Kmd}},
		Access{Daemon: Pkid, Verb: VerbCAs, From: []string{Kmd}},
		Access{Daemon: Pkid, Verb: VerbCertEvents, From: []string{Pkid}, To: []string{Kmd}},
	)
}()

var accessByName = func() map[string]*Access {
	m := make(map[string]*Access, len(AccessTable))
	for i := range AccessTable {
		a := &AccessTable[i]
		m[a.Daemon+"."+a.Verb] = a
	}
	return m
}()

// AccessOf returns the row of daemon.verb.
func AccessOf(daemon, verb string) (*Access, bool) {
	a, ok := accessByName[daemon+"."+verb]
	return a, ok
}

// MayCall reports whether user may call (Request) or publish on
// daemon.verb.
func MayCall(user, daemon, verb string) bool {
	a, ok := AccessOf(daemon, verb)
	return ok && slices.Contains(a.From, user)
}

// InboxPrefix is where replies to user go: "_INBOX.<user>". The bus
// connects every authenticated user with it as its inbox prefix, only
// that user may subscribe to it, and a server answers a request only when
// its reply subject is a caller's inbox (bus.Conn.Handle).
func InboxPrefix(user string) string { return "_INBOX." + user }

// SecretsBucket is the JetStream KV bucket holding the configuration's
// secrets that daemon needs (pre-shared keys for kmd, passwords for
// pkid); only that daemon may read it.
func (s Space) SecretsBucket(daemon string) string {
	return s.Root + "_" + s.Router + "_secrets_" + daemon
}

// SecretFieldOwners says which daemon needs each secret of the
// configuration (fields marked [(sitesec.v1.secret) = true]): by the field
// that holds it, or by the nearest enclosing field listed here (a Key
// message's value is kmd's in an IKE policy and fwdd's in a manual SA).
// The secrets go only to their daemon (bus.Conn.PutConfig), and a secret
// with no owner here fails the commit rather than reach everyone.
var SecretFieldOwners = map[protoreflect.FullName]string{
	"sitesec.v1.IKEPolicy.pre_shared_key":             Kmd,
	"sitesec.v1.AccessClientIKE.pre_shared_key":       Kmd,
	"sitesec.v1.ManualSADirection.authentication_key": Fwdd,
	"sitesec.v1.ManualSADirection.encryption_key":     Fwdd,
	"sitesec.v1.CAProfile.crl_password":               Pkid,
	"sitesec.v1.AutoReEnrollment.challenge_password":  Pkid,
}

// SecretOwners are the daemons that have a secrets bucket, sorted.
var SecretOwners = func() []string {
	var out []string
	for _, d := range SecretFieldOwners {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}()
