package subject

import (
	"testing"

	"github.com/sitesec/sitesec/proto/pb"
)

func TestSubjectAndLookup(t *testing.T) {
	sp, err := New("", "r1")
	if err != nil {
		t.Fatal(err)
	}
	s := sp.Subject(Fwdd, VerbSAInstall)
	if s != "sitesec.r1.fwdd.sa.install" {
		t.Fatalf("subject = %q", s)
	}
	e, ok := Lookup(s)
	if !ok || e.Kind != Request || e.Message.New().Interface().ProtoReflect().Descriptor().FullName() != (&pb.SAInstall{}).ProtoReflect().Descriptor().FullName() {
		t.Fatalf("lookup = %+v %v", e, ok)
	}
	if e.Reply.New().Descriptor().Name() != "SAInstallReply" {
		t.Fatalf("reply = %v", e.Reply.New().Descriptor().Name())
	}
	if _, ok := Lookup("sitesec.r1.fwdd.nosuchverb"); ok {
		t.Fatal("unknown verb found")
	}
	if _, ok := Lookup("sitesec.r1"); ok {
		t.Fatal("short subject found")
	}
	if sp.ConfigBucket() != "sitesec_r1_config" || sp.All() != "sitesec.r1.>" {
		t.Fatal(sp.ConfigBucket(), sp.All())
	}
}

func TestNewRejectsBadNames(t *testing.T) {
	for _, n := range []string{"a.b", "a b", "a*", ">", "x/y"} {
		if _, err := New(n, "r"); err == nil {
			t.Errorf("root %q accepted", n)
		}
		if _, err := New("sitesec", n); err == nil {
			t.Errorf("router %q accepted", n)
		}
	}
}

func TestRegistryUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range Registry {
		k := e.Daemon + "." + e.Verb
		if seen[k] {
			t.Errorf("duplicate %s", k)
		}
		seen[k] = true
		if e.Kind == Request && e.Reply == nil {
			t.Errorf("%s: request without reply type", k)
		}
	}
}

func TestAccessCoversRegistry(t *testing.T) {
	for _, e := range Registry {
		a, ok := AccessOf(e.Daemon, e.Verb)
		if !ok {
			t.Errorf("%s.%s has no row in AccessTable", e.Daemon, e.Verb)
			continue
		}
		if len(a.From) == 0 {
			t.Errorf("%s.%s: nobody may use it", e.Daemon, e.Verb)
		}
		if e.Kind == Publish && len(a.To) == 0 {
			t.Errorf("%s.%s: published for nobody", e.Daemon, e.Verb)
		}
	}
	if len(AccessTable) != len(Registry) {
		t.Errorf("%d access rows for %d subjects", len(AccessTable), len(Registry))
	}
	if !MayCall(Kmd, Fwdd, VerbSAInstall) || MayCall(Cfgd, Fwdd, VerbSAInstall) || MayCall(Kmd, Fwdd, "nosuch") {
		t.Error("MayCall")
	}
	// Only kmd lists fwdd's SAs (issue 11 item 3).
	for _, d := range append([]string{CLI, Sitesecd}, Daemons...) {
		if MayCall(d, Fwdd, VerbSAList) != (d == Kmd) {
			t.Errorf("MayCall(%s, fwdd, sa.list) = %v", d, !(d == Kmd))
		}
	}
}
