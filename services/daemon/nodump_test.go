package daemon

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// A daemon holding keys must not leave them in a core file: after
// noCoreDumps, RLIMIT_CORE is 0 and /proc/self/status says the process is
// not dumpable. Runs in a child process so the test binary keeps its own.
func TestNoCoreDumps(t *testing.T) {
	if os.Getenv("SITESEC_NODUMP_CHILD") == "1" {
		if err := noCoreDumps(); err != nil {
			t.Fatal(err)
		}
		var rl syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &rl); err != nil || rl.Cur != 0 || rl.Max != 0 {
			t.Fatalf("RLIMIT_CORE = %+v, %v", rl, err)
		}
		dumpable, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, 3 /* PR_GET_DUMPABLE */, 0, 0)
		if e != 0 || dumpable != 0 {
			t.Fatalf("PR_GET_DUMPABLE = %d, %v", dumpable, e)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoCoreDumps$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SITESEC_NODUMP_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
