package bus

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/proto/subject"
)

// FuzzServe feeds untrusted request bytes to the request path of every
// registry verb: it must never panic, and the handler only ever sees its
// registry type.
func FuzzServe(f *testing.F) {
	if b, err := proto.Marshal(saInstall()); err == nil {
		f.Add(uint8(0), b, "")
	}
	if b, err := proto.Marshal(opRequest()); err == nil {
		f.Add(uint8(1), b, "1500")
	}
	f.Add(uint8(2), []byte{0x0a, 0xff, 0xff}, "-1")
	var requests []*subject.Entry
	for i := range subject.Registry {
		if subject.Registry[i].Kind == subject.Request {
			requests = append(requests, &subject.Registry[i])
		}
	}
	c := &Conn{base: context.Background()}
	f.Fuzz(func(t *testing.T, which uint8, data []byte, timeout string) {
		e := requests[int(which)%len(requests)]
		m := &nats.Msg{Subject: "x", Data: data, Header: nats.Header{HeaderTimeout: []string{timeout}}}
		c.serve(e, "x", m, func(_ context.Context, req proto.Message) (proto.Message, error) {
			if got, want := req.ProtoReflect().Descriptor().FullName(), e.Message.Descriptor().FullName(); got != want {
				t.Fatalf("handler got %s, want %s", got, want)
			}
			return e.Reply.New().Interface(), nil
		})
	})
}
