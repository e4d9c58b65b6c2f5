package e2e

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var ahFailures = regexp.MustCompile(`AH authentication failures: (\d+)`)

// TestTunnelAH carries ping and TCP between two sitesec routers through
// AH (RFC 4302) and AH + ESP bundles (issue 13), configured as Junos's
// documentation writes them (`protocol ah`, `authentication-algorithm
// hmac-sha1-96`; a manual bundle with `auxiliary-spi`): IKEv2 AH, IKEv1
// AH and bundle, manual AH and bundle. On r2's outside link every
// tunnel packet is IP protocol 51 (nettool espwatch sees AH and no bare
// ESP); an AH packet resent with its sequence number moved (the ICV
// covers it) is dropped by r3 and counted as an AH authentication
// failure, and the tunnel goes on. (strongSwan's kernel-libipsec is ESP
// only: there is no charon interop for AH.)
func TestTunnelAH(t *testing.T) {
	for _, tc := range []struct{ name, auth, protocol, show string }{
		{"ikev2-ah", "psk", "ah", "AH"},
		{"ikev1-ah", "psk-v1", "ah", "AH"},
		{"ikev1-bundle", "psk-v1", "bundle", "BUNDLE"},
		{"manual-ah", "manual", "ah", "AH"},
		{"manual-bundle", "manual", "bundle", "BUNDLE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := tunnelUpProtocol(t, tc.auth, tc.protocol, nil)
			watch := tp.Background("r2", tp.Tool, "espwatch", "-i", "ge-0-0-0", "-t", "10m")
			checkTraffic(t, tp)
			out, err := watch.Interrupt(10 * time.Second)
			if err != nil {
				t.Fatalf("espwatch: %v", err)
			}
			var w struct {
				SPIs map[string]struct {
					Packets int `json:"packets"`
				} `json:"spis"`
			}
			if err := json.Unmarshal([]byte(out), &w); err != nil {
				t.Fatalf("espwatch output: %v: %q", err, out)
			}
			ah := 0
			for flow, s := range w.SPIs {
				t.Logf("r2 outside: %s: %d packets", flow, s.Packets)
				if !strings.HasPrefix(flow, "AH ") {
					t.Errorf("not AH on the wire: %s (%d packets)", flow, s.Packets)
					continue
				}
				ah += s.Packets
			}
			if ah < 40 {
				t.Errorf("only %d AH packets seen on r2's outside link", ah)
			}
			sas := tp.R2.MustCLI("show services ipsec-vpn ipsec security-associations")
			if !strings.Contains(sas, tc.show) {
				t.Errorf("show ... security-associations does not say %s:\n%s", tc.show, sas)
			}
			t.Logf("r2: show services ipsec-vpn ipsec security-associations\n%s", sas)

			// A corrupted AH packet: dropped and counted by r3.
			before := failures(t, tp.R3.MustCLI("show services ipsec-vpn ipsec statistics"))
			corrupt := tp.Background("r2", tp.Tool, "ahcorrupt", "-i", "ge-0-0-0", "-t", "20s")
			time.Sleep(300 * time.Millisecond) // the packet socket is open
			tp.Ping("r1", R4, 1)
			cout, err := corrupt.Wait(25 * time.Second)
			if err != nil {
				t.Fatalf("ahcorrupt: %v %s", err, cout)
			}
			t.Logf("ahcorrupt: %s", strings.TrimSpace(cout))
			var after int
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				stats := tp.R3.MustCLI("show services ipsec-vpn ipsec statistics")
				if after = failures(t, stats); after > before || time.Now().After(deadline) {
					t.Logf("r3 statistics:\n%s", stats)
					break
				}
			}
			if after != before+1 {
				t.Errorf("AH authentication failures on r3: %d before, %d after one corrupted packet", before, after)
			}
			if !tp.Ping("r1", R4, 3) {
				t.Error("the tunnel does not carry traffic after the corrupted packet")
			}
		})
	}
}

func failures(t *testing.T, stats string) int {
	t.Helper()
	n := 0
	for _, m := range ahFailures.FindAllStringSubmatch(stats, -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	if !strings.Contains(stats, "AH authentication failures") {
		t.Fatalf("no AH counters in show services ipsec-vpn ipsec statistics:\n%s", stats)
	}
	return n
}
