package bus

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
)

// TestIssue14Demonstrations replays the attacks of issue 14 item 1 with a
// daemon's own credentials on a bus with the rights broker.RightsOf
// gives. Each one worked before the ownership table; each must fail now.
func TestIssue14Demonstrations(t *testing.T) {
	s := startServer(t, broker.Options{Users: daemonUsers()})
	logs := map[string]*errLog{}
	conns := map[string]*Conn{}
	for _, d := range append([]string{subject.CLI}, subject.Everyone...) {
		logs[d] = &errLog{}
		conns[d] = connect(t, Options{URL: s.ClientURL(), User: d, Password: "pw-" + d, Name: d, OnError: logs[d].add})
	}
	ctx := context.Background()
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 300*time.Millisecond) }
	denied := func(who, subj string) {
		t.Helper()
		waitFor(t, who+"'s permissions violation on "+subj, func() bool {
			for _, err := range logs[who].all() {
				if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subj) {
					return true
				}
			}
			return false
		})
	}

	// kmd answers sa.sync with every CHILD SA, keys included.
	var syncs atomic.Int32
	if _, err := Serve(conns[subject.Kmd], subject.Kmd, subject.VerbSASync, func(context.Context, *pb.SASyncRequest) (*pb.SASyncReply, error) {
		syncs.Add(1)
		return &pb.SASyncReply{Sas: saInstall().GetSas()}, nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Run("sa.sync by pkid or cfgd", func(t *testing.T) {
		for _, d := range []string{subject.Pkid, subject.Cfgd, subject.Sitesecd, subject.CLI} {
			c, cancel := short()
			rep, err := Call[*pb.SASyncReply](c, conns[d], subject.Kmd, subject.VerbSASync, &pb.SASyncRequest{})
			cancel()
			if err == nil || len(rep.GetSas()) > 0 {
				t.Errorf("%s got %d SAs from kmd.sa.sync", d, len(rep.GetSas()))
			}
			denied(d, space.Subject(subject.Kmd, subject.VerbSASync))
		}
		if n := syncs.Load(); n != 0 {
			t.Errorf("kmd answered %d sa.sync requests from others than fwdd", n)
		}
		rep, err := Call[*pb.SASyncReply](ctx, conns[subject.Fwdd], subject.Kmd, subject.VerbSASync, &pb.SASyncRequest{})
		if err != nil || len(rep.GetSas()) != 2 {
			t.Fatalf("fwdd's own sa.sync: %v, %d SAs", err, len(rep.GetSas()))
		}
	})

	t.Run("sa.sync answer aimed at another inbox", func(t *testing.T) {
		// fwdd may call sa.sync, but not have the answer (keys) sent to
		// cfgd's inbox or anywhere else than its own.
		before := syncs.Load()
		for _, reply := range []string{subject.InboxPrefix(subject.Cfgd) + ".x", "sitesec.r0.cfgd.ack"} {
			if err := conns[subject.Fwdd].NC.PublishRequest(space.Subject(subject.Kmd, subject.VerbSASync), reply, nil); err != nil {
				t.Fatal(err)
			}
		}
		conns[subject.Fwdd].NC.Flush()
		waitFor(t, "kmd refuses 2 requests", func() bool {
			n := 0
			for _, err := range logs[subject.Kmd].all() {
				if strings.Contains(err.Error(), "not the inbox of a caller") {
					n++
				}
			}
			return n == 2
		})

		if syncs.Load() != before {
			t.Error("kmd served a request whose answer goes to someone else")
		}
	})

	t.Run("JetStream consumer delivering into a handler", func(t *testing.T) {
		// A daemon may create consumers on the configuration bucket (to
		// watch it), and the server does not check a push consumer's
		// deliver subject against its creator's rights: pkid can have
		// the stored configuration delivered on kmd.sa.sync and
		// kmd.punt. kmd must take neither for a request or an event.
		if err := conns[subject.Sitesecd].SetupBuckets(ctx); err != nil {
			t.Fatal(err)
		}
		if err := conns[subject.Cfgd].PutConfig(ctx, snapshot(1)); err != nil {
			t.Fatal(err)
		}
		var punts atomic.Int32
		if _, err := Listen(conns[subject.Kmd], subject.Kmd, subject.VerbPunt, func(*pb.IKEDatagram) { punts.Add(1) }); err != nil {
			t.Fatal(err)
		}
		before := syncs.Load()
		droppedBefore := conns[subject.Kmd].Dropped()
		js, _ := jetstream.New(conns[subject.Pkid].NC)
		for _, verb := range []string{subject.VerbSASync, subject.VerbPunt} {
			cc := jetstream.ConsumerConfig{DeliverSubject: space.Subject(subject.Kmd, verb), AckPolicy: jetstream.AckNonePolicy}
			if verb == subject.VerbSASync {
				cc.DeliverGroup = subject.Kmd // the handlers' queue group
			}
			if _, err := js.CreateConsumer(ctx, "KV_"+space.ConfigBucket(), cc); err != nil {
				t.Fatalf("pkid creates a push consumer: %v", err)
			}
		}
		waitFor(t, "the deliveries refused and dropped", func() bool {
			refused := 0
			for _, err := range logs[subject.Kmd].all() {
				if strings.Contains(err.Error(), `reply subject "$JS.ACK.`) {
					refused++
				}
			}
			return refused >= 1 && conns[subject.Kmd].Dropped() > droppedBefore
		})
		if syncs.Load() != before || punts.Load() != 0 {
			t.Errorf("kmd served %d sa.sync and took %d punts from JetStream deliveries", syncs.Load()-before, punts.Load())
		}
	})

	t.Run("fwdd answers pkid.validate first", func(t *testing.T) {
		if _, err := Serve(conns[subject.Pkid], subject.Pkid, subject.VerbValidate, func(context.Context, *pb.ValidateChainRequest) (*pb.ValidateChainReply, error) {
			return &pb.ValidateChainReply{Valid: false, Reason: "pkid: untrusted"}, nil
		}); err != nil {
			t.Fatal(err)
		}
		var forged atomic.Int32
		Serve(conns[subject.Fwdd], subject.Pkid, subject.VerbValidate, func(context.Context, *pb.ValidateChainRequest) (*pb.ValidateChainReply, error) {
			forged.Add(1)
			return &pb.ValidateChainReply{Valid: true, PublicKey: []byte("attacker's key")}, nil
		})
		denied(subject.Fwdd, space.Subject(subject.Pkid, subject.VerbValidate))
		// A raw subscription that answers before pkid does.
		conns[subject.Fwdd].NC.Subscribe(space.Subject(subject.Pkid, subject.VerbValidate), func(m *nats.Msg) {
			forged.Add(1)
			m.Respond([]byte{0x08, 0x01})
		})
		conns[subject.Fwdd].NC.Flush()
		for range 50 {
			rep, err := Call[*pb.ValidateChainReply](ctx, conns[subject.Kmd], subject.Pkid, subject.VerbValidate, &pb.ValidateChainRequest{})
			if err != nil || rep.GetValid() {
				t.Fatalf("kmd's validate: %v, valid %v", err, rep.GetValid())
			}
		}
		if forged.Load() != 0 {
			t.Errorf("fwdd saw %d validate requests", forged.Load())
		}
	})

	t.Run("pkid.sign by others than kmd", func(t *testing.T) {
		var signs atomic.Int32
		if _, err := Serve(conns[subject.Pkid], subject.Pkid, subject.VerbSign, func(context.Context, *pb.SignRequest) (*pb.SignReply, error) {
			signs.Add(1)
			return &pb.SignReply{Signature: []byte("sig")}, nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{subject.Fwdd, subject.Cfgd, subject.Sitesecd, subject.CLI} {
			c, cancel := short()
			_, err := Call[*pb.SignReply](c, conns[d], subject.Pkid, subject.VerbSign, &pb.SignRequest{Data: []byte("AUTH")})
			cancel()
			if err == nil {
				t.Errorf("%s had pkid sign", d)
			}
			denied(d, space.Subject(subject.Pkid, subject.VerbSign))
		}
		if signs.Load() != 0 {
			t.Errorf("pkid signed %d times for others", signs.Load())
		}
		if _, err := Call[*pb.SignReply](ctx, conns[subject.Kmd], subject.Pkid, subject.VerbSign, &pb.SignRequest{}); err != nil {
			t.Errorf("kmd's sign: %v", err)
		}
	})

	t.Run("cfgd points a stream at fwdd.sa", func(t *testing.T) {
		js, _ := jetstream.New(conns[subject.Cfgd].NC)
		capture := []string{space.Subject(subject.Fwdd, "sa.>")}
		c, cancel := short()
		defer cancel()
		if _, err := js.UpdateStream(c, jetstream.StreamConfig{Name: "KV_" + space.ConfigBucket(),
			Subjects: append([]string{"$KV." + space.ConfigBucket() + ".>"}, capture...)}); err == nil {
			t.Error("cfgd changed its bucket's stream to capture SA installs")
		}
		c, cancel = short()
		defer cancel()
		if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "CAPTURE", Subjects: capture}); err == nil {
			t.Error("cfgd created a stream capturing SA installs")
		}
		c, cancel = short()
		defer cancel()
		if _, err := js.UpdateStream(c, jetstream.StreamConfig{Name: "KV_" + space.ConfigBucket(),
			Subjects:  []string{"$KV." + space.ConfigBucket() + ".>"},
			RePublish: &jetstream.RePublish{Source: ">", Destination: space.Subject(subject.Fwdd, subject.VerbSAInstall)}}); err == nil {
			t.Error("cfgd made its bucket republish into fwdd.sa.install")
		}
		denied(subject.Cfgd, "$JS.API.STREAM.UPDATE.KV_"+space.ConfigBucket())
		denied(subject.Cfgd, "$JS.API.STREAM.CREATE.CAPTURE")
		// And it still does its job.
		if err := conns[subject.Cfgd].PutConfig(ctx, snapshot(1)); err != nil {
			t.Fatalf("cfgd's own put: %v", err)
		}
	})
}
