// Command fwdd is the sitesec userspace ESP data plane; see ../../README.md.
//
// FWDD_CPUPROFILE=FILE writes a CPU profile (go tool pprof) of the whole
// run to FILE ("%d" in it becomes the process id, so that the routers of
// one benchmark do not share a file), ended when fwdd stops on SIGTERM or
// SIGINT; for the benchmarks of tests/bench.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/sitesec/sitesec/fwdd/plane"
	"github.com/sitesec/sitesec/services/daemon"
)

// profiled is fwdd's App whose Stop also ends the CPU profile (the
// embedded *plane.App keeps every optional interface of the App).
type profiled struct{ *plane.App }

func (p profiled) Stop(ctx context.Context) error {
	err := p.App.Stop(ctx)
	pprof.StopCPUProfile()
	return err
}

func main() {
	path := os.Getenv("FWDD_CPUPROFILE")
	if path == "" {
		daemon.Main("fwdd", plane.NewApp())
	}
	f, err := os.Create(strings.ReplaceAll(path, "%d", strconv.Itoa(os.Getpid())))
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "fwdd: FWDD_CPUPROFILE: %v\n", err)
		os.Exit(1)
	}
	daemon.Main("fwdd", profiled{plane.NewApp()})
}
