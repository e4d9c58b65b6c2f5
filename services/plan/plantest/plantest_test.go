package plantest

import (
	"testing"

	"github.com/sitesec/sitesec/proto/pb"
)

// Every configuration resolves, and together they hold enough tunnels to
// be a contract.
func TestConfigs(t *testing.T) {
	tunnels := Contract(t, "../testdata/corpus", 200, func(_ Named, p *pb.Plan) (want, got []View) {
		v := Views(p, true, true)
		return v, v
	})
	if tunnels < 500 {
		t.Fatalf("%d tunnels", tunnels)
	}
}
