package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitesec/sitesec/services/broker"
	"github.com/sitesec/sitesec/tests/harness"
)

// pidOf reads a daemon's pid from `show system processes | display json`.
func pidOf(t *testing.T, r *harness.Router, daemon string) (pid int, restarts int) {
	t.Helper()
	out := r.MustCLI("show system processes | display json")
	var doc struct {
		Info struct {
			Processes []struct {
				Name     string `json:"name"`
				Pid      int    `json:"pid"`
				Restarts int    `json:"restarts"`
				State    string `json:"state"`
			} `json:"processes"`
		} `json:"system-process-information"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("show system processes | display json: %v\n%s", err, out)
	}
	for _, p := range doc.Info.Processes {
		if p.Name == daemon {
			return p.Pid, p.Restarts
		}
	}
	t.Fatalf("%s not in process list:\n%s", daemon, out)
	return 0, 0
}

func TestRouterStartsEveryDaemon(t *testing.T) {
	r := harness.Start(t)
	out := r.MustCLI("show system processes")
	for _, d := range []string{"sitesecd", "nats", "cfgd", "kmd", "pkid", "fwdd"} {
		if !regexp.MustCompile(`(?m)^` + d + `\s+\d+\s+running\s`).MatchString(out) {
			t.Errorf("%s not running:\n%s", d, out)
		}
	}
	// Every daemon reports its health on the bus within a heartbeat.
	deadline := time.Now().Add(6 * time.Second)
	for {
		out = r.MustCLI("show system processes")
		if strings.Count(out, " connected ") >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := strings.Count(out, " connected "); n < 4 {
		t.Errorf("want 4 daemons with heartbeats, got %d:\n%s", n, out)
	}
	// Each daemon traces into its own file.
	for _, d := range []string{"cfgd", "kmd", "pkid", "fwdd", "sitesecd"} {
		if tr := r.Trace(d); !strings.Contains(tr, "running") {
			t.Errorf("trace of %s has no start line:\n%s", d, tr)
		}
	}
}

func TestKillNineIsRestartedWithinTwoSeconds(t *testing.T) {
	r := harness.Start(t)
	old, _ := pidOf(t, r, "kmd")
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for {
		pid, restarts := pidOf(t, r, "kmd")
		if pid != 0 && pid != old {
			if d := time.Since(killed); d > 2*time.Second {
				t.Errorf("kmd came back after %s, want <= 2s", d)
			}
			if restarts != 1 {
				t.Errorf("restarts = %d, want 1", restarts)
			}
			break
		}
		if time.Since(killed) > 5*time.Second {
			t.Fatalf("kmd not restarted after kill -9:\n%s", r.MustCLI("show system processes"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := r.MustCLI("show system processes")
	if !strings.Contains(out, "killed by signal killed") {
		t.Errorf("last exit reason missing:\n%s", out)
	}
}

func TestRestartCommand(t *testing.T) {
	r := harness.Start(t)
	old, _ := pidOf(t, r, "fwdd")
	out := r.MustCLI("restart fwdd")
	m := regexp.MustCompile(`fwdd started, pid (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("restart output: %q", out)
	}
	n, _ := strconv.Atoi(m[1])
	if n == old {
		t.Fatalf("pid unchanged: %d", n)
	}
	pid, restarts := pidOf(t, r, "fwdd")
	if pid != n || restarts != 1 {
		t.Fatalf("after restart: pid %d restarts %d, want %d and 1", pid, restarts, n)
	}
	// JSON on restart too.
	if out := r.MustCLI("restart kmd immediately | display json"); !strings.Contains(out, "kmd started, pid") {
		t.Errorf("restart | display json: %s", out)
	}
	if out, err := r.CLI("restart nosuchd"); err == nil || !strings.Contains(out, "no such daemon") {
		t.Errorf("restart of unknown daemon: err %v out %q", err, out)
	}
}

func TestCLIScriptAndExitStatus(t *testing.T) {
	r := harness.Start(t)
	out, err := r.CLIStdin("show system processes\nshow system processes | match kmd | count\n")
	if err != nil {
		t.Fatalf("script failed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Count: 1 lines") || !strings.Contains(out, "cfgd") {
		t.Errorf("script output:\n%s", out)
	}
	out, err = r.CLIStdin("show system processes\nshow nonsense here\n")
	if err == nil {
		t.Errorf("a failing command in a script must give a non-zero exit:\n%s", out)
	}
	if !strings.Contains(out, "error: syntax error") {
		t.Errorf("no error line:\n%s", out)
	}
	if _, err := r.CLI("show system processes | frobnicate"); err == nil {
		t.Error("bad pipe accepted")
	}
}

// TestBadInput checks that every kind of bad start ends with a one-line
// error and a non-zero exit, and never disturbs a running router.
func TestBadInput(t *testing.T) {
	r := harness.Start(t)
	bin := r.Bin
	empty := t.TempDir()
	file := filepath.Join(empty, "afile")
	os.WriteFile(file, []byte("x"), 0o644)
	cases := []struct {
		name string
		cmd  []string
		want string
	}{
		{"unknown flag", []string{bin + "/sitesecd", "--root", empty, "--frobnicate"}, "flag provided but not defined"},
		{"no root", []string{bin + "/sitesecd"}, "usage"},
		{"unreachable bus", []string{bin + "/sitesecd", "--root", t.TempDir(), "--bus", "nats://127.0.0.1:1"}, "cannot reach"},
		{"unwritable root", []string{bin + "/sitesecd", "--root", filepath.Join(file, "sub")}, "cannot use root"},
		{"missing daemon binary", []string{bin + "/sitesecd", "--root", t.TempDir(), "--bin", empty}, "not found"},
		{"second sitesecd", []string{bin + "/sitesecd", "--root", r.Root}, "already running"},
		{"daemon unknown flag", []string{bin + "/kmd", "--nope"}, "flag provided but not defined"},
		{"daemon unreachable bus", []string{bin + "/kmd", "--root", t.TempDir(), "--bus", "nats://127.0.0.1:1", "--bus-wait", "0s"}, "cannot reach"},
		{"daemon unwritable root", []string{bin + "/fwdd", "--root", filepath.Join(file, "sub"), "--bus", "nats://127.0.0.1:1"}, "cannot use root"},
		{"cli without router", []string{bin + "/cli", "--root", t.TempDir(), "-c", "show system processes"}, "no bus"},
		{"cli unreachable bus", []string{bin + "/cli", "--bus", "nats://127.0.0.1:1", "-c", "show system processes"}, "cannot reach"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(c.cmd[0], c.cmd[1:]...)
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("%v did not exit", c.cmd)
			}
			if err == nil {
				t.Fatalf("exit status 0, want failure; output %q", out)
			}
			s := strings.TrimSpace(string(out))
			if strings.Contains(s, "goroutine ") || strings.Contains(s, "panic") {
				t.Fatalf("stack trace:\n%s", s)
			}
			if !strings.Contains(s, c.want) {
				t.Errorf("output %q does not say %q", s, c.want)
			}
			if c.name != "no root" && strings.Count(s, "\n") > 0 {
				t.Errorf("want one line, got:\n%s", s)
			}
		})
	}
	// The running router is untouched.
	out := r.MustCLI("show system processes")
	if strings.Count(out, " running ") < 6 {
		t.Errorf("running router disturbed:\n%s", out)
	}
	_ = fmt.Sprint()
}

