package subject

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sitesec/sitesec/proto/pb"
)

// Kind says how a subject is used.
type Kind int

const (
	// Publish subjects carry events; nobody answers.
	Publish Kind = iota
	// Request subjects carry a request; the reply has type Reply.
	Request
)

// Entry describes one daemon verb.
type Entry struct {
	Daemon string
	Verb   string
	Kind   Kind
	// Message is the type published or sent as the request.
	Message protoreflect.MessageType
	// Reply is the reply type of a Request subject.
	Reply protoreflect.MessageType
}

func typ(m proto.Message) protoreflect.MessageType { return m.ProtoReflect().Type() }

func pub(daemon, verb string, m proto.Message) Entry {
	return Entry{Daemon: daemon, Verb: verb, Kind: Publish, Message: typ(m)}
}

func req(daemon, verb string, m, r proto.Message) Entry {
	return Entry{Daemon: daemon, Verb: verb, Kind: Request, Message: typ(m), Reply: typ(r)}
}

// Registry lists every subject of the suite. Bus introspection decodes
// with it, and the bus package checks that a typed call matches it.
var Registry = func() []Entry {
	var r []Entry
	for _, d := range append([]string{Sitesecd}, Daemons...) {
		r = append(r,
			pub(d, VerbHealth, &pb.Health{}),
			req(d, VerbStatus, &pb.StatusRequest{}, &pb.ProcessStatus{}),
			req(d, VerbOp, &pb.OpRequest{}, &pb.OpReply{}),
		)
	}
	return append(r,
		req(Sitesecd, VerbRestart, &pb.RestartRequest{}, &pb.RestartReply{}),
		req(Sitesecd, VerbProcesses, &pb.StatusRequest{}, &pb.ProcessList{}),

		req(Cfgd, VerbConfig, &pb.ConfigEditRequest{}, &pb.ConfigEditReply{}),
		req(Kmd, VerbPrepare, &pb.ConfigSnapshot{}, &pb.ApplyAck{}),
		req(Fwdd, VerbPrepare, &pb.ConfigSnapshot{}, &pb.ApplyAck{}),
		req(Pkid, VerbPrepare, &pb.ConfigSnapshot{}, &pb.ApplyAck{}),
		pub(Cfgd, VerbAck, &pb.ApplyAck{}),

		pub(Kmd, VerbPunt, &pb.IKEDatagram{}),
		req(Kmd, VerbSASync, &pb.SASyncRequest{}, &pb.SASyncReply{}),

		pub(Fwdd, VerbTransmit, &pb.IKEDatagram{}),
		req(Fwdd, VerbSAInstall, &pb.SAInstall{}, &pb.SAInstallReply{}),
		req(Fwdd, VerbSADelete, &pb.SADelete{}, &pb.SADeleteReply{}),
		req(Fwdd, VerbSAUpdate, &pb.SAUpdate{}, &pb.SAUpdateReply{}),
		req(Fwdd, VerbSAList, &pb.SAListRequest{}, &pb.SAListReply{}),
		pub(Fwdd, VerbSAEvents, &pb.SAEvent{}),
		pub(Fwdd, VerbGatewayEvents, &pb.GatewayEvent{}),

		req(Pkid, VerbValidate, &pb.ValidateChainRequest{}, &pb.ValidateChainReply{}),
		req(Pkid, VerbSign, &pb.SignRequest{}, &pb.SignReply{}),
		req(Pkid, VerbLocalCert, &pb.LocalCertificateRequest{}, &pb.LocalCertificateReply{}),
		req(Pkid, VerbCAs, &pb.CARequest{}, &pb.CAReply{}),
		pub(Pkid, VerbCertEvents, &pb.CertificateEvent{}),
	)
}()

var byName = func() map[string]*Entry {
	m := make(map[string]*Entry, len(Registry))
	for i := range Registry {
		e := &Registry[i]
		m[e.Daemon+"."+e.Verb] = e
	}
	return m
}()

// Lookup finds the entry for a full subject such as
// "sitesec.r1.fwdd.sa.install", whatever its root and router.
func Lookup(subj string) (*Entry, bool) {
	_, d, v, ok := Split(subj)
	if !ok {
		return nil, false
	}
	e, ok := byName[d+"."+v]
	return e, ok
}

// Find returns the entry for a daemon and verb.
func Find(daemon, verb string) (*Entry, bool) {
	e, ok := byName[daemon+"."+verb]
	return e, ok
}

// ConfigSnapshotType is the type stored in the configuration bucket.
var ConfigSnapshotType = typ(&pb.ConfigSnapshot{})
