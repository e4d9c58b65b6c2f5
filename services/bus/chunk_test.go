package bus

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
)

// manySAs is a `show services ipsec-vpn ike security-associations` reply
// with n SAs: about 350 bytes each, so 10,000 of them are over 3 MiB.
func manySAs(n int) *pb.OpReply {
	l := &pb.IKESecurityAssociations{}
	for i := 0; i < n; i++ {
		l.Sas = append(l.Sas, &pb.IKESecurityAssociation{
			Index: uint32(i + 1), RemoteAddress: fmt.Sprintf("10.200.%d.%d", i/256, i%256), State: "UP",
			InitiatorCookie: fmt.Sprintf("%016x", i*7919), ResponderCookie: fmt.Sprintf("%016x", i*104729),
			ExchangeType: "IKEv2", Role: "Responder", LocalAddress: "192.168.255.2", LocalPort: 500, RemotePort: 500,
			ServiceSet: "dep", AuthenticationMethod: "Pre-shared-keys", EncryptionAlgorithm: "aes-256-gcm",
			AuthenticationAlgorithm: "none", PrfAlgorithm: "hmac-sha256", DhGroup: "19", RoutingInstance: "default",
			Flags: []string{"IKE SA created"}, LocalIdentity: "192.168.255.2", RemoteIdentity: "10.200.0.1",
			Phase2: []*pb.Phase2Negotiation{{Type: "quick", Role: "Responder", Local: "192.168.255.2:500",
				Remote: "10.200.0.1:500", LocalIdentity: "ipv4_subnet(any:0,[0..7]=10.98.0.0/16)",
				RemoteIdentity: "ipv4_subnet(any:0,[0..7]=10.99.0.0/16)"}},
		})
	}
	return &pb.OpReply{Body: &pb.OpReply_IkeSecurityAssociations{IkeSecurityAssociations: l}}
}

// TestChunkedReply: a reply larger than the server's max_payload (1 MiB)
// reaches the caller whole (it used to be refused by the server, "maximum
// payload exceeded", and the caller timed out), also as the answer to a
// request sent in parts.
func TestChunkedReply(t *testing.T) {
	eachTransport(t, func(t *testing.T, s *broker.Server, o Options) {
		srv := connect(t, o)
		cli := connect(t, o)
		want := manySAs(10000)
		if n := proto.Size(want); n < 3*int(cli.NC.MaxPayload()) {
			t.Fatalf("reply of %d bytes is not larger than 3 x max_payload %d", n, cli.NC.MaxPayload())
		}
		var gotWords int
		if _, err := Serve(srv, subject.Kmd, subject.VerbOp, func(ctx context.Context, req *pb.OpRequest) (*pb.OpReply, error) {
			gotWords = len(req.GetWords())
			if req.GetWords()[0] == "fail" {
				return nil, fmt.Errorf("refused %d words", len(req.GetWords()))
			}
			return want, nil
		}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		got, err := Call[*pb.OpReply](ctx, cli, subject.Kmd, subject.VerbOp, opRequest())
		if err != nil {
			t.Fatalf("Call: %v", err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("reply of %d SAs differs from the %d sent", len(got.GetIkeSecurityAssociations().GetSas()), 10000)
		}

		// A request of 2.5 MB: in parts, the handler sees all of it.
		big := &pb.OpRequest{Words: make([]string, 50000)}
		for i := range big.Words {
			big.Words[i] = strings.Repeat("w", 48)
		}
		if n := proto.Size(big); n < 2*int(cli.NC.MaxPayload()) {
			t.Fatalf("request of %d bytes is not large", n)
		}
		if got, err = Call[*pb.OpReply](ctx, cli, subject.Kmd, subject.VerbOp, big); err != nil {
			t.Fatalf("large request: %v", err)
		}
		if gotWords != 50000 || !proto.Equal(got, want) {
			t.Errorf("large request: handler saw %d words, reply equal %v", gotWords, proto.Equal(got, want))
		}
		big.Words[0] = "fail"
		_, err = Call[*pb.OpReply](ctx, cli, subject.Kmd, subject.VerbOp, big)
		if err == nil || err.Error() != "refused 50000 words" {
			t.Errorf("large request refused by the handler: %v", err)
		}
		// Nothing is left held once fetched.
		srv.pend.mu.Lock()
		held := len(srv.pend.replies)
		srv.pend.mu.Unlock()
		if held != 0 {
			t.Errorf("after the calls %d replies are still held", held)
		}
	})
}

// TestChunkErrors: many small chunks; a chunk of a reply that is unknown
// or was already fetched is refused with an error.
func TestChunkErrors(t *testing.T) {
	s := startServer(t, broker.Options{})
	o := Options{InProcess: s.InProcess()}
	srv := connect(t, o)
	cli := connect(t, o)
	srv.maxChunk = 1000
	want := manySAs(50)
	if _, err := Serve(srv, subject.Kmd, subject.VerbOp, func(ctx context.Context, req *pb.OpRequest) (*pb.OpReply, error) {
		return want, nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := Call[*pb.OpReply](ctx, cli, subject.Kmd, subject.VerbOp, opRequest())
	if err != nil || !proto.Equal(got, want) {
		t.Fatalf("in 1000-byte chunks: %v", err)
	}

	subj := space.Subject(subject.Kmd, subject.VerbOp)
	raw := func(h, v string, data []byte) *nats.Msg {
		t.Helper()
		m, err := cli.NC.RequestMsgWithContext(ctx, &nats.Msg{Subject: subj, Data: data, Header: nats.Header{h: []string{v}}})
		if err != nil {
			t.Fatalf("%s %s: %v", h, v, err)
		}
		return m
	}
	// The first chunk by hand, then chunk 1 twice: the second time it is
	// gone only if it was the last; chunk 1 of an unknown reply never.
	first := raw(HeaderTimeout, "5000", mustMarshal(t, opRequest()))
	f := strings.Fields(first.Header.Get(HeaderChunks))
	if len(f) != 3 || f[1] == "1" {
		t.Fatalf("first message's %s %q", HeaderChunks, first.Header.Get(HeaderChunks))
	}
	if m := raw(HeaderChunk, f[0]+" 1", nil); m.Header.Get(HeaderError) != "" || len(m.Data) != 1000 {
		t.Errorf("chunk 1: %d bytes, error %q", len(m.Data), m.Header.Get(HeaderError))
	}
	for _, bad := range []string{"0123456789abcdef0123456789abcdef 1", f[0] + " 0", f[0] + " 999", f[0] + " x"} {
		if e := raw(HeaderChunk, bad, nil).Header.Get(HeaderError); !strings.Contains(e, "expired or unknown") {
			t.Errorf("chunk %q: error %q", bad, e)
		}
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
