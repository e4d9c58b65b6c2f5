package broker

import (
	"slices"

	"github.com/sitesec/sitesec/proto/subject"
)

// Rights are what one bus user may do: the NATS permissions of its user
// on the embedded server, and of its entry in a standalone server's
// configuration (tests/cmd/natsconf).
type Rights struct {
	// Subjects (NATS wildcards) the user may publish to and subscribe
	// to. An empty Allow list gives nothing (deny ">").
	PublishAllow, PublishDeny     []string
	SubscribeAllow, SubscribeDeny []string
	// Responses lets the user publish a reply to each request it received
	// (NATS allow_responses), and only that: a server answers, it cannot
	// publish to an inbox of its choice.
	Responses bool
}

// RightsOf returns the rights of bus user name in space, from the
// ownership table subject.AccessTable (DESIGN.md, "The bus"):
//
//   - a daemon publishes the subjects it is a publisher or caller of, and
//     subscribes to those it is a subscriber of, the requests it serves
//     and its own inbox _INBOX.<name>.>; it answers only requests it
//     received (Responses);
//   - JetStream: every daemon reads and watches the configuration bucket
//     and its own secrets bucket, no other's; cfgd writes keys into the
//     buckets (reading none of the secrets back) and
//     nothing else (no stream create, update or delete, so it cannot point
//     a stream at another subject); sitesecd creates the buckets
//     (bus.SetupBuckets) and reads none of their values;
//   - the cli calls the operator's verbs and may tap every subject of its
//     router except those that carry keys;
//   - an unknown name may do nothing.
func RightsOf(space subject.Space, name string) Rights {
	if name != subject.CLI && !slices.Contains(subject.Everyone, name) {
		return Rights{PublishDeny: []string{">"}, SubscribeDeny: []string{">"}}
	}
	var r Rights
	for _, a := range subject.AccessTable {
		e, _ := subject.Find(a.Daemon, a.Verb)
		s := a.Subject(space)
		if slices.Contains(a.From, name) {
			r.PublishAllow = append(r.PublishAllow, s)
		}
		switch {
		case e != nil && e.Kind == subject.Request && a.Daemon == name:
			r.SubscribeAllow = append(r.SubscribeAllow, s)
			r.Responses = true
		case e != nil && e.Kind == subject.Publish && slices.Contains(a.To, name):
			r.SubscribeAllow = append(r.SubscribeAllow, s)
		}
		if a.Secret && name == subject.CLI {
			r.SubscribeDeny = append(r.SubscribeDeny, s)
		}
	}
	if name == subject.CLI {
		// monitor bus: a tap on the router's subjects. The server filters
		// the secret ones out of a wider subscription.
		r.SubscribeAllow = append([]string{space.All()}, r.SubscribeAllow...)
	}
	r.SubscribeAllow = append(r.SubscribeAllow, subject.InboxPrefix(name)+".>")

	switch name {
	case subject.Sitesecd:
		r.PublishAllow = append(r.PublishAllow, kvAdmin(Buckets(space)...)...)
	case subject.CLI:
	default:
		r.PublishAllow = append(r.PublishAllow, kvRead(space.ConfigBucket())...)
		if slices.Contains(subject.SecretOwners, name) {
			r.PublishAllow = append(r.PublishAllow, kvRead(space.SecretsBucket(name))...)
		}
		if name == subject.Cfgd {
			for _, b := range Buckets(space) {
				r.PublishAllow = append(r.PublishAllow, kvPut(b)...)
			}
		}
	}
	r.PublishAllow = dedup(r.PublishAllow)
	r.SubscribeAllow = dedup(r.SubscribeAllow)
	slices.Sort(r.SubscribeDeny)
	return r
}

// Buckets are the JetStream KV buckets of a router: the committed
// configuration, and the secrets of each daemon that has some.
func Buckets(space subject.Space) []string {
	out := []string{space.ConfigBucket()}
	for _, d := range subject.SecretOwners {
		out = append(out, space.SecretsBucket(d))
	}
	return out
}

func dedup(s []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
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

// kvPut is what the bucket's writer needs: look the bucket up (its
// configuration, not its values) and put keys. No stream create or
// update: the stream's subjects and republish settings are sitesecd's.
func kvPut(bucket string) []string {
	return []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO.KV_" + bucket,
		"$KV." + bucket + ".>",
	}
}

// kvAdmin is what sitesecd needs to create the buckets (and update them
// when their settings change), without reading or writing any value.
func kvAdmin(buckets ...string) []string {
	out := []string{"$JS.API.INFO"}
	for _, b := range buckets {
		stream := "KV_" + b
		out = append(out,
			"$JS.API.STREAM.INFO."+stream,
			"$JS.API.STREAM.CREATE."+stream,
			"$JS.API.STREAM.UPDATE."+stream,
		)
	}
	return out
}

// InboxPrefix is the reply inbox prefix of user name (subject.InboxPrefix).
func InboxPrefix(name string) string { return subject.InboxPrefix(name) }

// UserFor is the embedded server's user name with password and its rights.
func UserFor(space subject.Space, name, password string) User {
	r := RightsOf(space, name)
	return User{Name: name, Password: password,
		PublishAllow: r.PublishAllow, PublishDeny: r.PublishDeny,
		SubscribeAllow: r.SubscribeAllow, SubscribeDeny: r.SubscribeDeny,
		AllowResponses: r.Responses}
}
