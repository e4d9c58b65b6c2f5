package plantest

import (
	"testing"

	"github.com/sitesec/sitesec/services/plan"
)

func TestConfigs(t *testing.T) {
	cs, err := Configs("../testdata/corpus", 200)
	if err != nil {
		t.Fatal(err)
	}
	tunnels := 0
	for _, c := range cs {
		p, errs := plan.Resolve(c.Config)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", c.Name, errs)
		}
		tunnels += len(Views(p, true, true))
	}
	if tunnels < 500 {
		t.Fatalf("%d tunnels in %d configurations", tunnels, len(cs))
	}
	t.Logf("%d tunnels in %d configurations", tunnels, len(cs))
}
