package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RandHex returns n random bytes in hex: the suffix that keeps the
// namespaces of tests running at once apart.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// AddNetns makes network namespace ns, deleted in t's cleanup (even when
// the test fails).
func AddNetns(t testing.TB, ns string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Logf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
}

// IP runs `ip -n ns args...` and fails the test on error.
func IP(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Veth links dev in namespace ns to peer in namespace peerNS (ns itself
// when peerNS is "") with a veth pair.
func Veth(t testing.TB, ns, dev, peerNS, peer string) {
	t.Helper()
	args := []string{"link", "add", dev, "type", "veth", "peer", "name", peer}
	if peerNS != "" {
		args = append(args, "netns", peerNS)
	}
	IP(t, ns, args...)
}

// Run runs args in namespace ns (ip netns exec) for at most timeout,
// standard output to out and standard error to errOut (the same buffer
// for combined output). The error names the command and carries errOut.
func Run(ns string, timeout time.Duration, out, errOut *bytes.Buffer, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	c.Stdout, c.Stderr = out, errOut
	err := c.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s", timeout)
	}
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return nil
}

// Proc is a process running in a namespace in the background.
type Proc struct {
	cmd         *exec.Cmd
	out, errOut *bytes.Buffer
	err         error
	done        chan struct{}
}

// Spawn starts args in namespace ns, its standard error apart from its
// output. The caller ends it (Kill, or Cleanup(p.Kill)); it is killed
// with the test binary in any case (PR_SET_PDEATHSIG).
func Spawn(t testing.TB, ns string, args ...string) *Proc {
	t.Helper()
	return spawn(t, ns, &bytes.Buffer{}, &bytes.Buffer{}, args)
}

// SpawnCombined is Spawn with standard error in the output.
func SpawnCombined(t testing.TB, ns string, args ...string) *Proc {
	t.Helper()
	b := &bytes.Buffer{}
	return spawn(t, ns, b, b, args)
}

func spawn(t testing.TB, ns string, out, errOut *bytes.Buffer, args []string) *Proc {
	t.Helper()
	p := &Proc{out: out, errOut: errOut, done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = out, errOut
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	return p
}

// Wait waits at most d for the process to exit (then kills it) and
// returns its output. When standard error is apart, the error names the
// command and carries it; with SpawnCombined it is the exit error alone.
func (p *Proc) Wait(d time.Duration) (string, error) {
	select {
	case <-p.done:
	case <-time.After(d):
		p.Kill()
		return p.out.String(), fmt.Errorf("%v: did not exit within %s", p.cmd.Args, d)
	}
	if p.err != nil && p.errOut != p.out {
		return p.out.String(), fmt.Errorf("%v: %w: %s", p.cmd.Args, p.err, strings.TrimSpace(p.errOut.String()))
	}
	return p.out.String(), p.err
}

// Interrupt sends SIGINT and waits at most d for the process to exit; it
// returns what Wait returns.
func (p *Proc) Interrupt(d time.Duration) (string, error) {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	return p.Wait(d)
}

// Kill ends the process (SIGKILL) and waits for it.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Pid is the process id (of ip netns exec, which execs the command).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// LastLines is the last n lines of s.
func LastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// LogTraces logs the last n lines of each daemon's trace file, each
// under "NAME DAEMON trace (end):" (name may be ""); for a test that
// failed.
func (r *Router) LogTraces(t testing.TB, name string, n int, daemons ...string) {
	t.Helper()
	for _, d := range daemons {
		t.Logf("%s trace (end):\n%s", strings.TrimSpace(name+" "+d), LastLines(r.Trace(d), n))
	}
}
