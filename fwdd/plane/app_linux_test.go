package plane

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
	"github.com/sitesec/sitesec/services/bus"
	"github.com/sitesec/sitesec/services/daemon"
	"google.golang.org/protobuf/proto"
)

// reexecInNetns runs the named test again in a fresh network namespace
// (unshare -n), so that the TUN devices and sockets the App creates do not
// touch the machine's. It reports whether the caller is that child.
func reexecInNetns(t *testing.T, name string) bool {
	if os.Getenv("FWDD_TEST_NETNS") == name {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root for a network namespace, TUN devices and raw sockets")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("skipped: unshare not installed")
	}
	cmd := exec.Command("unshare", "-n", os.Args[0], "-test.run", "^"+name+"$", "-test.v")
	cmd.Env = append(os.Environ(), "FWDD_TEST_NETNS="+name)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("in a network namespace: %v\n%s", err, out)
	}
	return false
}

func TestAppOverBus(t *testing.T) {
	if !reexecInNetns(t, "TestAppOverBus") {
		return
	}
	run(t, "ip", "link", "set", "lo", "up")
	run(t, "ip", "link", "add", "out0", "type", "veth", "peer", "name", "out1")
	run(t, "ip", "addr", "add", "192.0.2.1/24", "dev", "out0")
	run(t, "ip", "link", "set", "out0", "up")

	srv, err := broker.Start(broker.Options{StoreDir: t.TempDir(), Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	space, _ := subject.New("", "t1")
	ctl, err := bus.Connect(context.Background(), space, bus.Options{URL: srv.ClientURL(), Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	// kmd's side: answer the sync with one dynamic SA pair, collect
	// events, punts and acks.
	syncs := make(chan *pb.SASyncRequest, 4)
	if _, err := ctl.Handle(subject.Kmd, subject.VerbSASync, func(_ context.Context, m proto.Message) (proto.Message, error) {
		syncs <- m.(*pb.SASyncRequest)
		return &pb.SASyncReply{Sas: dynamicSAs("aes-128-gcm", "", make([]byte, 20), nil, "192.0.2.1", "192.0.2.2", 0x3001, 0x3002, pb.Encapsulation_ENCAPSULATION_ESP, 0)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	events := make(chan *pb.SAEvent, 16)
	ctl.Subscribe(subject.Fwdd, subject.VerbSAEvents, func(m proto.Message) { events <- m.(*pb.SAEvent) })
	punts := make(chan *pb.IKEDatagram, 4)
	ctl.Subscribe(subject.Kmd, subject.VerbPunt, func(m proto.Message) { punts <- m.(*pb.IKEDatagram) })
	acks := make(chan *pb.ApplyAck, 4)
	ctl.Subscribe(subject.Cfgd, subject.VerbAck, func(m proto.Message) { acks <- m.(*pb.ApplyAck) })

	root := t.TempDir()
	app := NewApp()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, "fwdd", app, []string{"--root", root, "--bus", srv.ClientURL(), "--name", "t1"})
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("fwdd did not stop")
		}
	}()
	cfg := manualConfig("192.0.2.1", "192.0.2.2", "10.0.1.0/24", "10.0.2.0/24")
	cfg.Interfaces = []*pb.Interface{{Name: "ms-1/2/0", Units: []*pb.Unit{{Number: 1, InetAddresses: []string{"10.0.1.254/24"}}}}}
	// A second service set whose local gateway is not on the machine yet:
	// a gateway down, not a commit error.
	cfg.ServiceSets = append(cfg.ServiceSets, &pb.ServiceSet{
		Name:            "ss2",
		Style:           &pb.ServiceSet_NextHopService{NextHopService: &pb.NextHopService{InsideServiceInterface: "ms-1/2/0.3"}},
		IpsecVpnRules:   []string{"r2"},
		IpsecVpnOptions: &pb.IPsecVPNOptions{LocalGateway: &pb.LocalGateway{Address: "192.0.2.50"}},
	})
	cfg.IpsecVpn.Rules = append(cfg.IpsecVpn.Rules, &pb.Rule{Name: "r2", Terms: []*pb.Term{{Name: "t", Then: &pb.TermThen{RemoteGateway: "192.0.2.99",
		Sa: &pb.TermThen_Dynamic{Dynamic: &pb.DynamicSA{IkePolicy: "ike", IpsecPolicy: "ipsec"}}}}}})
	withPolicies(cfg, "ike", "ipsec")
	gwev := make(chan *pb.GatewayEvent, 16)
	ctl.Subscribe(subject.Fwdd, subject.VerbGatewayEvents, func(m proto.Message) { gwev <- m.(*pb.GatewayEvent) })
	cfg.RoutingOptions = &pb.RoutingOptions{StaticRoutes: []*pb.StaticRoute{{Prefix: "10.0.2.0/24", NextHops: []string{"ms-1/2/0.1"}}}}
	if err := ctl.PutConfig(context.Background(), &pb.ConfigSnapshot{Revision: 1, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-acks:
		if !a.Ok {
			t.Fatalf("apply failed: %v", a.Errors)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no ack")
	}
	select {
	case <-syncs:
	case <-time.After(10 * time.Second):
		t.Fatal("no sync request")
	}
	if out := run(t, "ip", "route", "show", "10.0.2.0/24"); !strings.Contains(out, "dev ms-1-2-0u1") {
		t.Fatalf("route: %s", out)
	}
	if out := run(t, "ip", "addr", "show", "dev", "ms-1-2-0u1"); !strings.Contains(out, "10.0.1.254/24") {
		t.Fatalf("address: %s", out)
	}

	waitGateway := func(set string, up bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ev := <-gwev:
				if ev.ServiceSet == set && ev.Up == up {
					return
				}
			case <-deadline:
				t.Fatalf("no gateway event %s up=%v", set, up)
			}
		}
	}
	waitGateway("ss2", false)
	run(t, "ip", "addr", "add", "192.0.2.50/24", "dev", "out0")
	waitGateway("ss2", true)
	// The address goes away and comes back: netlink tells fwdd at once.
	run(t, "ip", "addr", "del", "192.0.2.50/24", "dev", "out0")
	waitGateway("ss2", false)
	run(t, "ip", "addr", "add", "192.0.2.50/24", "dev", "out0")
	waitGateway("ss2", true)

	op := func(words string) *pb.OpReply {
		var rep pb.OpReply
		c, cl := context.WithTimeout(context.Background(), 5*time.Second)
		defer cl()
		if err := ctl.Request(c, subject.Fwdd, subject.VerbOp, &pb.OpRequest{Words: strings.Fields(words)}, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Error != "" {
			t.Fatalf("%s: %s", words, rep.Error)
		}
		return &rep
	}
	// Four SAs: the manual pair from the configuration, the synced pair.
	// (The synced pair is installed just after kmd's reply.)
	for deadline := time.Now().Add(5 * time.Second); ; {
		sas := op("show services ipsec-vpn ipsec security-associations detail").GetIpsecSecurityAssociations()
		n := 0
		for _, ss := range sas.GetServiceSets() {
			for _, tn := range ss.GetTunnels() {
				n += len(tn.GetSas())
			}
		}
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d SAs: %v", n, sas)
		}
		time.Sleep(20 * time.Millisecond)
	}
	im := op("show services ipsec-vpn interfaces").GetInterfaceMap()
	if len(im.GetEntries()) != 2 || im.Entries[0].LinuxName != "ms-1-2-0u1" || im.Entries[0].ServiceSet != "ss1" || im.Entries[1].LinuxName != "ms-1-2-0u3" {
		t.Fatalf("interface map %v", im)
	}
	if st := op("show services ipsec-vpn ipsec statistics"); len(st.GetIpsecStatistics().GetBlocks()) != 2 {
		t.Fatalf("statistics %v", st)
	}

	// kmd installs and deletes an SA pair.
	var irep pb.SAInstallReply
	c, cl := context.WithTimeout(context.Background(), 5*time.Second)
	defer cl()
	if err := ctl.Request(c, subject.Fwdd, subject.VerbSAInstall, &pb.SAInstall{Sas: dynamicSAs("chacha20-poly1305", "", make([]byte, 36), nil, "192.0.2.1", "192.0.2.2", 0x4001, 0x4002, pb.Encapsulation_ENCAPSULATION_ESP, 0)}, &irep); err != nil || irep.Error != "" {
		t.Fatalf("install: %v %s", err, irep.Error)
	}
	if err := ctl.Request(c, subject.Fwdd, subject.VerbSAInstall, &pb.SAInstall{Sas: []*pb.SA{{Spi: 5}}}, &irep); err != nil || irep.Error == "" {
		t.Fatalf("bad install accepted: %v", err)
	}
	var drep pb.SADeleteReply
	if err := ctl.Request(c, subject.Fwdd, subject.VerbSADelete, &pb.SADelete{Sas: []*pb.SAKey{{Spi: 0x4001}, {Spi: 0x4002}}, Reason: "test"}, &drep); err != nil || drep.Deleted != 2 {
		t.Fatalf("delete: %v %v", err, drep.Deleted)
	}
	for deleted := 0; deleted < 2; {
		select {
		case ev := <-events:
			switch ev.Kind {
			case pb.SAEventKind_SA_EVENT_KIND_DELETED:
				deleted++
			case pb.SAEventKind_SA_EVENT_KIND_ACQUIRE:
				t.Fatalf("acquire with no traffic: %v", ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no SA event")
		}
	}

	// IKE on 500 and on 4500 behind the non-ESP marker is punted to kmd.
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 7777})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	ike := []byte("an IKE_SA_INIT message, more or less")
	peer.WriteToUDPAddrPort(ike, netip.MustParseAddrPort("192.0.2.1:500"))
	peer.WriteToUDPAddrPort(append([]byte{0, 0, 0, 0}, ike...), netip.MustParseAddrPort("192.0.2.1:4500"))
	peer.WriteToUDPAddrPort([]byte{0xff}, netip.MustParseAddrPort("192.0.2.1:4500")) // keepalive: dropped
	ports := map[uint32]bool{}
	for range 2 {
		select {
		case dg := <-punts:
			if string(dg.Payload) != string(ike) || dg.Remote.Port != 7777 || dg.ServiceSet != "ss1" {
				t.Fatalf("punt %v", dg)
			}
			ports[dg.Local.Port] = true
		case <-time.After(5 * time.Second):
			t.Fatal("no punt")
		}
	}
	if !ports[500] || !ports[4500] {
		t.Fatalf("punted from ports %v", ports)
	}
	// kmd transmits from 4500: the marker is added (checked below); then
	// a commit that removes everything takes the interfaces, routes and
	// manual SAs away.
	defer func() {
		if t.Failed() {
			return
		}
		if err := ctl.PutConfig(context.Background(), &pb.ConfigSnapshot{Revision: 2, Config: &pb.Config{}}); err != nil {
			t.Fatal(err)
		}
		select {
		case a := <-acks:
			if !a.Ok {
				t.Fatalf("apply of the empty configuration: %v", a.Errors)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no ack")
		}
		if out, err := exec.Command("ip", "link", "show", "ms-1-2-0u1").CombinedOutput(); err == nil {
			t.Fatalf("inside interface still there: %s", out)
		}
		if out := run(t, "ip", "route", "show", "10.0.2.0/24"); strings.TrimSpace(out) != "" {
			t.Fatalf("route still there: %s", out)
		}
		for _, sa := range app.Plane().DB.All() {
			if sa.Config.GetType() == pb.SAType_SA_TYPE_MANUAL {
				t.Fatalf("manual SA %d survived", sa.Config.GetSpi())
			}
		}
	}()
	// kmd transmits from 4500: the marker is added.
	ctl.Publish(subject.Fwdd, subject.VerbTransmit, &pb.IKEDatagram{
		Local:   &pb.Endpoint{Address: []byte{192, 0, 2, 1}, Port: 4500},
		Remote:  &pb.Endpoint{Address: []byte{192, 0, 2, 1}, Port: 7777},
		Payload: ike})
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	nr, from, err := peer.ReadFromUDPAddrPort(buf)
	if err != nil || from.Port() != 4500 || string(buf[:nr]) != "\x00\x00\x00\x00"+string(ike) {
		t.Fatalf("transmit: %v from %v %q", err, from, buf[:nr])
	}
}
