// Command kmd is the sitesec kmd daemon; see ../../README.md.
package main

import "github.com/sitesec/sitesec/services/daemon"

func main() { daemon.Main("kmd", daemon.Idle{}) }
