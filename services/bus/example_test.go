package bus_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
	"github.com/sitesec/sitesec/services/bus"
)

// A daemon serves its op verb, and the cli asks it something.
func Example() {
	dir, _ := os.MkdirTemp("", "bus-example")
	defer os.RemoveAll(dir)
	srv, err := broker.Start(broker.Options{StoreDir: filepath.Join(dir, "nats"), Port: broker.DontListen})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown()
	space, _ := subject.New("", "")
	ctx := context.Background()

	kmd, err := bus.Connect(ctx, space, bus.Options{InProcess: srv.InProcess(), Name: subject.Kmd})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer kmd.Close()
	bus.Serve(kmd, subject.Kmd, subject.VerbOp, func(ctx context.Context, req *pb.OpRequest) (*pb.OpReply, error) {
		if req.GetWords()[0] != "show" {
			return nil, fmt.Errorf("syntax error, expecting <command>")
		}
		return &pb.OpReply{Lines: []string{"IKE SA count: 0"}}, nil
	})

	cli, err := bus.Connect(ctx, space, bus.Options{InProcess: srv.InProcess(), Name: subject.CLI})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	rep, err := bus.Call[*pb.OpReply](ctx, cli, subject.Kmd, subject.VerbOp, &pb.OpRequest{Words: []string{"show", "services", "ipsec-vpn", "ike", "security-associations"}})
	fmt.Println(rep.GetLines(), err)
	_, err = bus.Call[*pb.OpReply](ctx, cli, subject.Kmd, subject.VerbOp, &pb.OpRequest{Words: []string{"shw"}})
	fmt.Println("error:", err)
	_, err = bus.Call[*pb.OpReply](ctx, cli, subject.Pkid, subject.VerbOp, &pb.OpRequest{Words: []string{"show"}})
	fmt.Println("error:", err)
	// Output:
	// [IKE SA count: 0] <nil>
	// error: syntax error, expecting <command>
	// error: bus: no pkid answers on sitesec.r0.pkid.op (is pkid running?)
}
