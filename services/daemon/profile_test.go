package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// $FWDD_CPUPROFILE names the profile file, "%d" replaced by the pid; the
// profile is written when stop runs.
func TestStartProfile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FWDD_CPUPROFILE", filepath.Join(dir, "fwdd-%d.prof"))
	stop, err := startProfile("fwdd")
	if err != nil {
		t.Fatal(err)
	}
	stop()
	fi, err := os.Stat(filepath.Join(dir, "fwdd-"+strconv.Itoa(os.Getpid())+".prof"))
	if err != nil || fi.Size() == 0 {
		t.Fatalf("profile: %v, %v", fi, err)
	}
	// kmd does not read fwdd's variable.
	stop, err = startProfile("kmd")
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("files: %v", ents)
	}
}

func TestStartProfileBadPath(t *testing.T) {
	t.Setenv("KMD_CPUPROFILE", filepath.Join(t.TempDir(), "missing", "kmd.prof"))
	if _, err := startProfile("kmd"); err == nil || !strings.HasPrefix(err.Error(), "KMD_CPUPROFILE: ") {
		t.Fatalf("err = %v", err)
	}
}

// TestHeapProfile: $<NAME>_HEAPPROFILE gets a heap profile and the memory
// metrics beside it, "%d" being the process id; without it nothing.
func TestHeapProfile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PROFTEST_HEAPPROFILE", filepath.Join(dir, "h-%d.heap"))
	heapProfile("proftest")
	path := filepath.Join(dir, fmt.Sprintf("h-%d.heap", os.Getpid()))
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("heap profile: %v", err)
	}
	m, err := os.ReadFile(path + ".metrics")
	if err != nil || !strings.Contains(string(m), "/sched/goroutines:goroutines ") || !strings.Contains(string(m), "/memory/classes/heap/stacks:bytes ") {
		t.Fatalf("metrics: %v %q", err, m)
	}
	t.Setenv("PROFTEST_HEAPPROFILE", "")
	heapProfile("proftest") // nothing asked: nothing written, no panic
}
