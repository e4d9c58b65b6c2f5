// Command kmd is the sitesec IKE key management daemon; see ../../README.md.
// KMD_CPUPROFILE=FILE and KMD_HEAPPROFILE=FILE profile it (services/daemon).
package main

import (
	"github.com/sitesec/sitesec/kmd/server"
	"github.com/sitesec/sitesec/services/daemon"
)

func main() { daemon.Main("kmd", server.New()) }
