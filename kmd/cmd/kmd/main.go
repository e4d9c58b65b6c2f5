// Command kmd is the sitesec IKE key management daemon; see ../../README.md.
//
// KMD_CPUPROFILE=FILE writes a CPU profile (go tool pprof) of the whole
// run to FILE ("%d" in it becomes the process id), ended when kmd stops on
// SIGTERM or SIGINT; for the setup-rate benchmark of tests/bench.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/sitesec/sitesec/kmd/server"
	"github.com/sitesec/sitesec/services/daemon"
)

// profiled is kmd's App whose Stop also ends the CPU profile (the
// embedded *server.Server keeps every optional interface of the App).
type profiled struct{ *server.Server }

func (p profiled) Stop(ctx context.Context) error {
	err := p.Server.Stop(ctx)
	pprof.StopCPUProfile()
	return err
}

func main() {
	path := os.Getenv("KMD_CPUPROFILE")
	if path == "" {
		daemon.Main("kmd", server.New())
	}
	f, err := os.Create(strings.ReplaceAll(path, "%d", strconv.Itoa(os.Getpid())))
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmd: KMD_CPUPROFILE: %v\n", err)
		os.Exit(1)
	}
	daemon.Main("kmd", profiled{server.New()})
}
