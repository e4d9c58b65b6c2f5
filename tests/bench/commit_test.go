//go:build bench

package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitesec/sitesec/tests/e2e"
	"github.com/sitesec/sitesec/tests/harness"
)

// TestCommitToFirstPacket measures issue 15 goal 4: r3 already has its end
// of an `establish-tunnels immediately` tunnel; r1 pings r4 every 5 ms (no
// route yet: nothing answers); then r2's operator commits its end in one
// cli session (configure, load override FILE, commit). Reported, over
// BENCH_REPS (3) fresh router pairs: when the commit returned and when
// the first echo reply reached r1, both from the moment the operator
// typed `commit` (the goal), and the first reply from the start of the
// cli process (which adds the cli's start, its bus connection and the
// load).
//
// With BENCH_TRACE=DIR every daemon traces at level all and the trace
// files of each repetition are copied to DIR/repN-r2 and DIR/repN-r3.
func TestCommitToFirstPacket(t *testing.T) {
	e2e.RequireNetns(t)
	reps := EnvInt("BENCH_REPS", 3)
	traceDir := os.Getenv("BENCH_TRACE")
	var commits, firsts, wholes []float64
	for i := 0; i < reps; i++ {
		tp := e2e.NewTopology(t, false)
		tp.StartRouters()
		t3, t2 := TunnelFor("r3", "aes-256-gcm", "", false), TunnelFor("r2", "aes-256-gcm", "", false)
		if traceDir != "" {
			for _, c := range []*Tunnel{&t3, &t2} {
				c.Trace, c.TraceLevel, c.ProcFlag, c.KmdFlag, c.PkidFlag = true, "all", "all", "all", "all"
			}
		}
		commit(t, tp.R3, t3)
		conf, err := t2.Render()
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(tp.R2.Root, "r2.conf")
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		// Until the tunnel's route exists r2 drops r1's probes silently
		// (an ICMP net unreachable would end ping).
		tp.IP("r2", "route", "add", "blackhole", e2e.LAN4, "metric", "4000")
		reply, stop := firstReply(t, tp.NS["r1"], e2e.R4)
		time.Sleep(200 * time.Millisecond) // ping is sending
		start := time.Now()
		sh := startCLI(t, tp.R2)
		sh.send(t, "configure")
		sh.send(t, "load override "+file)
		sh.waitFor(t, "load complete")
		t0 := time.Now()
		sh.send(t, "commit")
		sh.waitFor(t, "commit complete")
		commitMs := Since(t0)
		sh.send(t, "exit configuration-mode")
		sh.close()
		var firstMs, wholeMs float64
		select {
		case at := <-reply:
			firstMs = float64(at.Sub(t0).Microseconds()) / 1000
			wholeMs = float64(at.Sub(start).Microseconds()) / 1000
		case <-time.After(30 * time.Second):
			stop()
			sas, _ := tp.R2.CLI("show services ipsec-vpn ipsec security-associations")
			t.Fatalf("no echo reply through the new tunnel within 30 s; ping from r1 now: %v; r2 SAs:\n%s", tp.Ping("r1", e2e.R4, 2), sas)
		}
		stop()
		t.Logf("rep %d: after `commit`: commit returned %.0f ms, first echo reply %.0f ms; from the cli's start: first echo reply %.0f ms (load %s)", i+1, commitMs, firstMs, wholeMs, LoadAvg())
		commits, firsts, wholes = append(commits, commitMs), append(firsts, firstMs), append(wholes, wholeMs)
		if traceDir != "" {
			for name, r := range map[string]string{"r2": tp.R2.Root, "r3": tp.R3.Root} {
				_ = exec.Command("cp", "-r", filepath.Join(r, "var", "log"), filepath.Join(traceDir, fmt.Sprintf("rep%d-%s", i+1, name))).Run()
			}
		}
		tp.R2.Stop()
		tp.R3.Stop()
	}
	t.Logf("summary: after `commit`: commit returns in %.0f ms, first packet %.0f ms (goal 100 ms); from the cli's start: first packet %.0f ms (medians of %d: %s / %s / %s ms; load %s)",
		Median(commits), Median(firsts), Median(wholes), reps, list(commits), list(firsts), list(wholes), LoadAvg())
}

// cliSession is one cli process of a router fed line by line, as an
// operator types.
type cliSession struct {
	c      *exec.Cmd
	in     io.WriteCloser
	lines  chan string
	cancel context.CancelFunc
}

func startCLI(t *testing.T, r *harness.Router) *cliSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cli := filepath.Join(r.Bin, "cli")
	c := exec.CommandContext(ctx, cli, "--root", r.Root)
	if r.Netns != "" {
		c = exec.CommandContext(ctx, "ip", "netns", "exec", r.Netns, cli, "--root", r.Root)
	}
	in, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = c.Stdout
	if err := c.Start(); err != nil {
		t.Fatalf("cli: %v", err)
	}
	s := &cliSession{c: c, in: in, lines: make(chan string, 1024), cancel: cancel}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(s.close)
	return s
}

func (s *cliSession) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		t.Fatalf("cli: %v", err)
	}
}

// waitFor reads the cli's output until a line contains want (bounded).
func (s *cliSession) waitFor(t *testing.T, want string) {
	t.Helper()
	var seen []string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("cli ended before %q:\n%s", want, strings.Join(seen, "\n"))
			}
			if strings.Contains(l, want) {
				return
			}
			seen = append(seen, l)
		case <-timeout:
			t.Fatalf("no %q from the cli within 30 s:\n%s", want, strings.Join(seen, "\n"))
		}
	}
}

func (s *cliSession) close() {
	_ = s.in.Close()
	done := make(chan struct{})
	go func() { _ = s.c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	s.cancel()
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
