package spd

import (
	"strings"
	"testing"

	"github.com/sitesec/sitesec/proto/pb"
)

// TestManualAHMessage: the refusal of a manual AH SA reads as an operator
// message, without internal references (issue 12 item 6).
func TestManualAHMessage(t *testing.T) {
	_, err := manualSA(&Set{}, &Term{}, &pb.ManualSADirection{Protocol: pb.IPsecProtocol_IPSEC_PROTOCOL_AH})
	if err == nil || err.Error() != "protocol ah is not supported: the data plane is ESP only" {
		t.Fatalf("%v", err)
	}
	for _, w := range []string{"SPEC", "IPSEC_PROTOCOL"} {
		if strings.Contains(err.Error(), w) {
			t.Errorf("%q in %q", w, err)
		}
	}
}
