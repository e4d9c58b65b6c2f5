//go:build bench

package bench

import (
	"bufio"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitesec/sitesec/tests/e2e"
)

// TestCommitToFirstPacket measures issue 15 goal 4: r3 already has its end
// of an `establish-tunnels immediately` tunnel; r1 pings r4 every 5 ms (no
// route yet: nothing answers); then r2's operator commits its end (cli:
// load override, commit). Reported: when the commit returned and when the
// first echo reply reached r1, both from the start of the commit, over
// BENCH_REPS (3) fresh router pairs.
func TestCommitToFirstPacket(t *testing.T) {
	e2e.RequireNetns(t)
	reps := EnvInt("BENCH_REPS", 3)
	var commits, firsts []float64
	for i := 0; i < reps; i++ {
		tp := e2e.NewTopology(t, false)
		tp.StartRouters()
		commit(t, tp.R3, TunnelFor("r3", "aes-256-gcm", "", false))
		conf, err := TunnelFor("r2", "aes-256-gcm", "", false).Render()
		if err != nil {
			t.Fatal(err)
		}
		// Until the tunnel's route exists r2 drops r1's probes silently
		// (an ICMP net unreachable would end ping).
		tp.IP("r2", "route", "add", "blackhole", e2e.LAN4, "metric", "4000")
		reply, stop := firstReply(t, tp.NS["r1"], e2e.R4)
		time.Sleep(200 * time.Millisecond) // ping is sending
		t0 := time.Now()
		out, err := e2e.Commit(tp.R2, conf)
		commitMs := Since(t0)
		if err != nil || !strings.Contains(out, "commit complete") {
			stop()
			t.Fatalf("commit on r2: %v: %s", err, out)
		}
		var firstMs float64
		select {
		case at := <-reply:
			firstMs = float64(at.Sub(t0).Microseconds()) / 1000
		case <-time.After(30 * time.Second):
			stop()
			sas, _ := tp.R2.CLI("show services ipsec-vpn ipsec security-associations")
			t.Fatalf("no echo reply through the new tunnel within 30 s; ping from r1 now: %v; r2 SAs:\n%s", tp.Ping("r1", e2e.R4, 2), sas)
		}
		stop()
		t.Logf("rep %d: commit returned after %.0f ms, first echo reply after %.0f ms (load %s)", i+1, commitMs, firstMs, LoadAvg())
		commits, firsts = append(commits, commitMs), append(firsts, firstMs)
		tp.R2.Stop()
		tp.R3.Stop()
	}
	t.Logf("summary: commit returns in %.0f ms, first packet %.0f ms after the commit started (medians of %d: %s / %s ms; goal 100 ms; load %s)",
		Median(commits), Median(firsts), reps, list(commits), list(firsts), LoadAvg())
}

// firstReply runs ping every 5 ms from namespace ns to dst and sends the
// time of the first echo reply line; stop ends ping.
func firstReply(t *testing.T, ns, dst string) (<-chan time.Time, func()) {
	t.Helper()
	c := exec.Command("ip", "netns", "exec", ns, "ping", "-n", "-i", "0.005", "-w", "60", dst)
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("ping: %v", err)
	}
	reply := make(chan time.Time, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			if !sent && strings.Contains(sc.Text(), "bytes from "+dst) {
				reply <- time.Now()
				sent = true
			}
		}
	}()
	stop := func() { _ = c.Process.Kill(); _ = c.Wait() }
	t.Cleanup(stop)
	return reply, stop
}
