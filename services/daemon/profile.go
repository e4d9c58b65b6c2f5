package daemon

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
)

// profileEnv is the variable that asks a daemon for a CPU profile:
// FWDD_CPUPROFILE for fwdd, KMD_CPUPROFILE for kmd.
func profileEnv(name string) string { return strings.ToUpper(name) + "_CPUPROFILE" }

// startProfile writes a CPU profile (go tool pprof) of the whole run to the
// file named by $<NAME>_CPUPROFILE, "%d" in it replaced by the process id
// so that the routers of one benchmark do not share a file (tests/bench).
// The returned stop ends the profile; without the variable it does nothing.
func startProfile(name string) (stop func(), err error) {
	env := profileEnv(name)
	path := os.Getenv(env)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(strings.ReplaceAll(path, "%d", strconv.Itoa(os.Getpid())))
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// heapProfile, when $<NAME>_HEAPPROFILE names a file ("%d" the process
// id), writes there a heap profile after a collection (go tool pprof
// -sample_index=inuse_space) and, beside it in FILE.metrics, the goroutine
// count and the runtime's memory classes (runtime/metrics: stacks too,
// which the heap profile does not show). Run calls it when the daemon is
// told to stop, before the App lets go of its state: what a benchmark
// such as tests/bench TestScale held at its end.
func heapProfile(name string) {
	path := os.Getenv(strings.ToUpper(name) + "_HEAPPROFILE")
	if path == "" {
		return
	}
	path = strings.ReplaceAll(path, "%d", strconv.Itoa(os.Getpid()))
	runtime.GC()
	if f, err := os.Create(path); err == nil {
		_ = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	_ = os.WriteFile(path+".metrics", []byte(MemoryMetrics()), 0o644)
}

// memoryMetrics are the runtime/metrics MemoryMetrics reports.
var memoryMetrics = []string{
	"/sched/goroutines:goroutines",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/stacks:bytes",
	"/memory/classes/os-stacks:bytes",
	"/memory/classes/metadata/other:bytes",
	"/memory/classes/other:bytes",
	"/gc/heap/objects:objects",
}

// MemoryMetrics renders the goroutine count and the runtime's memory
// classes, one "name value" line each.
func MemoryMetrics() string {
	s := make([]metrics.Sample, len(memoryMetrics))
	for i, n := range memoryMetrics {
		s[i].Name = n
	}
	metrics.Read(s)
	var b strings.Builder
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			fmt.Fprintf(&b, "%s %d\n", x.Name, x.Value.Uint64())
		}
	}
	return b.String()
}
