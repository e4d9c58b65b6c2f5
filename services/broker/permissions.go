package broker

import (
	"slices"

	"github.com/sitesec/sitesec/proto/subject"
)

// Permissions returns the publish permissions of daemon in space, for
// User.PublishAllow and User.PublishDeny (DESIGN.md, "The bus").
//
// Every daemon may publish anything in its router's space (requests,
// health, acks, op and status) except the subjects one daemon owns:
//
//   - only kmd may publish fwdd.sa.* (install, delete, update: the SA keys)
//     and fwdd.transmit (IKE datagrams to send);
//   - only fwdd may publish kmd.punt (IKE datagrams received) and
//     fwdd.events.*;
//   - only pkid may publish pkid.events;
//   - only cfgd may write the configuration KV bucket ($KV.<bucket>.>) and
//     create or change its stream.
//
// Every daemon may publish replies (_INBOX.>) and use the part of the
// JetStream API that reading and watching the configuration bucket needs.
// The cli is an operator: it may only send op, status, config, restart and
// processes requests. An unknown name may publish nothing.
//
// Subscriptions are restricted by SubscribePermissions.
func Permissions(space subject.Space, daemon string) (allow, deny []string) {
	s := space.Subject
	// owned lists the subjects only one daemon may publish.
	owned := map[string][]string{
		subject.Kmd:  {s(subject.Fwdd, "sa.>"), s(subject.Fwdd, subject.VerbTransmit)},
		subject.Fwdd: {s(subject.Kmd, subject.VerbPunt), s(subject.Fwdd, "events.>")},
		subject.Pkid: {s(subject.Pkid, subject.VerbCertEvents), s(subject.Pkid, subject.VerbCertEvents+".>")},
	}
	switch daemon {
	case subject.CLI:
		for _, d := range append([]string{subject.Sitesecd}, subject.Daemons...) {
			allow = append(allow, s(d, subject.VerbOp), s(d, subject.VerbStatus))
		}
		allow = append(allow,
			s(subject.Cfgd, subject.VerbConfig),
			s(subject.Sitesecd, subject.VerbRestart),
			s(subject.Sitesecd, subject.VerbProcesses),
		)
		return allow, nil
	case subject.Sitesecd, subject.Cfgd, subject.Kmd, subject.Pkid, subject.Fwdd:
	default:
		return nil, []string{">"}
	}

	allow = append([]string{space.All(), "_INBOX.>"}, kvRead(space.ConfigBucket())...)
	if daemon == subject.Cfgd {
		allow = append(allow, kvWrite(space.ConfigBucket())...)
	}
	for owner, subjects := range owned {
		if owner != daemon {
			deny = append(deny, subjects...)
		}
	}
	slices.Sort(deny)
	return allow, deny
}

// kvRead is what a client of the bucket needs to look it up, get a key
// and watch it with an ordered consumer (ADR-8 of the NATS architecture
// decisions describes the KV subjects).
func kvRead(bucket string) []string {
	stream := "KV_" + bucket
	return []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.STREAM.MSG.GET." + stream,
		"$JS.API.DIRECT.GET." + stream,
		"$JS.API.DIRECT.GET." + stream + ".>",
		"$JS.API.CONSUMER.CREATE." + stream,
		"$JS.API.CONSUMER.CREATE." + stream + ".>",
		"$JS.API.CONSUMER.INFO." + stream + ".>",
		"$JS.API.CONSUMER.DELETE." + stream + ".>",
		// Flow control replies of the ordered push consumer.
		"$JS.FC." + stream + ".>",
	}
}

// kvWrite is what the bucket's owner needs on top of kvRead.
func kvWrite(bucket string) []string {
	stream := "KV_" + bucket
	return []string{
		"$KV." + bucket + ".>",
		"$JS.API.STREAM.CREATE." + stream,
		"$JS.API.STREAM.UPDATE." + stream,
	}
}

// InboxPrefix is the reply inbox prefix of user name: bus.Connect uses it
// for an authenticated connection, and SubscribePermissions lets only that
// user read it, so replies (kmd.sa.sync answers carry SA keys) reach only
// the one who asked.
func InboxPrefix(name string) string { return "_INBOX." + name }

// SubscribePermissions returns what user name may subscribe to: its
// router's subjects and its own inbox. Nobody but fwdd may read
// fwdd.sa.* (the requests that carry SA keys), not even with a wildcard:
// the server filters those messages out of a wider subscription, so a bus
// tap (cli monitor bus) sees everything else. An unknown name may
// subscribe to nothing.
func SubscribePermissions(space subject.Space, name string) (allow, deny []string) {
	switch name {
	case subject.CLI, subject.Sitesecd, subject.Cfgd, subject.Kmd, subject.Pkid, subject.Fwdd:
	default:
		return nil, []string{">"}
	}
	allow = []string{space.All(), InboxPrefix(name) + ".>"}
	if name != subject.Fwdd {
		deny = []string{space.Subject(subject.Fwdd, "sa.>")}
	}
	return allow, deny
}
