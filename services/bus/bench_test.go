package bus

import (
	"context"
	"testing"

	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/subject"
	"github.com/sitesec/sitesec/services/broker"
)

// BenchmarkRequestReply is one `show system processes`: an OpRequest
// answered with a ProcessList of five rows, through the embedded server,
// in-process and over TCP loopback.
func BenchmarkRequestReply(b *testing.B) {
	s := startServer(b, broker.Options{})
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			o := tr.opts(s)
			srv, cli := connect(b, o), connect(b, o)
			rep := processList()
			if _, err := Serve(srv, subject.Sitesecd, subject.VerbOp, func(context.Context, *pb.OpRequest) (*pb.OpReply, error) {
				return rep, nil
			}); err != nil {
				b.Fatal(err)
			}
			req := opRequest()
			ctx := context.Background()
			got := new(pb.OpReply)
			b.ReportAllocs()
			for b.Loop() {
				if err := cli.Request(ctx, subject.Sitesecd, subject.VerbOp, req, got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSAInstall is kmd installing both halves of a CHILD SA.
func BenchmarkSAInstall(b *testing.B) {
	s := startServer(b, broker.Options{})
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			o := tr.opts(s)
			srv, cli := connect(b, o), connect(b, o)
			if _, err := Serve(srv, subject.Fwdd, subject.VerbSAInstall, func(context.Context, *pb.SAInstall) (*pb.SAInstallReply, error) {
				return &pb.SAInstallReply{}, nil
			}); err != nil {
				b.Fatal(err)
			}
			req := saInstall()
			ctx := context.Background()
			got := new(pb.SAInstallReply)
			b.ReportAllocs()
			for b.Loop() {
				if err := cli.Request(ctx, subject.Fwdd, subject.VerbSAInstall, req, got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
