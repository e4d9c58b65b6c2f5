// Package harness runs sitesec routers for tests: the real binaries from
// bin/ (SITESEC_BIN, set by `make test`), each router in its own root
// directory, and the cli against it.
package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sitesec/sitesec/services/busfile"
)

// Bin returns the directory of the sitesec binaries, or skips the test
// when they have not been built.
func Bin(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SITESEC_BIN")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "bin")
	}
	for _, b := range []string{"sitesecd", "cli", "cfgd", "kmd", "pkid", "fwdd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Skipf("sitesec binaries not built in %s (run make build, or make test): %v", dir, err)
		}
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// Router is one sitesecd process.
type Router struct {
	t    testing.TB
	Bin  string
	Root string
	Cmd  *exec.Cmd
	Out  *syncBuffer
	// Netns, when set, runs the router and its cli inside that namespace.
	Netns string
}

// Start runs sitesecd with args (beyond --root) and waits until its bus
// file appears and the processes answer.
func Start(t testing.TB, args ...string) *Router {
	t.Helper()
	r := &Router{t: t, Bin: Bin(t), Root: t.TempDir(), Out: &syncBuffer{}}
	r.start(args...)
	return r
}

// StartIn is Start inside network namespace ns.
func StartIn(t testing.TB, ns string, args ...string) *Router {
	t.Helper()
	r := &Router{t: t, Bin: Bin(t), Root: t.TempDir(), Out: &syncBuffer{}, Netns: ns}
	r.start(args...)
	return r
}

// StartInRoot is StartIn with a root directory of the caller's: a router
// started again in the same root finds the state (configuration,
// certificates, keys) its earlier run left there.
func StartInRoot(t testing.TB, ns, root string, args ...string) *Router {
	t.Helper()
	r := &Router{t: t, Bin: Bin(t), Root: root, Out: &syncBuffer{}, Netns: ns}
	r.start(args...)
	return r
}

func (r *Router) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(r.Bin, name)
	if r.Netns != "" {
		return exec.Command("ip", append([]string{"netns", "exec", r.Netns, path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (r *Router) start(args ...string) {
	t := r.t
	r.Cmd = r.command("sitesecd", append([]string{"--root", r.Root}, args...)...)
	r.Cmd.Stdout, r.Cmd.Stderr = r.Out, r.Out
	r.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.Cmd.Start(); err != nil {
		t.Fatalf("start sitesecd: %v", err)
	}
	t.Cleanup(r.Stop)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := busfile.Read(r.Root); err == nil {
			out, err := r.CLI("show system processes")
			if err == nil && strings.Count(out, " running ") >= 5 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("router did not come up; sitesecd output:\n%s", r.Out.String())
		}
		if r.Cmd.ProcessState != nil {
			t.Fatalf("sitesecd exited: %s", r.Out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits (at most 15 s) for sitesecd to exit.
func (r *Router) Stop() {
	if r.Cmd == nil || r.Cmd.Process == nil || r.Cmd.ProcessState != nil {
		return
	}
	_ = r.Cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = r.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = r.Cmd.Process.Kill()
		<-done
		r.t.Errorf("sitesecd did not stop within 15s on SIGTERM")
	}
}

// CLI runs `cli --root ROOT -c cmd` and returns its output; err is set
// when the exit status is not zero.
func (r *Router) CLI(cmd string) (string, error) {
	c := r.command("cli", "--root", r.Root, "-c", cmd)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	done := make(chan error, 1)
	if err := c.Start(); err != nil {
		return "", err
	}
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return out.String(), fmt.Errorf("cli -c %q: %v: %s", cmd, err, out.String())
		}
		return out.String(), nil
	case <-ctx.Done():
		_ = c.Process.Kill()
		return out.String(), fmt.Errorf("cli -c %q: timed out", cmd)
	}
}

// CLIStdin runs cli with the commands on standard input.
func (r *Router) CLIStdin(script string) (string, error) {
	c := r.command("cli", "--root", r.Root)
	c.Stdin = strings.NewReader(script)
	out, err := c.CombinedOutput()
	return string(out), err
}

// MustCLI is CLI that fails the test on error.
func (r *Router) MustCLI(cmd string) string {
	r.t.Helper()
	out, err := r.CLI(cmd)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// Trace returns the content of a daemon's trace file.
func (r *Router) Trace(daemon string) string {
	b, _ := os.ReadFile(filepath.Join(r.Root, "var", "log", daemon))
	return string(b)
}

// syncBuffer is a bytes.Buffer safe for the writes of a child's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
