package daemon

import (
	"fmt"
	"os"
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
