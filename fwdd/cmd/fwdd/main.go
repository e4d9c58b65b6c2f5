// Command fwdd is the sitesec userspace ESP data plane; see ../../README.md.
// FWDD_CPUPROFILE=FILE and FWDD_HEAPPROFILE=FILE profile it (services/daemon).
package main

import (
	"github.com/sitesec/sitesec/fwdd/plane"
	"github.com/sitesec/sitesec/services/daemon"
)

func main() { daemon.Main("fwdd", plane.NewApp()) }
