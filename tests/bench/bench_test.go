//go:build bench

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitesec/sitesec/tests/e2e"
	"github.com/sitesec/sitesec/tests/harness"
)

// commit loads conf on r and fails the test unless the commit completes.
func commit(t *testing.T, r *harness.Router, c Tunnel) {
	t.Helper()
	conf, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	out, err := e2e.Commit(r, conf)
	if err != nil || !strings.Contains(out, "commit complete") {
		t.Fatalf("commit on %s: %v: %s", c.HostName, err, out)
	}
}

// sitesecPair is the e2e topology with r2 and r3 running sitesecd and an
// IKE (PSK) tunnel with transform enc/integ, raw ESP or ESP in UDP.
func sitesecPair(t *testing.T, enc, integ string, udp bool) *e2e.Topology {
	t.Helper()
	tp := e2e.NewTopology(t, false)
	tp.StartRouters()
	commit(t, tp.R3, TunnelFor("r3", enc, integ, udp))
	commit(t, tp.R2, TunnelFor("r2", enc, integ, udp))
	if !tp.WaitPing("r1", e2e.R4, 60*time.Second) {
		sas, _ := tp.R2.CLI("show services ipsec-vpn ipsec security-associations")
		t.Fatalf("sitesec %s tunnel (udp %v) carries no ping:\n%s", enc, udp, sas)
	}
	return tp
}

var wgbenchPath string

// wgbench builds tests/cmd/wgbench once.
func wgbench(t *testing.T) string {
	t.Helper()
	if wgbenchPath != "" {
		return wgbenchPath
	}
	p := filepath.Join(t.TempDir(), "wgbench")
	c := exec.Command("go", "build", "-trimpath", "-o", p, "./cmd/wgbench")
	c.Dir = ".."
	c.Env = append(c.Environ(), "CGO_ENABLED=0")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build wgbench: %v: %s", err, out)
	}
	wgbenchPath = p
	return p
}

// wireguardPair is the same topology with wireguard-go (wgbench) in r2
// and r3 instead of sitesec.
func wireguardPair(t *testing.T) *e2e.Topology {
	t.Helper()
	tp := e2e.NewTopology(t, false)
	wg := wgbench(t)
	tp.Background("r2", wg, "-name", "wg0", "-key", "r2", "-peer", "r3", "-endpoint", e2e.R3Outside+":51820", "-allowed", e2e.LAN4)
	tp.Background("r3", wg, "-name", "wg0", "-key", "r3", "-peer", "r2", "-endpoint", e2e.R2Outside+":51820", "-allowed", e2e.LAN1)
	for _, r := range []string{"r2", "r3"} {
		if !tp.WaitLink(r, "wg0", 10*time.Second) {
			t.Fatalf("wgbench made no wg0 in %s", r)
		}
		tp.IP(r, "link", "set", "wg0", "up")
	}
	tp.IP("r2", "route", "add", e2e.LAN4, "dev", "wg0")
	tp.IP("r3", "route", "add", e2e.LAN1, "dev", "wg0")
	if !tp.WaitPing("r1", e2e.R4, 20*time.Second) {
		t.Fatalf("wireguard-go tunnel carries no ping")
	}
	return tp
}

// metric is one iperf3 measurement.
type metric struct {
	name string
	args []string
	// value turns the result into the figure (Mbit/s or kpps).
	value func(iperfResult) float64
	unit  string
}

func metrics(secs int) []metric {
	s := fmt.Sprint(secs)
	mbps := func(r iperfResult) float64 { return r.End.SumReceived.BitsPerSecond / 1e6 }
	return []metric{
		{"TCP 1 stream", []string{"-t", s}, mbps, "Mbit/s"},
		{"TCP 4 streams", []string{"-t", s, "-P", "4"}, mbps, "Mbit/s"},
		// 1400-byte IP packets (1372 bytes of UDP payload), as fast as
		// iperf3 sends them: packets per second received.
		{"UDP 1400 B", []string{"-t", s, "-u", "-b", "0", "-l", "1372"}, func(r iperfResult) float64 {
			if r.End.Sum.Seconds == 0 {
				return 0
			}
			return float64(r.End.Sum.Packets-r.End.Sum.LostPackets) / r.End.Sum.Seconds / 1000
		}, "kpps"},
	}
}

// iperf runs one iperf3 client from r1 to r4's server.
func iperf(t *testing.T, tp *e2e.Topology, m metric) float64 {
	t.Helper()
	var last error
	for try := 0; try < 3; try++ {
		out, err := tp.Run("r1", 60*time.Second, append([]string{"iperf3", "-J", "-c", e2e.R4}, m.args...)...)
		if err == nil {
			var r iperfResult
			if r, err = parseIperf(out); err == nil {
				return m.value(r)
			}
		}
		last = err
		time.Sleep(time.Second)
	}
	t.Fatalf("%s: %v", m.name, last)
	return 0
}

// TestThroughput compares sitesec's data plane with wireguard-go's in the
// same veth layout (issue 15 goal 1): for each ESP transform and
// encapsulation, one and four TCP streams and 1400-byte UDP packets,
// BENCH_REPS (3) repetitions of BENCH_SECONDS (5) each, sitesec and
// wireguard-go alternating. BENCH_CASES narrows the cases (substring of
// "aes-128-gcm/udp" etc.).
func TestThroughput(t *testing.T) {
	e2e.RequireNetns(t)
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Fatal("needs iperf3 (scripts/deps.sh installs it)")
	}
	reps, secs := EnvInt("BENCH_REPS", 3), EnvInt("BENCH_SECONDS", 5)
	cases := []struct {
		enc, integ string
		udp        bool
	}{
		{"aes-128-gcm", "", false},
		{"aes-128-gcm", "", true},
		{"aes-256-gcm", "", false},
		{"aes-256-gcm", "", true},
		{"chacha20-poly1305", "", false},
		{"chacha20-poly1305", "", true},
		{"aes-128-cbc", "hmac-sha1-96", false},
	}
	filter := strings.Split(os.Getenv("BENCH_CASES"), ",")
	wg := wireguardPair(t)
	wg.Background("r4", "iperf3", "-s")
	t.Logf("load average at start: %s", LoadAvg())
	var rows []string
	for _, c := range cases {
		name := c.enc + map[bool]string{false: "/esp", true: "/udp"}[c.udp]
		if !matches(filter, name) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			tp := sitesecPair(t, c.enc, c.integ, c.udp)
			tp.Background("r4", "iperf3", "-s")
			time.Sleep(500 * time.Millisecond)
			for _, m := range metrics(secs) {
				var ss, ws []float64
				for i := 0; i < reps; i++ {
					ss = append(ss, iperf(t, tp, m))
					ws = append(ws, iperf(t, wg, m))
				}
				s, w := Median(ss), Median(ws)
				row := fmt.Sprintf("%-26s %-14s sitesec %8.1f  wireguard-go %8.1f %-6s  %.2fx  (sitesec %s, wg %s; load %s)",
					name, m.name, s, w, m.unit, s/w, list(ss), list(ws), LoadAvg())
				t.Log(row)
				rows = append(rows, row)
			}
		})
	}
	t.Logf("summary (medians of %d x %d s, interleaved):\n%s", reps, secs, strings.Join(rows, "\n"))
}

func list(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(s, "/")
}

func matches(filter []string, name string) bool {
	for _, f := range filter {
		if f == "" || strings.Contains(name, f) {
			return true
		}
	}
	return false
}
