package server

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sitesec/sitesec/cfgd/conf"
	"github.com/sitesec/sitesec/proto/pb"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite services/plan/testdata/corpus")

// corpusSources are the configurations the plan contract test runs
// (services/plan/testdata/corpus): Juniper's published examples, the
// seed example, the deployment examples.
var corpusSources = []string{
	"testdata/juniper/*.conf",
	"testdata/juniper/*.set",
	"../conf/testdata/seed.conf",
	"../../deploy/config/*.conf",
	"../../deploy/two-routers/config/*.conf",
	"../../deploy/examples/*/*.conf",
}

// TestPlanCorpus converts each corpus configuration as a commit does
// (check, conversion, plan) and keeps its typed form in
// services/plan/testdata/corpus, where kmd's and fwdd's contract tests
// read it (they cannot parse configuration text). The files must be up
// to date: go test ./server -run TestPlanCorpus -update-corpus rewrites
// them.
func TestPlanCorpus(t *testing.T) {
	dir := "../../services/plan/testdata/corpus"
	want := map[string][]byte{}
	for _, pat := range corpusSources {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			text, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var n *conf.Node
			if strings.HasSuffix(f, ".set") {
				n = conf.New()
				err = conf.ParseSet(n, f, string(text))
			} else {
				n, err = conf.Parse(f, string(text))
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			c, err := validate(n)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(c.GetPlan().GetSets()) == 0 {
				continue // no IPsec service set
			}
			c.Plan = nil // the contract tests resolve it themselves
			b, err := protojson.MarshalOptions{Multiline: true}.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			name := strings.NewReplacer("../", "", "/", "-").Replace(f)
			want[strings.TrimSuffix(name, filepath.Ext(name))+".json"] = b
		}
	}
	if len(want) < 6 {
		t.Fatalf("%d corpus configurations", len(want))
	}
	if *updateCorpus {
		_ = os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range want {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	have, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(have) != len(want) {
		t.Errorf("%d files in %s, want %d: run go test ./server -run TestPlanCorpus -update-corpus", len(have), dir, len(want))
	}
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%v: run go test ./server -run TestPlanCorpus -update-corpus", err)
			continue
		}
		// protojson's spacing is not stable: compare the messages.
		var x, y pb.Config
		if err := protojson.Unmarshal(got, &x); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = protojson.Unmarshal(b, &y)
		if !proto.Equal(&x, &y) {
			t.Errorf("%s is out of date: run go test ./server -run TestPlanCorpus -update-corpus", name)
		}
	}
}
