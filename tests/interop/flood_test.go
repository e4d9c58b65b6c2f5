package interop

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestFloodStrongSwan (issue 14 item 4): while 50 other sources on the
// peer's link flood sitesec with IKE_SA_INIT requests (Curve25519, each a
// Diffie-Hellman if it got through, cookies answered) at 3000/s for 12 s,
// charon still brings its tunnel up with sitesec as responder and a ping
// crosses; fwdd's punt limits drop the excess, and kmd stays up.
func TestFloodStrongSwan(t *testing.T) {
	k := newCase(t, Sets[3], false, 0)
	for i := range 50 {
		k.tp.IP(k.tp.Swan, "addr", "add", fmt.Sprintf("192.168.77.%d/24", 100+i), "dev", "eth0")
	}
	flood := k.tp.Spawn(k.tp.Swan, k.tp.Tool, "ikeflood", "-src", "192.168.77.100", "-n", "50", "-rate", "3000", "-t", "12s", SiteOutside)
	time.Sleep(2 * time.Second) // the flood is on
	start := time.Now()
	k.up("during the flood")
	t.Logf("tunnel up and a ping across %.1fs into the flood", time.Since(start).Seconds()+2)
	out, err := flood.Wait(30 * time.Second)
	if err != nil {
		t.Fatalf("ikeflood: %v\n%s", err, out)
	}
	var res struct{ Sent, Cookies, Responses uint64 }
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); err != nil {
		t.Fatalf("ikeflood output %q: %v", out, err)
	}
	t.Logf("flood: %+v", res)
	if res.Sent < 25000 {
		t.Fatalf("the flood sent only %d requests", res.Sent)
	}
	// No configuration answers these sources, so no half-open SA is
	// made for them (kmd/ikesa TestHalfOpenLimits covers sources that
	// have one).
	if res.Responses != 0 {
		t.Fatalf("%d half-open SAs made for unconfigured sources", res.Responses)
	}
	k.traffic()
	// Every datagram fwdd punted reached kmd's trace (flag all, level
	// all): at most the global bucket, 2000 + 1000/s for the ~13 s.
	punted := strings.Count(k.r.Trace("kmd"), "no configuration for peer 192.168.77.1")
	t.Logf("kmd received %d of the flood's %d requests", punted, res.Sent)
	if punted == 0 || punted > 2000+1000*14 {
		t.Errorf("kmd received %d of %d flood requests; fwdd's punt limit allows at most %d", punted, res.Sent, 2000+1000*14)
	}
}
