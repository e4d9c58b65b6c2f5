package plane

import (
	"net/netip"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/sitesec/sitesec/fwdd/sad"
	"github.com/sitesec/sitesec/proto/pb"
	"github.com/sitesec/sitesec/proto/redact"
)

// TestSAList: fwdd.sa.list answers a restarted kmd with the dynamic SAs,
// keyed as fwdd.sa.delete takes them, and without key material (issue 11
// item 3: kmd used to parse fwdd's show output).
func TestSAList(t *testing.T) {
	db, _ := sad.Open(sad.Options{})
	if err := db.Install(dynamicSAs("aes-128-gcm", "", make([]byte, 20), nil, "192.0.2.1", "192.0.2.2", 0x1010, 0x1020, pb.Encapsulation_ENCAPSULATION_ESP, 0), 0); err != nil {
		t.Fatal(err)
	}
	manual := dynamicSAs("aes-128-gcm", "", make([]byte, 20), nil, "192.0.2.1", "192.0.2.2", 0x1030, 0x1040, pb.Encapsulation_ENCAPSULATION_ESP, 0)
	for _, m := range manual {
		m.Type = pb.SAType_SA_TYPE_MANUAL
	}
	if err := db.Install(manual, 0); err != nil {
		t.Fatal(err)
	}
	rep := saList(db.All())
	if len(rep.Sas) != 2 {
		t.Fatalf("%d SAs listed, want the dynamic pair: %v", len(rep.Sas), rep.Sas)
	}
	for _, e := range rep.Sas {
		dest, _ := netip.AddrFromSlice(e.Key.Destination)
		want := map[pb.Direction]string{pb.Direction_DIRECTION_INBOUND: "192.0.2.1", pb.Direction_DIRECTION_OUTBOUND: "192.0.2.2"}[e.Key.Direction]
		if dest.String() != want || e.ServiceSet == "" {
			t.Fatalf("%v: destination %s, want %s", e, dest, want)
		}
		if remote, _ := netip.AddrFromSlice(e.Remote.Address); remote.String() != "192.0.2.2" {
			t.Fatalf("remote %s", remote)
		}
		if n := db.Delete(sad.Filter{Keys: []*pb.SAKey{e.Key}}, "test"); n != 1 {
			t.Fatalf("the listed key %v deletes %d SAs", e.Key, n)
		}
	}
	var walk func(md protoreflect.MessageDescriptor, depth int)
	walk = func(md protoreflect.MessageDescriptor, depth int) {
		for i := 0; i < md.Fields().Len() && depth < 5; i++ {
			fd := md.Fields().Get(i)
			if redact.IsSecret(fd) {
				t.Fatalf("%s: the list can carry key material", fd.FullName())
			}
			if fd.Message() != nil {
				walk(fd.Message(), depth+1)
			}
		}
	}
	walk(rep.ProtoReflect().Descriptor(), 0)
}
