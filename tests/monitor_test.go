package tests

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/tests/harness"
)

// TestMonitorBusDecodesAndRedacts taps the router's bus while an operator
// configures a pre-shared key: every line is JSON decoded through the
// subject registry, and the key never shows.
func TestMonitorBusDecodesAndRedacts(t *testing.T) {
	r := harness.Start(t)
	mon := exec.Command(r.Bin+"/cli", "--root", r.Root, "-c", "monitor bus duration 6")
	var out bytes.Buffer
	mon.Stdout, mon.Stderr = &out, &out
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	script := "configure\nset services ipsec-vpn ike policy p1 pre-shared-key ascii-text SECRETKEY-42\nshow services\ncommit check\nexit configuration-mode\n"
	if o, err := r.CLIStdin(script); err != nil {
		t.Fatalf("configure: %v\n%s", err, o)
	}
	if err := mon.Wait(); err != nil {
		t.Fatalf("monitor: %v\n%s", err, out.String())
	}
	s := out.String()
	if strings.Contains(s, "SECRETKEY-42") {
		t.Fatalf("the key shows in the bus tap:\n%s", s)
	}
	for _, want := range []string{`"type":"sitesec.v1.Health"`, `"type":"sitesec.v1.ConfigEditRequest"`, `"(redacted)"`, `"subject":"sitesec.r0.cfgd.config"`} {
		if !strings.Contains(s, want) {
			t.Errorf("tap lacks %s:\n%s", want, s)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if !strings.HasPrefix(line, "{") {
			t.Errorf("not a JSON line: %q", line)
		}
	}
	// Nor in any trace file.
	for _, d := range []string{"cfgd", "kmd", "pkid", "fwdd", "sitesecd"} {
		if strings.Contains(r.Trace(d), "SECRETKEY-42") {
			t.Errorf("key in the %s trace", d)
		}
	}
}
