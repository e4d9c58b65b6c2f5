package bus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
)

// manySets is a candidate of n service sets, each with its rule.
func manySets(n int) *pb.ConfigSnapshot {
	c := &pb.Config{IpsecVpn: &pb.IPsecVPN{}}
	for i := range n {
		c.ServiceSets = append(c.ServiceSets, &pb.ServiceSet{Name: fmt.Sprintf("service-set-%05d", i),
			Style:           &pb.ServiceSet_NextHopService{NextHopService: &pb.NextHopService{InsideServiceInterface: fmt.Sprintf("ms-1/2/0.%d", 2*i+1), OutsideServiceInterface: fmt.Sprintf("ms-1/2/0.%d", 2*i+2)}},
			IpsecVpnRules:   []string{fmt.Sprintf("rule-%05d", i)},
			IpsecVpnOptions: &pb.IPsecVPNOptions{LocalGateway: &pb.LocalGateway{Address: fmt.Sprintf("10.%d.%d.1", i/250, i%250)}}})
		c.IpsecVpn.Rules = append(c.IpsecVpn.Rules, &pb.Rule{Name: fmt.Sprintf("rule-%05d", i), Terms: []*pb.Term{{Name: "t1",
			From: &pb.TermFrom{SourceAddress: []string{fmt.Sprintf("192.168.%d.0/24", i%250)}, DestinationAddress: []string{fmt.Sprintf("172.%d.%d.0/24", 16+i/250, i%250)}},
			Then: &pb.TermThen{RemoteGateway: fmt.Sprintf("100.%d.%d.2", 64+i/250, i%250)}}}})
	}
	return &pb.ConfigSnapshot{Revision: 7, Config: c}
}

// TestRequestInParts: a request over the server's maximum payload (cfgd's
// prepare round with a 10,000-service-set candidate) reaches the handler
// whole, in parts, and the handler's answer or error comes back.
func TestRequestInParts(t *testing.T) {
	eachTransport(t, func(t *testing.T, s *broker.Server, o Options) {
		srv, cli := connect(t, o), connect(t, o)
		snap := manySets(10000)
		size := proto.Size(snap)
		if size <= int(cli.NC.MaxPayload()) {
			t.Fatalf("the snapshot (%d bytes) fits in one message of %d", size, cli.NC.MaxPayload())
		}
		if _, err := srv.Handle(subject.Fwdd, subject.VerbPrepare, func(_ context.Context, m proto.Message) (proto.Message, error) {
			s := m.(*pb.ConfigSnapshot)
			if len(s.GetConfig().GetServiceSets()) == 10000 && s.GetConfig().GetServiceSets()[9999].GetName() == "service-set-09999" {
				return &pb.ApplyAck{Ok: false, Revision: s.GetRevision(), Errors: []string{fmt.Sprintf("[edit services service-set %s] refused", s.GetConfig().GetServiceSets()[9999].GetName())}}, nil
			}
			return nil, errors.New("not whole")
		}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var ack pb.ApplyAck
		if err := cli.Request(ctx, subject.Fwdd, subject.VerbPrepare, snap, &ack); err != nil {
			t.Fatal(err)
		}
		if ack.GetRevision() != 7 || len(ack.GetErrors()) != 1 || ack.GetErrors()[0] != "[edit services service-set service-set-09999] refused" {
			t.Fatalf("ack %v", &ack)
		}
		t.Logf("%d bytes in parts of %d", size, cli.partSize())
		if n := srv.partialCount(); n != 0 {
			t.Fatalf("%d partial requests kept after the whole one", n)
		}

		// A part whose first part went elsewhere is refused, and nothing is kept.
		m, err := cli.NC.RequestMsg(&nats.Msg{Subject: space.Subject(subject.Fwdd, subject.VerbPrepare), Data: []byte{1},
			Header: nats.Header{HeaderPart: []string{"abc 1 3"}}}, 5*time.Second)
		if err != nil || m.Header.Get(HeaderError) == "" {
			t.Fatalf("a lone second part: %v %v", err, m)
		}
		if n := srv.partialCount(); n != 0 {
			t.Fatalf("%d partial requests kept", n)
		}
	})
}

func (c *Conn) partialCount() int {
	c.partsMu.Lock()
	defer c.partsMu.Unlock()
	return len(c.parts)
}
