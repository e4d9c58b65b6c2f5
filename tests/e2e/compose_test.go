package e2e

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/tests/harness"
)

var update = flag.Bool("update", false, "rewrite deploy/two-routers/config from the template")

// composeRouters are the two routers of deploy/two-routers and the
// topology routers whose addresses they take.
var composeRouters = []struct{ name, like string }{{"r1", "r2"}, {"r2", "r3"}}

// TestComposeExampleConfig keeps deploy/two-routers/config/*.conf (the
// example's pre-shared-key tunnel) equal to the tunnel template.
func TestComposeExampleConfig(t *testing.T) {
	for _, r := range composeRouters {
		c := TunnelFor(r.like, "psk")
		c.HostName = r.name
		want, err := c.Render()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(Repo(), "deploy", "two-routers", "config", r.name+".conf")
		if *update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s differs from the template: go test ./tests/e2e -run TestComposeExampleConfig -update", path)
		}
	}
}

// waitProcesses waits until router r lists its four daemons running with
// the bus connected.
func waitProcesses(t *testing.T, c *Compose, r string, d time.Duration) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(cfgd|kmd|pkid|fwdd)\s+\d+\s+running\s.*\sconnected\s`)
	var out string
	var err error
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(time.Second) {
		out, err = c.CLI(r, "show system processes")
		if err == nil && len(re.FindAllString(out, -1)) == 4 {
			return out
		}
	}
	t.Fatalf("router %s: want cfgd, kmd, pkid and fwdd running and connected: %v\n%s", r, err, out)
	return ""
}

// composePing pings host2 from host1 and reports whether all but at most
// one of count probes were answered.
func composePing(t *testing.T, c *Compose, count string) (PingResult, error) {
	out, err := c.Exec(time.Minute, "host1", "/sitesec", "ping", "-c", count, "-i", "50ms", "-json", "10.0.0.2")
	if err != nil {
		return PingResult{}, err
	}
	return parsePing(t, out), nil
}

// TestComposeTwoRouters runs deploy/two-routers: images from scratch, the
// two routers up with every daemon in its own container, a tunnel, host1
// pinging host2 through it, and `docker compose restart kmd-r1` keeping it.
func TestComposeTwoRouters(t *testing.T) {
	cmd := RequireDocker(t)
	bin := harness.Bin(t)
	LockCompose(t, 4*time.Minute)
	start := time.Now()
	BuildImages(t)
	c := NewCompose(t, cmd, filepath.Join(Repo(), "deploy", "two-routers", "compose.yaml"), bin)
	c.Up()
	for _, r := range composeRouters {
		out := waitProcesses(t, c, r.name, 60*time.Second)
		t.Logf("%s:\n%s", r.name, out)
	}
	t.Logf("images and routers up in %s", time.Since(start).Round(time.Second))

	// The tunnel: manual SAs first (no IKE needed).
	for _, r := range composeRouters {
		tc := TunnelFor(r.like, "manual")
		tc.HostName = r.name
		conf, err := tc.Render()
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Commit(r.name, conf)
		Need(t, err == nil && strings.Contains(out, "commit complete"), "commit of the manual tunnel on %s: %v %s", r.name, err, lastLines(out, 4))
	}
	var ok bool
	for deadline := time.Now().Add(10 * time.Second); !ok && time.Now().Before(deadline); {
		ok = c.HasLink("fwdd-r1", InsideTun) && c.HasLink("fwdd-r2", InsideTun)
		if !ok {
			time.Sleep(300 * time.Millisecond)
		}
	}
	Need(t, ok, "fwdd does not create inside interfaces in its container yet (no %s)", InsideTun)
	var p PingResult
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if p, err = composePing(t, c, "3"); err == nil && p.Received > 0 {
			break
		}
	}
	if err != nil || p.Received == 0 {
		stats, _ := c.CLI("r1", "show services ipsec-vpn ipsec statistics")
		t.Fatalf("host1 cannot ping host2 through the manual tunnel: %v %+v\nr1 statistics:\n%s", err, p, stats)
	}
	stats, err := c.CLI("r1", "show services ipsec-vpn ipsec statistics")
	if err != nil || !regexp.MustCompile(`Encrypted packets:\s+[1-9]`).MatchString(stats) {
		t.Errorf("r1 counted no encrypted packet: the ping did not go through the tunnel? %v\n%s", err, stats)
	}
	if out, err := c.Exec(time.Minute, "host1", "/sitesec", "tcp", "-n", "262144", "-mss", "1200", "10.0.0.2:5001"); err != nil {
		t.Errorf("TCP host1 -> host2: %v %s", err, out)
	}

	// docker compose restart of each of r1's services under 200 pkt/s.
	var rows []restartRow
	for _, svc := range []string{"kmd", "cfgd", "pkid", "nats", "fwdd"} {
		rows = append(rows, composeRestart(t, c, svc))
	}
	logRows(t, "docker compose restart of r1's services under 200 pkt/s ping from host1 to host2 (manual SAs); tcp stall not measured:", rows)
	checkGoals(t, rows)
	waitProcesses(t, c, "r1", 30*time.Second)
	if p, err = composePing(t, c, "20"); err != nil || p.Received != p.Sent {
		t.Errorf("after the restarts: %v, %d of %d answered", err, p.Received, p.Sent)
	}
	t.Logf("manual tunnel and restarts checked at %s", time.Since(start).Round(time.Second))

	// The example's own configuration: IKEv2 with a pre-shared key.
	for _, r := range composeRouters {
		// The cli reads the file itself: from this machine, the example's
		// directory (its containers mount it as /config).
		file := filepath.Join(filepath.Dir(c.File), "config", r.name+".conf")
		out, err := c.CLI(r.name, "configure\nload override "+file+"\ncommit\nexit configuration-mode\n")
		Need(t, err == nil && strings.Contains(out, "commit complete"), "commit of the example's PSK tunnel on %s: %v %s", r.name, err, lastLines(out, 4))
	}
	ok = false
	for deadline := time.Now().Add(30 * time.Second); !ok && time.Now().Before(deadline); time.Sleep(time.Second) {
		p, err = composePing(t, c, "2")
		ok = err == nil && p.Received > 0
	}
	if !ok {
		ike, err := c.CLI("r1", "show services ipsec-vpn ike security-associations")
		Need(t, err == nil && strings.Contains(ike, "192.168.255.3"), "kmd does not establish the example's IKE SA yet: %v %s", err, lastLines(ike, 4))
		t.Fatalf("IKE SA up but host1 cannot ping host2:\n%s", ike)
	}
	t.Logf("whole compose test in %s", time.Since(start).Round(time.Second))
}

// composeRestart runs `docker compose restart <svc>-r1` one second into
// 5 s of 200 pkt/s ping from host1 to host2 and measures the loss.
func composeRestart(t *testing.T, c *Compose, svc string) restartRow {
	t.Helper()
	row := restartRow{daemon: svc, method: "compose restart"}
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := c.Exec(time.Minute, "host1", "/sitesec", "ping", "-i", "5ms", "-t", "5s", "-w", "1500ms", "-json", "10.0.0.2")
		done <- result{out, err}
	}()
	time.Sleep(time.Second)
	start := time.Now()
	if out, err := c.Run(time.Minute, "restart", "-t", "5", svc+"-r1"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	row.back = time.Since(start)
	r := <-done
	if r.err != nil {
		t.Fatalf("ping during restart of %s-r1: %v", svc, r.err)
	}
	p := parsePing(t, r.out)
	row.sent, row.lost, row.outage = p.Sent, len(p.Lost), p.LongestOutageMs
	time.Sleep(500 * time.Millisecond)
	return row
}