func TestStopLeavesNoOrphans(t *testing.T) {
	r := harness.Start(t)
	var pids []int
	for _, d := range []string{"cfgd", "kmd", "pkid", "fwdd"} {
		p, _ := pidOf(t, r, d)
		pids = append(pids, p)
	}
	r.Stop()
	for _, p := range pids {
		if err := syscall.Kill(p, 0); err == nil {
			t.Errorf("daemon pid %d still alive after sitesecd stopped", p)
		}
	}
	if _, err := os.Stat(filepath.Join(r.Root, "var", "run", "sitesec", "bus.json")); err == nil {
		t.Error("bus file left behind")
	}
}

func TestKillNineOfLauncherLeavesNoOrphans(t *testing.T) {
	r := harness.Start(t)
	var pids []int
	for _, d := range []string{"cfgd", "kmd", "pkid", "fwdd"} {
		p, _ := pidOf(t, r, d)
		pids = append(pids, p)
	}
	r.Cmd.Process.Kill()
	r.Cmd.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for _, p := range pids {
		for syscall.Kill(p, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if syscall.Kill(p, 0) == nil {
			t.Errorf("daemon pid %d survived kill -9 of sitesecd", p)
		}
	}
}

// TestRestartNATS replaces the embedded bus: every daemon reconnects, and
// the committed configuration is still there.
func TestRestartNATS(t *testing.T) {
	r := harness.Start(t)
	if o, err := r.CLIStdin("configure\nset system host-name before-nats\ncommit\nexit configuration-mode\n"); err != nil {
		t.Fatalf("commit: %v\n%s", err, o)
	}
	out := r.MustCLI("restart nats")
	if !strings.Contains(out, "nats restarting") {
		t.Fatalf("restart nats: %q", out)
	}
	start := time.Now()
	for {
		time.Sleep(100 * time.Millisecond)
		out, err := r.CLI("show system processes")
		if err == nil && regexp.MustCompile(`(?m)^nats\s+\d+\s+running\s+\S+\s+1\s`).MatchString(out) && strings.Count(out, " connected ") >= 5 {
			t.Logf("bus back and every daemon connected after %s", time.Since(start).Round(10*time.Millisecond))
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("daemons did not come back after restart nats:\n%s", out)
		}
	}
	if out := r.MustCLI("show configuration system"); !strings.Contains(out, "before-nats") {
		t.Errorf("configuration lost:\n%s", out)
	}
	if o, err := r.CLIStdin("configure\nset system host-name after-nats\ncommit\nexit configuration-mode\n"); err != nil || !strings.Contains(o, "commit complete") {
		t.Fatalf("commit after restart: %v\n%s", err, o)
	}
}

// TestExternalBusGoneStopsPromptly: a router on an external bus that went
// away still stops cleanly and quickly on SIGTERM.
func TestExternalBusGoneStopsPromptly(t *testing.T) {
	srv, err := broker.Start(broker.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r := harness.Start(t, "--bus", srv.ClientURL(), "--name", "ext1")
	if out := r.MustCLI("show system processes"); !strings.Contains(out, "Router: ext1, bus: nats://") {
		t.Errorf("processes on an external bus:\n%s", out)
	}
	var pids []int
	for _, d := range []string{"cfgd", "kmd", "pkid", "fwdd"} {
		p, _ := pidOf(t, r, d)
		pids = append(pids, p)
	}
	srv.Shutdown()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	r.Stop()
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("sitesecd took %s to stop with its bus gone", d)
	}
	for _, p := range pids {
		if syscall.Kill(p, 0) == nil {
			t.Errorf("daemon pid %d still alive", p)
		}
	}
}
